//! The SQLite adapter of [`Store`]: WAL mode, foreign keys on, files created 0600.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::cached::CachedSql;
use super::config_cache::ConfigCache;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::migrations::MIGRATIONS;
use super::*;
use crate::clock::{Clock, SystemClock};

/// One logged change of configuration: its kind and key (migration 15).
type ConfigChange = (String, Option<String>);

pub(crate) struct SqliteStore {
    pub(super) conn: Connection,
    pub(super) actor: String,
    pub(super) clock: Box<dyn Clock>,
    /// The configuration read so far, for a worker's store (off for every other).
    cache: ConfigCache,
}

impl SqliteStore {
    /// Creates a new database (and its directory, 0700) with the file 0600, then migrates it.
    pub(crate) fn create(path: &Path, actor: &str) -> Result<SqliteStore> {
        let shown = path.display().to_string();
        if path.exists() {
            return Err(StoreError::Exists(shown));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StoreError::Create(shown.clone(), e))?;
        }
        // Create the file ourselves so it is never world-readable, not even for an instant.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Create(shown.clone(), e))?;
        let mut conn = Connection::open(path)?;
        tune_connection(&conn, "FULL", std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        migrate(&mut conn)?;
        drop(conn);
        Self::open(path, actor)
    }

    /// Opens an existing hisp database of this version's schema (`hisp init --upgrade` migrates
    /// an older one; nothing else does).
    pub(crate) fn open(path: &Path, actor: &str) -> Result<SqliteStore> {
        Self::open_with(path, actor, "FULL", false)
    }

    /// Migrates the hisp database at `path` to this version's schema; the versions before and after.
    pub(crate) fn upgrade(path: &Path) -> Result<(i64, i64)> {
        let conn = Self::connect(path)?;
        let mut conn = conn;
        let before: i64 = conn.row("PRAGMA user_version", [], |r| r.get(0))?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        migrate(&mut conn)?;
        Ok((before, MIGRATIONS.len() as i64))
    }

    /// Copies the hisp database at `from` to the new file `to` (0600) with SQLite's online
    /// backup: a consistent copy while a node writes to it; checked before it is kept. Its schema
    /// version and size in bytes.
    pub(crate) fn backup(from: &Path, to: &Path) -> Result<(i64, u64)> {
        let source = Self::connect(from)?;
        copy_checked(&source, to)
    }

    /// Puts the hisp database backed up in `from` at `to`, which must not exist: copied next to
    /// it, checked, then renamed into place.
    pub(crate) fn restore(from: &Path, to: &Path) -> Result<(i64, u64)> {
        let shown = to.display().to_string();
        let mut wal = to.as_os_str().to_owned();
        wal.push("-wal");
        if to.exists() || Path::new(&wal).exists() {
            return Err(StoreError::Exists(format!(
                "{shown} (or its -wal file): move it away first, with hisp stopped"
            )));
        }
        let source = Self::connect(from)?;
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| StoreError::Create(shown.clone(), e))?;
        }
        let mut partial = to.as_os_str().to_owned();
        partial.push(".restoring");
        let partial = std::path::PathBuf::from(partial);
        let _ = std::fs::remove_file(&partial);
        let copied = copy_checked(&source, &partial);
        if copied.is_err() {
            let _ = std::fs::remove_file(&partial);
            return copied;
        }
        std::fs::rename(&partial, to).map_err(|e| StoreError::Create(shown, e))?;
        copied
    }

    /// A connection to the hisp database at `path`, tuned; refused for a file that is missing,
    /// that this user may not read and write, or that is not a hisp database.
    fn connect(path: &Path) -> Result<Connection> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(StoreError::Missing(shown));
        }
        // SQLite's own message for this is "unable to open database file". Asked of access(2),
        // never by opening the file: closing any descriptor of it would drop the POSIX locks this
        // process's other connections hold on it (SQLite's documented way to corrupt a database).
        access_read_write(path).map_err(|e| StoreError::Access(shown.clone(), e))?;
        let conn = Connection::open(path)?;
        // Only read until it is known to be ours: WAL mode alone would rewrite another file.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        identify(&conn, &shown).map_err(|e| match e {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::NotADatabase => {
                StoreError::NotHisp(shown.clone(), "it is not an SQLite database".into())
            }
            other => other,
        })?;
        tune_connection(&conn, "FULL", std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// The store for the queue workers: commits are not fsync'ed one by one (synchronous=NORMAL,
    /// as for the workers' queue handle, see `Queue::for_workers`). What a worker writes
    /// here (a received message's referral and document copies) is written before the delivery is
    /// recorded in the same WAL, so a power loss that undoes it undoes the delivery record too,
    /// and the redo writes it again (once). Intake keeps FULL: that is the promise behind a 250.
    /// It keeps the configuration it reads in memory (`config_cache`): give it the change count
    /// before each message (`follow_config_at`).
    pub(crate) fn open_for_workers(path: &Path, actor: &str) -> Result<SqliteStore> {
        Self::open_with(path, actor, "NORMAL", true)
    }

    fn open_with(path: &Path, actor: &str, synchronous: &str, cache_config: bool) -> Result<SqliteStore> {
        let conn = Self::connect(path)?;
        let found: i64 = conn.row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if found < known {
            return Err(StoreError::Outdated { path: path.display().to_string(), found, known });
        }
        Self::with_connection(conn, actor, synchronous, cache_config)
    }

    /// An in-memory database, for tests.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn in_memory(actor: &str) -> Result<SqliteStore> {
        Self::with_connection(Connection::open_in_memory()?, actor, "FULL", false)
    }

    fn with_connection(
        mut conn: Connection,
        actor: &str,
        synchronous: &str,
        cache_config: bool,
    ) -> Result<SqliteStore> {
        tune_connection(&conn, synchronous, std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn,
            actor: actor.to_string(),
            clock: Box::new(SystemClock),
            cache: ConfigCache::new(cache_config),
        })
    }

    /// What changed after generation `seen` up to `generation`, or None when the log no longer
    /// holds all of it, or it is so much that reading everything afresh is as cheap.
    fn config_changes(&self, seen: i64, generation: i64) -> Result<Option<Vec<ConfigChange>>> {
        const AT_MOST: i64 = 5_000;
        if generation - seen > AT_MOST {
            return Ok(None);
        }
        let oldest: Option<i64> = self.conn.row("SELECT min(generation) FROM config_changes", [], |r| r.get(0))?;
        if oldest.is_none_or(|oldest| oldest > seen + 1) {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, key FROM config_changes WHERE generation > ?1 AND generation <= ?2")?;
        let rows = stmt.query_map([seen, generation], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
    }

    /// Runs `change` in a transaction and records it in the audit log in that same transaction.
    pub(super) fn change<T>(
        &self,
        action: &str,
        subject: &str,
        detail: &str,
        change: impl FnOnce(&Transaction) -> Result<T>,
    ) -> Result<T> {
        // IMMEDIATE: the write lock first. A transaction that reads and then writes while another
        // connection committed meanwhile fails at once ("database is locked", no busy wait).
        let tx = Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)?;
        let before = if self.cache.enabled() { Some(config_generation(&tx)?) } else { None };
        let out = change(&tx)?;
        tx.run(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.clock.unix_now(), self.actor, action, subject, detail],
        )?;
        let after = match before {
            Some(before) => Some(config_generation(&tx)?).filter(|after| *after != before),
            None => None,
        };
        tx.commit()?;
        // A change of configuration made here is read afresh at once, not from the next message on.
        if let Some(after) = after {
            self.follow_config_at(after);
        }
        Ok(out)
    }

    /// Every practice, or the one named `wanted.0` exactly (any ASCII case) or hosting the domain
    /// `wanted.1`; by name.
    fn practice_rows(&self, wanted: Option<(&str, &str)>) -> Result<Vec<PracticeRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.name, p.created_at, coalesce(f.state, 'not-started'), p.invite_unreachable,
                    p.two_factor_required, p.invitations_allowed, p.share_check, p.share_roles, (SELECT group_concat(d.name, ' ') FROM domains d WHERE d.practice_id = p.id),
                    (SELECT count(*) FROM addresses a JOIN domains d ON d.id = a.domain_id WHERE d.practice_id = p.id),
                    p.share_auto_renew
             FROM practices p LEFT JOIN proofing f ON f.practice_id = p.id
             WHERE ?1 IS NULL OR p.name = ?1 COLLATE NOCASE OR p.id IN (SELECT practice_id FROM domains WHERE name = ?2)
             ORDER BY p.name",
        )?;
        let (name, domain) = wanted.unzip();
        let rows = stmt.query_map([name, domain], |r| {
            let domains: Option<String> = r.get(9)?;
            Ok(PracticeRecord {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                proofing: r.get(3)?,
                invite_unreachable: r.get(4)?,
                two_factor_required: r.get(5)?,
                invitations_allowed: r.get(6)?,
                share_check: r.get(7)?,
                share_roles: r.get::<_, String>(8)?.split_whitespace().filter_map(AccountRole::parse).collect(),
                domains: domains.unwrap_or_default().split_whitespace().map(String::from).collect(),
                addresses: r.get::<_, i64>(10)? as u64,
                share_auto_renew: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Anchors from `sql` (its ?1: a domain, or NULL for all); rows that do not parse are left out.
    fn anchor_rows(&self, sql: &str, domain: Option<String>) -> Result<Vec<AnchorRecord>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([domain], anchor_row)?;
        let rows: Vec<Option<AnchorRecord>> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(rows.into_iter().flatten().collect())
    }

    fn domain_id(tx: &Connection, domain: &Domain) -> Result<i64> {
        tx.row("SELECT id FROM domains WHERE name = ?1", [domain.as_str()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("domain {domain} (add it with `hisp domain add {domain}`)")))
    }
}

/// Keeps a sealed private key of `owner`; its id.
fn insert_key(tx: &Transaction, owner: &Owner, public_key_sha256: &str, sealed: &[u8], now: i64) -> Result<i64> {
    let owner_text = owner.to_string();
    let domain_id = match owner {
        Owner::Domain(d) if d.as_str() == DEV_CA_OWNER => None,
        other => Some(SqliteStore::domain_id(tx, other.domain())?),
    };
    tx.run(
        "INSERT INTO private_keys (domain_id, owner, public_key_sha256, sealed, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![domain_id, owner_text, public_key_sha256, sealed, now],
    )
    .map_err(duplicate_as(format!("private key {public_key_sha256}")))?;
    Ok(tx.last_insert_rowid())
}

/// Keeps a certificate of `owner` (a hosted address or domain), with its key's id if held here.
fn insert_certificate(tx: &Transaction, owner: &Owner, cert: &NewCert, key_id: Option<i64>, now: i64) -> Result<i64> {
    let owner_text = owner.to_string();
    let domain_id = SqliteStore::domain_id(tx, owner.domain())?;
    if let Owner::Address(address) = owner {
        let known: Option<i64> =
            tx.row("SELECT 1 FROM addresses WHERE address = ?1", [address.to_string()], |r| r.get(0)).optional()?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!("address {address} (add it with `hisp address add {address}`)")));
        }
    }
    tx.run(
        "INSERT INTO certificates (domain_id, owner, binding, subject, issuer, sha256, not_before, not_after,
                                   key_id, der, created_at)
         VALUES (?11, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            owner_text,
            owner.binding().as_str(),
            cert.subject,
            cert.issuer,
            cert.sha256,
            cert.not_before,
            cert.not_after,
            key_id,
            cert.der,
            now,
            domain_id
        ],
    )
    .map_err(duplicate_as(format!("certificate {}", cert.sha256)))?;
    Ok(tx.last_insert_rowid())
}

/// How every connection of the node uses SQLite: WAL, foreign keys enforced, `synchronous` (FULL:
/// fsync at every commit; NORMAL: durable across a crash of the process), waiting up to `busy` for
/// a lock.
pub(crate) fn tune_connection(conn: &Connection, synchronous: &str, busy: std::time::Duration) -> Result<()> {
    conn.busy_timeout(busy)?;
    // Room for every statement a connection runs per message (`cached::CachedSql`); the default
    // of 16 would evict and re-prepare them in turn.
    conn.set_prepared_statement_cache_capacity(96);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Sealed fields open only once a KEK is attached (`attach_fields`).
    fields::register(conn, None)?;
    Ok(())
}

/// How many changes the configuration has seen (see migration 10).
fn config_generation(conn: &Connection) -> Result<i64> {
    Ok(conn.row("SELECT n FROM config_generation", [], |r| r.get(0))?)
}

/// Copies the database of `source` into the new file `to` (0600), page by page with SQLite's
/// online backup, then checks the copy (integrity, a hisp database of a known schema).
fn copy_checked(source: &Connection, to: &Path) -> Result<(i64, u64)> {
    let shown = to.display().to_string();
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::Exists(shown.clone()),
        _ => StoreError::Create(shown.clone(), e),
    })?;
    let mut copy = Connection::open(to)?;
    {
        let backup = rusqlite::backup::Backup::new(source, &mut copy)?;
        backup.run_to_completion(1024, std::time::Duration::from_millis(0), None)?;
    }
    let check: String = copy.row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Conflict(format!("the copy at {shown} does not check out: {check}")));
    }
    identify(&copy, &shown)?;
    let version: i64 = copy.row("PRAGMA user_version", [], |r| r.get(0))?;
    // A copy that is one file: no WAL beside it.
    copy.pragma_update(None, "journal_mode", "delete")?;
    drop(copy);
    let bytes = std::fs::metadata(to).map_err(|e| StoreError::Create(shown, e))?.len();
    Ok((version, bytes))
}

/// Whether this user may read and write `path`, without opening it.
fn access_read_write(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    if unsafe { libc::access(c_path.as_ptr(), libc::R_OK | libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What SQLite's header says of a hisp database ("HISP"), set by `hisp init`.
const APPLICATION_ID: i32 = 0x4849_5350;

/// Refuses a database hisp did not make: its application id is ours, or (made before the id was
/// set) it has a schema version and hisp's tables.
fn identify(conn: &Connection, shown: &str) -> Result<()> {
    let id: i32 = conn.row("PRAGMA application_id", [], |r| r.get(0))?;
    if id == APPLICATION_ID {
        return Ok(());
    }
    let version: i64 = conn.row("PRAGMA user_version", [], |r| r.get(0))?;
    let ours: i64 = conn.row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('domains', 'addresses', 'queue_messages')",
        [],
        |r| r.get(0),
    )?;
    if id == 0 && version > 0 && ours == 3 {
        return Ok(());
    }
    let why = if id != 0 {
        format!("its SQLite application id is {id:#x}, another program's")
    } else if version == 0 && ours == 0 {
        let tables: i64 = conn.row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables == 0 {
            "it is empty".into()
        } else {
            "it holds another program's tables".into()
        }
    } else {
        "it lacks hisp's tables".into()
    };
    Err(StoreError::NotHisp(shown.to_string(), why))
}

fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Runs the migrations after the database's version up to `target` (tests stop short of the last).
fn migrate_to(conn: &mut Connection, target: usize) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().take(target).skip(found as usize) {
        // Another process opening the database at the same time may have run it meanwhile.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if tx.row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? > index as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Keeps a trust anchor of a hosted domain.
fn insert_anchor(tx: &Connection, anchor: &AnchorRecord) -> Result<()> {
    let domain_id = SqliteStore::domain_id(tx, &anchor.domain)?;
    tx.run(
        "INSERT INTO anchors (domain_id, subject, sha256, not_after, incoming, outgoing, der)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            domain_id,
            anchor.subject,
            anchor.sha256,
            anchor.not_after,
            anchor.incoming,
            anchor.outgoing,
            anchor.der
        ],
    )
    .map_err(duplicate_as(format!("anchor {} for {}", anchor.sha256, anchor.domain)))?;
    Ok(())
}

/// A practice with its first domain and the anchors that domain trusts from the start, in the
/// caller's transaction; the practice's id.
pub(super) fn insert_practice(
    tx: &Connection,
    name: &str,
    domain: &Domain,
    anchors: &[AnchorRecord],
    now: i64,
) -> Result<i64> {
    let taken: Option<i64> =
        tx.row("SELECT id FROM practices WHERE name = ?1 COLLATE NOCASE", [name], |r| r.get(0)).optional()?;
    if taken.is_some() {
        return Err(StoreError::Duplicate(format!("practice {name:?}")));
    }
    tx.run("INSERT INTO practices (name, created_at) VALUES (?1, ?2)", params![name, now])?;
    let practice_id = tx.last_insert_rowid();
    tx.run(
        "INSERT INTO domains (practice_id, name, created_at) VALUES (?1, ?2, ?3)",
        params![practice_id, domain.as_str(), now],
    )
    .map_err(duplicate_as(format!("domain {domain}")))?;
    for anchor in anchors {
        insert_anchor(tx, anchor)?;
    }
    Ok(practice_id)
}

pub(super) fn duplicate_as(what: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Duplicate(what)
        }
        other => StoreError::Sqlite(other),
    }
}

fn binding_from(text: &str) -> Binding {
    if text == "address" {
        Binding::Address
    } else {
        Binding::Domain
    }
}

fn cert_row(r: &rusqlite::Row) -> rusqlite::Result<CertRecord> {
    Ok(CertRecord {
        owner: r.get(0)?,
        binding: binding_from(&r.get::<_, String>(1)?),
        subject: r.get(2)?,
        issuer: r.get(3)?,
        sha256: r.get(4)?,
        not_before: r.get(5)?,
        not_after: r.get(6)?,
        key_id: r.get(7)?,
        der: r.get(8)?,
        revoked_at: r.get(9)?,
    })
}

const CERT_COLUMNS: &str = "owner, binding, subject, issuer, sha256, not_before, not_after, key_id, der,
     (SELECT revoked_at FROM revocations WHERE revocations.sha256 = certificates.sha256)";

fn anchor_row(r: &rusqlite::Row) -> rusqlite::Result<Option<AnchorRecord>> {
    let Ok(domain) = Domain::parse(&r.get::<_, String>(0)?) else {
        return Ok(None);
    };
    Ok(Some(AnchorRecord {
        domain,
        subject: r.get(1)?,
        sha256: r.get(2)?,
        not_after: r.get(3)?,
        incoming: r.get(4)?,
        outgoing: r.get(5)?,
        der: r.get(6)?,
    }))
}

impl NodeStore for SqliteStore {
    /// For a store that keeps the configuration in memory: keeps it while the database's
    /// configuration change count is still `generation` (the workers read it in the transaction
    /// that claims their next message); when it moved, forgets what the changes since touched
    /// (read again as asked), or everything when the change log cannot say.
    fn follow_config_at(&self, generation: i64) {
        if !self.cache.enabled() {
            return;
        }
        match self.cache.generation() {
            Some(seen) if seen == generation => {}
            Some(seen) if seen < generation => match self.config_changes(seen, generation) {
                Ok(Some(changes)) => {
                    for (kind, key) in &changes {
                        self.cache.forget(kind, key.as_deref());
                    }
                    self.cache.moved_to(generation);
                }
                _ => self.cache.follow(generation),
            },
            _ => self.cache.follow(generation),
        }
    }

    /// Seals and opens PHI fields with `cipher` (the KEK) from now on.
    fn attach_fields(&self, cipher: std::sync::Arc<dyn FieldCipher>) -> Result<()> {
        Ok(fields::register(&self.conn, Some(cipher))?)
    }

    /// Seals what was written in the clear before sealing existed (needs `attach_fields`).
    fn seal_plaintext(&self) -> Result<usize> {
        Ok(fields::seal_plaintext(&self.conn)?)
    }

    fn schema_version(&self) -> Result<i64> {
        Ok(self.conn.row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

impl Store for SqliteStore {
    fn add_domain(&self, domain: &Domain, practice: &str) -> Result<()> {
        let now = self.clock.unix_now();
        self.change("domain.add", domain.as_str(), &format!("practice={practice}"), |tx| {
            tx.run("INSERT OR IGNORE INTO practices (name, created_at) VALUES (?1, ?2)", params![practice, now])?;
            let practice_id: i64 = tx.row("SELECT id FROM practices WHERE name = ?1", [practice], |r| r.get(0))?;
            tx.run(
                "INSERT INTO domains (practice_id, name, created_at) VALUES (?1, ?2, ?3)",
                params![practice_id, domain.as_str(), now],
            )
            .map_err(duplicate_as(format!("domain {domain}")))?;
            Ok(())
        })
    }

    fn domains(&self) -> Result<Vec<DomainRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.name, p.name, d.created_at, (SELECT count(*) FROM addresses a WHERE a.domain_id = d.id)
             FROM domains d JOIN practices p ON p.id = d.practice_id ORDER BY d.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, practice, created_at, addresses) = row?;
            if let Ok(domain) = Domain::parse(&name) {
                out.push(DomainRecord { domain, practice, addresses: addresses as u64, created_at });
            }
        }
        Ok(out)
    }

    fn has_domain(&self, domain: &Domain) -> Result<bool> {
        self.cache.read(&self.cache.has_domain, domain.to_string(), || {
            Ok(self
                .conn
                .row("SELECT 1 FROM domains WHERE name = ?1", [domain.as_str()], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    fn domain_removal(&self, domain: &Domain) -> Result<Vec<(&'static str, i64)>> {
        let id = Self::domain_id(&self.conn, domain)?;
        let (practice_id, last): (i64, bool) = self.conn.row(
            "SELECT d.practice_id, (SELECT count(*) FROM domains o WHERE o.practice_id = d.practice_id) = 1
                 AND NOT EXISTS (SELECT 1 FROM accounts WHERE practice_id = d.practice_id)
                 AND NOT EXISTS (SELECT 1 FROM connections WHERE practice_id = d.practice_id)
                 AND NOT EXISTS (SELECT 1 FROM invitations WHERE practice_id = d.practice_id)
                 AND NOT EXISTS (SELECT 1 FROM listings WHERE practice_id = d.practice_id)
             FROM domains d WHERE d.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let count = |sql: &str, key: i64| -> Result<i64> { Ok(self.conn.row(sql, [key], |r| r.get(0))?) };
        let mut out = vec![
            ("addresses", count("SELECT count(*) FROM addresses WHERE domain_id = ?1", id)?),
            ("certificates", count("SELECT count(*) FROM certificates WHERE domain_id = ?1", id)?),
            ("private keys", count("SELECT count(*) FROM private_keys WHERE domain_id = ?1", id)?),
            ("trust anchors", count("SELECT count(*) FROM anchors WHERE domain_id = ?1", id)?),
            ("trust bundles", count("SELECT count(*) FROM bundles WHERE domain_id = ?1", id)?),
        ];
        if last {
            out.extend([
                ("the practice", 1),
                ("referrals", count("SELECT count(*) FROM referrals WHERE practice_id = ?1", practice_id)?),
                ("documents", count("SELECT count(*) FROM documents WHERE practice_id = ?1", practice_id)?),
                ("API tokens", count("SELECT count(*) FROM api_tokens WHERE practice_id = ?1", practice_id)?),
                ("shared documents", count("SELECT count(*) FROM shares WHERE practice_id = ?1", practice_id)?),
                ("webhooks", count("SELECT count(*) FROM webhooks WHERE practice_id = ?1", practice_id)?),
            ]);
        }
        Ok(out.into_iter().filter(|(_, n)| *n > 0).collect())
    }

    fn address_removal(&self, address: &DirectAddress) -> Result<Vec<(&'static str, i64)>> {
        let text = address.to_string();
        let count = |sql: &str| -> Result<i64> { Ok(self.conn.row(sql, [&text], |r| r.get(0))?) };
        if count("SELECT count(*) FROM addresses WHERE address = ?1")? == 0 {
            return Err(StoreError::NotFound(format!("address {address}")));
        }
        let out = vec![
            ("certificates", count("SELECT count(*) FROM certificates WHERE owner = ?1")?),
            ("private keys", count("SELECT count(*) FROM private_keys WHERE owner = ?1")?),
            ("listings", count("SELECT count(*) FROM listings WHERE address = ?1")?),
        ];
        Ok(out.into_iter().filter(|(_, n)| *n > 0).collect())
    }

    fn remove_domain(&self, domain: &Domain, cascade: bool) -> Result<()> {
        self.change("domain.remove", domain.as_str(), if cascade { "cascade" } else { "" }, |tx| {
            let id = Self::domain_id(tx, domain)?;
            let dependents: i64 = tx.row(
                "SELECT (SELECT count(*) FROM addresses WHERE domain_id = ?1)
                      + (SELECT count(*) FROM certificates WHERE domain_id = ?1)
                      + (SELECT count(*) FROM anchors WHERE domain_id = ?1)
                      + (SELECT count(*) FROM bundles WHERE domain_id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            if dependents > 0 && !cascade {
                return Err(StoreError::Conflict(format!(
                    "domain {domain} still has {dependents} addresses, certificates, anchors or bundles; \
                     remove them first or pass --cascade"
                )));
            }
            tx.run(
                "DELETE FROM bundle_anchors WHERE bundle_id IN (SELECT id FROM bundles WHERE domain_id = ?1)",
                [id],
            )?;
            tx.run("DELETE FROM certificates WHERE domain_id = ?1", [id])?;
            tx.run("DELETE FROM private_keys WHERE domain_id = ?1", [id])?;
            tx.run("DELETE FROM anchors WHERE domain_id = ?1", [id])?;
            tx.run("DELETE FROM bundles WHERE domain_id = ?1", [id])?;
            tx.run(
                "DELETE FROM contacts WHERE listing_id IN (SELECT l.id FROM listings l JOIN addresses a
                   ON a.address = l.address WHERE a.domain_id = ?1)",
                [id],
            )?;
            tx.run("DELETE FROM listings WHERE address IN (SELECT address FROM addresses WHERE domain_id = ?1)", [id])?;
            tx.run("DELETE FROM addresses WHERE domain_id = ?1", [id])?;
            let practice_id: i64 = tx.row("SELECT practice_id FROM domains WHERE id = ?1", [id], |r| r.get(0))?;
            tx.run("DELETE FROM domains WHERE id = ?1", [id])?;
            // A practice goes with its last domain, unless the network keeps it (its accounts,
            // connections, invitations).
            tx.run(
                "DELETE FROM practices WHERE id = ?1
                   AND NOT EXISTS (SELECT 1 FROM domains WHERE practice_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM accounts WHERE practice_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM connections WHERE practice_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM invitations WHERE practice_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM listings WHERE practice_id = ?1)",
                [practice_id],
            )?;
            Ok(())
        })
    }

    fn add_address(&self, address: &DirectAddress, password_hash: Option<&str>) -> Result<()> {
        let now = self.clock.unix_now();
        let detail = if password_hash.is_some() { "with password" } else { "no password" };
        self.change("address.add", &address.to_string(), detail, |tx| {
            let domain_id = Self::domain_id(tx, address.domain())?;
            tx.run(
                "INSERT INTO addresses (domain_id, local, address, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![domain_id, address.local(), address.to_string(), password_hash, now],
            )
            .map_err(duplicate_as(format!("address {address}")))?;
            Ok(())
        })
    }

    fn import_addresses(&self, batch: &[NewAddress]) -> Result<Vec<Imported>> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else { return Ok(Vec::new()) };
        let now = self.clock.unix_now();
        let subject = format!("{} addresses", batch.len());
        let detail = format!("lines {} to {}", first.line, last.line);
        self.change("address.import", &subject, &detail, |tx| {
            let mut out = Vec::with_capacity(batch.len());
            for row in batch {
                let domain = row.address.domain();
                let hosted: Option<(i64, String)> = tx
                    .row(
                        "SELECT d.id, p.name FROM domains d JOIN practices p ON p.id = d.practice_id WHERE d.name = ?1",
                        [domain.as_str()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let (domain_id, domain_added) = match (hosted, &row.practice) {
                    (Some((_, owner)), Some(practice)) if !owner.eq_ignore_ascii_case(practice) => {
                        out.push(Imported::Refused(format!("domain {domain} belongs to practice {owner:?}")));
                        continue;
                    }
                    (Some((id, _)), _) => (id, false),
                    (None, None) => {
                        out.push(Imported::Refused(format!(
                            "domain {domain} is not hosted here: add it first, or name its practice"
                        )));
                        continue;
                    }
                    (None, Some(practice)) => {
                        // The practice of that name in any case, or a new one (unproofed).
                        let known: Option<i64> = tx
                            .row("SELECT id FROM practices WHERE name = ?1 COLLATE NOCASE", [practice], |r| r.get(0))
                            .optional()?;
                        let practice_id = match known {
                            Some(id) => id,
                            None => {
                                tx.run(
                                    "INSERT INTO practices (name, created_at) VALUES (?1, ?2)",
                                    params![practice, now],
                                )?;
                                tx.last_insert_rowid()
                            }
                        };
                        tx.run(
                            "INSERT INTO domains (practice_id, name, created_at) VALUES (?1, ?2, ?3)",
                            params![practice_id, domain.as_str(), now],
                        )?;
                        (tx.last_insert_rowid(), true)
                    }
                };
                let added = tx.run(
                    "INSERT OR IGNORE INTO addresses (domain_id, local, address, password_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![domain_id, row.address.local(), row.address.to_string(), row.password_hash, now],
                )?;
                out.push(if added == 1 {
                    Imported::Added { domain_added }
                } else {
                    Imported::Refused(format!("address {} already exists", row.address))
                });
            }
            Ok(out)
        })
    }

    fn addresses(&self, domain: Option<&Domain>) -> Result<Vec<AddressRecord>> {
        // Two statements, not one with `?1 IS NULL OR`: that form cannot use the domain's index.
        let mut stmt = match domain {
            Some(_) => self.conn.prepare_cached(
                "SELECT a.address, a.password_hash IS NOT NULL, a.created_at FROM addresses a
                 WHERE a.domain_id = (SELECT id FROM domains WHERE name = ?1) ORDER BY a.address",
            )?,
            None => self.conn.prepare_cached(
                "SELECT a.address, a.password_hash IS NOT NULL, a.created_at FROM addresses a
             JOIN domains d ON d.id = a.domain_id ORDER BY a.address",
            )?,
        };
        let domain_param: Vec<&str> = domain.map(Domain::as_str).into_iter().collect();
        let rows = stmt.query_map(rusqlite::params_from_iter(domain_param), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, i64>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (address, has_password, created_at) = row?;
            if let Ok(address) = DirectAddress::parse(&address) {
                out.push(AddressRecord { address, has_password, created_at });
            }
        }
        Ok(out)
    }

    fn has_address(&self, address: &DirectAddress) -> Result<bool> {
        let text = address.to_string();
        self.cache.read(&self.cache.has_address, text.clone(), || {
            Ok(self.conn.row("SELECT 1 FROM addresses WHERE address = ?1", [text], |_| Ok(())).optional()?.is_some())
        })
    }

    fn remove_address(&self, address: &DirectAddress) -> Result<()> {
        let text = address.to_string();
        self.change("address.remove", &text, "", |tx| {
            let n = tx.run("DELETE FROM addresses WHERE address = ?1", [&text])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("address {text}")));
            }
            tx.run("DELETE FROM certificates WHERE owner = ?1", [&text])?;
            tx.run("DELETE FROM private_keys WHERE owner = ?1", [&text])?;
            // Listed in the address book: no longer.
            tx.run("DELETE FROM contacts WHERE listing_id IN (SELECT id FROM listings WHERE address = ?1)", [&text])?;
            tx.run("DELETE FROM listings WHERE address = ?1", [&text])?;
            Ok(())
        })
    }

    fn set_aside_addresses(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare("SELECT address, reason FROM set_aside_addresses ORDER BY address")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn set_password(&self, address: &DirectAddress, password_hash: &str) -> Result<()> {
        let text = address.to_string();
        self.change("address.passwd", &text, "", |tx| {
            let n =
                tx.run("UPDATE addresses SET password_hash = ?1 WHERE address = ?2", params![password_hash, text])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("address {text}")));
            }
            Ok(())
        })
    }

    fn password_hash(&self, address: &DirectAddress) -> Result<Option<String>> {
        self.conn
            .row("SELECT password_hash FROM addresses WHERE address = ?1", [address.to_string()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("address {address}")))
    }

    fn add_key(&self, owner: &Owner, public_key_sha256: &str, sealed: &[u8]) -> Result<i64> {
        let now = self.clock.unix_now();
        self.change("key.add", &owner.to_string(), public_key_sha256, |tx| {
            insert_key(tx, owner, public_key_sha256, sealed, now)
        })
    }

    fn key(&self, id: i64) -> Result<SealedKey> {
        self.cache.read(&self.cache.key, id, || {
            self.conn
                .row("SELECT id, sealed FROM private_keys WHERE id = ?1", [id], |r| {
                    Ok(SealedKey { id: r.get(0)?, sealed: r.get(1)? })
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("private key #{id}")))
        })
    }

    fn key_for_public(&self, public_key_sha256: &str) -> Result<Option<SealedKey>> {
        Ok(self
            .conn
            .row("SELECT id, sealed FROM private_keys WHERE public_key_sha256 = ?1", [public_key_sha256], |r| {
                Ok(SealedKey { id: r.get(0)?, sealed: r.get(1)? })
            })
            .optional()?)
    }

    fn add_certificate(&self, owner: &Owner, cert: &NewCert, key_id: Option<i64>) -> Result<i64> {
        let now = self.clock.unix_now();
        self.change("cert.add", &owner.to_string(), &cert.sha256, |tx| insert_certificate(tx, owner, cert, key_id, now))
    }

    fn certificates(&self, owner: Option<&Owner>) -> Result<Vec<CertRecord>> {
        let owner = owner.map(Owner::to_string);
        self.cache.read(&self.cache.certificates, owner.clone(), || {
            let mut stmt = match owner {
                Some(_) => self.conn.prepare_cached(&format!(
                    "SELECT {CERT_COLUMNS} FROM certificates WHERE owner = ?1 ORDER BY not_after DESC"
                ))?,
                None => self.conn.prepare_cached(&format!(
                    "SELECT {CERT_COLUMNS} FROM certificates ORDER BY owner, not_after DESC"
                ))?,
            };
            let rows = stmt.query_map(rusqlite::params_from_iter(owner), cert_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn remove_certificate(&self, sha256: &str) -> Result<()> {
        self.change("cert.remove", sha256, "", |tx| {
            let key_id: Option<Option<i64>> = tx
                .row("SELECT key_id FROM certificates WHERE sha256 = ?1", [sha256], |r| r.get(0))
                .optional()?;
            let Some(key_id) = key_id else {
                return Err(StoreError::NotFound(format!("certificate {sha256}")));
            };
            tx.run("DELETE FROM certificates WHERE sha256 = ?1", [sha256])?;
            if let Some(key_id) = key_id {
                // A key no other certificate uses goes with its certificate.
                tx.run(
                    "DELETE FROM private_keys WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM certificates WHERE key_id = ?1)
                     AND NOT EXISTS (SELECT 1 FROM dev_ca WHERE key_id = ?1)",
                    [key_id],
                )?;
            }
            Ok(())
        })
    }

    fn add_anchor(&self, anchor: &AnchorRecord) -> Result<()> {
        let detail = format!("incoming={} outgoing={}", anchor.incoming, anchor.outgoing);
        self.change("anchor.add", anchor.domain.as_str(), &format!("{} {detail}", anchor.sha256), |tx| {
            insert_anchor(tx, anchor)
        })
    }

    fn anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>> {
        let domain = domain.map(Domain::to_string);
        self.cache.read(&self.cache.anchors, domain.clone(), || {
            self.anchor_rows(
                "SELECT d.name, a.subject, a.sha256, a.not_after, a.incoming, a.outgoing, a.der FROM anchors a
                 JOIN domains d ON d.id = a.domain_id WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, a.subject",
                domain,
            )
        })
    }

    fn remove_anchor(&self, domain: &Domain, sha256: &str) -> Result<()> {
        self.change("anchor.remove", domain.as_str(), sha256, |tx| {
            let domain_id = Self::domain_id(tx, domain)?;
            let n = tx.run("DELETE FROM anchors WHERE domain_id = ?1 AND sha256 = ?2", params![domain_id, sha256])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("anchor {sha256} for {domain}")));
            }
            Ok(())
        })
    }

    fn bundle_anchors(&self, domain: Option<&Domain>) -> Result<Vec<AnchorRecord>> {
        let domain = domain.map(Domain::to_string);
        self.cache.read(&self.cache.bundle_anchors, domain.clone(), || {
            self.anchor_rows(
                "SELECT d.name, a.subject, a.sha256, a.not_after, b.incoming, b.outgoing, a.der FROM bundle_anchors a
                 JOIN bundles b ON b.id = a.bundle_id JOIN domains d ON d.id = b.domain_id
                 WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, a.subject",
                domain,
            )
        })
    }

    fn add_bundle(&self, b: &BundleRecord) -> Result<()> {
        let detail = format!("{} incoming={} outgoing={}", b.source, b.incoming, b.outgoing);
        self.change("bundle.add", &b.name, &detail, |tx| {
            let domain_id = Self::domain_id(tx, &b.domain)?;
            tx.run(
                "INSERT INTO bundles (name, domain_id, source, signer_der, incoming, outgoing, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![b.name, domain_id, b.source, b.signer_der, b.incoming, b.outgoing, self.clock.unix_now()],
            )
            .map_err(duplicate_as(format!("bundle {}", b.name)))?;
            Ok(())
        })
    }

    fn bundles(&self) -> Result<Vec<BundleRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.name, d.name, b.source, b.signer_der, b.incoming, b.outgoing,
                    (SELECT COUNT(*) FROM bundle_anchors a WHERE a.bundle_id = b.id),
                    b.last_good_at, b.last_attempt_at, b.last_error
             FROM bundles b JOIN domains d ON d.id = b.domain_id ORDER BY b.name",
        )?;
        let rows = stmt.query_map([], |r| {
            let Ok(domain) = Domain::parse(&r.get::<_, String>(1)?) else { return Ok(None) };
            Ok(Some(BundleRecord {
                name: r.get(0)?,
                domain,
                source: r.get(2)?,
                signer_der: r.get(3)?,
                incoming: r.get(4)?,
                outgoing: r.get(5)?,
                anchors: r.get::<_, i64>(6)? as usize,
                last_good_at: r.get(7)?,
                last_attempt_at: r.get(8)?,
                last_error: r.get(9)?,
            }))
        })?;
        let rows: Vec<Option<BundleRecord>> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(rows.into_iter().flatten().collect())
    }

    fn bundle_refreshed(&self, name: &str, outcome: std::result::Result<&[BundleAnchor], &str>) -> Result<()> {
        let detail = match outcome {
            Ok(anchors) => format!("{} anchors", anchors.len()),
            Err(why) => format!("failed, last good kept: {why}"),
        };
        self.change("bundle.refresh", name, &detail, |tx| {
            let id: i64 = tx
                .row("SELECT id FROM bundles WHERE name = ?1", [name], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("bundle {name}")))?;
            let now = self.clock.unix_now();
            match outcome {
                Ok(anchors) => {
                    tx.run("DELETE FROM bundle_anchors WHERE bundle_id = ?1", [id])?;
                    for a in anchors {
                        tx.run(
                            "INSERT OR IGNORE INTO bundle_anchors (bundle_id, subject, sha256, not_after, der)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![id, a.subject, a.sha256, a.not_after, a.der],
                        )?;
                    }
                    tx.run(
                        "UPDATE bundles SET last_good_at = ?2, last_attempt_at = ?2, last_error = NULL WHERE id = ?1",
                        params![id, now],
                    )?;
                }
                Err(why) => {
                    tx.run(
                        "UPDATE bundles SET last_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                        params![id, now, why],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn remove_bundle(&self, name: &str) -> Result<()> {
        self.change("bundle.remove", name, "", |tx| {
            let id: Option<i64> = tx.row("SELECT id FROM bundles WHERE name = ?1", [name], |r| r.get(0)).optional()?;
            let id = id.ok_or_else(|| StoreError::NotFound(format!("bundle {name}")))?;
            tx.run("DELETE FROM bundle_anchors WHERE bundle_id = ?1", [id])?;
            tx.run("DELETE FROM bundles WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    fn set_ca(&self, der: &[u8], key_id: i64, replace: bool) -> Result<()> {
        self.change("ca.init", "dev-ca", if replace { "replace" } else { "" }, |tx| {
            let exists: Option<i64> = tx.row("SELECT key_id FROM dev_ca", [], |r| r.get(0)).optional()?;
            if exists.is_some() && !replace {
                return Err(StoreError::Duplicate("the development CA (pass --force to replace it)".into()));
            }
            tx.run(
                "INSERT INTO dev_ca (id, der, key_id) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET der = excluded.der, key_id = excluded.key_id",
                params![der, key_id],
            )?;
            Ok(())
        })
    }

    fn ca(&self) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(self.conn.row("SELECT der, key_id FROM dev_ca", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }

    fn revoke(&self, r: &RevocationRecord) -> Result<()> {
        self.change("cert.revoke", &r.sha256, &r.reason, |tx| {
            tx.run(
                "INSERT INTO revocations (serial, sha256, subject, not_after, revoked_at, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.serial, r.sha256, r.subject, r.not_after, r.revoked_at, r.reason],
            )
            .map_err(duplicate_as(format!("a revocation of {}", r.sha256)))?;
            Ok(())
        })
    }

    fn revocations(&self) -> Result<Vec<RevocationRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT serial, sha256, subject, not_after, revoked_at, reason FROM revocations ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RevocationRecord {
                serial: r.get(0)?,
                sha256: r.get(1)?,
                subject: r.get(2)?,
                not_after: r.get(3)?,
                revoked_at: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_practice(&self, name: &str, domain: &Domain, anchors: &[AnchorRecord]) -> Result<()> {
        let now = self.clock.unix_now();
        let detail = format!("domain={domain} anchors={}", anchors.len());
        self.change("practice.add", name, &detail, |tx| insert_practice(tx, name, domain, anchors, now).map(|_| ()))
    }

    fn practices(&self) -> Result<Vec<PracticeRecord>> {
        self.practice_rows(None)
    }

    fn practice(&self, name_or_domain: &str) -> Result<PracticeRecord> {
        // A name is matched as written ("Lee Family Medicine, P.A." keeps its dot); a domain
        // also in its absolute form ("example.org.").
        let name = name_or_domain.trim();
        let domain = name.trim_end_matches('.').to_ascii_lowercase();
        self.cache.read(&self.cache.practice, name.to_ascii_lowercase(), || {
            self.practice_rows(Some((name, &domain)))?.pop().ok_or_else(|| {
                StoreError::NotFound(format!("practice {name_or_domain:?} (`hisp practice list` shows them)"))
            })
        })
    }

    fn set_invite_unreachable(&self, practice_id: i64, on: bool) -> Result<()> {
        self.set_practice_flag(practice_id, portal::PracticeFlag::InviteUnreachable, on)
    }

    fn practice_state(&self, domain: &Domain) -> Result<Option<(String, ProofingState)>> {
        self.cache.read(&self.cache.practice_state, domain.to_string(), || {
            Ok(self
                .conn
                .prepare_cached(
                    "SELECT p.name, coalesce(f.state, 'not-started') FROM domains d JOIN practices p ON p.id = d.practice_id
                     LEFT JOIN proofing f ON f.practice_id = p.id WHERE d.name = ?1",
                )?
                .query_row([domain.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
    }

    fn proofing(&self, practice_id: i64) -> Result<StoredProofing> {
        let row = self
            .conn
            .row(
                "SELECT state, version, sealed, reasons, decided_by, decided_at FROM proofing WHERE practice_id = ?1",
                [practice_id],
                |r| {
                    Ok(StoredProofing {
                        state: r.get(0)?,
                        version: r.get(1)?,
                        sealed: r.get(2)?,
                        reasons: r.get(3)?,
                        decided_by: r.get(4)?,
                        decided_at: r.get(5)?,
                    })
                },
            )
            .optional()?;
        Ok(row.unwrap_or_else(|| StoredProofing {
            state: ProofingState::NotStarted,
            reasons: "[]".into(),
            ..Default::default()
        }))
    }

    fn save_proofing(
        &self,
        practice_id: i64,
        record: &StoredProofing,
        issued: &[NewIdentity],
        action: &str,
        detail: &str,
    ) -> Result<()> {
        let now = self.clock.unix_now();
        let name: String = self
            .conn
            .row("SELECT name FROM practices WHERE id = ?1", [practice_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("practice #{practice_id}")))?;
        self.change(action, &name, detail, |tx| {
            let saved = if record.version == 0 {
                tx.run(
                    "INSERT OR IGNORE INTO proofing (practice_id, state, version, sealed, reasons, decided_by, decided_at, updated_at)
                     VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7)",
                    params![practice_id, record.state, record.sealed, record.reasons, record.decided_by, record.decided_at, now],
                )?
            } else {
                tx.run(
                    "UPDATE proofing SET state = ?2, version = version + 1, sealed = ?3, reasons = ?4, decided_by = ?5,
                            decided_at = ?6, updated_at = ?7
                     WHERE practice_id = ?1 AND version = ?8",
                    params![
                        practice_id,
                        record.state,
                        record.sealed,
                        record.reasons,
                        record.decided_by,
                        record.decided_at,
                        now,
                        record.version
                    ],
                )?
            };
            if saved == 0 {
                return Err(StoreError::Conflict(format!(
                    "the proofing of {name} changed while this step ran; look again and retry"
                )));
            }
            // The certificates the decision brings, with it or not at all.
            for identity in issued {
                let key_id = insert_key(tx, &identity.owner, &identity.public_key_sha256, &identity.sealed_key, now)?;
                insert_certificate(tx, &identity.owner, &identity.cert, Some(key_id), now)?;
                tx.run(
                    "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, 'cert.add', ?3, ?4)",
                    params![now, self.actor, identity.owner.to_string(), identity.cert.sha256],
                )?;
            }
            Ok(())
        })
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.conn.row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    fn meta_init(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        self.conn.run("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
        Ok(self.meta(key)?.unwrap_or_default())
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        self.conn.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
        Ok(())
    }

    fn note(&self, action: &str, subject: &str, detail: &str) -> Result<()> {
        self.change(action, subject, detail, |_| Ok(()))
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at, actor, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(AuditEntry { at: r.get(0)?, actor: r.get(1)?, action: r.get(2)?, subject: r.get(3)?, detail: r.get(4)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database at schema version `version` (before the later migrations), to upgrade.
    fn database_at(version: usize) -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, version).unwrap();
        (dir, path, conn)
    }

    #[test]
    fn the_upgrade_sets_aside_addresses_that_hold_a_path_separator() {
        let (_dir, path, conn) = database_at(10);
        conn.execute_batch(
            "INSERT INTO practices (id, name, created_at) VALUES (1, 'B', 0);
             INSERT INTO domains (id, practice_id, name, created_at) VALUES (1, 1, 'b.test', 0);
             INSERT INTO addresses (domain_id, local, address, created_at) VALUES
               (1, 'dr.jones', 'dr.jones@b.test', 0), (1, '/tmp/escape', '/tmp/escape@b.test', 0),
               (1, 'a\\b', 'a\\b@b.test', 0);",
        )
        .unwrap();
        drop(conn);
        SqliteStore::upgrade(&path).unwrap();
        let store = SqliteStore::open(&path, "upgrade").unwrap();
        let kept: Vec<String> = store.addresses(None).unwrap().iter().map(|a| a.address.to_string()).collect();
        assert_eq!(kept, ["dr.jones@b.test"]);
        let aside = store.set_aside_addresses().unwrap();
        assert_eq!(aside.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["/tmp/escape@b.test", "a\\b@b.test"]);
        assert!(aside[0].1.contains("path separator"), "{}", aside[0].1);
    }

    #[test]
    fn the_upgrade_keys_tracking_by_sender_and_deliveries_by_their_legacy_key() {
        let (_dir, path, conn) = database_at(11);
        conn.execute_batch(
            "INSERT INTO tracked (message_id, recipient, sender, subject, final_delivery, status, submitted_at,
                                  sent_at, updated_at)
               VALUES ('<m1@a.test>', 'dr.jones@b.test', 'dr.smith@a.test', 'Referral', 1, 'sent', 10, 11, 11);
             INSERT INTO tracking_events (message_id, recipient, at, event, detail)
               VALUES ('<m1@a.test>', 'dr.jones@b.test', 11, 'sent', '250 ok');
             INSERT INTO receipts (message_id, recipient, sender, subject, final_delivery, processed_at)
               VALUES ('<r1@c.test>', 'dr.smith@a.test', 'Lab@C.test', 'Result', 0, 20);
             INSERT INTO mailbox_deliveries (message_id, recipient, delivered_at, file, sender, subject, kind)
               VALUES ('<r1@c.test>', 'dr.smith@a.test', 20, '/m/1', 'lab@c.test', 'Result', 'message');
             INSERT INTO practices (id, name, created_at) VALUES (1, 'A', 0);
             INSERT INTO referrals (id, practice_id, message_id, way, direction, patient_id, sender, recipients,
                                    subject, sections, encounter_note, created_at)
               VALUES (5, 1, '<r1@c.test>', 'received', 'receiving', 'MRN-1', 'lab@c.test', '[]', 'Result', '[]', 0, 20);
             INSERT INTO documents (practice_id, patient_id, referral_id, message_id, way, filename, content_type,
                                    size, sha256, sealed, created_at)
               VALUES (1, 'MRN-1', 5, '<r1@c.test>', 'received', 'r.pdf', 'application/pdf', 1, 'x', x'00', 20);",
        )
        .unwrap();
        drop(conn);
        SqliteStore::upgrade(&path).unwrap();
        let store = SqliteStore::open(&path, "upgrade").unwrap();
        let row = |sql: &str| store.conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap();
        assert_eq!(row("SELECT sender || ' ' || status || ' ' || sent_at FROM tracked"), "dr.smith@a.test sent 11");
        assert_eq!(row("SELECT sender || ' ' || event FROM tracking_events"), "dr.smith@a.test sent");
        assert_eq!(row("SELECT delivery_key FROM receipts"), "legacy lab@c.test <r1@c.test>");
        assert_eq!(
            row("SELECT delivery_key || ' ' || file FROM mailbox_deliveries"),
            "legacy lab@c.test <r1@c.test> /m/1"
        );
        assert_eq!(
            row("SELECT referral_id || ' ' || filename FROM documents"),
            "5 r.pdf",
            "the document keeps its referral"
        );
        // A second sender's referral under the same Message-ID is a referral of its own.
        store
            .conn
            .execute_batch(
                "INSERT INTO referrals (practice_id, message_id, way, direction, patient_id, sender, recipients,
                                        subject, sections, encounter_note, created_at)
                   VALUES (1, '<r1@c.test>', 'received', 'receiving', 'MRN-2', 'other@d.test', '[]', 'x', '[]', 0, 30);",
            )
            .unwrap();
        assert_eq!(row("SELECT count(*) || '' FROM referrals"), "2");
    }

    #[test]
    fn the_workers_store_skips_per_commit_fsyncs_and_every_other_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        SqliteStore::create(&path, "test").unwrap();
        let synchronous = |s: &SqliteStore| s.conn.query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(synchronous(&SqliteStore::open(&path, "cli").unwrap()), 2, "FULL");
        assert_eq!(synchronous(&SqliteStore::open_for_workers(&path, "worker").unwrap()), 1, "NORMAL");
        let mode = SqliteStore::open_for_workers(&path, "worker")
            .unwrap()
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap();
        assert_eq!(mode, "wal", "NORMAL is only safe in WAL mode");
    }

    #[test]
    fn a_workers_store_keeps_the_configuration_until_the_database_says_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let cli = SqliteStore::create(&path, "cli").unwrap();
        let (a, b) = (Domain::parse("a.test").unwrap(), Domain::parse("b.test").unwrap());
        cli.add_domain(&a, "A").unwrap();
        let worker = SqliteStore::open_for_workers(&path, "worker").unwrap();
        worker.follow_config_at(config_generation(&worker.conn).unwrap());
        assert!(worker.has_domain(&a).unwrap());
        assert!(!worker.has_domain(&b).unwrap());
        assert_eq!(worker.cache.len(), 2);

        // Another connection (the CLI) changes the configuration: the worker answers from memory
        // until its next message begins, then from the database.
        cli.add_domain(&b, "B").unwrap();
        cli.remove_domain(&a, false).unwrap();
        assert!(!worker.has_domain(&b).unwrap(), "kept for the message under way");
        worker.follow_config_at(config_generation(&worker.conn).unwrap());
        assert!(worker.has_domain(&b).unwrap());
        assert!(!worker.has_domain(&a).unwrap());

        // A write elsewhere (a meta value) keeps what was read; a change forgets only what it
        // touched.
        cli.meta_init("x", b"y").unwrap();
        worker.follow_config_at(config_generation(&worker.conn).unwrap());
        assert_eq!(worker.cache.len(), 2, "kept across a write outside the configuration");
        let key = cli.add_key(&Owner::Domain(b.clone()), "k", b"sealed").unwrap();
        worker.follow_config_at(config_generation(&worker.conn).unwrap());
        assert_eq!(worker.key(key).unwrap().sealed, b"sealed");
        let (dr, other) = (DirectAddress::parse("dr@b.test").unwrap(), DirectAddress::parse("other@b.test").unwrap());
        assert!(!worker.has_address(&dr).unwrap() && !worker.has_address(&other).unwrap());
        assert_eq!(worker.cache.len(), 5);
        cli.add_address(&dr, None).unwrap();
        worker.follow_config_at(config_generation(&worker.conn).unwrap());
        assert_eq!(worker.cache.len(), 4, "the two domains, the other address and the key: kept");
        assert!(worker.has_address(&dr).unwrap(), "the new address is read afresh");
        assert!(!worker.has_address(&other).unwrap());
        cli.conn.execute("UPDATE private_keys SET sealed = x'00' WHERE id = ?1", [key]).unwrap();
        worker.follow_config_at(config_generation(&worker.conn).unwrap());
        assert_eq!(worker.key(key).unwrap().sealed, [0], "a changed key is read afresh");
        assert!(worker.has_domain(&b).unwrap());

        // A worker that fell further behind than the change log reaches reads everything afresh.
        let generation = config_generation(&worker.conn).unwrap();
        worker.cache.moved_to(generation - 20_000);
        worker.follow_config_at(generation);
        assert_eq!(worker.cache.len(), 0);
        assert!(worker.has_domain(&b).unwrap());

        // What the worker changes itself it reads back at once.
        worker.remove_domain(&b, true).unwrap();
        assert!(!worker.has_domain(&b).unwrap());

        // Every other store reads the database each time.
        let reader = SqliteStore::open(&path, "cli").unwrap();
        assert!(!reader.has_domain(&a).unwrap());
        cli.add_domain(&a, "A").unwrap();
        assert!(reader.has_domain(&a).unwrap());
        assert_eq!(reader.cache.len(), 0);
    }

    #[test]
    fn the_change_log_names_what_changed_and_keeps_only_its_last_generations() {
        let store = SqliteStore::in_memory("test").unwrap();
        let domain = Domain::parse("a.test").unwrap();
        store.add_domain(&domain, "A").unwrap();
        let seen = config_generation(&store.conn).unwrap();
        let dr = DirectAddress::parse("dr@a.test").unwrap();
        store.add_address(&dr, None).unwrap();
        store.set_password(&dr, "$argon2id$x").unwrap();
        let changes = store.config_changes(seen, config_generation(&store.conn).unwrap()).unwrap().unwrap();
        let touched = ("address".to_string(), Some("dr@a.test".to_string()));
        assert_eq!(changes, vec![touched.clone(), touched], "added, then its password changed");
        // Thousands of changes later the log holds the last 10,000 generations, and a worker that
        // saw one before them is told it cannot follow.
        let batch: Vec<NewAddress> = (0..12_000)
            .map(|i| NewAddress {
                line: i,
                address: DirectAddress::parse(&format!("u{i}@a.test")).unwrap(),
                practice: None,
                password_hash: None,
            })
            .collect();
        store.import_addresses(&batch).unwrap();
        let now = config_generation(&store.conn).unwrap();
        let kept: i64 =
            store.conn.row("SELECT count(DISTINCT generation) FROM config_changes", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, 10_000);
        assert!(store.config_changes(seen, now).unwrap().is_none());
        assert_eq!(store.config_changes(now - 3, now).unwrap().unwrap().len(), 3);
    }

    #[test]
    fn writers_on_separate_connections_wait_for_each_other_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::create(&path, "test").unwrap();
        store.add_domain(&Domain::parse("a.test").unwrap(), "A").unwrap();
        // Two CLI runs at once, each adding addresses on its own connection.
        let failures: Vec<String> = std::thread::scope(|s| {
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let path = path.clone();
                    s.spawn(move || {
                        let store = SqliteStore::open(&path, "cli").unwrap();
                        (0..100)
                            .filter_map(|i| {
                                let address = DirectAddress::parse(&format!("u{w}-{i}@a.test")).unwrap();
                                store.add_address(&address, None).err().map(|e| e.to_string())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            writers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(failures, Vec::<String>::new());
        assert_eq!(store.addresses(None).unwrap().len(), 200);
    }

    #[test]
    fn every_change_of_each_cached_table_moves_the_configuration_generation() {
        let store = SqliteStore::in_memory("test").unwrap();
        // Each table the cache reads, with a trigger for insert, update and delete.
        let mut stmt = store
            .conn
            .prepare(
                "SELECT tbl_name, group_concat(name, ' ') FROM (SELECT tbl_name, name FROM sqlite_master
                 WHERE type = 'trigger' AND sql LIKE '%config_generation%' ORDER BY name) GROUP BY tbl_name ORDER BY tbl_name",
            )
            .unwrap();
        let counted: Vec<(String, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap();
        let tables: Vec<&str> = counted.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            tables.join(" "),
            "addresses anchors bundle_anchors bundles certificates domains practices private_keys proofing"
        );
        for (table, triggers) in &counted {
            assert_eq!(triggers, &format!("{table}_deleted {table}_inserted {table}_updated"));
        }
        let before = config_generation(&store.conn).unwrap();
        let domain = Domain::parse("a.test").unwrap();
        store.add_domain(&domain, "A").unwrap();
        store.add_address(&DirectAddress::parse("dr@a.test").unwrap(), None).unwrap();
        store.remove_address(&DirectAddress::parse("dr@a.test").unwrap()).unwrap();
        // practice + domain inserted, address inserted and deleted (certificates and keys of it too)
        assert!(config_generation(&store.conn).unwrap() >= before + 4);
    }

    #[test]
    fn practices_from_before_proofing_stay_able_to_send_and_new_ones_start_unproofed() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (index, sql) in MIGRATIONS.iter().enumerate().take(7) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", index as i64 + 1).unwrap();
        }
        conn.run("INSERT INTO practices (name, created_at) VALUES ('Old Practice', 1)", []).unwrap();
        conn.run("INSERT INTO domains (practice_id, name, created_at) VALUES (1, 'old.test', 1)", []).unwrap();
        migrate(&mut conn).unwrap();
        let store =
            SqliteStore { conn, actor: "test".into(), clock: Box::new(SystemClock), cache: ConfigCache::new(false) };
        let old = Domain::parse("old.test").unwrap();
        assert_eq!(store.practice_state(&old).unwrap(), Some(("Old Practice".into(), ProofingState::Verified)));
        assert!(store.proofing(1).unwrap().reasons.contains("before identity proofing"));
        let new = Domain::parse("new.test").unwrap();
        store.add_practice("New Practice", &new, &[]).unwrap();
        assert_eq!(store.practice_state(&new).unwrap(), Some(("New Practice".into(), ProofingState::NotStarted)));
        assert!(matches!(
            store.add_practice("new practice", &Domain::parse("x.test").unwrap(), &[]),
            Err(StoreError::Duplicate(_))
        ));
        assert!(matches!(store.add_practice("Third", &new, &[]), Err(StoreError::Duplicate(_))));
        assert_eq!(store.practices().unwrap().len(), 2, "a refused practice leaves nothing behind");

        // Two steps read the same record: the second save is refused, not lost over the first.
        let id = store.practice("New Practice").unwrap().id;
        let read = store.proofing(id).unwrap();
        let step = StoredProofing { state: ProofingState::TermsAccepted, ..read.clone() };
        store.save_proofing(id, &step, &[], "proofing.terms", "").unwrap();
        assert!(matches!(store.save_proofing(id, &step, &[], "proofing.terms", ""), Err(StoreError::Conflict(_))));
        let again = store.proofing(id).unwrap();
        assert_eq!((again.state.as_str(), again.version), ("terms-accepted", 1));
        store
            .save_proofing(id, &StoredProofing { state: ProofingState::InProgress, ..again.clone() }, &[], "x", "")
            .unwrap();
        assert!(store.save_proofing(id, &again, &[], "x", "").is_err());
    }
}
