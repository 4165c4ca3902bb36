//! Secure messages between accounts of connected parties, kept on this node: each message once,
//! its subject, body and attachments sealed under the KEK, and one delivery per recipient (its
//! mailbox). An account reads only what it sent or received; it writes only to accounts of its
//! own practice, of a practice connected to it, or (between a practice and its patients) of a
//! connected patient.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::cached::CachedSql;
use super::sqlite::SqliteStore;
use super::states::InvitationState;
use super::{Result, StoreError};

/// An attachment to send: its content base64-encoded (as it is sealed).
#[derive(Debug, Clone)]
pub(crate) struct NewAttachment<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: usize,
    pub content_base64: &'a str,
}

#[derive(Debug, Clone)]
pub(crate) struct NewSecureMessage<'a> {
    pub sender: i64,
    /// Sent as the practice: the practice's shared address shown as the sender.
    pub as_address: Option<&'a str>,
    pub reply_to: Option<i64>,
    pub subject: &'a str,
    pub body: &'a str,
    pub attachments: &'a [NewAttachment<'a>],
    pub recipients: &'a [i64],
    pub now: i64,
}

/// One side of a message: an account, and the practice it belongs to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Party {
    pub account: i64,
    pub name: String,
    pub practice: Option<String>,
    /// A recipient, as its sender sees it: when they read it (not yet: None).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AttachmentInfo {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
}

/// A message as one of its parties reads it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SecureMessage {
    pub id: i64,
    pub from: Party,
    pub as_address: Option<String>,
    pub to: Vec<Party>,
    pub reply_to: Option<i64>,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<AttachmentInfo>,
    pub created_at: i64,
    /// When the reader read it (None: the reader sent it, or has not read it before).
    pub read_at: Option<i64>,
}

/// A line of a mailbox listing.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MailboxItem {
    pub id: i64,
    pub from: Party,
    pub as_address: Option<String>,
    pub subject: String,
    pub attachments: i64,
    pub created_at: i64,
    pub read_at: Option<i64>,
    /// Sent items: whom it went to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

/// A message held for someone with no Direct address while they are invited.
#[derive(Debug, Clone)]
pub(crate) struct NewHeld<'a> {
    pub practice_id: i64,
    pub invitation_id: i64,
    pub sender: &'a str,
    pub recipient: &'a str,
    pub message_id: &'a str,
    /// The message as submitted (base64, as it is sealed).
    pub content_base64: &'a str,
    pub now: i64,
}

/// A held message, its content opened.
#[derive(Debug, Clone)]
pub(crate) struct HeldRecord {
    pub id: i64,
    pub invitation_id: i64,
    pub sender: String,
    pub recipient: String,
    pub message_id: String,
    pub content_base64: String,
    pub account_id: Option<i64>,
}

/// A held message as it goes into the invitee's mailbox.
#[derive(Debug, Clone)]
pub(crate) struct HeldDelivery<'a> {
    pub held: i64,
    pub account: i64,
    pub subject: &'a str,
    pub body: &'a str,
    pub attachments: &'a [NewAttachment<'a>],
    pub now: i64,
}

pub(crate) trait SecureMessageStore {
    /// Keeps a message for an invitee; holding the same message for the same recipient again
    /// keeps it once. True when it was new.
    fn hold_message(&self, held: &NewHeld) -> Result<bool>;
    /// Messages released to `account` (its invitation accepted) not yet in its mailbox.
    fn held_for(&self, account: i64) -> Result<Vec<HeldRecord>>;
    /// Puts a released held message into its invitee's mailbox, once.
    fn deliver_held(&self, delivery: &HeldDelivery) -> Result<i64>;
    /// Released messages whose sender's tracking has not been told yet.
    fn held_untracked(&self, limit: usize) -> Result<Vec<HeldRecord>>;
    fn held_tracked(&self, held: i64, now: i64) -> Result<()>;
    /// Held messages whose invitation closed without being accepted (expired, cancelled,
    /// locked), not yet returned to their senders, with the invitation's state.
    fn held_unclaimed(&self, limit: usize) -> Result<Vec<(HeldRecord, InvitationState)>>;
    /// A held message returned to its sender: its content is forgotten (the sender has it).
    fn held_returned(&self, held: i64, now: i64) -> Result<()>;
    /// Sends a message into each recipient's mailbox; refused (nothing kept) if the sender may
    /// not write to one of them or may not read the message it answers.
    fn send_secure(&self, message: &NewSecureMessage) -> Result<i64>;
    /// What reached the account, newest first.
    fn secure_inbox(&self, account: i64, limit: usize) -> Result<Vec<MailboxItem>>;
    /// What the account sent, newest first.
    fn secure_sent(&self, account: i64, limit: usize) -> Result<Vec<MailboxItem>>;
    /// A message the account sent or received (received ones are marked read).
    fn secure_message(&self, account: i64, id: i64, now: i64) -> Result<SecureMessage>;
    /// An attachment's information and content (base64) for a party of its message.
    fn secure_attachment(&self, account: i64, message: i64, attachment: i64) -> Result<(AttachmentInfo, String)>;
    /// The accounts `account` may write to (its practice, connected practices and patients, or a
    /// patient's connected practices), by name; at most `limit`.
    fn writable(&self, account: i64, limit: usize) -> Result<Vec<Party>>;
}

/// May `?1` write to `?2`: the same practice, connected practices, a practice and its patient.
const MAY_WRITE: &str = "SELECT 1 FROM accounts a, accounts b WHERE a.id = ?1 AND b.id = ?2 AND a.id <> b.id AND (
        (a.practice_id IS NOT NULL AND a.practice_id = b.practice_id)
        OR EXISTS (SELECT 1 FROM connections c WHERE c.practice_id = a.practice_id AND c.peer_practice_id = b.practice_id)
        OR EXISTS (SELECT 1 FROM connections c WHERE c.practice_id = a.practice_id AND c.patient_id = b.id)
        OR EXISTS (SELECT 1 FROM connections c WHERE c.practice_id = b.practice_id AND c.patient_id = a.id))";

/// The accounts `?1` may write to, as `MAY_WRITE` says: its practice's other members, the
/// members of practices connected to it, its connected patients; a patient, the members of the
/// practices connected to it.
const WRITABLE: &str = "SELECT b.id, field_open(b.name), p.name FROM accounts b
        LEFT JOIN practices p ON p.id = b.practice_id WHERE b.id IN (
        SELECT m.id FROM accounts a JOIN accounts m ON m.practice_id = a.practice_id WHERE a.id = ?1 AND m.id <> ?1
        UNION SELECT m.id FROM accounts a JOIN connections c ON c.practice_id = a.practice_id
            JOIN accounts m ON m.practice_id = c.peer_practice_id WHERE a.id = ?1
        UNION SELECT c.patient_id FROM accounts a JOIN connections c ON c.practice_id = a.practice_id
            WHERE a.id = ?1 AND c.patient_id IS NOT NULL
        UNION SELECT m.id FROM connections c JOIN accounts m ON m.practice_id = c.practice_id WHERE c.patient_id = ?1)
        LIMIT ?2";

/// May account `?1` read message `?2`: it sent it or received it.
const MAY_READ: &str = "SELECT 1 FROM secure_messages m WHERE m.id = ?2 AND (m.sender_account = ?1
        OR EXISTS (SELECT 1 FROM secure_deliveries d WHERE d.message_id = m.id AND d.account_id = ?1))";

/// The sender: an account, or (a message held for an invitee) a practice user's Direct address.
const SENDER_COLUMNS: &str = "coalesce(a.id, 0), coalesce(field_open(a.name), m.sender_address), coalesce(p.name,
        (SELECT sp.name FROM domains sd JOIN practices sp ON sp.id = sd.practice_id
         WHERE sd.name = lower(substr(m.sender_address, instr(m.sender_address, '@') + 1))))";

const PARTY_COLUMNS: &str = "a.id, field_open(a.name), p.name";

fn party(r: &Row, at: usize) -> rusqlite::Result<Party> {
    Ok(Party { account: r.get(at)?, name: r.get(at + 1)?, practice: r.get(at + 2)?, read_at: None })
}

/// A mailbox line's columns after the message id and its sender's (`SENDER_COLUMNS`).
const ITEM_COLUMNS: &str = "m.as_address, field_open(m.subject),
        (SELECT count(*) FROM secure_attachments s WHERE s.message_id = m.id), m.created_at";

fn item(r: &Row, read_at: Option<i64>) -> rusqlite::Result<MailboxItem> {
    Ok(MailboxItem {
        id: r.get(0)?,
        from: party(r, 1)?,
        as_address: r.get(4)?,
        subject: r.get(5)?,
        attachments: r.get(6)?,
        created_at: r.get(7)?,
        read_at,
        to: Vec::new(),
    })
}

const HELD_COLUMNS: &str =
    "id, invitation_id, sender, recipient, message_id, field_open(content), account_id FROM held_messages";

fn held_row(r: &Row) -> rusqlite::Result<HeldRecord> {
    Ok(HeldRecord {
        id: r.get(0)?,
        invitation_id: r.get(1)?,
        sender: r.get(2)?,
        recipient: r.get(3)?,
        message_id: r.get(4)?,
        content_base64: r.get(5)?,
        account_id: r.get(6)?,
    })
}

impl SecureMessageStore for SqliteStore {
    fn hold_message(&self, h: &NewHeld) -> Result<bool> {
        let detail = format!("{} for invitation #{}", h.message_id, h.invitation_id);
        self.change("secure.hold", h.sender, &detail, |tx| {
            let added = tx.run(
                "INSERT OR IGNORE INTO held_messages (practice_id, invitation_id, sender, recipient, message_id, content,
                     created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, field_seal(?6), ?7)",
                params![h.practice_id, h.invitation_id, h.sender, h.recipient, h.message_id, h.content_base64, h.now],
            )?;
            Ok(added == 1)
        })
    }

    fn held_for(&self, account: i64) -> Result<Vec<HeldRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HELD_COLUMNS} WHERE account_id = ?1 AND secure_id IS NULL ORDER BY id"
        ))?;
        let rows = stmt.query_map([account], held_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn deliver_held(&self, d: &HeldDelivery) -> Result<i64> {
        let detail = format!("held message #{} into its invitee's mailbox", d.held);
        self.change("secure.release", &format!("account #{}", d.account), &detail, |tx| {
            let sender: Option<String> = tx
                .row(
                    "SELECT sender FROM held_messages WHERE id = ?1 AND account_id = ?2 AND secure_id IS NULL",
                    params![d.held, d.account],
                    |r| r.get(0),
                )
                .optional()?;
            let sender = sender.ok_or_else(|| StoreError::NotFound(format!("held message #{} to deliver", d.held)))?;
            tx.run(
                "INSERT INTO secure_messages (sender_address, subject, body, created_at)
                 VALUES (?1, field_seal(?2), field_seal(?3), ?4)",
                params![sender, d.subject, d.body, d.now],
            )?;
            let id = tx.last_insert_rowid();
            for a in d.attachments {
                tx.run(
                    "INSERT INTO secure_attachments (message_id, filename, content_type, size, content)
                     VALUES (?1, field_seal(?2), ?3, ?4, field_seal(?5))",
                    params![id, a.filename, a.content_type, a.size as i64, a.content_base64],
                )?;
            }
            tx.run("INSERT INTO secure_deliveries (message_id, account_id) VALUES (?1, ?2)", params![id, d.account])?;
            tx.run("UPDATE held_messages SET secure_id = ?2 WHERE id = ?1", params![d.held, id])?;
            Ok(id)
        })
    }

    fn held_untracked(&self, limit: usize) -> Result<Vec<HeldRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {HELD_COLUMNS} WHERE released_at IS NOT NULL AND tracked_at IS NULL ORDER BY released_at LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], held_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn held_tracked(&self, held: i64, now: i64) -> Result<()> {
        self.conn.run("UPDATE held_messages SET tracked_at = ?2 WHERE id = ?1", params![held, now])?;
        Ok(())
    }

    fn held_unclaimed(&self, limit: usize) -> Result<Vec<(HeldRecord, InvitationState)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.id, h.invitation_id, h.sender, h.recipient, h.message_id, field_open(h.content), h.account_id,
                    i.state
             FROM held_messages h JOIN invitations i ON i.id = h.invitation_id
             WHERE h.released_at IS NULL AND h.tracked_at IS NULL AND i.state IN ('expired', 'cancelled', 'locked')
             ORDER BY h.id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| Ok((held_row(r)?, r.get(7)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn held_returned(&self, held: i64, now: i64) -> Result<()> {
        self.change("secure.return", &format!("held message #{held}"), "returned to its sender", |tx| {
            tx.run(
                "UPDATE held_messages SET tracked_at = ?2, content = field_seal('') WHERE id = ?1",
                params![held, now],
            )?;
            Ok(())
        })
    }

    fn send_secure(&self, m: &NewSecureMessage) -> Result<i64> {
        let detail = format!("to {} account(s), {} attachment(s)", m.recipients.len(), m.attachments.len());
        self.change("secure.send", &format!("account #{}", m.sender), &detail, |tx| {
            for recipient in m.recipients {
                let may: Option<i64> = tx.row(MAY_WRITE, params![m.sender, recipient], |r| r.get(0)).optional()?;
                if may.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "account #{recipient} among those you may write to (your practice, connected practices and \
                         patients)"
                    )));
                }
            }
            if let Some(answered) = m.reply_to {
                let may: Option<i64> = tx.row(MAY_READ, params![m.sender, answered], |r| r.get(0)).optional()?;
                if may.is_none() {
                    return Err(StoreError::NotFound(format!("message #{answered} among yours")));
                }
            }
            tx.run(
                "INSERT INTO secure_messages (sender_account, as_address, reply_to, subject, body, created_at)
                 VALUES (?1, ?2, ?3, field_seal(?4), field_seal(?5), ?6)",
                params![m.sender, m.as_address, m.reply_to, m.subject, m.body, m.now],
            )?;
            let id = tx.last_insert_rowid();
            for a in m.attachments {
                tx.run(
                    "INSERT INTO secure_attachments (message_id, filename, content_type, size, content)
                     VALUES (?1, field_seal(?2), ?3, ?4, field_seal(?5))",
                    params![id, a.filename, a.content_type, a.size as i64, a.content_base64],
                )?;
            }
            for recipient in m.recipients {
                tx.run(
                    "INSERT OR IGNORE INTO secure_deliveries (message_id, account_id) VALUES (?1, ?2)",
                    params![id, recipient],
                )?;
            }
            Ok(id)
        })
    }

    fn secure_inbox(&self, account: i64, limit: usize) -> Result<Vec<MailboxItem>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT m.id, {SENDER_COLUMNS}, {ITEM_COLUMNS}, d.read_at FROM secure_deliveries d
             JOIN secure_messages m ON m.id = d.message_id
             LEFT JOIN accounts a ON a.id = m.sender_account LEFT JOIN practices p ON p.id = a.practice_id
             WHERE d.account_id = ?1 ORDER BY d.message_id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![account, limit as i64], |r| item(r, r.get(8)?))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn secure_sent(&self, account: i64, limit: usize) -> Result<Vec<MailboxItem>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT m.id, {SENDER_COLUMNS}, {ITEM_COLUMNS},
                    (SELECT group_concat(field_open(b.name), char(10)) FROM secure_deliveries d
                     JOIN accounts b ON b.id = d.account_id WHERE d.message_id = m.id)
             FROM secure_messages m
             JOIN accounts a ON a.id = m.sender_account LEFT JOIN practices p ON p.id = a.practice_id
             WHERE m.sender_account = ?1 ORDER BY m.id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![account, limit as i64], |r| {
            let to: Option<String> = r.get(8)?;
            Ok(MailboxItem { to: to.unwrap_or_default().lines().map(String::from).collect(), ..item(r, None)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn secure_message(&self, account: i64, id: i64, now: i64) -> Result<SecureMessage> {
        let may: Option<i64> = self.conn.row(MAY_READ, params![account, id], |r| r.get(0)).optional()?;
        if may.is_none() {
            return Err(StoreError::NotFound(format!("message #{id} among yours")));
        }
        let read_at: Option<Option<i64>> = self
            .conn
            .row(
                "SELECT read_at FROM secure_deliveries WHERE message_id = ?1 AND account_id = ?2",
                params![id, account],
                |r| r.get(0),
            )
            .optional()?;
        if read_at == Some(None) {
            self.change("secure.read", &format!("account #{account}"), &format!("message #{id}"), |tx| {
                tx.run(
                    "UPDATE secure_deliveries SET read_at = ?3 WHERE message_id = ?1 AND account_id = ?2",
                    params![id, account, now],
                )?;
                Ok(())
            })?;
        }
        let (from, as_address, reply_to, subject, body, created_at) = self.conn.row(
            &format!(
                "SELECT {SENDER_COLUMNS}, m.as_address, m.reply_to, field_open(m.subject), field_open(m.body),
                        m.created_at
                 FROM secure_messages m LEFT JOIN accounts a ON a.id = m.sender_account
                 LEFT JOIN practices p ON p.id = a.practice_id WHERE m.id = ?1"
            ),
            [id],
            |r| Ok((party(r, 0)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {PARTY_COLUMNS}, d.read_at FROM secure_deliveries d JOIN accounts a ON a.id = d.account_id
             LEFT JOIN practices p ON p.id = a.practice_id WHERE d.message_id = ?1 ORDER BY d.id"
        ))?;
        // Who read it is the sender's to know, not the other recipients'.
        let sender = from.account == account;
        let to = stmt
            .query_map([id], |r| Ok(Party { read_at: if sender { r.get(3)? } else { None }, ..party(r, 0)? }))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, field_open(filename), content_type, size FROM secure_attachments WHERE message_id = ?1
             ORDER BY id",
        )?;
        let attachments = stmt
            .query_map([id], |r| {
                Ok(AttachmentInfo { id: r.get(0)?, filename: r.get(1)?, content_type: r.get(2)?, size: r.get(3)? })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let read_at = match read_at {
            Some(None) => Some(now),
            Some(at) => at,
            None => None,
        };
        Ok(SecureMessage { id, from, as_address, to, reply_to, subject, body, attachments, created_at, read_at })
    }

    fn secure_attachment(&self, account: i64, message: i64, attachment: i64) -> Result<(AttachmentInfo, String)> {
        let may: Option<i64> = self.conn.row(MAY_READ, params![account, message], |r| r.get(0)).optional()?;
        let found = match may {
            Some(_) => self
                .conn
                .row(
                    "SELECT id, field_open(filename), content_type, size, field_open(content) FROM secure_attachments
                     WHERE id = ?1 AND message_id = ?2",
                    params![attachment, message],
                    |r| {
                        let info = AttachmentInfo {
                            id: r.get(0)?,
                            filename: r.get(1)?,
                            content_type: r.get(2)?,
                            size: r.get(3)?,
                        };
                        Ok((info, r.get(4)?))
                    },
                )
                .optional()?,
            None => None,
        };
        found.ok_or_else(|| StoreError::NotFound(format!("attachment #{attachment} of message #{message}")))
    }

    fn writable(&self, account: i64, limit: usize) -> Result<Vec<Party>> {
        let mut stmt = self.conn.prepare_cached(WRITABLE)?;
        let mut out: Vec<Party> =
            stmt.query_map(params![account, limit as i64], |r| party(r, 0))?.collect::<rusqlite::Result<_>>()?;
        out.sort_by_key(|p| (p.practice.clone().unwrap_or_default().to_lowercase(), p.name.to_lowercase(), p.account));
        Ok(out)
    }
}
