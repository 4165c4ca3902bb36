//! Hostile input never panics: every parser of untrusted bytes (MIME, BER/DER, CMS structure,
//! S/MIME open and inspect, trust bundles, addresses, multipart bodies) is fed thousands of
//! mutations of valid inputs — bit flips, truncations, insertions, duplicated spans — from a fixed
//! seed, and must answer with a value or an error. A failure prints the seed and the case.

mod common;

use common::*;
use hisp::fetch::StaticFetcher;
use hisp::smime::mime::{self, Entity};
use hisp::smime::open::{open, OpenTrust, RecipientKey};
use hisp::smime::seal::{seal, SealOptions, SignerIdentity};
use hisp::trust::revocation::{FailMode, Policy};
use hisp::trust::FixedAnchors;

/// xorshift64*: deterministic, so a failing case can be replayed from its number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        if out.is_empty() {
            out.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = rng.next() as u8,
            2 => out.truncate(at),
            3 => out.insert(at, [0x00, 0x80, 0xFF, 0x30, b'\n', b'-'][rng.below(6)]),
            4 => {
                let end = (at + rng.below(64)).min(out.len());
                let span = out[at..end].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, span);
            }
            _ => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out
}

/// Runs `check` on `cases` mutations of each of `seeds`, reporting the case that panicked.
fn fuzz(name: &str, seeds: &[Vec<u8>], cases: usize, check: impl Fn(&[u8])) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..cases {
        let seed = &seeds[case % seeds.len()];
        let input = mutate(seed, &mut rng);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        assert!(outcome.is_ok(), "{name}: case {case} panicked on input {:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn parsers_of_untrusted_bytes_never_panic() {
    let ca = ca("Fuzz CA");
    let alice = issue(&ca, "alice@a.example.org");
    let bob = issue(&ca, "bob@b.example.org");
    let signer = SignerIdentity::new(alice.cert.clone(), alice.key.clone(), Vec::new()).unwrap();
    let plain = message("alice@a.example.org", "bob@b.example.org", "Referral attached.");
    let sealed =
        seal(plain.clone(), &signer, std::slice::from_ref(&bob.cert), SealOptions::default(), *NOW).unwrap().message;
    let der = Entity::parse(&sealed).decoded_body().unwrap().into_owned();
    let keys = [RecipientKey { cert: bob.cert.clone(), key: bob.key.clone(), domain: None }];
    let anchors = FixedAnchors(vec![ca.cert.clone()]);

    // The decrypted layer (multipart/signed with a SignedData), reached through bob's key.
    let opened_der = {
        let ci = openssl::cms::CmsContentInfo::from_der(&der).unwrap();
        ci.decrypt(&bob.key, &bob.cert).unwrap()
    };

    fuzz("mime", &[sealed.clone(), plain.clone(), opened_der.clone()], 3000, |b| {
        let e = Entity::parse(b);
        let ct = e.content_type();
        let _ = e.decoded_body();
        if let Some(boundary) = ct.param("boundary") {
            let _ = mime::multipart_parts(e.body, boundary);
        }
        let _ = mime::addresses(&String::from_utf8_lossy(b));
        let _ = mime::decode_base64(b);
    });
    fuzz("der+cms", std::slice::from_ref(&der), 3000, |b| {
        let _ = hisp::der::parse(b);
        let _ = hisp::smime::structure::parse(b);
        let _ = hisp::bundle::anchors(b, None);
        let _ = hisp::pki::load_certs(b, "fuzz");
    });
    fuzz("inspect", std::slice::from_ref(&sealed), 1500, |b| {
        let _ = hisp::smime::inspect::inspect(b);
    });
    let fetch =
        StaticFetcher([("http://ca.test.invalid/ca.crl".to_string(), crl(&ca, &[], *NOW - DAY, *NOW + DAY))].into());
    let trust = OpenTrust { anchors: &anchors, revocation: Policy { fetch: &fetch, mode: FailMode::Hard }, now: *NOW };
    fuzz("open", std::slice::from_ref(&sealed), 600, |b| {
        let _ = open(b, &keys, &trust);
    });
    fuzz("addresses", &[b"Dr. Bob <bob@b.example.org>".to_vec(), b"b.example.org".to_vec()], 3000, |b| {
        let text = String::from_utf8_lossy(b);
        let _ = hisp::address::DirectAddress::parse(&text);
        let _ = hisp::address::Owner::parse(&text);
    });
}
