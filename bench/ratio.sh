#!/usr/bin/env bash
# Seal and open rates of a 4 KB Direct message against what OpenSSL's RSA-2048 operations alone
# cost on this machine, measured in this run on one core (`openssl speed -seconds 2 rsa2048`):
#   seal floor = 1 private-key operation (the signature) + 2 public-key ones (the content key to
#                the recipient and to the sender);
#   open floor = 1 private-key operation (the content key) + 1 public-key one (the signature);
# a ratio of 1.0 would mean sealing (opening) costs nothing beyond those RSA operations. Also the
# older ratio against the private-key rate alone, the 10 MB figures, and the peak memory of
# sealing a 10 MB C-CDA/PDF message with the hisp binary.
#
# This kind of machine drifts by 15-20% within a minute, so the reference is measured right before
# and right after each round of criterion measurements, each round's ratio is taken against the
# mean of its two references, and the median of ROUNDS rounds is reported.
#
#   bash bench/ratio.sh            (from the repository root; about 4 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
rounds=${ROUNDS:-5}

cargo build --release --quiet --bin hisp
cargo bench --quiet --bench smime --no-run 2>/dev/null
# Private-key (sign) and public-key (verify) operations per second.
speed() { taskset -c 0 openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $(NF-1), $NF}'; }
bench() { taskset -c 0 cargo bench --quiet --bench smime -- "$@" --output-format bencher 2>/dev/null | grep '^test '; }
rate() { echo "$2" | awk -v name="$1" '$2 == name { gsub(",", "", $5); printf "%.1f", 1e9 / $5 }'; }

echo "== $rounds rounds: openssl speed rsa2048 | criterion 4 KB seal/open | openssl speed rsa2048 (all on core 0)"
printf '%-6s %8s %8s %8s %8s %8s | %10s %10s | %10s %10s %10s\n' round "priv/s" "pub/s" "seal/s" "open/s" "cold/s" \
  "seal/floor" "open/floor" "seal/priv" "open/priv" "cold/priv"
: > /tmp/hisp-ratio.$$
for i in $(seq "$rounds"); do
  before=$(speed)
  results=$(bench 4KB --warm-up-time 1 --measurement-time 3)
  after=$(speed)
  read -r priv pub < <(echo "$before $after" | awk '{ print ($1 + $3) / 2, ($2 + $4) / 2 }')
  s=$(rate 4KB/seal "$results"); o=$(rate 4KB/open "$results"); c=$(rate 4KB/open-cold "$results")
  line=$(awk -v p="$priv" -v q="$pub" -v s="$s" -v o="$o" -v c="$c" 'BEGIN {
    seal_floor = 1 / (1 / p + 2 / q); open_floor = 1 / (1 / p + 1 / q)
    printf "%.2f %.2f %.2f %.2f %.2f", s / seal_floor, o / open_floor, s / p, o / p, c / p }')
  echo "$line" >> /tmp/hisp-ratio.$$
  printf '%-6s %8.0f %8.0f %8.0f %8.0f %8.0f | %10s %10s | %10s %10s %10s\n' "$i" "$priv" "$pub" "$s" "$o" "$c" $line
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
labels=("seal against its floor (1 private + 2 public)" "open against its floor (1 private + 1 public)" \
  "seal against the private-key rate" "open against the private-key rate" "open-cold against the private-key rate")
for col in 1 2 3 4 5; do
  printf 'median, 4 KB, %-48s %s\n' "${labels[$((col - 1))]}:" "$(cut -d' ' -f$col /tmp/hisp-ratio.$$ | median)"
done
rm -f /tmp/hisp-ratio.$$

echo "== 10 MB C-CDA/PDF message (criterion)"
bench 10MB

echo "== peak memory: hisp message seal of a 10 MB message (database mode, key opened with the KEK)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin="$CARGO_TARGET_DIR/release/hisp"
export HISP_DB="$work/hisp.db" HISP_KEK="bench-kek-0123456789abcdef"
"$bin" init >/dev/null
"$bin" domain add a.example.org >/dev/null
"$bin" domain add b.example.org >/dev/null
for d in a.example.org b.example.org; do
  "$bin" proofing approve $d --out-of-band --reason "benchmark node" >/dev/null
done
"$bin" address add dr.smith@a.example.org >/dev/null
"$bin" address add dr.jones@b.example.org >/dev/null
"$bin" ca init >/dev/null
"$bin" cert issue dr.smith@a.example.org >/dev/null
"$bin" cert issue dr.jones@b.example.org >/dev/null
"$bin" ca export --out "$work/ca.pem" >/dev/null
"$bin" anchor add --domain b.example.org --incoming "$work/ca.pem" >/dev/null
python3 - "$work/big.eml" "$work/small.eml" <<'PY'
import base64, sys
pdf = open("fixtures/ccda/ud-sample.pdf", "rb").read()
ccda = open("fixtures/ccda/referral-note.xml", "rb").read()
def message(size):
    head = (b"From: dr.smith@a.example.org\r\nTo: dr.jones@b.example.org\r\nSubject: Referral\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
            b"Content-Type: text/plain\r\n\r\nReferral attached.\r\n--b1\r\n"
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    payload = b""
    while len(payload) * 4 // 3 < size - len(head) - 200:
        payload += pdf + ccda
    payload = payload[: (size - len(head) - 200) * 3 // 4]
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return head + b64 + b"--b1--\r\n"
open(sys.argv[1], "wb").write(message(10 * 1024 * 1024))
open(sys.argv[2], "wb").write(message(4 * 1024))
PY
peak() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB
PY
}
size_kib=$(( $(stat -c %s "$work/big.eml") / 1024 ))
small=$(peak "$bin" message seal --in "$work/small.eml" --out "$work/small.p7m")
big=$(peak "$bin" message seal --in "$work/big.eml" --out "$work/big.p7m")
awk -v s="$size_kib" -v a="$small" -v b="$big" 'BEGIN {
  printf "message %.1f MiB; peak RSS sealing it %.1f MiB = %.2fx its size (the process peaks at %.1f MiB sealing 4 KB: argon2id KEK derivation)\n",
    s / 1024, b / 1024, b / s, a / 1024 }'
# The round trip checks the content; the development CA's CRL URL is not served here.
printf '[trust]\nrevocation = "soft"\n' > "$work/soft.toml"
HISP_CONFIG="$work/soft.toml" "$bin" message open --in "$work/big.p7m" --out "$work/big.out" >/dev/null 2>"$work/open.err" \
  || { echo "the 10 MB message did not open:"; cat "$work/open.err"; exit 1; }
if cmp -s "$work/big.eml" <(grep -v '^Date:\|^Message-ID:' "$work/big.out"); then
  echo "the 10 MB message opened intact"
else
  echo "the 10 MB message did not round-trip"; exit 1
fi
