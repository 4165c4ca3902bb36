//! What the REST API and the inbound path keep for practices: the API's bearer tokens, the
//! referrals each practice sent and received, and the copies of its documents.

use super::cached::CachedSql;
use rusqlite::{params, OptionalExtension, Row};

use crate::address::Domain;
use serde::Serialize;

use super::sqlite::{duplicate_as, SqliteStore};
use super::{AnchorRecord, Result, StoreError};

/// An API token as stored (its secret is never kept, only its SHA-256).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TokenRecord {
    pub id: i64,
    pub name: String,
    /// The practice it acts for (None: not bound yet; it may set one practice up).
    pub practice: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A referral as it is recorded when it is sent or arrives.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NewReferral {
    /// "transferring" (referring out) or "receiving" (reporting back).
    pub direction: String,
    /// This practice's identifier of the patient; for a referral received, the one its C-CDA
    /// was matched to in this practice's records, or None (not matched).
    pub patient_id: Option<String>,
    /// For a referral received: the sender's identifier of the patient (meaningful to the sender).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_patient_id: Option<String>,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    /// The C-CDA sections included.
    pub sections: Vec<String>,
    pub encounter_note: bool,
    /// The Message-ID this one answers.
    pub in_reply_to: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReferralRecord {
    pub id: i64,
    pub message_id: String,
    /// "sent" or "received" (from this practice's side).
    pub way: String,
    #[serde(flatten)]
    pub referral: NewReferral,
    /// The referral this practice sent that this one answers.
    pub answers: Option<i64>,
    /// The referrals received that answer this one.
    pub answered_by: Vec<i64>,
    pub created_at: i64,
    /// When the practice marked it received (a returned referral closing the loop).
    pub received_at: Option<i64>,
    pub received_by: Option<String>,
    /// The state of each recipient's delivery notifications (sent referrals; from tracking).
    #[serde(skip)]
    pub tracking: Vec<String>,
}

/// A document to keep: its content already sealed under the KEK.
#[derive(Debug, Clone)]
pub(crate) struct NewDocument {
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
    pub sealed: Vec<u8>,
    /// The XDM metadata of a document filed from an XDM package (JSON).
    pub xdm: Option<String>,
}

/// An XDM package a message carried: filed, or refused with the reason.
#[derive(Debug, Clone)]
pub(crate) struct NewPackage {
    pub filename: String,
    pub sha256: String,
    pub refused: Option<String>,
    pub documents: usize,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PackageRecord {
    pub filename: String,
    pub sha256: String,
    /// "filed" or "refused".
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub documents: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DocumentRecord {
    pub id: i64,
    pub patient_id: Option<String>,
    pub referral_id: Option<i64>,
    pub message_id: String,
    pub way: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: i64,
    /// The XDM metadata of a document that came in (or left in) an XDM package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdm: Option<serde_json::Value>,
}

/// A message a practice sent or received: its referral, if it is one, and its documents.
pub(crate) struct Exchange<'a> {
    pub practice_id: i64,
    pub message_id: &'a str,
    /// "sent" or "received".
    pub way: &'a str,
    pub patient_id: Option<&'a str>,
    /// Who the exchange's C-CDA is about (`ccda_view::patient_key`): with `patient_id`, it goes
    /// into the practice's patient index.
    pub patient_key: Option<&'a str>,
    pub referral: Option<&'a NewReferral>,
    pub documents: &'a [NewDocument],
    /// The XDM packages among the message's attachments.
    pub packages: &'a [NewPackage],
}

/// Which referrals to list.
#[derive(Debug, Default)]
pub(crate) struct ReferralFilter<'a> {
    pub patient_id: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub way: Option<&'a str>,
}

pub(crate) trait ApiStore {
    fn add_token(&self, name: &str, practice_id: Option<i64>, sha256: &str) -> Result<i64>;
    fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// The live (not revoked) token with this SHA-256.
    fn token(&self, sha256: &str) -> Result<Option<TokenRecord>>;
    /// Adds a practice with its domain and binds the token to it, all or nothing.
    fn add_practice_for_token(
        &self,
        name: &str,
        domain: &Domain,
        anchors: &[AnchorRecord],
        token_id: i64,
    ) -> Result<()>;
    fn revoke_token(&self, name: &str) -> Result<()>;

    /// Records a sent or received message's referral and documents, once: doing it again (a
    /// retried delivery) changes nothing. Returns the referral's id.
    fn save_exchange(&self, exchange: &Exchange) -> Result<Option<i64>>;
    fn referrals(&self, practice_id: i64, filter: &ReferralFilter) -> Result<Vec<ReferralRecord>>;
    fn referral(&self, practice_id: i64, id: i64) -> Result<ReferralRecord>;
    /// Marks a received referral as received (the loop closed); refused for one this practice sent.
    fn mark_received(&self, practice_id: i64, id: i64, by: &str) -> Result<ReferralRecord>;
    /// The practice's documents (of one patient, of one message, if given), newest first.
    fn documents(
        &self,
        practice_id: i64,
        patient_id: Option<&str>,
        message_id: Option<&str>,
    ) -> Result<Vec<DocumentRecord>>;
    /// One document and its sealed content.
    fn document(&self, practice_id: i64, id: i64) -> Result<(DocumentRecord, Vec<u8>)>;
    /// The XDM packages a message of the practice carried, filed or refused.
    fn xdm_packages(&self, practice_id: i64, message_id: &str) -> Result<Vec<PackageRecord>>;

    /// The messages the practice's users sent and received ("sent" or "received" only, if
    /// given), newest first; or the one with this Message-ID.
    fn mailbox(
        &self,
        practice_id: i64,
        way: Option<&str>,
        message_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MailboxEntry>>;
    /// Starts a request under an Idempotency-Key (keys older than a day are forgotten first):
    /// new, the answer given before to the same request, or refused.
    fn idempotency_begin(&self, token_id: i64, key: &str, request_sha256: &str, now: i64) -> Result<Idempotency>;
    /// Keeps the answer given to a request under a key.
    fn idempotency_finish(&self, token_id: i64, key: &str, status: u16, response: &str) -> Result<()>;
    /// Forgets a key whose request failed on the node's side, so that a retry runs it.
    fn idempotency_abandon(&self, token_id: i64, key: &str) -> Result<()>;
    /// The practice's own identifier of the patient a C-CDA with this `ccda_view::patient_key`
    /// is about, when its records know them.
    fn patient_by_key(&self, practice_id: i64, key: &str) -> Result<Option<String>>;
    /// The text of a message the practice's users received (None: not one of theirs, or one
    /// delivered before texts were kept).
    fn received_text(&self, practice_id: i64, message_id: &str) -> Result<Option<String>>;
    /// Addresses containing `query`: hosted ones (with their practice) and those the practice
    /// exchanged mail with.
    fn directory(&self, practice_id: i64, query: &str, limit: usize) -> Result<Vec<DirectoryEntry>>;
}

/// Where a request under an Idempotency-Key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// The first request with this key: run it.
    New,
    /// Answered before: this answer again.
    Replay { status: u16, response: String },
    /// The key came with another request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// A message in a practice's mailbox.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MailboxEntry {
    pub message_id: String,
    pub way: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub at: i64,
    /// Sent: queued, sent, delivered (every recipient's HISP confirmed) or failed; received: delivered.
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DirectoryEntry {
    pub address: String,
    /// The hosting practice, for a hosted address.
    pub practice: Option<String>,
    /// "hosted" (on this node) or "known" (exchanged mail with this practice).
    pub source: String,
}

/// One status for a message from its recipients' tracking states: failed if any recipient
/// failed, queued while any has yet to leave, delivered once every recipient's HISP confirmed it
/// (processed MDN), else sent.
pub(crate) fn summarize<S: AsRef<str>>(states: &[S]) -> &'static str {
    let any = |wanted: &[&str]| states.iter().any(|s| wanted.contains(&s.as_ref()));
    if any(&["failed", "timed-out"]) {
        "failed"
    } else if states.is_empty() || any(&["queued"]) {
        "queued"
    } else if states.iter().all(|s| matches!(s.as_ref(), "processed" | "dispatched")) {
        "delivered"
    } else {
        "sent"
    }
}

/// The practice's domains, for matching an address's domain part in SQL.
const PRACTICE_DOMAINS: &str = "(SELECT name FROM domains WHERE practice_id = ?1)";

/// Sealed fields (`store::fields`) are read through `field_open`.
const REFERRAL_COLUMNS: &str = "r.id, r.message_id, r.way, r.direction, field_open(r.patient_id), field_open(r.sender_patient_id), r.sender,
    field_open(r.recipients), field_open(r.subject), r.sections, r.encounter_note, r.in_reply_to, r.created_at, r.received_at, r.received_by,
    (SELECT s.id FROM referrals s WHERE s.practice_id = r.practice_id AND s.way = 'sent'
        AND s.message_id = r.in_reply_to AND r.way = 'received'),
    (SELECT group_concat(a.id) FROM referrals a WHERE a.practice_id = r.practice_id AND a.way = 'received'
        AND a.in_reply_to = r.message_id AND r.way = 'sent'),
    (SELECT group_concat(t.status) FROM tracked t WHERE t.message_id = r.message_id AND t.sender = lower(r.sender)
        AND r.way = 'sent')";

fn referral_row(r: &Row) -> rusqlite::Result<ReferralRecord> {
    let list = |text: Option<String>| -> Vec<String> {
        text.unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(String::from).collect()
    };
    let json_list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
    Ok(ReferralRecord {
        id: r.get(0)?,
        message_id: r.get(1)?,
        way: r.get(2)?,
        referral: NewReferral {
            direction: r.get(3)?,
            // Not matched to a patient of this practice: kept as an empty (sealed) text.
            patient_id: r.get::<_, Option<String>>(4)?.filter(|p| !p.is_empty()),
            sender_patient_id: r.get(5)?,
            sender: r.get(6)?,
            recipients: json_list(r.get(7)?),
            subject: r.get(8)?,
            sections: json_list(r.get(9)?),
            encounter_note: r.get(10)?,
            in_reply_to: r.get(11)?,
        },
        created_at: r.get(12)?,
        received_at: r.get(13)?,
        received_by: r.get(14)?,
        answers: r.get(15)?,
        answered_by: list(r.get(16)?).iter().filter_map(|id| id.parse().ok()).collect(),
        tracking: list(r.get(17)?),
    })
}

const DOCUMENT_COLUMNS: &str = "id, field_open(patient_id), referral_id, message_id, way, field_open(filename),
    content_type, size, field_open(sha256), created_at, field_open(xdm)";

fn document_row(r: &Row) -> rusqlite::Result<DocumentRecord> {
    Ok(DocumentRecord {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        referral_id: r.get(2)?,
        message_id: r.get(3)?,
        way: r.get(4)?,
        filename: r.get(5)?,
        content_type: r.get(6)?,
        size: r.get(7)?,
        sha256: r.get(8)?,
        created_at: r.get(9)?,
        xdm: r.get::<_, Option<String>>(10)?.and_then(|json| serde_json::from_str(&json).ok()),
    })
}

fn token_row(r: &Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        practice: r.get(2)?,
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
    })
}

const TOKEN_SELECT: &str = "SELECT t.id, t.name, p.name, t.created_at, t.revoked_at
    FROM api_tokens t LEFT JOIN practices p ON p.id = t.practice_id";

impl ApiStore for SqliteStore {
    fn add_token(&self, name: &str, practice_id: Option<i64>, sha256: &str) -> Result<i64> {
        let now = self.clock.unix_now();
        self.change("token.create", name, "", |tx| {
            tx.run(
                "INSERT INTO api_tokens (name, practice_id, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, practice_id, sha256, now],
            )
            .map_err(duplicate_as(format!("token {name:?}")))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!("{TOKEN_SELECT} ORDER BY t.name"))?;
        let rows = stmt.query_map([], token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn token(&self, sha256: &str) -> Result<Option<TokenRecord>> {
        let mut stmt =
            self.conn.prepare_cached(&format!("{TOKEN_SELECT} WHERE t.token_sha256 = ?1 AND t.revoked_at IS NULL"))?;
        Ok(stmt.query_row([sha256], token_row).optional()?)
    }

    fn add_practice_for_token(
        &self,
        name: &str,
        domain: &Domain,
        anchors: &[AnchorRecord],
        token_id: i64,
    ) -> Result<()> {
        let now = self.clock.unix_now();
        let detail = format!("domain={domain} anchors={}", anchors.len());
        self.change("practice.add", name, &detail, |tx| {
            let practice_id = super::sqlite::insert_practice(tx, name, domain, anchors, now)?;
            let bound = tx.run(
                "UPDATE api_tokens SET practice_id = ?2 WHERE id = ?1 AND practice_id IS NULL",
                params![token_id, practice_id],
            )?;
            if bound == 0 {
                return Err(StoreError::Conflict("this token already acts for a practice".into()));
            }
            // Two changes, two lines in the audit log, one transaction.
            tx.run(
                "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, 'token.bind', ?3, ?4)",
                params![now, self.actor, token_id.to_string(), format!("practice id {practice_id}")],
            )?;
            Ok(())
        })
    }

    fn revoke_token(&self, name: &str) -> Result<()> {
        let now = self.clock.unix_now();
        self.change("token.revoke", name, "", |tx| {
            let changed = tx.run(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, now],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("live token {name:?} (`hisp token list` shows them)")));
            }
            Ok(())
        })
    }

    fn save_exchange(&self, e: &Exchange) -> Result<Option<i64>> {
        let now = self.clock.unix_now();
        let detail = format!("{} {}: {} document(s)", e.way, e.message_id, e.documents.len());
        let action = if e.referral.is_some() { "referral.record" } else { "documents.record" };
        self.change(action, &format!("practice id {}", e.practice_id), &detail, |tx| {
            let referral_id = match e.referral {
                Some(r) => {
                    tx.run(
                        "INSERT OR IGNORE INTO referrals (practice_id, message_id, way, direction, patient_id,
                            sender, recipients, subject, sections, encounter_note, in_reply_to, created_at,
                            patient_index, sender_patient_id)
                         VALUES (?1, ?2, ?3, ?4, field_seal(coalesce(?5, '')), ?6, field_seal(?7), field_seal(?8), ?9,
                            ?10, ?11, ?12, CASE WHEN ?5 IS NULL THEN NULL ELSE field_index('patient', ?1 || ':' || ?5) END,
                            field_seal(?13))",
                        params![
                            e.practice_id,
                            e.message_id,
                            e.way,
                            r.direction,
                            r.patient_id,
                            r.sender,
                            serde_json::to_string(&r.recipients).unwrap_or_default(),
                            r.subject,
                            serde_json::to_string(&r.sections).unwrap_or_default(),
                            r.encounter_note,
                            r.in_reply_to,
                            now,
                            r.sender_patient_id
                        ],
                    )?;
                    Some(tx.row(
                        "SELECT id FROM referrals WHERE practice_id = ?1 AND message_id = ?2 AND way = ?3
                           AND sender = ?4",
                        params![e.practice_id, e.message_id, e.way, r.sender],
                        |r| r.get::<_, i64>(0),
                    )?)
                }
                None => None,
            };
            // The practice's own patient, known from now on by what its C-CDAs say of them.
            if let (Some(patient), Some(key)) = (e.patient_id, e.patient_key) {
                tx.run(
                    "INSERT OR REPLACE INTO patient_index (practice_id, key_index, patient_id, updated_at)
                     VALUES (?1, field_index('patient-key', ?1 || ':' || ?2), field_seal(?3), ?4)",
                    params![e.practice_id, key, patient, now],
                )?;
            }
            for d in e.documents {
                tx.run(
                    "INSERT OR IGNORE INTO documents (practice_id, patient_id, referral_id, message_id, way,
                        filename, content_type, size, sha256, sealed, created_at, patient_index, doc_key, xdm)
                     VALUES (?1, field_seal(?2), ?3, ?4, ?5, field_seal(?6), ?7, ?8, field_seal(?9), ?10, ?11,
                        field_index('patient', ?1 || ':' || ?2), field_index('document', ?6 || char(0) || ?9),
                        CASE WHEN ?12 IS NULL THEN NULL ELSE field_seal(?12) END)",
                    params![
                        e.practice_id,
                        e.patient_id,
                        referral_id,
                        e.message_id,
                        e.way,
                        d.filename,
                        d.content_type,
                        d.size as i64,
                        d.sha256,
                        d.sealed,
                        now,
                        d.xdm
                    ],
                )?;
            }
            for p in e.packages {
                tx.run(
                    "INSERT OR IGNORE INTO xdm_packages (practice_id, message_id, way, filename, sha256, status,
                        reason, documents, warnings, created_at)
                     VALUES (?1, ?2, ?3, field_seal(?4), ?5, ?6, CASE WHEN ?7 IS NULL THEN NULL ELSE field_seal(?7) END,
                        ?8, field_seal(?9), ?10)",
                    params![
                        e.practice_id,
                        e.message_id,
                        e.way,
                        p.filename,
                        p.sha256,
                        if p.refused.is_some() { "refused" } else { "filed" },
                        p.refused,
                        p.documents as i64,
                        serde_json::to_string(&p.warnings).unwrap_or_default(),
                        now
                    ],
                )?;
            }
            Ok(referral_id)
        })
    }

    fn referrals(&self, practice_id: i64, f: &ReferralFilter) -> Result<Vec<ReferralRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals r
             WHERE r.practice_id = ?1 AND (?2 IS NULL OR r.patient_index = field_index('patient', ?1 || ':' || ?2))
               AND (?3 IS NULL OR r.direction = ?3) AND (?4 IS NULL OR r.way = ?4)
             ORDER BY r.created_at DESC, r.id DESC"
        ))?;
        let rows = stmt.query_map(params![practice_id, f.patient_id, f.direction, f.way], referral_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn referral(&self, practice_id: i64, id: i64) -> Result<ReferralRecord> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals r WHERE r.practice_id = ?1 AND r.id = ?2"
        ))?;
        stmt.query_row(params![practice_id, id], referral_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("referral {id}")))
    }

    fn mark_received(&self, practice_id: i64, id: i64, by: &str) -> Result<ReferralRecord> {
        let now = self.clock.unix_now();
        let referral = self.referral(practice_id, id)?;
        if referral.way != "received" {
            return Err(StoreError::Conflict(format!(
                "referral {id} was sent by this practice; only a referral that came back can be marked received"
            )));
        }
        if referral.received_at.is_none() {
            self.change("referral.received", &format!("referral {id}"), by, |tx| {
                tx.run(
                    "UPDATE referrals SET received_at = ?3, received_by = ?4
                     WHERE practice_id = ?1 AND id = ?2 AND received_at IS NULL",
                    params![practice_id, id, now, by],
                )?;
                Ok(())
            })?;
        }
        self.referral(practice_id, id)
    }

    fn documents(
        &self,
        practice_id: i64,
        patient_id: Option<&str>,
        message_id: Option<&str>,
    ) -> Result<Vec<DocumentRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents
             WHERE practice_id = ?1 AND (?2 IS NULL OR patient_index = field_index('patient', ?1 || ':' || ?2))
               AND (?3 IS NULL OR message_id = ?3)
             ORDER BY created_at DESC, id DESC"
        ))?;
        let rows = stmt.query_map(params![practice_id, patient_id, message_id], document_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn document(&self, practice_id: i64, id: i64) -> Result<(DocumentRecord, Vec<u8>)> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS}, sealed FROM documents WHERE practice_id = ?1 AND id = ?2"
        ))?;
        stmt.query_row(params![practice_id, id], |r| Ok((document_row(r)?, r.get(11)?)))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("document {id}")))
    }

    fn xdm_packages(&self, practice_id: i64, message_id: &str) -> Result<Vec<PackageRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT field_open(filename), sha256, status, field_open(reason), documents, field_open(warnings), created_at
             FROM xdm_packages WHERE practice_id = ?1 AND message_id = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![practice_id, message_id], |r| {
            Ok(PackageRecord {
                filename: r.get(0)?,
                sha256: r.get(1)?,
                status: r.get(2)?,
                reason: r.get(3)?,
                documents: r.get(4)?,
                warnings: r
                    .get::<_, Option<String>>(5)?
                    .and_then(|w| serde_json::from_str(&w).ok())
                    .unwrap_or_default(),
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn mailbox(
        &self,
        practice_id: i64,
        way: Option<&str>,
        message_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MailboxEntry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT * FROM (
               SELECT message_id, 'sent' AS way, sender, group_concat(recipient, ' '), field_open(subject),
                      min(submitted_at) AS at, group_concat(status, ' ')
               FROM tracked
               WHERE sender_domain IN {PRACTICE_DOMAINS} AND (?3 IS NULL OR message_id = ?3)
               GROUP BY message_id
               UNION ALL
               SELECT message_id, 'received', sender, group_concat(recipient, ' '), field_open(subject), min(delivered_at),
                      'delivered'
               FROM mailbox_deliveries
               WHERE kind = 'message' AND recipient_domain IN {PRACTICE_DOMAINS} AND (?3 IS NULL OR message_id = ?3)
               GROUP BY message_id)
             WHERE ?2 IS NULL OR way = ?2 ORDER BY at DESC, message_id LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![practice_id, way, message_id, limit as i64], |r| {
            let words = |text: String| text.split_whitespace().map(String::from).collect::<Vec<_>>();
            let states = words(r.get(6)?);
            Ok(MailboxEntry {
                message_id: r.get(0)?,
                way: r.get(1)?,
                sender: r.get(2)?,
                recipients: words(r.get(3)?),
                subject: r.get(4)?,
                at: r.get(5)?,
                status: summarize(&states).to_string(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn idempotency_begin(&self, token_id: i64, key: &str, request_sha256: &str, now: i64) -> Result<Idempotency> {
        self.conn.run("DELETE FROM api_idempotency WHERE created_at < ?1", [now - 86_400])?;
        let inserted = self.conn.run(
            "INSERT OR IGNORE INTO api_idempotency (token_id, key, request_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_id, key, request_sha256, now],
        )?;
        if inserted == 1 {
            return Ok(Idempotency::New);
        }
        let (sha256, status, response): (String, Option<u16>, Option<String>) = self.conn.row(
            "SELECT request_sha256, status, field_open(response) FROM api_idempotency WHERE token_id = ?1 AND key = ?2",
            params![token_id, key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(match (sha256 == request_sha256, status, response) {
            (false, ..) => Idempotency::Mismatch,
            (true, Some(status), Some(response)) => Idempotency::Replay { status, response },
            _ => Idempotency::InProgress,
        })
    }

    fn idempotency_finish(&self, token_id: i64, key: &str, status: u16, response: &str) -> Result<()> {
        self.conn.run(
            "UPDATE api_idempotency SET status = ?3, response = field_seal(?4) WHERE token_id = ?1 AND key = ?2",
            params![token_id, key, status, response],
        )?;
        Ok(())
    }

    fn idempotency_abandon(&self, token_id: i64, key: &str) -> Result<()> {
        self.conn.run("DELETE FROM api_idempotency WHERE token_id = ?1 AND key = ?2", params![token_id, key])?;
        Ok(())
    }

    fn patient_by_key(&self, practice_id: i64, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .row(
                "SELECT field_open(patient_id) FROM patient_index
                 WHERE practice_id = ?1 AND key_index = field_index('patient-key', ?1 || ':' || ?2)",
                params![practice_id, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn received_text(&self, practice_id: i64, message_id: &str) -> Result<Option<String>> {
        let text: Option<Option<String>> = self
            .conn
            .row(
                &format!(
                    "SELECT field_open(body) FROM mailbox_deliveries
                     WHERE message_id = ?2 AND kind = 'message' AND recipient_domain IN {PRACTICE_DOMAINS}
                     ORDER BY body IS NULL LIMIT 1"
                ),
                params![practice_id, message_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.flatten())
    }

    fn directory(&self, practice_id: i64, query: &str, limit: usize) -> Result<Vec<DirectoryEntry>> {
        let mut found: Vec<DirectoryEntry> = Vec::new();
        let entry = |r: &Row| Ok(DirectoryEntry { address: r.get(0)?, practice: r.get(1)?, source: r.get(2)? });
        // Hosted addresses whose words begin with the query's words, from the word index: each
        // word quoted, so nothing in a query is FTS5 syntax.
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| format!("\"{w}\"*"))
            .collect();
        if !words.is_empty() {
            let mut stmt = self.conn.prepare_cached(
                "SELECT a.address, p.name, 'hosted' FROM addresses_search s JOIN addresses a ON a.id = s.rowid
                   JOIN domains d ON d.id = a.domain_id JOIN practices p ON p.id = d.practice_id
                 WHERE addresses_search MATCH ?1 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![words.join(" "), limit as i64], entry)?;
            found.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
        }
        // The addresses of practices whose name holds the query: the practices first (they are
        // few), then each one's addresses from its domains' index, as many as are shown.
        let pattern = contains_pattern(query);
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.address, p.name, 'hosted' FROM practices p CROSS JOIN domains d CROSS JOIN addresses a
             WHERE p.name LIKE ?1 ESCAPE '\\' AND d.practice_id = p.id AND a.domain_id = d.id LIMIT ?2",
        )?;
        found.extend(stmt.query_map(params![pattern, limit as i64], entry)?.collect::<rusqlite::Result<Vec<_>>>()?);
        // Those this practice exchanged mail with, from its own messages.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT lower(recipient), NULL, 'known' FROM tracked
               WHERE sender_domain IN {PRACTICE_DOMAINS} AND recipient LIKE ?2 ESCAPE '\\'
             UNION
             SELECT lower(sender), NULL, 'known' FROM mailbox_deliveries
               WHERE kind = 'message' AND recipient_domain IN {PRACTICE_DOMAINS} AND sender LIKE ?2 ESCAPE '\\'
             LIMIT ?3"
        ))?;
        found.extend(
            stmt.query_map(params![practice_id, pattern, limit as i64], entry)?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        );
        // Known correspondents first, then hosted addresses, each by address; an address found
        // both ways is listed once, as known.
        found.sort_by(|a, b| b.source.cmp(&a.source).then_with(|| a.address.cmp(&b.address)));
        let mut out: Vec<DirectoryEntry> = Vec::new();
        for entry in found {
            if !out.iter().any(|e| e.address == entry.address) {
                out.push(entry);
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

/// `text` as a LIKE pattern matching it anywhere (its own % and _ taken literally).
fn contains_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NodeStore as _, Store};

    fn store() -> (SqliteStore, i64, i64) {
        let s = SqliteStore::in_memory("test").unwrap();
        s.attach_fields(std::sync::Arc::new(crate::store::fields::tests::Reversing)).unwrap();
        s.add_practice("Smith", &Domain::parse("smith.test").unwrap(), &[]).unwrap();
        s.add_practice("Jones", &Domain::parse("jones.test").unwrap(), &[]).unwrap();
        let (a, b) = (s.practice("Smith").unwrap().id, s.practice("Jones").unwrap().id);
        (s, a, b)
    }

    fn referral(direction: &str, in_reply_to: Option<&str>) -> NewReferral {
        NewReferral {
            direction: direction.into(),
            patient_id: Some("MRN-1".into()),
            sender_patient_id: None,
            sender: "dr@smith.test".into(),
            recipients: vec!["dr@other.test".into()],
            subject: "Referral".into(),
            sections: vec!["problems".into()],
            encounter_note: false,
            in_reply_to: in_reply_to.map(String::from),
        }
    }

    fn doc(name: &str) -> NewDocument {
        NewDocument {
            filename: name.into(),
            content_type: "text/xml".into(),
            size: 3,
            sha256: name.into(),
            sealed: vec![1],
            xdm: None,
        }
    }

    #[test]
    fn an_exchange_is_recorded_once_and_answers_are_linked() {
        let (s, a, _) = store();
        let sent = referral("transferring", None);
        let docs = [doc("ccda.xml")];
        fn exchange<'a>(
            a: i64,
            id: &'a str,
            way: &'a str,
            r: &'a NewReferral,
            docs: &'a [NewDocument],
        ) -> Exchange<'a> {
            Exchange {
                practice_id: a,
                message_id: id,
                way,
                patient_id: Some("MRN-1"),
                patient_key: None,
                referral: Some(r),
                documents: docs,
                packages: &[],
            }
        }
        let first = s.save_exchange(&exchange(a, "<m1@x>", "sent", &sent, &docs)).unwrap();
        assert_eq!(
            s.save_exchange(&exchange(a, "<m1@x>", "sent", &sent, &docs)).unwrap(),
            first,
            "a retry is the same"
        );
        assert_eq!(s.documents(a, Some("MRN-1"), None).unwrap().len(), 1);
        let back = referral("receiving", Some("<m1@x>"));
        let answer = s.save_exchange(&exchange(a, "<m2@y>", "received", &back, &docs)).unwrap().unwrap();
        let original = s.referral(a, first.unwrap()).unwrap();
        assert_eq!(original.answered_by, vec![answer]);
        assert_eq!(s.referral(a, answer).unwrap().answers, first);
        assert!(matches!(s.mark_received(a, first.unwrap(), "api"), Err(StoreError::Conflict(_))));
        let marked = s.mark_received(a, answer, "api:kareo").unwrap();
        assert_eq!(marked.received_by.as_deref(), Some("api:kareo"));
        let filter = ReferralFilter { direction: Some("receiving"), ..Default::default() };
        assert_eq!(s.referrals(a, &filter).unwrap().len(), 1);
    }

    #[test]
    fn phi_fields_are_sealed_at_rest_and_still_found_by_patient() {
        let (s, a, b) = store();
        let r = referral("transferring", None);
        let docs = [doc("ccda.xml")];
        let exchange = Exchange {
            practice_id: a,
            message_id: "<m1@x>",
            way: "sent",
            patient_id: Some("MRN-1"),
            patient_key: None,
            referral: Some(&r),
            documents: &docs,
            packages: &[],
        };
        s.save_exchange(&exchange).unwrap();
        // Nothing of the patient id, subject, recipients, filename or hash is in the clear.
        let raw: Vec<Vec<u8>> = [
            "SELECT patient_id FROM referrals",
            "SELECT subject FROM referrals",
            "SELECT recipients FROM referrals",
            "SELECT patient_id FROM documents",
            "SELECT filename FROM documents",
            "SELECT sha256 FROM documents",
        ]
        .iter()
        .map(|sql| s.conn.query_row(sql, [], |r| r.get::<_, Vec<u8>>(0)).unwrap())
        .collect();
        for (value, clear) in raw.iter().zip(["MRN-1", "Referral", "dr@other.test", "MRN-1", "ccda.xml", "ccda.xml"]) {
            assert!(!value.windows(clear.len()).any(|w| w == clear.as_bytes()), "{clear} in the clear");
        }
        // Found by patient through the blind index, shown opened; another practice's index differs.
        let found = s.referrals(a, &ReferralFilter { patient_id: Some("MRN-1"), ..Default::default() }).unwrap();
        assert_eq!((found.len(), found[0].referral.patient_id.as_deref().unwrap()), (1, "MRN-1"));
        assert_eq!(s.documents(a, Some("MRN-1"), None).unwrap()[0].filename, "ccda.xml");
        assert!(s.documents(b, Some("MRN-1"), None).unwrap().is_empty());
        assert!(s.documents(a, Some("MRN-2"), None).unwrap().is_empty());
    }

    #[test]
    fn rows_written_in_the_clear_before_are_sealed_by_the_upgrade_and_still_found() {
        let (s, a, _) = store();
        s.conn
            .execute_batch(&format!(
                "INSERT INTO referrals (practice_id, message_id, way, direction, patient_id, sender, recipients,
                                        subject, sections, encounter_note, created_at)
                   VALUES ({a}, '<old@x>', 'received', 'receiving', 'MRN-9', 'x@y.test', '[]', 'Old referral', '[]', 0, 1);
                 INSERT INTO documents (practice_id, patient_id, message_id, way, filename, content_type, size, sha256,
                                        sealed, created_at)
                   VALUES ({a}, 'MRN-9', '<old@x>', 'received', 'old.pdf', 'application/pdf', 1, 'abc', x'00', 1);
                 INSERT INTO tracked (sender, message_id, recipient, subject, final_delivery, status, submitted_at, updated_at)
                   VALUES ('dr@smith.test', '<old@x>', 'x@y.test', 'Old subject', 0, 'sent', 1, 1);"
            ))
            .unwrap();
        assert!(s.documents(a, Some("MRN-9"), None).unwrap().is_empty(), "no index yet");
        let changed = s.seal_plaintext().unwrap();
        assert!(changed >= 8, "{changed}");
        assert_eq!(s.seal_plaintext().unwrap(), 0, "a second run changes nothing");
        let clear: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM referrals, documents, tracked WHERE typeof(referrals.subject) = 'text'
                   OR typeof(documents.filename) = 'text' OR typeof(tracked.subject) = 'text'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(clear, 0);
        let found = s.referrals(a, &ReferralFilter { patient_id: Some("MRN-9"), ..Default::default() }).unwrap();
        assert_eq!(found[0].referral.subject, "Old referral");
        assert_eq!(s.documents(a, Some("MRN-9"), None).unwrap()[0].filename, "old.pdf");
    }

    #[test]
    fn one_practice_never_sees_another_practices_records() {
        let (s, a, b) = store();
        let r = referral("transferring", None);
        let docs = [doc("ccda.xml")];
        let exchange = Exchange {
            practice_id: a,
            message_id: "<m@x>",
            way: "sent",
            patient_id: Some("MRN-1"),
            patient_key: None,
            referral: Some(&r),
            documents: &docs,
            packages: &[],
        };
        let id = s.save_exchange(&exchange).unwrap().unwrap();
        let document = s.documents(a, None, None).unwrap()[0].id;
        assert!(matches!(s.referral(b, id), Err(StoreError::NotFound(_))));
        assert!(matches!(s.document(b, document), Err(StoreError::NotFound(_))));
        assert!(s.referrals(b, &ReferralFilter::default()).unwrap().is_empty());
        assert!(s.documents(b, Some("MRN-1"), None).unwrap().is_empty());
    }

    #[test]
    fn tokens_start_unbound_and_revoked_ones_stop_working() {
        let (s, _, _) = store();
        s.add_token("kareo", None, "h1").unwrap();
        assert!(s.token("h1").unwrap().unwrap().practice.is_none());
        assert!(matches!(s.add_token("kareo", None, "h2"), Err(StoreError::Duplicate(_))));
        s.revoke_token("kareo").unwrap();
        assert!(s.token("h1").unwrap().is_none());
    }

    #[test]
    fn a_practice_set_up_for_a_token_is_made_and_bound_all_or_nothing() {
        let (s, _, _) = store();
        let token = s.add_token("ehr", None, "digest-1").unwrap();
        let domain = Domain::parse("lee.test").unwrap();
        // The domain is taken by another practice: nothing is made, the token stays free.
        let taken = Domain::parse("smith.test").unwrap();
        assert!(s.add_practice_for_token("Lee Family Medicine", &taken, &[], token).is_err());
        assert!(s.practice("Lee Family Medicine").is_err(), "no practice without its domain");
        s.add_practice_for_token("Lee Family Medicine", &domain, &[], token).unwrap();
        assert_eq!(s.token("digest-1").unwrap().unwrap().practice.as_deref(), Some("Lee Family Medicine"));
        // A token already bound: the second practice is not made either.
        assert!(s.add_practice_for_token("Other", &Domain::parse("other.test").unwrap(), &[], token).is_err());
        assert!(s.practice("Other").is_err());
    }
}
