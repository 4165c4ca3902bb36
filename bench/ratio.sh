#!/usr/bin/env bash
# Seal and open rates of a 4 KB Direct message as a ratio to this machine's RSA-2048 private-key
# rate (`openssl speed`), both measured in this run on one core; and the peak memory of sealing a
# 10 MB C-CDA/PDF message with the hisp binary, as a multiple of the message size.
#
#   bash bench/ratio.sh            (from the repository root; takes about 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== reference: openssl speed -seconds 2 rsa2048 (one core)"
speed=$(taskset -c 0 openssl speed -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $(NF-1)}')
echo "RSA-2048 private-key operations: ${speed}/s"

echo "== cargo bench --bench smime (criterion, one core)"
cargo build --release --quiet --bin hisp
results=$(taskset -c 0 cargo bench --quiet --bench smime -- --output-format bencher 2>/dev/null | grep '^test ')
echo "$results"
rate() { echo "$results" | awk -v name="$1" '$2 == name { gsub(",", "", $5); printf "%.1f", 1e9 / $5 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
inbench=$(rate 4KB/rsa2048-sign)
echo "RSA-2048 signatures inside the same criterion run: ${inbench}/s"
printf '%-14s %12s  %-26s %s\n' operation msg/s "ratio to openssl speed" "ratio to in-run RSA sign"
for op in 4KB/seal 4KB/open 4KB/open-cold 10MB/seal 10MB/open; do
  r=$(rate "$op")
  printf '%-14s %12s  %-26s %s\n' "$op" "$r" "$(ratio "$r" "$speed")" "$(ratio "$r" "$inbench")"
done

echo "== peak memory: hisp message seal of a 10 MB message (database mode, key opened with the KEK)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin="$CARGO_TARGET_DIR/release/hisp"
export HISP_DB="$work/hisp.db" HISP_KEK="bench-kek-0123456789abcdef"
"$bin" init >/dev/null
"$bin" domain add a.example.org >/dev/null
"$bin" domain add b.example.org >/dev/null
"$bin" address add dr.smith@a.example.org >/dev/null
"$bin" address add dr.jones@b.example.org >/dev/null
"$bin" ca init >/dev/null
"$bin" cert issue dr.smith@a.example.org >/dev/null
"$bin" cert issue dr.jones@b.example.org >/dev/null
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
  printf "message %.1f MiB; peak RSS sealing it %.1f MiB = %.2fx its size (%.2fx above the %.1f MiB of sealing a 4 KB message)\n",
    s / 1024, b / 1024, b / s, (b - a) / s, a / 1024 }'
"$bin" message open --in "$work/big.p7m" --out "$work/big.out" 2>/dev/null
cmp -s <(tr -d '\r' < "$work/big.eml" | grep -v '^Date:\|^Message-ID:') <(tr -d '\r' < "$work/big.out" | grep -v '^Date:\|^Message-ID:') \
  && echo "the 10 MB message opened intact" || { echo "the 10 MB message did not round-trip"; exit 1; }
