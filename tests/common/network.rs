//! Two practices on two `hisp serve` nodes on loopback, with knot publishing their certificates
//! and MX records, and swaks as dr.smith's EHR; the helpers the daemon and notification tests
//! share.

use base64::Engine;

use super::node::*;
use super::servers::{self, free_port, Server};
use super::*;

pub(crate) const PASSWORD: &str = "a long EHR password";

/// Two practices on two nodes, a DNS server publishing B's certificate and MX, both nodes running.
pub(crate) struct Network {
    pub a: Node,
    pub b: Node,
    pub a_submission: u16,
    pub a_backbone: u16,
    pub b_submission: u16,
    pub b_backbone: u16,
    pub _dns: Server,
    pub daemons: Vec<Daemon>,
    pub _mail: [tempfile::TempDir; 2],
}

pub(crate) fn practice(node: &Node, domain: &str, user: &str) {
    node.ok(&["domain", "add", domain]);
    node.ok(&["proofing", "approve", domain, "--out-of-band", "--reason", "test practice"]);
    node.run_in(
        &["address", "add", &format!("{user}@{domain}"), "--password-stdin"],
        Some(format!("{PASSWORD}\n").as_bytes()),
    )
    .ok();
    node.ok(&["ca", "init"]);
    node.ok(&["ca", "export", "--force", "--out", &node.files.p("dev-ca.pem")]);
    node.ok(&["anchor", "add", &node.files.p("dev-ca.pem"), "--domain", domain, "--incoming", "--outgoing"]);
    node.ok(&["cert", "issue", &format!("{user}@{domain}")]);
    node.publish_ca();
}

pub(crate) fn node_config(dns: u16, submission: u16, backbone: u16, peer_port: u16, dir: &str) -> String {
    format!(
        "[dns]\nservers = [\"127.0.0.1:{dns}\"]\ntimeout_ms = 1000\n\
         [server]\nhostname = \"localhost\"\nsubmission = \"127.0.0.1:{submission}\"\nbackbone = \"127.0.0.1:{backbone}\"\n\
         mail_dir = \"{dir}/mail\"\nidle_timeout_secs = 3\ndata_timeout_secs = 3\nmax_message_bytes = 1000000\n\
         min_free_disk_mb = 0\n\
         [queue]\nworkers = 2\nretry_base_secs = 1\nretry_max_secs = 2\n\
         [delivery]\nport = {peer_port}\ntimeout_secs = 10\n"
    )
}

pub(crate) fn network() -> Network {
    network_with(|_, config| config)
}

/// `network()` with each node's config passed through `tweak` ("a" or "b", the config) first.
pub(crate) fn network_with(tweak: impl Fn(&str, String) -> String) -> Network {
    let dns_port = free_port();
    let (a_sub, a_bb, b_sub, b_bb) = (free_port(), free_port(), free_port(), free_port());
    let mail = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a_config = tweak("a", node_config(dns_port, a_sub, a_bb, b_bb, &mail[0].path().display().to_string()));
    let b_config = tweak("b", node_config(dns_port, b_sub, b_bb, a_bb, &mail[1].path().display().to_string()));
    let a = Node::with_published_ca_and(&a_config);
    let b = Node::with_published_ca_and(&b_config);
    practice(&a, "a.test", "dr.smith");
    practice(&b, "b.test", "dr.jones");
    // Each trusts the other's CA: A to send to B, B to accept mail from A.
    a.ok(&["anchor", "add", &b.files.p("dev-ca.pem"), "--domain", "a.test", "--incoming", "--outgoing"]);
    b.ok(&["anchor", "add", &a.files.p("dev-ca.pem"), "--domain", "b.test", "--incoming", "--outgoing"]);
    // B publishes dr.jones's certificate and its MX; A's likewise.
    let cert_of = |node: &Node, owner: &str| {
        let path = node.files.p("published.der");
        node.ok(&["cert", "export", owner, "--der", "--force", "--out", &path]);
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap())
    };
    let dns = servers::knot_on(
        dns_port,
        &[
            ("b.test", published_zone("dr.jones", &cert_of(&b, "dr.jones@b.test"))),
            ("a.test", published_zone("dr.smith", &cert_of(&a, "dr.smith@a.test"))),
        ],
    );
    let daemons = vec![a.serve(a_sub), b.serve(b_bb)];
    Network {
        a,
        b,
        a_submission: a_sub,
        a_backbone: a_bb,
        b_submission: b_sub,
        b_backbone: b_bb,
        _dns: dns,
        daemons,
        _mail: mail,
    }
}

pub(crate) fn swaks(port: u16, args: &[&str]) -> Run {
    let mut all = vec!["--hide-all"];
    all.extend_from_slice(args);
    swaks_shown(port, &all)
}

/// swaks against 127.0.0.1:`port`, its dialogue on standard output.
pub(crate) fn swaks_shown(port: u16, args: &[&str]) -> Run {
    let port = port.to_string();
    let mut all = vec!["--server", "127.0.0.1", "--port", &port, "--timeout", "20"];
    all.extend_from_slice(args);
    run("swaks", &all, None, &[])
}

/// The zone body publishing `user`'s certificate (base64 DER) and an MX on 127.0.0.1.
pub(crate) fn published_zone(user: &str, cert_b64: &str) -> String {
    format!("{user} IN CERT PKIX 0 0 {cert_b64}\n@ IN MX 10 mx\nmx IN A 127.0.0.1\n")
}

/// swaks as dr.smith's EHR: STARTTLS, AUTH PLAIN with his password, then `args`.
pub(crate) fn as_dr_smith(port: u16, args: &[&str]) -> Run {
    with_password(port, PASSWORD, args)
}

/// swaks logging in as dr.smith after STARTTLS with `password` (his or not), then `args`.
pub(crate) fn with_password(port: u16, password: &str, args: &[&str]) -> Run {
    let mut all = vec!["--tls", "--auth", "PLAIN", "--auth-user", "dr.smith@a.test", "--auth-password", password];
    all.extend_from_slice(args);
    swaks(port, &all)
}

/// dr.smith submits `data` (from himself to `to`).
pub(crate) fn submit_to(port: u16, to: &str, data: &str) -> Run {
    as_dr_smith(port, &["--from", "dr.smith@a.test", "--to", to, "--data", data])
}

pub(crate) fn submit(n: &Network, data: &str) -> Run {
    submit_to(n.a_submission, "dr.jones@b.test", data)
}

/// Waits for `count` messages in the Maildir new/ of `user@domain` on `node`.
pub(crate) fn mailbox(node: &Node, domain: &str, user: &str, count: usize) -> Vec<String> {
    let config = std::fs::read_to_string(node.files.path("hisp.toml")).unwrap();
    let dir = config.lines().find_map(|l| l.strip_prefix("mail_dir = \"")).unwrap().trim_end_matches('"').to_string();
    let new = std::path::Path::new(&dir).join(domain).join(user).join("new");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let files: Vec<_> =
            std::fs::read_dir(&new).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        if files.len() >= count {
            return files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} message(s) expected in {}; queue: {}\nlog: {}",
            new.display(),
            node_queue(node),
            node.serve_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Waits for mail in `user@domain`'s Maildir on `node` that `wanted` picks; those messages.
pub(crate) fn wait_for_mail(node: &Node, domain: &str, user: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found: Vec<String> = mailbox(node, domain, user, 0).into_iter().filter(|m| wanted(m)).collect();
        if !found.is_empty() {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "no such mail for {user}@{domain}:\n{}", node.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Waits until the newest queued message's first recipient has `status`; the queue as JSON.
pub(crate) fn wait_status(node: &Node, status: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let queue: serde_json::Value = serde_json::from_str(&node_queue(node)).unwrap();
        if queue[0]["recipients"][0]["status"] == status {
            return queue;
        }
        assert!(std::time::Instant::now() < deadline, "waiting for {status}: {queue}\n{}", node.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits until the queued message with `message_id` has its first recipient in `status`; the entry.
pub(crate) fn wait_status_of(node: &Node, message_id: &str, status: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let queue: serde_json::Value = serde_json::from_str(&node_queue(node)).unwrap();
        let entry = queue.as_array().unwrap().iter().find(|m| m["message_id"] == message_id).cloned();
        if let Some(entry) = entry.filter(|m| m["recipients"][0]["status"] == status) {
            return entry;
        }
        assert!(std::time::Instant::now() < deadline, "waiting for {status}: {queue}\n{}", node.serve_log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub(crate) fn node_queue(node: &Node) -> String {
    node.run(&["--json", "queue", "list", "--all"]).text()
}

/// Node A alone (practice a.test, dr.smith), trusting `pki` for sending, with a DNS server on
/// `dns_port` publishing `peer`'s certificate and an MX on 127.0.0.1; `hisp serve` running.
pub(crate) struct Sender {
    pub node: Node,
    pub _dns: Server,
    pub _daemon: Daemon,
}

impl Sender {
    pub(crate) fn start(config: &str, pki: &pki::Pki, peer: &Identity, dns_port: u16, submission: u16) -> Sender {
        let node = Node::with_published_ca_and(config);
        practice(&node, "a.test", "dr.smith");
        node.files.ca("peer-ca", &pki.ca);
        node.ok(&["anchor", "add", &node.files.p("peer-ca.pem"), "--domain", "a.test", "--outgoing"]);
        let der = base64::engine::general_purpose::STANDARD.encode(peer.cert.to_der().unwrap());
        let domain = peer.address.domain().to_string();
        let dns = servers::knot_on(dns_port, &[(domain.as_str(), published_zone(peer.address.local(), &der))]);
        let daemon = node.serve(submission);
        Sender { node, _dns: dns, _daemon: daemon }
    }
}
