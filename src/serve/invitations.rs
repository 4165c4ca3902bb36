//! The invitations' clockwork in the running node: every few seconds, the reminders and
//! expiries that fell due, then the notices waiting to be sent (first tries and retries).

use std::time::Duration;

use super::Shared;
use crate::address::DirectAddress;
use crate::failure::Failure;
use crate::network::invitations::{Invitations, Scheduled};
use crate::network::notices::{self, Notice, Notifier};
use crate::store::queue::tracking::Key;
use crate::store::{NodeStore, NoticeKind};

/// How often the schedule and the notices are looked at: the wait between an invitation sent
/// with the CLI or the API and its notice leaving.
const INTERVAL: Duration = Duration::from_secs(2);

/// Notices to the sender of an invitation go into their mailbox here; the rest through the
/// configured channels.
struct ToSenders<'a> {
    shared: &'a Shared,
    channels: &'a dyn Notifier,
}

impl Notifier for ToSenders<'_> {
    fn send(&self, notice: &Notice) -> Result<String, Failure> {
        if notice.kind != NoticeKind::SenderLocked {
            return self.channels.send(notice);
        }
        let Ok(address) = DirectAddress::parse(notice.inviter) else {
            // Sent from the CLI or by an API token: the invitation's state and the audit log say it.
            return Ok(format!("no mailbox for {}: shown on the invitation", notice.inviter));
        };
        let config = &self.shared.config.server;
        let from = format!("postmaster@{}", config.hostname);
        let now = self.shared.clock.unix_now();
        let message = crate::network::compose::to_sender(notice, &from, &address.to_string(), &config.hostname, now)?;
        let name = format!("{}.{}", notice.reference, config.hostname);
        super::maildir::deliver(&config.mail_dir, &address, &name, &message, true)
            .map_err(|e| Failure::local(format!("the mailbox of {address}: {e}")))?;
        Ok(format!("the mailbox of {address}"))
    }
}

/// Ended portal sessions are deleted every this many rounds (a minute).
const SESSION_PURGE_ROUNDS: u64 = 30;

/// Deletes the portal's sessions that ended (idle too long, or too old); each is refused when
/// used anyway, this only keeps the table small.
fn purge_sessions(shared: &Shared, store: &dyn NodeStore, now: i64) {
    let portal = &shared.config.portal;
    let idle_before = now - portal.idle_timeout_secs as i64;
    let started_before = now - portal.session_max_secs as i64;
    match store.purge_sessions(idle_before, started_before) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(ended = n, "portal: ended sessions deleted"),
        Err(e) => tracing::error!("portal: cannot delete ended sessions: {e}"),
    }
}

pub(super) fn run(shared: &Shared, channels: &dyn Notifier) {
    let channels = ToSenders { shared, channels };
    let store = loop {
        match open(shared) {
            Ok(store) => break store,
            Err(e) => tracing::error!("invitations: cannot open the store: {e}"),
        }
        std::thread::sleep(INTERVAL * 15);
    };
    let accept_url = shared.config.accept_url();
    let retry = notices::Retry::of(&shared.config.invitations);
    let mut rounds: u64 = 0;
    loop {
        let now = shared.clock.unix_now();
        rounds += 1;
        if rounds % SESSION_PURGE_ROUNDS == 1 {
            purge_sessions(shared, &*store, now);
        }
        let invitations = Invitations { store: &*store, config: &shared.config.invitations, now };
        match invitations.run_schedule(500) {
            Ok(done) if done != Scheduled::default() => {
                tracing::info!(reminded = done.reminded, expired = done.expired, "invitations: schedule ran");
            }
            Ok(_) => {}
            Err(e) => tracing::error!("invitations: the schedule failed: {e}"),
        }
        match notices::send_due(&*store, &channels, &accept_url, retry, now, 50) {
            Ok(sent) if sent != notices::Sent::default() => {
                tracing::info!(
                    sent = sent.sent,
                    retrying = sent.retrying,
                    failed = sent.failed,
                    "invitations: notices"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!("invitations: cannot send notices: {e}"),
        }
        if let Err(e) = track_released(shared, &*store, now) {
            tracing::error!("invitations: cannot follow up held messages: {e}");
        }
        if let Err(e) = return_unclaimed(shared, &*store, now) {
            tracing::error!("invitations: cannot return unclaimed held messages: {e}");
        }
        std::thread::sleep(INTERVAL);
    }
}

/// Held messages whose invitation closed without being accepted: the sender gets the failure
/// notice (a DSN, as for any recipient that failed), and the content is forgotten here.
fn return_unclaimed(shared: &Shared, store: &dyn NodeStore, now: i64) -> crate::store::Result<()> {
    use base64::Engine;
    for (held, state) in store.held_unclaimed(100)? {
        let Ok(sender) = DirectAddress::parse(&held.sender) else {
            store.held_returned(held.id, now)?;
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD.decode(held.content_base64.as_bytes()).unwrap_or_default();
        let why = format!(
            "{} has no Direct address and did not accept the invitation sent instead (invitation #{} {state}); \
             the message was not delivered",
            held.recipient, held.invitation_id
        );
        let failure = Failure::permanent(crate::failure::Code::NO_SUCH_ADDRESS, why);
        let undelivered = super::notices::Undelivered {
            sender: &sender,
            recipient: &held.recipient,
            message_id: &held.message_id,
            submitted_at: now,
            original: &raw,
            failure: &failure,
            tracked_as: crate::store::TrackStatus::Failed,
        };
        super::notices::tell_sender(shared, &*shared.queue, &undelivered, now);
        store.held_returned(held.id, now)?;
    }
    Ok(())
}

/// Held messages whose invitee accepted: in their mailbox (if accepting could not put them
/// there), and dispatched in their sender's tracking.
fn track_released(shared: &Shared, store: &dyn NodeStore, now: i64) -> crate::store::Result<()> {
    for held in store.held_untracked(100)? {
        if let Some(account) = held.account_id {
            crate::network::held::deliver_released(store, account, now)?;
        }
        let key = Key { sender: &held.sender, message_id: &held.message_id, recipient: &held.recipient };
        let note = format!("in the mailbox of {}, who accepted invitation #{}", held.recipient, held.invitation_id);
        shared.queue.released(key, &note, now)?;
        store.held_tracked(held.id, now)?;
    }
    Ok(())
}

fn open(shared: &Shared) -> crate::store::Result<Box<dyn NodeStore>> {
    let store = crate::store::open(&shared.db, "invitations")?;
    store.attach_fields(shared.kek.clone())?;
    Ok(store)
}
