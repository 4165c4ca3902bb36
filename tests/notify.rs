//! Delivery notification between two `hisp serve` nodes on loopback: B answers the messages it
//! opens with signed and encrypted MDNs (processed; dispatched when final delivery was asked for;
//! failed when delivery fails after trust), A tracks each recipient, suppresses duplicates, and
//! tells the sender once, with a DSN, when no notification comes in time. The MDNs and DSNs are
//! read back with mail-parser, an independent MIME parser.

mod common;

use common::network::*;
use common::node::Node;
use mail_parser::{Message, MessageParser, MimeHeaders};

const FINAL_DELIVERY: &str = "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n";

fn referral(message_id: &str, extra_headers: &str) -> String {
    format!(
        "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: Referral for Ms. Doe\r\nMessage-ID: {message_id}\r\n\
         {extra_headers}\r\nPlease see Ms. Doe.\r\n"
    )
}

/// Waits until `user@domain` on `node` holds `count` messages that `wanted` picks.
fn wait_for(node: &Node, domain: &str, user: &str, count: usize, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found: Vec<String> = mailbox(node, domain, user, 0).into_iter().filter(|m| wanted(m)).collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} wanted in {user}@{domain}, found {}:\n{}",
            found.len(),
            node.serve_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn is_mdn(m: &str) -> bool {
    m.contains("report-type=disposition-notification")
}

fn is_dsn(m: &str) -> bool {
    m.contains("report-type=delivery-status")
}

fn parse(text: &str) -> Message<'_> {
    MessageParser::default().parse(text.as_bytes()).expect("mail-parser reads it")
}

/// The fields of the report part (`message/disposition-notification` or
/// `message/delivery-status`), read as a header block by mail-parser; all blocks joined.
fn report_fields(message: &Message, subtype: &str) -> String {
    let part = message
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|ct| ct.ctype() == "message" && ct.subtype() == Some(subtype)))
        .unwrap_or_else(|| panic!("no message/{subtype} part"));
    String::from_utf8_lossy(part.contents()).replace("\r\n\r\n", "\r\n")
}

fn field<'a>(fields: &'a str, name: &str) -> Option<&'a str> {
    fields.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Checks an MDN as the Implementation Guide wants it; returns its disposition type and fields.
fn check_mdn(text: &str, original_id: &str) -> (String, String) {
    let message = parse(text);
    let ct = message.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")), "{text}");
    assert_eq!(ct.attribute("report-type"), Some("disposition-notification"));
    assert_eq!(message.from().and_then(|a| a.first()).and_then(|a| a.address()), Some("dr.jones@b.test"));
    assert!(message.header_raw("Disposition-Notification-To").is_none(), "an MDN asks for no MDN: {text}");
    // A opened it: signed by dr.jones's key and verified.
    assert!(message.header_raw("X-Direct-Verified-Sender").unwrap().trim().starts_with("dr.jones@b.test;"));
    let fields = report_fields(&message, "disposition-notification");
    assert_eq!(field(&fields, "Original-Message-ID"), Some(original_id), "{fields}");
    assert_eq!(field(&fields, "Final-Recipient"), Some("rfc822;dr.jones@b.test"), "{fields}");
    assert!(field(&fields, "Reporting-UA").is_some_and(|ua| ua.contains("hisp")), "{fields}");
    let disposition = field(&fields, "Disposition").unwrap().to_string();
    assert!(disposition.starts_with("automatic-action/MDN-sent-automatically;"), "{disposition}");
    let kind = disposition.rsplit(';').next().unwrap().to_string();
    (kind, fields)
}

fn track(node: &Node, message_id: &str) -> serde_json::Value {
    node.json(&["message", "track", message_id])
}

fn wait_track(node: &Node, message_id: &str, status: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let t = node.run(&["--json", "message", "track", message_id]);
        if t.status == 0 && t.json()["recipients"][0]["status"] == status {
            return t.json();
        }
        assert!(std::time::Instant::now() < deadline, "waiting for {status}: {}\n{}", t.text(), node.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn events(track: &serde_json::Value) -> Vec<String> {
    track["recipients"][0]["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().into()).collect()
}

/// `message` (plain, from dr.jones) sealed by B's CLI and sent straight to A's backbone with
/// swaks, as a peer HISP would.
fn inject(n: &Network, name: &str, message: &str) {
    let (plain, sealed) = (format!("{name}.eml"), format!("{name}.p7m.eml"));
    std::fs::write(n.b.files.path(&plain), message).unwrap();
    n.a.ok(&["cert", "export", "dr.smith@a.test", "--force", "--out", &n.b.files.p("smith.pem")]);
    n.b.ok(&[
        "message",
        "seal",
        "--in",
        &n.b.files.p(&plain),
        "--recipient-cert",
        &n.b.files.p("smith.pem"),
        "--out",
        &n.b.files.p(&sealed),
    ]);
    let data = format!("@{}", n.b.files.p(&sealed));
    let injected =
        swaks(n.a_backbone, &["--tls", "--from", "dr.jones@b.test", "--to", "dr.smith@a.test", "--data", &data]);
    assert_eq!(injected.status, 0, "{}", injected.stderr);
}

#[test]
fn a_timely_and_reliable_referral_gets_processed_and_dispatched_mdns_and_a_duplicate_is_suppressed() {
    let n = network();
    let sent = submit(&n, &referral("<tr-1@a.test>", FINAL_DELIVERY));
    assert_eq!(sent.status, 0, "{}", sent.stderr);
    wait_for(&n.b, "b.test", "dr.jones", 1, |m| m.contains("Please see Ms. Doe."));

    let mdns = wait_for(&n.a, "a.test", "dr.smith", 2, is_mdn);
    let mut kinds: Vec<(String, String)> = mdns.iter().map(|m| check_mdn(m, "<tr-1@a.test>")).collect();
    kinds.sort();
    assert_eq!(kinds[0].0, "dispatched");
    assert_eq!(kinds[1].0, "processed");
    assert!(field(&kinds[0].1, "X-DIRECT-FINAL-DESTINATION-DELIVERY").is_some(), "{}", kinds[0].1);
    assert!(field(&kinds[1].1, "X-DIRECT-FINAL-DESTINATION-DELIVERY").is_none(), "{}", kinds[1].1);

    let t = wait_track(&n.a, "tr-1@a.test", "dispatched");
    let r = &t["recipients"][0];
    assert_eq!(r["recipient"], "dr.jones@b.test");
    assert_eq!(r["final_delivery"], true);
    assert!(r["sent_at"].is_i64() && r["processed_at"].is_i64() && r["dispatched_at"].is_i64(), "{t}");
    let e = events(&t);
    for wanted in ["submitted", "sent", "processed", "dispatched"] {
        assert!(e.iter().any(|x| x == wanted), "{wanted} in {e:?}");
    }

    // The lists: A sent it; B received it from the verified sender.
    let sent_list = n.a.json(&["message", "list", "--sent"]);
    assert_eq!(sent_list[0]["message_id"], "<tr-1@a.test>");
    let received = n.b.json(&["message", "list", "--received", "--since", "1h"]);
    let referral_row = received.as_array().unwrap().iter().find(|m| m["message_id"] == "<tr-1@a.test>").unwrap();
    assert_eq!(
        (referral_row["sender"].as_str(), referral_row["kind"].as_str()),
        (Some("dr.smith@a.test"), Some("message"))
    );

    // A second processed MDN for the same message (a peer re-sending it under a new Message-ID):
    // recorded as a duplicate, not passed to dr.smith's mailbox.
    let duplicate =
        "From: dr.jones@b.test\r\nTo: dr.smith@a.test\r\nSubject: Processed again\r\nMessage-ID: <dup-1@b.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"d\"\r\n\r\n\
         --d\r\nContent-Type: text/plain\r\n\r\nprocessed\r\n--d\r\nContent-Type: message/disposition-notification\r\n\r\n\
         Reporting-UA: mx.b.test; other\r\nFinal-Recipient: rfc822;dr.jones@b.test\r\nOriginal-Message-ID: <tr-1@a.test>\r\n\
         Disposition: automatic-action/MDN-sent-automatically;processed\r\n\r\n--d--\r\n";
    inject(&n, "dup", duplicate);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !events(&track(&n.a, "<tr-1@a.test>")).iter().any(|e| e == "duplicate") {
        assert!(std::time::Instant::now() < deadline, "no duplicate recorded: {}", n.a.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(mailbox(&n.a, "a.test", "dr.smith", 0).into_iter().filter(|m| is_mdn(m)).count(), 2, "not passed on");

    // A report whose fields cannot be read (no disposition part) goes to the mailbox as it is.
    let unreadable = "From: dr.jones@b.test\r\nTo: dr.smith@a.test\r\nSubject: Unreadable report\r\n\
         Message-ID: <broken-1@b.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=disposition-notification; boundary=\"d\"\r\n\r\n\
         --d\r\nContent-Type: text/plain\r\n\r\nno fields here\r\n--d--\r\n";
    inject(&n, "broken", unreadable);
    wait_for(&n.a, "a.test", "dr.smith", 1, |m| m.contains("Unreadable report"));

    // No notification is answered with one: B got the referral only, and A queued nothing of its own.
    assert_eq!(mailbox(&n.b, "b.test", "dr.jones", 0).len(), 1);
    let a_queue: serde_json::Value = n.a.json(&["queue", "list", "--all"]);
    let outbound: Vec<&serde_json::Value> =
        a_queue.as_array().unwrap().iter().filter(|m| m["flow"] == "outbound").collect();
    assert_eq!(outbound.len(), 1, "only the referral left A: {a_queue}");
}

#[test]
fn a_malformed_options_header_gets_a_processed_mdn_and_no_dispatched_one() {
    let n = network();
    let malformed = "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional\r\n";
    assert_eq!(submit(&n, &referral("<bad-opt@a.test>", malformed)).status, 0);
    wait_for(&n.b, "b.test", "dr.jones", 1, |m| m.contains("Please see Ms. Doe."));
    let mdns = wait_for(&n.a, "a.test", "dr.smith", 1, is_mdn);
    assert_eq!(check_mdn(&mdns[0], "<bad-opt@a.test>").0, "processed");
    let t = wait_track(&n.a, "<bad-opt@a.test>", "processed");
    assert_eq!(t["recipients"][0]["final_delivery"], false);
    // B delivered the message and queued exactly one MDN for it, none claiming final delivery.
    let b_queue = n.b.json(&["queue", "list", "--all"]);
    let mdns_at_b: Vec<&serde_json::Value> =
        b_queue.as_array().unwrap().iter().filter(|m| m["flow"] == "outbound").collect();
    assert_eq!(mdns_at_b.len(), 1, "{b_queue}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(mailbox(&n.a, "a.test", "dr.smith", 0).into_iter().filter(|m| is_mdn(m)).count(), 1);

    // The commands say clearly what they cannot do.
    let unknown = n.a.run(&["message", "track", "<never-sent@a.test>"]);
    assert_ne!(unknown.status, 0);
    assert!(unknown.stderr.contains("no message <never-sent@a.test> was sent through this node"), "{}", unknown.stderr);
    let bad_since = n.a.run(&["message", "list", "--since", "last week"]);
    assert_ne!(bad_since.status, 0);
    assert!(bad_since.stderr.contains("--since"), "{}", bad_since.stderr);
    let text = n.a.ok(&["message", "track", "bad-opt@a.test"]).text();
    assert!(text.contains("dr.jones@b.test: processed") && text.contains("submitted"), "{text}");
}

#[test]
fn a_recipient_hisp_that_never_answers_gets_exactly_one_dsn_and_a_late_mdn_is_only_recorded() {
    // B's MDNs go to a port where nothing listens: from A's side, B never answers.
    let n = network_with(|node, config| match node {
        "a" => config.replace("[delivery]", "[notify]\nprocessed_timeout_secs = 2\n[delivery]"),
        _ => config.replace("[delivery]\nport = ", "[delivery]\nport = 9 # was "),
    });
    assert_eq!(submit(&n, &referral("<silent-1@a.test>", "")).status, 0);
    wait_for(&n.b, "b.test", "dr.jones", 1, |m| m.contains("Please see Ms. Doe."));
    let dsns = wait_for(&n.a, "a.test", "dr.smith", 1, is_dsn);
    let message = parse(&dsns[0]);
    let ct = message.content_type().unwrap();
    assert_eq!((ct.subtype(), ct.attribute("report-type")), (Some("report"), Some("delivery-status")));
    assert_eq!(message.from().and_then(|a| a.first()).and_then(|a| a.address()), Some("postmaster@a.test"));
    assert_eq!(message.header_raw("X-Original-Message-ID").map(str::trim), Some("<silent-1@a.test>"));
    let fields = report_fields(&message, "delivery-status");
    assert_eq!(field(&fields, "Action"), Some("failed"), "{fields}");
    assert!(field(&fields, "Status").is_some_and(|s| s.starts_with("5.")), "{fields}");
    assert_eq!(field(&fields, "Final-Recipient"), Some("rfc822; dr.jones@b.test"), "{fields}");
    let t = wait_track(&n.a, "<silent-1@a.test>", "timed-out");
    assert!(t["recipients"][0]["sender_notified_at"].is_i64());
    // Several more rounds of the timeout check: still one DSN.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(mailbox(&n.a, "a.test", "dr.smith", 0).len(), 1, "exactly one DSN");

    // B's path to A is mended and B restarted: its queued processed MDN arrives, late. It is
    // recorded, and dr.smith is not notified again.
    let mut n = n;
    n.daemons.remove(1).kill9();
    let config = n.b.files.path("hisp.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("port = 9 # was ", "port = ");
    std::fs::write(&config, text).unwrap();
    n.daemons.push(n.b.serve(n.b_backbone));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !events(&track(&n.a, "<silent-1@a.test>")).iter().any(|e| e == "late") {
        assert!(std::time::Instant::now() < deadline, "no late MDN recorded: {}", n.a.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let t = track(&n.a, "<silent-1@a.test>");
    assert_eq!(t["recipients"][0]["status"], "timed-out", "{t}");
    assert!(t["recipients"][0]["processed_at"].is_i64(), "{t}");
    assert_eq!(mailbox(&n.a, "a.test", "dr.smith", 0).len(), 1, "the DSN only: the late MDN is not passed on");
}

#[test]
fn a_delivery_that_fails_after_trust_gets_a_failed_mdn_and_never_a_processed_one() {
    // B gives up on a message after 3 s; dr.jones's mailbox cannot be created (a file is in the way).
    let n = network_with(|node, config| match node {
        "b" => config.replace("retry_max_secs = 2\n", "retry_max_secs = 2\nmax_age_secs = 3\n"),
        _ => config,
    });
    let config = std::fs::read_to_string(n.b.files.path("hisp.toml")).unwrap();
    let mail_dir = config.lines().find_map(|l| l.strip_prefix("mail_dir = \"")).unwrap().trim_end_matches('"');
    let domain_dir = std::path::Path::new(mail_dir).join("b.test");
    std::fs::create_dir_all(&domain_dir).unwrap();
    std::fs::write(domain_dir.join("dr.jones"), "not a Maildir").unwrap();

    assert_eq!(submit(&n, &referral("<fail-1@a.test>", FINAL_DELIVERY)).status, 0);
    let t = wait_track(&n.a, "<fail-1@a.test>", "failed");
    // "processed" would say the message was written: it never was.
    let mdns = wait_for(&n.a, "a.test", "dr.smith", 1, is_mdn);
    let kinds: Vec<String> = mdns.iter().map(|m| check_mdn(m, "<fail-1@a.test>").0).collect();
    assert_eq!(kinds, ["failed"]);
    let failed = &mdns[0];
    let fields = report_fields(&parse(failed), "disposition-notification");
    assert!(field(&fields, "Failure").is_some_and(|f| f.contains("mailbox")), "{fields}");
    assert!(field(&fields, "X-DIRECT-FINAL-DESTINATION-DELIVERY").is_none(), "{fields}");
    assert!(t["recipients"][0]["processed_at"].is_null() && t["recipients"][0]["failed_at"].is_i64(), "{t}");
}

#[test]
fn a_node_set_to_pass_only_timely_notifications_consumes_those_of_plain_messages() {
    let n = network_with(|node, config| match node {
        "a" => config.replace("[delivery]", "[notify]\npass_to_sender = \"timely-reliable\"\n[delivery]"),
        _ => config,
    });
    assert_eq!(submit(&n, &referral("<plain-1@a.test>", "")).status, 0);
    assert_eq!(submit(&n, &referral("<timely-1@a.test>", FINAL_DELIVERY)).status, 0);
    wait_track(&n.a, "<plain-1@a.test>", "processed");
    wait_track(&n.a, "<timely-1@a.test>", "dispatched");
    // The timely message's two MDNs reach dr.smith; the plain message's one is recorded only.
    wait_for(&n.a, "a.test", "dr.smith", 2, is_mdn);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mdns: Vec<String> = mailbox(&n.a, "a.test", "dr.smith", 0).into_iter().filter(|m| is_mdn(m)).collect();
    assert_eq!(mdns.len(), 2, "{mdns:?}");
    for m in &mdns {
        check_mdn(m, "<timely-1@a.test>"); // both are about the timely message
    }
    let plain = track(&n.a, "<plain-1@a.test>");
    assert!(events(&plain).iter().any(|e| e == "processed"), "recorded: {plain}");
}

/// The JSON records the webhook receiver wrote to `out`, in the order they came.
fn hooks_received(out: &std::path::Path) -> Vec<serde_json::Value> {
    let mut names: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
}

#[test]
fn an_ehr_hears_of_its_messages_through_signed_webhooks_retried_until_accepted() {
    use common::api::Api;
    use common::servers::free_port;
    use serde_json::json;

    let files = common::Files::new();
    let (hook_cert, hook_key) = common::self_signed_tls(&files, "hook", "/CN=127.0.0.1", "IP:127.0.0.1");
    let (api_cert, api_key) = common::localhost_tls(&files, "api");
    let (a_api, b_api, hook_port) = (free_port(), free_port(), free_port());
    let settings = |api: u16| {
        format!(
            "[http]\nlisten = \"127.0.0.1:{api}\"\ntls_cert_file = \"{api_cert}\"\ntls_key_file = \"{api_key}\"\n\
             [webhooks]\nallow_private_addresses = true\ntls_ca_file = \"{hook_cert}\"\nretry_secs = 1\n"
        )
    };
    let n = network_with(|node, config| match node {
        "a" => format!("{config}{}", settings(a_api)),
        _ => format!("{config}{}", settings(b_api)),
    });
    let (secrets, out) = (files.path("secrets"), files.path("hooks"));
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // The receiver turns the first POST away: that delivery must come again.
    let args = [hook_port.to_string(), hook_cert.clone(), hook_key, secrets.display().to_string()];
    let args: Vec<String> = args.into_iter().chain([out.display().to_string(), "1".into()]).collect();
    let _receiver = common::relay::python_peer("webhook_receiver.py", &args, hook_port);

    // Each practice's EHR registers its callback; the secret is shown once and the test hands it
    // to the receiver.
    let register = |node: &Node, port: u16, practice: &str, path: &str, events: serde_json::Value| {
        let token = node.json(&["token", "create", &format!("ehr-{path}"), "--practice", practice])["token"]
            .as_str()
            .unwrap()
            .to_string();
        let api = Api { port, ca_file: api_cert.clone() };
        let bad = api.call(
            Some(&token),
            "POST",
            "/v1/webhooks",
            Some(&json!({"url": "http://127.0.0.1/x", "events": events})),
        );
        assert_eq!((bad.status, bad.body["error"]["field"].clone()), (400, json!("url")), "HTTPS only");
        let url = format!("https://127.0.0.1:{hook_port}/{path}");
        let made = api.expect(&token, 201, "POST", "/v1/webhooks", Some(&json!({"url": url, "events": events})));
        let id = made["id"].as_i64().unwrap();
        std::fs::write(secrets.join(format!("{path}-{id}")), made["secret"].as_str().unwrap()).unwrap();
        assert!(api.expect(&token, 200, "GET", "/v1/webhooks", None).to_string().contains(&url));
        (api, token, id)
    };
    let (api_a, token_a, hook_a) = register(&n.a, a_api, "a.test", "a", json!(["message.status", "delivery.failed"]));
    let (api_b, token_b, hook_b) =
        register(&n.b, b_api, "b.test", "b", json!(["message.received", "referral.received", "message.received"]));

    let referral_headers =
        format!("{FINAL_DELIVERY}X-Referral-Direction: transferring\r\nX-Referral-Patient: MRN-7\r\n");
    assert_eq!(submit(&n, &referral("<hooked-1@a.test>", &referral_headers)).status, 0);
    assert_eq!(submit_to(n.a_submission, "nobody@b.test", &referral("<hooked-2@a.test>", "")).status, 0);

    let wanted =
        [("b", "message.received"), ("b", "referral.received"), ("a", "message.status"), ("a", "delivery.failed")];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let received = loop {
        let received = hooks_received(&out);
        let accepted: Vec<(String, String)> = received
            .iter()
            .filter(|r| r["answered"] == 204)
            .map(|r| (r["webhook"].as_str().unwrap()[..1].to_string(), r["event"].as_str().unwrap().to_string()))
            .collect();
        let statuses: Vec<&str> = received
            .iter()
            .filter(|r| r["event"] == "message.status" && r["answered"] == 204)
            .filter_map(|r| r["body"]["status"].as_str())
            .collect();
        if wanted.iter().all(|(w, e)| accepted.iter().any(|(aw, ae)| aw == w && ae == e))
            && statuses.contains(&"processed")
            && statuses.contains(&"dispatched")
        {
            break received;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "webhooks so far: {received:?}\nA: {}\nB: {}",
            n.a.serve_log(),
            n.b.serve_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    // Every POST was signed with its webhook's secret, and none carries PHI.
    assert!(received.iter().all(|r| r["signature_valid"] == true), "{received:?}");
    let text = serde_json::to_string(&received).unwrap();
    assert!(!text.contains("Ms. Doe") && !text.contains("MRN-7") && !text.contains("Referral for"), "{text}");
    let got = |event: &str| received.iter().find(|r| r["event"] == event && r["answered"] == 204).unwrap();
    assert_eq!(got("message.received")["body"]["message_id"], "hooked-1@a.test");
    assert_eq!(got("message.received")["body"]["recipient"], "dr.jones@b.test");
    assert_eq!(got("delivery.failed")["body"]["recipient"], "nobody@b.test");
    assert!(got("referral.received")["body"]["referral_id"].is_i64());
    // The POST turned away came again, and the delivery logs say how each went.
    let first = &received[0];
    assert_eq!(first["answered"], 503);
    assert!(received[1..].iter().any(|r| r["delivery"] == first["delivery"] && r["webhook"] == first["webhook"]));
    let (api, token, hook) = if first["webhook"].as_str().unwrap().starts_with('a') {
        (&api_a, &token_a, hook_a)
    } else {
        (&api_b, &token_b, hook_b)
    };
    let log = api.expect(token, 200, "GET", &format!("/v1/webhooks/{hook}/deliveries"), None);
    let retried = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| Some(d["id"].as_i64().unwrap_or(-1).to_string().as_str()) == first["delivery"].as_str())
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!((retried["state"].clone(), retried["attempts"].clone()), (json!("delivered"), json!(2)), "{log}");
    assert_eq!(retried["last_status"], 204);
    // Another token sees neither the webhook nor its log.
    let other = n.b.json(&["token", "create", "other", "--practice", "b.test"])["token"].as_str().unwrap().to_string();
    assert_eq!(api_b.call(Some(&other), "GET", &format!("/v1/webhooks/{hook_b}/deliveries"), None).status, 404);
    assert_eq!(api_b.expect(&other, 200, "GET", "/v1/webhooks", None)["webhooks"], json!([]));
    api_b.expect(&token_b, 200, "DELETE", &format!("/v1/webhooks/{hook_b}"), None);
    assert_eq!(api_b.expect(&token_b, 200, "GET", "/v1/webhooks", None)["webhooks"], json!([]));
}
