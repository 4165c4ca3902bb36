//! Accounts of people who accepted invitations, and the connections between practices and the
//! practices and patients they work with. Accepting is one transaction: the invitation is
//! checked unchanged and still pending, the account (and a practice it registers) made or
//! found, the two sides connected, and the invitation closed as accepted.

use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::Serialize;

use super::cached::CachedSql;
use super::invitations::InvitationRecord;
use super::sqlite::{duplicate_as, SqliteStore};
use super::states::{AccountRole, InvitationState};
use super::{Result, StoreError};

/// An account as stored (its e-mail and name opened; its password hash never shown).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AccountRecord {
    pub id: i64,
    #[serde(skip)]
    pub practice_id: Option<i64>,
    /// The practice it is a member of (None: a patient).
    pub practice: Option<String>,
    pub role: AccountRole,
    pub name: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
}

/// A new account: its e-mail normalized, its password already hashed.
#[derive(Debug, Clone)]
pub(crate) struct NewAccount<'a> {
    pub role: AccountRole,
    pub name: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
}

/// Who accepts an invitation.
#[derive(Debug, Clone)]
pub(crate) enum Acceptor<'a> {
    /// A new member of the inviting practice.
    Member(NewAccount<'a>),
    /// A new patient.
    Patient(NewAccount<'a>),
    /// A new account of a practice it registers (name unique; profile as JSON).
    NewPractice { account: NewAccount<'a>, practice: &'a str, profile: &'a str },
    /// An account that exists: a patient, or a member of another practice.
    Existing(i64),
}

/// A practice and what it is connected to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectionRecord {
    pub id: i64,
    /// "practice" or "patient".
    pub kind: &'static str,
    /// The practice's name, or the patient's.
    pub name: String,
    pub since: i64,
}

pub(crate) trait AccountStore {
    /// Accepts `invitation` (as read, its version unchanged) for `acceptor`; returns the account.
    fn accept_invitation(&self, invitation: &InvitationRecord, acceptor: &Acceptor, now: i64) -> Result<AccountRecord>;
    fn account(&self, id: i64) -> Result<AccountRecord>;
    /// The account that signs in with `email` (normalized).
    fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>>;
    /// The members of a practice, by name.
    fn members(&self, practice_id: i64) -> Result<Vec<AccountRecord>>;
    /// What a practice is connected to, by name.
    fn connections(&self, practice_id: i64) -> Result<Vec<ConnectionRecord>>;
    /// The practices a patient is connected to, by name.
    fn patient_connections(&self, account_id: i64) -> Result<Vec<ConnectionRecord>>;
}

const ACCOUNT_COLUMNS: &str = "a.id, a.practice_id, p.name, a.role, field_open(a.name), field_open(a.email),
        a.password_hash, a.created_at";

fn account_row(r: &Row) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: r.get(0)?,
        practice_id: r.get(1)?,
        practice: r.get(2)?,
        role: r.get(3)?,
        name: r.get(4)?,
        email: r.get(5)?,
        password_hash: r.get(6)?,
        created_at: r.get(7)?,
    })
}

fn insert_account(
    tx: &Transaction,
    account: &NewAccount,
    practice_id: Option<i64>,
    invitation_id: i64,
    now: i64,
) -> Result<i64> {
    tx.run(
        "INSERT INTO accounts (practice_id, role, name, email, email_index, password_hash, invitation_id, created_at)
         VALUES (?1, ?2, field_seal(?3), field_seal(?4), field_index('account', ?4), ?5, ?6, ?7)",
        params![practice_id, account.role, account.name, account.email, account.password_hash, invitation_id, now],
    )
    .map_err(duplicate_as("an account with this e-mail address".into()))?;
    Ok(tx.last_insert_rowid())
}

/// Connects `practice_id` to a practice (both ways) or a patient; connecting again changes nothing.
fn connect(tx: &Transaction, practice_id: i64, peer: Peer, invitation_id: i64, now: i64) -> Result<()> {
    match peer {
        Peer::Practice(other) => {
            for (a, b) in [(practice_id, other), (other, practice_id)] {
                tx.run(
                    "INSERT OR IGNORE INTO connections (practice_id, peer_practice_id, invitation_id, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![a, b, invitation_id, now],
                )?;
            }
        }
        Peer::Patient(account) => {
            tx.run(
                "INSERT OR IGNORE INTO connections (practice_id, patient_id, invitation_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![practice_id, account, invitation_id, now],
            )?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Peer {
    Practice(i64),
    Patient(i64),
}

impl SqliteStore {
    fn account_in(tx: &Transaction, id: i64) -> Result<AccountRecord> {
        tx.row(
            &format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts a LEFT JOIN practices p ON p.id = a.practice_id WHERE a.id = ?1"
            ),
            [id],
            account_row,
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("account #{id}")))
    }

    /// Makes or checks the account, and what the inviting practice is connected to by it.
    fn acceptor_in(
        tx: &Transaction,
        invitation: &InvitationRecord,
        acceptor: &Acceptor,
        now: i64,
    ) -> Result<(i64, Option<Peer>)> {
        let inviting = invitation.practice_id;
        Ok(match acceptor {
            Acceptor::Member(account) => (insert_account(tx, account, Some(inviting), invitation.id, now)?, None),
            Acceptor::Patient(account) => {
                let id = insert_account(tx, account, None, invitation.id, now)?;
                (id, Some(Peer::Patient(id)))
            }
            Acceptor::NewPractice { account, practice, profile } => {
                let taken: Option<i64> = tx
                    .row("SELECT id FROM practices WHERE name = ?1 COLLATE NOCASE", [practice], |r| r.get(0))
                    .optional()?;
                if taken.is_some() {
                    return Err(StoreError::Duplicate(format!(
                        "practice {practice:?} (if it is yours, accept with an account of it)"
                    )));
                }
                tx.run(
                    "INSERT INTO practices (name, profile, created_at) VALUES (?1, ?2, ?3)",
                    params![practice, profile, now],
                )?;
                let practice_id = tx.last_insert_rowid();
                (insert_account(tx, account, Some(practice_id), invitation.id, now)?, Some(Peer::Practice(practice_id)))
            }
            Acceptor::Existing(id) => {
                let account = Self::account_in(tx, *id)?;
                let peer = match (account.role, account.practice_id) {
                    (AccountRole::Patient, _) => Peer::Patient(account.id),
                    (_, Some(p)) if p == inviting => {
                        return Err(StoreError::Conflict(format!(
                            "this account is already a member of {}",
                            invitation.practice
                        )))
                    }
                    (_, Some(p)) => Peer::Practice(p),
                    (_, None) => return Err(StoreError::Conflict("this account belongs to no practice".into())),
                };
                (account.id, Some(peer))
            }
        })
    }
}

impl AccountStore for SqliteStore {
    fn accept_invitation(&self, invitation: &InvitationRecord, acceptor: &Acceptor, now: i64) -> Result<AccountRecord> {
        let subject = format!("invitation #{}", invitation.id);
        let detail = format!("{} of {}", invitation.relationship, invitation.practice);
        let id = self.change("invitation.accept", &subject, &detail, |tx| {
            let (account_id, peer) = Self::acceptor_in(tx, invitation, acceptor, now)?;
            if let Some(peer) = peer {
                connect(tx, invitation.practice_id, peer, invitation.id, now)?;
            }
            let closed = tx.run(
                "UPDATE invitations SET state = ?2, accepted_by = ?3, next_due_at = NULL, closed_at = ?4,
                     updated_at = ?4, version = version + 1
                 WHERE id = ?1 AND version = ?5 AND state = 'pending'",
                params![invitation.id, InvitationState::Accepted, account_id.to_string(), now, invitation.version],
            )?;
            if closed == 0 {
                return Err(StoreError::Conflict(format!("{subject} changed meanwhile; try again")));
            }
            // What was held for the invitee is theirs now (into their mailbox next).
            tx.run(
                "UPDATE held_messages SET account_id = ?2, released_at = ?3 WHERE invitation_id = ?1
                   AND released_at IS NULL",
                params![invitation.id, account_id, now],
            )?;
            tx.run(
                "UPDATE invitation_notices SET state = 'failed', next_attempt_at = NULL, last_error = 'accepted'
                 WHERE invitation_id = ?1 AND state IN ('queued', 'retrying') AND kind IN ('invitation', 'reminder')",
                [invitation.id],
            )?;
            tx.run(
                "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, 'account.add', ?3, ?4)",
                params![now, self.actor, format!("account #{account_id}"), format!("by {subject}")],
            )?;
            Ok(account_id)
        })?;
        self.account(id)
    }

    fn account(&self, id: i64) -> Result<AccountRecord> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a LEFT JOIN practices p ON p.id = a.practice_id WHERE a.id = ?1"
        ))?;
        stmt.query_row([id], account_row).optional()?.ok_or_else(|| StoreError::NotFound(format!("account #{id}")))
    }

    fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a LEFT JOIN practices p ON p.id = a.practice_id
             WHERE a.email_index = field_index('account', ?1)"
        ))?;
        Ok(stmt.query_row([email], account_row).optional()?)
    }

    fn members(&self, practice_id: i64) -> Result<Vec<AccountRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a LEFT JOIN practices p ON p.id = a.practice_id
             WHERE a.practice_id = ?1"
        ))?;
        let mut out: Vec<AccountRecord> =
            stmt.query_map([practice_id], account_row)?.collect::<rusqlite::Result<_>>()?;
        out.sort_by_key(|a| (a.name.to_lowercase(), a.id));
        Ok(out)
    }

    fn connections(&self, practice_id: i64) -> Result<Vec<ConnectionRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, CASE WHEN c.peer_practice_id IS NULL THEN 'patient' ELSE 'practice' END,
                    coalesce(p.name, field_open(a.name)), c.created_at
             FROM connections c LEFT JOIN practices p ON p.id = c.peer_practice_id
                  LEFT JOIN accounts a ON a.id = c.patient_id
             WHERE c.practice_id = ?1",
        )?;
        let rows = stmt.query_map([practice_id], |r| {
            let kind: String = r.get(1)?;
            Ok(ConnectionRecord {
                id: r.get(0)?,
                kind: if kind == "patient" { "patient" } else { "practice" },
                name: r.get(2)?,
                since: r.get(3)?,
            })
        })?;
        let mut out: Vec<ConnectionRecord> = rows.collect::<rusqlite::Result<_>>()?;
        out.sort_by_key(|c| c.name.to_lowercase());
        Ok(out)
    }

    fn patient_connections(&self, account_id: i64) -> Result<Vec<ConnectionRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, p.name, c.created_at
             FROM connections c JOIN practices p ON p.id = c.practice_id
             WHERE c.patient_id = ?1 ORDER BY p.name COLLATE NOCASE",
        )?;
        let rows = stmt.query_map([account_id], |r| {
            Ok(ConnectionRecord { id: r.get(0)?, kind: "practice", name: r.get(1)?, since: r.get(2)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
