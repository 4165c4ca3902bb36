//! Invitations (Refer & Share) through the CLI and `hisp serve` against real peers: a smarthost
//! (aiosmtpd requiring STARTTLS and AUTH) that keeps the e-mails it is given, and a fax gateway
//! (a local HTTP server) that records the requests. The tests read the code and the link from
//! what those peers received.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::api::Api;
use common::node::*;
use common::relay::{loopback_tls, python_peer, smarthost, wait_files};
use common::servers::free_port;
use common::*;

const PRACTICE: &str = "Elm Clinic";
const DOMAIN: &str = "elmclinic.direct.example.org";

/// The node's configuration: the smarthost at `relay_port` (its certificate trusted), the fax
/// gateway at `gateway_port`, quick retries.
fn config(files: &Files, relay_port: u16, gateway_port: u16, submission: u16, extra: &str) -> String {
    let password = files.write("relay.pass", b"relay-secret\n");
    let token = files.write("gateway.token", b"gw-token-123\n");
    let cert = files.p("relay.pem");
    let mailboxes = files.p("mailboxes");
    format!(
        "[onboarding]\nparent_domain = \"direct.example.org\"\n\
         [server]\nhostname = \"hisp.example.org\"\nsubmission = \"127.0.0.1:{submission}\"\nbackbone = \"\"\n\
         mail_dir = \"{mailboxes}\"\nmin_free_disk_mb = 0\n\
         [invitations]\naccept_url = \"https://portal.example.org/invitations/accept\"\nnotice_retry_secs = 1\n{extra}\
         [notify.email]\nrelay = \"127.0.0.1:{relay_port}\"\nfrom = \"no-reply@hisp.example.org\"\n\
         username = \"hisp\"\npassword_file = \"{password}\"\ntls_ca_file = \"{cert}\"\ntimeout_secs = 10\n\
         [notify.gateway]\nurl = \"http://127.0.0.1:{gateway_port}/v1/send\"\ntoken_file = \"{token}\"\n"
    )
}

/// Waits up to 30 s until `check` holds of `hisp invite show ID`.
fn wait_show(node: &Node, id: i64, what: &str, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = node.json(&["invite", "show", &id.to_string(), "--practice", PRACTICE]);
        if check(&shown) {
            return shown;
        }
        assert!(Instant::now() < deadline, "{what}: {shown:#}\n{}", node.serve_log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn invite_patient(node: &Node, email: &str) -> serde_json::Value {
    node.json(&[
        "invite",
        "send",
        "--practice",
        PRACTICE,
        "--name",
        "Ada Lovelace",
        "--email",
        email,
        "--relationship",
        "patient",
        "--date-of-birth",
        "1970-05-17",
    ])
}

/// The value of the line that starts with `label` in `text`.
fn after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(label)).unwrap_or_else(|| panic!("{label} in {text}")).trim()
}

#[test]
fn invitations_go_by_email_through_the_smarthost_and_by_fax_through_the_gateway() {
    let files = Files::new();
    let (relay_port, gateway_port, submission) = (free_port(), free_port(), free_port());
    let mail = files.path("mail");
    let _relay = smarthost(&files, relay_port, &mail);
    let faxes = files.path("faxes");
    std::fs::create_dir_all(&faxes).unwrap();
    let _gateway =
        python_peer("gateway.py", &[gateway_port.to_string(), faxes.display().to_string(), "0".into()], gateway_port);
    let node = Node::with_config(&config(&files, relay_port, gateway_port, submission, ""));
    node.ok(&["practice", "add", PRACTICE]);

    let sent = invite_patient(&node, "Ada@Example.org");
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["contact"], "ada@example.org");
    assert!(sent.get("code").is_none(), "the sender never sees the code: {sent}");
    let id = sent["id"].as_i64().unwrap();
    let faxed = node.json(&[
        "invite",
        "send",
        "--practice",
        DOMAIN,
        "--name",
        "Dr. Grace Hopper",
        "--fax",
        "+1 (555) 555-0123",
        "--relationship",
        "colleague-elsewhere",
    ]);
    assert_eq!(faxed["contact"], "+15555550123");

    let _daemon = node.serve(submission);
    let message = wait_files(&mail, "eml", 1).remove(0);
    assert_eq!(std::fs::read_to_string(mail.join("0001.auth")).unwrap(), "hisp", "AUTH over STARTTLS");
    let parsed = mail_parser::MessageParser::default().parse(message.as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some("Elm Clinic invites you to exchange secure messages"));
    assert_eq!(parsed.to().unwrap().first().unwrap().address(), Some("ada@example.org"));
    let text = parsed.body_text(0).unwrap().to_string();
    let code = after(&text, "Your invitation code:").to_string();
    assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code}");
    let link = after(&text, "To accept, open this link and follow the steps:");
    let link = if link.is_empty() { text.lines().find(|l| l.starts_with("https://")).unwrap() } else { link };
    assert_eq!(link, format!("https://portal.example.org/invitations/accept?code={}", code.replace('-', "")));
    assert!(parsed.body_html(0).unwrap().contains(&format!("href=\"{link}\"")));
    for phi in ["Ada", "Lovelace", "1970", "05-17"] {
        assert!(!message.contains(phi), "no PHI in the notice ({phi}): {message}");
    }
    let shown = wait_show(&node, id, "the notice recorded as sent", |s| s["notice"] == "sent");
    assert_eq!(shown["notices"][0]["sent_to"], "***@example.org");

    let fax: serde_json::Value = serde_json::from_str(&wait_files(&faxes, "json", 1)[0]).unwrap();
    assert_eq!(fax["authorization"], "Bearer gw-token-123");
    assert_eq!(fax["content_type"], "application/json");
    assert_eq!(fax["body"]["channel"], "fax");
    assert_eq!(fax["body"]["to"], "+15555550123");
    let fax_text = fax["body"]["text"].as_str().unwrap();
    assert!(fax_text.starts_with("Elm Clinic invites you"), "{fax_text}");
    assert!(!fax_text.contains("Hopper"), "no name in the fax: {fax_text}");

    // A reminder by hand carries the same code.
    let reminded = node.json(&["invite", "remind", &id.to_string(), "--practice", PRACTICE]);
    assert_eq!(reminded["status"], "reminded");
    let reminder = wait_files(&mail, "eml", 2).remove(1);
    let parsed = mail_parser::MessageParser::default().parse(reminder.as_bytes()).unwrap();
    assert!(parsed.subject().unwrap().starts_with("Reminder: Elm Clinic"));
    assert!(parsed.body_text(0).unwrap().contains(&code));
    let audit = node.ok(&["--json", "audit", "--limit", "50"]).text();
    for action in ["invitation.send", "invitation.notice.sent", "invitation.remind"] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    assert!(!audit.contains("Lovelace") && !audit.contains("ada@example.org"), "no invitee in the audit log");
}

#[test]
fn a_smarthost_that_is_down_is_retried_and_the_invitation_shows_it() {
    let files = Files::new();
    let (relay_port, gateway_port, submission) = (free_port(), free_port(), free_port());
    let faxes = files.path("faxes");
    std::fs::create_dir_all(&faxes).unwrap();
    // The gateway is busy for its first two requests.
    let _gateway =
        python_peer("gateway.py", &[gateway_port.to_string(), faxes.display().to_string(), "2".into()], gateway_port);
    let node = Node::with_config(&config(&files, relay_port, gateway_port, submission, ""));
    loopback_tls(&files);
    node.ok(&["practice", "add", PRACTICE]);
    let id = invite_patient(&node, "ada@example.org")["id"].as_i64().unwrap();
    let _daemon = node.serve(submission);

    let shown = wait_show(&node, id, "a retry recorded", |s| s["notices"][0]["attempts"].as_i64() >= Some(2));
    assert_eq!(shown["notice"], "retrying");
    assert_eq!(shown["status"], "sent", "still being tried");
    let error = shown["notices"][0]["last_error"].as_str().unwrap();
    assert!(error.contains(&format!("smarthost 127.0.0.1:{relay_port}")), "{error}");
    let refused = node.run(&["--json", "invite", "remind", &id.to_string(), "--practice", PRACTICE]);
    assert_eq!(refused.status, 1);
    assert_eq!(refused.json()["error"]["code"], "state");

    // The smarthost comes up: the next retry goes.
    let mail = files.path("mail");
    let _relay = smarthost(&files, relay_port, &mail);
    wait_files(&mail, "eml", 1);
    let shown = wait_show(&node, id, "sent after the retries", |s| s["notice"] == "sent");
    assert!(shown["notices"][0]["attempts"].as_i64().unwrap() >= 3);

    // The gateway answered 503 twice: retried until it took the fax.
    let faxed = node.json(&[
        "invite",
        "send",
        "--practice",
        PRACTICE,
        "--name",
        "Grace",
        "--fax",
        "+15555550123",
        "--relationship",
        "colleague-elsewhere",
    ]);
    wait_files(&faxes, "json", 1);
    let shown = wait_show(&node, faxed["id"].as_i64().unwrap(), "the fax sent", |s| s["notice"] == "sent");
    assert_eq!(shown["notices"][0]["attempts"], 3);
}

#[test]
fn without_a_channel_nothing_is_sent_and_the_invitation_says_so() {
    let submission = free_port();
    let node = Node::with_config(&format!(
        "[onboarding]\nparent_domain = \"direct.example.org\"\n[server]\nsubmission = \"127.0.0.1:{submission}\"\n\
         backbone = \"\"\n"
    ));
    node.ok(&["practice", "add", PRACTICE]);
    let id = invite_patient(&node, "ada@example.org")["id"].as_i64().unwrap();
    let _daemon = node.serve(submission);
    let shown = wait_show(&node, id, "given up at once", |s| s["status"] == "notification-failed");
    assert!(shown["notices"][0]["last_error"].as_str().unwrap().contains("configure [notify.email]"));
    let failed = node.json(&["invite", "list", "--practice", PRACTICE, "--status", "notification-failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_nothing_kept() {
    let node = Node::with_config(
        "[onboarding]\nparent_domain = \"direct.example.org\"\n[invitations]\nper_practice_per_hour = 3\n",
    );
    node.ok(&["practice", "add", PRACTICE]);
    let send = |extra: &[&str]| {
        let mut args = vec!["--json", "invite", "send", "--practice", PRACTICE, "--relationship", "patient"];
        args.extend_from_slice(extra);
        node.run(&args)
    };
    let cases: &[(&[&str], &str)] = &[
        (&["--name", "Ada", "--email", "ada@", "--date-of-birth", "1970-05-17"], "email:"),
        (
            &["--name", "Ada", "--email", "ada@example.org\r\nRCPT TO:<x@y.z>", "--date-of-birth", "1970-05-17"],
            "email:",
        ),
        (&["--name", "Ada", "--fax", "555-0123", "--date-of-birth", "1970-05-17"], "E.164"),
        (
            &["--name", "Ada\r\nBcc: all@example.org", "--email", "ada@example.org", "--date-of-birth", "1970-05-17"],
            "name:",
        ),
        (
            &["--name", &"A".repeat(201), "--email", "ada@example.org", "--date-of-birth", "1970-05-17"],
            "200 characters",
        ),
        (&["--name", "Ada", "--email", "ada@example.org"], "date of birth is required"),
        (&["--name", "Ada", "--email", "ada@example.org", "--date-of-birth", "1970-02-30"], "YYYY-MM-DD"),
    ];
    for (args, said) in cases {
        let refused = send(args);
        assert_eq!(refused.status, 2, "{args:?}: {}", refused.text());
        let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(said), "{args:?}: {message}");
    }
    let both = send(&["--name", "Ada", "--email", "a@example.org", "--fax", "+15555550123"]);
    assert_eq!(both.status, 2, "clap refuses both: {}", both.text());
    assert!(node.json(&["invite", "list", "--practice", PRACTICE]).as_array().unwrap().is_empty(), "nothing kept");

    for n in 0..3 {
        send(&["--name", "Ada", "--email", &format!("p{n}@example.org"), "--date-of-birth", "1970-05-17"]).ok();
    }
    let limited = send(&["--name", "Ada", "--email", "p4@example.org", "--date-of-birth", "1970-05-17"]);
    assert_eq!(limited.status, 1);
    assert_eq!(limited.json()["error"]["code"], "too-many");

    let first = node.json(&["invite", "list", "--practice", PRACTICE])[2]["id"].as_i64().unwrap().to_string();
    node.ok(&["invite", "cancel", &first, "--practice", PRACTICE]);
    let again = node.run(&["--json", "invite", "cancel", &first, "--practice", PRACTICE]);
    assert_eq!(again.json()["error"]["code"], "state");
    assert!(again.json()["error"]["message"].as_str().unwrap().contains("it is cancelled"));
    let unknown = node.run(&["--json", "invite", "show", "999", "--practice", PRACTICE]);
    assert_eq!(unknown.json()["error"]["code"], "not-found");
    let bad_status = node.run(&["invite", "list", "--practice", PRACTICE, "--status", "maybe"]);
    assert_eq!(bad_status.status, 2);

    // The invitee is sealed at rest: neither the name nor the address is in the database file.
    let db = std::fs::read(&node.db).unwrap();
    let wal = std::fs::read(format!("{}-wal", node.db)).unwrap_or_default();
    for needle in [b"p0@example.org".as_slice(), b"1970-05-17"] {
        assert!(!db.windows(needle.len()).any(|w| w == needle), "sealed at rest");
        assert!(!wal.windows(needle.len()).any(|w| w == needle), "sealed in the WAL too");
    }
    // Without the KEK nothing can be read or written.
    let no_kek = hisp(&["invite", "list", "--practice", PRACTICE], None, &[("HISP_DB", node.db.as_str())]);
    assert_eq!(no_kek.status, 1, "{}", no_kek.text());
}

/// The token `hisp token create` prints for `practice`.
fn token(node: &Node, name: &str, practice: &str) -> String {
    node.ok(&["token", "create", name, "--practice", practice]).text().lines().next().unwrap().trim().to_string()
}

/// The code in the `n`th e-mail the smarthost kept (1-based), and the message's text.
fn code_in(mail: &Path, n: usize) -> (String, String) {
    let message = wait_files(mail, "eml", n).remove(n - 1);
    let parsed = mail_parser::MessageParser::default().parse(message.as_bytes()).unwrap();
    let text = parsed.body_text(0).map(|t| t.to_string()).unwrap_or_default();
    let code = text.lines().find_map(|l| l.strip_prefix("Your invitation code:")).map(|c| c.trim().to_string());
    (code.unwrap_or_default(), format!("{text}\n{message}"))
}

#[test]
fn both_flows_end_to_end_over_the_api_with_the_codes_from_the_mail() {
    let files = Files::new();
    let (relay_port, gateway_port, submission, api_port) = (free_port(), free_port(), free_port(), free_port());
    let mail = files.path("mail");
    let _relay = smarthost(&files, relay_port, &mail);
    let (cert, key) = loopback_tls(&files);
    // An NPI registry on loopback, answering as NPPES does.
    let registry = servers::http();
    std::fs::create_dir_all(registry.path("npi")).unwrap();
    let nppes = r#"{"result_count": 1, "results": [{"number": 1234567893, "basic": {"organization_name": "BIRCH FAMILY MEDICINE"},
        "addresses": [{"address_purpose": "LOCATION", "address_1": "1 MAIN ST", "city": "SPRINGFIELD", "state": "IL",
        "postal_code": "627011234", "telephone_number": "217-555-0100"}]}]}"#;
    std::fs::write(registry.path("npi/1234567893.json"), nppes).unwrap();
    let npi_url = format!("npi_registry_url = \"http://127.0.0.1:{}/npi/{{npi}}.json\"\n", registry.port);
    let mut text = config(&files, relay_port, gateway_port, submission, &npi_url);
    text.push_str(&format!(
        "[http]\nlisten = \"127.0.0.1:{api_port}\"\ntls_cert_file = \"{cert}\"\ntls_key_file = \"{key}\"\n"
    ));
    let node = Node::with_config(&text);
    node.ok(&["practice", "add", PRACTICE]);
    node.ok(&["practice", "add", "Oak Clinic"]);
    let sender = format!("dr@{DOMAIN}");
    node.ok(&["address", "add", &sender]);
    let (elm, oak) = (token(&node, "elm-ehr", PRACTICE), token(&node, "oak-ehr", "Oak Clinic"));
    let _daemon = node.serve(api_port);
    let api = Api { port: api_port, ca_file: cert.clone() };
    let post = |token: Option<&str>, path: &str, body: serde_json::Value| api.call(token, "POST", path, Some(&body));

    // The patient flow: invited with a date of birth, locked at the third wrong one.
    let patient = serde_json::json!({"name": "Ada Lovelace", "email": "ada@example.org", "relationship": "patient",
        "date_of_birth": "1970-05-17", "from": sender});
    let first = api.expect(&elm, 201, "POST", "/v1/invitations", Some(&patient));
    let (code, _) = code_in(&mail, 1);
    let preview = post(None, "/v1/invitations/preview", serde_json::json!({"code": code}));
    assert_eq!(preview.status, 200, "no token needed: {:?}", preview.body);
    assert_eq!(preview.body["practice"], PRACTICE);
    assert_eq!(preview.body["needs"], serde_json::json!(["date_of_birth"]));
    let register = |code: &str, dob: &str| {
        post(
            None,
            "/v1/invitations/accept",
            serde_json::json!({"code": code, "password": "a long passphrase", "date_of_birth": dob}),
        )
    };
    for left in ["2 tries left", "1 try left"] {
        let wrong = register(&code, "1970-05-18");
        assert_eq!((wrong.status, wrong.body["error"]["code"].as_str()), (403, Some("date-of-birth")));
        assert!(wrong.body["error"]["message"].as_str().unwrap().contains(left), "{:?}", wrong.body);
    }
    let locked = register(&code, "1970-05-18");
    assert_eq!(locked.status, 410);
    assert!(locked.body["error"]["message"].as_str().unwrap().contains("contact Elm Clinic"), "{:?}", locked.body);
    assert_eq!(register(&code, "1970-05-17").status, 410, "locked: the right date no longer helps");
    let id = first["id"].as_i64().unwrap();
    let shown = api.expect(&elm, 200, "GET", &format!("/v1/invitations/{id}"), None);
    assert_eq!(shown["status"], "locked");
    // The invitee is told to contact the practice; the sender finds a notice in their mailbox.
    let (_, told) = code_in(&mail, 2);
    assert!(told.contains("contact Elm Clinic to be invited again"), "{told}");
    let inbox = files.path("mailboxes").join(DOMAIN).join("dr").join("new");
    let to_sender = wait_files(&inbox, DOMAIN.rsplit('.').next().unwrap(), 1).remove(0);
    assert!(to_sender.contains(&format!("Invitation #{id}")), "{to_sender}");
    for phi in ["Ada", "Lovelace", "1970"] {
        assert!(!to_sender.contains(phi) && !told.contains(phi), "no PHI in the notices ({phi})");
    }

    // Invited again: a new code, and the right date registers the patient.
    api.expect(&elm, 201, "POST", "/v1/invitations", Some(&patient));
    let (code, _) = code_in(&mail, 3);
    let accepted = register(&code, "1970-05-17");
    assert_eq!(accepted.status, 201, "{:?}", accepted.body);
    assert_eq!(accepted.body["account"]["role"], "patient");
    assert_eq!(register(&code, "1970-05-17").body["account"]["id"], accepted.body["account"]["id"], "idempotent");
    let other = post(
        None,
        "/v1/invitations/accept",
        serde_json::json!({"code": code, "password": "another passphrase", "email": "eve@example.org"}),
    );
    assert_eq!(other.status, 410, "a code works once");

    // The colleague flow: a colleague at another practice registers it.
    let colleague = serde_json::json!({"name": "Grace Hopper", "email": "grace@birch.example", "relationship": "colleague-elsewhere"});
    api.expect(&elm, 201, "POST", "/v1/invitations", Some(&colleague));
    let (code, _) = code_in(&mail, 4);
    // The practice's details pre-filled from its NPI by the registry; a wrong check digit is
    // never asked about.
    let prefill = post(None, "/v1/invitations/npi", serde_json::json!({"code": code, "npi": "1234567893"}));
    assert_eq!(prefill.status, 200, "{:?}", prefill.body);
    assert_eq!(
        (prefill.body["name"].as_str(), prefill.body["zip"].as_str()),
        (Some("BIRCH FAMILY MEDICINE"), Some("62701-1234"))
    );
    assert_eq!(prefill.body["phone"], "+12175550100");
    assert_eq!(post(None, "/v1/invitations/npi", serde_json::json!({"code": code, "npi": "1234567890"})).status, 400);
    assert_eq!(post(None, "/v1/invitations/npi", serde_json::json!({"code": code, "npi": "1245319599"})).status, 404);
    let practice = serde_json::json!({"name": "Birch Family Medicine", "address": "1 Main St", "city": "Springfield",
        "state": "IL", "zip": "62701", "phone": "+12175550100", "ehr": "Kareo", "npi": "1234567893"});
    let joined = post(
        None,
        "/v1/invitations/accept",
        serde_json::json!({"code": code, "password": "a long passphrase", "practice": practice}),
    );
    assert_eq!(joined.status, 201, "{:?}", joined.body);
    assert_eq!(joined.body["account"]["practice"], "Birch Family Medicine");

    // Elm sees both; Oak, connected to nobody, sees nothing of Elm's.
    let connections = api.expect(&elm, 200, "GET", "/v1/connections", None)["connections"].clone();
    let names: Vec<&str> = connections.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ada Lovelace", "Birch Family Medicine"]);
    assert_eq!(api.expect(&oak, 200, "GET", "/v1/connections", None)["connections"], serde_json::json!([]));
    assert_eq!(api.expect(&oak, 200, "GET", "/v1/invitations", None)["invitations"], serde_json::json!([]));
    let birch_connection = connections[1]["id"].as_i64().unwrap();
    assert_eq!(api.call(Some(&oak), "GET", &format!("/v1/connections/{birch_connection}"), None).status, 404);
    assert_eq!(api.call(Some(&oak), "GET", &format!("/v1/invitations/{id}"), None).status, 404);
    let profile = api.expect(&elm, 200, "GET", &format!("/v1/connections/{birch_connection}"), None);
    assert_eq!(profile["details"]["ehr"], "Kareo");

    // Elm lists its doctor; Birch's colleague sees the listing on Elm's profile.
    api.expect(&elm, 201, "POST", "/v1/listings", Some(&serde_json::json!({"address": sender, "label": "Referrals"})));
    let grace = joined.body["account"]["id"].as_i64().unwrap().to_string();
    let birch_side = node.json(&["contacts", "orgs", "--account", &grace]);
    let elm_connection = birch_side[0]["id"].as_i64().unwrap().to_string();
    let seen = node.json(&["contacts", "profile", &elm_connection, "--account", &grace]);
    assert_eq!(seen["members"][0]["address"], sender.as_str());
    assert_eq!(seen["members"][0]["label"], "Referrals");

    secure_messages_between_the_connected(&node, &api, &elm, &oak, &mail, &joined.body, &accepted.body);

    // Anyone may call the invitee's endpoints: their bodies are small. The refusal is a 413, or
    // the connection closed before curl could send it all; never an answer to what it says.
    let huge = serde_json::json!({"code": "7KQ4-M2XD-9R0T", "password": "x".repeat(100_000)});
    match api.attempt(None, "POST", "/v1/invitations/accept", Some(&huge)) {
        Ok(refused) => assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (413, Some("too-large"))),
        Err(closed) => assert!(closed.contains("exit 55") || closed.contains("exit 56"), "{closed}"),
    }

    // Guessing codes from one address is slowed down: ten failures from it (the two wrong dates
    // of birth above among them), then every try must wait.
    let statuses: Vec<u16> = (0..12)
        .map(|n| {
            post(None, "/v1/invitations/preview", serde_json::json!({"code": format!("AAAA-AAAA-AA{n:02}")})).status
        })
        .collect();
    assert_eq!(&statuses[..8], &[404; 8], "{statuses:?}");
    assert_eq!(&statuses[8..], &[429; 4], "{statuses:?}");
}

/// Elm's new member writes to Birch's colleague and to the patient through the API; they read
/// and answer with the CLI; nobody else reads it, and the text is sealed at rest.
fn secure_messages_between_the_connected(
    node: &Node,
    api: &Api,
    elm: &str,
    oak: &str,
    mail: &Path,
    grace: &serde_json::Value,
    ada: &serde_json::Value,
) {
    let member = serde_json::json!({"name": "Hal Abelson", "email": "hal@elm.example", "relationship": "colleague-here", "role": "clinician"});
    api.expect(elm, 201, "POST", "/v1/invitations", Some(&member));
    let (code, _) = code_in(mail, 5);
    let joined = api.call(
        None,
        "POST",
        "/v1/invitations/accept",
        Some(&serde_json::json!({"code": code, "password": "a long passphrase", "confirm_practice": PRACTICE})),
    );
    assert_eq!(joined.status, 201, "{:?}", joined.body);
    let hal = joined.body["account"]["id"].as_i64().unwrap();
    let (grace, ada) = (grace["account"]["id"].as_i64().unwrap(), ada["account"]["id"].as_i64().unwrap());
    let letter = serde_json::json!({"to": [grace, ada], "subject": "Cardiology follow-up for MRN-1001", "body": "Echo attached.",
        "attachments": [{"filename": "echo.txt", "content_type": "text/plain", "content_base64": "RUNITyBOT1JNQUw="}]});
    let sent = api.expect(elm, 201, "POST", &format!("/v1/accounts/{hal}/messages"), Some(&letter));
    let id = sent["message"].as_i64().unwrap();
    assert_eq!(
        api.call(Some(oak), "POST", &format!("/v1/accounts/{hal}/messages"), Some(&letter)).status,
        404,
        "Oak's token is not Hal's"
    );
    assert_eq!(api.call(Some(oak), "GET", &format!("/v1/accounts/{hal}/messages/{id}"), None).status, 404);

    let inbox = node.json(&["secure", "inbox", "--account", &grace.to_string()]);
    assert_eq!(inbox[0]["subject"], "Cardiology follow-up for MRN-1001");
    assert_eq!(inbox[0]["from"]["name"], "Hal Abelson");
    let saved = node.files.path("saved");
    let read = node.json(&[
        "secure",
        "read",
        &id.to_string(),
        "--account",
        &grace.to_string(),
        "--save",
        &saved.display().to_string(),
    ]);
    assert_eq!(read["body"], "Echo attached.");
    assert_eq!(std::fs::read(saved.join("echo.txt")).unwrap(), b"ECHO NORMAL");
    let body = node.files.write("reply.txt", b"Thank you, seen.");
    node.ok(&["secure", "reply", &id.to_string(), "--account", &grace.to_string(), "--body-file", &body]);
    let hals = api.expect(elm, 200, "GET", &format!("/v1/accounts/{hal}/messages"), None);
    assert_eq!(hals["messages"][0]["subject"], "Re: Cardiology follow-up for MRN-1001");
    let ada_reads = node.json(&["secure", "inbox", "--account", &ada.to_string()]);
    assert_eq!(ada_reads[0]["id"], id);
    // Oak's new member, connected to nobody, reads nothing of it and writes to none of them.
    let olive = serde_json::json!({"name": "Olive", "email": "olive@oak.example", "relationship": "colleague-here", "role": "staff"});
    api.expect(oak, 201, "POST", "/v1/invitations", Some(&olive));
    let (code, _) = code_in(mail, 6);
    let olive = api.call(
        None,
        "POST",
        "/v1/invitations/accept",
        Some(&serde_json::json!({"code": code, "password": "a long passphrase", "confirm_practice": "Oak Clinic"})),
    );
    let olive = olive.body["account"]["id"].as_i64().unwrap();
    let outsider = node.run(&["--json", "secure", "read", &id.to_string(), "--account", &olive.to_string()]);
    assert_eq!(outsider.json()["error"]["code"], "not-found");
    let hello = serde_json::json!({"to": [grace], "subject": "Hello"});
    assert_eq!(api.call(Some(oak), "POST", &format!("/v1/accounts/{olive}/messages"), Some(&hello)).status, 404);
    // Sealed at rest: the subject is in neither the database nor its WAL.
    for file in [node.db.clone(), format!("{}-wal", node.db)] {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!bytes.windows(10).any(|w| w == b"Cardiology"), "sealed in {file}");
    }
    // To a Direct address, as the practice: the Direct path and its gate (Elm is not verified).
    let direct = serde_json::json!({"to_addresses": ["dr.jones@b.example.org"], "subject": "Hello", "as_practice": format!("dr@{DOMAIN}")});
    let refused = api.call(Some(elm), "POST", &format!("/v1/accounts/{hal}/messages"), Some(&direct));
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (403, Some("not-verified")),
        "{:?}",
        refused.body
    );
}

/// Waits up to 30 s until the sender's tracking of `message_id` says `status` for its recipient.
fn wait_tracked(node: &Node, message_id: &str, status: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tracked = node.run(&["--json", "message", "track", message_id]);
        if tracked.status == 0 && tracked.json()["recipients"][0]["status"] == status {
            return tracked.json();
        }
        assert!(Instant::now() < deadline, "{message_id} {status}: {}\n{}", tracked.text(), node.serve_log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn direct_mail_to_someone_without_a_direct_address_is_held_and_they_are_invited() {
    use common::network::{network_with, submit_to, wait_for_mail};
    let files = Files::new();
    let (relay_port, api_port) = (free_port(), free_port());
    let mail = files.path("mail");
    let _relay = smarthost(&files, relay_port, &mail);
    let (cert, key) = loopback_tls(&files);
    let password = files.write("relay.pass", b"relay-secret\n");
    let extra = format!(
        "[invitations]\naccept_url = \"https://portal.example.org/invitations/accept\"\nnotice_retry_secs = 1\n\
         [notify.email]\nrelay = \"127.0.0.1:{relay_port}\"\nfrom = \"no-reply@a.test\"\nusername = \"hisp\"\n\
         password_file = \"{password}\"\ntls_ca_file = \"{cert}\"\n\
         [http]\nlisten = \"127.0.0.1:{api_port}\"\ntls_cert_file = \"{cert}\"\ntls_key_file = \"{key}\"\n"
    );
    let n = network_with(|node, config| if node == "a" { format!("{config}{extra}") } else { config });

    // Off (the default): the sender's failure notice says why.
    let lost =
        "From: dr.smith@a.test\r\nTo: nobody@b.test\r\nSubject: Lost\r\nMessage-ID: <lost-1@a.test>\r\n\r\nPHI\r\n";
    assert_eq!(submit_to(n.a_submission, "nobody@b.test", lost).status, 0);
    let dsn = wait_for_mail(&n.a, "a.test", "dr.smith", |m| m.contains("report-type=delivery-status")).remove(0);
    assert!(dsn.contains("Status: 5.1.1") && dsn.contains("does not invite recipients without one"), "{dsn}");

    // On: held, sealed, and the recipient invited, over SMTP submission...
    n.a.ok(&["practice", "invite-unreachable", "a.test", "on"]);
    let letter = "From: dr.smith@a.test\r\nTo: bob@b.test\r\nSubject: Referral for Bob\r\n\
                  Message-ID: <held-1@a.test>\r\n\r\nPlease see him on Monday.\r\n";
    assert_eq!(submit_to(n.a_submission, "bob@b.test", letter).status, 0);
    let held = wait_tracked(&n.a, "<held-1@a.test>", "held");
    assert!(held["recipients"][0]["detail"].as_str().unwrap().contains("invited"), "{held}");
    let (code, invitation) = code_in(&mail, 1);
    assert!(invitation.contains("To: <bob@b.test>") && !invitation.contains("Monday"), "{invitation}");
    // ...and through the API.
    let token = token(&n.a, "ehr", "a.test");
    let api = Api { port: api_port, ca_file: cert.clone() };
    let sent = serde_json::json!({"from": "dr.smith@a.test", "to": ["carol@b.test"], "subject": "For Carol", "body": "Results."});
    let queued = api.expect(&token, 202, "POST", "/v1/messages", Some(&sent));
    wait_tracked(&n.a, queued["message_id"].as_str().unwrap(), "held");
    let (_, to_carol) = code_in(&mail, 2);
    assert!(to_carol.contains("To: <carol@b.test>"), "{to_carol}");
    // Nothing of the held message is readable in the database.
    for file in [n.a.db.clone(), format!("{}-wal", n.a.db)] {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!bytes.windows(6).any(|w| w == b"Monday"), "sealed in {file}");
    }

    // Bob registers: the message is in his mailbox, and dr.smith's tracking says so.
    let details = n.a.files.write(
        "birch.json",
        br#"{"name": "Birch", "address": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701", "phone": "+12175550100", "ehr": "none"}"#,
    );
    let accepted = n.a.run_in(
        &["--json", "invite", "accept", &code, "--password-stdin", "--practice-file", &details],
        Some(b"a long passphrase\n"),
    );
    assert_eq!(accepted.status, 0, "{}", accepted.text());
    let bob = accepted.json()["account"]["id"].to_string();
    let inbox = n.a.json(&["secure", "inbox", "--account", &bob]);
    assert_eq!(inbox[0]["subject"], "Referral for Bob");
    assert_eq!(inbox[0]["from"]["name"], "dr.smith@a.test");
    let read = n.a.json(&["secure", "read", &inbox[0]["id"].to_string(), "--account", &bob]);
    assert!(read["body"].as_str().unwrap().contains("Please see him on Monday."));
    let done = wait_tracked(&n.a, "<held-1@a.test>", "dispatched");
    let events: Vec<&str> =
        done["recipients"][0]["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["submitted", "held", "dispatched"], "{done}");

    // Carol's invitation is cancelled: what was held for her goes back to the sender as a failure
    // notice, and the tracking says failed.
    let list = n.a.json(&["invite", "list", "--practice", "a.test", "--status", "sent"]);
    let carol = list.as_array().unwrap().iter().find(|i| i["contact"] == "carol@b.test").unwrap()["id"].to_string();
    n.a.ok(&["invite", "cancel", &carol, "--practice", "a.test"]);
    let returned = wait_for_mail(&n.a, "a.test", "dr.smith", |m| m.contains("did not accept the invitation")).remove(0);
    assert!(returned.contains("report-type=delivery-status") && returned.contains("Action: failed"), "{returned}");
    wait_tracked(&n.a, queued["message_id"].as_str().unwrap(), "failed");
}

#[test]
fn the_proofing_code_goes_through_the_same_smarthost_when_it_has_no_relay_of_its_own() {
    let files = Files::new();
    let (relay_port, gateway_port, submission) = (free_port(), free_port(), free_port());
    let mail = files.path("mail");
    let _relay = smarthost(&files, relay_port, &mail);
    let mut text = config(&files, relay_port, gateway_port, submission, "");
    text = text.replace(
        "[onboarding]\nparent_domain = \"direct.example.org\"\n",
        "[onboarding]\nparent_domain = \"direct.example.org\"\ncode_channel = \"email\"\ncode_to = \"{phone}@sms.example.net\"\n",
    );
    let node = Node::with_config(&text);
    node.ok(&["practice", "add", PRACTICE]);
    node.ok(&["proofing", "start", PRACTICE, "--accept-terms", "--accept-verification-agreement"]);
    node.ok(&["proofing", "send-code", DOMAIN, "--phone", "+15555550123"]);
    let message = wait_files(&mail, "eml", 1).remove(0);
    assert_eq!(std::fs::read_to_string(mail.join("0001.auth")).unwrap(), "hisp", "with the smarthost's AUTH");
    assert!(message.contains("To: <15555550123@sms.example.net>"), "{message}");
    assert!(message.contains("From: <no-reply@hisp.example.org>"), "the smarthost's From: {message}");
    assert!(message.contains("confirmation code is "), "{message}");
}
