//! The web portal against a running `hisp serve`: journeys in Chromium (tests/browser/), with the
//! real smarthost of the invitations tests keeping the e-mails it is given; and what a browser
//! does not show (headers, timeouts) with curl.

mod common;

use common::node::*;
use common::relay::{loopback_tls, python_peer, python_peer_command, smarthost};
use common::servers::{free_port, Server};
use common::*;
use common::{browser, network};

const PRACTICE: &str = "Elm Clinic";

/// A node with its portal on `portal` and the smarthost at `relay` trusted; `extra` configuration
/// after.
fn node(files: &Files, portal: u16, relay: u16, extra: &str) -> Node {
    let password = files.write("relay.pass", b"relay-secret\n");
    let (cert, _) = loopback_tls(files);
    let mailboxes = files.p("mailboxes");
    Node::with_config(&format!(
        "[onboarding]\nparent_domain = \"direct.example.org\"\n\
         [server]\nhostname = \"hisp.example.org\"\nsubmission = \"\"\nbackbone = \"\"\n\
         mail_dir = \"{mailboxes}\"\nmin_free_disk_mb = 0\n\
         [portal]\nlisten = \"127.0.0.1:{portal}\"\npublic_url = \"https://portal.example.org\"\n\
         [notify.email]\nrelay = \"127.0.0.1:{relay}\"\nfrom = \"no-reply@hisp.example.org\"\n\
         username = \"hisp\"\npassword_file = \"{password}\"\ntls_ca_file = \"{cert}\"\ntimeout_secs = 10\n{extra}"
    ))
}

/// A node with its portal, the smarthost keeping what it is given in `mail`, and Elm Clinic.
struct Site {
    _files: Files,
    node: Node,
    portal: u16,
    mail: std::path::PathBuf,
    _relay: Server,
}

fn site() -> Site {
    site_with("")
}

fn site_with(extra: &str) -> Site {
    let files = Files::new();
    let (portal, relay) = (free_port(), free_port());
    let mail = files.path("mail");
    let relay_server = smarthost(&files, relay, &mail);
    let node = node(&files, portal, relay, extra);
    node.ok(&["practice", "add", PRACTICE]);
    Site { _files: files, node, portal, mail, _relay: relay_server }
}

impl Site {
    /// The environment every journey has: where the portal is, where the e-mails are.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PORTAL_URL", format!("https://127.0.0.1:{}", self.portal)),
            ("MAIL_DIR", self.mail.display().to_string()),
        ]
    }
}

/// `hisp account add` for a member of `practice`; `--print-link` unless the link goes by e-mail.
fn add_account(
    node: &Node,
    practice: &str,
    name: &str,
    email: &str,
    role: &str,
    print_link: bool,
) -> serde_json::Value {
    let mut args = vec!["account", "add", "--practice", practice, "--name", name, "--email", email, "--role", role];
    if print_link {
        args.push("--print-link");
    }
    node.json(&args)
}

/// Runs `script` with Elm Clinic's admin, Ada, whose one-time link it is given; the site stays
/// for what the test checks after (its node stopped).
fn admin_journey(script: &str) -> Site {
    let site = site();
    let node = &site.node;
    let admin = add_account(node, PRACTICE, "Ada Lovelace", "ada@elm.test", "admin", true);
    let daemon = node.serve(site.portal);
    let mut env = site.env();
    env.push(("ADMIN_LINK", admin["link"].as_str().unwrap().to_string()));
    browser::journey(script, &env, || node.serve_log());
    drop(daemon);
    site
}

#[test]
fn members_sign_in_with_a_password_from_their_link_and_a_second_factor() {
    let site = site();
    let node = &site.node;
    node.ok(&["practice", "add", "Oak Clinic"]);
    node.ok(&["practice", "two-factor", "Oak Clinic", "required"]);
    let admin = add_account(node, PRACTICE, "Ada Lovelace", "Ada@Elm.test", "admin", false);
    assert_eq!(admin["link_emailed"], true, "{admin}");
    assert!(admin["link"].is_null(), "the operator does not see an e-mailed link");
    let staff = add_account(node, "Oak Clinic", "Grace Hopper", "grace@oak.test", "staff", true);
    let staff_link = staff["link"].as_str().unwrap().to_string();
    assert!(staff_link.starts_with("https://portal.example.org/password?token="), "{staff_link}");

    let _daemon = node.serve(site.portal);
    let mut env = site.env();
    env.extend([
        ("ADMIN_EMAIL", "ada@elm.test".to_string()),
        ("STAFF_EMAIL", "grace@oak.test".to_string()),
        ("STAFF_LINK", staff_link),
    ]);
    browser::journey("sign_in.js", &env, || node.serve_log());

    let audit = node.ok(&["--json", "audit", "--limit", "200"]).text();
    for action in [
        "account.add",
        "account.link",
        "account.password",
        "account.sign-in",
        "account.sign-in-failed",
        "account.second-factor",
        "account.two-factor-on",
        "account.recovery-code",
        "account.sign-out",
    ] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} in the audit log");
    }
    let listed = node.json(&["account", "list", "--practice", PRACTICE]);
    assert_eq!(listed["accounts"][0]["two_factor"], true, "{listed}");
    // No secret in the database in the clear: the TOTP secret sealed, tokens as digests.
    for row in node.sql("SELECT totp_secret FROM accounts WHERE totp_secret IS NOT NULL") {
        assert!(!row.iter().all(|b| b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".contains(b)), "the TOTP secret is sealed");
    }
}

/// curl against the portal, with a cookie jar of its own (what one browser would keep).
struct Curl {
    port: u16,
    jar: String,
}

/// An answer: status, header lines (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The form token in the page.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("a form token in {}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Curl {
    fn new(files: &Files, port: u16, name: &str) -> Curl {
        Curl { port, jar: files.p(&format!("{name}.jar")) }
    }

    fn call(&self, path: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let url = format!("https://127.0.0.1:{}{path}", self.port);
        let mut args = vec!["-sk", "-i", "--max-time", "20", "-b", &self.jar, "-c", &self.jar];
        let fields: Vec<String> = form.unwrap_or_default().iter().map(|(k, v)| format!("{k}={v}")).collect();
        for field in &fields {
            args.extend(["--data-urlencode", field.as_str()]);
        }
        if form.is_some_and(|f| f.is_empty()) {
            args.extend(["-X", "POST"]);
        }
        args.push(&url);
        let out = run("curl", &args, None, &[]).ok().text();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let mut lines = head.lines();
        let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Answer { status, headers, body: body.to_string() }
    }

    fn get(&self, path: &str) -> Answer {
        self.call(path, None)
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.call(path, Some(form))
    }

    fn sign_in(&self, email: &str, password: &str) -> Answer {
        let csrf = self.get("/sign-in").csrf();
        self.post("/sign-in", &[("csrf", &csrf), ("email", email), ("password", password)])
    }
}

#[test]
fn every_page_has_strict_headers_and_sessions_end_when_idle_or_old() {
    let files = Files::new();
    let (portal, relay) = (free_port(), free_port());
    let node = node(&files, portal, relay, "");
    node.ok(&["practice", "add", PRACTICE]);
    let added = node.json(&[
        "account",
        "add",
        "--practice",
        PRACTICE,
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@elm.test",
        "--print-link",
    ]);
    let token = added["link"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
    let _daemon = node.serve(portal);
    let browser = Curl::new(&files, portal, "browser");

    let page = browser.get("/sign-in");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-security-policy"),
        Some(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    );
    for (name, value) in [
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("content-type", "text/html; charset=utf-8"),
    ] {
        assert_eq!(page.header(name), Some(value), "{name}");
    }
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-hisp=") && cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict"));
    assert!(!page.body.contains("<script") && !page.body.contains("style="), "no inline script or style");
    let css = browser.get("/assets/portal.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(!css.body.contains("url(http"), "nothing from outside");
    let missing = browser.get("/no/such/page");
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-security-policy").is_some());

    // A form without the token, or with another browser's, is refused.
    assert_eq!(browser.post("/sign-in", &[("email", "ada@elm.test"), ("password", "x")]).status, 403);
    let other = Curl::new(&files, portal, "other");
    let foreign = other.get("/sign-in").csrf();
    assert_eq!(browser.post("/sign-in", &[("csrf", &foreign), ("email", "a@b.c"), ("password", "x")]).status, 403);

    let csrf = browser.get(&format!("/password?token={token}")).csrf();
    let set = browser.post(
        "/password",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", "tulip kettle orbit mauve"),
            ("confirm", "tulip kettle orbit mauve"),
        ],
    );
    assert_eq!((set.status, set.header("location")), (303, Some("/sign-in?then=password-set")));
    let signed = browser.sign_in("ada@elm.test", "tulip kettle orbit mauve");
    assert_eq!((signed.status, signed.header("location")), (303, Some("/")));
    assert_eq!(browser.get("/").status, 200);
    let stored = node.sql("SELECT token_hash FROM web_sessions");
    assert_eq!(stored.len(), 1);
    let jar = std::fs::read_to_string(&browser.jar).unwrap();
    assert!(!jar.contains(&String::from_utf8_lossy(&stored[0]).to_string()), "the table holds a digest, not the token");

    // Idle for the idle timeout (15 minutes): the session ends.
    node.sql("UPDATE web_sessions SET seen_at = seen_at - 900 RETURNING id");
    let ended = browser.get("/");
    assert_eq!((ended.status, ended.header("location")), (303, Some("/sign-in?then=ended")));
    assert!(browser.get("/sign-in?then=ended").body.contains("Your session ended"));
    assert!(node.sql("SELECT id FROM web_sessions").is_empty(), "an ended session is deleted");

    // Signed in longer than the absolute timeout (12 hours), however busy: it ends too.
    browser.sign_in("ada@elm.test", "tulip kettle orbit mauve");
    assert_eq!(browser.get("/account").status, 200);
    node.sql("UPDATE web_sessions SET created_at = created_at - 43200 RETURNING id");
    assert_eq!(browser.get("/account").header("location"), Some("/sign-in?then=ended"));

    // Locked after five failures; the operator lifts the lock.
    for _ in 0..5 {
        assert_eq!(browser.sign_in("ada@elm.test", "wrong password").status, 401);
    }
    let locked = browser.sign_in("ada@elm.test", "tulip kettle orbit mauve");
    assert!(locked.body.contains("locked until"), "{}", locked.body);
    node.ok(&["account", "unlock", "ada@elm.test"]);
    assert_eq!(browser.sign_in("ada@elm.test", "tulip kettle orbit mauve").status, 303);
    // Signing out ends the session where it is kept, not only in the browser.
    let home = browser.get("/");
    let out = browser.post("/sign-out", &[("csrf", &home.csrf())]);
    assert_eq!(out.header("location"), Some("/sign-in?then=signed-out"));
    assert!(node.sql("SELECT id FROM web_sessions").is_empty());
}

/// `hisp invite send` from `practice` to `email` as `relationship` (patients born 1970-05-17,
/// Bob 1980-05-17).
fn invite(node: &Node, practice: &str, name: &str, email: &str, relationship: &str) {
    let mut args = vec![
        "invite",
        "send",
        "--practice",
        practice,
        "--name",
        name,
        "--email",
        email,
        "--relationship",
        relationship,
    ];
    if relationship == "patient" {
        args.extend(["--date-of-birth", if name.starts_with("Bob") { "1980-05-17" } else { "1970-05-17" }]);
    }
    if relationship == "colleague-here" {
        args.extend(["--role", "staff"]);
    }
    node.json(&args);
}

#[test]
fn invitees_register_from_the_link_in_their_email_on_each_path() {
    let site = site();
    let node = &site.node;
    node.ok(&["practice", "add", "Oak Clinic"]);
    invite(node, PRACTICE, "Ada Lovelace", "ada@example.org", "patient");
    invite(node, PRACTICE, "Bob Smith", "bob@example.org", "patient");
    invite(node, PRACTICE, "Grace Hopper", "grace@birch.example", "colleague-elsewhere");
    invite(node, PRACTICE, "Alan Turing", "alan@elm.example", "colleague-here");
    invite(node, "Oak Clinic", "Ada Lovelace", "ada@example.org", "patient");

    let _daemon = node.serve(site.portal);
    let env = site.env();
    browser::journey("register.js", &env, || node.serve_log());

    let listed = node.json(&["invite", "list", "--practice", PRACTICE]);
    let states: Vec<&str> = listed.as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "accepted").count(), 3, "{listed:#}");
    assert_eq!(states.iter().filter(|s| **s == "locked").count(), 1, "{listed:#}");
    let orgs = node.ok(&["--json", "contacts", "orgs", "--practice", PRACTICE]).text();
    for connected in ["Birch Family Medicine", "Ada Lovelace"] {
        assert!(orgs.contains(connected), "{connected} is connected with Elm Clinic: {orgs}");
    }
    let oak = node.ok(&["--json", "contacts", "orgs", "--practice", "Oak Clinic"]).text();
    assert!(oak.contains("Ada Lovelace"), "the patient accepted Oak Clinic's invitation too: {oak}");
    let members = node.json(&["account", "list", "--practice", PRACTICE]);
    assert!(members.to_string().contains("alan@elm.example"), "{members}");
}

#[test]
fn a_member_and_a_patient_exchange_secure_messages_with_files() {
    let site = site();
    let node = &site.node;
    let admin = add_account(node, PRACTICE, "Ada Lovelace", "ada@elm.test", "clinician", true);
    add_account(node, PRACTICE, "Grace Hopper", "grace@elm.test", "clinician", true);
    invite(node, PRACTICE, "Pat Doe", "pat@example.org", "patient");
    let _daemon = node.serve(site.portal);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ccda");
    let mut env = site.env();
    env.extend([
        ("ADMIN_LINK", admin["link"].as_str().unwrap().to_string()),
        ("FIXTURES", fixtures.display().to_string()),
    ]);
    browser::journey("messages.js", &env, || node.serve_log());

    let audit = node.ok(&["--json", "audit", "--limit", "300"]).text();
    for action in ["secure.send", "secure.read", "secure.view", "secure.download"] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} in the audit log");
    }
    for row in node.sql("SELECT subject FROM secure_messages") {
        assert!(!String::from_utf8_lossy(&row).contains("Referral"), "subjects are sealed at rest");
    }
}

#[test]
fn a_message_to_a_direct_address_on_a_second_node_shows_its_notifications() {
    let portal = free_port();
    let n = network::network_with(|name, config| {
        if name == "a" {
            format!("{config}[portal]\nlisten = \"127.0.0.1:{portal}\"\npublic_url = \"https://portal.a.test\"\n")
        } else {
            config
        }
    });
    let admin = n.a.json(&[
        "account",
        "add",
        "--practice",
        "a.test",
        "--name",
        "John Smith",
        "--email",
        "smith@a.test",
        "--print-link",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", portal)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the portal listens");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ccda");
    // dr.jones on the second node sends a PDF to the practice first, with an XDM package (written
    // by the test's own writer): it is in its Direct messages.
    let pdf = fixtures.join("ud-sample.pdf").display().to_string();
    let scratch = Files::new();
    let xdm = scratch.p("summary.zip");
    let ccd = fixtures.join("ccd.xml").display().to_string();
    let wrote = python_peer_command("xdm_tool.py", &["write", &xdm, "good", &ccd]).status().unwrap();
    assert!(wrote.success());
    let sent = network::swaks(
        n.b_submission,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "dr.jones@b.test",
            "--auth-password",
            network::PASSWORD,
            "--from",
            "dr.jones@b.test",
            "--to",
            "dr.smith@a.test",
            "--header",
            "Subject: Lab results <b>for</b> Pat",
            "--body",
            "The results are attached.",
            "--attach-type",
            "application/pdf",
            "--attach-name",
            "results.pdf",
            "--attach",
            &format!("@{pdf}"),
            "--attach-type",
            "application/zip",
            "--attach-name",
            "summary.zip",
            "--attach",
            &format!("@{xdm}"),
        ],
    );
    assert_eq!(sent.status, 0, "{}", sent.text());
    network::mailbox(&n.a, "a.test", "dr.smith", 1);
    let env = [
        ("PORTAL_URL", format!("https://127.0.0.1:{portal}")),
        ("ADMIN_LINK", admin["link"].as_str().unwrap().to_string()),
        ("FIXTURES", fixtures.display().to_string()),
    ];
    browser::journey("direct.js", &env, || n.a.serve_log());
    // dr.jones's mailbox also holds the processed MDN for what he sent: look at every file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !network::mailbox(&n.b, "b.test", "dr.jones", 1).iter().any(|m| m.contains("Referral for Pat Doe")) {
        assert!(std::time::Instant::now() < deadline, "dr.jones has the referral");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn an_admin_invites_from_the_portal_and_the_practices_connect() {
    let site = admin_journey("practice.js");
    let node = &site.node;
    let audit = node.ok(&["--json", "audit", "--limit", "400"]).text();
    for action in [
        "invitation.send",
        "invitation.accept",
        "invitation.cancel",
        "account.role",
        "practice.invitations",
        "listing.add",
        "contact.add",
    ] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} in the audit log");
    }
}

#[test]
fn a_practice_without_invitations_sends_none_from_any_door() {
    const SEND: [&str; 12] = [
        "invite",
        "send",
        "--practice",
        PRACTICE,
        "--name",
        "Pat Doe",
        "--email",
        "pat@example.org",
        "--relationship",
        "patient",
        "--date-of-birth",
        "1970-05-17",
    ];
    let node = Node::new();
    node.ok(&["practice", "add", PRACTICE, "--domain", "elm.test"]);
    let off = node.json(&["practice", "invitations", PRACTICE, "off"]);
    assert_eq!(off["invitations_allowed"], false);
    let refused = node.run(&SEND);
    assert_ne!(refused.status, 0);
    assert!(refused.stderr.contains("does not allow invitations"), "{}", refused.stderr);
    node.ok(&["practice", "invitations", PRACTICE, "on"]);
    node.ok(&SEND);
}

#[test]
fn members_keep_the_contacts_they_share_documents_with() {
    let site = admin_journey("sharing.js");
    let node = &site.node;
    let shown = node.json(&["practice", "show", PRACTICE]);
    assert_eq!(shown["practice"]["share_check"], "sms", "{shown}");
    assert_eq!(shown["practice"]["share_roles"], serde_json::json!(["clinician"]));
    let set = node.json(&["practice", "sharing", PRACTICE, "--check", "date-of-birth", "--roles", "staff,admin"]);
    assert_eq!(
        (set["share_check"].clone(), set["share_roles"].clone()),
        (serde_json::json!("date-of-birth"), serde_json::json!(["admin", "staff"]))
    );
    assert_ne!(node.run(&["practice", "sharing", PRACTICE, "--check", "sms", "--roles", "patient"]).status, 0);
    let audit = node.ok(&["--json", "audit", "--limit", "100"]).text();
    for action in ["share-contact.add", "share-contact.update", "share-contact.remove"] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} in the audit log");
    }
}

#[test]
fn a_document_shared_by_link_is_seen_once_its_contact_passes_the_sms_code() {
    let gateway_port = free_port();
    let texts = Files::new();
    let texts_dir = texts.path("texts");
    std::fs::create_dir_all(&texts_dir).unwrap();
    let _gateway = python_peer(
        "gateway.py",
        &[gateway_port.to_string(), texts_dir.display().to_string(), "0".into()],
        gateway_port,
    );
    let site = site_with(&format!("[notify.gateway]\nurl = \"http://127.0.0.1:{gateway_port}/v1/send\"\n"));
    let node = &site.node;
    let admin = add_account(node, PRACTICE, "Ada Lovelace", "ada@elm.test", "admin", true);
    let clinician = add_account(node, PRACTICE, "Dr Jones", "jones@elm.test", "clinician", true);
    node.ok(&["practice", "sharing", PRACTICE, "--check", "sms", "--roles", "clinician"]);
    let contact = ["--name", "Jane Roe", "--email", "jane@law.test", "--mobile", "+12175550100"];
    node.ok(&[&["share", "contact", "add", "--practice", PRACTICE][..], &contact[..]].concat());
    node.ok(&["practice", "add", "Oak Clinic"]);
    let oak =
        node.json(&["share", "contact", "add", "--practice", "Oak Clinic", "--name", "Oak's", "--email", "o@oak.test"]);
    let _daemon = node.serve(site.portal);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ccda");
    let mut env = site.env();
    env.extend([
        ("ADMIN_LINK", admin["link"].as_str().unwrap().to_string()),
        ("MEMBER_LINK", clinician["link"].as_str().unwrap().to_string()),
        ("FIXTURES", fixtures.display().to_string()),
        ("TEXTS_DIR", texts_dir.display().to_string()),
        ("NODE_DB", node.db.clone()),
        ("OTHER_CONTACT", oak["id"].to_string()),
    ]);
    browser::journey("share.js", &env, || node.serve_log());

    // At rest: the document and its name sealed, the link and the browser only as digests.
    for row in node.sql("SELECT content FROM shares") {
        assert!(!row.windows(16).any(|w| w == b"ClinicalDocument") && !row.starts_with(b"%PDF"), "sealed content");
    }
    for row in node.sql("SELECT filename FROM shares") {
        assert!(!String::from_utf8_lossy(&row).contains("ccd.xml"), "sealed file names");
    }
    let audit = node.ok(&["--json", "audit", "--limit", "500"]).text();
    for action in ["share.add", "share.passed", "share.viewed", "share.downloaded", "share.revoked", "share.resent"] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} in the audit log");
    }
}
