//! Trust bundles: PKCS#7 bundles made by the openssl CLI, served over HTTP on loopback, imported
//! into a real database; their anchors decide discovery's trust; a failed refresh keeps the last
//! good copy; signed bundles are verified against the configured signer.

mod common;

use base64::Engine;
use common::node::Node;
use common::servers;
use common::*;

/// The bundle named `name` as `hisp bundle list --json` shows it.
fn bundle(node: &Node, name: &str) -> serde_json::Value {
    let list = node.json(&["bundle", "list"]);
    list.as_array().unwrap().iter().find(|b| b["name"] == name).cloned().unwrap_or(serde_json::Value::Null)
}

/// A PKCS#7 certs-only bundle (DER) of the PEM files `pems`, written to `out`, by the openssl CLI.
fn certs_only_bundle(pems: &[String], out: &str) {
    let mut args = vec!["crl2pkcs7", "-nocrl", "-outform", "DER", "-out", out];
    for pem in pems {
        args.extend_from_slice(&["-certfile", pem.as_str()]);
    }
    openssl(&args);
}

#[test]
fn bundles_are_imported_refreshed_kept_on_failure_and_verified_when_signed() {
    let node = Node::new();
    node.ok(&["domain", "add", "a.test", "--practice", "A"]);
    let web = servers::http();
    let f = &node.files;
    let (ca1, ca2) = (ca("Bundle CA 1"), ca("Bundle CA 2"));
    f.ca("ca1", &ca1);
    f.ca("ca2", &ca2);
    let p7b = web.path("bundle.p7b");
    let p7b = p7b.to_str().unwrap();
    certs_only_bundle(&[f.p("ca1.pem"), f.p("ca2.pem")], p7b);
    let url = |file: &str| format!("http://127.0.0.1:{}/{file}", web.port);

    // Added and fetched at once.
    let added =
        node.run(&["bundle", "add", "dt", "--url", &url("bundle.p7b"), "--domain", "a.test", "--outgoing", "--json"]);
    assert_eq!(added.status, 0, "{}", added.stderr);
    assert_eq!(added.json()["anchors"], 2);

    // Its anchors decide trust: a certificate from CA 2, found in DNS, is usable for a.test.
    let bob = issue_at(&ca2, "bob@b.test", 2048, *NOW - DAY, *NOW + 365 * DAY, &url("ca2.crl"), &url("ca2.cer"));
    std::fs::write(web.path("ca2.crl"), crl(&ca2, &[], *NOW - DAY, *NOW + 7 * DAY)).unwrap();
    let der = base64::engine::general_purpose::STANDARD.encode(bob.cert.to_der().unwrap());
    let dns = servers::knot(&[("b.test", format!("bob IN CERT PKIX 0 0 {der}\n"))]);
    let dns = format!("127.0.0.1:{}", dns.port);
    let discover = || node.run(&["discover", "bob@b.test", "--domain", "a.test", "--dns", &dns, "--json"]);
    assert_eq!(discover().status, 0, "{}", discover().text());

    // A refresh that fails (gone from the server, then garbage) keeps the last good anchors.
    std::fs::remove_file(web.path("bundle.p7b")).unwrap();
    let failed = node.run(&["bundle", "refresh"]);
    assert_eq!(failed.status, 1);
    assert!(failed.text().contains("2 anchors of the last good copy kept"), "{}", failed.text());
    let listed = bundle(&node, "dt");
    assert!(listed["last_error"].as_str().unwrap().starts_with("not found"), "{listed}");
    assert_eq!(listed["anchors"], 2);
    assert_eq!(discover().status, 0, "still trusted through the last good copy");
    std::fs::write(web.path("bundle.p7b"), b"<html>maintenance</html>").unwrap();
    assert_eq!(node.run(&["bundle", "refresh", "dt"]).status, 1);
    assert!(bundle(&node, "dt")["last_error"].as_str().unwrap().starts_with("bad format"));

    // Removed: CA 2 is no longer trusted.
    node.ok(&["bundle", "remove", "dt"]);
    let run = discover();
    assert_eq!(run.status, 3);
    assert!(run.json()["certificates"][0]["problems"].to_string().contains("untrusted"));

    // Signed bundles: verified against --signer; refused without it, with another signer, or altered.
    certs_only_bundle(&[f.p("ca1.pem")], &f.p("one.p7b"));
    let publisher = issue(&ca1, "bundles.a.test");
    f.identity("publisher", &publisher);
    let p7m = web.path("bundle.p7m");
    openssl(&[
        "cms",
        "-sign",
        "-nodetach",
        "-binary",
        "-in",
        &f.p("one.p7b"),
        "-signer",
        &f.p("publisher.pem"),
        "-inkey",
        &f.p("publisher.key"),
        "-outform",
        "DER",
        "-out",
        p7m.to_str().unwrap(),
    ]);
    let add_signed = |name: &str, signer: Option<&str>| {
        let source = url("bundle.p7m");
        let mut args = vec!["bundle", "add", name, "--url", &source, "--domain", "a.test", "--incoming"];
        if let Some(s) = signer {
            args.extend_from_slice(&["--signer", s]);
        }
        node.run(&args)
    };
    let unsigned_check = add_signed("signed-no-signer", None);
    assert_eq!(unsigned_check.status, 1);
    assert!(unsigned_check.stderr.contains("give its signing certificate with --signer"), "{}", unsigned_check.stderr);
    let other = issue(&ca2, "other.a.test");
    f.identity("other", &other);
    let wrong = add_signed("signed-wrong", Some(&f.p("other.pem")));
    assert!(wrong.stderr.contains("bad signature"), "{}", wrong.stderr);
    let good = add_signed("signed", Some(&f.p("publisher.pem")));
    assert_eq!(good.status, 0, "{}", good.stderr);
    assert_eq!(bundle(&node, "signed")["anchors"], 1);

    // Altered in transit: one byte of the signed content changed.
    let mut bytes = std::fs::read(&p7m).unwrap();
    let inner = std::fs::read(f.path("one.p7b")).unwrap();
    let at = bytes.windows(inner.len()).position(|w| w == inner.as_slice()).unwrap();
    bytes[at + inner.len() / 2] ^= 0x01;
    std::fs::write(&p7m, bytes).unwrap();
    let refreshed = node.run(&["bundle", "refresh", "signed"]);
    assert_eq!(refreshed.status, 1);
    assert!(
        bundle(&node, "signed")["last_error"].as_str().unwrap().starts_with("bad signature"),
        "{}",
        refreshed.text()
    );
    assert_eq!(bundle(&node, "signed")["anchors"], 1, "the last good copy is kept");
}

/// `hisp serve` refreshes the bundles on its interval: a new copy replaces the anchors, a broken
/// one is recorded and the last good anchors kept.
#[test]
fn the_daemon_refreshes_bundles_on_its_interval() {
    let backbone = servers::free_port();
    let node = Node::with_config(&format!(
        "[server]\nsubmission = \"\"\nbackbone = \"127.0.0.1:{backbone}\"\n[trust]\nbundle_refresh_secs = 1\n"
    ));
    node.ok(&["domain", "add", "a.test"]);
    let web = servers::http();
    let f = &node.files;
    f.ca("ca1", &ca("Interval CA 1"));
    f.ca("ca2", &ca("Interval CA 2"));
    let p7b = web.path("bundle.p7b").display().to_string();
    let make = |names: &[&str]| certs_only_bundle(&names.iter().map(|n| f.p(n)).collect::<Vec<_>>(), &p7b);
    make(&["ca1.pem"]);
    let url = format!("http://127.0.0.1:{}/bundle.p7b", web.port);
    node.ok(&["bundle", "add", "dt", "--url", &url, "--domain", "a.test", "--incoming"]);
    assert_eq!(bundle(&node, "dt")["anchors"], 1);
    make(&["ca1.pem", "ca2.pem"]);
    let _daemon = node.serve(backbone);
    let wait_for = |what: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let b = bundle(&node, "dt");
            if what(&b) {
                return b;
            }
            assert!(std::time::Instant::now() < deadline, "{b}\n{}", node.serve_log());
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    wait_for(&|b| b["anchors"] == 2);
    std::fs::write(web.path("bundle.p7b"), b"not a bundle").unwrap();
    let broken = wait_for(&|b| b["last_error"].is_string());
    assert_eq!(broken["anchors"], 2, "the last good anchors are kept: {broken}");
}
