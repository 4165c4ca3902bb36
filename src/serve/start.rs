//! Starting the node, in the order its parts depend on each other: the database (migrations, PHI
//! sealing, queue recovery), the queue committer, the publishers (CA over HTTP, DNS), the SMTP
//! listeners, what the workers share, the REST API, then the background threads and workers.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::SslAcceptor;

use super::{ca_http, gate, intake, listener_admission, notices, purge_finished, refresh_bundles, worker};
use super::{Running, Setup};
use crate::admission::Admission;
use crate::clock::Clock;
use crate::config::Config;
use crate::discovery::cache::CachingResolver;
use crate::dns::DnsClient;
use crate::free_space::FreeSpace;
use crate::kek::Kek;
use crate::node::{Shared, Wakeup};
use crate::smtp::server::{self, Listener};
use crate::smtp::session::{Role, SessionConfig};
use crate::smtp::sessions::Sessions;
use crate::store::queue::Queue;

/// Starts the node: recovers the queue, binds the listeners, starts the committer and workers.
/// The threads run until the process ends; `Running::stop` winds the workers down first.
pub(crate) fn start(setup: Setup) -> Result<Running, String> {
    let Setup { config, db, kek, dns, clock } = setup;
    let kek = Arc::new(kek);
    let ready = open_database(&db, &kek, &config, clock.as_ref())?;
    let tls = Arc::new(
        match (&config.server.tls_cert_file, &config.server.tls_key_file, &ready.self_signed) {
            (Some(cert), Some(key), _) => crate::smtp::tls::acceptor_from_files(cert, key),
            (.., Some((cert, key))) => crate::smtp::tls::acceptor(std::slice::from_ref(cert), key),
            _ => Err(crate::pki::PkiError::NoCertificate("server.tls_cert_file".into())),
        }
        .map_err(|e| format!("TLS certificate: {e}"))?,
    );
    let xdr_tls = match config.xdr.listen.is_empty() {
        true => None,
        false => Some(xdr_tls(&config, ready.self_signed.as_ref())?),
    };
    // Said at start: an EHR's client must be given this certificate to trust it.
    let self_signed_web = ready.self_signed.as_ref().map(|(cert, _)| crate::pki::fingerprint(cert));
    let wakeup = Arc::new(Wakeup::default());
    // One queue connection for intake and every worker (see `Queue`).
    let workers_queue = ready.queue.for_workers();
    let intake =
        intake::Intake::start(ready.queue, config.server.hostname.clone(), kek.clone(), clock.clone(), wakeup.clone())
            .map_err(io("queue committer"))?;
    let committer: Arc<dyn server::Committer> = Arc::new(intake);
    let mut running = Running {
        submission: None,
        backbone: None,
        http: None,
        api: None,
        portal: None,
        xdr: None,
        dns: None,
        recovered: ready.recovered,
        set_aside: ready.set_aside,
        shared: None,
        sessions: Arc::new(Sessions::default()),
        web_stoppers: Vec::new(),
        api_self_signed: None,
    };
    start_publishers(&config, &db, &kek, &clock, &mut running)?;
    let stopping = Arc::new(AtomicBool::new(false));
    start_smtp(&config, &db, &tls, &committer, &stopping, &mut running)?;
    let api_tls = match (&config.http.tls_cert_file, &config.http.tls_key_file) {
        (Some(cert), Some(key)) => {
            Arc::new(crate::smtp::tls::acceptor_from_files(cert, key).map_err(|e| format!("API TLS certificate: {e}"))?)
        }
        _ => {
            running.api_self_signed = self_signed_web;
            tls
        }
    };
    let workers = config.queue.workers;
    let channels = {
        let dns = dns.clone();
        let resolver = move || -> Box<dyn crate::dns::Resolver> { Box::new(DnsClient::new(dns.clone())) };
        crate::network::channels::from_config(&config, &resolver, clock.clone())
            .map_err(|e| format!("notification channels: {e}"))?
    };
    let sessions = crate::smtp::client::SessionPool::new(Duration::from_secs(config.delivery.session_idle_secs));
    let shared = Arc::new(Shared {
        lookup_timeout: Duration::from_millis(config.dns.timeout_ms.max(1000)),
        config,
        db,
        kek,
        resolver: CachingResolver::new(DnsClient::new(dns.clone())),
        clock,
        wakeup,
        connectors: Mutex::new(std::collections::HashMap::new()),
        sessions,
        unsealed: Default::default(),
        queue: workers_queue,
        stopping,
        workers_running: AtomicUsize::new(workers),
    });
    if !shared.config.http.listen.is_empty() {
        let listen = shared.config.http.listen.clone();
        let admission = listener_admission(&shared.config);
        let window = Duration::from_secs(15 * 60);
        let token_failures = crate::throttle::Throttle::new(20, window, window);
        let code_failures = crate::throttle::Throttle::new(10, window, window);
        let api = crate::http::Api {
            shared: shared.clone(),
            committer: committer.clone(),
            token_failures,
            code_failures,
            dns: dns.clone(),
        };
        let (bound, stopper) =
            crate::http::start(&listen, api_tls.clone(), api, admission).map_err(io(&format!("API on {listen}")))?;
        running.api = Some(bound);
        running.web_stoppers.push(stopper);
    }
    if !shared.config.portal.listen.is_empty() {
        let config = &shared.config;
        let portal_tls = match (&config.portal.tls_cert_file, &config.portal.tls_key_file) {
            (Some(cert), Some(key)) => Arc::new(
                crate::smtp::tls::acceptor_from_files(cert, key).map_err(|e| format!("portal TLS certificate: {e}"))?,
            ),
            _ => api_tls.clone(),
        };
        let mailer = crate::network::password_mail::mailer(config, Box::new(DnsClient::new(dns.clone())))
            .map_err(|e| format!("notify.email: {e}"))?;
        let texter = crate::network::channels::texter(config, Box::new(DnsClient::new(dns.clone())))
            .map_err(|e| format!("notify.gateway: {e}"))?
            .map(|t| Arc::new(t) as Arc<dyn crate::network::channels::Texter>);
        let portal = crate::http::portal::Portal::new(shared.clone(), committer.clone(), mailer, texter)?;
        let listen = config.portal.listen.clone();
        let (bound, stopper) = crate::http::portal::start(&listen, portal_tls, portal, listener_admission(config))
            .map_err(io(&format!("portal on {listen}")))?;
        running.portal = Some(bound);
        running.web_stoppers.push(stopper);
    }
    if let Some(tls) = xdr_tls {
        let window = Duration::from_secs(15 * 60);
        let api = crate::http::Api {
            shared: shared.clone(),
            committer: committer.clone(),
            token_failures: crate::throttle::Throttle::new(20, window, window),
            code_failures: crate::throttle::Throttle::new(10, window, window),
            dns: dns.clone(),
        };
        let listen = shared.config.xdr.listen.clone();
        let (bound, stopper) = crate::http::xdr::start(&listen, tls, api, listener_admission(&shared.config))
            .map_err(io(&format!("XDR on {listen}")))?;
        running.xdr = Some(bound);
        running.web_stoppers.push(stopper);
    }
    start_threads(&shared, workers, channels)?;
    running.shared = Some(shared);
    Ok(running)
}

/// What the database holds at start, once ready for the node.
struct Ready {
    queue: Box<dyn Queue>,
    recovered: (usize, usize),
    set_aside: Vec<(String, String)>,
    /// The node's own self-signed TLS certificate and key, when [server] names none.
    self_signed: Option<(openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>)>,
}

/// Migrations run here, once, before any other connection; then what was written in the clear
/// before PHI fields were sealed is sealed, and the queue recovers from the last run.
fn open_database(db: &Path, kek: &Arc<Kek>, config: &Config, clock: &dyn Clock) -> Result<Ready, String> {
    let store = crate::store::open(db, "serve").map_err(|e| e.to_string())?;
    store.attach_fields(kek.clone()).map_err(|e| e.to_string())?;
    let sealed = store.seal_plaintext().map_err(|e| format!("sealing the fields written in the clear: {e}"))?;
    if sealed > 0 {
        tracing::info!(sealed, "sealed {sealed} field(s) written in the clear by an earlier version");
    }
    let set_aside = store.set_aside_addresses().map_err(|e| e.to_string())?;
    let self_signed = if config.server.tls_cert_file.is_some() && config.server.tls_key_file.is_some() {
        None
    } else {
        let (cert, key, made) =
            crate::identities::self_signed_tls(&*store, kek, &config.server.hostname, clock.unix_now())
                .map_err(|e| format!("the node's TLS certificate: {e}"))?;
        if made {
            tracing::debug!("made the node's self-signed TLS certificate for {}", config.server.hostname);
        }
        Some((cert, key))
    };
    drop(store);
    let queue = crate::store::queue::open(db).map_err(|e| e.to_string())?;
    queue.attach_fields(kek.clone()).map_err(|e| e.to_string())?;
    let recovered = queue.recover(config.queue.max_crashes, clock.unix_now()).map_err(|e| e.to_string())?;
    Ok(Ready { queue, recovered, set_aside, self_signed })
}

/// The development CA's certificate and CRL over HTTP, and the DNS server publishing CERT and
/// MX records, when configured.
fn start_publishers(
    config: &Config,
    db: &Path,
    kek: &Arc<Kek>,
    clock: &Arc<dyn Clock>,
    running: &mut Running,
) -> Result<(), String> {
    if !config.server.http.is_empty() {
        let admission = listener_admission(config);
        let bound = ca_http::start(&config.server.http, db.to_path_buf(), kek.clone(), clock.clone(), admission)
            .map_err(io(&format!("listen on {}", config.server.http)))?;
        running.http = Some(bound);
    }
    if !config.dns_server.listen.is_empty() {
        let listen = config.dns_server.listen.parse().map_err(|_| "dns_server.listen: not IP:PORT".to_string())?;
        let publishing = crate::dns_server::Publishing {
            mx_host: config.dns_server.mx_host.clone().unwrap_or_else(|| config.server.hostname.clone()),
            mx_address: config.dns_server.mx_address,
            ttl: config.dns_server.ttl,
        };
        let bound =
            crate::dns_server::start(listen, db.to_path_buf(), publishing, clock.clone(), listener_admission(config))
                .map_err(io(&format!("DNS on {listen}")))?;
        running.dns = Some(bound);
    }
    Ok(())
}

/// The submission (EHRs) and backbone (peer HISPs) listeners that are configured, each on a
/// thread of its own.
fn start_smtp(
    config: &Config,
    db: &Path,
    tls: &Arc<SslAcceptor>,
    committer: &Arc<dyn server::Committer>,
    stopping: &Arc<AtomicBool>,
    running: &mut Running,
) -> Result<(), String> {
    let logins = crate::login_cache::LoginCache::new(Duration::from_secs(config.server.login_cache_secs))
        .map_err(|e| format!("login cache: {e}"))?;
    let gates: Arc<dyn server::GateFactory> = Arc::new(gate::StoreGates::new(db.to_path_buf(), logins));
    let free_space = Arc::new(FreeSpace::new(
        vec![db.to_path_buf(), config.server.mail_dir.clone()],
        config.server.min_free_disk_mb.saturating_mul(1024 * 1024),
    ));
    // Large messages being received go to unnamed files next to the database (`smtp::spool`).
    let spool_dir: Arc<Path> =
        Arc::from(db.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new(".")));
    for (role, listen) in [(Role::Submission, &config.server.submission), (Role::Backbone, &config.server.backbone)] {
        if listen.is_empty() {
            continue;
        }
        let socket = TcpListener::bind(listen).map_err(io(&format!("listen on {listen}")))?;
        let bound = socket.local_addr().map_err(io("listen"))?;
        match role {
            Role::Submission => running.submission = Some(bound),
            Role::Backbone => running.backbone = Some(bound),
        }
        let listener = Arc::new(Listener {
            session: SessionConfig {
                role,
                hostname: config.server.hostname.clone(),
                max_message_bytes: config.server.max_message_bytes,
                max_recipients: config.server.max_recipients,
                max_auth_failures: 3,
                tls_available: true,
                require_tls: role == Role::Submission || config.server.backbone_require_tls,
                spool_dir: Some(spool_dir.clone()),
            },
            tls: Some(tls.clone()),
            idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
            data_timeout: Duration::from_secs(config.server.data_timeout_secs),
            // Messages being received: one address may have us hold four of the largest size at
            // once, all addresses together sixteen.
            admission: Admission::holding(
                config.server.max_connections,
                config.server.max_connections_per_ip,
                config.server.max_message_bytes.saturating_mul(4),
                config.server.max_message_bytes.saturating_mul(16),
            ),
            // Peers can wait and retry; EHRs' submissions go on as long as they can.
            free_space: (role == Role::Backbone).then(|| free_space.clone()),
            gates: gates.clone(),
            committer: committer.clone(),
            stopping: stopping.clone(),
            sessions: running.sessions.clone(),
        });
        spawn(&format!("smtp-{role:?}").to_lowercase(), "listener thread", move || server::run(socket, listener))?;
    }
    Ok(())
}

/// The threads that run beside the listeners, and the workers.
fn start_threads(
    shared: &Arc<Shared>,
    workers: usize,
    channels: crate::network::channels::Channels,
) -> Result<(), String> {
    // The TLS client context for peers without settings of their own, made now rather than by
    // the first delivery (building one loads the system's CA store: tens of milliseconds).
    let warm = shared.clone();
    spawn("tls-warm-up", "TLS warm-up thread", move || {
        let _ = warm.connector(warm.config.delivery.verify_tls, None);
    })?;
    let bundles = shared.clone();
    spawn("bundles", "bundle refresh thread", move || refresh_bundles(&bundles))?;
    let purge = shared.clone();
    spawn("queue-purge", "queue purge thread", move || purge_finished(&purge))?;
    let timeouts = shared.clone();
    spawn("notify-timeouts", "notification timeout thread", move || notices::watch_timeouts(&timeouts))?;
    let pool = shared.clone();
    spawn("smtp-pool", "idle SMTP session thread", move || close_idle_sessions(&pool))?;
    let webhooks = shared.clone();
    spawn("webhooks", "webhook thread", move || super::webhooks::run(&webhooks))?;
    let invitations = shared.clone();
    spawn("invitations", "invitations thread", move || super::invitations::run(&invitations, &channels))?;
    for n in 0..workers {
        let shared = shared.clone();
        spawn(&format!("worker-{n}"), "worker thread", move || {
            worker(&shared);
            shared.workers_running.fetch_sub(1, Ordering::SeqCst);
        })?;
    }
    Ok(())
}

/// Closes, with QUIT, the sessions to peers left idle too long: every second until the stop,
/// which closes the rest.
fn close_idle_sessions(shared: &Shared) {
    while !shared.stopping.load(Ordering::SeqCst) {
        let closed = shared.sessions.close_idle();
        if closed > 0 {
            tracing::debug!("closed {closed} idle SMTP sessions to peers");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The XDR endpoint's TLS: its own certificate, else the API's, else the node's (files or the
/// self-signed one); every client must present a certificate.
fn xdr_tls(
    config: &Config,
    self_signed: Option<&(openssl::x509::X509, openssl::pkey::PKey<openssl::pkey::Private>)>,
) -> Result<Arc<SslAcceptor>, String> {
    let files = [
        (&config.xdr.tls_cert_file, &config.xdr.tls_key_file),
        (&config.http.tls_cert_file, &config.http.tls_key_file),
        (&config.server.tls_cert_file, &config.server.tls_key_file),
    ];
    let fail = |e: crate::pki::PkiError| format!("XDR TLS certificate: {e}");
    let (chain, key) = match files.iter().find_map(|(cert, key)| Some(((*cert).as_ref()?, (*key).as_ref()?))) {
        Some((cert, key)) => crate::smtp::tls::chain_and_key(cert, key).map_err(fail)?,
        None => {
            let (cert, key) = self_signed.ok_or("XDR TLS certificate: none configured, and no self-signed one")?;
            (vec![cert.clone()], key.clone())
        }
    };
    Ok(Arc::new(crate::smtp::tls::acceptor_with_client_certificates(&chain, &key).map_err(fail)?))
}

/// Starts a named thread; `what` names it in the error when it cannot be.
fn spawn(name: &str, what: &str, run: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new().name(name.to_string()).spawn(run).map(drop).map_err(io(what))
}

/// An I/O error while starting `what`, as the start-up error says it.
fn io(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}
