#!/usr/bin/env bash
# The demo: two practices on two hisp nodes (one process, two databases, two development CAs, each
# node publishing its certificates in DNS and its CRL over HTTP on loopback) exchange the real HL7
# C-CDA referral note: SMTP submission with STARTTLS + AUTH at node A, discovery of the recipient's
# certificate in node B's DNS, seal, delivery to B's MX, open at B, and delivery into the Maildir of
# dr.jones, where the attachment is checked byte for byte. Prints the timeline; exit 0 on success.
#
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --bin hisp
exec "$CARGO_TARGET_DIR/release/hisp" demo
