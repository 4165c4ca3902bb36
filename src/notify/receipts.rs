//! The receiving side of delivery notification: for each message opened for a hosted recipient,
//! which MDNs have been queued back to its sender. Recording an MDN and queueing it happen in one
//! transaction, so a message processed again (a retry, a restart) never sends the same MDN twice
//! and a crash never loses one.

use crate::store::cached::CachedSql;
use rusqlite::{params, Connection, OptionalExtension};

use super::mdn::Disposition;
use crate::smtp::queue::{insert_message, NewMessage, Result};

/// What the MDNs for one (message, recipient) are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    pub recipient: String,
    /// Where the MDNs go: the message's verified sender.
    pub sender: String,
    pub subject: String,
    /// The sender asked for a `dispatched` MDN (well-formed request only).
    pub final_delivery: bool,
}

/// Records the message as processed and queues `mdn` (in the write transaction `tx`), unless that
/// was done before. Returns whether the MDN was queued now.
pub fn processed(tx: &Connection, receipt: &Receipt, mdn: &NewMessage, now: i64) -> Result<bool> {
    let inserted = tx.run(
        "INSERT OR IGNORE INTO receipts (message_id, recipient, sender, subject, final_delivery, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![receipt.message_id, receipt.recipient, receipt.sender, receipt.subject, receipt.final_delivery, now],
    )?;
    if inserted == 1 {
        insert_message(tx, mdn, now)?;
    }
    Ok(inserted == 1)
}

/// The receipt of a processed message, if there is one.
pub fn get(conn: &Connection, message_id: &str, recipient: &str) -> Result<Option<Receipt>> {
    Ok(conn
        .row(
            "SELECT message_id, recipient, sender, subject, final_delivery FROM receipts
             WHERE message_id = ?1 AND recipient = ?2 AND processed_at IS NOT NULL",
            params![message_id, recipient],
            |r| {
                Ok(Receipt {
                    message_id: r.get(0)?,
                    recipient: r.get(1)?,
                    sender: r.get(2)?,
                    subject: r.get(3)?,
                    final_delivery: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Records the final outcome (`dispatched` or `failed`) and queues its MDN, unless an outcome was
/// recorded before. Returns whether the MDN was queued now.
pub fn concluded(tx: &Connection, receipt: &Receipt, outcome: Disposition, mdn: &NewMessage, now: i64) -> Result<bool> {
    let column = match outcome {
        Disposition::Dispatched => "dispatched_at",
        Disposition::Failed => "failed_at",
        Disposition::Processed => return Ok(false),
    };
    let changed = tx.run(
        &format!(
            "UPDATE receipts SET {column} = ?3
             WHERE message_id = ?1 AND recipient = ?2 AND dispatched_at IS NULL AND failed_at IS NULL"
        ),
        params![receipt.message_id, receipt.recipient, now],
    )?;
    if changed == 1 {
        insert_message(tx, mdn, now)?;
    }
    Ok(changed == 1)
}
