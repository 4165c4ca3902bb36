//! XDM end to end: a package written by an independent writer (Python's zipfile, the metadata
//! written in the test) travels from node A to node B in a Direct message and is filed with its
//! metadata in B's practice documents (the REST API shows them); hostile packages are delivered as
//! they came and refused with their reason, nothing of them filed; a package hisp makes is read
//! by the independent reader and its metadata checked against XDM's required attributes.

mod common;

use base64::Engine as _;
use common::api::Api;
use common::network::*;
use common::relay::python_peer_command;
use common::servers::free_port;
use common::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/ccda/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The test's own XDM tool (tests/peers/xdm_tool.py) with `args`; its exit status and output.
fn xdm_tool(args: &[&str]) -> (i32, String) {
    let out = python_peer_command("xdm_tool.py", args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// A message from dr.smith to dr.jones with `zip` attached as `name`.
fn with_attachment(id: &str, name: &str, zip: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(zip);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!(
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: Summary of care\r\nMessage-ID: <{id}@a.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nThe summary is attached as an XDM package.\r\n\
         --b1\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    )
}

#[test]
fn xdm_packages_are_filed_with_their_metadata_and_hostile_ones_refused_but_delivered() {
    let (api_port, a_api_port) = (free_port(), free_port());
    let scratch = Files::new();
    let tls = localhost_tls(&scratch, "api");
    let n = network_with(|node, config| {
        let port = if node == "b" { api_port } else { a_api_port };
        format!(
            "{config}[http]\nlisten = \"127.0.0.1:{port}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            tls.0, tls.1
        )
    });
    let api = Api { port: api_port, ca_file: tls.0.clone() };
    let token = n.b.json(&["token", "create", "ehr", "--practice", "b.test"])["token"].as_str().unwrap().to_string();
    let files = Files::new();
    let kinds = ["good", "bomb", "escape", "hash", "metadata", "dtd", "missing"];
    for (i, kind) in kinds.iter().enumerate() {
        let zip = files.p(&format!("{kind}.zip"));
        let (status, said) = xdm_tool(&["write", &zip, kind, &fixture("ccd.xml")]);
        assert_eq!(status, 0, "{said}");
        let message = with_attachment(&format!("xdm-{i}"), &format!("{kind}.zip"), &std::fs::read(&zip).unwrap());
        assert_eq!(submit(&n, &message).status, 0);
    }
    // Every message is delivered as it came, hostile package and all.
    let delivered = mailbox(&n.b, "b.test", "dr.jones", kinds.len());
    assert!(delivered.iter().all(|m| m.contains("The summary is attached as an XDM package.")));

    let show = |i: usize| -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = api.call(Some(&token), "GET", &format!("/v1/messages/xdm-{i}@a.test"), None);
            if answer.status == 200 && answer.body["xdm_packages"].as_array().is_some_and(|p| !p.is_empty()) {
                return answer.body;
            }
            assert!(std::time::Instant::now() < deadline, "message xdm-{i}: {}", String::from_utf8_lossy(&answer.raw));
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };

    // The good package: its document filed with the metadata the writer gave it.
    let good = show(0);
    let package = &good["xdm_packages"][0];
    assert_eq!((package["status"].as_str(), package["documents"].as_i64()), (Some("filed"), Some(1)), "{good}");
    let filed: Vec<&Value> = good["documents"].as_array().unwrap().iter().filter(|d| d["xdm"].is_object()).collect();
    assert_eq!(filed.len(), 1, "{good}");
    let xdm = &filed[0]["xdm"];
    assert_eq!(xdm["document"]["title"], "Summary written by Python");
    assert_eq!(xdm["document"]["patient_id"], "PY-7^^^&2.16.840.1.113883.19.5&ISO");
    assert_eq!(xdm["document"]["type_code"]["code"], "34133-9");
    assert_eq!(xdm["document"]["authors"][0]["institutions"][0], "Python Clinic");
    assert_eq!(xdm["submission_set"]["intended_recipients"][0], "||^^Internet^dr.jones@b.test");
    assert_eq!(filed[0]["content_type"], "text/xml");
    // The filed copy is the document itself, byte for byte.
    let raw = api.call(Some(&token), "GET", filed[0]["download"].as_str().unwrap(), None).raw;
    assert_eq!(raw, std::fs::read(fixture("ccd.xml")).unwrap());

    // Each hostile package: refused with its reason, nothing of it filed.
    let reasons = [
        (1, "ZIP bomb"),
        (2, "is not a plain relative path"),
        (3, "has SHA-1"),
        (4, "no SubmissionSet"),
        (5, "DTD"),
        (6, "is not in the package"),
    ];
    for (i, reason) in reasons {
        let answer = show(i);
        let package = &answer["xdm_packages"][0];
        assert_eq!(package["status"], "refused", "{}: {answer}", kinds[i]);
        assert!(package["reason"].as_str().unwrap().contains(reason), "{}: {answer}", kinds[i]);
        assert!(answer["documents"].as_array().unwrap().iter().all(|d| d["xdm"].is_null()), "{answer}");
    }
    // An EHR at A asks for its attachments to go as XDM: B files both with the metadata A wrote.
    let a_api = Api { port: a_api_port, ca_file: tls.0.clone() };
    let a_token =
        n.a.json(&["token", "create", "ehr-a", "--practice", "a.test"])["token"].as_str().unwrap().to_string();
    let b64 = |name: &str| base64::engine::general_purpose::STANDARD.encode(std::fs::read(fixture(name)).unwrap());
    let request = serde_json::json!({
        "from": "dr.smith@a.test",
        "to": ["dr.jones@b.test"],
        "subject": "Referral",
        "body": "Please see the summary.",
        "attachments": [
            {"filename": "ccd.xml", "content_type": "text/xml", "content_base64": b64("ccd.xml")},
            {"filename": "scan.pdf", "content_type": "application/pdf", "content_base64": b64("ud-sample.pdf")},
        ],
        "referral": {"patient_id": "MRN-77", "direction": "transferring"},
        "xdm": true,
    });
    let sent = a_api.expect(&a_token, 202, "POST", "/v1/messages", Some(&request));
    let id = sent["message_id"].as_str().unwrap().to_string();
    let ours = a_api.expect(&a_token, 200, "GET", &format!("/v1/messages/{id}"), None);
    assert_eq!(ours["xdm_packages"][0]["status"], "filed", "{ours}");
    let their_copy = |answer: &Value| -> Vec<Value> {
        answer["documents"].as_array().unwrap().iter().filter(|d| d["xdm"].is_object()).cloned().collect()
    };
    assert_eq!(their_copy(&ours).len(), 2, "A keeps its documents with the metadata it sent: {ours}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let received = loop {
        let answer = api.call(Some(&token), "GET", &format!("/v1/messages/{id}"), None);
        if answer.status == 200 && !answer.body["xdm_packages"].as_array().unwrap().is_empty() {
            break answer.body;
        }
        assert!(std::time::Instant::now() < deadline, "{}", String::from_utf8_lossy(&answer.raw));
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(received["xdm_packages"][0]["status"], "filed", "{received}");
    let filed = their_copy(&received);
    assert_eq!(filed.len(), 2, "{received}");
    let by_type = |t: &str| filed.iter().find(|d| d["content_type"] == t).unwrap()["xdm"]["document"].clone();
    let ccd = by_type("text/xml");
    assert_eq!(ccd["type_code"]["code"], "34133-9", "{ccd}");
    assert_eq!(ccd["authors"][0]["telecoms"][0], "^^Internet^dr.smith@a.test");
    let pdf = by_type("application/pdf");
    assert!(pdf["patient_id"].as_str().unwrap().starts_with("MRN-77^^^&2.25."), "{pdf}");
    // What arrived carries the package, not the loose files.
    let mail = wait_for_mail(&n.b, "b.test", "dr.jones", |m| m.contains("Please see the summary."));
    assert!(mail[0].contains("xdm.zip") && !mail[0].contains("scan.pdf"), "{}", mail[0]);

    // The reason is sealed at rest: it quotes the package's names.
    let rows = n.b.sql("SELECT reason FROM xdm_packages WHERE status = 'refused'");
    assert!(rows.iter().all(|r| !r.windows(4).any(|w| w == b"etc/")), "reasons are sealed");
    assert!(!n.b.serve_log().contains("etc/cron.d"), "the log names no entry of a package");
}

#[test]
fn a_package_hisp_makes_passes_the_independent_readers_checks_and_inspect_reads_the_others() {
    let node = node::Node::new();
    let out = node.files.p("out.zip");
    let made = node.json(&[
        "xdm",
        "pack",
        &fixture("ccd.xml"),
        &fixture("ud-sample.pdf"),
        "--from",
        "dr.smith@a.test",
        "--to",
        "dr.jones@b.test",
        "--patient-id",
        "MRN-9",
        "--out",
        &out,
    ]);
    assert_eq!(made["documents"].as_array().unwrap().len(), 2, "{made}");
    let (status, problems) = xdm_tool(&["check", &out]);
    assert_eq!(status, 0, "the independent reader finds: {problems}");
    // Writing over it needs --force.
    let again = node.run(&["xdm", "pack", &fixture("ccd.xml"), "--from", "dr.smith@a.test", "--out", &out]);
    assert_ne!(again.status, 0);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);

    // The independent writer's package, inspected and unpacked.
    let theirs = node.files.p("theirs.zip");
    assert_eq!(xdm_tool(&["write", &theirs, "good", &fixture("ccd.xml")]).0, 0);
    let inspected = node.json(&["xdm", "inspect", &theirs]);
    assert_eq!(inspected["subsets"][0]["documents"][0]["entry"]["title"], "Summary written by Python", "{inspected}");
    let folder = node.files.p("unpacked");
    node.ok(&["xdm", "unpack", &theirs, "--out", &folder]);
    let written = std::path::Path::new(&folder).join("IHE_XDM/SUBSET01/DOC0001.XML");
    assert_eq!(std::fs::read(&written).unwrap(), std::fs::read(fixture("ccd.xml")).unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&written).unwrap().permissions().mode() & 0o777, 0o600);

    // A hostile one: refused with its reason, exit status 1, nothing written.
    let escape = node.files.p("escape.zip");
    assert_eq!(xdm_tool(&["write", &escape, "escape", &fixture("ccd.xml")]).0, 0);
    let refused = node.run(&["xdm", "unpack", &escape, "--out", &node.files.p("nothing")]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("not a plain relative path"), "{}", refused.stderr);
    assert!(!std::path::Path::new(&node.files.p("nothing")).exists());
}
