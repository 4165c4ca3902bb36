//! The provisioning CLI against a real database file: what an operator does, start to finish.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::node::*;
use common::*;

impl Node {
    /// A hosted domain with the dev CA as its anchor, an address, and an issued certificate.
    fn practice(&self, domain: &str, user: &str) {
        self.ok(&["domain", "add", domain]);
        self.ok(&["proofing", "approve", domain, "--out-of-band", "--reason", "test practice"]);
        self.ok(&["address", "add", &format!("{user}@{domain}")]);
        if self.run(&["ca", "show"]).status != 0 {
            self.ok(&["ca", "init"]);
        }
        let ca = self.files.p("dev-ca.pem");
        self.ok(&["ca", "export", "--force", "--out", &ca]);
        self.ok(&["anchor", "add", &ca, "--domain", domain, "--incoming", "--outgoing"]);
        self.ok(&["cert", "issue", &format!("{user}@{domain}")]);
        if self.web.is_some() {
            self.publish_ca();
        }
    }
}

#[test]
fn init_creates_a_private_database_once() {
    let node = Node::new();
    let meta = std::fs::metadata(&node.db).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir = std::fs::metadata(node.files.path("data")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    let again = node.run(&["init"]);
    assert_eq!(again.status, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // WAL mode and the schema version are in place.
    assert_eq!(node.sql("PRAGMA journal_mode"), vec![b"wal".to_vec()]);
    assert_eq!(node.sql("PRAGMA user_version"), vec![format!("Integer({})", hisp::store::SCHEMA_VERSION).into_bytes()]);
}

#[test]
fn commands_without_a_database_say_how_to_make_one() {
    let files = Files::new();
    let run = hisp(&["domain", "list"], None, &[("HISP_DB", &files.p("none.db"))]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("hisp init"), "{}", run.stderr);
}

#[test]
fn config_and_env_select_the_database() {
    let files = Files::new();
    let config = files.write("hisp.toml", format!("[database]\npath = \"{}\"\n", files.p("from-config.db")).as_bytes());
    hisp(&["--config", &config, "init"], None, &[]).ok();
    assert!(files.path("from-config.db").exists());
    hisp(&["init"], None, &[("HISP_CONFIG", &config), ("HISP_DB", &files.p("from-env.db"))]).ok();
    assert!(files.path("from-env.db").exists(), "HISP_DB overrides the config");
    hisp(&["--db", &files.p("from-flag.db"), "init"], None, &[("HISP_CONFIG", &config)]).ok();
    assert!(files.path("from-flag.db").exists());

    let bad = files.write("bad.toml", b"[database]\npath = \"x.db\"\ntypo = 1\n");
    let run = hisp(&["--config", &bad, "init"], None, &[]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("typo"), "{}", run.stderr);
    // The shipped example parses and is accepted by the binary.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/hisp.example.toml");
    hisp(&["--config", example, "--db", &files.p("example.db"), "init"], None, &[]).ok();
}

#[test]
fn domains_and_addresses() {
    let node = Node::new();
    node.ok(&["domain", "add", "SmithPeds.Direct.Example.org", "--practice", "Smith Pediatrics"]);
    let domains = node.json(&["domain", "list"]);
    assert_eq!(domains[0]["domain"], "smithpeds.direct.example.org");
    assert_eq!(domains[0]["practice"], "Smith Pediatrics");
    assert_eq!(node.run(&["domain", "add", "smithpeds.direct.example.org"]).status, 1, "duplicate refused");
    assert_eq!(node.run(&["domain", "add", "not a domain"]).status, 2, "bad input is a usage error");

    node.run_in(
        &["address", "add", "dr.smith@smithpeds.direct.example.org", "--password-stdin"],
        Some(b"correct horse battery\n"),
    )
    .ok();
    let stored = node.sql("SELECT password_hash FROM addresses");
    assert!(stored[0].starts_with(b"$argon2id$"), "{:?}", String::from_utf8_lossy(&stored[0]));
    assert!(!stored[0].windows(7).any(|w| w == b"correct"));
    let short =
        node.run_in(&["address", "add", "x@smithpeds.direct.example.org", "--password-stdin"], Some(b"short\n"));
    assert_eq!(short.status, 1);
    assert!(short.stderr.contains("12 characters"), "{}", short.stderr);
    let orphan = node.run(&["address", "add", "a@elsewhere.example.org"]);
    assert_eq!(orphan.status, 1);
    assert!(orphan.stderr.contains("domain add"), "{}", orphan.stderr);

    node.run_in(
        &["address", "passwd", "dr.smith@smithpeds.direct.example.org", "--password-stdin"],
        Some(b"another long password\n"),
    )
    .ok();
    assert_ne!(node.sql("SELECT password_hash FROM addresses"), stored);
    let list = node.json(&["address", "list"]);
    assert_eq!(list[0]["address"], "dr.smith@smithpeds.direct.example.org");
    assert_eq!(list[0]["has_password"], true);

    let busy = node.run(&["domain", "remove", "smithpeds.direct.example.org"]);
    assert_eq!(busy.status, 1);
    assert!(busy.stderr.contains("--cascade"), "{}", busy.stderr);
    // Removing with what it holds says what goes, and needs --yes (no terminal to ask at).
    let unasked = node.run(&["domain", "remove", "smithpeds.direct.example.org", "--cascade"]);
    assert_eq!(unasked.status, 1);
    assert!(unasked.stderr.contains("1 addresses") && unasked.stderr.contains("--yes"), "{}", unasked.stderr);
    assert_eq!(node.json(&["address", "list"]).as_array().unwrap().len(), 1, "nothing removed");
    let removed = node.json(&["domain", "remove", "smithpeds.direct.example.org", "--cascade", "--yes"]);
    assert_eq!(removed["removed"]["addresses"], 1, "{removed}");
    assert_eq!(node.json(&["address", "list"]), serde_json::json!([]));

    let audit = node.json(&["audit"]);
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["domain.add", "address.add", "address.passwd", "domain.remove"] {
        assert!(actions.contains(&expected), "{actions:?}");
    }
}

#[test]
fn issued_certificates_follow_the_directtrust_profile() {
    let node = Node::new();
    node.practice("smithpeds.direct.example.org", "dr.smith");
    node.ok(&["cert", "issue", "smithpeds.direct.example.org", "--days", "30"]);
    let pem = node.files.p("smith.pem");
    node.ok(&["cert", "export", "dr.smith@smithpeds.direct.example.org", "--out", &pem]);
    let text = openssl(&["x509", "-in", &pem, "-noout", "-text"]).text();
    for expected in [
        "Public-Key: (2048 bit)",
        "sha256WithRSAEncryption",
        "X509v3 Key Usage: critical",
        "Digital Signature, Key Encipherment",
        "E-mail Protection",
        "CA:FALSE",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "email:dr.smith@smithpeds.direct.example.org",
        "URI:http://ca.hisp.invalid/ca.crl",
        "CA Issuers - URI:http://ca.hisp.invalid/ca.cer",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    let domain_pem = node.files.p("domain.pem");
    node.ok(&["cert", "export", "smithpeds.direct.example.org", "--out", &domain_pem]);
    let text = openssl(&["x509", "-in", &domain_pem, "-noout", "-text"]).text();
    assert!(text.contains("DNS:smithpeds.direct.example.org"), "{text}");
    // Both chain to the exported development CA.
    openssl(&["verify", "-CAfile", &node.files.p("dev-ca.pem"), "-purpose", "smimesign", &pem, &domain_pem]);

    let certs = node.json(&["cert", "list"]);
    assert_eq!(certs.as_array().unwrap().len(), 2);
    assert!(certs.as_array().unwrap().iter().all(|c| c["has_key"] == true));
    let small = node.run(&["cert", "issue", "dr.smith@smithpeds.direct.example.org", "--bits", "1024"]);
    assert_eq!(small.status, 1);
    assert!(small.stderr.contains("2048"), "{}", small.stderr);
    let der = node.files.p("smith.der");
    node.ok(&["cert", "export", &certs[0]["sha256"].as_str().unwrap()[..12], "--der", "--out", &der]);
    openssl(&["x509", "-inform", "DER", "-in", &der, "-noout"]);
}

#[test]
fn private_keys_are_encrypted_under_the_kek() {
    let node = Node::new();
    node.practice("smithpeds.direct.example.org", "dr.smith");
    for sealed in node.sql("SELECT sealed FROM private_keys") {
        assert!(!sealed.windows(5).any(|w| w == b"BEGIN"), "no PEM in the database");
        // A PKCS#8 RSA key starts with SEQUENCE, INTEGER 0, rsaEncryption; none may be in the clear.
        let pkcs8_rsa = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(!sealed.windows(pkcs8_rsa.len()).any(|w| w == pkcs8_rsa));
    }
    let wrong = hisp(
        &["cert", "issue", "smithpeds.direct.example.org"],
        None,
        &[("HISP_DB", &node.db), ("HISP_KEK", "some-other-secret-value")],
    );
    assert_eq!(wrong.status, 1);
    assert!(wrong.stderr.contains("wrong key-encryption key"), "{}", wrong.stderr);
    let missing = hisp(&["cert", "issue", "smithpeds.direct.example.org"], None, &[("HISP_DB", &node.db)]);
    assert_eq!(missing.status, 1);
    assert!(missing.stderr.contains("HISP_KEK"), "{}", missing.stderr);
    // The KEK may also come from a file named in the config.
    let kek_file = node.files.write("kek", format!("{KEK}\n").as_bytes());
    let config = node.files.write("k.toml", format!("[keys]\nkek_file = \"{kek_file}\"\n").as_bytes());
    hisp(&["--config", &config, "cert", "issue", "smithpeds.direct.example.org"], None, &[("HISP_DB", &node.db)]).ok();
}

#[test]
fn certificates_import_from_pkcs12_and_pem_and_csr() {
    let node = Node::new();
    node.ok(&["domain", "add", "jones.example.org"]);
    node.ok(&["address", "add", "dr.jones@jones.example.org"]);
    node.ok(&["address", "add", "nurse@jones.example.org"]);
    let f = &node.files;
    let ca = ca("Real CA");
    f.ca("real-ca", &ca);
    f.identity("jones", &issue(&ca, "dr.jones@jones.example.org"));

    // PKCS#12 with a password on standard input.
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        &f.p("jones.pem"),
        "-inkey",
        &f.p("jones.key"),
        "-out",
        &f.p("jones.p12"),
        "-passout",
        "pass:s3cret",
    ]);
    node.run_in(
        &["cert", "import", "dr.jones@jones.example.org", "--pkcs12", &f.p("jones.p12"), "--password-stdin"],
        Some(b"s3cret\n"),
    )
    .ok();
    let bad = node.run_in(
        &["cert", "import", "dr.jones@jones.example.org", "--pkcs12", &f.p("jones.p12"), "--password-stdin"],
        Some(b"nope\n"),
    );
    assert!(bad.stderr.contains("PKCS#12"), "{}", bad.stderr);

    // PEM cert + key for the wrong owner, and with a key that is not its own.
    let wrong_owner = node.run(&[
        "cert",
        "import",
        "nurse@jones.example.org",
        "--cert",
        &f.p("jones.pem"),
        "--key",
        &f.p("jones.key"),
    ]);
    assert_eq!(wrong_owner.status, 1);
    assert!(wrong_owner.stderr.contains("not to nurse@jones.example.org"), "{}", wrong_owner.stderr);
    f.identity("nurse", &issue(&ca, "nurse@jones.example.org"));
    let mismatch = node.run(&[
        "cert",
        "import",
        "nurse@jones.example.org",
        "--cert",
        &f.p("nurse.pem"),
        "--key",
        &f.p("jones.key"),
    ]);
    assert_eq!(mismatch.status, 1);
    assert!(mismatch.stderr.contains("does not belong"), "{}", mismatch.stderr);
    node.ok(&["cert", "import", "nurse@jones.example.org", "--cert", &f.p("nurse.pem"), "--key", &f.p("nurse.key")]);

    // CSR: the key stays in the node; the CA signs; the certificate is imported alone.
    node.ok(&["cert", "csr", "jones.example.org", "--out", &f.p("req.pem")]);
    let req = openssl(&["req", "-in", &f.p("req.pem"), "-noout", "-text", "-verify"]).text();
    assert!(req.contains("DNS:jones.example.org"), "{req}");
    f.write("ext.cnf", b"subjectAltName=DNS:jones.example.org\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nbasicConstraints=critical,CA:FALSE\n");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &f.p("req.pem"),
        "-CA",
        &f.p("real-ca.pem"),
        "-CAkey",
        &f.p("real-ca.key"),
        "-set_serial",
        "77",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        &f.p("ext.cnf"),
        "-out",
        &f.p("signed.pem"),
    ]);
    node.ok(&["cert", "import", "jones.example.org", "--cert", &f.p("signed.pem")]);
    let list = node.json(&["cert", "list", "--owner", "jones.example.org"]);
    assert_eq!(list[0]["has_key"], true);
    assert_eq!(list[0]["binding"], "domain");

    let orphan = node.run(&["cert", "import", "jones.example.org", "--cert", &f.p("nurse.pem")]);
    assert_eq!(orphan.status, 1);
}

#[test]
fn anchors_per_domain_and_direction() {
    let node = Node::new();
    node.ok(&["domain", "add", "a.example.org"]);
    let f = &node.files;
    f.ca("one", &ca("One"));
    f.ca("two", &ca("Two"));
    let usage = node.run(&["anchor", "add", &f.p("one.pem"), "--domain", "a.example.org"]);
    assert_eq!(usage.status, 2, "a usage error");
    assert!(usage.stderr.contains("--incoming"), "{}", usage.stderr);
    node.ok(&["anchor", "add", &f.p("one.pem"), "--domain", "a.example.org", "--incoming"]);
    openssl(&["x509", "-in", &f.p("two.pem"), "-outform", "DER", "-out", &f.p("two.der")]);
    node.ok(&["anchor", "add", &f.p("two.der"), "--domain", "a.example.org", "--outgoing"]);
    let anchors = node.json(&["anchor", "list", "--domain", "a.example.org"]);
    assert_eq!(anchors.as_array().unwrap().len(), 2);
    let one = anchors.as_array().unwrap().iter().find(|a| a["subject"].as_str().unwrap().contains("One")).unwrap();
    assert_eq!((one["incoming"].as_bool(), one["outgoing"].as_bool()), (Some(true), Some(false)));
    node.ok(&["anchor", "remove", one["sha256"].as_str().unwrap(), "--domain", "a.example.org"]);
    assert_eq!(node.json(&["anchor", "list"]).as_array().unwrap().len(), 1);
    let garbage = f.write("garbage.pem", b"not a certificate");
    assert_eq!(node.run(&["anchor", "add", &garbage, "--domain", "a.example.org", "--incoming"]).status, 1);
}

/// Two practices on two nodes: A seals with its stored key to B's published certificate; B opens
/// with its stored key and its incoming anchors.
#[test]
fn two_nodes_exchange_a_referral() {
    let a = Node::with_published_ca();
    let b = Node::with_published_ca();
    a.practice("smithpeds.direct.example.org", "dr.smith");
    b.practice("jones.direct.example.org", "dr.jones");
    let f = &a.files;
    b.ok(&["cert", "export", "dr.jones@jones.direct.example.org", "--out", &f.p("jones.pem")]);
    let msg = f.write(
        "referral.eml",
        b"From: dr.smith@smithpeds.direct.example.org\nTo: dr.jones@jones.direct.example.org\nSubject: Referral\n\nPlease see Ms. Doe.\n",
    );
    let sealed = f.p("sealed.eml");
    let report = a.json(&["message", "seal", "--in", &msg, "--out", &sealed, "--recipient-cert", &f.p("jones.pem")]);
    assert_eq!(report["recipients"], serde_json::json!(["dr.jones@jones.direct.example.org"]));

    // B does not trust A's CA yet.
    let refused = b.run(&["--json", "message", "open", "--in", &sealed]);
    assert_eq!(refused.status, 1);
    assert_eq!(refused.json()["error"]["code"], "untrusted");
    // Once B trusts A's CA for incoming mail, the message opens.
    b.ok(&["anchor", "add", &a.files.p("dev-ca.pem"), "--domain", "jones.direct.example.org", "--incoming"]);
    let opened = b.ok(&["message", "open", "--in", &sealed]);
    assert!(opened.text().contains("Please see Ms. Doe."), "{}", opened.text());
    assert!(opened.stderr.contains("address-bound"), "{}", opened.stderr);
    // The decrypted message written to a file is for its owner's eyes only, even over a 0644 file.
    let plain = b.files.write("opened.eml", b"");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    b.ok(&["message", "open", "--in", &sealed, "--out", &plain]);
    let mode = std::fs::metadata(&plain).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&plain).unwrap().contains("Please see Ms. Doe."));

    // A Cc with no --recipient-cert of its own is refused, named, rather than left unable to open it.
    let copied = f.write(
        "cc.eml",
        b"From: dr.smith@smithpeds.direct.example.org\nTo: dr.jones@jones.direct.example.org\nCc: nurse@jones.direct.example.org\nSubject: Referral\n\nSee her.\n",
    );
    let uncovered = a.run(&["message", "seal", "--in", &copied, "--recipient-cert", &f.p("jones.pem")]);
    assert_eq!(uncovered.status, 1);
    assert!(uncovered.stderr.contains("nurse@jones.direct.example.org"), "{}", uncovered.stderr);

    // A sender who is not hosted, or a recipient with no known certificate, is a clear error.
    let stranger = f.write("s.eml", b"From: x@elsewhere.example.org\nTo: dr.jones@jones.direct.example.org\n\nhi\n");
    assert!(a.run(&["message", "seal", "--in", &stranger]).stderr.contains("not an address hosted here"));
    let unknown = a.run(&["message", "seal", "--in", &msg]);
    assert!(unknown.stderr.contains("--recipient-cert"), "{}", unknown.stderr);
}

#[test]
fn inspect_describes_a_sealed_message() {
    let a = Node::with_published_ca();
    a.practice("a.example.org", "alice");
    a.ok(&["address", "add", "bob@a.example.org"]);
    a.ok(&["cert", "issue", "bob@a.example.org"]);
    let f = &a.files;
    let msg = f.write("m.eml", b"From: alice@a.example.org\nTo: bob@a.example.org\nSubject: hi\n\nhello\n");
    let sealed = f.p("sealed.eml");
    a.ok(&["message", "seal", "--in", &msg, "--out", &sealed, "--key-transport", "rsa-oaep"]);
    let report = hisp(&["--json", "message", "inspect", "--in", &sealed], None, &[]).ok().json();
    let layer = &report["layers"][0];
    assert_eq!(layer["kind"], "encrypted (EnvelopedData)");
    let details = layer["details"].to_string();
    assert!(details.contains("AES-256-CBC") && details.contains("RSA-OAEP"), "{details}");
    assert_eq!(
        layer["details"].as_array().unwrap().iter().filter(|d| d[0] == "recipient").count(),
        2,
        "bob and alice herself"
    );
    // What anyone can read of it (no key): the routing fields and a neutral subject.
    let text = hisp(&["message", "inspect", "--in", &sealed], None, &[]).ok().text();
    assert!(text.contains("Subject: Secure message") && !text.contains("Subject: hi"), "{text}");
    // Bob's copy opens from the same database, by his own key.
    let opened = a.ok(&["message", "open", "--in", &sealed]);
    assert!(opened.text().contains("hello"));
}

/// The development CA revokes a certificate: it is listed as revoked, no longer signs, goes on the
/// published CRL, and a peer refuses what was signed with it.
#[test]
fn a_revoked_certificate_is_refused_by_the_peer_and_no_longer_signs() {
    let a = Node::with_published_ca();
    let b = Node::with_published_ca();
    a.practice("smithpeds.direct.example.org", "dr.smith");
    b.practice("jones.direct.example.org", "dr.jones");
    b.ok(&["anchor", "add", &a.files.p("dev-ca.pem"), "--domain", "jones.direct.example.org", "--incoming"]);
    let f = &a.files;
    b.ok(&["cert", "export", "dr.jones@jones.direct.example.org", "--out", &f.p("jones.pem")]);
    let msg = f.write(
        "referral.eml",
        b"From: dr.smith@smithpeds.direct.example.org\nTo: dr.jones@jones.direct.example.org\nSubject: Referral\n\nSee Ms. Doe.\n",
    );
    let sealed = f.p("sealed.eml");
    a.ok(&["message", "seal", "--in", &msg, "--out", &sealed, "--recipient-cert", &f.p("jones.pem")]);
    let opened = b.json(&["message", "open", "--in", &sealed, "--out", &b.files.p("opened.eml")]);
    assert_eq!(opened["revocation"], "good");

    let smith = a.json(&["cert", "list", "--owner", "dr.smith@smithpeds.direct.example.org"]);
    let sha = smith[0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(smith[0]["revoked"], serde_json::Value::Null);
    // Only by fingerprint: an owner may hold several certificates.
    assert_eq!(a.run(&["cert", "revoke", "dr.smith@smithpeds.direct.example.org"]).status, 2);
    a.ok(&["cert", "revoke", &sha, "--reason", "key compromise"]);
    a.publish_ca();
    let smith = a.json(&["cert", "list", "--owner", "dr.smith@smithpeds.direct.example.org"]);
    assert!(smith[0]["revoked"].is_string(), "{smith}");
    let crl = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &a.web.as_ref().unwrap().path("ca.crl").display().to_string(),
        "-noout",
        "-text",
    ])
    .text();
    let serial = openssl(&["x509", "-noout", "-serial", "-in", &{
        a.ok(&["cert", "export", &sha, "--out", &f.p("smith.pem")]);
        f.p("smith.pem")
    }])
    .text();
    let serial = serial.trim().trim_start_matches("serial=").to_ascii_uppercase();
    assert!(crl.to_ascii_uppercase().contains(&serial), "the CRL lists {serial}: {crl}");

    // The peer now refuses the message signed with it.
    let refused = b.run(&["--json", "message", "open", "--in", &sealed]);
    assert_eq!(refused.status, 1, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "revoked");
    // And A no longer signs with it.
    let again = a.run(&["message", "seal", "--in", &msg, "--recipient-cert", &f.p("jones.pem")]);
    assert_eq!(again.status, 1);
    assert!(again.stderr.contains("no valid certificate"), "{}", again.stderr);
    // A certificate the development CA did not issue cannot be revoked by it.
    let other = ca("Someone Else");
    let foreign = issue(&other, "dr.smith@smithpeds.direct.example.org");
    f.identity("foreign", &foreign);
    a.ok(&[
        "cert",
        "import",
        "dr.smith@smithpeds.direct.example.org",
        "--cert",
        &f.p("foreign.pem"),
        "--key",
        &f.p("foreign.key"),
    ]);
    let refused = a.run(&["cert", "revoke", &hisp::pki::fingerprint(&foreign.cert)]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("not issued by the development CA"), "{}", refused.stderr);
}

#[test]
fn what_is_missing_or_already_there_is_said_with_its_own_code() {
    let node = Node::new();
    let missing = node.run(&["--json", "queue", "show", "99"]);
    assert_eq!(missing.status, 1);
    assert_eq!(missing.json()["error"]["code"], "not-found", "{}", missing.text());
    node.ok(&["domain", "add", "a.test"]);
    let again = node.run(&["--json", "domain", "add", "a.test"]);
    assert_eq!(again.json()["error"]["code"], "duplicate", "{}", again.text());
}

#[test]
fn addresses_are_imported_from_a_csv_file_in_batches_with_bad_rows_refused_by_line() {
    let node = Node::new();
    node.ok(&["domain", "add", "a.test", "--practice", "A"]);
    node.ok(&["proofing", "approve", "a.test", "--out-of-band", "--reason", "test practice"]);
    node.ok(&["ca", "init"]);
    let hash = hisp::password::hash("a long enough password").unwrap();
    let mut csv = String::from("address,practice,password_hash,certificate\n");
    for i in 0..6_000 {
        csv.push_str(&format!("user{i}@a.test,,,\n"));
    }
    for i in 0..4_000 {
        csv.push_str(&format!("\"clinic{i}@b.test\",B Clinic,,\n"));
    }
    // Lines 10,002 on: one good row of each other kind, then the bad ones.
    // A PHC string holds commas: quoted, as any CSV writer does.
    csv.push_str(&format!("dr.hash@a.test,,\"{hash}\",\n"));
    csv.push_str("dr.cert@a.test,A,,issue\n");
    let bad = [
        ("not an address,,,", "'@'"),
        ("x@c.test,,,", "not hosted here"),
        ("y@a.test,Other Practice,,", "belongs to practice \"A\""),
        (
            "z@a.test,,\"$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\",",
            "below the argon2id baseline",
        ),
        (
            "v@a.test,,$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG,",
            "found record with 6 fields",
        ),
        ("user5@a.test,,,", "already exists"),
        ("w@a.test,,,maybe", "is not `issue`"),
        ("../escape@a.test,,,", "may not contain '/'"),
    ];
    for (row, _) in &bad {
        csv.push_str(row);
        csv.push('\n');
    }
    let file = node.files.write("addresses.csv", csv.as_bytes());
    let run = node.run(&["--json", "address", "import", &file, "--batch", "1000"]);
    assert_eq!(run.status, 1, "some rows refused: {}", run.stderr);
    let report = run.json();
    assert_eq!(report["rows"], 10_010);
    assert_eq!(report["imported"], 10_002);
    assert_eq!(report["domains_added"], 1);
    assert_eq!(report["certificates_issued"], 1);
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), bad.len(), "{refused:?}");
    for (n, (entry, (_, why))) in refused.iter().zip(&bad).enumerate() {
        assert_eq!(entry["line"], 10_004 + n as u64, "{entry}");
        assert!(entry["error"].as_str().unwrap().contains(why), "{entry} should say {why}");
    }
    // What went in is what the file said.
    assert_eq!(node.sql("SELECT count(*) FROM addresses"), vec![b"Integer(10002)".to_vec()]);
    assert_eq!(
        node.sql("SELECT password_hash FROM addresses WHERE address = 'dr.hash@a.test'"),
        vec![hash.into_bytes()]
    );
    let practice = &node.json(&["practice", "show", "b.test"])["practice"];
    assert_eq!((practice["name"].as_str(), practice["addresses"].as_u64()), (Some("B Clinic"), Some(4_000)));
    assert_eq!(practice["proofing"], "not-started", "a practice made by an import starts unproofed");
    assert_eq!(node.json(&["cert", "list", "--owner", "dr.cert@a.test"]).as_array().unwrap().len(), 1);

    // The same file again adds nothing and refuses every row as already there.
    let again = node.run(&["--json", "address", "import", &file]).json();
    assert_eq!((again["imported"].as_u64(), again["refused"].as_array().unwrap().len()), (Some(0), 10_010));

    // Two imports at once both finish: the second writer waits for the first, it does not fail.
    let files: Vec<String> = (0..2)
        .map(|n| {
            let rows: String = (0..3_000).map(|i| format!("p{n}-{i}@a.test\n")).collect();
            node.files.write(&format!("part{n}.csv"), format!("address\n{rows}").as_bytes())
        })
        .collect();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let running: Vec<_> =
            files.iter().map(|f| s.spawn(|| node.run(&["address", "import", f, "--batch", "100"]))).collect();
        running.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for run in runs {
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(run.status, 0, "{stdout} {}", run.stderr);
        assert!(stdout.contains("imported 3000 of 3000"), "{stdout}");
    }

    // "-" reads standard input.
    let piped = node.run_in(&["address", "import", "-"], Some(b"address\nfrom.stdin@a.test\n"));
    assert_eq!(piped.status, 0, "{}", piped.stderr);
    assert!(String::from_utf8_lossy(&piped.stdout).contains("imported 1 of 1"));

    // A header without an address column, or with a column it does not know, is a usage error.
    let no_address = node.files.write("bad.csv", b"practice\nA\n");
    let unknown = node.files.write("bad2.csv", b"address,pasword_hash\nq@a.test,x\n");
    for (file, says) in [(&no_address, "no `address` column"), (&unknown, "\"pasword_hash\"")] {
        let run = node.run(&["address", "import", file]);
        assert_eq!(run.status, 2, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
}

/// Only `init` makes or migrates a database: another program's SQLite file, an empty file and a
/// database of an older schema are refused by every other command, and left as they were.
#[test]
fn only_init_makes_or_migrates_a_database_and_other_files_are_left_alone() {
    let files = Files::new();
    let foreign = files.p("notes.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        .unwrap();
    let run = hisp(&["domain", "list"], None, &[("HISP_DB", &foreign)]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not a hisp database"), "{}", run.stderr);
    let tables: Vec<String> = rusqlite::Connection::open(&foreign)
        .unwrap()
        .prepare("SELECT name FROM sqlite_master")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["notes"], "nothing written into another program's file");

    let empty = files.p("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let run = hisp(&["audit"], None, &[("HISP_DB", &empty)]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("it is empty"), "{}", run.stderr);
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "still empty");

    let node = Node::new();
    let older = hisp::store::SCHEMA_VERSION - 1;
    rusqlite::Connection::open(&node.db).unwrap().pragma_update(None, "user_version", older as i64).unwrap();
    let refused = node.run(&["domain", "list"]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("hisp init --upgrade"), "{}", refused.stderr);
    // (Running the migrations themselves is the store's unit tests' business: here the version
    // is put back, and --upgrade finds nothing to do.)
    rusqlite::Connection::open(&node.db)
        .unwrap()
        .pragma_update(None, "user_version", hisp::store::SCHEMA_VERSION as i64)
        .unwrap();
    let upgraded = node.json(&["init", "--upgrade"]);
    let current = Some(hisp::store::SCHEMA_VERSION as u64);
    assert_eq!((upgraded["was"].as_u64(), upgraded["schema_version"].as_u64()), (current, current));
    node.ok(&["domain", "list"]);
}

/// Names and reasons with line breaks are refused as the API refuses them, and nothing written to
/// the audit log can forge a line of it.
#[test]
fn a_line_break_cannot_forge_a_line_of_the_audit_log() {
    let node = Node::new();
    let forged = "Smith\n2026-12-06T00:00:00Z  admin  practice.remove  Everyone";
    let refused = node.run(&["domain", "add", "smith.example.org", "--practice", forged]);
    assert_eq!(refused.status, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("line breaks"), "{}", refused.stderr);
    node.ok(&["domain", "add", "smith.example.org", "--practice", "Smith Clinic"]);
    let reason = node.run(&["proofing", "approve", "Smith Clinic", "--out-of-band", "--reason", "ok\r\nforged"]);
    assert_eq!(reason.status, 2, "{}", reason.stderr);
    // The practice by position or, as other commands take it, by --practice: the same.
    let by_position = node.json(&["proofing", "status", "Smith Clinic"]);
    assert_eq!(node.json(&["proofing", "status", "--practice", "Smith Clinic"]), by_position);
    assert_eq!(node.json(&["practice", "show", "--practice", "smith.example.org"])["practice"]["name"], "Smith Clinic");
    // Whatever a future path lets through, the log itself keeps one line per entry.
    rusqlite::Connection::open(&node.db)
        .unwrap()
        .execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (1, 'x', 'test', ?1, 'a\u{1b}[2Jb')",
            [forged],
        )
        .unwrap();
    let audit = node.ok(&["audit"]).text();
    assert_eq!(audit.lines().filter(|l| l.contains("practice.remove")).count(), 1, "{audit}");
    assert!(audit.contains("Smith\\n2026"), "{audit}");
    assert!(!audit.contains('\u{1b}'), "no terminal escape: {audit}");
    let entries = node.json(&["audit"]);
    assert_eq!(entries[0]["subject"].as_str().unwrap().lines().count(), 1, "{entries}");
}
