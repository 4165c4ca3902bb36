//! Shared test fixtures: a throwaway CA and Direct identities issued by it.
#![allow(dead_code)]

use hisp::address::{DirectAddress, Owner};
use hisp::pki::ca::{self, EndEntity};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;

pub const NOW: i64 = 1_795_442_626; // 2026-11-23
pub const DAY: i64 = 86_400;

pub struct Ca {
    pub cert: X509,
    pub key: PKey<Private>,
}

pub struct Identity {
    pub address: DirectAddress,
    pub cert: X509,
    pub key: PKey<Private>,
}

pub fn rsa(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

pub fn ca(name: &str) -> Ca {
    let key = rsa(2048);
    let cert = ca::create_root(&key, name, NOW - 30 * DAY, 3650).unwrap();
    Ca { cert, key }
}

static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(100);

/// An identity for `owner` (address or domain) issued by `ca`, valid [from, until], with an RSA key of `bits`.
pub fn issue_with(ca: &Ca, owner: &str, bits: u32, from: i64, until: i64) -> Identity {
    let key = rsa(bits);
    let owner = Owner::parse(owner).unwrap();
    let profile = EndEntity {
        owner: &owner,
        serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        not_before: from,
        not_after: until,
        crl_url: "http://ca.test.invalid/ca.crl",
        issuer_url: "http://ca.test.invalid/ca.cer",
    };
    let cert = ca::issue(&ca.cert, &ca.key, &key, &profile).unwrap();
    let address = match &owner {
        Owner::Address(a) => a.clone(),
        Owner::Domain(d) => DirectAddress::parse(&format!("postmaster@{d}")).unwrap(),
    };
    Identity { address, cert, key }
}

pub fn issue(ca: &Ca, owner: &str) -> Identity {
    issue_with(ca, owner, 2048, NOW - DAY, NOW + 365 * DAY)
}

pub fn message(from: &str, to: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Dr. Sender <{from}>\r\nTo: {to}\r\nSubject: Referral\r\nDate: Mon, 23 Nov 2026 14:00:00 +0000\r\n\
         Message-ID: <test-1@example.org>\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
}
