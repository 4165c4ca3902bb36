//! What the portal keeps: how each account signs in (failures and a lock, a TOTP secret sealed
//! under the KEK, recovery codes as keyed blind indexes), its sessions (the token's SHA-256
//! digest, never the token) and one-time links to set a password (also digests).

use rusqlite::{params, OptionalExtension, Transaction};

use super::accounts::AccountRecord;
use super::cached::CachedSql;
use super::sqlite::{duplicate_as, SqliteStore};
use super::states::{AccountRole, SessionStage};
use super::{Result, StoreError};

/// How an account signs in, besides what `AccountRecord` says.
#[derive(Debug, Clone)]
pub(crate) struct SignInState {
    pub account: AccountRecord,
    /// None until its one-time link has set one.
    pub password_hash: Option<String>,
    pub failed_signins: u32,
    pub locked_until: Option<i64>,
    /// The TOTP secret (RFC 4648 base 32), enrolled or being enrolled.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    /// Its practice requires a second factor.
    pub two_factor_required: bool,
    pub recovery_codes_left: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionRecord {
    pub id: i64,
    pub account_id: i64,
    pub stage: SessionStage,
    pub csrf: String,
    pub created_at: i64,
    pub seen_at: i64,
}

/// A session to start: its token's digest and its form token.
#[derive(Debug, Clone)]
pub(crate) struct NewSession<'a> {
    pub token_hash: &'a str,
    pub account_id: i64,
    pub stage: SessionStage,
    pub csrf: &'a str,
}

/// What using a one-time link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkState {
    Valid,
    Used,
    Expired,
}

pub(crate) trait PortalStore {
    /// A new account of `practice_id` made by its admin or the operator; no password until its
    /// one-time link sets one.
    fn add_account(
        &self,
        practice_id: i64,
        role: AccountRole,
        name: &str,
        email: &str,
        now: i64,
    ) -> Result<AccountRecord>;
    fn sign_in_state(&self, account: i64) -> Result<SignInState>;
    /// One more failed sign-in; `lock` says for how long the account locks after that many
    /// failures in a row (None: not yet). Returns the count and the lock's end.
    fn sign_in_failed(&self, account: i64, lock: &dyn Fn(u32) -> Option<i64>, now: i64) -> Result<(u32, Option<i64>)>;
    /// A session starts for `session.account_id` (replacing `previous`, the session that came
    /// this far); its failures are forgotten. `action` names it in the audit log.
    fn start_session(&self, session: &NewSession, previous: Option<i64>, action: &str, now: i64) -> Result<()>;
    fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>>;
    fn touch_session(&self, id: i64, now: i64) -> Result<()>;
    fn end_session(&self, id: i64) -> Result<()>;
    /// Sessions idle since before `idle_before` or started before `started_before` are deleted.
    fn purge_sessions(&self, idle_before: i64, started_before: i64) -> Result<usize>;
    /// A new one-time link for `account`; its earlier unused ones stop working.
    fn add_link(&self, account: i64, token_hash: &str, expires_at: i64, now: i64) -> Result<()>;
    /// The account a link is for, and whether it still works.
    fn link(&self, token_hash: &str, now: i64) -> Result<Option<(AccountRecord, LinkState)>>;
    /// Sets the password through a working link, which is used up; the account's sessions end and
    /// its lock is lifted.
    fn set_password_by_link(&self, token_hash: &str, password_hash: &str, now: i64) -> Result<AccountRecord>;
    /// Keeps `secret` (base 32) as the account's TOTP secret being enrolled.
    fn begin_totp(&self, account: i64, secret: &str) -> Result<()>;
    /// The secret being enrolled is confirmed by a code of `step`: two factors from now on, with
    /// these recovery codes (any earlier ones stop working).
    fn enable_totp(&self, account: i64, step: i64, recovery_codes: &[String], now: i64) -> Result<()>;
    /// Records `step` as used; false when it (or a later one) was already.
    fn use_totp_step(&self, account: i64, step: i64) -> Result<bool>;
    /// Uses up a recovery code; false when it is not one of the account's unused codes.
    fn use_recovery_code(&self, account: i64, code: &str, now: i64) -> Result<bool>;
    fn replace_recovery_codes(&self, account: i64, codes: &[String], now: i64) -> Result<()>;
    /// Two-factor off (the operator's reset, or the account's own choice where allowed): secret,
    /// codes and sessions gone.
    fn reset_totp(&self, account: i64) -> Result<()>;
    fn unlock_account(&self, account: i64) -> Result<()>;
    fn set_two_factor_required(&self, practice_id: i64, required: bool) -> Result<()>;
    fn set_invitations_allowed(&self, practice_id: i64, allowed: bool) -> Result<()>;
    /// A member's role (clinician, staff, admin); a practice keeps at least one admin once it
    /// has one.
    fn set_role(&self, practice_id: i64, account: i64, role: AccountRole) -> Result<()>;
    /// An entry in the audit log (a sign-out, a message read, a file downloaded).
    fn record(&self, action: &str, subject: &str, detail: &str) -> Result<()>;
    /// `account` sent the Direct message `message_id` as its practice.
    fn record_direct_sent(&self, account: i64, message_id: &str, now: i64) -> Result<()>;
    /// The Direct messages `account` sent, newest first: (Message-ID, when).
    fn direct_sent(&self, account: i64, limit: usize) -> Result<Vec<(String, i64)>>;
}

fn recovery_key(account: i64, code: &str) -> String {
    format!("{account}:{code}")
}

fn insert_recovery_codes(tx: &Transaction, account: i64, codes: &[String]) -> Result<()> {
    tx.run("DELETE FROM recovery_codes WHERE account_id = ?1", [account])?;
    for code in codes {
        tx.run(
            "INSERT INTO recovery_codes (account_id, code_index) VALUES (?1, field_index('recovery', ?2))",
            params![account, recovery_key(account, code)],
        )?;
    }
    Ok(())
}

/// A practice's yes-or-no settings: the column, the audit action, what on and off are called.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PracticeFlag {
    TwoFactorRequired,
    InvitationsAllowed,
    InviteUnreachable,
}

impl PracticeFlag {
    fn sql(self) -> &'static str {
        match self {
            PracticeFlag::TwoFactorRequired => "UPDATE practices SET two_factor_required = ?2 WHERE id = ?1",
            PracticeFlag::InvitationsAllowed => "UPDATE practices SET invitations_allowed = ?2 WHERE id = ?1",
            PracticeFlag::InviteUnreachable => "UPDATE practices SET invite_unreachable = ?2 WHERE id = ?1",
        }
    }

    fn audit(self, on: bool) -> (&'static str, &'static str) {
        match self {
            PracticeFlag::TwoFactorRequired => ("practice.two-factor", if on { "required" } else { "optional" }),
            PracticeFlag::InvitationsAllowed => ("practice.invitations", if on { "allowed" } else { "not allowed" }),
            PracticeFlag::InviteUnreachable => ("practice.invite-unreachable", if on { "on" } else { "off" }),
        }
    }
}

impl SqliteStore {
    /// Sets one of a practice's flags, with its audit entry.
    pub(super) fn set_practice_flag(&self, practice_id: i64, flag: PracticeFlag, on: bool) -> Result<()> {
        let (action, detail) = flag.audit(on);
        self.change(action, &format!("practice id {practice_id}"), detail, |tx| {
            if tx.run(flag.sql(), params![practice_id, on])? == 0 {
                return Err(StoreError::NotFound(format!("practice id {practice_id}")));
            }
            Ok(())
        })
    }
}

fn one_account(changed: usize, account: i64) -> Result<()> {
    if changed == 0 {
        return Err(StoreError::NotFound(format!("account #{account}")));
    }
    Ok(())
}

impl PortalStore for SqliteStore {
    fn add_account(
        &self,
        practice_id: i64,
        role: AccountRole,
        name: &str,
        email: &str,
        now: i64,
    ) -> Result<AccountRecord> {
        let id = self.change("account.add", &format!("practice id {practice_id}"), role.as_str(), |tx| {
            tx.run(
                "INSERT INTO accounts (practice_id, role, name, email, email_index, password_hash, created_at)
                 VALUES (?1, ?2, field_seal(?3), field_seal(?4), field_index('account', ?4), '', ?5)",
                params![practice_id, role, name, email, now],
            )
            .map_err(duplicate_as("an account with this e-mail address".into()))?;
            Ok(tx.last_insert_rowid())
        })?;
        super::AccountStore::account(self, id)
    }

    fn sign_in_state(&self, account: i64) -> Result<SignInState> {
        let record = super::AccountStore::account(self, account)?;
        let row = self.conn.row(
            "SELECT a.failed_signins, a.locked_until, field_open(a.totp_secret), a.totp_enabled_at IS NOT NULL,
                    a.totp_last_step, coalesce(p.two_factor_required, 0),
                    (SELECT count(*) FROM recovery_codes r WHERE r.account_id = a.id AND r.used_at IS NULL)
             FROM accounts a LEFT JOIN practices p ON p.id = a.practice_id WHERE a.id = ?1",
            [account],
            |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, u32>(6)?,
                ))
            },
        )?;
        let (failed_signins, locked_until, totp_secret, totp_enabled, totp_last_step, required, left) = row;
        Ok(SignInState {
            password_hash: Some(record.password_hash.clone()).filter(|h| !h.is_empty()),
            account: record,
            failed_signins,
            locked_until,
            totp_secret,
            totp_enabled,
            totp_last_step,
            two_factor_required: required,
            recovery_codes_left: left,
        })
    }

    fn sign_in_failed(&self, account: i64, lock: &dyn Fn(u32) -> Option<i64>, now: i64) -> Result<(u32, Option<i64>)> {
        self.change("account.sign-in-failed", &format!("account #{account}"), "", |tx| {
            let failures: u32 = tx
                .row("SELECT failed_signins FROM accounts WHERE id = ?1", [account], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("account #{account}")))?;
            let failures = failures.saturating_add(1);
            let until = lock(failures).map(|secs| now + secs);
            tx.run(
                "UPDATE accounts SET failed_signins = ?2, locked_until = coalesce(?3, locked_until) WHERE id = ?1",
                params![account, failures, until],
            )?;
            Ok((failures, until))
        })
    }

    fn start_session(&self, session: &NewSession, previous: Option<i64>, action: &str, now: i64) -> Result<()> {
        let subject = format!("account #{}", session.account_id);
        self.change(action, &subject, session.stage.as_str(), |tx| {
            if let Some(previous) = previous {
                tx.run("DELETE FROM web_sessions WHERE id = ?1", [previous])?;
            }
            tx.run("UPDATE accounts SET failed_signins = 0, locked_until = NULL WHERE id = ?1", [session.account_id])?;
            tx.run(
                "INSERT INTO web_sessions (token_hash, account_id, stage, csrf, created_at, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![session.token_hash, session.account_id, session.stage, session.csrf, now],
            )?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        Ok(self
            .conn
            .row(
                "SELECT id, account_id, stage, csrf, created_at, seen_at FROM web_sessions WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(SessionRecord {
                        id: r.get(0)?,
                        account_id: r.get(1)?,
                        stage: r.get(2)?,
                        csrf: r.get(3)?,
                        created_at: r.get(4)?,
                        seen_at: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    fn touch_session(&self, id: i64, now: i64) -> Result<()> {
        self.conn.run("UPDATE web_sessions SET seen_at = ?2 WHERE id = ?1", params![id, now])?;
        Ok(())
    }

    fn end_session(&self, id: i64) -> Result<()> {
        self.conn.run("DELETE FROM web_sessions WHERE id = ?1", [id])?;
        Ok(())
    }

    fn purge_sessions(&self, idle_before: i64, started_before: i64) -> Result<usize> {
        let idle = self.conn.run("DELETE FROM web_sessions WHERE seen_at < ?1", [idle_before])?;
        let old = self.conn.run("DELETE FROM web_sessions WHERE created_at < ?1", [started_before])?;
        Ok(idle + old)
    }

    fn add_link(&self, account: i64, token_hash: &str, expires_at: i64, now: i64) -> Result<()> {
        self.change("account.link", &format!("account #{account}"), "set-password", |tx| {
            tx.run(
                "UPDATE account_links SET used_at = ?2 WHERE account_id = ?1 AND used_at IS NULL",
                params![account, now],
            )?;
            tx.run(
                "INSERT INTO account_links (token_hash, account_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, account, now, expires_at],
            )?;
            Ok(())
        })
    }

    fn link(&self, token_hash: &str, now: i64) -> Result<Option<(AccountRecord, LinkState)>> {
        let found = self
            .conn
            .row("SELECT account_id, expires_at, used_at FROM account_links WHERE token_hash = ?1", [token_hash], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?))
            })
            .optional()?;
        let Some((account, expires_at, used_at)) = found else { return Ok(None) };
        let state = match used_at {
            Some(_) => LinkState::Used,
            None if now >= expires_at => LinkState::Expired,
            None => LinkState::Valid,
        };
        Ok(Some((super::AccountStore::account(self, account)?, state)))
    }

    fn set_password_by_link(&self, token_hash: &str, password_hash: &str, now: i64) -> Result<AccountRecord> {
        let Some((account, state)) = self.link(token_hash, now)? else {
            return Err(StoreError::NotFound("this link".into()));
        };
        if state != LinkState::Valid {
            return Err(StoreError::Conflict(format!(
                "this link is {}",
                if state == LinkState::Used { "used" } else { "expired" }
            )));
        }
        self.change("account.password", &format!("account #{}", account.id), "by link", |tx| {
            let used = tx.run(
                "UPDATE account_links SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![token_hash, now],
            )?;
            if used == 0 {
                return Err(StoreError::Conflict("this link was used meanwhile".into()));
            }
            tx.run(
                "UPDATE accounts SET password_hash = ?2, failed_signins = 0, locked_until = NULL WHERE id = ?1",
                params![account.id, password_hash],
            )?;
            tx.run("DELETE FROM web_sessions WHERE account_id = ?1", [account.id])?;
            Ok(())
        })?;
        super::AccountStore::account(self, account.id)
    }

    fn begin_totp(&self, account: i64, secret: &str) -> Result<()> {
        self.change("account.two-factor-begin", &format!("account #{account}"), "", |tx| {
            let changed = tx.run(
                "UPDATE accounts SET totp_secret = field_seal(?2) WHERE id = ?1 AND totp_enabled_at IS NULL",
                params![account, secret],
            )?;
            if changed == 0 {
                return Err(StoreError::Conflict("two-factor sign-in is already on for this account".into()));
            }
            Ok(())
        })
    }

    fn enable_totp(&self, account: i64, step: i64, recovery_codes: &[String], now: i64) -> Result<()> {
        self.change("account.two-factor-on", &format!("account #{account}"), "totp", |tx| {
            let changed = tx.run(
                "UPDATE accounts SET totp_enabled_at = ?2, totp_last_step = ?3
                 WHERE id = ?1 AND totp_enabled_at IS NULL AND totp_secret IS NOT NULL",
                params![account, now, step],
            )?;
            if changed == 0 {
                return Err(StoreError::Conflict("no two-factor enrolment is under way for this account".into()));
            }
            insert_recovery_codes(tx, account, recovery_codes)
        })
    }

    fn use_totp_step(&self, account: i64, step: i64) -> Result<bool> {
        let changed = self.conn.run(
            "UPDATE accounts SET totp_last_step = ?2
             WHERE id = ?1 AND totp_enabled_at IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            params![account, step],
        )?;
        Ok(changed == 1)
    }

    fn use_recovery_code(&self, account: i64, code: &str, now: i64) -> Result<bool> {
        let used = self.change("account.recovery-code", &format!("account #{account}"), "", |tx| {
            Ok(tx.run(
                "UPDATE recovery_codes SET used_at = ?3
                 WHERE account_id = ?1 AND code_index = field_index('recovery', ?2) AND used_at IS NULL",
                params![account, recovery_key(account, code), now],
            )?)
        })?;
        Ok(used == 1)
    }

    fn replace_recovery_codes(&self, account: i64, codes: &[String], _now: i64) -> Result<()> {
        self.change("account.recovery-codes", &format!("account #{account}"), "new", |tx| {
            insert_recovery_codes(tx, account, codes)
        })
    }

    fn reset_totp(&self, account: i64) -> Result<()> {
        self.change("account.two-factor-off", &format!("account #{account}"), "", |tx| {
            let changed = tx.run(
                "UPDATE accounts SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL WHERE id = ?1",
                [account],
            )?;
            one_account(changed, account)?;
            tx.run("DELETE FROM recovery_codes WHERE account_id = ?1", [account])?;
            tx.run("DELETE FROM web_sessions WHERE account_id = ?1", [account])?;
            Ok(())
        })
    }

    fn unlock_account(&self, account: i64) -> Result<()> {
        self.change("account.unlock", &format!("account #{account}"), "", |tx| {
            let changed =
                tx.run("UPDATE accounts SET failed_signins = 0, locked_until = NULL WHERE id = ?1", [account])?;
            one_account(changed, account)
        })
    }

    fn set_two_factor_required(&self, practice_id: i64, required: bool) -> Result<()> {
        self.set_practice_flag(practice_id, PracticeFlag::TwoFactorRequired, required)
    }

    fn record(&self, action: &str, subject: &str, detail: &str) -> Result<()> {
        self.change(action, subject, detail, |_| Ok(()))
    }

    fn set_invitations_allowed(&self, practice_id: i64, allowed: bool) -> Result<()> {
        self.set_practice_flag(practice_id, PracticeFlag::InvitationsAllowed, allowed)
    }

    fn set_role(&self, practice_id: i64, account: i64, role: AccountRole) -> Result<()> {
        if role == AccountRole::Patient {
            return Err(StoreError::Conflict("a member cannot be made a patient".into()));
        }
        self.change("account.role", &format!("account #{account}"), role.as_str(), |tx| {
            let changed = tx.run(
                "UPDATE accounts SET role = ?3 WHERE id = ?1 AND practice_id = ?2 AND role <> 'patient'",
                params![account, practice_id, role],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("account #{account} of this practice")));
            }
            let admins: i64 = tx.row(
                "SELECT count(*) FROM accounts WHERE practice_id = ?1 AND role = 'admin'",
                [practice_id],
                |r| r.get(0),
            )?;
            if admins == 0 {
                return Err(StoreError::Conflict("the practice needs at least one admin".into()));
            }
            Ok(())
        })
    }

    fn record_direct_sent(&self, account: i64, message_id: &str, now: i64) -> Result<()> {
        self.conn.run(
            "INSERT OR IGNORE INTO portal_direct_sent (account_id, message_id, created_at) VALUES (?1, ?2, ?3)",
            params![account, message_id, now],
        )?;
        Ok(())
    }

    fn direct_sent(&self, account: i64, limit: usize) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT message_id, created_at FROM portal_direct_sent WHERE account_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![account, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
