//! The address book: the members a practice lists for the practices and patients connected to
//! it (accounts, and its Direct addresses: users and shared inboxes), the profile a connected
//! party sees, and each account's own contacts among them. Whoever looks sees only what is
//! listed by a practice it is connected to.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::cached::CachedSql;
use super::sqlite::{duplicate_as, SqliteStore};
use super::states::AccountRole;
use super::{Result, StoreError};
use crate::address::DirectAddress;

/// A member a practice lists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Member<'a> {
    Account(i64),
    Address(&'a DirectAddress),
}

/// Who looks at a profile: a practice (its token, its members), or a patient's account.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Viewer {
    Practice(i64),
    Patient(i64),
}

/// A listed member, as others see it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ListingRecord {
    pub id: i64,
    pub practice: String,
    /// "account" or "address".
    pub kind: String,
    /// The account's name, or the address.
    pub name: String,
    /// A Direct address to write to (an address listing).
    pub address: Option<String>,
    /// What the practice says of it ("Referrals inbox").
    pub label: Option<String>,
    pub role: Option<AccountRole>,
    pub created_at: i64,
    /// The listed account (an account listing), to write to.
    #[serde(skip)]
    pub account_id: Option<i64>,
}

/// A connected practice as another party sees it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Profile {
    pub name: String,
    /// Its details, when it registered by an invitation (address, city, state, zip, phone, ehr).
    pub details: Option<serde_json::Value>,
    pub domains: Vec<String>,
    pub members: Vec<ListingRecord>,
}

pub(crate) trait AddressBookStore {
    /// Lists a member: one of the practice's accounts (not a patient) or one of its addresses.
    fn list_member(&self, practice_id: i64, member: Member, label: Option<&str>) -> Result<ListingRecord>;
    /// Stops listing it; it leaves every contact list too.
    fn unlist_member(&self, practice_id: i64, listing_id: i64) -> Result<()>;
    fn listings(&self, practice_id: i64) -> Result<Vec<ListingRecord>>;
    /// The profile of the practice at the end of `viewer`'s connection `connection_id`.
    fn profile(&self, viewer: Viewer, connection_id: i64) -> Result<Profile>;
    /// Adds a listed member of a connected practice (or of the account's own) to its contacts.
    fn add_contact(&self, account_id: i64, listing_id: i64) -> Result<ListingRecord>;
    fn remove_contact(&self, account_id: i64, listing_id: i64) -> Result<()>;
    /// An account's contacts, by name.
    fn contacts(&self, account_id: i64) -> Result<Vec<ListingRecord>>;
}

const LISTING_COLUMNS: &str = "l.id, p.name, CASE WHEN l.account_id IS NULL THEN 'address' ELSE 'account' END,
        coalesce(field_open(a.name), l.address), l.address, l.label, a.role, l.created_at, l.account_id";

fn listing_row(r: &Row) -> rusqlite::Result<ListingRecord> {
    Ok(ListingRecord {
        id: r.get(0)?,
        practice: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        address: r.get(4)?,
        label: r.get(5)?,
        role: r.get(6)?,
        created_at: r.get(7)?,
        account_id: r.get(8)?,
    })
}

fn sorted(mut list: Vec<ListingRecord>) -> Vec<ListingRecord> {
    list.sort_by_key(|l| (l.name.to_lowercase(), l.id));
    list
}

impl SqliteStore {
    fn listing(&self, id: i64) -> Result<ListingRecord> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {LISTING_COLUMNS} FROM listings l JOIN practices p ON p.id = l.practice_id
             LEFT JOIN accounts a ON a.id = l.account_id WHERE l.id = ?1"
        ))?;
        stmt.query_row([id], listing_row).optional()?.ok_or_else(|| StoreError::NotFound(format!("listing #{id}")))
    }

    fn listings_of(&self, practice_id: i64) -> Result<Vec<ListingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {LISTING_COLUMNS} FROM listings l JOIN practices p ON p.id = l.practice_id
             LEFT JOIN accounts a ON a.id = l.account_id WHERE l.practice_id = ?1"
        ))?;
        let rows = stmt.query_map([practice_id], listing_row)?;
        Ok(sorted(rows.collect::<rusqlite::Result<_>>()?))
    }
}

impl AddressBookStore for SqliteStore {
    fn list_member(&self, practice_id: i64, member: Member, label: Option<&str>) -> Result<ListingRecord> {
        let shown = match member {
            Member::Account(id) => format!("account #{id}"),
            Member::Address(a) => a.to_string(),
        };
        let now = self.clock.unix_now();
        let id = self.change("listing.add", &format!("practice id {practice_id}"), &shown, |tx| {
            match member {
                Member::Account(id) => {
                    let member_of: Option<(Option<i64>, AccountRole)> = tx
                        .row("SELECT practice_id, role FROM accounts WHERE id = ?1", [id], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()?;
                    if !matches!(member_of, Some((Some(p), role)) if p == practice_id && role != AccountRole::Patient) {
                        return Err(StoreError::NotFound(format!("account #{id} of this practice")));
                    }
                    tx.run(
                        "INSERT INTO listings (practice_id, account_id, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![practice_id, id, label, now],
                    )
                }
                Member::Address(address) => {
                    let ours: Option<i64> = tx
                        .row(
                            "SELECT a.id FROM addresses a JOIN domains d ON d.id = a.domain_id
                             WHERE a.address = ?1 AND d.practice_id = ?2",
                            params![address.to_string(), practice_id],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if ours.is_none() {
                        return Err(StoreError::NotFound(format!("address {address} of this practice")));
                    }
                    tx.run(
                        "INSERT INTO listings (practice_id, address, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![practice_id, address.to_string(), label, now],
                    )
                }
            }
            .map_err(duplicate_as(format!("the listing of {shown}")))?;
            Ok(tx.last_insert_rowid())
        })?;
        self.listing(id)
    }

    fn unlist_member(&self, practice_id: i64, listing_id: i64) -> Result<()> {
        self.change("listing.remove", &format!("practice id {practice_id}"), &format!("listing #{listing_id}"), |tx| {
            tx.run(
                "DELETE FROM contacts WHERE listing_id = ?1
                   AND EXISTS (SELECT 1 FROM listings WHERE id = ?1 AND practice_id = ?2)",
                params![listing_id, practice_id],
            )?;
            let removed =
                tx.run("DELETE FROM listings WHERE id = ?1 AND practice_id = ?2", params![listing_id, practice_id])?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!("listing #{listing_id} of this practice")));
            }
            Ok(())
        })
    }

    fn listings(&self, practice_id: i64) -> Result<Vec<ListingRecord>> {
        self.listings_of(practice_id)
    }

    fn profile(&self, viewer: Viewer, connection_id: i64) -> Result<Profile> {
        let peer: Option<i64> = match viewer {
            Viewer::Practice(p) => self.conn.row(
                "SELECT peer_practice_id FROM connections WHERE id = ?1 AND practice_id = ?2
                   AND peer_practice_id IS NOT NULL",
                params![connection_id, p],
                |r| r.get(0),
            ),
            Viewer::Patient(a) => self.conn.row(
                "SELECT practice_id FROM connections WHERE id = ?1 AND patient_id = ?2",
                params![connection_id, a],
                |r| r.get(0),
            ),
        }
        .optional()?;
        let peer = peer.ok_or_else(|| StoreError::NotFound(format!("connection #{connection_id}")))?;
        let (name, details): (String, Option<String>) =
            self.conn
                .row("SELECT name, profile FROM practices WHERE id = ?1", [peer], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut stmt = self.conn.prepare_cached("SELECT name FROM domains WHERE practice_id = ?1 ORDER BY name")?;
        let domains = stmt.query_map([peer], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(Profile {
            name,
            details: details.and_then(|d| serde_json::from_str(&d).ok()),
            domains,
            members: self.listings_of(peer)?,
        })
    }

    fn add_contact(&self, account_id: i64, listing_id: i64) -> Result<ListingRecord> {
        let now = self.clock.unix_now();
        self.change("contact.add", &format!("account #{account_id}"), &format!("listing #{listing_id}"), |tx| {
            let visible: Option<i64> = tx
                .row(
                    "SELECT l.id FROM listings l, accounts a WHERE l.id = ?2 AND a.id = ?1 AND (
                        l.practice_id = a.practice_id
                        OR EXISTS (SELECT 1 FROM connections c
                                   WHERE c.practice_id = a.practice_id AND c.peer_practice_id = l.practice_id)
                        OR EXISTS (SELECT 1 FROM connections c
                                   WHERE c.practice_id = l.practice_id AND c.patient_id = a.id))",
                    params![account_id, listing_id],
                    |r| r.get(0),
                )
                .optional()?;
            if visible.is_none() {
                return Err(StoreError::NotFound(format!("listing #{listing_id} of a practice connected to yours")));
            }
            tx.run(
                "INSERT OR IGNORE INTO contacts (account_id, listing_id, created_at) VALUES (?1, ?2, ?3)",
                params![account_id, listing_id, now],
            )?;
            Ok(())
        })?;
        self.listing(listing_id)
    }

    fn remove_contact(&self, account_id: i64, listing_id: i64) -> Result<()> {
        self.change("contact.remove", &format!("account #{account_id}"), &format!("listing #{listing_id}"), |tx| {
            let removed = tx.run(
                "DELETE FROM contacts WHERE account_id = ?1 AND listing_id = ?2",
                params![account_id, listing_id],
            )?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!("listing #{listing_id} among your contacts")));
            }
            Ok(())
        })
    }

    fn contacts(&self, account_id: i64) -> Result<Vec<ListingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {LISTING_COLUMNS} FROM contacts k JOIN listings l ON l.id = k.listing_id
             JOIN practices p ON p.id = l.practice_id LEFT JOIN accounts a ON a.id = l.account_id
             WHERE k.account_id = ?1"
        ))?;
        let rows = stmt.query_map([account_id], listing_row)?;
        Ok(sorted(rows.collect::<rusqlite::Result<_>>()?))
    }
}
