//! XDM end to end: a package written by an independent writer (Python's zipfile, the metadata
//! written in the test) travels from node A to node B in a Direct message and is filed with its
//! metadata in B's practice documents (the REST API shows them); hostile packages are delivered as
//! they came and refused with their reason, nothing of them filed; a package hisp makes is read
//! by the independent reader and its metadata checked against XDM's required attributes.

mod common;

use base64::Engine as _;
use common::api::Api;
use common::network::*;
use common::relay::{self, python_peer_command};
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

    // An EHR submitting over SMTP asks with X-Hisp-XDM: its PDF goes packaged, B files it.
    // (A small PDF: swaks takes the message as one argument.)
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let asked = with_attachment("xdm-smtp", "scan.pdf", pdf)
        .replace("Content-Type: application/zip", "Content-Type: application/pdf")
        .replace("MIME-Version: 1.0\r\n", "MIME-Version: 1.0\r\nX-Hisp-XDM: package\r\nX-Referral-Patient: MRN-88\r\n");
    assert_eq!(submit(&n, &asked).status, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let packed = loop {
        let answer = api.call(Some(&token), "GET", "/v1/messages/xdm-smtp@a.test", None);
        if answer.status == 200 && !answer.body["xdm_packages"].as_array().unwrap().is_empty() {
            break answer.body;
        }
        assert!(std::time::Instant::now() < deadline, "{}", String::from_utf8_lossy(&answer.raw));
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(packed["xdm_packages"][0]["status"], "filed", "{packed}");
    let filed = their_copy(&packed);
    assert_eq!(filed.len(), 1, "{packed}");
    assert_eq!(filed[0]["content_type"], "application/pdf");
    assert!(filed[0]["xdm"]["document"]["patient_id"].as_str().unwrap().starts_with("MRN-88^^^&2.25."), "{packed}");
    let mail = wait_for_mail(&n.b, "b.test", "dr.jones", |m| m.contains("xdm-smtp@a.test")).remove(0);
    assert!(!mail.contains("X-Hisp-XDM") && mail.contains("xdm.zip"), "{mail}");

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

/// The SHA-256 fingerprint of a PEM certificate, as `openssl x509 -fingerprint` prints it.
fn fingerprint(pem: &str) -> String {
    let out = run("openssl", &["x509", "-noout", "-fingerprint", "-sha256", "-in", pem], None, &[]);
    out.text().trim().split_once('=').unwrap().1.to_string()
}

/// An ITI-41 request written here from the specification: SOAP 1.2, WS-Addressing, the Direct
/// addressBlock (unless `block` is false), the metadata with no size or hash (the receiver
/// computes them), and the document as an MTOM part an xop:Include names.
fn iti41(block: bool, document: &[u8]) -> (String, Vec<u8>) {
    let address_block = if block {
        "<direct:addressBlock xmlns:direct=\"urn:direct:addressing\" soap:role=\"urn:direct:addressing:destination\" \
         soap:relay=\"true\"><direct:from>mailto:dr.smith@a.test</direct:from><direct:to>mailto:dr.jones@b.test</direct:to>\
         </direct:addressBlock>"
    } else {
        ""
    };
    let rim = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
    let envelope = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\">\
<soap:Header><wsa:Action soap:mustUnderstand=\"1\">urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b</wsa:Action>\
<wsa:MessageID>urn:uuid:5b1b8c2e-0d7c-4c4e-9a43-2f0b7b0e0001</wsa:MessageID>{address_block}</soap:Header>\
<soap:Body><xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb=\"urn:ihe:iti:xds-b:2007\">\
<lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" xmlns:rim=\"{rim}\"><rim:RegistryObjectList>\
<rim:ExtrinsicObject id=\"Document01\" mimeType=\"text/xml\" objectType=\"urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1\">\
<rim:Slot name=\"creationTime\"><rim:ValueList><rim:Value>20261206080000</rim:Value></rim:ValueList></rim:Slot>\
<rim:Slot name=\"sourcePatientId\"><rim:ValueList><rim:Value>EHR-42^^^&amp;2.16.840.1.113883.19.5&amp;ISO</rim:Value></rim:ValueList></rim:Slot>\
<rim:Name><rim:LocalizedString value=\"Summary sent by XDR\"/></rim:Name>\
<rim:ExternalIdentifier id=\"ei01\" registryObject=\"Document01\" identificationScheme=\"urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab\" value=\"2.25.777\"/>\
</rim:ExtrinsicObject>\
<rim:RegistryPackage id=\"SubmissionSet01\">\
<rim:Slot name=\"submissionTime\"><rim:ValueList><rim:Value>20261206080100</rim:Value></rim:ValueList></rim:Slot>\
<rim:ExternalIdentifier id=\"ei02\" registryObject=\"SubmissionSet01\" identificationScheme=\"urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8\" value=\"2.25.778\"/>\
<rim:ExternalIdentifier id=\"ei03\" registryObject=\"SubmissionSet01\" identificationScheme=\"urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832\" value=\"2.25.779\"/>\
</rim:RegistryPackage>\
<rim:Classification id=\"cl01\" classifiedObject=\"SubmissionSet01\" classificationNode=\"urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd\"/>\
<rim:Association id=\"as01\" associationType=\"urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember\" sourceObject=\"SubmissionSet01\" targetObject=\"Document01\"/>\
</rim:RegistryObjectList></lcm:SubmitObjectsRequest>\
<xdsb:Document id=\"Document01\"><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:doc1%40ehr.test\"/></xdsb:Document>\
</xdsb:ProvideAndRegisterDocumentSetRequest></soap:Body></soap:Envelope>"
    );
    let mut body = format!(
        "--MIME_boundary\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n\
         Content-Transfer-Encoding: binary\r\nContent-ID: <root@ehr.test>\r\n\r\n{envelope}\r\n\
         --MIME_boundary\r\nContent-Type: text/xml\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <doc1@ehr.test>\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(document);
    body.extend_from_slice(b"\r\n--MIME_boundary--\r\n");
    let content_type = "multipart/related; boundary=\"MIME_boundary\"; type=\"application/xop+xml\"; \
                        start=\"<root@ehr.test>\"; start-info=\"application/soap+xml\"";
    (content_type.to_string(), body)
}

/// curl POSTs `body` to the XDR endpoint with `cert` (and its key) as the client certificate;
/// the HTTP status (0 when the connection failed) and the answer.
fn post_xdr(port: u16, ca: &str, cert: Option<(&str, &str)>, content_type: &str, body: &[u8]) -> (u16, String) {
    let files = Files::new();
    let path = files.p("request");
    std::fs::write(&path, body).unwrap();
    let url = format!("https://localhost:{port}/xdr");
    let header = format!("Content-Type: {content_type}");
    let data = format!("@{path}");
    let mut args = vec!["-sS", "--cacert", ca, "-H", &header, "--data-binary", &data, "-w", "\n%{http_code}", &url];
    if let Some((cert, key)) = cert {
        args.splice(0..0, ["--cert", cert, "--key", key]);
    }
    let out = run("curl", &args, None, &[]);
    let text = out.text();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), format!("{answer}{}", out.stderr))
}

/// An EHR at A submits by XDR (ITI-41, MTOM, its client certificate pinned): A sends the document
/// as an XDM package in a Direct message to B, which files it and forwards it, again by XDR, to
/// dr.jones's EHR (a Python endpoint that checks the request and wants B's client certificate);
/// A hears B's processed MDN. Each broken submission gets the specification's fault or error code
/// and nothing of it is sent.
#[test]
fn xdr_submissions_travel_as_direct_messages_and_reach_the_recipients_ehr_by_xdr() {
    let scratch = Files::new();
    let tls = localhost_tls(&scratch, "server");
    let ehr = self_signed_tls(&scratch, "ehr", "/CN=Kareo EHR", "DNS:ehr.test");
    let stranger = self_signed_tls(&scratch, "stranger", "/CN=Someone Else", "DNS:else.test");
    let hisp_b = self_signed_tls(&scratch, "hisp-b", "/CN=hisp node B", "DNS:b.test");
    let (a_xdr, b_api, receiver_port) = (free_port(), free_port(), free_port());
    let received = scratch.path("received");
    // dr.jones's EHR, at 127.0.0.1 (B reaches it by address: there is no DNS name for it).
    let ehr_tls = relay::loopback_tls(&scratch);
    let _receiver = relay::python_peer(
        "xdr_receiver.py",
        &[
            receiver_port.to_string(),
            ehr_tls.0.clone(),
            ehr_tls.1.clone(),
            hisp_b.0.clone(),
            received.display().to_string(),
        ],
        receiver_port,
    );
    let ehr_fingerprint = fingerprint(&ehr.0);
    let n = network_with(|node, config| {
        if node == "a" {
            format!(
                "{config}[xdr]\nlisten = \"127.0.0.1:{a_xdr}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\
                 [[xdr.clients]]\ncertificate_sha256 = \"{ehr_fingerprint}\"\npractice = \"a.test\"\n",
                tls.0, tls.1
            )
        } else {
            format!(
                "{config}[http]\nlisten = \"127.0.0.1:{b_api}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\
                 [[xdr.destinations]]\naddress = \"dr.jones@b.test\"\nurl = \"https://127.0.0.1:{receiver_port}/xdr\"\n\
                 client_cert_file = \"{}\"\nclient_key_file = \"{}\"\nca_file = \"{}\"\n",
                tls.0, tls.1, hisp_b.0, hisp_b.1, ehr_tls.0
            )
        }
    });
    let ccd = std::fs::read(fixture("ccd.xml")).unwrap();
    let queued = || n.a.sql("SELECT count(*) FROM queue_messages")[0].clone();
    let none = queued();

    // Broken submissions first: none of them is sent.
    let (content_type, body) = iti41(true, &ccd);
    let (status, answer) = post_xdr(a_xdr, &tls.0, Some((&stranger.0, &stranger.1)), &content_type, &body);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("wsse:FailedAuthentication"), "{answer}");
    let (status, answer) = post_xdr(a_xdr, &tls.0, None, &content_type, &body);
    assert_eq!(status, 0, "no client certificate: no TLS session: {answer}");
    let ehr_cert = Some((ehr.0.as_str(), ehr.1.as_str()));
    let (no_block_type, no_block) = iti41(false, &ccd);
    let (status, answer) = post_xdr(a_xdr, &tls.0, ehr_cert, &no_block_type, &no_block);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("ResponseStatusType:Failure") && answer.contains("XDSRegistryMetadataError"), "{answer}");
    let cut = &body[..body.len() - "--MIME_boundary--\r\n".len()];
    let (status, answer) = post_xdr(a_xdr, &tls.0, ehr_cert, &content_type, cut);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("soap:Sender") && answer.contains("malformed MTOM"), "{answer}");
    let xxe: Vec<u8> = String::from_utf8(body.clone())
        .unwrap()
        .replacen("<soap:Envelope", "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><soap:Envelope", 1)
        .into_bytes();
    let (status, answer) = post_xdr(a_xdr, &tls.0, ehr_cert, &content_type, &xxe);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("DTD") && !answer.contains("root:"), "{answer}");
    assert_eq!(queued(), none, "nothing refused was queued");

    // The good one.
    let (status, answer) = post_xdr(a_xdr, &tls.0, ehr_cert, &content_type, &body);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("ResponseStatusType:Success"), "{answer}");
    assert!(
        answer.contains("<wsa:RelatesTo>urn:uuid:5b1b8c2e-0d7c-4c4e-9a43-2f0b7b0e0001</wsa:RelatesTo>"),
        "{answer}"
    );

    // dr.jones's EHR gets it by XDR, with the metadata the sending EHR wrote.
    let found = relay::wait_files(&received, "json", 1).remove(0);
    let found: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found["problems"], serde_json::json!([]), "{found}");
    assert_eq!(found["from"], "mailto:dr.smith@a.test");
    assert_eq!(found["to"], serde_json::json!(["mailto:dr.jones@b.test"]));
    assert_eq!(found["documents"][0]["title"], "Summary sent by XDR", "{found}");
    assert_eq!(std::fs::read(received.join("0001.doc0")).unwrap(), ccd, "the document, byte for byte");

    // B filed it for its practice; A hears that B processed it.
    let sent = n.a.json(&["message", "list", "--sent"]);
    let id = sent[0]["message_id"].as_str().unwrap().trim_matches(['<', '>']).to_string();
    let api = Api { port: b_api, ca_file: tls.0.clone() };
    let token = n.b.json(&["token", "create", "ehr-b", "--practice", "b.test"])["token"].as_str().unwrap().to_string();
    let at_b = api.expect(&token, 200, "GET", &format!("/v1/messages/{id}"), None);
    assert_eq!(at_b["xdm_packages"][0]["status"], "filed", "{at_b}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let track = n.a.json(&["message", "track", &id]);
        if track["recipients"][0]["processed_at"].is_i64() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no processed MDN: {track}\n{}", n.b.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
