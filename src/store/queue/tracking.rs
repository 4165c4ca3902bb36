//! The sending side of delivery notification: each recipient of each message a local EHR sent is
//! tracked from submission through `sent` to `processed` and (when final delivery was asked for)
//! `dispatched`, or to `failed` / `timed-out`. Each sender's messages are tracked apart: a
//! Message-ID names a message only with its sender, and another sender reusing one neither sees
//! nor changes what is tracked of the first. Notifications are matched by Original-Message-ID,
//! recipient and sender; a repeated one is recorded as a duplicate and not passed on; one that
//! arrives after the sender was told the recipient failed is recorded as late. The sender is told
//! of a failure once (`notified_at`), whoever notices it first.

use crate::store::cached::CachedSql;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{Result, SqliteQueue};
use crate::address::DirectAddress;
use crate::store::{Event, TrackStatus};

/// What is tracked of an EHR's message besides its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tracked {
    pub subject: String,
    /// The sender asked for `X-DIRECT-FINAL-DESTINATION-DELIVERY` (timely and reliable).
    pub final_delivery: bool,
}

/// One tracked recipient: (sender, Message-ID, recipient), the sender and recipient lowercased.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    pub sender: &'a str,
    pub message_id: &'a str,
    pub recipient: &'a str,
}

fn event(tx: &Connection, key: Key, now: i64, what: &str, detail: &str) -> Result<()> {
    noticed(tx, key, now, what, detail, None)
}

/// An event, with the Message-ID of the notification that told it.
fn noticed(tx: &Connection, key: Key, now: i64, what: &str, detail: &str, notice_id: Option<&str>) -> Result<()> {
    tx.run(
        "INSERT INTO tracking_events (sender, message_id, recipient, at, event, detail, notice_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![key.sender, key.message_id, key.recipient, now, what, detail, notice_id],
    )?;
    Ok(())
}

/// Starts tracking each recipient of a message being committed (the caller's transaction).
pub(super) fn submitted(
    tx: &Connection,
    message_id: &str,
    sender: &str,
    recipients: &[String],
    tracked: &Tracked,
    now: i64,
) -> Result<()> {
    let sender = sender.to_ascii_lowercase();
    for recipient in recipients {
        let recipient = recipient.to_ascii_lowercase();
        let inserted = tx.run(
            "INSERT OR IGNORE INTO tracked (message_id, recipient, sender, subject, final_delivery, status, submitted_at, updated_at)
             VALUES (?1, ?2, ?3, field_seal(?4), ?5, 'queued', ?6, ?6)",
            params![message_id, recipient, sender, tracked.subject, tracked.final_delivery, now],
        )?;
        if inserted == 1 {
            let asked = if tracked.final_delivery { "final delivery notification requested" } else { "" };
            let key = Key { sender: &sender, message_id, recipient: &recipient };
            event(tx, key, now, "submitted", asked)?;
        }
    }
    Ok(())
}

/// The message left for the recipient's HISP (or this node's own mailbox), recorded with the
/// recipient's outcome (`FinishWrite::Sent`).
pub(super) fn record_sent(
    tx: &Connection,
    sender: &str,
    message_id: &str,
    recipient: &str,
    note: &str,
    now: i64,
) -> Result<()> {
    let (sender, recipient) = (sender.to_ascii_lowercase(), recipient.to_ascii_lowercase());
    let changed = tx.run(
        "UPDATE tracked SET status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END,
                sent_at = ?3, updated_at = ?3
         WHERE message_id = ?1 AND recipient = ?2 AND sender = ?4 AND sent_at IS NULL",
        params![message_id, recipient, now, sender],
    )?;
    if changed == 1 {
        event(tx, Key { sender: &sender, message_id, recipient: &recipient }, now, "sent", note)?;
    }
    Ok(())
}

/// The message is held for the recipient, who was invited (`FinishWrite::Held`): no
/// notification is awaited, so none can be overdue.
pub(super) fn held(
    tx: &Connection,
    sender: &str,
    message_id: &str,
    recipient: &str,
    note: &str,
    now: i64,
) -> Result<()> {
    let (sender, recipient) = (sender.to_ascii_lowercase(), recipient.to_ascii_lowercase());
    let changed = tx.run(
        "UPDATE tracked SET status = 'held', detail = ?4, updated_at = ?3
         WHERE message_id = ?1 AND recipient = ?2 AND sender = ?5 AND status = 'queued'",
        params![message_id, recipient, now, note, sender],
    )?;
    if changed == 1 {
        event(tx, Key { sender: &sender, message_id, recipient: &recipient }, now, "held", note)?;
    }
    Ok(())
}

/// A held message reached its invitee's mailbox: dispatched.
pub(super) fn released(queue: &SqliteQueue, key: Key, note: &str, now: i64) -> Result<()> {
    let tx = queue.write()?;
    let (sender, recipient) = (key.sender.to_ascii_lowercase(), key.recipient.to_ascii_lowercase());
    let changed = tx.run(
        "UPDATE tracked SET status = 'dispatched', dispatched_at = ?3, detail = ?4, updated_at = ?3
         WHERE message_id = ?1 AND recipient = ?2 AND sender = ?5 AND status = 'held'",
        params![key.message_id, recipient, now, note, sender],
    )?;
    if changed == 1 {
        event(
            &tx,
            Key { sender: &sender, message_id: key.message_id, recipient: &recipient },
            now,
            "dispatched",
            note,
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Whether the sender still has to be told that this recipient failed (untracked messages, sent
/// before tracking existed, are told too).
pub(super) fn needs_failure_notice(queue: &SqliteQueue, key: Key) -> Result<bool> {
    let notified: Option<Option<i64>> = queue
        .conn()
        .row(
            "SELECT notified_at FROM tracked WHERE message_id = ?1 AND recipient = ?2 AND sender = ?3",
            params![key.message_id, key.recipient.to_ascii_lowercase(), key.sender.to_ascii_lowercase()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(!matches!(notified, Some(Some(_))))
}

/// The recipient failed for good here (`status` failed) or got no notification in time
/// (timed-out), and the sender has been sent the DSN that says so.
pub(super) fn failed(queue: &SqliteQueue, key: Key, status: TrackStatus, why: &str, now: i64) -> Result<()> {
    let tx = queue.write()?;
    let (sender, recipient) = (key.sender.to_ascii_lowercase(), key.recipient.to_ascii_lowercase());
    let key = Key { sender: &sender, message_id: key.message_id, recipient: &recipient };
    let changed = tx.run(
        "UPDATE tracked SET status = ?3, failed_at = coalesce(failed_at, ?5), detail = ?4, notified_at = ?5, updated_at = ?5
         WHERE message_id = ?1 AND recipient = ?2 AND sender = ?6 AND notified_at IS NULL",
        params![key.message_id, recipient, status, why, now, sender],
    )?;
    if changed == 1 {
        event(&tx, key, now, status.as_str(), why)?;
        event(&tx, key, now, "dsn", "the sender was sent a failure notice")?;
    }
    tx.commit()?;
    Ok(())
}

/// What became of one recipient's entry in an arriving notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// New news about a tracked recipient; `final_delivery`: the message asked for it.
    Recorded { final_delivery: bool },
    /// The same news again: recorded, not passed on.
    Duplicate,
    /// News after the sender was told the recipient failed: recorded, not passed on.
    Late,
    /// Not about a message this sender sent through us (or sent before tracking).
    Unmatched,
    /// About a recipient outside the reporter's domain: a HISP speaks only for its own.
    Ignored,
}

/// Who a notification came from and to, and its own Message-ID.
pub(crate) struct Arrival<'a> {
    /// The local sender it is addressed to.
    pub sender: &'a str,
    /// Its verified signer.
    pub reporter: &'a DirectAddress,
    /// Its own Message-ID: the same notification processed again (a retry) keeps the effect it
    /// had the first time instead of counting as a duplicate of itself.
    pub notice_id: &'a str,
}

/// Records a notification that arrived about the message `original_message_id`: what it says
/// happened to each recipient (lowercased).
pub(super) fn record_notice(
    queue: &SqliteQueue,
    original_message_id: Option<&str>,
    recipients: &[(String, Event)],
    arrival: &Arrival,
    now: i64,
) -> Result<Vec<(String, Effect)>> {
    let Some(message_id) = original_message_id else {
        return Ok(recipients.iter().map(|(r, _)| (r.clone(), Effect::Unmatched)).collect());
    };
    let tx = queue.write()?;
    let mut effects = Vec::new();
    for (recipient, happened) in recipients {
        let effect = record_one(&tx, message_id, recipient, happened, arrival, now)?;
        effects.push((recipient.clone(), effect));
    }
    tx.commit()?;
    Ok(effects)
}

/// What is tracked of one recipient, as a notification about it finds it.
#[derive(Debug, Clone, Copy)]
struct Row {
    status: TrackStatus,
    final_delivery: bool,
    processed_at: Option<i64>,
    dispatched_at: Option<i64>,
    failed_at: Option<i64>,
    notified_at: Option<i64>,
}

/// What a notification's news does to a tracked recipient, decided from the row alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    /// About a recipient outside the reporter's domain: recorded as ignored.
    Ignore,
    /// Not a step that is tracked (e.g. `displayed`): recorded and passed on.
    Note,
    /// The step was recorded before: what this same notification did then decides.
    Repeat,
    /// A new step: its time goes in `column` and the status becomes `status`; `late`: the sender
    /// was told the recipient failed already, so it is recorded and not passed on.
    Advance { column: &'static str, status: TrackStatus, late: bool },
}

fn transition(row: &Row, happened: &Event, in_reporters_domain: bool) -> Transition {
    if !in_reporters_domain {
        return Transition::Ignore;
    }
    let (column, already) = match happened {
        Event::Processed => ("processed_at", row.processed_at),
        Event::Dispatched => ("dispatched_at", row.dispatched_at),
        Event::Failed(_) => ("failed_at", row.failed_at),
        Event::Other(_) => return Transition::Note,
    };
    if already.is_some() {
        return Transition::Repeat;
    }
    Transition::Advance { column, status: row.status.after(happened), late: row.notified_at.is_some() }
}

fn tracked_row(tx: &Connection, key: Key) -> Result<Option<Row>> {
    Ok(tx
        .row(
            "SELECT status, final_delivery, processed_at, dispatched_at, failed_at, notified_at FROM tracked
             WHERE message_id = ?1 AND recipient = ?2 AND sender = ?3",
            params![key.message_id, key.recipient, key.sender],
            |r| {
                Ok(Row {
                    status: r.get(0)?,
                    final_delivery: r.get(1)?,
                    processed_at: r.get(2)?,
                    dispatched_at: r.get(3)?,
                    failed_at: r.get(4)?,
                    notified_at: r.get(5)?,
                })
            },
        )
        .optional()?)
}

fn record_one(
    tx: &Connection,
    message_id: &str,
    recipient: &str,
    happened: &Event,
    arrival: &Arrival,
    now: i64,
) -> Result<Effect> {
    let Arrival { sender, reporter, notice_id } = *arrival;
    let sender = sender.to_ascii_lowercase();
    let key = Key { sender: &sender, message_id, recipient };
    let Some(row) = tracked_row(tx, key)? else { return Ok(Effect::Unmatched) };
    let in_reporters_domain =
        recipient.rsplit_once('@').is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(reporter.domain().as_str()));
    let recorded = Effect::Recorded { final_delivery: row.final_delivery };
    match transition(&row, happened, in_reporters_domain) {
        Transition::Ignore => {
            let note = format!("{} reported by {reporter}, outside {recipient}'s domain: ignored", happened.name());
            event(tx, key, now, "ignored", &note)?;
            Ok(Effect::Ignored)
        }
        Transition::Note => {
            event(tx, key, now, happened.name(), &format!("reported by {reporter}"))?;
            Ok(recorded)
        }
        Transition::Repeat => repeated(tx, key, happened, notice_id, now, recorded),
        Transition::Advance { column, status, late } => {
            let detail = match happened {
                Event::Failed(why) => why.clone(),
                _ => String::new(),
            };
            tx.run(
                &format!(
                    "UPDATE tracked SET {column} = ?3, status = ?4, detail = CASE WHEN ?5 = '' THEN detail ELSE ?5 END,
                            updated_at = ?3 WHERE message_id = ?1 AND recipient = ?2 AND sender = ?6"
                ),
                params![message_id, recipient, now, status, detail, sender],
            )?;
            if late {
                let note = format!("{} after the sender was told it failed; not passed on", happened.name());
                noticed(tx, key, now, "late", &note, Some(notice_id))?;
                return Ok(Effect::Late);
            }
            noticed(tx, key, now, happened.name(), &detail, Some(notice_id))?;
            Ok(recorded)
        }
    }
}

/// A step recorded before: the same notification processed again (a retry) keeps the effect it
/// had the first time; another notification of the same step is a duplicate.
fn repeated(
    tx: &Connection,
    key: Key,
    happened: &Event,
    notice_id: &str,
    now: i64,
    recorded: Effect,
) -> Result<Effect> {
    let before: Option<String> = tx
        .row(
            "SELECT event FROM tracking_events WHERE message_id = ?1 AND recipient = ?2 AND notice_id = ?3
             AND event IN (?4, 'late') AND sender = ?5 ORDER BY id LIMIT 1",
            params![key.message_id, key.recipient, notice_id, happened.name(), key.sender],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match before.as_deref() {
        Some("late") => Effect::Late,
        Some(_) => recorded,
        None => {
            let note = format!("another {} notification ({notice_id})", happened.name());
            noticed(tx, key, now, "duplicate", &note, Some(notice_id))?;
            Effect::Duplicate
        }
    })
}

/// A recipient whose notification is overdue.
#[derive(Debug, Clone)]
pub(crate) struct Overdue {
    pub message_id: String,
    pub recipient: String,
    pub sender: String,
    pub subject: String,
    pub submitted_at: i64,
    /// What did not arrive in time: "processed" or "dispatched".
    pub missing: &'static str,
}

/// Recipients sent at least `processed_after` seconds ago with no processed MDN, or (when final
/// delivery was asked for) `dispatched_after` seconds ago with no dispatched MDN, and no failure
/// told yet.
pub(super) fn overdue(
    queue: &SqliteQueue,
    now: i64,
    processed_after: i64,
    dispatched_after: i64,
) -> Result<Vec<Overdue>> {
    let conn = queue.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT message_id, recipient, sender, field_open(subject), submitted_at, status FROM tracked
         WHERE status IN ('sent', 'processed') AND notified_at IS NULL
           AND ((status = 'sent' AND sent_at <= ?1) OR (status = 'processed' AND final_delivery = 1 AND sent_at <= ?2))
         ORDER BY sent_at LIMIT 1000",
    )?;
    let rows = stmt.query_map(params![now - processed_after, now - dispatched_after], |r| {
        Ok(Overdue {
            message_id: r.get(0)?,
            recipient: r.get(1)?,
            sender: r.get(2)?,
            subject: r.get(3)?,
            submitted_at: r.get(4)?,
            missing: if r.get::<_, TrackStatus>(5)? == TrackStatus::Sent { "processed" } else { "dispatched" },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One event of a recipient's timeline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TimelineEvent {
    pub at: i64,
    pub event: String,
    pub detail: String,
}

/// Everything known about one recipient of a sent message.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RecipientTrack {
    pub recipient: String,
    pub status: TrackStatus,
    pub final_delivery: bool,
    pub sent_at: Option<i64>,
    pub processed_at: Option<i64>,
    pub dispatched_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub detail: Option<String>,
    pub sender_notified_at: Option<i64>,
    pub timeline: Vec<TimelineEvent>,
    /// While delivery is being retried: why the last try failed and when the next one is.
    pub retry: Option<Retry>,
}

/// A delivery being retried.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Retry {
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub reason: Option<String>,
}

/// A sent message and its recipients.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SentMessage {
    pub message_id: String,
    pub sender: String,
    pub subject: String,
    pub submitted_at: i64,
    pub recipients: Vec<RecipientTrack>,
}

/// The messages with this Message-ID (angle brackets optional) sent through us: one per sender
/// that used it (a Message-ID names a message only with its sender).
pub(super) fn track(queue: &SqliteQueue, message_id: &str) -> Result<Vec<SentMessage>> {
    let id = if message_id.starts_with('<') { message_id.to_string() } else { format!("<{message_id}>") };
    let senders: Vec<String> = {
        let conn = queue.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT sender FROM tracked WHERE message_id = ?1 GROUP BY sender ORDER BY min(submitted_at)",
        )?;
        let rows = stmt.query_map([&id], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(senders.len());
    for sender in senders {
        out.extend(track_sent(queue, &sender, &id)?);
    }
    Ok(out)
}

/// What `sender` sent under `message_id`, if anything.
pub(super) fn track_sent(queue: &SqliteQueue, sender: &str, message_id: &str) -> Result<Option<SentMessage>> {
    let conn = queue.conn();
    let sender = sender.to_ascii_lowercase();
    let head: Option<(String, i64)> = conn
        .row(
            "SELECT field_open(subject), min(submitted_at) FROM tracked WHERE message_id = ?1 AND sender = ?2
             GROUP BY sender",
            params![message_id, sender],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((subject, submitted_at)) = head else { return Ok(None) };
    let mut stmt = conn.prepare_cached(
        "SELECT recipient, status, final_delivery, sent_at, processed_at, dispatched_at, failed_at, detail, notified_at
         FROM tracked WHERE message_id = ?1 AND sender = ?2 ORDER BY recipient",
    )?;
    let rows = stmt.query_map(params![message_id, sender], |r| {
        Ok(RecipientTrack {
            recipient: r.get(0)?,
            status: r.get(1)?,
            final_delivery: r.get(2)?,
            sent_at: r.get(3)?,
            processed_at: r.get(4)?,
            dispatched_at: r.get(5)?,
            failed_at: r.get(6)?,
            detail: r.get(7)?,
            sender_notified_at: r.get(8)?,
            timeline: Vec::new(),
            retry: None,
        })
    })?;
    let mut recipients = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut events = conn.prepare_cached(
        "SELECT at, event, detail FROM tracking_events WHERE sender = ?1 AND message_id = ?2 AND recipient = ?3
         ORDER BY id",
    )?;
    let mut retrying = conn.prepare_cached(
        "SELECT r.attempts, r.next_attempt_at, r.last_error
         FROM queue_messages m JOIN queue_recipients r ON r.message_id = m.id
         WHERE m.direction = 'outbound' AND m.message_id = ?1 AND lower(m.mail_from) = ?2
           AND lower(r.recipient) = ?3 AND r.status = 'deferred'
         ORDER BY r.id DESC LIMIT 1",
    )?;
    for r in &mut recipients {
        let rows = events.query_map(params![sender, message_id, r.recipient], |e| {
            Ok(TimelineEvent { at: e.get(0)?, event: e.get(1)?, detail: e.get(2)? })
        })?;
        r.timeline = rows.collect::<rusqlite::Result<_>>()?;
        r.retry = retrying
            .query_row(params![message_id, sender, r.recipient], |q| {
                Ok(Retry { attempts: q.get(0)?, next_attempt_at: q.get(1)?, reason: q.get(2)? })
            })
            .optional()?;
    }
    Ok(Some(SentMessage { message_id: message_id.to_string(), sender, subject, submitted_at, recipients }))
}

/// Messages sent since `since` (unix time), newest first.
pub(super) fn sent_since(queue: &SqliteQueue, since: i64) -> Result<Vec<SentMessage>> {
    let keys: Vec<(String, String)> = {
        let conn = queue.conn();
        let mut stmt = conn.prepare_cached(
            // By the time they were submitted (the planner would otherwise walk every row in
            // the order of the GROUP BY to save a sort).
            "SELECT sender, message_id FROM tracked INDEXED BY tracked_submitted WHERE submitted_at >= ?1
             GROUP BY sender, message_id ORDER BY max(submitted_at) DESC, message_id, sender",
        )?;
        let rows = stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(keys.len());
    for (sender, id) in keys {
        out.extend(track_sent(queue, &sender, &id)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::Queue as _;
    use crate::store::queue::{FinishWrite, NewMessage};
    use crate::store::Flow;
    use crate::store::SqliteStore;

    const ID: &str = "<m1@a.test>";

    #[test]
    fn a_notification_moves_a_tracked_recipient_by_its_step_and_what_is_known() {
        use TrackStatus::*;
        let fresh = Row {
            status: Sent,
            final_delivery: true,
            processed_at: None,
            dispatched_at: None,
            failed_at: None,
            notified_at: None,
        };
        let processed = Row { status: Processed, processed_at: Some(1), ..fresh };
        let dispatched = Row { status: Dispatched, processed_at: Some(1), dispatched_at: Some(2), ..fresh };
        let told_failed = Row { status: TimedOut, notified_at: Some(3), ..fresh };
        let failed = Event::Failed("no such user".into());
        let advance = |column, status, late| Transition::Advance { column, status, late };
        let table: &[(&str, Row, Event, bool, Transition)] = &[
            ("processed first", fresh, Event::Processed, true, advance("processed_at", Processed, false)),
            ("dispatched first", fresh, Event::Dispatched, true, advance("dispatched_at", Dispatched, false)),
            (
                "dispatched after processed",
                processed,
                Event::Dispatched,
                true,
                advance("dispatched_at", Dispatched, false),
            ),
            ("a late processed keeps dispatched", dispatched, Event::Processed, true, Transition::Repeat),
            ("processed twice", processed, Event::Processed, true, Transition::Repeat),
            ("failed", processed, failed.clone(), true, advance("failed_at", Failed, false)),
            ("after the sender was told", told_failed, Event::Processed, true, advance("processed_at", TimedOut, true)),
            ("displayed is only noted", processed, Event::Other("displayed".into()), true, Transition::Note),
            ("outside the reporter's domain", fresh, Event::Processed, false, Transition::Ignore),
            ("a failure from outside", fresh, failed, false, Transition::Ignore),
        ];
        for (case, row, happened, in_domain, expected) in table {
            assert_eq!(transition(row, happened, *in_domain), *expected, "{case}");
        }
    }

    fn queue_with_one_sent_message(final_delivery: bool) -> (tempfile::TempDir, SqliteQueue) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        SqliteStore::create(&path, "test").unwrap();
        let queue = SqliteQueue::open(&path).unwrap();
        queue.attach_fields(std::sync::Arc::new(crate::store::fields::tests::Reversing)).unwrap();
        let message = NewMessage {
            flow: Flow::Outbound,
            mail_from: "dr.smith@a.test".into(),
            authenticated_as: Some("dr.smith@a.test".into()),
            message_id: ID.into(),
            recipients: vec!["Dr.Jones@b.test".into(), "nurse@b.test".into()],
            size: 1,
            sealed_data: vec![0],
            tracked: Some(Tracked { subject: "Referral".into(), final_delivery }),
        };
        queue.enqueue(&[message], 100).unwrap();
        sent(&queue, "dr.smith@a.test", "dr.jones@b.test", 110);
        (dir, queue)
    }

    /// Records that `sender`'s message ID left for `recipient`, as a worker does with its outcome.
    fn sent(queue: &SqliteQueue, sender: &str, recipient: &str, now: i64) {
        let job = queue.claim(now, 10).unwrap().into_iter().find(|j| j.recipient.eq_ignore_ascii_case(recipient));
        let job = job.expect("a queued recipient to send");
        let at_finish = crate::store::queue::AtFinish::default();
        let (sender, message_id, recipient) = (sender.into(), ID.into(), recipient.into());
        at_finish.add(FinishWrite::Sent { sender, message_id, recipient, note: "250 ok".into() });
        let outcome = crate::store::queue::Outcome::Sent("250 ok".into());
        queue.finish_and_claim(job.recipient_id, &outcome, now, at_finish, 0).unwrap();
        queue.release_in_flight(now).unwrap();
    }

    /// One recipient's entry of an MDN about `ID`.
    fn mdn(recipient: &str, event: Event) -> Vec<(String, Event)> {
        vec![(recipient.into(), event)]
    }

    fn arrive(queue: &SqliteQueue, notice: &[(String, Event)], notice_id: &str, now: i64) -> Effect {
        let reporter = DirectAddress::parse("dr.jones@b.test").unwrap();
        let arrival = Arrival { sender: "dr.smith@a.test", reporter: &reporter, notice_id };
        record_notice(queue, Some(ID), notice, &arrival, now).unwrap().remove(0).1
    }

    #[test]
    fn notifications_move_a_recipient_forward_once_and_repeats_are_duplicates() {
        let (_dir, queue) = queue_with_one_sent_message(true);
        let processed = mdn("dr.jones@b.test", Event::Processed);
        assert_eq!(arrive(&queue, &processed, "<n1@b.test>", 120), Effect::Recorded { final_delivery: true });
        // The same notification processed again (a retry) is not a duplicate of itself...
        assert_eq!(arrive(&queue, &processed, "<n1@b.test>", 121), Effect::Recorded { final_delivery: true });
        // ...another one saying the same is.
        assert_eq!(arrive(&queue, &processed, "<n2@b.test>", 122), Effect::Duplicate);
        let dispatched = mdn("dr.jones@b.test", Event::Dispatched);
        assert_eq!(arrive(&queue, &dispatched, "<n3@b.test>", 130), Effect::Recorded { final_delivery: true });
        let track = track(&queue, ID).unwrap().remove(0);
        let jones = track.recipients.iter().find(|r| r.recipient == "dr.jones@b.test").unwrap();
        assert_eq!(jones.status, "dispatched");
        assert_eq!((jones.sent_at, jones.processed_at, jones.dispatched_at), (Some(110), Some(120), Some(130)));
        let events: Vec<&str> = jones.timeline.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["submitted", "sent", "processed", "duplicate", "dispatched"]);
        let nurse = track.recipients.iter().find(|r| r.recipient == "nurse@b.test").unwrap();
        assert_eq!(nurse.status, "queued");
    }

    #[test]
    fn an_overdue_recipient_is_reported_once_and_a_late_mdn_is_only_recorded() {
        let (_dir, queue) = queue_with_one_sent_message(false);
        assert!(overdue(&queue, 110 + 59, 60, 600).unwrap().is_empty());
        let due = overdue(&queue, 110 + 60, 60, 600).unwrap();
        assert_eq!(due.len(), 1, "only the recipient that was sent");
        assert_eq!((due[0].recipient.as_str(), due[0].missing), ("dr.jones@b.test", "processed"));
        let key = Key { sender: "dr.smith@a.test", message_id: ID, recipient: "dr.jones@b.test" };
        assert!(needs_failure_notice(&queue, key).unwrap());
        failed(&queue, key, TrackStatus::TimedOut, "no processed MDN", 170).unwrap();
        assert!(!needs_failure_notice(&queue, key).unwrap());
        assert!(overdue(&queue, 10_000, 60, 600).unwrap().is_empty(), "told once");
        let late = arrive(&queue, &mdn("dr.jones@b.test", Event::Processed), "<n1@b.test>", 200);
        assert_eq!(late, Effect::Late);
        let jones = track(&queue, ID).unwrap().remove(0).recipients.remove(0);
        assert_eq!(jones.status, "timed-out");
        assert_eq!(jones.processed_at, Some(200));
    }

    #[test]
    fn a_processed_timely_message_waits_for_its_dispatched_mdn() {
        let (_dir, queue) = queue_with_one_sent_message(true);
        arrive(&queue, &mdn("dr.jones@b.test", Event::Processed), "<n1@b.test>", 120);
        assert!(overdue(&queue, 110 + 100, 60, 600).unwrap().is_empty(), "processed in time");
        let due = overdue(&queue, 110 + 600, 60, 600).unwrap();
        assert_eq!(due[0].missing, "dispatched");
    }

    #[test]
    fn strangers_and_unknown_messages_are_not_matched() {
        let (_dir, queue) = queue_with_one_sent_message(false);
        let reporter = DirectAddress::parse("mallory@evil.test").unwrap();
        let notice = mdn("dr.jones@b.test", Event::Failed("5.1.1 no".into()));
        let arrival = Arrival { sender: "dr.smith@a.test", reporter: &reporter, notice_id: "<x@evil.test>" };
        assert_eq!(record_notice(&queue, Some(ID), &notice, &arrival, 120).unwrap()[0].1, Effect::Ignored);
        assert_eq!(track(&queue, ID).unwrap().remove(0).recipients[0].status, "sent");
        let reporter = DirectAddress::parse("dr.jones@b.test").unwrap();
        let arrival = Arrival { sender: "dr.smith@a.test", reporter: &reporter, notice_id: "<n9@b.test>" };
        let other = record_notice(&queue, Some("<other@a.test>"), &notice, &arrival, 121).unwrap();
        assert_eq!(other[0].1, Effect::Unmatched);
        // Another local user cannot learn about dr.smith's message.
        let arrival = Arrival { sender: "dr.other@a.test", reporter: &reporter, notice_id: "<n8@b.test>" };
        assert_eq!(record_notice(&queue, Some(ID), &notice, &arrival, 122).unwrap()[0].1, Effect::Unmatched);
    }

    #[test]
    fn another_sender_reusing_a_message_id_is_tracked_apart_and_changes_nothing_of_the_first() {
        let (_dir, queue) = queue_with_one_sent_message(false);
        let reuse = NewMessage {
            flow: Flow::Outbound,
            mail_from: "mallory@other.test".into(),
            authenticated_as: Some("mallory@other.test".into()),
            message_id: ID.into(),
            recipients: vec!["dr.jones@b.test".into()],
            size: 1,
            sealed_data: vec![0],
            tracked: Some(Tracked { subject: "Mine".into(), final_delivery: false }),
        };
        queue.enqueue(&[reuse], 150).unwrap();
        sent(&queue, "mallory@other.test", "dr.jones@b.test", 160);
        let key = Key { sender: "mallory@other.test", message_id: ID, recipient: "dr.jones@b.test" };
        failed(&queue, key, TrackStatus::Failed, "refused", 170).unwrap();

        let both = track(&queue, ID).unwrap();
        assert_eq!(
            both.iter().map(|m| m.sender.as_str()).collect::<Vec<_>>(),
            ["dr.smith@a.test", "mallory@other.test"]
        );
        let smith = track_sent(&queue, "dr.smith@a.test", ID).unwrap().unwrap();
        assert_eq!(smith.subject, "Referral");
        assert_eq!(smith.recipients.len(), 2, "dr.smith's own recipients only");
        let jones = smith.recipients.iter().find(|r| r.recipient == "dr.jones@b.test").unwrap();
        assert_eq!((jones.status.as_str(), jones.sent_at, jones.failed_at), ("sent", Some(110), None));
        assert_eq!(jones.timeline.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(), ["submitted", "sent"]);
        let mallory = track_sent(&queue, "mallory@other.test", ID).unwrap().unwrap();
        assert_eq!(mallory.recipients.len(), 1);
        assert_eq!(mallory.recipients[0].status, "failed");
        // An MDN for dr.jones matches the sender it is addressed to, and only that one.
        assert_eq!(
            arrive(&queue, &mdn("dr.jones@b.test", Event::Processed), "<n1@b.test>", 180),
            Effect::Recorded { final_delivery: false }
        );
        let mallory = track_sent(&queue, "mallory@other.test", ID).unwrap().unwrap();
        assert_eq!(mallory.recipients[0].processed_at, None);
    }
}
