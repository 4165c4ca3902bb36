//! Sharing documents by link: the contacts a practice shares with (people outside the network:
//! a lawyer, a school, a relative), each sealed under the KEK and kept per practice. A practice
//! sees and changes only its own. The documents shared with them: each share's own copy of the
//! document, its link (a digest), where its check stands, and its events.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::cached::CachedSql;
use super::sqlite::{duplicate_as, SqliteStore};
use super::states::{AccountRole, ShareCheck, ShareEvent};
use super::{Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShareContactRecord {
    pub id: i64,
    pub name: String,
    pub organization: Option<String>,
    pub email: String,
    /// E.164, for the SMS code.
    pub mobile: Option<String>,
    /// YYYY-MM-DD, for the date-of-birth check.
    pub date_of_birth: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A contact's fields, checked.
#[derive(Debug, Clone)]
pub(crate) struct ShareContactFields<'a> {
    pub name: &'a str,
    pub organization: Option<&'a str>,
    pub email: &'a str,
    pub mobile: Option<&'a str>,
    pub date_of_birth: Option<&'a str>,
}

/// A document shared by link, without its content.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShareRecord {
    pub id: i64,
    pub practice_id: i64,
    pub practice: String,
    /// The practice renews an expired link after the check.
    #[serde(skip)]
    pub auto_renew: bool,
    pub contact_id: i64,
    pub contact_name: String,
    pub contact_email: String,
    #[serde(skip)]
    pub contact_mobile: Option<String>,
    #[serde(skip)]
    pub contact_date_of_birth: Option<String>,
    pub shared_by: i64,
    pub shared_by_name: String,
    #[serde(skip)]
    pub shared_by_email: String,
    /// Where the document came from ("document 12", "upload", "secure message 4").
    pub source: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub check: ShareCheck,
    pub link_sent_at: i64,
    pub first_used_at: Option<i64>,
    /// The SHA-256 of the cookie of the browser the link is bound to.
    #[serde(skip)]
    pub browser_hash: Option<String>,
    pub code_sent_at: Option<i64>,
    pub codes_sent: u32,
    pub failures: u32,
    pub locked_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub renewal_asked_at: Option<i64>,
    pub viewed_at: Option<i64>,
    pub created_at: i64,
}

/// A share to make: the document's content already sealed under the KEK.
#[derive(Debug, Clone)]
pub(crate) struct NewShare<'a> {
    pub practice_id: i64,
    pub contact_id: i64,
    pub shared_by: i64,
    pub source: &'a str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: usize,
    pub sha256: &'a str,
    pub sealed: &'a [u8],
    pub check: ShareCheck,
    pub link_hash: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShareEventRecord {
    pub at: i64,
    pub event: ShareEvent,
    /// A coarse description of the browser ("Chrome on Windows, 203.0.113.0/24"), or who acted.
    pub client: String,
}

pub(crate) trait SharingStore {
    fn add_share_contact(&self, practice_id: i64, fields: &ShareContactFields, now: i64) -> Result<ShareContactRecord>;
    /// The practice's contacts, by name.
    fn share_contacts(&self, practice_id: i64) -> Result<Vec<ShareContactRecord>>;
    /// One of the practice's contacts (another practice's is not found).
    fn share_contact(&self, practice_id: i64, id: i64) -> Result<ShareContactRecord>;
    fn update_share_contact(
        &self,
        practice_id: i64,
        id: i64,
        fields: &ShareContactFields,
        now: i64,
    ) -> Result<ShareContactRecord>;
    fn remove_share_contact(&self, practice_id: i64, id: i64) -> Result<()>;
    /// How the practice shares: the check, the roles that may share (no patient), and whether an
    /// expired link renews itself after the check.
    fn set_sharing(&self, practice_id: i64, check: ShareCheck, roles: &[AccountRole], auto_renew: bool) -> Result<()>;

    /// A new share, its link sent (the first event).
    fn add_share(&self, share: &NewShare, client: &str, now: i64) -> Result<ShareRecord>;
    /// The practice's shares, newest first.
    fn shares(&self, practice_id: i64) -> Result<Vec<ShareRecord>>;
    /// One of the practice's shares (another practice's is not found).
    fn share(&self, practice_id: i64, id: i64) -> Result<ShareRecord>;
    /// The share whose current link has this digest.
    fn share_by_link(&self, link_hash: &str) -> Result<Option<ShareRecord>>;
    /// A share's sealed content.
    fn share_content(&self, id: i64) -> Result<Vec<u8>>;
    fn share_events(&self, id: i64) -> Result<Vec<ShareEventRecord>>;
    /// Records an event; for `Viewed`, whether it is the first view.
    fn share_event(&self, id: i64, event: ShareEvent, client: &str, now: i64) -> Result<bool>;
    /// A new SMS code replaces the earlier one (kept as a keyed blind index).
    fn set_share_code(&self, id: i64, code: &str, client: &str, now: i64) -> Result<()>;
    /// Whether `code` is the share's current code (its age is the caller's to judge).
    fn share_code_matches(&self, id: i64, code: &str) -> Result<bool>;
    /// One more failed check; at `limit` failures the share locks. Returns the failures and
    /// whether it is now locked.
    fn share_check_failed(&self, id: i64, limit: u32, client: &str, now: i64) -> Result<(u32, bool)>;
    /// The check passed: the link is bound to the browser whose cookie has this digest.
    fn bind_share(&self, id: i64, browser_hash: &str, event: ShareEvent, client: &str, now: i64) -> Result<()>;
    fn revoke_share(&self, practice_id: i64, id: i64, by: &str, now: i64) -> Result<ShareRecord>;
    /// A fresh link replaces the share's link: a new 24 hours to first use, the check, the
    /// binding, the lock and a revocation start over.
    fn renew_share_link(&self, practice_id: i64, id: i64, link_hash: &str, by: &str, now: i64) -> Result<ShareRecord>;
}

const COLUMNS: &str = "id, field_open(name), field_open(organization), field_open(email),
        field_open(mobile), field_open(date_of_birth), created_at, updated_at";

const SHARE_COLUMNS: &str = "s.id, s.practice_id, s.contact_id, field_open(c.name), field_open(c.email),
        field_open(c.mobile), field_open(c.date_of_birth), s.shared_by, field_open(a.name), field_open(a.email), s.source,
        field_open(s.filename), s.content_type, s.size, field_open(s.sha256), s.check_kind, s.link_sent_at,
        s.first_used_at, s.browser_hash, s.code_sent_at, s.codes_sent, s.failures, s.locked_at, s.revoked_at,
        s.renewal_asked_at, s.viewed_at, s.created_at, p.name, p.share_auto_renew
    FROM shares s JOIN share_contacts c ON c.id = s.contact_id JOIN accounts a ON a.id = s.shared_by
        JOIN practices p ON p.id = s.practice_id";

fn share_row(r: &Row) -> rusqlite::Result<ShareRecord> {
    Ok(ShareRecord {
        id: r.get(0)?,
        practice_id: r.get(1)?,
        practice: r.get(27)?,
        auto_renew: r.get(28)?,
        contact_id: r.get(2)?,
        contact_name: r.get(3)?,
        contact_email: r.get(4)?,
        contact_mobile: r.get(5)?,
        contact_date_of_birth: r.get(6)?,
        shared_by: r.get(7)?,
        shared_by_name: r.get(8)?,
        shared_by_email: r.get(9)?,
        source: r.get(10)?,
        filename: r.get(11)?,
        content_type: r.get(12)?,
        size: r.get(13)?,
        sha256: r.get(14)?,
        check: r.get(15)?,
        link_sent_at: r.get(16)?,
        first_used_at: r.get(17)?,
        browser_hash: r.get(18)?,
        code_sent_at: r.get(19)?,
        codes_sent: r.get(20)?,
        failures: r.get(21)?,
        locked_at: r.get(22)?,
        revoked_at: r.get(23)?,
        renewal_asked_at: r.get(24)?,
        viewed_at: r.get(25)?,
        created_at: r.get(26)?,
    })
}

fn insert_event(tx: &rusqlite::Transaction, id: i64, event: ShareEvent, client: &str, now: i64) -> Result<()> {
    tx.run(
        "INSERT INTO share_events (share_id, at, event, client) VALUES (?1, ?2, ?3, ?4)",
        params![id, now, event, client],
    )?;
    Ok(())
}

fn share_not_found(id: i64) -> StoreError {
    StoreError::NotFound(format!("share #{id} of this practice"))
}

fn contact_row(r: &Row) -> rusqlite::Result<ShareContactRecord> {
    Ok(ShareContactRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        organization: r.get(2)?,
        email: r.get(3)?,
        mobile: r.get(4)?,
        date_of_birth: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

/// What the e-mail's blind index is made of: one address per practice.
fn email_key(practice_id: i64, email: &str) -> String {
    format!("{practice_id}:{email}")
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound(format!("contact #{id} of this practice"))
}

impl SharingStore for SqliteStore {
    fn add_share_contact(&self, practice_id: i64, f: &ShareContactFields, now: i64) -> Result<ShareContactRecord> {
        let id = self.change("share-contact.add", &format!("practice id {practice_id}"), "", |tx| {
            tx.run(
                "INSERT INTO share_contacts (practice_id, name, organization, email, email_index, mobile, date_of_birth,
                                             created_at, updated_at)
                 VALUES (?1, field_seal(?2), field_seal(?3), field_seal(?4), field_index('share-contact', ?5),
                         field_seal(?6), field_seal(?8), ?7, ?7)",
                params![
                    practice_id,
                    f.name,
                    f.organization,
                    f.email,
                    email_key(practice_id, f.email),
                    f.mobile,
                    now,
                    f.date_of_birth
                ],
            )
            .map_err(duplicate_as(format!("a contact with the e-mail address {}", f.email)))?;
            Ok(tx.last_insert_rowid())
        })?;
        self.share_contact(practice_id, id)
    }

    fn share_contacts(&self, practice_id: i64) -> Result<Vec<ShareContactRecord>> {
        let mut stmt =
            self.conn.prepare_cached(&format!("SELECT {COLUMNS} FROM share_contacts WHERE practice_id = ?1"))?;
        let mut out: Vec<ShareContactRecord> =
            stmt.query_map([practice_id], contact_row)?.collect::<rusqlite::Result<_>>()?;
        out.sort_by_key(|c| (c.name.to_lowercase(), c.id));
        Ok(out)
    }

    fn share_contact(&self, practice_id: i64, id: i64) -> Result<ShareContactRecord> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM share_contacts WHERE id = ?1 AND practice_id = ?2"))?;
        stmt.query_row(params![id, practice_id], contact_row).optional()?.ok_or_else(|| not_found(id))
    }

    fn update_share_contact(
        &self,
        practice_id: i64,
        id: i64,
        f: &ShareContactFields,
        now: i64,
    ) -> Result<ShareContactRecord> {
        self.change("share-contact.update", &format!("contact #{id}"), "", |tx| {
            let changed = tx
                .run(
                    "UPDATE share_contacts SET name = field_seal(?3), organization = field_seal(?4),
                         email = field_seal(?5), email_index = field_index('share-contact', ?6), mobile = field_seal(?7),
                         updated_at = ?8, date_of_birth = field_seal(?9)
                     WHERE id = ?1 AND practice_id = ?2",
                    params![
                        id,
                        practice_id,
                        f.name,
                        f.organization,
                        f.email,
                        email_key(practice_id, f.email),
                        f.mobile,
                        now,
                        f.date_of_birth
                    ],
                )
                .map_err(duplicate_as(format!("a contact with the e-mail address {}", f.email)))?;
            if changed == 0 {
                return Err(not_found(id));
            }
            Ok(())
        })?;
        self.share_contact(practice_id, id)
    }

    fn remove_share_contact(&self, practice_id: i64, id: i64) -> Result<()> {
        self.change("share-contact.remove", &format!("contact #{id}"), "", |tx| {
            if tx.run("DELETE FROM share_contacts WHERE id = ?1 AND practice_id = ?2", params![id, practice_id])? == 0 {
                return Err(not_found(id));
            }
            Ok(())
        })
    }

    fn set_sharing(&self, practice_id: i64, check: ShareCheck, roles: &[AccountRole], auto_renew: bool) -> Result<()> {
        if roles.contains(&AccountRole::Patient) {
            return Err(StoreError::Conflict("patients do not share a practice's documents".into()));
        }
        let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let roles = names.join(" ");
        let detail = format!("{check}; roles: {roles}; renew expired links: {auto_renew}");
        self.change("practice.sharing", &format!("practice id {practice_id}"), &detail, |tx| {
            let changed = tx.run(
                "UPDATE practices SET share_check = ?2, share_roles = ?3, share_auto_renew = ?4 WHERE id = ?1",
                params![practice_id, check, roles, auto_renew],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("practice id {practice_id}")));
            }
            Ok(())
        })
    }

    fn add_share(&self, n: &NewShare, client: &str, now: i64) -> Result<ShareRecord> {
        let detail = format!("contact #{}, {}", n.contact_id, n.source);
        let id = self.change("share.add", &format!("practice id {}", n.practice_id), &detail, |tx| {
            let inserted = tx.run(
                "INSERT INTO shares (practice_id, contact_id, shared_by, source, filename, content_type, size, sha256,
                                     content, check_kind, link_hash, link_sent_at, created_at)
                 SELECT ?1, ?2, ?3, ?4, field_seal(?5), ?6, ?7, field_seal(?8), ?9, ?10, ?11, ?12, ?12
                 FROM share_contacts WHERE id = ?2 AND practice_id = ?1",
                params![
                    n.practice_id,
                    n.contact_id,
                    n.shared_by,
                    n.source,
                    n.filename,
                    n.content_type,
                    n.size as i64,
                    n.sha256,
                    n.sealed,
                    n.check,
                    n.link_hash,
                    now
                ],
            )?;
            if inserted == 0 {
                return Err(not_found(n.contact_id));
            }
            let id = tx.last_insert_rowid();
            insert_event(tx, id, ShareEvent::Sent, client, now)?;
            Ok(id)
        })?;
        self.share(n.practice_id, id)
    }

    fn shares(&self, practice_id: i64) -> Result<Vec<ShareRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SHARE_COLUMNS} WHERE s.practice_id = ?1 ORDER BY s.created_at DESC, s.id DESC"
        ))?;
        let rows = stmt.query_map([practice_id], share_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn share(&self, practice_id: i64, id: i64) -> Result<ShareRecord> {
        let mut stmt =
            self.conn.prepare_cached(&format!("SELECT {SHARE_COLUMNS} WHERE s.id = ?1 AND s.practice_id = ?2"))?;
        stmt.query_row(params![id, practice_id], share_row).optional()?.ok_or_else(|| share_not_found(id))
    }

    fn share_by_link(&self, link_hash: &str) -> Result<Option<ShareRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {SHARE_COLUMNS} WHERE s.link_hash = ?1"))?;
        Ok(stmt.query_row([link_hash], share_row).optional()?)
    }

    fn share_content(&self, id: i64) -> Result<Vec<u8>> {
        let mut stmt = self.conn.prepare_cached("SELECT content FROM shares WHERE id = ?1")?;
        stmt.query_row([id], |r| r.get(0)).optional()?.ok_or_else(|| share_not_found(id))
    }

    fn share_events(&self, id: i64) -> Result<Vec<ShareEventRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at, event, client FROM share_events WHERE share_id = ?1 ORDER BY at, id")?;
        let rows =
            stmt.query_map([id], |r| Ok(ShareEventRecord { at: r.get(0)?, event: r.get(1)?, client: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn share_event(&self, id: i64, event: ShareEvent, client: &str, now: i64) -> Result<bool> {
        self.change(&format!("share.{event}"), &format!("share #{id}"), client, |tx| {
            insert_event(tx, id, event, client, now)?;
            let first = event == ShareEvent::Viewed
                && tx.run("UPDATE shares SET viewed_at = ?2 WHERE id = ?1 AND viewed_at IS NULL", params![id, now])?
                    == 1;
            if event == ShareEvent::RenewalAsked {
                tx.run("UPDATE shares SET renewal_asked_at = ?2 WHERE id = ?1", params![id, now])?;
            }
            Ok(first)
        })
    }

    fn set_share_code(&self, id: i64, code: &str, client: &str, now: i64) -> Result<()> {
        self.change("share.code-sent", &format!("share #{id}"), client, |tx| {
            tx.run(
                "UPDATE shares SET code_index = field_index('share-code', ?1 || ':' || ?2), code_sent_at = ?3,
                     codes_sent = codes_sent + 1
                 WHERE id = ?1",
                params![id, code, now],
            )?;
            insert_event(tx, id, ShareEvent::CodeSent, client, now)
        })
    }

    fn share_code_matches(&self, id: i64, code: &str) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT code_index IS NOT NULL AND code_index = field_index('share-code', ?1 || ':' || ?2)
             FROM shares WHERE id = ?1",
        )?;
        Ok(stmt.query_row(params![id, code], |r| r.get(0)).optional()?.unwrap_or(false))
    }

    fn share_check_failed(&self, id: i64, limit: u32, client: &str, now: i64) -> Result<(u32, bool)> {
        self.change("share.check-failed", &format!("share #{id}"), client, |tx| {
            tx.run(
                "UPDATE shares SET failures = failures + 1,
                     locked_at = CASE WHEN failures + 1 >= ?2 THEN coalesce(locked_at, ?3) ELSE locked_at END
                 WHERE id = ?1",
                params![id, limit, now],
            )?;
            insert_event(tx, id, ShareEvent::CheckFailed, client, now)?;
            let (failures, locked): (u32, Option<i64>) =
                tx.query_row("SELECT failures, locked_at FROM shares WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            if locked == Some(now) && failures == limit {
                insert_event(tx, id, ShareEvent::Locked, client, now)?;
            }
            Ok((failures, locked.is_some()))
        })
    }

    fn bind_share(&self, id: i64, browser_hash: &str, event: ShareEvent, client: &str, now: i64) -> Result<()> {
        self.change(&format!("share.{event}"), &format!("share #{id}"), client, |tx| {
            tx.run(
                "UPDATE shares SET first_used_at = coalesce(first_used_at, ?3), browser_hash = ?2, failures = 0,
                     code_index = NULL
                 WHERE id = ?1",
                params![id, browser_hash, now],
            )?;
            insert_event(tx, id, event, client, now)
        })
    }

    fn revoke_share(&self, practice_id: i64, id: i64, by: &str, now: i64) -> Result<ShareRecord> {
        self.change("share.revoked", &format!("share #{id}"), by, |tx| {
            let changed = tx.run(
                "UPDATE shares SET revoked_at = coalesce(revoked_at, ?3) WHERE id = ?1 AND practice_id = ?2",
                params![id, practice_id, now],
            )?;
            if changed == 0 {
                return Err(share_not_found(id));
            }
            insert_event(tx, id, ShareEvent::Revoked, by, now)
        })?;
        self.share(practice_id, id)
    }

    fn renew_share_link(&self, practice_id: i64, id: i64, link_hash: &str, by: &str, now: i64) -> Result<ShareRecord> {
        self.change("share.resent", &format!("share #{id}"), by, |tx| {
            let changed = tx.run(
                "UPDATE shares SET link_hash = ?3, link_sent_at = ?4, first_used_at = NULL, browser_hash = NULL,
                     code_index = NULL, code_sent_at = NULL, codes_sent = 0, failures = 0, locked_at = NULL,
                     revoked_at = NULL, renewal_asked_at = NULL
                 WHERE id = ?1 AND practice_id = ?2",
                params![id, practice_id, link_hash, now],
            )?;
            if changed == 0 {
                return Err(share_not_found(id));
            }
            insert_event(tx, id, ShareEvent::Resent, by, now)
        })?;
        self.share(practice_id, id)
    }
}
