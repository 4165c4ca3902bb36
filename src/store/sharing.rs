//! Sharing documents by link: the contacts a practice shares with (people outside the network:
//! a lawyer, a school, a relative), each sealed under the KEK and kept per practice. A practice
//! sees and changes only its own.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::cached::CachedSql;
use super::sqlite::{duplicate_as, SqliteStore};
use super::states::{AccountRole, ShareCheck};
use super::{Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShareContactRecord {
    pub id: i64,
    pub name: String,
    pub organization: Option<String>,
    pub email: String,
    /// E.164, for the SMS code.
    pub mobile: Option<String>,
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
    /// How the practice shares: the check and the roles that may share (no patient).
    fn set_sharing(&self, practice_id: i64, check: ShareCheck, roles: &[AccountRole]) -> Result<()>;
}

const COLUMNS: &str = "id, field_open(name), field_open(organization), field_open(email),
        field_open(mobile), created_at, updated_at";

fn contact_row(r: &Row) -> rusqlite::Result<ShareContactRecord> {
    Ok(ShareContactRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        organization: r.get(2)?,
        email: r.get(3)?,
        mobile: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
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
                "INSERT INTO share_contacts (practice_id, name, organization, email, email_index, mobile, created_at,
                                             updated_at)
                 VALUES (?1, field_seal(?2), field_seal(?3), field_seal(?4), field_index('share-contact', ?5),
                         field_seal(?6), ?7, ?7)",
                params![practice_id, f.name, f.organization, f.email, email_key(practice_id, f.email), f.mobile, now],
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
                         updated_at = ?8
                     WHERE id = ?1 AND practice_id = ?2",
                    params![id, practice_id, f.name, f.organization, f.email, email_key(practice_id, f.email), f.mobile, now],
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

    fn set_sharing(&self, practice_id: i64, check: ShareCheck, roles: &[AccountRole]) -> Result<()> {
        if roles.contains(&AccountRole::Patient) {
            return Err(StoreError::Conflict("patients do not share a practice's documents".into()));
        }
        let mut names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let roles = names.join(" ");
        let detail = format!("{check}; roles: {roles}");
        self.change("practice.sharing", &format!("practice id {practice_id}"), &detail, |tx| {
            let changed = tx.run(
                "UPDATE practices SET share_check = ?2, share_roles = ?3 WHERE id = ?1",
                params![practice_id, check, roles],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("practice id {practice_id}")));
            }
            Ok(())
        })
    }
}
