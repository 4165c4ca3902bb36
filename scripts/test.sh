#!/usr/bin/env bash
# The whole test suite: installs the peers it needs when missing (Debian's openssl CLI, knot,
# knot-dnsutils, slapd, ldap-utils, swaks, curl, postfix for smtp-sink and chromium for the portal;
# the Python S/MIME peer and playwright-core under .peers/; cargo-fuzz), then checks formatting and
# lints, runs every test, and runs every fuzz target briefly on its saved corpus.
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# Debian packages the tests run as real peers.
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
# DNS (knot serves CERT/SRV/A), LDAP (slapd), both started on loopback by tests/discovery.rs.
command -v knotd >/dev/null || missing+=(knot)
command -v slapd >/dev/null || missing+=(slapd)
command -v ldapadd >/dev/null || missing+=(ldap-utils)
# SMTP: swaks plays the EHR against `hisp serve` (tests/daemon.rs).
command -v swaks >/dev/null || missing+=(swaks)
# Postfix's smtp-sink plays a peer MX without STARTTLS (installed unconfigured, never started).
[ -x /usr/sbin/smtp-sink ] || command -v smtp-sink >/dev/null || missing+=(postfix)
# curl plays the EHR against the REST API (tests/api.rs).
command -v curl >/dev/null || missing+=(curl)
# kdig asks `hisp serve`'s DNS publisher.
command -v kdig >/dev/null || missing+=(knot-dnsutils)
# The portal's pages are tested in Debian's Chromium (tests/browser/), driven by Node.js.
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -q
  # slapd: install the binaries only; the tests write their own configuration.
  echo "slapd slapd/no_configuration boolean true" | as_root debconf-set-selections
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}"
fi

# The Python peers: cryptography (signing, decryption) and endesive (encryption, RSA-OAEP);
# aiosmtpd (an SMTP relay with STARTTLS).
peers=.peers/python
if ! PYTHONPATH=$peers python3 -c "import endesive, asn1crypto, requests, aiosmtpd
from cryptography.hazmat.primitives.serialization.pkcs7 import pkcs7_decrypt_smime, PKCS7SignatureBuilder" 2>/dev/null; then
  echo "installing the Python S/MIME peer into $peers"
  mkdir -p "$peers"
  pip_install() { python3 -m pip install -q --disable-pip-version-check --target "$peers" "$@"; }
  # endesive's own dependency list pulls in PDF and HSM tooling the peer does not use.
  pip_install --no-deps endesive==3.0.1 asn1crypto==1.5.1
  python3 -c "import requests" 2>/dev/null || pip_install requests
  # aiosmtpd: a real SMTP server with STARTTLS for the e-mail confirmation-code channel.
  pip_install aiosmtpd==1.4.6
  python3 -c "from cryptography.hazmat.primitives.serialization.pkcs7 import pkcs7_decrypt_smime" 2>/dev/null \
    || pip_install "cryptography>=45"
fi

# playwright-core drives Chromium for the portal's journeys (no browser download: Debian's).
if [ ! -f .peers/node/node_modules/playwright-core/package.json ]; then
  echo "installing playwright-core into .peers/node"
  mkdir -p .peers/node
  (cd .peers/node && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent playwright-core@1.65.2)
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets --features fuzzing -- -D warnings"
cargo clippy --quiet --all-targets --features fuzzing -- -D warnings
echo "== cargo test"
cargo test --all-targets
# Every parser of untrusted bytes has a cargo-fuzz target (fuzz/); each runs its saved corpus and
# a few seconds more, so a regression on a known input fails the suite (cargo-fuzz is installed
# from crates.io when missing; the targets build on the stable toolchain, without a sanitizer).
echo "== fuzz targets (bash fuzz/run.sh 3)"
bash fuzz/run.sh 3
