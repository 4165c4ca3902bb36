//! `hisp demo`: two practices on two nodes in this one process, each with its own database,
//! development CA, certificates and published DNS, exchange the real HL7 C-CDA referral note:
//! an EHR user of practice A submits it over SMTP (STARTTLS, AUTH); node A discovers dr.jones's
//! certificate in node B's DNS, seals and delivers it to B's MX; node B opens it (signature,
//! binding, trust, revocation against A's published CRL) and delivers it into dr.jones's Maildir;
//! the referral asks for timely and reliable delivery, so B answers with a processed and then a
//! dispatched MDN, which node A opens, matches to the referral and passes to dr.smith's mailbox.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::address::{DirectAddress, Domain, Owner};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::dev_ca::DevCa;
use crate::dns::DnsConfig;
use crate::kek::Kek;
use crate::onboarding::code::{CodeChannel, Recipient};
use crate::onboarding::proofing::State;
use crate::onboarding::verifier::RulesVerifier;
use crate::onboarding::{Onboarding, OnboardingError};
use crate::serve::{self, inbound::VERIFIED_SENDER, Setup};
use crate::smime::mime::Entity;
use crate::smtp::client::{self, ClientConfig};

use crate::store::{AnchorRecord, NodeStore};
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;

/// The HL7 C-CDA referral note the EHR attaches.
const REFERRAL_NOTE: &[u8] = include_bytes!("../fixtures/ccda/referral-note.xml");
const PASSWORD: &str = "demo password of dr.smith";

/// The timeline as it happens: each line with the seconds since the start.
pub(crate) struct Timeline {
    start: Instant,
}

impl Timeline {
    fn step(&self, text: &str) {
        println!("[{:6.2}s] {text}", self.start.elapsed().as_secs_f64());
    }
    fn detail(&self, text: &str) {
        for line in text.lines() {
            println!("           {line}");
        }
    }
}

struct Practice {
    domain: Domain,
    user: DirectAddress,
    name: &'static str,
    db: PathBuf,
    config: Config,
    secret: String,
    ports: Ports,
}

#[derive(Clone, Copy)]
struct Ports {
    submission: u16,
    backbone: u16,
    http: u16,
    dns: u16,
}

/// Removes the demo's directory at the end, whatever happens (unless kept: then says where).
struct TempDir(PathBuf, bool);

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.1 {
            println!("kept the demo's files in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Where the demo's ports come from.
#[derive(Clone, Copy)]
enum PortSource {
    Random,
    /// The next port to hand out from `--base-port` up.
    From(u16),
}

impl PortSource {
    fn next(&mut self) -> Result<u16, String> {
        match self {
            PortSource::Random => free_port(),
            PortSource::From(port) => {
                let taken = *port;
                *port += 1;
                if port_is_free(taken) {
                    Ok(taken)
                } else {
                    Err(format!("port {taken} on 127.0.0.1 is in use: choose another --base-port"))
                }
            }
        }
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

/// A port free for TCP and UDP (the DNS publisher uses both), chosen at random below Linux's
/// ephemeral range (32768 up): a port the kernel hands out for an outgoing connection could be
/// taken by another program between this check and the node binding it.
fn free_port() -> Result<u16, String> {
    for _ in 0..1000 {
        let mut r = [0u8; 2];
        openssl::rand::rand_bytes(&mut r).map_err(|e| e.to_string())?;
        let port = 20_000 + u16::from_be_bytes(r) % 12_000;
        if port_is_free(port) {
            return Ok(port);
        }
    }
    Err("no free port on 127.0.0.1 between 20000 and 32000".into())
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    let _ = openssl::rand::rand_bytes(&mut bytes);
    hex::encode(&bytes)
}

/// Runs the demo on the ports from `base_port` up (else random free ones); `keep` keeps its files.
pub(crate) fn run(base_port: Option<u16>, keep: bool) -> Result<(), String> {
    // The nodes' log on stderr, as `hisp serve` writes it; the timeline goes to stdout.
    crate::logging::init(crate::logging::Format::Text)?;
    let timeline = Timeline { start: Instant::now() };
    let dir = std::env::temp_dir().join(format!("hisp-demo-{}", random_hex(6)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _cleanup = TempDir(dir.clone(), keep);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut ports = base_port.map_or(PortSource::Random, PortSource::From);
    let (a, b) = set_up(&dir, &mut ports, clock.unix_now(), &timeline)?;
    start_nodes(&a, &b, &clock, &timeline)?;
    let message_id = send_referral(&a, &b, &timeline)?;
    check_delivery(&a, &b, &timeline)?;
    wait_for_mdns(&a, &b, &message_id, &timeline)?;
    timeline.step(&format!(
        "done: the referral reached {} intact, and {} knows it was processed and dispatched",
        b.name, a.name
    ));
    Ok(())
}

/// Two practices on two nodes, each with its own development CA, trusting each other's.
fn set_up(dir: &Path, ports: &mut PortSource, now: i64, timeline: &Timeline) -> Result<(Practice, Practice), String> {
    let mut a = practice(dir, ports, "a", "smithpeds.direct.example.org", "dr.smith", "Smith Pediatrics")?;
    let mut b = practice(dir, ports, "b", "jonesortho.direct.example.org", "dr.jones", "Jones Orthopedics")?;
    // Each node asks the other's DNS publisher and delivers to the other's backbone port.
    a.config.dns.servers = vec![format!("127.0.0.1:{}", b.ports.dns)];
    a.config.delivery.port = b.ports.backbone;
    b.config.dns.servers = vec![format!("127.0.0.1:{}", a.ports.dns)];
    b.config.delivery.port = a.ports.backbone;
    let mut cas = Vec::new();
    for p in [&a, &b] {
        let (ca, proofed) = provision(p, now)?;
        cas.push(ca);
        timeline.step(&format!(
            "node {}: practice {} ({}), address {}, its own development CA and an address-bound certificate",
            if p.name.starts_with("Smith") { "A" } else { "B" },
            p.name,
            p.domain,
            p.user
        ));
        timeline.detail(&proofed);
    }
    for p in [&a, &b] {
        let store = crate::store::open(&p.db, "demo").map_err(|e| e.to_string())?;
        for ca in &cas {
            let anchor = AnchorRecord::of(ca, &p.domain, true, true).map_err(|e| e.to_string())?;
            store.add_anchor(&anchor).map_err(|e| e.to_string())?;
        }
    }
    timeline.step("each node trusts the other's CA (in a real network: the DirectTrust bundle)");
    Ok((a, b))
}

fn start_nodes(a: &Practice, b: &Practice, clock: &Arc<dyn Clock>, timeline: &Timeline) -> Result<(), String> {
    for p in [a, b] {
        let store = crate::store::open(&p.db, "demo").map_err(|e| e.to_string())?;
        let kek = Kek::unlock(&*store, &p.secret).map_err(|e| e.to_string())?;
        let dns = DnsConfig {
            servers: p.config.dns.servers.iter().filter_map(|s| crate::dns::parse_server(s).ok()).collect(),
            timeout: Duration::from_millis(p.config.dns.timeout_ms),
            attempts: p.config.dns.attempts,
        };
        serve::start(Setup { config: p.config.clone(), db: p.db.clone(), kek, dns, clock: clock.clone() })?;
    }
    timeline.step(&format!(
        "both nodes running on loopback: A submission :{} backbone :{}, B backbone :{}; each publishes \
         CERT/MX/A records (DNS :{} and :{}) and its CA's certificate and CRL (HTTP :{} and :{})",
        a.ports.submission, a.ports.backbone, b.ports.backbone, a.ports.dns, b.ports.dns, a.ports.http, b.ports.http
    ));
    Ok(())
}

/// A's EHR submits the referral; returns its Message-ID once A has sent it to B.
fn send_referral(a: &Practice, b: &Practice, timeline: &Timeline) -> Result<String, String> {
    let message_id = format!("<referral-{}@{}>", random_hex(8), a.domain);
    let referral = referral(&a.user, &b.user, &message_id);
    let submitted = submit(a, &b.user, &referral)?;
    timeline.step(&format!(
        "EHR of {} submitted the referral with the C-CDA referral note ({} bytes) over SMTP submission \
         (STARTTLS, AUTH PLAIN as {})",
        a.name,
        REFERRAL_NOTE.len(),
        a.user
    ));
    timeline.detail(&format!("node A: {submitted}"));
    let sent = wait_for_sent(&a.db, &message_id, timeline)?;
    timeline.step(&format!(
        "node A found {}'s certificate by DNS CERT at {}.{}, checked it chains to B's CA and is not \
         revoked, sealed the message (signed SHA-256, AES-256-CBC) and delivered it to B's MX over STARTTLS",
        b.user,
        b.user.local(),
        b.domain
    ));
    timeline.detail(&sent);
    Ok(message_id)
}

/// Waits for the referral in dr.jones's mailbox, checks its attachment byte for byte, and that
/// B's store lists it.
fn check_delivery(a: &Practice, b: &Practice, timeline: &Timeline) -> Result<(), String> {
    let mailbox = serve::maildir::mailbox(&b.config.server.mail_dir, &b.user).map_err(|e| e.to_string())?.join("new");
    let delivered = wait_for_file(&mailbox)?;
    let mail = std::fs::read(&delivered).map_err(|e| e.to_string())?;
    timeline.step(&format!(
        "node B opened it (decrypted, signature verified, signer bound to {}, chains to A's CA, not on \
         A's CRL) and delivered it into {}",
        a.user,
        delivered.display()
    ));
    let headers = Entity::parse(&mail).headers;
    timeline
        .detail(&format!("{VERIFIED_SENDER}: {}", headers.get(&VERIFIED_SENDER.to_ascii_lowercase()).unwrap_or("")));
    check_attachment(&mail)?;
    timeline.step("the attachment referral-note.xml in dr.jones's mailbox matches the original byte for byte");
    // B records the delivery (and lists the attachments) in one transaction just after the file
    // lands in the Maildir: wait for that record.
    let queue = crate::store::queue::open(&b.db).map_err(|e| e.to_string())?;
    // File names are sealed at rest: B's KEK opens them.
    let b_store = crate::store::open(&b.db, "demo").map_err(|e| e.to_string())?;
    let b_kek = Kek::unlock(&*b_store, &b.secret).map_err(|e| e.to_string())?;
    queue.attach_fields(Arc::new(b_kek)).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + PATIENCE;
    let delivered = || -> Result<bool, String> {
        let entries = queue.list(true).map_err(|e| e.to_string())?;
        Ok(entries.iter().any(|e| e.recipients.iter().any(|r| r.status == "delivered")))
    };
    while !delivered()? {
        if Instant::now() > deadline {
            return Err("node B did not record the delivery".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let listed = queue.received_attachments(Some(&b.user.to_string())).map_err(|e| e.to_string())?;
    for a in &listed {
        timeline.detail(&format!(
            "listed in node B's store for {}: {} ({}, {} bytes, sha256 {})",
            b.name, a.filename, a.content_type, a.size, a.sha256
        ));
    }
    if !listed.iter().any(|a| a.filename == "referral-note.xml" && a.size as usize == REFERRAL_NOTE.len()) {
        return Err("node B did not list the attachment in its store".into());
    }
    timeline.step(&format!("the referral reached {} intact", b.name));
    Ok(())
}

/// Waits until node A has matched the processed and the dispatched MDN from B to the referral,
/// telling each as it comes, and checks both reached dr.smith's mailbox.
fn wait_for_mdns(a: &Practice, b: &Practice, message_id: &str, timeline: &Timeline) -> Result<(), String> {
    let queue = crate::store::queue::open(&a.db).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + PATIENCE;
    let mut told = 0;
    loop {
        let tracked = queue.track(message_id).map_err(|e| e.to_string())?;
        let recipient = tracked
            .into_iter()
            .next()
            .and_then(|m| m.recipients.into_iter().next())
            .ok_or("node A does not track the referral")?;
        let notices: Vec<_> =
            recipient.timeline.iter().filter(|e| matches!(e.event.as_str(), "processed" | "dispatched")).collect();
        // B sends processed first; A may open the two in either order. Told in B's order.
        let mut new: Vec<_> = notices.iter().skip(told).collect();
        new.sort_by_key(|e| e.event != "processed");
        for e in new {
            let what = if e.event == "processed" {
                "a processed MDN (received, signature and trust verified)"
            } else {
                "a dispatched MDN with X-DIRECT-FINAL-DESTINATION-DELIVERY (in the addressee's mailbox)"
            };
            timeline.step(&format!(
                "node B sent {what}, signed by {} and encrypted to {}; node A opened it and matched it to the referral",
                b.user, a.user
            ));
        }
        told = notices.len();
        if recipient.status == "dispatched" && recipient.processed_at.is_some() {
            break;
        }
        if matches!(recipient.status.as_str(), "failed" | "timed-out") {
            return Err(format!("the referral {}: {}", recipient.status, recipient.detail.unwrap_or_default()));
        }
        if Instant::now() > deadline {
            return Err(format!("no dispatched MDN within {} s (status {})", PATIENCE.as_secs(), recipient.status));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let inbox = serve::maildir::mailbox(&a.config.server.mail_dir, &a.user).map_err(|e| e.to_string())?.join("new");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mdns = std::fs::read_dir(&inbox)
            .map(|d| d.flatten().filter(|f| std::fs::read(f.path()).is_ok_and(|m| is_mdn(&m))).count())
            .unwrap_or(0);
        if mdns >= 2 {
            timeline.detail(&format!("both MDNs are in {}'s mailbox {}", a.user, inbox.display()));
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{mdns} of 2 MDNs reached {}'s mailbox", a.user));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_mdn(message: &[u8]) -> bool {
    let headers = Entity::parse(message).headers;
    crate::notify::request::report(&headers) == Some(crate::notify::request::Report::Disposition)
}

fn practice(
    dir: &Path,
    source: &mut PortSource,
    tag: &str,
    domain: &str,
    user: &str,
    name: &'static str,
) -> Result<Practice, String> {
    let domain = Domain::parse(domain).map_err(|e| e.to_string())?;
    let user = DirectAddress::parse(&format!("{user}@{domain}")).map_err(|e| e.to_string())?;
    let ports =
        Ports { submission: source.next()?, backbone: source.next()?, http: source.next()?, dns: source.next()? };
    let home = dir.join(tag);
    let mut config = Config::default();
    config.server.hostname = format!("mx.{domain}");
    config.server.submission = format!("127.0.0.1:{}", ports.submission);
    config.server.backbone = format!("127.0.0.1:{}", ports.backbone);
    config.server.http = format!("127.0.0.1:{}", ports.http);
    config.server.mail_dir = home.join("mail");
    // The demo prints its own timeline.
    config.server.log_outcomes = false;
    config.ca.base_url = format!("http://127.0.0.1:{}", ports.http);
    config.dns_server.listen = format!("127.0.0.1:{}", ports.dns);
    config.queue.retry_base_secs = 1;
    config.queue.retry_max_secs = 2;
    config.delivery.timeout_secs = 10;
    Ok(Practice { domain, user, name, db: home.join("hisp.db"), config, secret: random_hex(24), ports })
}

/// The database, the practice (its identity proofed), the user with a password, the CA and the
/// user's certificate; and how the proofing went.
fn provision(p: &Practice, now: i64) -> Result<(openssl::x509::X509, String), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let store = crate::store::create(&p.db, "demo").map_err(|e| err(&e))?;
    let kek = Kek::unlock(&*store, &p.secret).map_err(|e| err(&e))?;
    store.add_domain(&p.domain, p.name).map_err(|e| err(&e))?;
    let proofed = prove_identity(&*store, &kek, p, now)?;
    let hash = crate::password::hash(PASSWORD).map_err(|e| err(&e))?;
    store.add_address(&p.user, Some(&hash)).map_err(|e| err(&e))?;
    let ca = DevCa::create(&*store, &kek, &format!("{} development CA", p.name), 2048, now, 3650, false)
        .map_err(|e| err(&e))?;
    ca.issue_stored(&*store, &kek, &Owner::Address(p.user.clone()), 2048, now, 365, &p.config.ca.base_url)
        .map_err(|e| err(&e))?;
    Ok((ca.cert, proofed))
}

/// The representative's phone in the demo: it shows the code it was sent.
struct DemoPhone(std::sync::Mutex<Option<String>>);

impl CodeChannel for DemoPhone {
    fn send(&self, _: &Recipient, code: &str) -> Result<String, String> {
        *self.0.lock().map_err(|_| "poisoned")? = Some(code.to_string());
        Ok("the demo phone".into())
    }
}

/// The practice's legal representative completes identity proofing as an EHR would walk them
/// through it: terms, the four sections, the code sent to the phone, Verify Identity (the rules).
fn prove_identity(store: &dyn NodeStore, kek: &Kek, p: &Practice, now: i64) -> Result<String, String> {
    let phone = DemoPhone(std::sync::Mutex::new(None));
    let onboarding = Onboarding { store, kek, ca: &p.config.ca, verifier: &RulesVerifier, channel: &phone, now };
    let practice = p.domain.as_str();
    let err = |e: OnboardingError| format!("identity proofing of {}: {e}", p.name);
    onboarding.accept_terms(practice, true, true).map_err(err)?;
    let sections = [
        ("business", serde_json::json!({"name": p.name})),
        (
            "representative",
            serde_json::json!({"first_name": "Pat", "last_name": "Doe", "date_of_birth": "1971-05-14",
                "personal_email": "pat.doe@example.org",
                "home_address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"}}),
        ),
        ("government_id", serde_json::json!({"npi": "1234567893"})),
        ("financial_id", serde_json::json!({"phone": "+15555550123"})),
    ];
    for (name, data) in &sections {
        onboarding.save_section(practice, name, data).map_err(err)?;
    }
    onboarding.send_code(practice, "+15555550123").map_err(err)?;
    let code = phone.0.lock().ok().and_then(|c| c.clone()).ok_or("no code reached the demo phone")?;
    let status = onboarding.confirm(practice, &code).and_then(|_| onboarding.submit(practice)).map_err(err)?;
    if status.state != State::Verified {
        let reasons: Vec<String> = status.reasons.iter().map(ToString::to_string).collect();
        return Err(format!("identity proofing of {} did not verify: {}", p.name, reasons.join("; ")));
    }
    Ok(format!(
        "identity proofing: terms accepted, 4 sections ready, code {code} confirmed, {} by the rules \
         (until then: no certificate, no sending)",
        status.state.as_str()
    ))
}

fn referral(from: &DirectAddress, to: &DirectAddress, message_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    MessageBuilder::new()
        .from(("Dr. Smith", from.to_string().as_str()))
        .to(("Dr. Jones", to.to_string().as_str()))
        .subject("Referral: knee pain")
        .message_id(crate::smime::mime::bare_message_id(message_id))
        .header("Disposition-Notification-Options", Raw::new(crate::notify::request::FINAL_DELIVERY_REQUEST))
        .text_body("Please see the attached referral note.")
        .attachment("application/xml", "referral-note.xml", REFERRAL_NOTE)
        .serialize(&mut out);
    out
}

/// Submits as the EHR does: STARTTLS, then AUTH PLAIN with the user's password.
fn submit(a: &Practice, to: &DirectAddress, message: &[u8]) -> Result<String, String> {
    let tls = crate::smtp::tls::connector(false, None).map_err(|e| e.to_string())?;
    let config = ClientConfig {
        hostname: "ehr.smithpeds.example",
        timeout: Duration::from_secs(30),
        tls: &tls,
        verify_tls: false,
        auth: Some((&a.user.to_string(), PASSWORD)),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], a.ports.submission));
    client::deliver(addr, "localhost", &config, Some(&a.user.to_string()), &to.to_string(), message)
        .map_err(|e| format!("submission to node A failed: {e}"))
}

const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until node A's queue says the message went out; the peer's reply.
fn wait_for_sent(db: &Path, message_id: &str, timeline: &Timeline) -> Result<String, String> {
    let queue = crate::store::queue::open(db).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    while Instant::now() < deadline {
        let entries = queue.list(true).map_err(|e| e.to_string())?;
        if let Some(entry) = entries.into_iter().find(|e| e.message_id == message_id) {
            if let Some(r) = entry.recipients.first() {
                let note = r.last_error.clone().unwrap_or_default();
                match r.status.as_str() {
                    "sent" => return Ok(note),
                    "failed" => return Err(format!("node A could not deliver: {note}")),
                    _ if note != last && !note.is_empty() => {
                        timeline.detail(&format!("node A will retry: {note}"));
                        last = note;
                    }
                    _ => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!("node A did not deliver within {} s (last: {last})", PATIENCE.as_secs()))
}

fn wait_for_file(dir: &Path) -> Result<PathBuf, String> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(file) = std::fs::read_dir(dir).ok().and_then(|mut d| d.next()).and_then(|e| e.ok()) {
            return Ok(file.path());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!("nothing arrived in {} within {} s", dir.display(), PATIENCE.as_secs()))
}

/// The delivered message's referral-note.xml attachment is the original document.
fn check_attachment(mail: &[u8]) -> Result<(), String> {
    let found = crate::smime::mime::attachments(mail)?;
    match found.iter().find(|a| a.filename == "referral-note.xml") {
        Some(a) if a.content == REFERRAL_NOTE => Ok(()),
        Some(_) => Err("the C-CDA document changed on the way".into()),
        None => Err("the attachment referral-note.xml is missing".into()),
    }
}
