//! Shared test fixtures: a throwaway CA and Direct identities issued by it.
#![allow(dead_code)]

pub(crate) mod api;
pub(crate) mod browser;
pub(crate) mod network;
pub(crate) mod node;
pub(crate) mod pki;
pub(crate) mod relay;
pub(crate) mod servers;

use hisp::address::{DirectAddress, Owner};
use hisp::pki::ca::{self, EndEntity};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;

/// Now, read once from the clock: the hisp binary under test reads the real clock, so the
/// certificates and CRLs made here must be current whenever the suite runs.
pub(crate) static NOW: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
});
pub(crate) const DAY: i64 = 86_400;

pub(crate) struct Ca {
    pub cert: X509,
    pub key: PKey<Private>,
}

pub(crate) struct Identity {
    pub address: DirectAddress,
    pub cert: X509,
    pub key: PKey<Private>,
}

pub(crate) fn rsa(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

pub(crate) fn ca(name: &str) -> Ca {
    let key = rsa(2048);
    let cert = ca::create_root(&key, name, *NOW - 30 * DAY, 3650).unwrap();
    Ca { cert, key }
}

/// An identity for `owner` (address or domain) issued by `ca`, valid [from, until], with an RSA key of `bits`.
pub(crate) fn issue_with(ca: &Ca, owner: &str, bits: u32, from: i64, until: i64) -> Identity {
    issue_at(ca, owner, bits, from, until, "http://ca.test.invalid/ca.crl", "http://ca.test.invalid/ca.cer")
}

/// As `issue_with`, naming where the CRL and the issuer's certificate are published.
pub(crate) fn issue_at(
    ca: &Ca,
    owner: &str,
    bits: u32,
    from: i64,
    until: i64,
    crl_url: &str,
    issuer_url: &str,
) -> Identity {
    let key = rsa(bits);
    let owner = Owner::parse(owner).unwrap();
    let profile = EndEntity { owner: &owner, not_before: from, not_after: until, crl_url, issuer_url };
    let cert = ca::issue(&ca.cert, &ca.key, &key, &profile).unwrap();
    let address = match &owner {
        Owner::Address(a) => a.clone(),
        Owner::Domain(d) => DirectAddress::parse(&format!("postmaster@{d}")).unwrap(),
    };
    Identity { address, cert, key }
}

/// An intermediate CA issued by `parent`, whose revocation `parent` publishes at `crl_url`.
pub(crate) fn intermediate(parent: &Ca, name: &str, crl_url: &str) -> Ca {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::x509::extension::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectKeyIdentifier};
    use openssl::x509::X509NameBuilder;
    let key = rsa(2048);
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_text("CN", name).unwrap();
    let subject = subject.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&ca::random_serial().unwrap()).unwrap();
    b.set_subject_name(&subject).unwrap();
    b.set_issuer_name(parent.cert.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix((*NOW - 30 * DAY) as libc::time_t).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix((*NOW + 3000 * DAY) as libc::time_t).unwrap()).unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&parent.cert), None)).unwrap();
    b.append_extension(ski).unwrap();
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(&parent.cert), None)).unwrap();
    b.append_extension(aki).unwrap();
    b.append_extension(ca::crl_distribution_point(crl_url).unwrap()).unwrap();
    b.sign(&parent.key, MessageDigest::sha256()).unwrap();
    Ca { cert: b.build(), key }
}

/// A CRL of `ca` listing `revoked` (revoked a day before NOW), valid [this_update, next_update], DER.
pub(crate) fn crl(ca: &Ca, revoked: &[&Identity], this_update: i64, next_update: i64) -> Vec<u8> {
    let revoked: Vec<ca::RevokedSerial> = revoked
        .iter()
        .map(|id| ca::RevokedSerial {
            serial: id.cert.serial_number().to_bn().unwrap().to_vec(),
            revoked_at: *NOW - DAY,
        })
        .collect();
    ca::crl(&ca.cert, &ca.key, &revoked, this_update, next_update).unwrap().to_der().unwrap()
}

pub(crate) fn issue(ca: &Ca, owner: &str) -> Identity {
    issue_with(ca, owner, 2048, *NOW - DAY, *NOW + 365 * DAY)
}

pub(crate) fn message(from: &str, to: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Dr. Sender <{from}>\r\nTo: {to}\r\nSubject: Referral\r\nDate: Mon, 23 Nov 2026 14:00:00 +0000\r\n\
         Message-ID: <test-1@example.org>\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
}

/// A self-signed TLS certificate and key for localhost (PEM files in `files`, named by `name`),
/// made by the openssl CLI: for servers under test that clients must reach over TLS.
pub(crate) fn localhost_tls(files: &Files, name: &str) -> (String, String) {
    self_signed_tls(files, name, "/CN=localhost", "DNS:localhost")
}

/// A self-signed TLS certificate and key with this subject and subjectAltName (PEM files in
/// `files`, named by `name`), made by the openssl CLI.
pub(crate) fn self_signed_tls(files: &Files, name: &str, subject: &str, alt_names: &str) -> (String, String) {
    let (cert, key) = (files.p(&format!("{name}.pem")), files.p(&format!("{name}.key")));
    let alt_names = format!("subjectAltName={alt_names}");
    openssl(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &cert, "-days", "2", "-subj",
        subject, "-addext", &alt_names,
    ]);
    (cert, key)
}

/// A scratch directory with PEM files for a CA and identities, and runners for the real tools.
pub(crate) struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub(crate) fn new() -> Files {
        Files { dir: tempfile::tempdir().unwrap() }
    }

    pub(crate) fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    pub(crate) fn write(&self, name: &str, data: &[u8]) -> String {
        std::fs::write(self.path(name), data).unwrap();
        self.p(name)
    }

    pub(crate) fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Writes `<name>.pem` and `<name>.key`.
    pub(crate) fn identity(&self, name: &str, id: &Identity) {
        self.write(&format!("{name}.pem"), &id.cert.to_pem().unwrap());
        self.write(&format!("{name}.key"), &id.key.private_key_to_pem_pkcs8().unwrap());
    }

    pub(crate) fn ca(&self, name: &str, ca: &Ca) {
        self.write(&format!("{name}.pem"), &ca.cert.to_pem().unwrap());
        self.write(&format!("{name}.key"), &ca.key.private_key_to_pem_pkcs8().unwrap());
    }
}

pub(crate) struct Run {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.text(), self.stderr))
    }

    pub(crate) fn ok(self) -> Run {
        assert_eq!(self.status, 0, "failed: {}\nstdout: {}", self.stderr, self.text());
        self
    }
}

pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove("HISP_DB").env_remove("HISP_CONFIG").env_remove("HISP_KEK");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn hisp(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    run(env!("CARGO_BIN_EXE_hisp"), args, stdin, env)
}

pub(crate) fn openssl(args: &[&str]) -> Run {
    run("openssl", args, None, &[]).ok()
}

/// The Python peer, with the packages `scripts/test.sh` installs under `.peers/python`.
pub(crate) fn py_peer(args: &[&str]) -> Run {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = root.join(".peers/python");
    assert!(
        site.join("endesive").exists(),
        "the Python peers are not installed: run `bash scripts/test.sh` (it installs them)"
    );
    let script = root.join("tests/peers/py_peer.py");
    let mut all = vec![script.to_str().unwrap()];
    all.extend_from_slice(args);
    run("python3", &all, None, &[("PYTHONPATH", site.to_str().unwrap())])
}

/// An identity-proofing form that passes the rules: an adult representative with an individual
/// NPI (the NPI standard's own example) and a phone in E.164.
pub(crate) fn proofing_form() -> serde_json::Value {
    serde_json::json!({
        "business": {"name": "Smith Pediatrics"},
        "representative": {"first_name": "Jane", "last_name": "Smith", "date_of_birth": "1975-06-01",
            "personal_email": "jane.smith@example.org",
            "home_address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"}},
        "government_id": {"npi": "1234567893"},
        "financial_id": {"phone": "+15555550123"}
    })
}
