//! The REST API against running nodes, driven with curl over HTTPS as an EHR would: the whole
//! Kareo-style journey (Direct setup, proofing failed then passed, address verification, a
//! Transferring referral with the real C-CDA, its history and the patient's documents, a
//! Receiving referral back from a second node marked received), the isolation of one practice's
//! data from another's, bad input answered with the field at fault, and the OpenAPI document
//! matching what is served.

mod common;

use base64::Engine;
use common::api::Api;
use common::network::{practice, PASSWORD};
use common::node::*;
use common::servers::free_port;
use common::*;
use serde_json::{json, Value};

const DOMAIN: &str = "smithpediatrics.direct.test";

/// A node's configuration: its listeners, its DNS publisher, the peer's DNS and backbone.
/// `hosted`: the domain the node's MX host is published under.
fn config(ports: &Ports, peer: &Ports, hosted: &str, mail: &std::path::Path, tls: &(String, String)) -> String {
    format!(
        "[dns]\nservers = [\"127.0.0.1:{}\"]\ntimeout_ms = 1000\n\
         [server]\nhostname = \"localhost\"\nsubmission = \"127.0.0.1:{}\"\nbackbone = \"127.0.0.1:{}\"\n\
         mail_dir = \"{}\"\nmin_free_disk_mb = 0\n\
         [queue]\nworkers = 2\nretry_base_secs = 1\nretry_max_secs = 2\n\
         [delivery]\nport = {}\ntimeout_secs = 10\n\
         [dns_server]\nlisten = \"127.0.0.1:{}\"\nmx_host = \"mx.{}\"\n\
         [onboarding]\nparent_domain = \"direct.test\"\nverifier = \"rules\"\ncode_channel = \"log\"\n\
         [http]\nlisten = \"127.0.0.1:{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        peer.dns,
        ports.submission,
        ports.backbone,
        mail.display(),
        peer.backbone,
        ports.dns,
        hosted,
        ports.api,
        tls.0,
        tls.1
    )
}

struct Ports {
    submission: u16,
    backbone: u16,
    dns: u16,
    api: u16,
}

fn ports() -> Ports {
    Ports { submission: free_port(), backbone: free_port(), dns: free_port(), api: free_port() }
}

/// Two nodes: A (no practice yet: the EHR sets it up through the API) and B with dr.jones at
/// b.test, each publishing its own domains in DNS and asking the other's publisher.
struct Journey {
    a: Node,
    a_submission: u16,
    b: Node,
    api_a: Api,
    api_b: Api,
    _daemons: Vec<Daemon>,
    _mail: [tempfile::TempDir; 2],
    /// The TLS files: dropped after the daemons (fields drop in order).
    _scratch: Files,
}

fn journey() -> Journey {
    let (pa, pb) = (ports(), ports());
    let mail = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let scratch = Files::new();
    let tls = localhost_tls(&scratch, "api");
    let a = Node::with_published_ca_and(&config(&pa, &pb, DOMAIN, mail[0].path(), &tls));
    let b = Node::with_published_ca_and(&config(&pb, &pa, "b.test", mail[1].path(), &tls));
    a.ok(&["ca", "init"]);
    a.ok(&["ca", "export", "--out", &a.files.p("dev-ca.pem")]);
    a.publish_ca();
    practice(&b, "b.test", "dr.jones");
    b.ok(&["anchor", "add", &a.files.p("dev-ca.pem"), "--domain", "b.test", "--incoming", "--outgoing"]);
    let daemons = vec![a.serve(pa.api), b.serve(pb.api)];
    let api = |port| Api { port, ca_file: tls.0.clone() };
    Journey {
        api_a: api(pa.api),
        api_b: api(pb.api),
        a,
        a_submission: pa.submission,
        b,
        _daemons: daemons,
        _mail: mail,
        _scratch: scratch,
    }
}

/// One node serving the API (its peer's ports are not served), its configuration as `tweak`
/// leaves it; the mail directory and TLS files live as long as the struct.
struct Single {
    node: Node,
    daemon: Daemon,
    api: Api,
    _mail: tempfile::TempDir,
    _scratch: Files,
}

fn single_node(hosted: &str, tweak: impl Fn(String) -> String) -> Single {
    let (p, peer) = (ports(), ports());
    let mail = tempfile::tempdir().unwrap();
    let scratch = Files::new();
    let tls = localhost_tls(&scratch, "api");
    let node = Node::with_config(&tweak(config(&p, &peer, hosted, mail.path(), &tls)));
    let daemon = node.serve(p.api);
    Single { node, daemon, api: Api { port: p.api, ca_file: tls.0 }, _mail: mail, _scratch: scratch }
}

fn token(node: &Node, name: &str, practice: Option<&str>) -> String {
    let mut args = vec!["--json", "token", "create", name];
    if let Some(p) = practice {
        args.extend_from_slice(&["--practice", p]);
    }
    node.ok(&args).json()["token"].as_str().unwrap().to_string()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The confirmation code the log channel wrote to the node's log (the newest one).
fn code_from_log(node: &Node) -> String {
    let log = node.serve_log();
    let line = log.lines().rev().find(|l| l.contains("confirmation code")).expect("the code in the log").to_string();
    line.split("): ").nth(1).unwrap()[..6].to_string()
}

/// Polls `path` until `done` says yes (30 s at most); the last answer. `j`'s logs tell why not.
fn wait_for(j: &Journey, api: &Api, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = api.expect(token, 200, "GET", path, None);
        if done(&answer) {
            return answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never got there: {answer}\nA: {}\nA's queue: {}\nB: {}",
            j.a.serve_log(),
            network::node_queue(&j.a),
            j.b.serve_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn an_ehr_sets_up_direct_proves_identity_sends_a_referral_and_closes_the_loop() {
    let j = journey();
    let (api, kareo) = (&j.api_a, token(&j.a, "kareo", None));

    // The API speaks only to token holders; a fresh token may only set a practice up.
    assert_eq!(api.call(None, "GET", "/v1/practice", None).status, 401);
    assert_eq!(api.call(Some("hisp_not-a-token"), "GET", "/v1/practice", None).status, 401);
    assert_eq!(api.expect(&kareo, 403, "GET", "/v1/practice", None)["error"]["code"], "no-practice");

    // Direct setup: the domain is the practice name without spaces; then a username.
    let bad =
        api.expect(&kareo, 400, "POST", "/v1/practice", Some(&json!({"name": "Smith Pediatrics", "label": "a.b"})));
    assert_eq!(bad["error"]["field"], "label");
    let setup = api.expect(&kareo, 201, "POST", "/v1/practice", Some(&json!({"name": "Smith Pediatrics"})));
    assert_eq!(setup["practice"]["domains"], json!([DOMAIN]));
    assert_eq!(setup["practice"]["proofing"], "not-started");
    api.expect(&kareo, 409, "POST", "/v1/practice", Some(&json!({"name": "Another"})));
    let user = api.expect(
        &kareo,
        201,
        "POST",
        "/v1/practice/users",
        Some(&json!({"username": "dr.smith", "password": PASSWORD})),
    );
    let me = format!("dr.smith@{DOMAIN}");
    assert_eq!(user["address"], me.as_str());
    assert_eq!(user["certificate_issued"], false, "not before the practice is verified");

    // Not verified: sending is refused with the reason.
    let ccda = fixture("ccda/referral-note.xml");
    let referral = json!({
        "from": me, "to": ["dr.jones@b.test"], "subject": "Referral: asthma follow-up",
        "body": "Please see the attached summary of care.",
        "attachments": [{"filename": "referral-note.xml", "content_type": "application/xml", "content_base64": b64(&ccda)}],
        "referral": {"patient_id": "MRN-1001", "direction": "transferring",
            "ccda_sections": ["problems", "medications", "allergies"],
            "encounter_note": {"filename": "encounter-note.txt", "content_type": "text/plain",
                "content_base64": b64(b"Seen today for wheezing.")}}
    });
    let refused = api.expect(&kareo, 403, "POST", "/v1/messages", Some(&referral));
    assert_eq!(refused["error"]["code"], "not-verified");
    assert!(refused["error"]["message"].as_str().unwrap().contains("has not completed identity proofing"));

    // Proofing with bad data fails with every reason; Try Again with the right data passes.
    api.expect(
        &kareo,
        200,
        "POST",
        "/v1/proofing/terms",
        Some(&json!({"activation_terms": true, "identity_verification_agreement": true})),
    );
    let malformed = api.expect(
        &kareo,
        400,
        "PUT",
        "/v1/proofing/sections/representative",
        Some(&json!({"date_of_birth": "01/01/1975"})),
    );
    assert_eq!(malformed["error"]["field"], "representative.date_of_birth");
    let mut bad = proofing_form();
    bad["representative"]["date_of_birth"] = json!("2012-01-01");
    bad["representative"]["personal_email"] = json!("jane.smith");
    bad["government_id"] = json!({"npi": "1234567890"});
    bad["financial_id"] = json!({"phone": "555-0123"});
    let mut status = Value::Null;
    for name in ["business", "representative", "government_id", "financial_id"] {
        status = api.expect(&kareo, 200, "PUT", &format!("/v1/proofing/sections/{name}"), Some(&bad[name]));
    }
    // Every field is there; the sections whose fields break a rule say which, and are not ready.
    let sections = status["sections"].as_array().unwrap();
    assert_eq!(sections[0]["status"], "ready", "{status}");
    assert!(sections[1..4].iter().all(|s| s["status"] == "incomplete" && s["invalid"].is_array()), "{status}");
    api.expect(&kareo, 200, "POST", "/v1/proofing/code", Some(&json!({"phone": "+15555550123"})));
    api.expect(&kareo, 400, "POST", "/v1/proofing/confirm", Some(&json!({"code": "12345x"})));
    api.expect(&kareo, 200, "POST", "/v1/proofing/confirm", Some(&json!({"code": code_from_log(&j.a)})));
    let failed = api.expect(&kareo, 200, "POST", "/v1/proofing/submit", None);
    assert_eq!(failed["state"], "failed");
    let fields: Vec<&str> =
        failed["reasons"].as_array().unwrap().iter().map(|r| r["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["representative.date_of_birth", "representative.personal_email", "government_id.npi", "financial_id.phone"]
    );
    api.expect(&kareo, 200, "POST", "/v1/proofing/retry", None);
    for name in ["business", "representative", "government_id", "financial_id"] {
        api.expect(&kareo, 200, "PUT", &format!("/v1/proofing/sections/{name}"), Some(&proofing_form()[name]));
    }
    let verified = api.expect(&kareo, 200, "POST", "/v1/proofing/submit", None);
    assert_eq!(verified["state"], "verified", "{verified}");
    assert_eq!(verified["certificates_issued"], json!([me]), "the user's certificate comes with verification");

    // B trusts A's CA already; A's new practice trusts its own node's CA from its creation, and
    // B's for its new domain (an operator's step).
    j.a.ok(&["anchor", "add", &j.b.files.p("dev-ca.pem"), "--domain", DOMAIN, "--incoming", "--outgoing"]);

    // Verifying Address: a good recipient and a bad one.
    let good = api.expect(&kareo, 200, "GET", "/v1/addresses/dr.jones@b.test/verify", None);
    assert_eq!(good["valid"], true, "{good}");
    let unknown = api.expect(&kareo, 200, "GET", "/v1/addresses/nobody@b.test/verify", None);
    assert_eq!(
        (unknown["valid"].clone(), unknown["reason"].clone()),
        (json!(false), json!("no certificate published"))
    );
    assert_eq!(
        api.expect(&kareo, 400, "GET", "/v1/addresses/not-an-address/verify", None)["error"]["field"],
        "address"
    );

    // The referral: bad input names the field; the good one is queued and delivered to B.
    let mut wrong = referral.clone();
    wrong["to"] = json!(["dr.jones@b.test", "no at sign"]);
    assert_eq!(api.expect(&kareo, 400, "POST", "/v1/messages", Some(&wrong))["error"]["field"], "to[1]");
    let mut wrong = referral.clone();
    wrong["referral"]["direction"] = json!("sideways");
    assert_eq!(api.expect(&kareo, 400, "POST", "/v1/messages", Some(&wrong))["error"]["field"], "referral.direction");
    let mut wrong = referral.clone();
    wrong["attachments"][0]["content_base64"] = json!("%%%");
    let e = api.expect(&kareo, 400, "POST", "/v1/messages", Some(&wrong));
    assert_eq!(e["error"]["field"], "attachments[0].content_base64");
    let mut wrong = referral.clone();
    wrong["from"] = json!("dr.jones@b.test");
    assert_eq!(api.expect(&kareo, 403, "POST", "/v1/messages", Some(&wrong))["error"]["field"], "from");

    let sent = api.expect(&kareo, 202, "POST", "/v1/messages", Some(&referral));
    let message_id = sent["message_id"].as_str().unwrap().trim_matches(['<', '>']).to_string();
    let referral_id = sent["referral_id"].as_i64().unwrap();
    assert_eq!(sent["documents"].as_array().unwrap().len(), 2, "the C-CDA and the encounter note");

    // In the history, and in the patient's documents (the very bytes sent).
    let history = api.expect(&kareo, 200, "GET", "/v1/referrals?patient=MRN-1001&direction=transferring", None);
    assert_eq!(history["referrals"][0]["id"], referral_id);
    assert_eq!(history["referrals"][0]["sections"], json!(["problems", "medications", "allergies"]));
    let docs = api.expect(&kareo, 200, "GET", "/v1/patients/MRN-1001/documents", None);
    let ccda_doc = docs["documents"].as_array().unwrap().iter().find(|d| d["filename"] == "referral-note.xml").unwrap();
    let content = api.call(Some(&kareo), "GET", &format!("/v1/documents/{}", ccda_doc["id"]), None);
    assert_eq!((content.status, content.raw == ccda), (200, true));

    // B's practice receives it: the referral and its documents are on B's side too.
    let kareo_b = token(&j.b, "kareo-b", Some("b.test"));
    let arrived = wait_for(&j, &j.api_b, &kareo_b, "/v1/referrals?way=received", |v| {
        !v["referrals"].as_array().unwrap().is_empty()
    });
    let theirs = &arrived["referrals"][0];
    // B has no record of this patient: A's MRN is kept as A's, and nothing is filed under it.
    assert_eq!(theirs["direction"], "transferring");
    assert_eq!((theirs["patient_id"].clone(), theirs["sender_patient_id"].clone()), (Value::Null, json!("MRN-1001")));
    assert_eq!(theirs["message_id"], message_id.as_str());
    assert_eq!(theirs["encounter_note"], true);
    let b_docs = j.api_b.expect(&kareo_b, 200, "GET", "/v1/patients/MRN-1001/documents", None);
    assert_eq!(b_docs["documents"], json!([]), "{b_docs}");
    let b_all = j.api_b.expect(&kareo_b, 200, "GET", "/v1/documents", None);
    assert_eq!(b_all["documents"].as_array().unwrap().len(), 2, "{b_all}");

    // A message written by an EHR's own mail client: a UTF-8 Subject in RFC 2047 words, a file
    // named in RFC 2231 form. B's EHR reads it through the API alone: its text, the verified
    // sender, the file under its name with a download link.
    let raw = format!(
        "From: {me}\r\nTo: dr.jones@b.test\r\nSubject: =?UTF-8?B?UsOpc3Vtw6k=?= de =?UTF-8?Q?s=C3=A9jour?=\r\n\
         Message-ID: <utf8-names@smithpediatrics.direct.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoir le résumé ci-joint.\r\n\
         --b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment;\r\n filename*=UTF-8''r%C3%A9sum%C3%A9%20de%20s%C3%A9jour.txt\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        b64(b"Discharged home.")
    );
    let eml = j.a.files.p("utf8.eml");
    std::fs::write(&eml, raw).unwrap();
    let sent = network::swaks(
        j.a_submission,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            &me,
            "--auth-password",
            PASSWORD,
            "--from",
            &me,
            "--to",
            "dr.jones@b.test",
            "--data",
            &format!("@{eml}"),
        ],
    );
    assert_eq!(sent.status, 0, "{}", sent.stderr);
    let path = "/v1/messages/utf8-names@smithpediatrics.direct.test";
    let read = wait_for(&j, &j.api_b, &kareo_b, "/v1/messages?way=received", |v| {
        v["messages"].as_array().unwrap().iter().any(|m| m["message_id"] == "utf8-names@smithpediatrics.direct.test")
    });
    assert!(read.to_string().contains("Résumé de séjour"), "{read}");
    let shown = j.api_b.expect(&kareo_b, 200, "GET", path, None);
    assert_eq!(shown["message"]["subject"], "Résumé de séjour", "{shown}");
    assert_eq!(shown["body"], "Voir le résumé ci-joint.");
    assert_eq!(shown["verified_sender"], me.as_str());
    let file = &shown["documents"][0];
    assert_eq!(file["filename"], "résumé de séjour.txt", "{shown}");
    let download = j.api_b.call(Some(&kareo_b), "GET", file["download"].as_str().unwrap(), None);
    assert_eq!((download.status, download.raw.as_slice()), (200, &b"Discharged home."[..]));
    // Both reads of PHI are in B's audit log, by the token that made them.
    let audit = j.b.json(&["audit", "--limit", "20"]).to_string();
    assert!(
        audit.contains("message.read") && audit.contains("document.read") && audit.contains("api:kareo-b"),
        "{audit}"
    );

    // The sender sees it delivered (B's HISP confirmed it with a processed MDN).
    let shown =
        wait_for(&j, api, &kareo, &format!("/v1/messages/{message_id}"), |v| v["message"]["status"] == "delivered");
    assert_eq!(shown["recipients"][0]["recipient"], "dr.jones@b.test");
    assert_eq!(shown["documents"].as_array().unwrap().len(), 2);

    // B reports back: a Receiving referral answering A's, which A marks received.
    let report = json!({
        "from": "dr.jones@b.test", "to": [me], "subject": "Consult report",
        "body": "Seen; plan attached.",
        "attachments": [{"filename": "consult-note.xml", "content_type": "application/xml", "content_base64": b64(&ccda)}],
        "referral": {"patient_id": "B-77", "direction": "receiving", "ccda_sections": ["plan of care"], "in_reply_to": message_id}
    });
    j.api_b.expect(&kareo_b, 202, "POST", "/v1/messages", Some(&report));
    let back = wait_for(&j, api, &kareo, "/v1/referrals?direction=receiving", |v| {
        !v["referrals"].as_array().unwrap().is_empty()
    });
    let returned = &back["referrals"][0];
    assert_eq!(returned["status"], "awaiting-receipt");
    // B's report names the patient by B's MRN; A files it for its own patient, matched on the
    // C-CDA's header (name, birth date, sex), B's MRN kept as B's.
    assert_eq!(
        (returned["patient_id"].clone(), returned["sender_patient_id"].clone()),
        (json!("MRN-1001"), json!("B-77"))
    );
    assert_eq!(returned["answers"], referral_id, "linked to the referral it answers");
    let returned_id = returned["id"].as_i64().unwrap();
    assert_eq!(
        api.expect(&kareo, 409, "POST", &format!("/v1/referrals/{referral_id}/received"), None)["error"]["code"],
        "conflict"
    );
    let marked = api.expect(&kareo, 200, "POST", &format!("/v1/referrals/{returned_id}/received"), None);
    assert_eq!(marked["status"], "received");
    assert_eq!(marked["received_by"], "api:kareo");
    let original = api.expect(&kareo, 200, "GET", &format!("/v1/referrals/{referral_id}"), None);
    assert_eq!(original["answered_by"], json!([returned_id]));
    let all_docs = api.expect(&kareo, 200, "GET", "/v1/patients/MRN-1001/documents", None);
    assert_eq!(all_docs["documents"].as_array().unwrap().len(), 3, "2 sent, 1 received: {all_docs}");
    let mailbox = api.expect(&kareo, 200, "GET", "/v1/messages", None);
    let ways: Vec<&str> = mailbox["messages"].as_array().unwrap().iter().map(|m| m["way"].as_str().unwrap()).collect();
    assert!(ways.contains(&"sent") && ways.contains(&"received"), "{mailbox}");

    // The directory finds hosted addresses and the ones this practice has written to.
    let found = api.expect(&kareo, 200, "GET", "/v1/directory?q=jones", None);
    assert!(found["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["address"] == "dr.jones@b.test" && e["source"] == "known"));
    let hosted = api.expect(&kareo, 200, "GET", "/v1/directory?q=smith", None);
    assert_eq!(hosted["entries"][0]["practice"], "Smith Pediatrics");
    assert_eq!(api.expect(&kareo, 400, "GET", "/v1/directory?q=a", None)["error"]["field"], "q");

    // Another practice on the same node sees none of it, and cannot send while unverified.
    let other = token(&j.a, "other-ehr", None);
    api.expect(&other, 201, "POST", "/v1/practice", Some(&json!({"name": "Other Clinic"})));
    api.expect(&other, 201, "POST", "/v1/practice/users", Some(&json!({"username": "dr.other"})));
    // A username that could name a path outside the mail directory is refused before anything is made.
    for evil in ["/etc", "../../x", "a/b", ".hidden"] {
        let refused = api.expect(&other, 400, "POST", "/v1/practice/users", Some(&json!({"username": evil})));
        assert_eq!(refused["error"]["field"], "username", "{evil}: {refused}");
    }
    api.expect(&other, 404, "GET", &format!("/v1/messages/{message_id}"), None);
    api.expect(&other, 404, "GET", &format!("/v1/referrals/{referral_id}"), None);
    api.expect(&other, 404, "POST", &format!("/v1/referrals/{returned_id}/received"), None);
    api.expect(&other, 404, "GET", &format!("/v1/documents/{}", ccda_doc["id"]), None);
    assert_eq!(api.expect(&other, 200, "GET", "/v1/patients/MRN-1001/documents", None)["documents"], json!([]));
    assert_eq!(api.expect(&other, 200, "GET", "/v1/referrals", None)["referrals"], json!([]));
    assert_eq!(api.expect(&other, 200, "GET", "/v1/messages", None)["messages"], json!([]));
    let mut theirs = referral.clone();
    theirs["from"] = json!("dr.other@otherclinic.direct.test");
    assert_eq!(api.expect(&other, 403, "POST", "/v1/messages", Some(&theirs))["error"]["code"], "not-verified");
    let mut spoof = referral.clone();
    spoof["from"] = json!(me);
    assert_eq!(api.expect(&other, 403, "POST", "/v1/messages", Some(&spoof))["error"]["code"], "not-your-address");

    // Other Clinic's EHR reuses the referral's Message-ID over SMTP (an EHR picks its own there):
    // each practice sees only its own recipients and timeline, and Smith Pediatrics' are unchanged.
    let before = api.expect(&kareo, 200, "GET", &format!("/v1/messages/{message_id}"), None);
    j.a.ok(&["proofing", "approve", "Other Clinic", "--out-of-band", "--reason", "test practice"]);
    let dr_other = "dr.other@otherclinic.direct.test";
    j.a.ok(&["cert", "issue", dr_other]);
    j.a.run_in(&["address", "passwd", dr_other, "--password-stdin"], Some(format!("{PASSWORD}\n").as_bytes())).ok();
    let reuse = network::swaks(
        j.a_submission,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            dr_other,
            "--auth-password",
            PASSWORD,
            "--from",
            dr_other,
            "--to",
            "secret.consult@b.test",
            "--header",
            &format!("Message-Id: <{message_id}>"),
            "--body",
            "Other business.",
        ],
    );
    assert_eq!(reuse.status, 0, "{}", reuse.stderr);
    let theirs = wait_for(&j, api, &other, &format!("/v1/messages/{message_id}"), |v| v["recipients"].is_array());
    let recipients = |v: &Value| -> Vec<String> {
        v["recipients"].as_array().unwrap().iter().map(|r| r["recipient"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(recipients(&theirs), ["secret.consult@b.test"], "{theirs}");
    let after = api.expect(&kareo, 200, "GET", &format!("/v1/messages/{message_id}"), None);
    assert_eq!(recipients(&after), ["dr.jones@b.test"], "{after}");
    assert_eq!(after["recipients"], before["recipients"], "Smith Pediatrics' tracking is unchanged");
    let history = api.expect(&kareo, 200, "GET", &format!("/v1/referrals/{referral_id}"), None);
    assert!(!history.to_string().contains("secret.consult"), "{history}");

    // A revoked token stops working; everything above is in the audit log.
    j.a.ok(&["token", "revoke", "other-ehr"]);
    assert_eq!(api.call(Some(&other), "GET", "/v1/practice", None).status, 401);
    let audit = j.a.json(&["audit", "--limit", "200"]).to_string();
    for action in [
        "token.create",
        "token.bind",
        "practice.add",
        "proofing.submit",
        "referral.record",
        "referral.received",
        "document.read",
        "token.revoke",
    ] {
        assert!(audit.contains(action), "{action} audited");
    }
    // Documents are sealed at rest: the C-CDA is nowhere in the clear in the database.
    let sealed = j.a.sql("SELECT sealed FROM documents");
    assert_eq!(sealed.len(), 3);
    assert!(sealed.iter().all(|d| !d.windows(64).any(|w| w == &ccda[..64])));
    // Nor are the patient's identifier, the subjects or the file names, on either node: in the
    // database file or its write-ahead log.
    for node in [&j.a, &j.b] {
        let mut bytes = std::fs::read(&node.db).unwrap();
        bytes.extend(std::fs::read(format!("{}-wal", node.db)).unwrap_or_default());
        for clear in ["MRN-1001", "asthma follow-up", "Consult report", "referral-note.xml", "consult-note.xml"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear.as_bytes()), "{clear} in the clear in {}", node.db);
        }
    }
}

#[test]
fn the_served_openapi_document_describes_every_route_it_serves() {
    // The [http] section comes last: a small body limit for this node.
    let Single { node, daemon: _daemon, api, _mail, _scratch } =
        single_node("a.test", |config| format!("{config}max_body_bytes = 4096\n"));
    let doc = api.call(None, "GET", "/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let token = token(&node, "probe", None);
    let mut operations = 0;
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            // Every documented operation exists: never the router's 404 or 405.
            let concrete = path.replace('{', "x").replace('}', "");
            let answer = api.call(Some(&token), &method.to_uppercase(), &concrete, None);
            let message = answer.body["error"]["message"].as_str().unwrap_or("");
            assert!(answer.status != 405 && !message.starts_with("no such endpoint"), "{method} {path}: {message}");
            operations += 1;
        }
    }
    assert!(operations >= 20);
    // What is not documented is not served, with a JSON error.
    let unknown = api.call(Some(&token), "GET", "/v1/nothing-here", None);
    assert_eq!((unknown.status, unknown.body["error"]["code"].clone()), (404, json!("not-found")));
    let wrong_method = api.call(Some(&token), "DELETE", "/v1/practice", None);
    assert_eq!(wrong_method.status, 405);
    // A body past the limit is refused with a JSON error, bad JSON names what is wrong.
    let big = json!({"from": "x@a.test", "to": ["y@b.test"], "subject": "s", "body": "x".repeat(5000)});
    let refused = api.call(Some(&token), "POST", "/v1/messages", Some(&big));
    assert_eq!((refused.status, refused.body["error"]["code"].clone()), (413, json!("too-large")));
    let bad = api.call(Some(&token), "POST", "/v1/practice", Some(&json!({"name": 7})));
    assert_eq!((bad.status, bad.body["error"]["field"].clone()), (400, json!("name")));
    // Plain HTTP gets no answer: the API is HTTPS only.
    let plain = run("curl", &["-sS", "-m", "5", &format!("http://127.0.0.1:{}/v1/openapi.json", api.port)], None, &[]);
    assert_ne!(plain.status, 0);
    // TLS 1.1 is refused.
    let old = run(
        "curl",
        &[
            "-sS",
            "--cacert",
            &api.ca_file,
            "--tls-max",
            "1.1",
            &format!("https://localhost:{}/v1/openapi.json", api.port),
        ],
        None,
        &[],
    );
    assert_ne!(old.status, 0);
}

/// An HTTPS connection to a node's API, spoken by hand so that a request can be sent in pieces.
struct RawHttps(openssl::ssl::SslStream<std::net::TcpStream>);

impl RawHttps {
    fn connect(port: u16, ca_file: &str) -> RawHttps {
        let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
        builder.set_ca_file(ca_file).unwrap();
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        RawHttps(builder.build().connect("localhost", tcp).unwrap())
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.0.write_all(bytes).unwrap();
        self.0.flush().unwrap();
    }

    /// The next response's status and body (Content-Length framed, as the API answers).
    fn response(&mut self) -> (u16, String) {
        use std::io::Read;
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            assert_eq!(self.0.read(&mut byte).unwrap(), 1, "closed inside a response head: {raw:?}");
            raw.push(byte[0]);
        }
        let head = String::from_utf8(raw).unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        self.0.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }

    /// Whether the server has closed the connection (rather than the read timing out).
    fn closed_by_server(&mut self) -> bool {
        use std::io::Read;
        match self.0.read(&mut [0u8; 16]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }
}

#[test]
fn sigterm_lets_an_api_request_under_way_answer_and_closes_idle_connections() {
    let Single { node, daemon, api, _mail, _scratch } =
        single_node(DOMAIN, |config| config.replace("[server]\n", "[server]\nstop_grace_secs = 20\n"));
    let kareo = token(&node, "kareo", None);

    // A kept-alive connection, idle after one request.
    let mut idle = RawHttps::connect(api.port, &api.ca_file);
    idle.send(
        format!("GET /v1/practice HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {kareo}\r\n\r\n").as_bytes(),
    );
    assert_eq!(idle.response().0, 403, "no practice yet");
    // A request under way: its head and half its body sent.
    let body = json!({"name": "Smith Pediatrics"}).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut busy = RawHttps::connect(api.port, &api.ca_file);
    busy.send(
        format!(
            "POST /v1/practice HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {kareo}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    busy.send(first);
    // Time for the server to read the head: a request whose head has not arrived is not under way.
    std::thread::sleep(std::time::Duration::from_millis(200));

    let asked = std::time::Instant::now();
    daemon.terminate();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(idle.closed_by_server(), "the idle connection is closed at once");
    // The request under way is answered (and done), then its connection is closed.
    busy.send(rest);
    let (status, answer) = busy.response();
    assert_eq!(status, 201, "{answer}: {}", node.serve_log());
    assert!(busy.closed_by_server());

    let status = daemon.wait_exit(std::time::Duration::from_secs(8));
    assert!(status.success(), "{status}: {}", node.serve_log());
    assert!(asked.elapsed() < std::time::Duration::from_secs(5), "not the 20 s grace time: {}", node.serve_log());
    assert!(node.serve_log().contains("0 API request(s) under way"), "{}", node.serve_log());
    assert_eq!(node.sql("SELECT name FROM practices"), [b"Smith Pediatrics".to_vec()]);
}

#[test]
fn sockets_that_never_start_tls_or_trickle_a_body_cannot_crowd_out_an_ehr() {
    use common::servers::connect_from;
    let Single { node, daemon: _daemon, api, _mail, _scratch } = single_node(DOMAIN, |config| {
        config
            .replace("[server]\n", "[server]\nmax_connections_per_ip = 5\n")
            .replace("[http]\n", "[http]\nrequest_timeout_secs = 2\n")
    });
    let kareo = token(&node, "kareo", None);
    // Five sockets from 127.0.0.2 that never start TLS; a sixth from there is closed at once.
    let _silent: Vec<_> = (0..5).map(|_| connect_from([127, 0, 0, 2], api.port)).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut sixth = connect_from([127, 0, 0, 2], api.port);
    sixth.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(std::io::Read::read(&mut sixth, &mut [0u8; 16]).unwrap(), 0, "turned away");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // An EHR elsewhere is served meanwhile.
    assert_eq!(api.call(Some(&kareo), "GET", "/v1/practice", None).status, 403, "no practice yet: but answered");

    // A body trickled a byte every 400 ms is answered 408 once the request timeout passes.
    let mut slow = RawHttps::connect(api.port, &api.ca_file);
    slow.send(
        format!(
            "POST /v1/practice HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {kareo}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        .as_bytes(),
    );
    let started = std::time::Instant::now();
    for _ in 0..8 {
        // The server may answer (and close) before the body is all sent.
        if std::io::Write::write_all(&mut slow.0, b" ").and_then(|()| std::io::Write::flush(&mut slow.0)).is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    let (status, body) = slow.response();
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("\"timeout\""), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn guessing_tokens_from_one_address_is_slowed_down() {
    let Single { node, daemon: _daemon, api, _mail, _scratch } = single_node(DOMAIN, |config| config);
    let kareo = token(&node, "kareo", None);
    for n in 0..20 {
        let guess = format!("hisp_guess{n}");
        assert_eq!(api.call(Some(&guess), "GET", "/v1/practice", None).status, 401);
    }
    // From then on that address waits, whatever token it shows.
    let throttled = api.call(Some("hisp_guess20"), "GET", "/v1/practice", None);
    assert_eq!((throttled.status, throttled.body["error"]["code"].clone()), (429, json!("too-many")));
    assert_eq!(api.call(Some(&kareo), "GET", "/v1/practice", None).status, 429);
}

#[test]
fn a_practice_keeps_the_contacts_it_shares_documents_with_and_sees_no_one_elses() {
    let Single { node, daemon: _daemon, api, _mail, _scratch } = single_node(DOMAIN, |config| config);
    node.ok(&["practice", "add", "Elm Clinic", "--domain", "elm.test"]);
    node.ok(&["practice", "add", "Oak Clinic", "--domain", "oak.test"]);
    let elm = token(&node, "elm", Some("Elm Clinic"));
    let oak = token(&node, "oak", Some("Oak Clinic"));
    let jane = json!({"name": "Jane Roe", "organization": "Springfield Law", "email": "Jane@Law.example",
                      "mobile": "+1 (217) 555-0100"});
    let added = api.expect(&elm, 201, "POST", "/v1/share-contacts", Some(&jane));
    assert_eq!((added["email"].clone(), added["mobile"].clone()), (json!("jane@law.example"), json!("+12175550100")));
    let id = added["id"].as_i64().unwrap();
    let path = format!("/v1/share-contacts/{id}");
    let again = api.call(Some(&elm), "POST", "/v1/share-contacts", Some(&jane));
    assert_eq!(again.status, 409, "one contact per address: {}", again.body);
    let bad = api.call(Some(&elm), "POST", "/v1/share-contacts", Some(&json!({"name": "", "email": "x"})));
    assert_eq!((bad.status, bad.body["error"]["field"].clone()), (400, json!("name")));
    let unknown = api.call(
        Some(&elm),
        "POST",
        "/v1/share-contacts",
        Some(&json!({"name": "A", "email": "a@b.example", "fax": "1"})),
    );
    assert_eq!(unknown.status, 400);
    // Another practice sees nothing of it and changes nothing.
    assert_eq!(api.expect(&oak, 200, "GET", "/v1/share-contacts", None)["contacts"], json!([]));
    assert_eq!(api.call(Some(&oak), "GET", &path, None).status, 404);
    assert_eq!(api.call(Some(&oak), "DELETE", &path, None).status, 404);
    let moved = json!({"name": "Jane Roe", "email": "jroe@law.example"});
    let changed = api.expect(&elm, 200, "PUT", &path, Some(&moved));
    assert_eq!((changed["email"].clone(), changed["mobile"].clone()), (json!("jroe@law.example"), json!(null)));
    let listed = node.json(&["share", "contact", "list", "--practice", "Elm Clinic"]);
    assert_eq!(listed["contacts"][0]["email"], "jroe@law.example", "the CLI sees the same: {listed}");
    for row in node.sql("SELECT email FROM share_contacts") {
        assert!(!String::from_utf8_lossy(&row).contains("law.example"), "sealed at rest");
    }
    api.expect(&elm, 200, "DELETE", &path, None);
    assert_eq!(api.call(Some(&elm), "GET", &path, None).status, 404);
    let cli = node.json(&[
        "share",
        "contact",
        "add",
        "--practice",
        "Elm Clinic",
        "--name",
        "Sam Poe",
        "--email",
        "sam@school.example",
    ]);
    assert_eq!(cli["name"], "Sam Poe");
}

#[test]
fn an_ehr_shares_a_document_by_link_as_a_member_who_may_and_follows_its_trail() {
    let files = Files::new();
    let (relay, out) = (free_port(), files.path("relay-mail"));
    let _relay = relay::smarthost(&files, relay, &out);
    let (cert, _) = relay::loopback_tls(&files);
    let password = files.write("relay.pass", b"relay-secret\n");
    let smarthost = format!(
        "[notify.email]\nrelay = \"127.0.0.1:{relay}\"\nfrom = \"no-reply@hisp.test\"\nusername = \"hisp\"\n\
         password_file = \"{password}\"\ntls_ca_file = \"{cert}\"\n"
    );
    let Single { node, daemon: _daemon, api, _mail, _scratch } = single_node(DOMAIN, |c| c + &smarthost);
    node.ok(&["practice", "add", "Elm Clinic", "--domain", "elm.test"]);
    node.ok(&["practice", "add", "Oak Clinic", "--domain", "oak.test"]);
    node.ok(&["practice", "sharing", "Elm Clinic", "--check", "sms", "--roles", "clinician"]);
    let member = |practice: &str, email: &str, role: &str| {
        let args = ["account", "add", "--practice", practice, "--name", "M", "--email", email, "--role", role];
        node.json(&[&args[..], &["--print-link"]].concat())["account"]["id"].as_i64().unwrap()
    };
    let (jones, ada, oaks) = (
        member("Elm Clinic", "jones@elm.test", "clinician"),
        member("Elm Clinic", "ada@elm.test", "admin"),
        member("Oak Clinic", "o@oak.test", "clinician"),
    );
    let (elm, oak) = (token(&node, "elm", Some("Elm Clinic")), token(&node, "oak", Some("Oak Clinic")));
    let jane = json!({"name": "Jane Roe", "email": "jane@law.test", "mobile": "+12175550100"});
    let contact = api.expect(&elm, 201, "POST", "/v1/share-contacts", Some(&jane))["id"].as_i64().unwrap();
    let oak_contact = api.expect(&oak, 201, "POST", "/v1/share-contacts", Some(&jane))["id"].as_i64().unwrap();
    // Base64 with line breaks, as GNU base64 writes it.
    let ccd = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ccda/ccd.xml")).unwrap();
    let wrapped: String =
        b64(&ccd).as_bytes().chunks(76).map(|l| format!("{}\n", String::from_utf8_lossy(l))).collect();
    let file = json!({"filename": "ccd.xml", "content_type": "text/xml", "content_base64": wrapped});
    let request = |by: i64, contact: i64| json!({"contact_id": contact, "shared_by": by, "file": file.clone()});

    let made = api.expect(&elm, 201, "POST", "/v1/shares", Some(&request(jones, contact)));
    assert_eq!((made["link_emailed"].clone(), made["share"]["state"].clone()), (json!(true), json!("waiting")));
    assert_eq!((made["share"]["check"].clone(), made["share"]["size"].clone()), (json!("sms"), json!(ccd.len())));
    let id = made["share"]["id"].as_i64().unwrap();
    let mail = relay::wait_files(&out, "eml", 1).remove(0);
    assert!(mail.contains("Elm Clinic shared a document with you") && mail.contains("/s/"), "{mail}");
    assert!(!mail.contains("Betterhalf") && !mail.contains("ccd.xml"), "no PHI in the e-mail");

    // Refused: a role the practice does not let share, another practice's member or contact,
    // neither a document nor a file, another practice's token.
    let admin = api.call(Some(&elm), "POST", "/v1/shares", Some(&request(ada, contact)));
    assert_eq!((admin.status, admin.body["error"]["code"].clone()), (403, json!("may-not-share")), "{}", admin.body);
    let stranger = api.call(Some(&elm), "POST", "/v1/shares", Some(&request(oaks, contact)));
    assert_eq!((stranger.status, stranger.body["error"]["field"].clone()), (400, json!("shared_by")));
    let theirs = api.call(Some(&elm), "POST", "/v1/shares", Some(&request(jones, oak_contact)));
    assert_eq!((theirs.status, theirs.body["error"]["field"].clone()), (400, json!("contact")), "{}", theirs.body);
    let nothing = api.call(Some(&elm), "POST", "/v1/shares", Some(&json!({"contact_id": contact, "shared_by": jones})));
    assert_eq!(nothing.status, 400);
    let path = format!("/v1/shares/{id}");
    assert_eq!(api.call(Some(&oak), "GET", &path, None).status, 404);
    assert_eq!(api.expect(&oak, 200, "GET", "/v1/shares", None)["shares"], json!([]));

    // Revoke, then a fresh link: the trail says so, the CLI sees the same.
    let revoked = api.expect(&elm, 200, "POST", &format!("{path}/revoke"), Some(&json!({"by": jones})));
    assert_eq!(revoked["share"]["state"], "revoked");
    let fresh = api.expect(&elm, 200, "POST", &format!("{path}/resend"), Some(&json!({"by": jones})));
    assert_eq!((fresh["share"]["state"].clone(), fresh["link_emailed"].clone()), (json!("waiting"), json!(true)));
    relay::wait_files(&out, "eml", 2);
    let shown = api.expect(&elm, 200, "GET", &path, None);
    let events: Vec<&str> = shown["trail"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["sent", "revoked", "resent"]);
    let cli = node.json(&["share", "show", &id.to_string(), "--practice", "Elm Clinic"]);
    assert_eq!(cli["trail"].as_array().unwrap().len(), 3, "{cli}");
    let by_cli = node.json(&["share", "revoke", &id.to_string(), "--practice", "Elm Clinic", "--by", "jones@elm.test"]);
    assert_eq!(by_cli["share"]["state"], "revoked");
    let refused = node.run(&["share", "revoke", &id.to_string(), "--practice", "Elm Clinic", "--by", "ada@elm.test"]);
    assert!(refused.stderr.contains("the admin role may not share"), "{}", refused.stderr);
    let listed = node.json(&["share", "list", "--practice", "Elm Clinic"]);
    assert_eq!(listed["shares"][0]["filename"], "ccd.xml");
}

/// Names as practices write them: a trailing dot, accents, a username as long as an address
/// allows. Each is set up through the API on the first try, found again by the CLI under the same
/// name, trusts its node's CA from the start, and is verified with every user's certificate.
#[test]
fn a_practice_named_as_practices_name_themselves_is_set_up_on_the_first_try() {
    // The trust framework the operator joined: a bundle (PKCS#7, as DirectTrust publishes them)
    // every new practice subscribes to; and one whose server is not there yet.
    let files = Files::new();
    let (framework_ca, _) = self_signed_tls(&files, "framework", "/CN=Framework CA", "DNS:framework.test");
    let bundle = files.p("framework.p7b");
    openssl(&["crl2pkcs7", "-nocrl", "-certfile", &framework_ca, "-outform", "DER", "-out", &bundle]);
    let missing = files.p("not-yet.p7b");
    let trust = format!("[trust]\nnew_practice_bundles = [{{ url = \"{bundle}\" }}, {{ url = \"{missing}\" }}]\n");
    let Single { node, daemon, api, _mail, _scratch } = single_node(DOMAIN, |config| format!("{config}{trust}"));
    node.ok(&["ca", "init"]);
    let ca_sha256 = node.json(&["ca", "show"])["sha256"].as_str().unwrap().replace(':', "").to_lowercase();

    let lee = token(&node, "lee", None);
    let name = "Lee Family Medicine, P.A.";
    let created = api.expect(&lee, 201, "POST", "/v1/practice", Some(&json!({ "name": name })));
    assert_eq!(created["practice"]["name"], name, "the name as written: {created}");
    let domain = "leefamilymedicinepa.direct.test";
    assert_eq!(created["practice"]["domains"], json!([domain]));
    assert_eq!(api.expect(&lee, 200, "GET", "/v1/practice", None)["practice"]["name"], name);
    assert_eq!(node.json(&["practice", "show", name])["practice"]["name"], name);
    node.ok(&["token", "create", "lee-2", "--practice", name]);
    assert_eq!(node.json(&["proofing", "status", name])["state"], "not-started");
    let anchors = node.json(&["anchor", "list", "--domain", domain]);
    assert_eq!(anchors.as_array().unwrap().len(), 1, "{anchors}");
    assert_eq!(anchors[0]["sha256"].as_str().unwrap().replace(':', "").to_lowercase(), ca_sha256);
    assert_eq!((anchors[0]["incoming"].clone(), anchors[0]["outgoing"].clone()), (json!(true), json!(true)));
    // Subscribed to the framework's bundle from the start; the one not there yet is said, not fatal.
    assert_eq!(created["bundles"][0]["anchors"], 1, "{created}");
    assert!(created["bundles"][1]["error"].as_str().is_some_and(|e| e.contains("tries again")), "{created}");
    let subscribed = node.json(&["bundle", "list"]);
    let ours: Vec<&Value> = subscribed.as_array().unwrap().iter().filter(|b| b["domain"] == domain).collect();
    assert_eq!(ours.len(), 2, "{subscribed}");

    // A username of 64 characters: its address is too long for a certificate's common name.
    let long = "a".repeat(64);
    let user = api.expect(&lee, 201, "POST", "/v1/practice/users", Some(&json!({ "username": long })));
    let long_address = format!("{long}@{domain}");
    assert_eq!(user["address"], long_address.as_str());
    let started = api.expect(
        &lee,
        200,
        "POST",
        "/v1/proofing/terms",
        Some(&json!({"activation_terms": true, "identity_verification_agreement": true})),
    );
    // The business is the practice, already filled in; a section not ready says what it lacks.
    assert_eq!(started["enrollment"]["business"]["name"], name, "{started}");
    assert_eq!(
        (started["sections"][0]["section"].clone(), started["sections"][0]["status"].clone()),
        (json!("business"), json!("ready"))
    );
    let answers = json!({"knowledge_answers": [{"question": "First car?", "answer": "Volvo"}]});
    let partial = api.expect(&lee, 200, "PUT", "/v1/proofing/sections/financial_id", Some(&answers));
    let financial = &partial["sections"][3];
    assert_eq!(financial["status"], "incomplete");
    assert!(financial["message"].as_str().unwrap().contains("3 knowledge questions (1 answered)"), "{financial}");
    let mut representative = proofing_form()["representative"].clone();
    representative["middle_name"] = json!("Quinn");
    representative["suffix"] = json!("Jr.");
    let named = api.expect(&lee, 200, "PUT", "/v1/proofing/sections/representative", Some(&representative));
    assert_eq!(named["sections"][1]["status"], "ready", "{named}");
    for section in ["government_id", "financial_id"] {
        api.expect(&lee, 200, "PUT", &format!("/v1/proofing/sections/{section}"), Some(&proofing_form()[section]));
    }
    api.expect(&lee, 200, "POST", "/v1/proofing/code", Some(&json!({"phone": "+15555550123"})));
    let code = code_from_log(&node);
    api.expect(&lee, 200, "POST", "/v1/proofing/confirm", Some(&json!({ "code": code })));
    let verified = api.expect(&lee, 200, "POST", "/v1/proofing/submit", None);
    assert_eq!(verified["state"], "verified", "{verified}");
    assert_eq!(verified["certificates_issued"], json!([long_address]));
    let later = api.expect(&lee, 201, "POST", "/v1/practice/users", Some(&json!({ "username": "dr.lee" })));
    assert_eq!(later["certificate_issued"], true, "{later}");
    let certs = node.json(&["cert", "list", "--owner", &long_address]);
    assert_eq!(certs.as_array().map(Vec::len), Some(1), "{certs}");

    // Accents come off the label, the name keeps them; the CLI's approval issues certificates too.
    let clinica = token(&node, "clinica", None);
    let created = api.expect(&clinica, 201, "POST", "/v1/practice", Some(&json!({"name": "Clínica Niños"})));
    assert_eq!(created["practice"]["name"], "Clínica Niños");
    assert_eq!(created["practice"]["domains"], json!(["clinicaninos.direct.test"]));
    api.expect(&clinica, 201, "POST", "/v1/practice/users", Some(&json!({"username": "dra.ruiz"})));
    let approved =
        node.json(&["proofing", "approve", "Clínica Niños", "--out-of-band", "--reason", "met the director"]);
    assert_eq!(approved["certificates_issued"], json!(["dra.ruiz@clinicaninos.direct.test"]), "{approved}");
    drop(daemon);
}

/// With no certificate configured, the API serves the node's own self-signed one: made once, kept
/// across restarts, exported for curl's `--cacert`, and named at start-up.
#[test]
fn the_apis_own_certificate_is_kept_across_restarts_and_exported_for_clients() {
    let without_tls = |config: String| {
        config.lines().filter(|l| !l.starts_with("tls_")).map(|l| format!("{l}\n")).collect::<String>()
    };
    let Single { node, daemon, api, _mail, _scratch } = single_node(DOMAIN, without_tls);
    // The start-up lines follow the listeners by a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !node.serve_log().contains("self-signed") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = node.serve_log();
    assert!(log.contains("self-signed") && log.contains("hisp http cert export"), "{log}");
    let pem = node.files.p("api.pem");
    let wrote = node.json(&["http", "cert", "export", "--out", &pem]);
    assert_eq!(wrote["file"], pem.as_str(), "{wrote}");
    let first = std::fs::read(&pem).unwrap();
    assert!(first.starts_with(b"-----BEGIN CERTIFICATE-----"));
    let trusting = Api { port: api.port, ca_file: pem.clone() };
    assert_eq!(trusting.call(None, "GET", "/v1/practice", None).status, 401, "TLS verified with the export");
    let again = node.run(&["http", "cert", "export", "--out", &pem]);
    assert_ne!(again.status, 0, "an existing file is not overwritten");
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    node.ok(&["http", "cert", "export", "--out", &pem, "--force"]);

    drop(daemon);
    let _daemon = node.serve(api.port);
    assert_eq!(node.ok(&["http", "cert", "export"]).stdout, first, "the same certificate after a restart");
    assert_eq!(trusting.call(None, "GET", "/v1/practice", None).status, 401);
}

/// An EHR may send again under the same Idempotency-Key without sending twice; a recipient given
/// twice gets one copy; base64 in lines is taken; a referral's XML that is not a C-CDA and a
/// message over the node's limit are refused with the field or the limit, before anything is queued.
#[test]
fn an_ehr_may_retry_a_send_safely_and_bad_files_are_named_before_anything_is_queued() {
    let limit =
        |config: String| config.replace("min_free_disk_mb = 0\n", "min_free_disk_mb = 0\nmax_message_bytes = 400000\n");
    let Single { node, daemon: _daemon, api, _mail, _scratch } = single_node(DOMAIN, limit);
    node.ok(&["ca", "init"]);
    let t = token(&node, "kareo", None);
    api.expect(&t, 201, "POST", "/v1/practice", Some(&json!({"name": "Smith Pediatrics"})));
    api.expect(&t, 201, "POST", "/v1/practice/users", Some(&json!({"username": "dr.smith"})));
    node.ok(&["proofing", "approve", "Smith Pediatrics", "--out-of-band", "--reason", "test practice"]);
    let me = format!("dr.smith@{DOMAIN}");
    // As GNU base64 writes it: lines of 76 characters.
    let ccda = fixture("ccda/referral-note.xml");
    let lines: Vec<String> = b64(&ccda).as_bytes().chunks(76).map(|l| String::from_utf8(l.to_vec()).unwrap()).collect();
    let message = |to: Value, content: &str, sections: Value| {
        json!({"from": me, "to": to, "subject": "Referral", "body": "See attached.",
               "attachments": [{"filename": "referral-note.xml", "content_type": "application/xml", "content_base64": content}],
               "referral": {"patient_id": "MRN-1", "direction": "transferring", "ccda_sections": sections}})
    };
    let good = message(
        json!(["dr.jones@b.test", "DR.JONES@b.test"]),
        &lines.join("\n"),
        json!(["problems", "Problems", "plan"]),
    );
    let key = "Idempotency-Key: 6f1c2a3e-referral-1";
    let first = api.call_with(&t, "POST", "/v1/messages", Some(&good), &[key]);
    assert_eq!(first.status, 202, "{}", String::from_utf8_lossy(&first.raw));
    assert_eq!(first.body["recipients"], json!(["dr.jones@b.test"]), "one copy per recipient");
    let again = api.call_with(&t, "POST", "/v1/messages", Some(&good), &[key]);
    assert_eq!((again.status, again.body["message_id"].clone()), (202, first.body["message_id"].clone()));
    let sent = api.expect(&t, 200, "GET", "/v1/messages?way=sent", None);
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1, "sent once: {sent}");
    let referral = api.expect(&t, 200, "GET", &format!("/v1/referrals/{}", first.body["referral_id"]), None);
    assert_eq!(referral["sections"], json!(["problems", "plan"]));
    // b.test's DNS does not answer: while its delivery is retried, the message says why and when next.
    let path = format!("/v1/messages/{}", first.body["message_id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let retry = loop {
        let shown = api.expect(&t, 200, "GET", &path, None);
        if let Some(retry) = shown["recipients"][0].get("retry").filter(|r| !r.is_null()) {
            break retry.clone();
        }
        assert!(std::time::Instant::now() < deadline, "never shown as retried: {shown}\n{}", node.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(retry["attempts"].as_i64().unwrap() >= 1 && retry["next_attempt_at"].is_i64(), "{retry}");
    assert!(!retry["reason"].as_str().unwrap_or("").is_empty(), "{retry}");
    let other = message(json!(["dr.lee@b.test"]), &b64(&ccda), json!([]));
    let reused = api.call_with(&t, "POST", "/v1/messages", Some(&other), &[key]);
    assert_eq!((reused.status, reused.body["error"]["code"].clone()), (422, json!("idempotency-key-reused")));

    let not_ccda = message(json!(["dr.jones@b.test"]), &b64(b"<note>hello</note>"), json!([]));
    let refused = api.expect(&t, 400, "POST", "/v1/messages", Some(&not_ccda));
    assert_eq!(refused["error"]["field"], "attachments[0].content_base64", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("ClinicalDocument"), "{refused}");
    let mut big = message(json!(["dr.jones@b.test"]), &b64(&ccda), json!([]));
    big["attachments"].as_array_mut().unwrap().push(json!({"filename": "scan.pdf", "content_type": "application/pdf",
        "content_base64": b64(&vec![7u8; 300_000])}));
    let too_large = api.expect(&t, 413, "POST", "/v1/messages", Some(&big));
    assert!(too_large["error"]["message"].as_str().unwrap().contains("400000"), "{too_large}");
    let sent = api.expect(&t, 200, "GET", "/v1/messages?way=sent", None);
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1, "nothing else was queued: {sent}");

    // Every list pages with a cursor, to its end.
    for name in ["Ann Lee", "Bo Park", "Cy Ray"] {
        let email = format!("{}@law.example", name.split(' ').next().unwrap().to_lowercase());
        api.expect(&t, 201, "POST", "/v1/share-contacts", Some(&json!({"name": name, "email": email})));
    }
    let first = api.expect(&t, 200, "GET", "/v1/share-contacts?limit=2", None);
    assert_eq!(first["contacts"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let second = api.expect(&t, 200, "GET", &format!("/v1/share-contacts?limit=2&cursor={cursor}"), None);
    assert_eq!((second["contacts"].as_array().unwrap().len(), second["next_cursor"].clone()), (1, Value::Null));
    let names: Vec<&str> = first["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["contacts"].as_array().unwrap())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "each once: {names:?}");
    assert_eq!(api.expect(&t, 200, "GET", "/v1/documents?limit=1", None)["documents"].as_array().unwrap().len(), 1);
    let bad = api.expect(&t, 400, "GET", "/v1/messages?cursor=not-ours", None);
    assert_eq!(bad["error"]["field"], "cursor");
}
