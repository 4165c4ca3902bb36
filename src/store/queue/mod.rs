//! The durable queue (DESIGN.md rule 4): a message is acknowledged only once it is committed here
//! (SQLite WAL, synchronous=FULL: fsync at commit), each recipient has its own state, retries back
//! off exponentially, and a message whose processing keeps crashing the daemon is quarantined.
//!
//! Recipient states: `RecipientStatus`. With the queued messages it keeps what became of those
//! sent (`tracking`: their MDNs and DSNs) and of those received (`receipts`: the MDNs owed for
//! them), in the same transactions. Nothing outside the store sees a connection: what processing
//! a recipient leaves to write with its outcome is a list of `FinishWrite`s.

pub(crate) mod receipts;
pub(crate) mod tracking;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::cached::CachedSql;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::failure::Failure;
use crate::store::{Disposition, Event, Flow, RecipientStatus, StoreError, TrackStatus};
use receipts::Receipt;

/// The recipients waiting for an attempt (the terms of the `queue_waiting` partial index, which
/// SQLite uses only when a query repeats them), of messages not quarantined.
const WAITING: &str = "r.status IN ('queued', 'deferred') AND r.in_flight = 0
    AND r.message_id NOT IN (SELECT id FROM queue_messages WHERE quarantined IS NOT NULL)";

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

/// Up to `limit` recipients due at `?1`, in the order they fell due. The limit is written into the
/// statement, not bound: SQLite plans a statement again every time a bound LIMIT is bound (it
/// plans with the value), which cost a tenth of a worker's time in the queue.
fn claim_sql(limit: usize) -> String {
    format!(
        "SELECT r.id FROM queue_recipients r WHERE {WAITING} AND r.next_attempt_at <= ?1
         ORDER BY r.next_attempt_at, r.id LIMIT {limit}"
    )
}

/// Claims up to `limit` due recipients in the write transaction `tx`. The due recipients are
/// chosen first from the `queue_waiting` index alone; only the chosen ones' messages (with their
/// sealed data) are read.
fn claim_in(tx: &Connection, now: i64, limit: usize) -> Result<Vec<Job>> {
    let due: Vec<i64> = {
        let mut stmt = tx.prepare_cached(&claim_sql(limit))?;
        let ids = stmt.query_map([now], |r| r.get(0))?;
        ids.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut jobs = Vec::with_capacity(due.len());
    if due.is_empty() {
        return Ok(jobs);
    }
    let config_generation: i64 = tx.row("SELECT n FROM config_generation", [], |r| r.get(0))?;
    for id in due {
        let mut stmt = tx.prepare_cached(
            "SELECT r.id, r.recipient, r.attempts, m.id, m.direction, m.mail_from,
                    m.message_id, m.received_at, m.sealed_data
             FROM queue_recipients r JOIN queue_messages m ON m.id = r.message_id WHERE r.id = ?1",
        )?;
        jobs.push(stmt.query_row([id], |r| {
            Ok(Job {
                recipient_id: r.get(0)?,
                recipient: r.get(1)?,
                attempts: r.get::<_, u32>(2)? + 1,
                message: QueuedMessage {
                    id: r.get(3)?,
                    flow: r.get(4)?,
                    mail_from: r.get(5)?,
                    message_id: r.get(6)?,
                    received_at: r.get(7)?,
                    sealed_data: r.get(8)?,
                },
                config_generation,
            })
        })?);
        tx.run(
            "UPDATE queue_recipients SET in_flight = 1, attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
    }
    Ok(jobs)
}

/// A message to commit. `sealed_data` is already encrypted under the KEK.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub flow: Flow,
    pub mail_from: String,
    pub authenticated_as: Option<String>,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub size: usize,
    pub sealed_data: Vec<u8>,
    /// An EHR's message whose recipients' notifications are tracked (not a notification itself).
    pub tracked: Option<tracking::Tracked>,
}

/// What processing a recipient leaves to write with its outcome (`Queue::finish_and_claim`): one
/// commit per recipient instead of one per write, and the writes stand or fall with the outcome (a
/// crash before it redoes the processing and them).
#[derive(Debug)]
pub(crate) enum FinishWrite {
    /// A message of ours left for the recipient's HISP or this node's mailbox (`note`: the reply).
    Sent { sender: String, message_id: String, recipient: String, note: String },
    /// A message was put into a hosted mailbox.
    Delivered(MailboxDelivery),
    /// A message of ours is held for a recipient with no Direct address while they are invited.
    Held { sender: String, message_id: String, recipient: String, note: String },
    /// An inbound message's content goes once every recipient has its outcome and one of them was
    /// refused: refused mail from peers must not fill the disk (only the reasons stay).
    ForgetRefusedContent { queue_message: i64 },
    /// The message of a receipt was opened and trusted (its MDNs are owed from now on).
    Opened(Receipt),
    /// The MDN saying `disposition` for a receipt, queued unless one was before.
    Answered { receipt: Receipt, disposition: Disposition, mdn: NewMessage },
}

/// The writes of one recipient's processing, in the order they were added.
#[derive(Default)]
pub(crate) struct AtFinish {
    writes: std::cell::RefCell<Vec<FinishWrite>>,
}

impl AtFinish {
    pub(crate) fn add(&self, write: FinishWrite) {
        self.writes.borrow_mut().push(write);
    }

    /// Whether this processing held the message for the recipient (so it did not leave).
    pub(crate) fn holds(&self, recipient: &str) -> bool {
        self.writes.borrow().iter().any(|w| matches!(w, FinishWrite::Held { recipient: r, .. } if r == recipient))
    }

    /// The receipt recorded as opened by an earlier write of this processing, if any.
    pub(crate) fn opened(&self, queue_message: i64, recipient: &str) -> Option<Receipt> {
        self.writes.borrow().iter().find_map(|w| match w {
            FinishWrite::Opened(r) if r.queue_message == queue_message && r.recipient == recipient => Some(r.clone()),
            _ => None,
        })
    }

    /// Runs the writes in order in the write transaction `tx`; returns how many recipients they
    /// queued (for waking the workers after the commit).
    fn apply(self, tx: &Connection, now: i64) -> Result<usize> {
        let mut queued = 0;
        for write in self.writes.into_inner() {
            queued += match write {
                FinishWrite::Sent { sender, message_id, recipient, note } => {
                    tracking::record_sent(tx, &sender, &message_id, &recipient, &note, now)?;
                    0
                }
                FinishWrite::Delivered(delivery) => {
                    record_delivery(tx, &delivery, now)?;
                    0
                }
                FinishWrite::Held { sender, message_id, recipient, note } => {
                    tracking::held(tx, &sender, &message_id, &recipient, &note, now)?;
                    0
                }
                FinishWrite::ForgetRefusedContent { queue_message } => {
                    forget_refused_content(tx, queue_message)?;
                    0
                }
                FinishWrite::Opened(receipt) => {
                    receipts::opened(tx, &receipt)?;
                    0
                }
                FinishWrite::Answered { receipt, disposition, mdn } => {
                    usize::from(receipts::answered(tx, &receipt, disposition, &mdn, now)?)
                }
            };
        }
        Ok(queued)
    }
}

/// One recipient of one message, claimed for processing.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub recipient_id: i64,
    pub recipient: String,
    pub attempts: u32,
    pub message: QueuedMessage,
    /// The configuration's change count when the job was claimed (`SqliteStore::follow_config_at`),
    /// read in the claim's transaction, which is at hand, rather than in one of its own.
    pub config_generation: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct QueuedMessage {
    pub id: i64,
    pub flow: Flow,
    pub mail_from: String,
    pub message_id: String,
    pub received_at: i64,
    pub sealed_data: Vec<u8>,
}

/// How processing one recipient ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Handed to the peer HISP.
    Sent(String),
    /// Put into the local mailbox.
    Delivered(String),
    /// A temporary failure: try again at `retry_at`.
    Deferred { failure: Failure, retry_at: i64 },
    /// A permanent failure.
    Failed(Failure),
}

/// A failure ends processing as its class says: a temporary one is deferred (the scheduler
/// decides when to retry: backoff, maximum age), a permanent one fails the recipient.
impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Outcome {
        if failure.is_temporary() {
            Outcome::Deferred { failure, retry_at: 0 }
        } else {
            Outcome::Failed(failure)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RecipientState {
    pub recipient: String,
    pub status: RecipientStatus,
    /// Being processed now.
    pub in_flight: bool,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueueEntry {
    pub id: i64,
    pub flow: Flow,
    pub mail_from: String,
    pub message_id: String,
    pub received_at: i64,
    pub size: i64,
    pub quarantined: Option<String>,
    pub recipients: Vec<RecipientState>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReceivedAttachment {
    pub recipient: String,
    pub message_id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub received_at: i64,
}

/// A handle on a queue connection. The daemon opens one and shares it between intake and its
/// workers (`for_workers`): their writes take turns anyway (SQLite lets one writer in at a time),
/// and a connection's page cache stays valid only as long as no other connection writes, so
/// one connection for all of them reads its pages from memory instead of from the file again at
/// every transaction.
pub(crate) struct SqliteQueue {
    conn: Arc<Mutex<Connection>>,
    /// The WAL file, for a handle whose commits must be on disk when they return (see `open`);
    /// None for the workers' handles.
    durable: Option<PathBuf>,
}

fn writer_mutex() -> &'static Mutex<()> {
    static WRITER: std::sync::OnceLock<Mutex<()>> = std::sync::OnceLock::new();
    WRITER.get_or_init(|| Mutex::new(()))
}

/// A write transaction holding the process's queue-writer mutex and its connection until it
/// ends. BEGIN and COMMIT go through the connection's statement cache like every other statement
/// (rusqlite's own transactions prepare them afresh each time); one never committed is rolled
/// back when dropped.
pub(crate) struct WriteTx<'a> {
    /// None once committed.
    conn: Option<MutexGuard<'a, Connection>>,
    durable: Option<&'a Path>,
    writer: Option<MutexGuard<'static, ()>>,
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_deref().expect("a write transaction has its connection until it commits")
    }
}

impl WriteTx<'_> {
    /// Commits; on a durable handle, returns once the commit is on disk. The fsync comes after the
    /// write lock and the connection are let go, so the other writers need not wait for the disk.
    pub(crate) fn commit(mut self) -> Result<()> {
        if let Some(conn) = self.conn.take() {
            conn.run("COMMIT", []).inspect_err(|_| {
                let _ = conn.run("ROLLBACK", []);
            })?;
        }
        drop(self.writer.take());
        match self.durable {
            Some(wal) => sync_wal(wal),
            None => Ok(()),
        }
    }
}

/// Makes every commit written to the WAL `wal` durable (what synchronous=FULL does inside the
/// commit, under the lock). The WAL is current: a checkpoint copies frames out of it and syncs the
/// database before the WAL is written over or removed, so a commit no longer in it is on disk
/// already.
fn sync_wal(wal: &Path) -> Result<()> {
    let synced = match std::fs::File::open(wal) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    synced.map_err(|e| StoreError::Sync(wal.display().to_string(), e))
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.is_autocommit() {
                let _ = conn.run("ROLLBACK", []);
            }
        }
    }
}

/// The durable queue as the node sees it: what a PostgreSQL backend implements next to SQLite's.
pub(crate) trait Queue: Send + Sync {
    /// Seals and opens PHI fields (`store::fields`) with `cipher` (the KEK) from now on.
    fn attach_fields(&self, cipher: Arc<dyn crate::store::FieldCipher>) -> Result<()>;
    /// A handle for the workers' state changes (claims, outcomes): its commits return without
    /// waiting for the disk. In WAL mode with synchronous=NORMAL a commit survives the process
    /// dying (kill -9) and only a power loss can undo the last ones; what that undoes is safe to
    /// redo: a claim, or an outcome whose redo finds the Maildir copy (or the DSN) already there,
    /// or a resend the peer recognises by its Message-ID.
    fn for_workers(&self) -> Box<dyn Queue>;
    /// Commits `messages` in one transaction (one fsync for the batch) and returns their ids.
    fn enqueue(&self, messages: &[NewMessage], now: i64) -> Result<Vec<i64>>;
    /// At start: recipients left in flight by a daemon that died were being processed when it
    /// died. Each counts a crash; at `max_crashes` the message is quarantined, else it is retried.
    /// Returns (retried, quarantined).
    fn recover(&self, max_crashes: u32, now: i64) -> Result<(usize, usize)>;
    /// At an orderly stop: recipients still being processed go back to waiting, without counting
    /// a crash (processing them again is safe: see `for_workers`). Returns how many.
    fn release_in_flight(&self, now: i64) -> Result<usize>;
    /// Claims up to `limit` due recipients: marks them in flight and counts the attempt.
    fn claim(&self, now: i64, limit: usize) -> Result<Vec<Job>>;
    /// Records how processing a claimed recipient ended.
    fn finish(&self, recipient_id: i64, outcome: &Outcome, now: i64) -> Result<()> {
        self.finish_and_claim(recipient_id, outcome, now, AtFinish::default(), 0).map(|_| ())
    }
    /// `finish`, with the writes `at_finish` in the same transaction (what the outcome means
    /// elsewhere: committed with it, atomically), then claims up to `limit` due recipients, still
    /// in that transaction: a busy worker commits once per recipient, not twice. Returns the
    /// claimed recipients and how many recipients the writes queued.
    fn finish_and_claim(
        &self,
        recipient_id: i64,
        outcome: &Outcome,
        now: i64,
        at_finish: AtFinish,
        limit: usize,
    ) -> Result<(Vec<Job>, usize)>;
    /// Removes up to `limit` messages whose every recipient finished (delivered, sent or failed)
    /// and none changed since `before`; quarantined messages stay. Returns how many went. Only the
    /// oldest messages are looked at (five times `limit`): the queue's writers wait while this
    /// runs, so it must not read a week of messages each time, and a message finishes for good
    /// within its maximum age, long before it is old enough to go.
    fn purge_finished(&self, before: i64, limit: usize) -> Result<usize>;
    /// Stops processing a message (its recipients stay as they are) and says why.
    fn quarantine(&self, message_id: i64, reason: &str, now: i64) -> Result<()>;
    /// Messages, newest first; `all` includes those whose every recipient is finished.
    fn list(&self, all: bool) -> Result<Vec<QueueEntry>>;
    fn show(&self, id: i64) -> Result<QueueEntry>;
    /// Makes a message's waiting or failed recipients due now, and lifts a quarantine.
    fn retry(&self, id: i64, now: i64) -> Result<usize>;
    fn remove(&self, id: i64) -> Result<()>;
    /// The attachments delivered into hosted mailboxes (those of `recipient` only, if given),
    /// newest first: (recipient, Message-ID, filename, content type, size, SHA-256, received at).
    fn received_attachments(&self, recipient: Option<&str>) -> Result<Vec<ReceivedAttachment>>;
    /// What was delivered into hosted mailboxes since `since`, newest first.
    fn received_since(&self, since: i64) -> Result<Vec<Received>>;
    /// Has the message with one of these delivery keys (its own, and the form rows from before
    /// delivery keys have) already been delivered into this recipient's mailbox: its file.
    fn delivered_before(&self, keys: [&str; 2], recipient: &str) -> Result<Option<String>>;
    /// Was a message with this Message-ID, but another delivery key, delivered to this recipient.
    fn message_id_reused(&self, message_id: &str, recipient: &str, keys: [&str; 2]) -> Result<bool>;
    /// The receipt of a message opened and trusted for `recipient` from the queue entry
    /// `queue_message`, if there is one.
    fn receipt_of(&self, queue_message: i64, recipient: &str) -> Result<Option<Receipt>>;
    /// Whether the sender still has to be told that this recipient failed.
    fn needs_failure_notice(&self, key: tracking::Key) -> Result<bool>;
    /// Records that a tracked recipient failed (`status`: failed or timed out) and why.
    fn failed(&self, key: tracking::Key, status: TrackStatus, why: &str, now: i64) -> Result<()>;
    /// Records a notification that arrived about the message `original_message_id`: what it says
    /// happened to each recipient (lowercased), and what that did.
    fn record_notice(
        &self,
        original_message_id: Option<&str>,
        recipients: &[(String, Event)],
        arrival: &tracking::Arrival,
        now: i64,
    ) -> Result<Vec<(String, tracking::Effect)>>;
    /// A held message reached its invitee's mailbox (they accepted): dispatched, with why.
    fn released(&self, key: tracking::Key, note: &str, now: i64) -> Result<()>;
    /// Tracked recipients whose notification is overdue.
    fn overdue(&self, now: i64, processed_after: i64, dispatched_after: i64) -> Result<Vec<tracking::Overdue>>;
    /// What became of each sender's message with this Message-ID.
    fn track(&self, message_id: &str) -> Result<Vec<tracking::SentMessage>>;
    /// The tracked messages submitted since `since`, newest first.
    fn sent_since(&self, since: i64) -> Result<Vec<tracking::SentMessage>>;
}

/// Opens the queue of the (already migrated) database at `path`; its every commit is on disk when
/// the call that made it returns (what intake needs before answering 250).
pub(crate) fn open(path: &Path) -> Result<Box<dyn Queue>> {
    Ok(Box::new(SqliteQueue::open(path)?))
}

impl SqliteQueue {
    /// A connection to the queue of the (already migrated) database at `path` whose every commit
    /// is on disk when `commit` returns (what intake needs before answering 250). SQLite's
    /// synchronous=FULL would fsync inside the commit, holding the write lock through the disk's
    /// latency; the connection commits with NORMAL and syncs the WAL itself after the lock is
    /// released. A commit is visible to the workers a moment before it is durable: a power loss in
    /// that moment can make a message be sent that its client, never answered 250, sends again
    /// (the peer recognises it by its Message-ID); nothing answered 250 is lost.
    pub(crate) fn open(path: &Path) -> Result<SqliteQueue> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        let conn = Connection::open(path)?;
        crate::store::tune_connection(&conn, "NORMAL", std::time::Duration::from_secs(30))?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(SqliteQueue { conn: Arc::new(Mutex::new(conn)), durable: Some(PathBuf::from(wal)) })
    }

    /// The workers' handle: this connection, commits not waited for (`Queue::for_workers`).
    fn workers(&self) -> SqliteQueue {
        SqliteQueue { conn: self.conn.clone(), durable: None }
    }

    /// A write transaction that takes the write lock at its start (BEGIN IMMEDIATE: a reader
    /// upgrading to a writer midway could fail with "database is locked" without waiting), after
    /// the process's queue-writer mutex: SQLite lets one writer in at a time anyway, and its busy
    /// handler waits by sleeping, which with threads writing through connections of their own
    /// costs more than the writes.
    pub(crate) fn write(&self) -> Result<WriteTx<'_>> {
        let writer = writer_mutex().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let conn = self.conn();
        conn.run("BEGIN IMMEDIATE", [])?;
        Ok(WriteTx { conn: Some(conn), durable: self.durable.as_deref(), writer: Some(writer) })
    }

    /// The connection, for reads (held until the guard is dropped: never ask for `write` or
    /// another read while holding it).
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A thread that panicked holding it left no transaction open (WriteTx rolls back on drop).
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Queue for SqliteQueue {
    fn attach_fields(&self, cipher: Arc<dyn crate::store::FieldCipher>) -> Result<()> {
        Ok(crate::store::fields::register(&self.conn(), Some(cipher))?)
    }

    fn for_workers(&self) -> Box<dyn Queue> {
        Box::new(self.workers())
    }

    fn enqueue(&self, messages: &[NewMessage], now: i64) -> Result<Vec<i64>> {
        let tx = self.write()?;
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            ids.push(insert_message(&tx, m, now)?);
        }
        tx.commit()?;
        Ok(ids)
    }

    fn recover(&self, max_crashes: u32, now: i64) -> Result<(usize, usize)> {
        let tx = self.write()?;
        // Only a recipient in flight counts a crash now, so only its message can reach the limit:
        // both statements find the recipients by the `queue_in_flight` index.
        let quarantined = tx.run(
            "UPDATE queue_messages SET quarantined = 'processing it stopped the daemon ' || ?1 || ' times'
             WHERE quarantined IS NULL AND id IN (SELECT message_id FROM queue_recipients WHERE in_flight = 1
                                                  AND crashes + 1 >= ?1 AND status IN ('queued', 'deferred'))",
            [max_crashes],
        )?;
        let retried = tx.run(
            "UPDATE queue_recipients SET in_flight = 0, crashes = crashes + 1, updated_at = ?1 WHERE in_flight = 1",
            [now],
        )?;
        tx.commit()?;
        Ok((retried, quarantined))
    }

    fn release_in_flight(&self, now: i64) -> Result<usize> {
        let tx = self.write()?;
        let released =
            tx.run("UPDATE queue_recipients SET in_flight = 0, updated_at = ?1 WHERE in_flight = 1", [now])?;
        tx.commit()?;
        Ok(released)
    }

    fn claim(&self, now: i64, limit: usize) -> Result<Vec<Job>> {
        let tx = self.write()?;
        let jobs = claim_in(&tx, now, limit)?;
        tx.commit()?;
        Ok(jobs)
    }

    fn finish_and_claim(
        &self,
        recipient_id: i64,
        outcome: &Outcome,
        now: i64,
        at_finish: AtFinish,
        limit: usize,
    ) -> Result<(Vec<Job>, usize)> {
        let (status, error, next) = match outcome {
            Outcome::Sent(note) => (RecipientStatus::Sent, note.clone(), now),
            Outcome::Delivered(note) => (RecipientStatus::Delivered, note.clone(), now),
            Outcome::Deferred { failure, retry_at } => (RecipientStatus::Deferred, failure.to_string(), *retry_at),
            Outcome::Failed(failure) => (RecipientStatus::Failed, failure.to_string(), now),
        };
        let tx = self.write()?;
        tx.run(
            "UPDATE queue_recipients SET status = ?2, last_error = ?3, next_attempt_at = ?4, in_flight = 0,
                    updated_at = ?5 WHERE id = ?1",
            params![recipient_id, status, error, next, now],
        )?;
        let queued = at_finish.apply(&tx, now)?;
        let jobs = if limit > 0 { claim_in(&tx, now, limit)? } else { Vec::new() };
        tx.commit()?;
        Ok((jobs, queued))
    }

    fn purge_finished(&self, before: i64, limit: usize) -> Result<usize> {
        let tx = self.write()?;
        let removed = tx.run(
            &format!(
                "DELETE FROM queue_messages WHERE id IN (
                   SELECT message_id FROM queue_recipients
                   WHERE message_id IN (
                     SELECT id FROM queue_messages
                     WHERE id NOT IN (SELECT id FROM queue_messages WHERE quarantined IS NOT NULL)
                     ORDER BY id LIMIT {window})
                   GROUP BY message_id
                   HAVING max(updated_at) < ?1 AND sum(status IN ('queued', 'deferred') OR in_flight = 1) = 0
                   LIMIT {limit})",
                window = limit * 5
            ),
            [before],
        )?;
        tx.commit()?;
        Ok(removed)
    }

    fn quarantine(&self, message_id: i64, reason: &str, now: i64) -> Result<()> {
        let tx = self.write()?;
        tx.run("UPDATE queue_messages SET quarantined = ?2 WHERE id = ?1", params![message_id, reason])?;
        tx.run(
            "UPDATE queue_recipients SET in_flight = 0, updated_at = ?2 WHERE message_id = ?1",
            params![message_id, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn list(&self, all: bool) -> Result<Vec<QueueEntry>> {
        let ids: Vec<i64> = {
            let conn = self.conn();
            // Quarantined messages from their index: testing `quarantined` row by row would read
            // every message's sealed copy, which comes before it in the row.
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM queue_messages WHERE ?1
                 UNION SELECT id FROM queue_messages WHERE quarantined IS NOT NULL
                 UNION SELECT message_id FROM queue_recipients WHERE status IN ('queued', 'deferred')
                 ORDER BY 1 DESC",
            )?;
            let rows = stmt.query_map([all], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        ids.into_iter().map(|id| self.show(id)).collect()
    }

    fn show(&self, id: i64) -> Result<QueueEntry> {
        let mut entry = self
            .conn()
            .row(
                "SELECT id, direction, mail_from, message_id, received_at, size, quarantined FROM queue_messages WHERE id = ?1",
                [id],
                |r| {
                    Ok(QueueEntry {
                        id: r.get(0)?,
                        flow: r.get(1)?,
                        mail_from: r.get(2)?,
                        message_id: r.get(3)?,
                        received_at: r.get(4)?,
                        size: r.get(5)?,
                        quarantined: r.get(6)?,
                        recipients: Vec::new(),
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("queued message {id}")))?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT recipient, status, in_flight, attempts, next_attempt_at, last_error, updated_at
             FROM queue_recipients WHERE message_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(RecipientState {
                recipient: r.get(0)?,
                status: r.get(1)?,
                in_flight: r.get(2)?,
                attempts: r.get(3)?,
                next_attempt_at: r.get(4)?,
                last_error: r.get(5)?,
                updated_at: r.get(6)?,
            })
        })?;
        entry.recipients = rows.collect::<rusqlite::Result<_>>()?;
        Ok(entry)
    }

    fn retry(&self, id: i64, now: i64) -> Result<usize> {
        self.show(id)?;
        let kept: i64 =
            self.conn().row("SELECT length(sealed_data) FROM queue_messages WHERE id = ?1", [id], |r| r.get(0))?;
        if kept == 0 {
            return Err(StoreError::Conflict(format!(
                "message {id} was refused and only its reason was kept, not its content: it cannot be retried"
            )));
        }
        let tx = self.write()?;
        tx.run("UPDATE queue_messages SET quarantined = NULL WHERE id = ?1", [id])?;
        let n = tx.run(
            "UPDATE queue_recipients SET status = 'queued', next_attempt_at = ?2, crashes = 0, updated_at = ?2
             WHERE message_id = ?1 AND status IN ('queued', 'deferred', 'failed') AND in_flight = 0",
            params![id, now],
        )?;
        tx.commit()?;
        Ok(n)
    }

    fn remove(&self, id: i64) -> Result<()> {
        self.show(id)?;
        let tx = self.write()?;
        tx.run("DELETE FROM queue_messages WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    fn received_attachments(&self, recipient: Option<&str>) -> Result<Vec<ReceivedAttachment>> {
        let conn = self.conn();
        let mut stmt = match recipient {
            Some(_) => conn.prepare_cached(
                "SELECT recipient, message_id, field_open(filename), content_type, size, field_open(sha256), received_at
                 FROM received_attachments WHERE recipient = ?1 ORDER BY id DESC",
            )?,
            None => conn.prepare_cached(
                "SELECT recipient, message_id, field_open(filename), content_type, size, field_open(sha256), received_at
                 FROM received_attachments ORDER BY id DESC",
            )?,
        };
        let rows = stmt.query_map(rusqlite::params_from_iter(recipient), |r| {
            Ok(ReceivedAttachment {
                recipient: r.get(0)?,
                message_id: r.get(1)?,
                filename: r.get(2)?,
                content_type: r.get(3)?,
                size: r.get(4)?,
                sha256: r.get(5)?,
                received_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn received_since(&self, since: i64) -> Result<Vec<Received>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT message_id, recipient, sender, field_open(subject), kind, delivered_at, file FROM mailbox_deliveries
             WHERE delivered_at >= ?1 ORDER BY delivered_at DESC, rowid DESC",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok(Received {
                message_id: r.get(0)?,
                recipient: r.get(1)?,
                sender: r.get(2)?,
                subject: r.get(3)?,
                kind: r.get(4)?,
                delivered_at: r.get(5)?,
                file: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn delivered_before(&self, keys: [&str; 2], recipient: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .row(
                "SELECT file FROM mailbox_deliveries WHERE delivery_key IN (?1, ?2) AND recipient = ?3",
                params![keys[0], keys[1], recipient],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn message_id_reused(&self, message_id: &str, recipient: &str, keys: [&str; 2]) -> Result<bool> {
        Ok(self
            .conn()
            .row(
                "SELECT 1 FROM mailbox_deliveries WHERE message_id = ?1 AND recipient = ?2
                   AND delivery_key NOT IN (?3, ?4) LIMIT 1",
                params![message_id, recipient, keys[0], keys[1]],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn receipt_of(&self, queue_message: i64, recipient: &str) -> Result<Option<Receipt>> {
        receipts::receipt_of(self, queue_message, recipient)
    }

    fn needs_failure_notice(&self, key: tracking::Key) -> Result<bool> {
        tracking::needs_failure_notice(self, key)
    }

    fn failed(&self, key: tracking::Key, status: TrackStatus, why: &str, now: i64) -> Result<()> {
        tracking::failed(self, key, status, why, now)
    }

    fn record_notice(
        &self,
        original_message_id: Option<&str>,
        recipients: &[(String, Event)],
        arrival: &tracking::Arrival,
        now: i64,
    ) -> Result<Vec<(String, tracking::Effect)>> {
        tracking::record_notice(self, original_message_id, recipients, arrival, now)
    }

    fn released(&self, key: tracking::Key, note: &str, now: i64) -> Result<()> {
        tracking::released(self, key, note, now)
    }

    fn overdue(&self, now: i64, processed_after: i64, dispatched_after: i64) -> Result<Vec<tracking::Overdue>> {
        tracking::overdue(self, now, processed_after, dispatched_after)
    }

    fn track(&self, message_id: &str) -> Result<Vec<tracking::SentMessage>> {
        tracking::track(self, message_id)
    }

    fn sent_since(&self, since: i64) -> Result<Vec<tracking::SentMessage>> {
        tracking::sent_since(self, since)
    }
}

/// Records a mailbox delivery and the attachments it carried, with the recipient's outcome (a
/// crash before it is redone, and the redo finds the Maildir copy and does not deliver again).
fn record_delivery(tx: &Connection, delivery: &MailboxDelivery, now: i64) -> Result<()> {
    let MailboxDelivery { message_id, recipient, .. } = delivery;
    for a in &delivery.attachments {
        tx.run(
            "INSERT OR IGNORE INTO received_attachments
               (message_id, recipient, filename, content_type, size, sha256, received_at, att_key)
             VALUES (?1, ?2, field_seal(?3), ?4, ?5, field_seal(?6), ?7, field_index('attachment', ?3 || char(0) || ?6))",
            params![message_id, recipient, a.filename, a.content_type, a.size, a.sha256, now],
        )?;
    }
    tx.run(
        "INSERT OR IGNORE INTO mailbox_deliveries
           (delivery_key, message_id, recipient, delivered_at, file, sender, subject, kind, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, field_seal(?7), ?8, field_seal(?9))",
        params![
            delivery.delivery_key,
            message_id,
            recipient,
            now,
            delivery.file,
            delivery.sender,
            delivery.subject,
            delivery.kind,
            delivery.body
        ],
    )?;
    Ok(())
}

/// See `FinishWrite::ForgetRefusedContent` (after the outcome is written).
fn forget_refused_content(tx: &Connection, message_id: i64) -> Result<()> {
    tx.run(
        "UPDATE queue_messages SET sealed_data = x'' WHERE id = ?1 AND direction = 'inbound'
           AND EXISTS (SELECT 1 FROM queue_recipients WHERE message_id = ?1 AND status = 'failed')
           AND NOT EXISTS (SELECT 1 FROM queue_recipients WHERE message_id = ?1
                           AND status NOT IN ('delivered', 'failed'))",
        [message_id],
    )?;
    Ok(())
}

/// A message that was delivered into a hosted mailbox.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Received {
    pub message_id: String,
    pub recipient: String,
    /// The verified sender.
    pub sender: String,
    pub subject: String,
    /// "message", "mdn" or "dsn".
    pub kind: String,
    pub delivered_at: i64,
    pub file: String,
}

/// A message put into a hosted mailbox.
#[derive(Debug)]
pub(crate) struct MailboxDelivery {
    /// What identifies the message: a digest of its verified sender, Message-ID and content.
    pub delivery_key: String,
    /// The message's Message-ID (or its delivery key, when it had none).
    pub message_id: String,
    pub recipient: String,
    pub file: String,
    /// The verified sender.
    pub sender: String,
    pub subject: String,
    /// "message", "mdn" or "dsn".
    pub kind: &'static str,
    pub attachments: Vec<AttachmentRecord>,
    /// The message's text (its first text part that is not a file), for the API to show.
    pub body: String,
}

/// What is kept of an attachment of a delivered message: its name, type, size and digest.
#[derive(Debug)]
pub(crate) struct AttachmentRecord {
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

/// Inserts one message and its recipients (and, for an EHR's message, the tracking of each) in
/// the caller's transaction; returns its id.
pub(crate) fn insert_message(tx: &Connection, m: &NewMessage, now: i64) -> Result<i64> {
    tx.run(
        "INSERT INTO queue_messages (direction, mail_from, authenticated_as, message_id, received_at, size, sealed_data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![m.flow, m.mail_from, m.authenticated_as, m.message_id, now, m.size as i64, m.sealed_data],
    )?;
    let id = tx.last_insert_rowid();
    for r in &m.recipients {
        tx.run(
            "INSERT INTO queue_recipients (message_id, recipient, status, next_attempt_at, updated_at)
             VALUES (?1, ?2, 'queued', ?3, ?3)",
            params![id, r, now],
        )?;
    }
    if let Some(tracked) = &m.tracked {
        tracking::submitted(tx, &m.message_id, &m.mail_from, &m.recipients, tracked, now)?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Code;
    use crate::store::SqliteStore;

    /// A temporary failure, to be tried again at `retry_at`.
    fn later(text: &str, retry_at: i64) -> Outcome {
        Outcome::Deferred { failure: Failure::temporary(Code::CONNECTION, text), retry_at }
    }

    fn queue() -> (tempfile::TempDir, SqliteQueue) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        SqliteStore::create(&path, "test").unwrap();
        let q = SqliteQueue::open(&path).unwrap();
        (dir, q)
    }

    #[test]
    fn finished_messages_go_after_their_keeping_time_and_nothing_else_does() {
        let (_d, q) = queue();
        let ids = q
            .enqueue(
                &[
                    message(&["delivered@b.test"]),
                    message(&["failed@b.test"]),
                    message(&["done@b.test", "waiting@b.test"]),
                    message(&["quarantined@b.test"]),
                    message(&["in-flight@b.test"]),
                    message(&["recent@b.test"]),
                ],
                100,
            )
            .unwrap();
        let jobs = q.claim(100, 10).unwrap();
        let job = |r: &str| jobs.iter().find(|j| j.recipient == r).unwrap().recipient_id;
        q.finish(job("delivered@b.test"), &Outcome::Delivered("ok".into()), 200).unwrap();
        q.finish(job("failed@b.test"), &Outcome::Failed(Failure::permanent(Code::REFUSED, "refused")), 200).unwrap();
        q.finish(job("done@b.test"), &Outcome::Sent("250".into()), 200).unwrap();
        q.finish(job("waiting@b.test"), &later("421", 10_000), 200).unwrap();
        q.finish(job("quarantined@b.test"), &Outcome::Failed(Failure::permanent(Code::SYSTEM, "x")), 200).unwrap();
        q.quarantine(ids[3], "processing panicked", 200).unwrap();
        q.finish(job("recent@b.test"), &Outcome::Delivered("ok".into()), 900).unwrap();

        assert_eq!(q.purge_finished(200, 100).unwrap(), 0, "nothing changed before 200");
        assert_eq!(q.purge_finished(500, 100).unwrap(), 2);
        let left: Vec<i64> = q.list(true).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(left, vec![ids[5], ids[4], ids[3], ids[2]], "recent, in flight, quarantined, one waiting");
        let unfinished: Vec<i64> = q.list(false).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(unfinished, vec![ids[4], ids[3], ids[2]], "without --all: waiting, in flight or quarantined");
        let rows: i64 = q
            .conn()
            .row("SELECT count(*) FROM queue_recipients WHERE message_id IN (?1, ?2)", [ids[0], ids[1]], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "their recipients went with them");

        // In batches: the limit holds, and the next call takes the rest.
        q.finish(job("waiting@b.test"), &Outcome::Sent("250".into()), 300).unwrap();
        q.finish(job("in-flight@b.test"), &Outcome::Sent("250".into()), 300).unwrap();
        assert_eq!(q.purge_finished(1000, 1).unwrap(), 1);
        assert_eq!(q.purge_finished(1000, 10).unwrap(), 2);
        let left: Vec<i64> = q.list(true).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(left, vec![ids[3]], "only the quarantined message stays");
    }

    fn message(recipients: &[&str]) -> NewMessage {
        NewMessage {
            flow: Flow::Outbound,
            mail_from: "a@a.test".into(),
            authenticated_as: Some("a@a.test".into()),
            message_id: "<m1@a.test>".into(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            size: 3,
            sealed_data: b"xyz".to_vec(),
            tracked: None,
        }
    }

    #[test]
    fn a_failure_defers_or_fails_by_its_class_not_its_words() {
        let later = Failure::temporary(Code::DIRECTORY, "permanent-sounding words: refused, 5.1.1");
        assert!(matches!(Outcome::from(later), Outcome::Deferred { retry_at: 0, .. }));
        let never = Failure::permanent(Code::REFUSED, "try again later (4.4.1)");
        assert!(matches!(Outcome::from(never), Outcome::Failed(f) if f.status.to_string() == "5.7.1"));
    }

    #[test]
    fn recipients_are_claimed_once_and_finished_individually() {
        let (_d, q) = queue();
        let ids = q.enqueue(&[message(&["b@b.test", "c@c.test"])], 100).unwrap();
        let jobs = q.claim(100, 10).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].message.id, ids[0]);
        assert!(q.claim(100, 10).unwrap().is_empty(), "in flight: not claimed twice");
        q.finish(jobs[0].recipient_id, &Outcome::Sent("250 ok".into()), 101).unwrap();
        q.finish(jobs[1].recipient_id, &later("421", 160), 101).unwrap();
        assert!(q.claim(159, 10).unwrap().is_empty(), "not due yet");
        let again = q.claim(160, 10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        let entry = q.show(ids[0]).unwrap();
        assert_eq!(entry.recipients[0].status, "sent");
        assert_eq!(entry.recipients[1].last_error.as_deref(), Some("4.4.2 421"));
    }

    #[test]
    fn a_message_that_keeps_crashing_the_daemon_is_quarantined() {
        let (_d, q) = queue();
        let ids = q.enqueue(&[message(&["b@b.test"])], 100).unwrap();
        for round in 1..=3 {
            assert_eq!(q.claim(100, 10).unwrap().len(), 1, "round {round}");
            // The daemon dies here; the next start recovers.
            let (retried, quarantined) = q.recover(3, 100).unwrap();
            assert_eq!(retried, 1);
            assert_eq!(quarantined, usize::from(round == 3));
        }
        assert!(q.claim(100, 10).unwrap().is_empty());
        assert!(q.show(ids[0]).unwrap().quarantined.unwrap().contains("3 times"));
        assert_eq!(q.list(false).unwrap().len(), 1, "quarantined messages are listed");
        q.retry(ids[0], 200).unwrap();
        assert_eq!(q.claim(200, 10).unwrap().len(), 1);
    }

    #[test]
    fn claiming_as_time_passes_reuses_one_plan_on_the_waiting_index() {
        let (_d, q) = queue();
        for (i, now) in (100..110).enumerate() {
            q.enqueue(&[message(&["b@b.test"])], now).unwrap();
            let jobs = q.claim(now, 1).unwrap();
            assert_eq!(jobs.len(), 1, "claim {i}");
            q.finish(jobs[0].recipient_id, &later("421", now + 1000), now).unwrap();
        }
        let conn = q.conn();
        let stmt = conn.prepare_cached(&claim_sql(1)).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "planned once for ten claims");
        drop(stmt);
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", claim_sql(1)))
            .unwrap()
            .query_map([100], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(plan.iter().any(|p| p.contains("queue_waiting")), "{plan:?}");
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "no sort: {plan:?}");
    }

    #[test]
    fn finishing_a_recipient_claims_the_next_and_commits_its_writes_with_the_outcome() {
        let (_d, q) = queue();
        q.attach_fields(Arc::new(crate::store::fields::tests::Reversing)).unwrap();
        let ids = q.enqueue(&[message(&["b@b.test", "c@c.test", "e@e.test"])], 100).unwrap();
        let first = q.claim(100, 1).unwrap().remove(0);
        // The outcome's writes run in order, in the outcome's transaction: the receipt recorded
        // first is there for the MDN after it, which queues a message.
        let receipt = Receipt {
            delivery_key: "k1".into(),
            queue_message: ids[0],
            message_id: "<m1@a.test>".into(),
            recipient: "b@b.test".into(),
            sender: "a@a.test".into(),
            subject: "Referral".into(),
            final_delivery: false,
        };
        let at_finish = AtFinish::default();
        at_finish.add(FinishWrite::Opened(receipt.clone()));
        assert_eq!(at_finish.opened(ids[0], "b@b.test"), Some(receipt.clone()), "the writes to come are known");
        let mdn = message(&["d@d.test"]);
        at_finish.add(FinishWrite::Answered { receipt: receipt.clone(), disposition: Disposition::Processed, mdn });
        let (next, queued) =
            q.finish_and_claim(first.recipient_id, &Outcome::Sent("250 ok".into()), 101, at_finish, 1).unwrap();
        assert_eq!(queued, 1);
        assert_eq!(q.receipt_of(ids[0], "b@b.test").unwrap(), Some(receipt.clone()));
        assert_eq!(next.len(), 1, "the next due recipient, claimed in the same transaction");
        assert_eq!(next[0].recipient, "c@c.test");
        let left = q.claim(101, 10).unwrap();
        let names: Vec<&str> = left.iter().map(|j| j.recipient.as_str()).collect();
        assert_eq!(names, ["e@e.test", "d@d.test"], "the MDN queued at finish, after the one waiting");

        // The same MDN again queues nothing.
        let again = AtFinish::default();
        let mdn = message(&["d@d.test"]);
        again.add(FinishWrite::Answered { receipt, disposition: Disposition::Processed, mdn });
        let (_, queued) =
            q.finish_and_claim(next[0].recipient_id, &Outcome::Sent("250".into()), 102, again, 0).unwrap();
        assert_eq!(queued, 0, "an MDN is queued once");

        // A write that fails takes the outcome with it: the recipient stays in flight, unfinished.
        q.conn()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON mailbox_deliveries BEGIN SELECT RAISE(ABORT, 'no'); END",
            )
            .unwrap();
        let failing = AtFinish::default();
        failing.add(FinishWrite::Delivered(MailboxDelivery {
            delivery_key: "k2".into(),
            message_id: "<m1@a.test>".into(),
            recipient: "e@e.test".into(),
            file: "new/1".into(),
            sender: "a@a.test".into(),
            subject: String::new(),
            kind: "message",
            attachments: Vec::new(),
            body: String::new(),
        }));
        let err = q.finish_and_claim(left[0].recipient_id, &Outcome::Delivered("new/1".into()), 103, failing, 1);
        assert!(err.unwrap_err().to_string().contains("no"));
        let entry = q.show(ids[0]).unwrap();
        assert_eq!(entry.recipients[2].status, "queued", "{entry:?}");
        assert!(entry.recipients[2].in_flight, "{entry:?}");
    }

    #[test]
    fn a_durable_connection_syncs_the_wal_the_database_writes() {
        let (_d, q) = queue();
        let wal = q.durable.clone().expect("SqliteQueue::open makes commits durable");
        q.enqueue(&[message(&["b@b.test"])], 100).unwrap();
        // The file synced after each commit is the one SQLite wrote the commit to.
        assert!(std::fs::metadata(&wal).unwrap().len() > 0, "{}", wal.display());
        let journal: String = q.conn().row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(journal, "wal");
        let workers = q.workers();
        assert!(workers.durable.is_none(), "the workers' handle does not wait for the disk");
        assert!(Arc::ptr_eq(&workers.conn, &q.conn), "one connection for intake and workers");
    }
}
