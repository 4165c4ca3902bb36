//! What the store keeps of invitations (Refer & Share): each invitation with its sealed invitee
//! and code, and the notices to send about it, each retried until sent or given up. Times come
//! from the caller (the node's clock), so the schedule can be tested at any instant.

use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::Serialize;

use super::cached::CachedSql;
use super::sqlite::SqliteStore;
use super::states::{ContactKind, InvitationState, NoticeKind, NoticeState, Relationship, Role};
use super::{Result, StoreError};

/// An invitation to record; its texts already checked (`invitations::invitee`).
#[derive(Debug, Clone)]
pub(crate) struct NewInvitation<'a> {
    pub practice_id: i64,
    /// Who sent it: a practice user's address, or the CLI's or an API token's actor.
    pub inviter: &'a str,
    pub relationship: Relationship,
    pub role: Option<Role>,
    pub name: &'a str,
    pub contact_kind: ContactKind,
    /// Normalized: an e-mail address in lower case, or a fax number in E.164 form.
    pub contact: &'a str,
    /// YYYY-MM-DD, for a patient.
    pub date_of_birth: Option<&'a str>,
    /// Normalized (`invitations::code`).
    pub code: &'a str,
    /// When the first reminder is due.
    pub next_due_at: i64,
    /// An invitation this one replaces (a date of birth edited): cancelled with it.
    pub replaces: Option<i64>,
    pub now: i64,
}

/// An invitation as stored, its sealed fields opened.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InvitationRecord {
    pub id: i64,
    #[serde(skip)]
    pub practice_id: i64,
    pub practice: String,
    pub inviter: String,
    pub relationship: Relationship,
    pub role: Option<Role>,
    pub name: String,
    pub contact_kind: ContactKind,
    pub contact: String,
    pub date_of_birth: Option<String>,
    /// Never shown: it goes only to the invitee.
    #[serde(skip)]
    pub code: String,
    pub state: InvitationState,
    /// Reminders sent, by the schedule and by hand.
    pub reminders: u32,
    /// Scheduled reminders passed (0 to 3).
    pub steps_done: u32,
    /// The next scheduled reminder or the expiry (pending invitations only).
    pub next_due_at: Option<i64>,
    pub dob_failures: u32,
    /// How the latest notice went.
    pub notice: NoticeState,
    pub replaces: Option<i64>,
    pub accepted_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    /// Bumped by every save; a save based on an older version is refused.
    #[serde(skip)]
    pub version: i64,
}

/// Which of a practice's invitations to list, newest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct InvitationFilter {
    pub state: Option<InvitationState>,
    /// Only pending ones whose latest notice failed.
    pub notification_failed: bool,
    /// Only pending ones reminded at least once (true) or never (false).
    pub reminded: Option<bool>,
    /// Ids below this (the next page).
    pub before: Option<i64>,
    pub limit: usize,
}

/// A notice about an invitation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NoticeRecord {
    pub id: i64,
    #[serde(skip)]
    pub invitation_id: i64,
    pub kind: NoticeKind,
    pub state: NoticeState,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    /// Where it went, masked (`***@example.org`, `fax ***0123`).
    pub sent_to: Option<String>,
    pub sent_at: Option<i64>,
    pub created_at: i64,
}

/// What became of one attempt to send a notice.
#[derive(Debug, Clone)]
pub(crate) enum NoticeOutcome<'a> {
    Sent {
        to: &'a str,
    },
    /// Failed; tried again at `at`.
    Retry {
        error: &'a str,
        at: i64,
    },
    /// Failed for good (or too often): the invitation shows it.
    GiveUp {
        error: &'a str,
    },
}

/// What the store keeps of invitations. Every change writes an audit entry in its transaction.
pub(crate) trait InvitationStore {
    /// Records an invitation and queues its notice; cancels the practice's pending invitations
    /// of the same person (and the one it `replaces`). Refused with `TooMany` when the practice
    /// sent `per_hour` invitations in the last hour.
    fn add_invitation(&self, new: &NewInvitation, per_hour: usize) -> Result<InvitationRecord>;
    fn invitations(&self, practice_id: i64, filter: &InvitationFilter) -> Result<Vec<InvitationRecord>>;
    fn invitation(&self, practice_id: i64, id: i64) -> Result<InvitationRecord>;
    /// The practice's pending invitation of `contact` (normalized), if any.
    fn pending_invitation(&self, practice_id: i64, contact: &str) -> Result<Option<InvitationRecord>>;
    /// The invitation a code (normalized) belongs to, of any practice.
    fn invitation_by_code(&self, code: &str) -> Result<Option<InvitationRecord>>;
    /// Saves a changed invitation if nobody saved another since it was read, queueing `notices`
    /// with it; once it is no longer pending, its unsent invitation and reminders are withdrawn.
    fn save_invitation(&self, record: &InvitationRecord, notices: &[NoticeKind], action: &str, now: i64) -> Result<()>;
    /// Pending invitations whose next reminder or expiry is due, oldest due first.
    fn due_invitations(&self, now: i64, limit: usize) -> Result<Vec<InvitationRecord>>;
    /// Notices due to be sent (first tries and retries), each with its invitation.
    fn due_notices(&self, now: i64, limit: usize) -> Result<Vec<(NoticeRecord, InvitationRecord)>>;
    /// Records an attempt to send a notice, and shows it on the invitation.
    fn record_notice(&self, notice_id: i64, outcome: &NoticeOutcome, now: i64) -> Result<()>;
    /// An invitation's notices, oldest first.
    fn notices(&self, invitation_id: i64) -> Result<Vec<NoticeRecord>>;
}

const INVITATION_COLUMNS: &str = "i.id, i.practice_id, p.name, i.inviter, i.relationship, i.role,
        field_open(i.name), i.contact_kind, field_open(i.contact), field_open(i.date_of_birth), field_open(i.code),
        i.state, i.reminders, i.steps_done, i.next_due_at, i.dob_failures, i.notice, i.replaces, i.accepted_by,
        i.created_at, i.updated_at, i.closed_at, i.version";

fn invitation_row(r: &Row) -> rusqlite::Result<InvitationRecord> {
    Ok(InvitationRecord {
        id: r.get(0)?,
        practice_id: r.get(1)?,
        practice: r.get(2)?,
        inviter: r.get(3)?,
        relationship: r.get(4)?,
        role: r.get(5)?,
        name: r.get(6)?,
        contact_kind: r.get(7)?,
        contact: r.get(8)?,
        date_of_birth: r.get(9)?,
        code: r.get(10)?,
        state: r.get(11)?,
        reminders: r.get(12)?,
        steps_done: r.get(13)?,
        next_due_at: r.get(14)?,
        dob_failures: r.get(15)?,
        notice: r.get(16)?,
        replaces: r.get(17)?,
        accepted_by: r.get(18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
        closed_at: r.get(21)?,
        version: r.get(22)?,
    })
}

const NOTICE_COLUMNS: &str = "n.id, n.invitation_id, n.kind, n.state, n.attempts, n.next_attempt_at,
        n.last_error, n.sent_to, n.sent_at, n.created_at";

fn notice_row(r: &Row) -> rusqlite::Result<NoticeRecord> {
    Ok(NoticeRecord {
        id: r.get(0)?,
        invitation_id: r.get(1)?,
        kind: r.get(2)?,
        state: r.get(3)?,
        attempts: r.get(4)?,
        next_attempt_at: r.get(5)?,
        last_error: r.get(6)?,
        sent_to: r.get(7)?,
        sent_at: r.get(8)?,
        created_at: r.get(9)?,
    })
}

/// The audit subject of an invitation: its number, never the invitee.
fn subject(id: i64) -> String {
    format!("invitation #{id}")
}

fn queue_notice(tx: &Transaction, invitation_id: i64, kind: NoticeKind, now: i64) -> Result<()> {
    tx.run(
        "INSERT INTO invitation_notices (invitation_id, kind, state, next_attempt_at, created_at)
         VALUES (?1, ?2, 'queued', ?3, ?3)",
        params![invitation_id, kind, now],
    )?;
    tx.run("UPDATE invitations SET notice = 'queued' WHERE id = ?1", [invitation_id])?;
    Ok(())
}

/// Closes the pending invitations `ids` as cancelled, withdrawing their unsent notices.
fn cancel_pending(tx: &Transaction, ids: &[i64], now: i64) -> Result<()> {
    for id in ids {
        tx.run(
            "UPDATE invitations SET state = 'cancelled', next_due_at = NULL, closed_at = ?2, updated_at = ?2,
                 version = version + 1
             WHERE id = ?1 AND state = 'pending'",
            params![id, now],
        )?;
        withdraw_notices(tx, *id, now)?;
    }
    Ok(())
}

/// Notices not sent yet of an invitation that is no longer pending are never sent.
fn withdraw_notices(tx: &Transaction, invitation_id: i64, now: i64) -> Result<()> {
    tx.run(
        "UPDATE invitation_notices SET state = 'failed', next_attempt_at = NULL, last_error = ?2
         WHERE invitation_id = ?1 AND state IN ('queued', 'retrying') AND kind IN ('invitation', 'reminder')",
        params![invitation_id, format!("withdrawn at {}", crate::clock::iso8601(now))],
    )?;
    Ok(())
}

impl InvitationStore for SqliteStore {
    fn add_invitation(&self, new: &NewInvitation, per_hour: usize) -> Result<InvitationRecord> {
        let detail = format!("{} by {}", new.relationship, new.inviter);
        let id = self.change("invitation.send", &format!("practice id {}", new.practice_id), &detail, |tx| {
            let recent: i64 = tx.row(
                "SELECT count(*) FROM invitations WHERE practice_id = ?1 AND created_at > ?2",
                params![new.practice_id, new.now - 3600],
                |r| r.get(0),
            )?;
            if recent as usize >= per_hour {
                return Err(StoreError::TooMany(format!(
                    "this practice sent {recent} invitations in the last hour (at most {per_hour}); try again later"
                )));
            }
            let mut earlier: Vec<i64> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id FROM invitations WHERE practice_id = ?1 AND state = 'pending'
                       AND contact_index = field_index('invitee', ?1 || ':' || ?2)",
                )?;
                let rows = stmt.query_map(params![new.practice_id, new.contact], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            if let Some(replaced) = new.replaces {
                earlier.push(replaced);
            }
            cancel_pending(tx, &earlier, new.now)?;
            tx.run(
                "INSERT INTO invitations (practice_id, inviter, relationship, role, name, contact_kind, contact,
                     contact_index, date_of_birth, code, code_index, state, next_due_at, notice, replaces,
                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, field_seal(?5), ?6, field_seal(?7), field_index('invitee', ?1 || ':' || ?7),
                     field_seal(?8), field_seal(?9), field_index('invitation-code', ?9), 'pending', ?10, 'queued',
                     ?11, ?12, ?12)",
                params![
                    new.practice_id,
                    new.inviter,
                    new.relationship,
                    new.role,
                    new.name,
                    new.contact_kind,
                    new.contact,
                    new.date_of_birth,
                    new.code,
                    new.next_due_at,
                    new.replaces,
                    new.now
                ],
            )
            .map_err(super::sqlite::duplicate_as("an invitation with this code".into()))?;
            let id = tx.last_insert_rowid();
            queue_notice(tx, id, NoticeKind::Invitation, new.now)?;
            // Mail held for the person waits for the new invitation instead.
            for replaced in &earlier {
                tx.run(
                    "UPDATE held_messages SET invitation_id = ?2 WHERE invitation_id = ?1 AND released_at IS NULL",
                    params![replaced, id],
                )?;
            }
            for cancelled in &earlier {
                tx.run(
                    "INSERT INTO audit_log (at, actor, action, subject, detail)
                     VALUES (?1, ?2, 'invitation.cancel', ?3, ?4)",
                    params![new.now, self.actor, subject(*cancelled), format!("replaced by invitation #{id}")],
                )?;
            }
            Ok(id)
        })?;
        self.invitation(new.practice_id, id)
    }

    fn invitations(&self, practice_id: i64, f: &InvitationFilter) -> Result<Vec<InvitationRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations i JOIN practices p ON p.id = i.practice_id
             WHERE i.practice_id = ?1 AND (?2 IS NULL OR i.state = ?2) AND i.id < ?3
               AND (?4 = 0 OR (i.state = 'pending' AND i.notice = 'failed'))
               AND (?5 IS NULL OR (i.state = 'pending' AND (i.reminders > 0) = ?5))
             ORDER BY i.id DESC LIMIT ?6"
        ))?;
        let rows = stmt.query_map(
            params![
                practice_id,
                f.state,
                f.before.unwrap_or(i64::MAX),
                f.notification_failed,
                f.reminded,
                f.limit as i64
            ],
            invitation_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn invitation(&self, practice_id: i64, id: i64) -> Result<InvitationRecord> {
        let mut stmt =
            self.conn.prepare_cached(&format!("SELECT {INVITATION_COLUMNS} FROM invitations i JOIN practices p ON p.id = i.practice_id WHERE i.id = ?1 AND i.practice_id = ?2"))?;
        stmt.query_row(params![id, practice_id], invitation_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(subject(id)))
    }

    fn pending_invitation(&self, practice_id: i64, contact: &str) -> Result<Option<InvitationRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations i JOIN practices p ON p.id = i.practice_id
             WHERE i.practice_id = ?1 AND i.state = 'pending'
               AND i.contact_index = field_index('invitee', ?1 || ':' || ?2)
             ORDER BY i.id DESC LIMIT 1"
        ))?;
        Ok(stmt.query_row(params![practice_id, contact], invitation_row).optional()?)
    }

    fn invitation_by_code(&self, code: &str) -> Result<Option<InvitationRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {INVITATION_COLUMNS} FROM invitations i JOIN practices p ON p.id = i.practice_id WHERE i.code_index = field_index('invitation-code', ?1)"))?;
        Ok(stmt.query_row([code], invitation_row).optional()?)
    }

    fn save_invitation(&self, record: &InvitationRecord, notices: &[NoticeKind], action: &str, now: i64) -> Result<()> {
        let mut detail = record.state.to_string();
        for kind in notices {
            detail.push_str(&format!("; {kind} queued"));
        }
        self.change(action, &subject(record.id), &detail, |tx| {
            let saved = tx.run(
                "UPDATE invitations SET state = ?2, reminders = ?3, steps_done = ?4, next_due_at = ?5,
                     dob_failures = ?6, accepted_by = ?7, closed_at = ?8, updated_at = ?9, version = version + 1
                 WHERE id = ?1 AND version = ?10",
                params![
                    record.id,
                    record.state,
                    record.reminders,
                    record.steps_done,
                    record.next_due_at,
                    record.dob_failures,
                    record.accepted_by,
                    record.closed_at,
                    now,
                    record.version
                ],
            )?;
            if saved == 0 {
                return Err(StoreError::Conflict(format!(
                    "{} changed while this step ran; look again and retry",
                    subject(record.id)
                )));
            }
            if record.state != InvitationState::Pending {
                withdraw_notices(tx, record.id, now)?;
            }
            for kind in notices {
                queue_notice(tx, record.id, *kind, now)?;
            }
            Ok(())
        })
    }

    fn due_invitations(&self, now: i64, limit: usize) -> Result<Vec<InvitationRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations i JOIN practices p ON p.id = i.practice_id WHERE i.state = 'pending' AND i.next_due_at <= ?1 ORDER BY i.next_due_at LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now, limit as i64], invitation_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn due_notices(&self, now: i64, limit: usize) -> Result<Vec<(NoticeRecord, InvitationRecord)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {NOTICE_COLUMNS} FROM invitation_notices n WHERE n.state IN ('queued', 'retrying') AND n.next_attempt_at <= ?1
             ORDER BY n.next_attempt_at LIMIT ?2"
        ))?;
        let notices: Vec<NoticeRecord> =
            stmt.query_map(params![now, limit as i64], notice_row)?.collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(notices.len());
        let mut by_id = self.conn.prepare_cached(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations i JOIN practices p ON p.id = i.practice_id WHERE i.id = ?1"
        ))?;
        for notice in notices {
            let invitation = by_id.query_row([notice.invitation_id], invitation_row)?;
            out.push((notice, invitation));
        }
        Ok(out)
    }

    fn record_notice(&self, notice_id: i64, outcome: &NoticeOutcome, now: i64) -> Result<()> {
        let (action, detail) = match outcome {
            NoticeOutcome::Sent { to } => ("invitation.notice.sent", format!("notice #{notice_id} to {to}")),
            NoticeOutcome::Retry { error, at } => (
                "invitation.notice.retry",
                format!("notice #{notice_id}: {error}; again at {}", crate::clock::iso8601(*at)),
            ),
            NoticeOutcome::GiveUp { error } => ("invitation.notice.failed", format!("notice #{notice_id}: {error}")),
        };
        let invitation_id: i64 = self
            .conn
            .row("SELECT invitation_id FROM invitation_notices WHERE id = ?1", [notice_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("notice #{notice_id}")))?;
        self.change(action, &subject(invitation_id), &detail, |tx| {
            let (state, next, error, to, sent_at) = match outcome {
                NoticeOutcome::Sent { to } => (NoticeState::Sent, None, None, Some(*to), Some(now)),
                NoticeOutcome::Retry { error, at } => (NoticeState::Retrying, Some(*at), Some(*error), None, None),
                NoticeOutcome::GiveUp { error } => (NoticeState::Failed, None, Some(*error), None, None),
            };
            tx.run(
                "UPDATE invitation_notices SET state = ?2, attempts = attempts + 1, next_attempt_at = ?3,
                     last_error = coalesce(?4, last_error), sent_to = ?5, sent_at = ?6
                 WHERE id = ?1",
                params![notice_id, state, next, error, to, sent_at],
            )?;
            tx.run("UPDATE invitations SET notice = ?2 WHERE id = ?1", params![invitation_id, state])?;
            Ok(())
        })
    }

    fn notices(&self, invitation_id: i64) -> Result<Vec<NoticeRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {NOTICE_COLUMNS} FROM invitation_notices n WHERE n.invitation_id = ?1 ORDER BY n.id"
        ))?;
        let rows = stmt.query_map([invitation_id], notice_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
