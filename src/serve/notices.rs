//! The sending side's notifications: MDNs and DSNs arriving for a hosted sender are recorded
//! against what it sent and passed into its mailbox (unless duplicate, late, or about a plain
//! message when only timely-and-reliable ones are passed); and a recipient that failed here, or
//! got no notification in time, is reported to its sender with one DSN.

use std::time::Duration;

use super::{maildir, Shared, Work};
use crate::address::DirectAddress;
use crate::config::PassNotifications;
use crate::failure::{Code, Failure};
use crate::notify::dsn;
use crate::notify::mdn::Notice;
use crate::smime::open::Opened;
use crate::store::queue::tracking::{self, Arrival, Effect};
use crate::store::queue::Queue;
use crate::store::TrackStatus;

/// Records a notification that arrived for the hosted `sender`; returns whether it goes on into
/// the sender's mailbox, and why not when it does not.
pub(crate) fn arrived(
    work: &Work,
    sender: &str,
    opened: &Opened,
    notice: &Notice,
    notice_id: &str,
) -> Result<Pass, Failure> {
    let arrival = Arrival { sender, reporter: &opened.from, notice_id };
    let about = notice.original_message_id.as_deref();
    let effects = work.queue.record_notice(about, &notice.recipients, &arrival, work.now).map_err(|e| e.failure())?;
    let pass_all = work.shared.config.notify.pass_to_sender == PassNotifications::All;
    let passes = effects.iter().any(|(_, effect)| match effect {
        Effect::Recorded { final_delivery } => pass_all || *final_delivery,
        Effect::Unmatched => true,
        Effect::Duplicate | Effect::Late | Effect::Ignored => false,
    });
    if passes || effects.is_empty() {
        return Ok(Pass::Deliver);
    }
    let said: Vec<String> = effects.iter().map(|(r, e)| format!("{r}: {}", describe(e))).collect();
    Ok(Pass::Consumed(said.join(", ")))
}

pub(crate) enum Pass {
    Deliver,
    /// Recorded only (what each recipient's entry was).
    Consumed(String),
}

fn describe(effect: &Effect) -> &'static str {
    match effect {
        Effect::Recorded { .. } => "recorded (plain message: consumed here)",
        Effect::Duplicate => "duplicate",
        Effect::Late => "late (the sender was already told it failed)",
        Effect::Unmatched => "not a message sent here",
        Effect::Ignored => "reported from outside the recipient's domain",
    }
}

/// A recipient that failed, to be reported to its local sender.
pub(crate) struct Undelivered<'a> {
    pub sender: &'a DirectAddress,
    pub recipient: &'a str,
    pub message_id: &'a str,
    /// When the message was submitted (names the DSN file: the same failure, noticed twice, is
    /// one file).
    pub submitted_at: i64,
    /// The original, or at least its header block (only the headers are returned).
    pub original: &'a [u8],
    /// Why: its status and text go into the DSN (never its detail).
    pub failure: &'a Failure,
    /// What the tracking records: failed, or timed out.
    pub tracked_as: TrackStatus,
}

/// Puts one DSN for `f` into the sender's mailbox, unless the sender was told before.
pub(crate) fn tell_sender(shared: &Shared, queue: &dyn Queue, f: &Undelivered, now: i64) {
    let sender = f.sender.to_string();
    let key = tracking::Key { sender: &sender, message_id: f.message_id, recipient: f.recipient };
    match queue.needs_failure_notice(key) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!("notify: cannot read the tracking of {} for {}: {e}", f.message_id, f.recipient);
            return;
        }
    }
    let hostname = &shared.config.server.hostname;
    let report = dsn::build(
        &dsn::Failure {
            sender: f.sender,
            recipient: f.recipient,
            status: &f.failure.status.to_string(),
            reason: &f.failure.public(),
            remote_reply: f.failure.remote_reply.as_deref(),
            original: f.original,
            original_message_id: f.message_id,
            arrived_at: f.submitted_at,
            reporting_mta: hostname,
        },
        now,
    );
    let seed = format!("{}\0{}", f.message_id, f.recipient.to_ascii_lowercase());
    let name = format!("{}.dsn-{}.{hostname}", f.submitted_at, &crate::pki::sha256_hex(seed.as_bytes())[..24]);
    // Written first, then recorded: a crash in between writes the same file again, never two.
    if let Err(e) = maildir::deliver(&shared.config.server.mail_dir, f.sender, &name, &report, true) {
        tracing::error!("notify: cannot deliver the DSN for {} to {}: {e}", f.recipient, f.sender);
        return;
    }
    if let Err(e) = queue.failed(key, f.tracked_as, &f.failure.public(), now) {
        tracing::error!("notify: cannot record the DSN for {}: {e}", f.recipient);
    }
}

/// Looks for overdue notifications every few seconds (a tenth of the shorter timeout, between 1
/// and 60 seconds) and reports each overdue recipient to its sender once.
pub(crate) fn watch_timeouts(shared: &Shared) {
    let config = &shared.config.notify;
    let shortest = config.processed_timeout_secs.min(config.dispatched_timeout_secs);
    let interval = Duration::from_secs((shortest / 10).clamp(1, 60));
    let queue = &shared.queue;
    loop {
        std::thread::sleep(interval);
        let now = shared.clock.unix_now();
        let overdue =
            match queue.overdue(now, config.processed_timeout_secs as i64, config.dispatched_timeout_secs as i64) {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!("notify: cannot look for overdue notifications: {e}");
                    continue;
                }
            };
        for o in overdue {
            let Ok(sender) = DirectAddress::parse(&o.sender) else { continue };
            let timeout =
                if o.missing == "processed" { config.processed_timeout_secs } else { config.dispatched_timeout_secs };
            let reason = format!("no {} notification from the recipient's HISP within {timeout} s", o.missing);
            let headers = format!(
                "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\nMessage-ID: {}\r\n\r\n",
                o.sender, o.recipient, o.subject, o.message_id
            );
            let failure = Failure::permanent(Code::EXPIRED, reason);
            let undelivered = Undelivered {
                sender: &sender,
                recipient: &o.recipient,
                message_id: &o.message_id,
                submitted_at: o.submitted_at,
                original: headers.as_bytes(),
                failure: &failure,
                tracked_as: TrackStatus::TimedOut,
            };
            tell_sender(shared, &**queue, &undelivered, now);
        }
    }
}
