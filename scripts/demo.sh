#!/usr/bin/env bash
# The demo: two practices on two hisp nodes (two databases) exchange the real HL7 C-CDA referral
# note. Node A seals it (wrap, sign, encrypt) with its stored key to node B's certificate; node B
# opens it (decrypt, verify, check binding and trust) and gets the attachment back bit for bit.
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --bin hisp
hisp="$CARGO_TARGET_DIR/release/hisp"
work=$(mktemp -d)
# Each node's development CA publishes its certificate and CRL over HTTP on loopback, where the
# certificates it issues point, so the receiving node checks the signer's revocation for real.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/web/a" "$work/web/b"
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work/web" >/dev/null 2>&1 &
web=$!
trap 'kill $web 2>/dev/null; rm -rf "$work"' EXIT
start=$(date +%s.%N)
step() { printf '[%6.2fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')" "$*"; }
for n in a b; do printf '[ca]\nbase_url = "http://127.0.0.1:%s/%s"\n' "$port" "$n" >"$work/$n.toml"; done
node() {
  local n=$1; shift
  HISP_CONFIG="$work/$n.toml" HISP_DB="$work/$n/hisp.db" HISP_KEK="demo-kek-of-node-$n-0123456789" "$hisp" "$@"
}

a=smithpeds.direct.example.org
b=jonesortho.direct.example.org
for n in a b; do
  d=$([ $n = a ] && echo $a || echo $b)
  u=$([ $n = a ] && echo dr.smith || echo dr.jones)
  node $n init >/dev/null
  node $n domain add "$d" --practice "$([ $n = a ] && echo 'Smith Pediatrics' || echo 'Jones Orthopedics')" >/dev/null
  echo "a long demo password $n" | node $n address add "$u@$d" --password-stdin >/dev/null
  node $n ca init >/dev/null
  node $n ca export --out "$work/ca-$n.pem"
  node $n cert issue "$u@$d" >/dev/null
  node $n ca crl --out "$work/web/$n/ca.crl" >/dev/null
  node $n ca export --der --out "$work/web/$n/ca.cer"
  step "node $n: practice domain $d, address $u@$d, certificate from its own development CA (CRL published)"
done
# Each node trusts the other's CA (in a real network: the DirectTrust bundle).
node a anchor add "$work/ca-a.pem" --domain $a --incoming --outgoing >/dev/null
node a anchor add "$work/ca-b.pem" --domain $a --incoming --outgoing >/dev/null
node b anchor add "$work/ca-b.pem" --domain $b --incoming --outgoing >/dev/null
node b anchor add "$work/ca-a.pem" --domain $b --incoming --outgoing >/dev/null
node b cert export dr.jones@$b --out "$work/jones.pem"
step "anchors exchanged; B published dr.jones's certificate to A"

ccda=fixtures/ccda/referral-note.xml
python3 - "$ccda" "$work/referral.eml" "$a" "$b" <<'PY'
import base64, sys
ccda, out, a, b = sys.argv[1:]
doc = base64.encodebytes(open(ccda, "rb").read()).replace(b"\n", b"\r\n")
open(out, "wb").write(
    f"From: Dr. Smith <dr.smith@{a}>\r\nTo: Dr. Jones <dr.jones@{b}>\r\nSubject: Referral: knee pain\r\n"
    f"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"r1\"\r\n\r\n--r1\r\n"
    f"Content-Type: text/plain\r\n\r\nPlease see the attached referral note.\r\n--r1\r\n"
    f"Content-Type: application/xml; name=referral-note.xml\r\nContent-Transfer-Encoding: base64\r\n"
    f"Content-Disposition: attachment; filename=referral-note.xml\r\n\r\n".encode() + doc + b"--r1--\r\n")
PY
step "EHR of Smith Pediatrics wrote a referral with the C-CDA referral note ($(stat -c %s $ccda) bytes)"
node a message seal --in "$work/referral.eml" --out "$work/sealed.eml" --recipient-cert "$work/jones.pem" | sed 's/^/           /'
step "node A sealed it: wrapped, signed (SHA-256), encrypted (AES-256-CBC) to dr.jones and dr.smith"
"$hisp" message inspect --in "$work/sealed.eml" | sed 's/^/           /'
node b message open --in "$work/sealed.eml" --out "$work/opened.eml" 2>&1 | sed 's/^/           /'
step "node B opened it: decrypted, signature verified, signer bound to From, trusted and not revoked"
python3 - "$work/opened.eml" "$ccda" <<'PY'
import email, sys
msg = email.message_from_binary_file(open(sys.argv[1], "rb"))
part = [p for p in msg.walk() if p.get_filename() == "referral-note.xml"][0]
assert part.get_payload(decode=True) == open(sys.argv[2], "rb").read(), "the C-CDA document changed"
print("           attachment referral-note.xml matches the original byte for byte")
PY
step "done: the referral reached Jones Orthopedics intact"
