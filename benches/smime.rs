//! Seal and open throughput (one core): a 4 KB message and a 10 MB C-CDA/PDF message.
//! `bench/ratio.sh` turns the 4 KB figures into a ratio against `openssl speed rsa2048`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hisp::address::Owner;
use hisp::fetch::StaticFetcher;
use hisp::pki::ca;
use hisp::smime::mime;
use hisp::smime::open::{open, OpenTrust, RecipientKey};
use hisp::smime::seal::{seal, SealOptions, SignerIdentity};
use hisp::trust::revocation::{FailMode, Policy};
use hisp::trust::FixedAnchors;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

const NOW: i64 = 1_795_442_626;

struct Party {
    cert: X509,
    key: PKey<Private>,
}

fn party(ca_cert: &X509, ca_key: &PKey<Private>, owner: &str) -> Party {
    let key = ca::generate_rsa(2048).unwrap();
    let owner = Owner::parse(owner).unwrap();
    let profile = ca::EndEntity {
        owner: &owner,
        not_before: NOW - 86_400,
        not_after: NOW + 365 * 86_400,
        crl_url: "http://ca.bench.invalid/ca.crl",
        issuer_url: "http://ca.bench.invalid/ca.cer",
    };
    Party { cert: ca::issue(ca_cert, ca_key, &key, &profile).unwrap(), key }
}

/// A referral with a PDF/C-CDA attachment, padded with the fixture documents to `size` bytes.
pub fn message_of_size(size: usize) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ccda");
    let pdf = std::fs::read(root.join("ud-sample.pdf")).unwrap();
    let ccda = std::fs::read(root.join("referral-note.xml")).unwrap();
    let mut msg = b"From: dr.smith@a.example.org\r\nTo: dr.jones@b.example.org\r\nSubject: Referral\r\n\
Date: Mon, 23 Nov 2026 14:00:00 +0000\r\nMessage-ID: <bench@a.example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nReferral attached.\r\n"
        .to_vec();
    let mut payload = Vec::new();
    while payload.len() * 4 / 3 + msg.len() + 200 < size {
        payload.extend_from_slice(if payload.len() % 2 == 0 { &pdf } else { &ccda });
    }
    payload.truncate(((size.saturating_sub(msg.len() + 200)) * 3 / 4).max(1));
    msg.extend_from_slice(b"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    mime::encode_base64_lines(&payload, &mut msg);
    msg.extend_from_slice(b"--b1--\r\n");
    msg
}

fn bench(c: &mut Criterion) {
    let ca_key = ca::generate_rsa(2048).unwrap();
    let ca_cert = ca::create_root(&ca_key, "Bench CA", NOW - 86_400, 3650).unwrap();
    let alice = party(&ca_cert, &ca_key, "dr.smith@a.example.org");
    let bob = party(&ca_cert, &ca_key, "dr.jones@b.example.org");
    let signer = SignerIdentity::new(alice.cert.clone(), alice.key.clone(), Vec::new()).unwrap();
    let recipients = vec![bob.cert.clone()];
    let anchors = FixedAnchors(vec![ca_cert.clone()]);
    // The CA's CRL as the node would have fetched it: every open checks the signer's revocation.
    let crl = ca::crl(&ca_cert, &ca_key, &[], NOW - 86_400, NOW + 7 * 86_400).unwrap().to_der().unwrap();
    let fetch = StaticFetcher([("http://ca.bench.invalid/ca.crl".to_string(), crl)].into());
    let trust = OpenTrust { anchors: &anchors, revocation: Policy { fetch: &fetch, mode: FailMode::Hard }, now: NOW };
    let keys = vec![RecipientKey { cert: bob.cert.clone(), key: bob.key.clone(), domain: None }];

    for (label, size, samples) in [("4KB", 4 * 1024, 100), ("10MB", 10 * 1024 * 1024, 10)] {
        let message = message_of_size(size);
        let sealed = seal(message.clone(), &signer, &recipients, SealOptions::default(), NOW).unwrap().message;
        let mut group = c.benchmark_group(label);
        group.sample_size(samples);
        group.throughput(Throughput::Bytes(message.len() as u64));
        if size < 1024 * 1024 {
            // The reference, measured beside the others: one RSA-2048 private-key operation.
            group.bench_function("rsa2048-sign", |b| {
                b.iter(|| {
                    let mut signer =
                        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &alice.key).unwrap();
                    signer.update(b"reference").unwrap();
                    signer.sign_to_vec().unwrap()
                })
            });
        }
        group.bench_function("seal", |b| {
            b.iter(|| seal(message.clone(), &signer, &recipients, SealOptions::default(), NOW).unwrap())
        });
        group.bench_function("open", |b| b.iter(|| open(&sealed, &keys, &trust).unwrap()));
        if size < 1024 * 1024 {
            // A signer never seen before: its certificate parsed and its path built from scratch.
            group.bench_function("open-cold", |b| {
                b.iter(|| {
                    hisp::pki::cert_cache::clear();
                    hisp::trust::chain::clear_cache();
                    hisp::trust::revocation::clear_cache();
                    open(&sealed, &keys, &trust).unwrap()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
