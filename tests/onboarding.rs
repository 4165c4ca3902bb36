//! Practice onboarding through the CLI against a real database: a practice added with a domain
//! derived from its name, identity proofing step by step (failing on bad data with every reason,
//! then passing), the gates (no certificate, no sending before verification, proved with swaks
//! against `hisp serve`), the manual and http verifiers (a local stub service), and the e-mail
//! code channel (through aiosmtpd over STARTTLS).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::network::{swaks_shown, PASSWORD};
use common::node::*;
use common::servers::{self, free_port};
use common::*;
use serde_json::json;

const PARENT: &str = "[onboarding]\nparent_domain = \"direct.example.org\"\n";
const DOMAIN: &str = "smithpediatrics.direct.example.org";

fn section(node: &Node, name: &str, data: &serde_json::Value) -> Run {
    let file = node.files.write(&format!("{name}.json"), data.to_string().as_bytes());
    node.run(&["--json", "proofing", "section", "Smith Pediatrics", name, "--file", &file])
}

/// Sends a code (log channel) and returns it as the log printed it.
fn code_from_log(node: &Node) -> String {
    let sent = node.ok(&["proofing", "send-code", DOMAIN, "--phone", "+15555550123"]);
    let line = sent.stderr.lines().find(|l| l.contains("confirmation code")).expect("the code in the log").to_string();
    line.split("): ").nth(1).unwrap()[..6].to_string()
}

/// `PARENT` and `config`, with the development choices these tests make unless `config` makes
/// its own: the rules decide, and codes go to the log.
fn development(config: &str) -> String {
    let mut out = format!("{PARENT}{config}");
    if !config.contains("verifier =") {
        out.push_str("verifier = \"rules\"\n");
    }
    if !config.contains("code_channel =") {
        out.push_str("code_channel = \"log\"\n");
    }
    out
}

fn started(config: &str) -> Node {
    let node = Node::with_config(&development(config));
    node.ok(&["practice", "add", "Smith Pediatrics"]);
    node.ok(&["proofing", "start", "Smith Pediatrics", "--accept-terms", "--accept-verification-agreement"]);
    node
}

#[test]
fn a_practice_proves_its_identity_before_it_gets_certificates() {
    let node = Node::with_config(&development(""));
    let added = node.json(&["practice", "add", "Smith Pediatrics"]);
    assert_eq!(added["domains"], json!([DOMAIN]), "the practice name without spaces under the parent");
    assert_eq!(added["proofing"], "not-started");
    assert_eq!(node.run(&["practice", "add", "smith pediatrics"]).status, 1, "names are unique");
    assert_eq!(node.run(&["practice", "add", "Other", "--label", "bad.label"]).status, 2);
    node.ok(&["address", "add", &format!("dr.smith@{DOMAIN}")]);
    node.ok(&["ca", "init"]);

    let refused = node.run(&["--json", "cert", "issue", &format!("dr.smith@{DOMAIN}")]);
    assert_eq!(refused.status, 1);
    assert_eq!(refused.json()["error"]["code"], "not-verified");
    assert!(refused.stderr.contains("has not completed identity proofing"), "{}", refused.stderr);

    // Nothing before the terms; both must be accepted.
    let early = section(&node, "business", &json!({"name": "Smith Pediatrics"}));
    assert_eq!(early.json()["error"]["code"], "proofing-state");
    let half = node.run(&["--json", "proofing", "start", DOMAIN, "--accept-terms"]);
    assert!(half.json()["error"]["message"].as_str().unwrap().starts_with("identity_verification_agreement"));
    node.ok(&["proofing", "start", DOMAIN, "--accept-terms", "--accept-verification-agreement"]);

    // Bad data: a minor, a mistyped NPI, a local phone number, a broken e-mail.
    let mut bad = proofing_form();
    bad["representative"]["date_of_birth"] = json!("2012-01-01");
    bad["representative"]["personal_email"] = json!("jane.smith");
    bad["government_id"] = json!({"npi": "1234567890"});
    bad["financial_id"] = json!({"phone": "555-0123"});
    for name in ["business", "representative", "government_id", "financial_id"] {
        section(&node, name, &bad[name]).ok();
    }
    let malformed = section(&node, "representative", &json!({"date_of_birth": "01/01/1975"}));
    assert_eq!(malformed.status, 1);
    assert!(malformed.stderr.contains("representative.date_of_birth"), "{}", malformed.stderr);
    // Every field is there, but a section shows ready only when its fields are also valid.
    let status = node.json(&["proofing", "status", DOMAIN]);
    let sections = status["sections"].as_array().unwrap();
    assert_eq!(sections[0]["status"], "ready", "business: {status}");
    for s in &sections[1..4] {
        assert_eq!(s["status"], "incomplete", "{s}");
        assert_eq!(s["missing"], json!([]), "{s}");
        assert!(!s["invalid"].as_array().unwrap().is_empty(), "{s}");
    }
    assert_eq!(sections[4]["status"], "incomplete", "the code is not confirmed yet");
    let unconfirmed = node.run(&["--json", "proofing", "submit", DOMAIN]);
    assert!(unconfirmed.stderr.contains("confirmation.code"), "{}", unconfirmed.stderr);

    // The code: a wrong one counts, the right one confirms.
    let code = code_from_log(&node);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let miss = node.run(&["proofing", "confirm", DOMAIN, wrong]);
    assert!(miss.stderr.contains("wrong code (4 tries left)"), "{}", miss.stderr);
    node.ok(&["proofing", "confirm", DOMAIN, &code]);

    let failed = node.json(&["proofing", "submit", DOMAIN]);
    assert_eq!(failed["state"], "failed");
    let fields: Vec<&str> =
        failed["reasons"].as_array().unwrap().iter().map(|r| r["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["representative.date_of_birth", "representative.personal_email", "government_id.npi", "financial_id.phone"],
        "{failed}"
    );
    assert!(failed["reasons"][2]["message"].as_str().unwrap().contains("check digit"));
    assert_eq!(node.run(&["cert", "issue", &format!("dr.smith@{DOMAIN}")]).status, 1);

    // Try Again with the right data.
    node.ok(&["proofing", "retry", DOMAIN]);
    let form = node.files.write("form.json", proofing_form().to_string().as_bytes());
    let verified = node.json(&["proofing", "submit", DOMAIN, "--file", &form]);
    assert_eq!(verified["state"], "verified", "{verified}");
    assert_eq!(verified["decided_by"], "rules");
    assert!(node.run(&["proofing", "retry", DOMAIN]).status != 0, "verified is final");
    node.ok(&["cert", "issue", &format!("dr.smith@{DOMAIN}")]);
    assert_eq!(node.json(&["practice", "list"])[0]["proofing"], "verified");

    // Every step is audited, and nothing of the form is in the clear in the database.
    let audit = node.json(&["audit", "--limit", "100"]).to_string();
    for action in [
        "practice.add",
        "proofing.terms",
        "proofing.section",
        "proofing.code",
        "proofing.confirm",
        "proofing.submit",
        "proofing.retry",
    ] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }
    for row in node.sql("SELECT sealed FROM proofing") {
        assert!(!row.windows(10).any(|w| w == b"1234567893") && !row.windows(5).any(|w| w == b"Smith"));
    }
}

#[test]
fn ssn_and_card_are_erased_once_decided() {
    let node = started("");
    let mut form = proofing_form();
    form["government_id"] = json!({"ssn": "123-45-6789"});
    form["financial_id"] = json!({"card_number": "4111 1111 1111 1111"});
    for name in ["business", "representative", "government_id", "financial_id"] {
        section(&node, name, &form[name]).ok();
    }
    let shown = node.json(&["proofing", "status", DOMAIN]).to_string();
    assert!(!shown.contains("123-45-6789") && !shown.contains("4111 1111 1111 1111"), "masked: {shown}");
    let code = code_from_log(&node);
    node.ok(&["proofing", "confirm", DOMAIN, &code]);
    let verified = node.json(&["proofing", "submit", DOMAIN]);
    assert_eq!(verified["state"], "verified", "{verified}");
    assert_eq!(verified["enrollment"]["government_id"], json!({"ssn_last4": "6789"}));
    assert_eq!(verified["enrollment"]["financial_id"], json!({"card_last4": "1111"}));
}

#[test]
fn a_manual_verifier_waits_for_the_admin() {
    let node = started("verifier = \"manual\"\n");
    let form = node.files.write("form.json", proofing_form().to_string().as_bytes());
    let code = code_from_log(&node);
    node.ok(&["proofing", "confirm", DOMAIN, &code]);
    assert_eq!(node.json(&["proofing", "submit", DOMAIN, "--file", &form])["state"], "submitted");
    assert_eq!(node.run(&["proofing", "reject", DOMAIN, "--reason", " "]).status, 2, "a reason is required");
    let rejected = node.json(&["proofing", "reject", DOMAIN, "--reason", "the NPI belongs to someone else"]);
    assert_eq!(rejected["state"], "failed");
    assert_eq!(rejected["reasons"][0]["message"], "the NPI belongs to someone else");
    node.ok(&["proofing", "retry", DOMAIN]);
    node.ok(&["proofing", "submit", DOMAIN]);
    // Approving gives the practice's users their certificates, as the API's path does.
    node.ok(&["address", "add", &format!("dr.smith@{DOMAIN}")]);
    node.ok(&["ca", "init"]);
    let approved = node.json(&["proofing", "approve", DOMAIN, "--reason", "called the practice back"]);
    assert_eq!(approved["state"], "verified");
    assert_eq!(approved["certificates_issued"], json!([format!("dr.smith@{DOMAIN}")]), "{approved}");
    assert!(node.json(&["cert", "list"]).to_string().contains(&format!("dr.smith@{DOMAIN}")));
    assert!(approved["decided_by"].as_str().unwrap().starts_with("cli:"));
}

/// A stub identity-verification service: fails a representative named "Nomatch", verifies others;
/// keeps what it was sent.
fn stub_service() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let submission: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let answer = if submission["enrollment"]["representative"]["last_name"] == "Nomatch" {
                json!({"decision": "failed", "reasons": [{"field": "representative.last_name", "message": "no record of this person at this address"}]})
            } else {
                json!({"decision": "verified"})
            };
            kept.lock().unwrap().push(submission);
            let text = answer.to_string();
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (port, seen)
}

#[test]
fn an_http_verifier_decides_after_the_rules() {
    let (port, seen) = stub_service();
    let node = started(&format!("verifier = \"http\"\nverifier_url = \"http://127.0.0.1:{port}/verify\"\n"));
    let mut form = proofing_form();
    form["representative"]["last_name"] = json!("Nomatch");
    let file = node.files.write("form.json", form.to_string().as_bytes());
    let code = code_from_log(&node);
    node.ok(&["proofing", "confirm", DOMAIN, &code]);
    let failed = node.json(&["proofing", "submit", DOMAIN, "--file", &file]);
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["decided_by"], "http");
    assert_eq!(failed["reasons"][0]["field"], "representative.last_name");
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["practice"], "Smith Pediatrics");
    assert_eq!(sent["domain"], DOMAIN);
    assert_eq!(sent["enrollment"]["government_id"]["npi"], "1234567893");
    assert_eq!(sent["confirmed_phone"], "+15555550123");

    node.ok(&["proofing", "retry", DOMAIN]);
    let good = node.files.write("good.json", proofing_form().to_string().as_bytes());
    assert_eq!(node.json(&["proofing", "submit", DOMAIN, "--file", &good])["state"], "verified");
    assert_eq!(seen.lock().unwrap().len(), 2);

    // A form the rules refuse never reaches the service; an unreachable service changes nothing.
    let dead = free_port();
    let other = started(&format!("verifier = \"http\"\nverifier_url = \"http://127.0.0.1:{dead}/verify\"\n"));
    let code = code_from_log(&other);
    other.ok(&["proofing", "confirm", DOMAIN, &code]);
    let down = other.run(&["--json", "proofing", "submit", DOMAIN, "--file", &good]);
    assert_eq!(down.json()["error"]["code"], "unavailable");
    assert_eq!(other.json(&["proofing", "status", DOMAIN])["state"], "in-progress");
}

#[test]
fn the_code_can_go_by_email_over_starttls() {
    let files = Files::new();
    let (cert, key) = localhost_tls(&files, "smtp");
    let maildir = files.p("maildir");
    let port = free_port();
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".peers/python").display().to_string();
    let args: Vec<String> = [
        &format!("PYTHONPATH={site}"),
        "python3",
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        &format!("127.0.0.1:{port}"),
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "-c",
        "aiosmtpd.handlers.Mailbox",
        &maildir,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _relay = servers::start_program("env", &args, port);

    let node = started(&format!(
        "code_channel = \"email\"\ncode_smtp = \"127.0.0.1:{port}\"\ncode_from = \"enrollment@hisp.example.org\"\n\
         code_to = \"{{phone}}@sms.example.net\"\ncode_smtp_verify_tls = false\n"
    ));
    let sent = node.ok(&["proofing", "send-code", DOMAIN, "--phone", "+15555550123"]);
    assert!(!sent.stderr.contains("confirmation code for"), "not in the log: {}", sent.stderr);
    let new = std::path::Path::new(&maildir).join("new");
    let mail: Vec<_> =
        std::fs::read_dir(&new).unwrap().flatten().map(|e| std::fs::read_to_string(e.path()).unwrap()).collect();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("To: <15555550123@sms.example.net>"), "{}", mail[0]);
    let code = mail[0].split(" is ").nth(1).unwrap()[..6].to_string();
    node.ok(&["proofing", "confirm", DOMAIN, &code]);
    assert_eq!(node.json(&["proofing", "status", DOMAIN])["sections"][4]["status"], "ready");
}

#[test]
fn a_user_of_an_unverified_practice_cannot_send() {
    let (submission, backbone) = (free_port(), free_port());
    let mail = tempfile::tempdir().unwrap();
    let node = Node::with_config(&format!(
        "{PARENT}[server]\nhostname = \"localhost\"\nsubmission = \"127.0.0.1:{submission}\"\n\
         backbone = \"127.0.0.1:{backbone}\"\nmail_dir = \"{}\"\n",
        mail.path().display()
    ));
    node.ok(&["practice", "add", "Smith Pediatrics"]);
    node.run_in(
        &["address", "add", &format!("dr.smith@{DOMAIN}"), "--password-stdin"],
        Some(format!("{PASSWORD}\n").as_bytes()),
    )
    .ok();
    let _daemon = node.serve(submission);
    let user = format!("dr.smith@{DOMAIN}");
    let attempt = || {
        let auth = ["--tls", "--auth", "PLAIN", "--auth-user", &user, "--auth-password", PASSWORD];
        let mut args = auth.to_vec();
        args.extend_from_slice(&["--from", &user, "--to", "dr.jones@b.test"]);
        swaks_shown(submission, &args)
    };
    let refused = attempt();
    assert_ne!(refused.status, 0);
    let said = refused.text();
    assert!(said.contains("550 5.7.1 practice Smith Pediatrics has not completed identity proofing"), "{said}");
    assert!(node.sql("SELECT id FROM queue_messages").is_empty(), "nothing was queued");

    node.ok(&["proofing", "approve", DOMAIN, "--out-of-band", "--reason", "in person at the HISP office"]);
    let accepted = attempt();
    assert_eq!(accepted.status, 0, "{}", accepted.text());
    assert_eq!(node.sql("SELECT id FROM queue_messages").len(), 1);
}

#[test]
fn by_default_an_admin_decides_and_no_code_is_sent_anywhere_unless_configured() {
    // No verifier and no code channel configured.
    let node = Node::with_config(PARENT);
    node.ok(&["practice", "add", "Smith Pediatrics"]);
    node.ok(&["proofing", "start", DOMAIN, "--accept-terms", "--accept-verification-agreement"]);
    let sent = node.run(&["--json", "proofing", "send-code", DOMAIN, "--phone", "+15555550123"]);
    assert_ne!(sent.status, 0);
    assert_eq!(sent.json()["error"]["code"], "unavailable");
    assert!(sent.json()["error"]["message"].as_str().unwrap().contains("no confirmation-code channel"));
    assert!(!sent.stderr.contains("confirmation code for"), "no code in the log: {}", sent.stderr);

    // With a (development) code channel but still no verifier: the rules pass, an admin decides.
    let node = Node::with_config(&format!("{PARENT}code_channel = \"log\"\n"));
    node.ok(&["practice", "add", "Smith Pediatrics"]);
    node.ok(&["proofing", "start", DOMAIN, "--accept-terms", "--accept-verification-agreement"]);
    let code = code_from_log(&node);
    node.ok(&["proofing", "confirm", DOMAIN, &code]);
    let form = node.files.write("form.json", proofing_form().to_string().as_bytes());
    let submitted = node.json(&["proofing", "submit", DOMAIN, "--file", &form]);
    assert_eq!(submitted["state"], "submitted", "{submitted}");
    assert_eq!(submitted["certificates_issued"], json!([]));
}

#[test]
fn confirmation_codes_are_sent_at_most_five_times_an_hour() {
    let node = started("");
    for _ in 0..5 {
        code_from_log(&node);
    }
    let sixth = node.run(&["--json", "proofing", "send-code", DOMAIN, "--phone", "+15555550123"]);
    assert_eq!(sixth.json()["error"]["code"], "too-many", "{}", sixth.text());
    assert!(!sixth.stderr.contains("confirmation code for"), "no sixth code: {}", sixth.stderr);
}
