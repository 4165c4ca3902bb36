//! Persistent state behind one trait, so the rest of the node never touches SQL.

pub(crate) mod accounts;
pub(crate) mod address_book;
pub(crate) mod api;
pub(crate) mod cached;
mod config_cache;
pub(crate) mod fields;
pub(crate) mod invitations;
mod migrations;
pub(crate) mod portal;
#[cfg(test)]
mod query_plans;
pub(crate) mod queue;
pub(crate) mod secure;
pub(crate) mod sharing;
mod sqlite;
mod states;
pub(crate) mod webhooks;

pub(crate) use accounts::AccountStore;
pub(crate) use address_book::AddressBookStore;
pub(crate) use api::ApiStore;
pub(crate) use fields::FieldCipher;
pub(crate) use invitations::InvitationStore;
pub(crate) use portal::PortalStore;
pub(crate) use secure::SecureMessageStore;
pub(crate) use sharing::SharingStore;
pub(crate) use sqlite::tune_connection;
use sqlite::SqliteStore;
pub(crate) use states::{
    require_verified, AccountRole, ContactKind, Disposition, Event, Flow, InvitationState, NoticeKind, NoticeState,
    ProofingState, RecipientStatus, Relationship, Role, SessionStage, ShareCheck, ShareEvent, TrackStatus,
};
pub(crate) use webhooks::WebhookStore;

/// The store as the node holds it: its records (`Store`, `ApiStore`) and what the backend does
/// beside them. Everything above the store names this, never a backend: a PostgreSQL backend
/// implements it next to SQLite's.
pub(crate) trait NodeStore:
    Store
    + ApiStore
    + InvitationStore
    + AccountStore
    + AddressBookStore
    + SecureMessageStore
    + PortalStore
    + SharingStore
    + WebhookStore
    + Send
{
    /// For a store that keeps the configuration in memory (`open_for_workers`): keeps it while the
    /// database's configuration change count is still `generation`, else forgets what changed.
    fn follow_config_at(&self, generation: i64);
    /// Seals and opens PHI fields with `cipher` (the KEK) from now on.
    fn attach_fields(&self, cipher: std::sync::Arc<dyn FieldCipher>) -> Result<()>;
    /// Seals what was written in the clear before sealing existed (needs `attach_fields`).
    fn seal_plaintext(&self) -> Result<usize>;
    fn schema_version(&self) -> Result<i64>;
}

/// Creates a new database at `path` (file 0600, directory 0700) and migrates it; `actor` signs
/// its audit log lines.
pub(crate) fn create(path: &std::path::Path, actor: &str) -> Result<Box<dyn NodeStore>> {
    Ok(Box::new(SqliteStore::create(path, actor)?))
}

/// Opens the existing hisp database at `path` (of this version's schema).
pub(crate) fn open(path: &std::path::Path, actor: &str) -> Result<Box<dyn NodeStore>> {
    Ok(Box::new(SqliteStore::open(path, actor)?))
}

/// A consistent copy of the hisp database at `from` (a running node's too) in the new file `to`:
/// its schema version and size.
pub(crate) fn backup(from: &std::path::Path, to: &std::path::Path) -> Result<(i64, u64)> {
    SqliteStore::backup(from, to)
}

/// The backup `from` put in place as the database `to` (which must not exist).
pub(crate) fn restore(from: &std::path::Path, to: &std::path::Path) -> Result<(i64, u64)> {
    SqliteStore::restore(from, to)
}

/// Migrates the hisp database at `path` to this version's schema: (before, after).
pub(crate) fn upgrade(path: &std::path::Path) -> Result<(i64, i64)> {
    SqliteStore::upgrade(path)
}

/// The store for the queue workers: commits not synced one by one, the configuration kept in
/// memory (see `SqliteStore::open_for_workers`).
pub(crate) fn open_for_workers(path: &std::path::Path, actor: &str) -> Result<Box<dyn NodeStore>> {
    Ok(Box::new(SqliteStore::open_for_workers(path, actor)?))
}

/// A database in memory (tests and fuzzing).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn in_memory(actor: &str) -> Result<Box<dyn NodeStore>> {
    Ok(Box::new(SqliteStore::in_memory(actor)?))
}

/// The schema version a database has once every migration has run.
pub const SCHEMA_VERSION: usize = migrations::MIGRATIONS.len();

use crate::address::{Binding, DirectAddress, Domain, Owner};

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("no database at {0}: run `hisp init` first (or point --db / HISP_DB at one)")]
    Missing(String),
    #[error("database at {0} already exists")]
    Exists(String),
    #[error("cannot create database at {0}: {1}")]
    Create(String, std::io::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database schema version {found} is newer than this hisp understands ({known}); upgrade hisp")]
    TooNew { found: i64, known: i64 },
    #[error("the database at {path} has schema version {found}; this hisp needs {known}: back it up (`hisp backup`), then run `hisp init --upgrade`")]
    Outdated { path: String, found: i64, known: i64 },
    #[error("{0} is not a hisp database ({1}); nothing was written to it: give the path of hisp's database (--db / HISP_DB), or `hisp init` a new one")]
    NotHisp(String, String),
    #[error("cannot open the database at {0} for reading and writing: {1} (run hisp as the user that owns it)")]
    Access(String, std::io::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0}")]
    Conflict(String),
    /// A limit against abuse was reached (invitations per practice per hour): try again later.
    #[error("{0}")]
    TooMany(String),
    #[error("cannot make the commit durable (fsync of {0}): {1}")]
    Sync(String, std::io::Error),
}

impl StoreError {
    /// What a store that cannot be read or written means for a message being processed: our
    /// trouble, and temporary; a peer or sender sees only that (the log keeps the reason).
    pub(crate) fn failure(&self) -> crate::failure::Failure {
        crate::failure::Failure::local(self)
    }
}

/// The owner name under which the development CA's key is kept (not a hosted domain).
pub(crate) const DEV_CA_OWNER: &str = "dev-ca.hisp.invalid";

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct DomainRecord {
    pub domain: Domain,
    pub practice: String,
    pub addresses: u64,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct AddressRecord {
    pub address: DirectAddress,
    pub has_password: bool,
    pub created_at: i64,
}

/// A certificate as it is stored; `der` is the certificate, never a key.
#[derive(Debug, Clone)]
pub(crate) struct CertRecord {
    pub owner: String,
    pub binding: Binding,
    pub subject: String,
    pub issuer: String,
    pub sha256: String,
    pub not_before: i64,
    pub not_after: i64,
    pub key_id: Option<i64>,
    pub der: Vec<u8>,
    /// When the development CA revoked it (None: not revoked by us).
    pub revoked_at: Option<i64>,
}

/// A certificate the development CA revoked: what its CRL lists.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RevocationRecord {
    /// The serial number, lowercase hex of its big-endian bytes.
    pub serial: String,
    pub sha256: String,
    pub subject: String,
    pub not_after: i64,
    pub revoked_at: i64,
    pub reason: String,
}

/// What the store needs to record a new certificate.
#[derive(Debug, Clone)]
pub(crate) struct NewCert {
    pub subject: String,
    pub issuer: String,
    pub sha256: String,
    pub not_before: i64,
    pub not_after: i64,
    pub der: Vec<u8>,
}

/// A private key encrypted under the key-encryption key, with the hash of its public half
/// (so a certificate can find its key, e.g. after a CSR).
#[derive(Debug, Clone)]
pub(crate) struct SealedKey {
    pub id: i64,
    pub sealed: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct AnchorRecord {
    pub domain: Domain,
    pub subject: String,
    pub sha256: String,
    pub not_after: i64,
    pub incoming: bool,
    pub outgoing: bool,
    pub der: Vec<u8>,
}

/// A trust bundle: where it comes from, whom it applies to, and how its last refresh went.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct BundleRecord {
    pub name: String,
    pub domain: Domain,
    /// An http:// URL or a file path.
    pub source: String,
    #[serde(skip)]
    pub signer_der: Option<Vec<u8>>,
    pub incoming: bool,
    pub outgoing: bool,
    pub anchors: usize,
    pub last_good_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    /// Why the last refresh failed (None when it succeeded).
    pub last_error: Option<String>,
}

/// One certificate of a bundle.
#[derive(Debug, Clone)]
pub struct BundleAnchor {
    pub subject: String,
    pub sha256: String,
    pub not_after: i64,
    pub der: Vec<u8>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// A practice, its domains and where its identity proofing stands.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PracticeRecord {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub domains: Vec<String>,
    pub addresses: u64,
    pub proofing: ProofingState,
    /// Mail its users send by Direct to an address with no certificate is held and its
    /// recipient invited, instead of bounced.
    pub invite_unreachable: bool,
    /// Its members sign in to the portal with a second factor.
    pub two_factor_required: bool,
    /// Its members may send invitations.
    pub invitations_allowed: bool,
    /// Sharing documents by link: the check a contact passes (off: no sharing)...
    pub share_check: ShareCheck,
    /// ...and the roles of the members who may share.
    pub share_roles: Vec<AccountRole>,
    /// An expired link renews itself once its contact passes the check again (else the contact
    /// asks the practice for a new one).
    pub share_auto_renew: bool,
    pub created_at: i64,
}

/// A proofing record as stored: the state and the decision in the clear (the gates read them),
/// the rest sealed under the KEK by the onboarding module.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoredProofing {
    pub state: ProofingState,
    /// Bumped on every save; a save based on an older version is refused.
    pub version: i64,
    pub sealed: Option<Vec<u8>>,
    /// JSON list of {field, message}.
    pub reasons: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// A certificate issued with a new key (sealed under the KEK), kept with the decision that let
/// it be issued.
#[derive(Debug, Clone)]
pub(crate) struct NewIdentity {
    pub owner: Owner,
    pub public_key_sha256: String,
    pub sealed_key: Vec<u8>,
    pub cert: NewCert,
}

/// An address to import (`hisp address import`), with the line of the file it came from.
#[derive(Debug, Clone)]
pub(crate) struct NewAddress {
    pub line: u64,
    pub address: DirectAddress,
    /// The practice the address's domain belongs to: the domain is added to it when not hosted
    /// yet; when it is, it must be this practice's.
    pub practice: Option<String>,
    pub password_hash: Option<String>,
}

/// What became of one imported address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Imported {
    Added {
        /// Its domain was added with it (to the practice named, made if new).
        domain_added: bool,
    },
    Refused(String),
}

/// Which anchors a trust decision uses: incoming when receiving, outgoing when sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Every change through this trait is written to the audit log in the same transaction,
/// attributed to the actor the store was opened for.
pub(crate) trait Store {
    fn add_domain(&self, domain: &Domain, practice: &str) -> Result<()>;
    fn domains(&self) -> Result<Vec<DomainRecord>>;
    fn has_domain(&self, domain: &Domain) -> Result<bool>;
    /// Removes a domain; with `cascade` also its addresses, certificates, keys and anchors.
    fn remove_domain(&self, domain: &Domain, cascade: bool) -> Result<()>;
    /// What removing `domain` with --cascade would remove, as (what, how many), those there are:
    /// its addresses, certificates, keys, anchors and bundles, and when its practice would go with
    /// it, the practice's referrals, documents, API tokens, shares and webhooks.
    fn domain_removal(&self, domain: &Domain) -> Result<Vec<(&'static str, i64)>>;
    /// What removing `address` removes (certificates, keys, listings), as (what, how many).
    fn address_removal(&self, address: &DirectAddress) -> Result<Vec<(&'static str, i64)>>;

    fn add_address(&self, address: &DirectAddress, password_hash: Option<&str>) -> Result<()>;
    /// Adds a batch of addresses in one transaction: each added, or refused with why (already
    /// hosted, a domain not hosted and no practice named, a domain of another practice); one
    /// audit entry for the batch.
    fn import_addresses(&self, batch: &[NewAddress]) -> Result<Vec<Imported>>;
    fn addresses(&self, domain: Option<&Domain>) -> Result<Vec<AddressRecord>>;
    fn has_address(&self, address: &DirectAddress) -> Result<bool>;
    fn remove_address(&self, address: &DirectAddress) -> Result<()>;
    /// Addresses an upgrade set aside because they break a newer address rule: (address, reason).
    fn set_aside_addresses(&self) -> Result<Vec<(String, String)>>;
    fn set_password(&self, address: &DirectAddress, password_hash: &str) -> Result<()>;
    fn password_hash(&self, address: &DirectAddress) -> Result<Option<String>>;

    fn add_key(&self, owner: &Owner, public_key_sha256: &str, sealed: &[u8]) -> Result<i64>;
    fn key(&self, id: i64) -> Result<SealedKey>;
    fn key_for_public(&self, public_key_sha256: &str) -> Result<Option<SealedKey>>;
    fn add_certificate(&self, owner: &Owner, cert: &NewCert, key_id: Option<i64>) -> Result<i64>;
    fn certificates(&self, owner: Option<&Owner>) -> Result<Vec<CertRecord>>;
    fn remove_certificate(&self, sha256: &str) -> Result<()>;

    fn add_anchor(&self, anchor: &AnchorRecord) -> Result<()>;
    fn anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>>;
    fn remove_anchor(&self, domain: &Domain, sha256: &str) -> Result<()>;
    /// The anchors of the domain's trust bundles (their last good copies), as anchor records.
    fn bundle_anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>>;

    fn add_bundle(&self, bundle: &BundleRecord) -> Result<()>;
    fn bundles(&self) -> Result<Vec<BundleRecord>>;
    /// Records a refresh: Ok replaces the bundle's anchors; Err keeps the last good ones.
    fn bundle_refreshed(&self, name: &str, outcome: std::result::Result<&[BundleAnchor], &str>) -> Result<()>;
    fn remove_bundle(&self, name: &str) -> Result<()>;

    /// The development CA: its certificate and its (sealed) key.
    fn set_ca(&self, der: &[u8], key_id: i64, replace: bool) -> Result<()>;
    fn ca(&self) -> Result<Option<(Vec<u8>, i64)>>;
    /// Records that the development CA revoked a certificate.
    fn revoke(&self, revocation: &RevocationRecord) -> Result<()>;
    /// The development CA's revocations, oldest first.
    fn revocations(&self) -> Result<Vec<RevocationRecord>>;

    /// A new practice with its Direct domain; refused if either exists.
    /// A practice, its Direct domain and the anchors the domain trusts from the start.
    fn add_practice(&self, name: &str, domain: &Domain, anchors: &[AnchorRecord]) -> Result<()>;
    fn practices(&self) -> Result<Vec<PracticeRecord>>;
    /// A practice by its name (any case) or one of its domains.
    fn practice(&self, name_or_domain: &str) -> Result<PracticeRecord>;
    /// Whether its users' mail to addresses with no certificate is held and the recipient invited.
    fn set_invite_unreachable(&self, practice_id: i64, on: bool) -> Result<()>;
    /// The practice of a hosted domain and its proofing state (None: the domain is not hosted).
    fn practice_state(&self, domain: &Domain) -> Result<Option<(String, ProofingState)>>;
    /// The practice's proofing record (a practice without one has not started).
    fn proofing(&self, practice_id: i64) -> Result<StoredProofing>;
    /// Saves a proofing record if nobody saved another since it was read (its version).
    /// Saves a proofing step, and the certificates it brings (a verification's), in one
    /// transaction.
    fn save_proofing(
        &self,
        practice_id: i64,
        record: &StoredProofing,
        issued: &[NewIdentity],
        action: &str,
        detail: &str,
    ) -> Result<()>;

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Sets a meta value only if it is absent; returns the value now stored.
    fn meta_init(&self, key: &str, value: &[u8]) -> Result<Vec<u8>>;
    /// Sets a meta value, replacing what was there.
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<()>;

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>>;
    /// Records in the audit log something done that changed nothing here: PHI read (a document
    /// downloaded, a message's text shown), a message removed from the queue.
    fn note(&self, action: &str, subject: &str, detail: &str) -> Result<()>;
}

impl NewCert {
    /// The record of `cert`.
    pub(crate) fn of(cert: &openssl::x509::X509Ref) -> std::result::Result<NewCert, openssl::error::ErrorStack> {
        let der = cert.to_der()?;
        Ok(NewCert {
            subject: crate::pki::name_line(cert.subject_name()),
            issuer: crate::pki::name_line(cert.issuer_name()),
            sha256: crate::pki::sha256_hex(&der),
            not_before: crate::pki::unix_time(cert.not_before()),
            not_after: crate::pki::unix_time(cert.not_after()),
            der,
        })
    }
}

impl BundleRecord {
    /// A bundle `domain` subscribes to, not fetched yet.
    pub(crate) fn new(
        name: String,
        domain: Domain,
        source: String,
        signer_der: Option<Vec<u8>>,
        incoming: bool,
        outgoing: bool,
    ) -> BundleRecord {
        BundleRecord {
            name,
            domain,
            source,
            signer_der,
            incoming,
            outgoing,
            anchors: 0,
            last_good_at: None,
            last_attempt_at: None,
            last_error: None,
        }
    }
}

impl AnchorRecord {
    /// `cert` as an anchor of `domain` for the given directions.
    pub(crate) fn of(
        cert: &openssl::x509::X509Ref,
        domain: &Domain,
        incoming: bool,
        outgoing: bool,
    ) -> std::result::Result<AnchorRecord, openssl::error::ErrorStack> {
        let der = cert.to_der()?;
        Ok(AnchorRecord {
            domain: domain.clone(),
            subject: crate::pki::name_line(cert.subject_name()),
            sha256: crate::pki::sha256_hex(&der),
            not_after: crate::pki::unix_time(cert.not_after()),
            incoming,
            outgoing,
            der,
        })
    }
}

impl PracticeRecord {
    /// Its domains, parsed (each was checked when it was added).
    pub(crate) fn hosted_domains(&self) -> Vec<Domain> {
        self.domains.iter().filter_map(|d| Domain::parse(d).ok()).collect()
    }

    /// Whether `address` is one of its hosted addresses (a user's, or a shared inbox).
    pub(crate) fn owns(&self, store: &dyn Store, address: &DirectAddress) -> Result<bool> {
        Ok(self.domains.iter().any(|d| d == address.domain().as_str()) && store.has_address(address)?)
    }

    /// Every address of every one of its domains.
    pub(crate) fn addresses(&self, store: &dyn Store) -> Result<Vec<DirectAddress>> {
        let mut out = Vec::new();
        for domain in self.hosted_domains() {
            out.extend(store.addresses(Some(&domain))?.into_iter().map(|a| a.address));
        }
        Ok(out)
    }
}

impl CertRecord {
    /// Inside its validity period at `now` and not revoked by us: fit to sign with or publish.
    pub(crate) fn usable_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after && self.revoked_at.is_none()
    }
}

impl Direction {
    pub(crate) fn applies(self, anchor: &AnchorRecord) -> bool {
        match self {
            Direction::Incoming => anchor.incoming,
            Direction::Outgoing => anchor.outgoing,
        }
    }
}
