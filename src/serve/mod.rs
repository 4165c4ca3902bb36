//! `hisp serve`: the running node. The SMTP listeners commit what they accept to the queue; worker
//! threads take due recipients from it and process them (outbound: discover, seal, deliver to the
//! peer's MX; inbound: open, deliver into the mailbox), retrying with backoff, failing messages
//! past their maximum age, and quarantining a message whose processing panics.

pub(crate) mod answer;
pub(crate) mod ca_http;
pub(crate) mod gate;
pub(crate) mod inbound;
pub(crate) mod intake;
mod invitations;
pub(crate) mod maildir;
pub(crate) mod notices;
pub(crate) mod outbound;
mod schedule;
mod start;
pub(crate) mod stop_signal;
mod webhooks;
mod xdm_submission;
mod xdr_forward;

pub(crate) use start::start;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::clock::Clock;
use crate::config::Config;
use crate::dns::DnsConfig;
use crate::failure::{Code, Failure};
use crate::kek::Kek;
use crate::node::Shared;
use crate::smtp::sessions::Sessions;
use crate::store::queue::{self, AtFinish, FinishWrite, Job, Outcome, Queue};
use crate::store::Flow;
use crate::store::{NodeStore, StoreError};

/// One job being processed: the shared state, this worker's own connections, the time, and the
/// queue writes to commit with the job's outcome.
pub(crate) struct Work<'a> {
    pub shared: &'a Shared,
    pub store: &'a dyn NodeStore,
    pub queue: &'a dyn Queue,
    pub now: i64,
    pub at_finish: AtFinish,
}

/// Everything `hisp serve` needs that the CLI resolves (paths, secrets, resolver settings).
pub(crate) struct Setup {
    pub config: Config,
    pub db: PathBuf,
    pub kek: Kek,
    pub dns: DnsConfig,
    pub clock: Arc<dyn Clock>,
}

/// What was started, for the caller to report.
pub(crate) struct Running {
    pub submission: Option<std::net::SocketAddr>,
    pub backbone: Option<std::net::SocketAddr>,
    pub http: Option<std::net::SocketAddr>,
    pub api: Option<std::net::SocketAddr>,
    pub portal: Option<std::net::SocketAddr>,
    /// The XDR endpoint, when configured.
    pub xdr: Option<std::net::SocketAddr>,
    pub dns: Option<std::net::SocketAddr>,
    pub recovered: (usize, usize),
    /// Addresses an upgrade set aside (address, reason): they receive no mail.
    pub set_aside: Vec<(String, String)>,
    /// What the workers share (for `stop`); set once they run.
    shared: Option<Arc<Shared>>,
    /// The open SMTP sessions of both listeners (for `stop`).
    sessions: Arc<Sessions>,
    /// The connections of the REST API and the portal (for `stop`), of those that run.
    web_stoppers: Vec<crate::http::Stopper>,
    /// The SHA-256 fingerprint of the node's self-signed certificate, when the API serves it.
    pub api_self_signed: Option<String>,
}

/// What an orderly stop did.
pub(crate) struct Stopped {
    /// Recipients still being processed at the end of the grace time, put back in the queue.
    pub released: usize,
    /// SMTP sessions still receiving a message at the end of the grace time (cut off).
    pub sessions_cut: usize,
    /// REST API connections with a request still under way then (cut off).
    pub api_cut: usize,
}

impl Running {
    /// Stops the node in order: new connections are turned away, SMTP sessions waiting for a
    /// command are closed with 421 and those receiving a message close once it is answered, API
    /// connections answer the request under way and close (idle ones at once), the workers finish
    /// the job in hand and claim no other, all for up to `grace`; recipients still being
    /// processed then go back to the queue without counting a crash (the process is about to end,
    /// and with it their processing).
    pub(crate) fn stop(&self, grace: Duration) -> Result<Stopped, String> {
        let Some(shared) = &self.shared else { return Ok(Stopped { released: 0, sessions_cut: 0, api_cut: 0 }) };
        // The flag first: a session that joins after the wind-down sees it (see `Sessions::join`).
        shared.stopping.store(true, Ordering::SeqCst);
        self.sessions.wind_down();
        for web in &self.web_stoppers {
            web.stop();
        }
        shared.wakeup.wake(crate::node::WAKE_ALL_FROM);
        let api_open = || self.web_stoppers.iter().map(|web| web.open()).sum::<usize>();
        let deadline = std::time::Instant::now() + grace;
        let busy = || shared.workers_running.load(Ordering::SeqCst) > 0 || self.sessions.open() > 0 || api_open() > 0;
        while busy() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Idle sessions to peers end with QUIT, not with the process.
        shared.sessions.close_all();
        let released = shared.queue.release_in_flight(shared.clock.unix_now()).map_err(|e| e.to_string())?;
        Ok(Stopped { released, sessions_cut: self.sessions.open(), api_cut: api_open() })
    }
}

/// A worker: its own store connection, the shared queue; claims one due recipient at a time,
/// the next one in the transaction that records how the last one ended.
fn worker(shared: &Shared) {
    let queue: &dyn Queue = &*shared.queue;
    let store = loop {
        match crate::store::open_for_workers(&shared.db, "worker")
            .and_then(|s| s.attach_fields(shared.kek.clone()).map(|()| s))
        {
            Ok(s) => break s,
            Err(e) => tracing::error!("worker: cannot open the store: {e}"),
        }
        // A stop does not wait for a worker that never had a job.
        let seen = shared.wakeup.generation();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        shared.wakeup.wait_since(seen, Duration::from_secs(5));
    };
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None if shared.stopping.load(Ordering::SeqCst) => return,
            None => {
                let seen = shared.wakeup.generation();
                match queue.claim(shared.clock.unix_now(), 1) {
                    Ok(jobs) if !jobs.is_empty() => jobs.into_iter().next().expect("one job"),
                    Ok(_) => {
                        // Nothing due: sleep until new mail is committed, or at most a second (retries).
                        shared.wakeup.wait_since(seen, Duration::from_secs(1));
                        continue;
                    }
                    Err(e) => {
                        tracing::error!("worker: cannot claim from the queue: {e}");
                        shared.wakeup.wait_since(seen, Duration::from_secs(1));
                        continue;
                    }
                }
            }
        };
        next = run_job(shared, &*store, queue, &job);
    }
}

/// Processes one claimed recipient and records its outcome; returns the next due recipient,
/// claimed in the same transaction.
fn run_job(shared: &Shared, store: &dyn NodeStore, queue: &dyn Queue, job: &Job) -> Option<Job> {
    run_job_with(shared, store, queue, job, process)
}

/// `run_job` with the processing given (tests give one that fails in ways real mail cannot be
/// made to).
fn run_job_with(
    shared: &Shared,
    store: &dyn NodeStore,
    queue: &dyn Queue,
    job: &Job,
    process: impl Fn(&Work, &Job) -> Outcome,
) -> Option<Job> {
    let now = shared.clock.unix_now();
    let _span = tracing::info_span!("job", queue = job.message.id, recipient = %job.recipient, attempt = job.attempts)
        .entered();
    // The configuration kept from earlier messages, unless it changed since the job was claimed.
    store.follow_config_at(job.config_generation);
    let mut work = Work { shared, store, queue, now, at_finish: AtFinish::default() };
    let outcome = match catch_unwind(AssertUnwindSafe(|| process(&work, job))) {
        Ok(outcome) => {
            let outcome = schedule::schedule(shared, job, outcome, now);
            match after(&work, job, &outcome) {
                Ok(()) => outcome,
                // Processed again later, as a recipient whose outcome could not be recorded is
                // (`release`): never failed here, which would skip the notices `after` sends.
                Err(failure) => {
                    work.at_finish = AtFinish::default();
                    Outcome::Deferred { failure, retry_at: schedule::retry_at(shared, job, now) }
                }
            }
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let reason = format!("processing panicked: {why}");
            until_recorded(&format!("quarantine message {}", job.message.id), || {
                queue.quarantine(job.message.id, &reason, now)
            });
            return None;
        }
    };
    // A message of ours that left is tracked as sent in the outcome's own transaction.
    let at_finish = std::mem::take(&mut work.at_finish);
    let left = !at_finish.holds(&job.recipient);
    if let (Flow::Outbound, Outcome::Sent(note) | Outcome::Delivered(note), true) = (job.message.flow, &outcome, left) {
        at_finish.add(FinishWrite::Sent {
            sender: job.message.mail_from.clone(),
            message_id: job.message.message_id.clone(),
            recipient: job.recipient.clone(),
            note: note.clone(),
        });
    }
    // A stopping node finishes the job in hand and takes no other.
    let claim = usize::from(!shared.stopping.load(Ordering::SeqCst));
    match queue.finish_and_claim(job.recipient_id, &outcome, shared.clock.unix_now(), at_finish, claim) {
        Ok((jobs, queued)) => {
            if shared.config.server.log_outcomes {
                log_outcome(job, &outcome, now);
            }
            // This worker takes the next job itself; idle ones are woken for the rest.
            let next = jobs.into_iter().next();
            let others = queued.saturating_sub(usize::from(next.is_some()));
            if others > 0 {
                shared.wakeup.wake(others);
            }
            next
        }
        Err(e) => {
            tracing::error!("worker: cannot record the outcome of {} ({e}); it will be processed again", job.recipient);
            release(shared, queue, job, &e);
            None
        }
    }
}

/// One line per processed recipient, as operators expect of a mail server: the queue id,
/// Message-ID, addresses and what happened (never a subject or content: they may be PHI). One
/// event (target `hisp::outcome`), with the outcome and direction as fields for a log shipper.
fn log_outcome(job: &Job, outcome: &Outcome, now: i64) {
    let (kind, status, note) = match outcome {
        Outcome::Sent(note) => ("sent", "sent".to_string(), note.clone()),
        Outcome::Delivered(note) => ("delivered", "delivered".to_string(), note.clone()),
        Outcome::Deferred { failure, retry_at } => {
            ("deferred", format!("deferred until {}", crate::clock::iso8601(*retry_at)), failure.to_string())
        }
        Outcome::Failed(failure) => ("failed", "failed".to_string(), failure.to_string()),
    };
    let m = &job.message;
    tracing::info!(
        target: "hisp::outcome",
        flow = m.flow.as_str(),
        outcome = kind,
        "queue {} {} {}: <{}> -> <{}>: {status}, attempt {}, {} s after arrival: {}",
        m.id,
        m.flow.as_str(),
        if m.message_id.is_empty() { "(no Message-ID)" } else { &m.message_id },
        m.mail_from,
        job.recipient,
        job.attempts,
        now - m.received_at,
        crate::printable::printable(&note, 2000)
    );
}

/// A recipient whose outcome (with what its processing left to write) could not be committed is
/// still marked in flight, which no worker claims: it is released as deferred, to be processed
/// again after the usual backoff (which is safe: see `Queue::for_workers`).
fn release(shared: &Shared, queue: &dyn Queue, job: &Job, error: &StoreError) {
    until_recorded(&format!("release {}", job.recipient), || {
        let now = shared.clock.unix_now();
        let failure = error.failure().with_detail(format!("its outcome could not be recorded: {error}"));
        queue.finish(
            job.recipient_id,
            &Outcome::Deferred { failure, retry_at: schedule::retry_at(shared, job, now) },
            now,
        )
    });
}

/// Runs `write` until the queue takes it, at most a minute apart: until then its recipient stays
/// in flight, and no worker claims it before a restart.
fn until_recorded(what: &str, mut write: impl FnMut() -> queue::Result<()>) {
    let mut pause = Duration::from_secs(1);
    while let Err(e) = write() {
        tracing::error!("worker: cannot {what} ({e}); trying again in {pause:?}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

/// What a failure means for notifications: an EHR's message that failed for good is reported to
/// its sender (a DSN, once); a message opened here that will not be delivered after all gets a
/// failed MDN. (One that left is tracked as sent with its outcome, in `worker`.) Err: what it
/// needed could not be read; the recipient is processed again.
fn after(work: &Work, job: &Job, outcome: &Outcome) -> Result<(), Failure> {
    match (job.message.flow, outcome) {
        (Flow::Outbound, Outcome::Failed(failure)) => notify_sender(work, job, failure),
        (Flow::Inbound, Outcome::Failed(failure)) => {
            answer::failed(work, job.message.id, &job.recipient, failure)?;
            work.at_finish.add(FinishWrite::ForgetRefusedContent { queue_message: job.message.id });
        }
        _ => {}
    }
    Ok(())
}

/// Tells the local sender of an outbound message that a recipient failed for good, unless the
/// message was itself a notification (never answered with one).
fn notify_sender(work: &Work, job: &Job, failure: &Failure) {
    let Ok(sender) = crate::address::DirectAddress::parse(&job.message.mail_from) else { return };
    let original = work.shared.kek.open_message(&job.message.sealed_data).unwrap_or_default();
    let headers = crate::smime::mime::Entity::parse(&original).headers;
    if crate::notify::request::report(&headers).is_some() {
        return;
    }
    let undelivered = notices::Undelivered {
        sender: &sender,
        recipient: &job.recipient,
        message_id: &job.message.message_id,
        submitted_at: job.message.received_at,
        original: &original,
        failure,
        tracked_as: crate::store::TrackStatus::Failed,
    };
    notices::tell_sender(work.shared, work.queue, &undelivered, work.now);
}

/// Removes finished messages `[queue] keep_finished_secs` after their last change, looking every
/// tenth of that time (between 1 s and 5 min), a thousand per transaction so that the workers
/// are not held up.
fn purge_finished(shared: &Shared) {
    const BATCH: usize = 1000;
    let keep = shared.config.queue.keep_finished_secs;
    let interval = Duration::from_secs((keep / 10).clamp(1, 300));
    loop {
        let before = shared.clock.unix_now().saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
        loop {
            match shared.queue.purge_finished(before, BATCH) {
                Ok(removed) if removed == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!("queue: cannot remove finished messages: {e}");
                    break;
                }
            }
        }
        std::thread::sleep(interval);
    }
}

/// The connections one listener serves at once: `max_connections`, `max_connections_per_ip` each.
fn listener_admission(config: &Config) -> Arc<Admission> {
    Admission::new(config.server.max_connections, config.server.max_connections_per_ip)
}

/// Refreshes every trust bundle at start and then every `trust.bundle_refresh_secs`.
fn refresh_bundles(shared: &Shared) {
    let interval = Duration::from_secs(shared.config.trust.bundle_refresh_secs);
    // A bundle that never gave anchors (a new practice's, fetched while its server was down) is
    // tried every minute rather than waiting for the next full refresh.
    let tick = interval.min(Duration::from_secs(60));
    let mut last_full: Option<std::time::Instant> = None;
    loop {
        let full = last_full.is_none_or(|at| at.elapsed() >= interval);
        match crate::store::open(&shared.db, "bundles") {
            Ok(store) => {
                refresh_each(&*store, &crate::fetch::HttpFetcher::new(&shared.resolver), full);
            }
            Err(e) => tracing::error!("bundles: cannot open the store: {e}"),
        }
        if full {
            last_full = Some(std::time::Instant::now());
        }
        std::thread::sleep(tick);
    }
}

/// One refresh of every bundle (`all`), or of those that never gave anchors; how many failed.
fn refresh_each(store: &dyn NodeStore, fetch: &dyn crate::fetch::Fetcher, all: bool) -> usize {
    let mut failed = 0;
    for b in store.bundles().unwrap_or_default().into_iter().filter(|b| all || b.last_good_at.is_none()) {
        // Nothing a bundle's server sends may end the refreshing for good.
        let refreshed = catch_unwind(AssertUnwindSafe(|| crate::bundle::refresh(store, &b, fetch)));
        let why = match refreshed {
            Ok(Ok(Ok(_))) => continue,
            Ok(Ok(Err(e))) => format!("refresh failed, last good anchors kept: {e}"),
            Ok(Err(e)) => format!("cannot record the refresh: {e}"),
            Err(_) => "its refresh panicked; last good anchors kept".to_string(),
        };
        tracing::warn!(bundle = %b.name, "bundle {}: {why}", b.name);
        failed += 1;
    }
    failed
}

/// Decrypts the queued copy and hands it to the outbound or inbound path.
fn process(work: &Work, job: &Job) -> Outcome {
    let data = match work.shared.kek.open_message(&job.message.sealed_data) {
        Ok(d) => d,
        Err(e) => return Failure::permanent(Code::SYSTEM, format!("the queued copy cannot be decrypted: {e}")).into(),
    };
    match job.message.flow {
        Flow::Outbound => outbound::process(work, job, data),
        Flow::Inbound => inbound::process(work, job, &data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::cache::CachingResolver;
    use crate::dns::DnsClient;
    use crate::store::queue::NewMessage;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    fn shared(dir: &std::path::Path) -> Shared {
        let db = dir.join("hisp.db");
        crate::store::create(&db, "test").unwrap();
        let queue = queue::open(&db).unwrap();
        let mut config = Config::default();
        config.server.mail_dir = dir.join("mail");
        Shared {
            config,
            db,
            kek: Arc::new(Kek::derive("test secret", b"0123456789abcdef").unwrap()),
            resolver: CachingResolver::new(DnsClient::new(DnsConfig::default())),
            clock: Arc::new(crate::clock::SystemClock),
            wakeup: Arc::default(),
            lookup_timeout: Duration::from_secs(1),
            connectors: Mutex::default(),
            sessions: crate::smtp::client::SessionPool::new(Duration::from_secs(5)),
            unsealed: Default::default(),
            queue: queue.for_workers(),
            stopping: Arc::default(),
            workers_running: AtomicUsize::new(0),
        }
    }

    #[test]
    fn a_message_whose_processing_panics_is_quarantined_with_its_reason_and_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        let now = shared.clock.unix_now();
        let message = NewMessage {
            flow: Flow::Outbound,
            mail_from: "a@a.test".into(),
            authenticated_as: Some("a@a.test".into()),
            message_id: "<panics@a.test>".into(),
            recipients: vec!["b@b.test".into(), "c@c.test".into()],
            size: 3,
            sealed_data: shared.kek.seal_message(b"xyz").unwrap(),
            tracked: None,
        };
        let id = shared.queue.enqueue(&[message], now).unwrap()[0];
        let job = shared.queue.claim(now, 1).unwrap().remove(0);
        let store = crate::store::open_for_workers(&shared.db, "worker").unwrap();

        let next = run_job_with(&shared, &*store, &*shared.queue, &job, |_, _| panic!("boom"));
        assert!(next.is_none());
        let entry = shared.queue.show(id).unwrap();
        assert_eq!(entry.quarantined.as_deref(), Some("processing panicked: boom"));
        // Neither recipient is in flight, and neither is tried again, however long one waits.
        assert!(entry.recipients.iter().all(|r| !r.in_flight), "{entry:?}");
        assert!(shared.queue.claim(now + 365 * 86_400, 10).unwrap().is_empty());
    }

    #[test]
    fn a_bundle_refresh_that_panics_is_reported_and_the_next_bundle_still_refreshes() {
        struct Panicking;
        impl crate::fetch::Fetcher for Panicking {
            fn get(&self, url: &str) -> Result<Vec<u8>, crate::fetch::FetchError> {
                if url.contains("bad") {
                    panic!("a parser bug");
                }
                Err(format!("{url}: not found (HTTP 404)").into())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hisp.db");
        let store = crate::store::create(&db, "test").unwrap();
        let domain = crate::address::Domain::parse("a.test").unwrap();
        store.add_domain(&domain, "A").unwrap();
        for (name, source) in [("bad", "http://bad.test/b.p7b"), ("good", "http://good.test/b.p7b")] {
            let record = crate::store::BundleRecord::new(name.into(), domain.clone(), source.into(), None, true, true);
            store.add_bundle(&record).unwrap();
        }
        assert_eq!(refresh_each(&*store, &Panicking, true), 2, "both failed, neither ended the loop");
        let good = store.bundles().unwrap().into_iter().find(|b| b.name == "good").unwrap();
        assert!(good.last_error.is_some_and(|e| e.contains("404")), "the bundle after the panic was refreshed");
    }
}
