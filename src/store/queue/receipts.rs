//! The receiving side of delivery notification: for each message opened and trusted for a hosted
//! recipient, which MDNs have been queued back to its sender. A message is known by its delivery
//! key (a digest of the verified sender, the Message-ID and the signed content), not by its
//! Message-ID alone, which any sender may reuse. Recording an MDN and queueing it happen in one
//! transaction, so a message processed again (a retry, a restart) never sends the same MDN twice
//! and a crash never loses one.

use crate::store::cached::CachedSql;
use rusqlite::{params, Connection, OptionalExtension};

use super::{insert_message, NewMessage, Result, SqliteQueue};
use crate::store::Disposition;

/// What the MDNs for one (message, recipient) are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// What identifies the message (see the module comment).
    pub delivery_key: String,
    /// The queue entry that carried it (for its failure, found by the worker that fails it).
    pub queue_message: i64,
    pub message_id: String,
    pub recipient: String,
    /// Where the MDNs go: the message's verified sender.
    pub sender: String,
    pub subject: String,
    /// The sender asked for a `dispatched` MDN (well-formed request only).
    pub final_delivery: bool,
}

/// Records that the message was opened and trusted (no MDN yet: `processed` goes out only once
/// it is in the mailbox), unless that was done before.
pub(super) fn opened(tx: &Connection, receipt: &Receipt) -> Result<()> {
    tx.run(
        "INSERT OR IGNORE INTO receipts
           (delivery_key, recipient, queue_message, message_id, sender, subject, final_delivery)
         VALUES (?1, ?2, ?3, ?4, ?5, field_seal(?6), ?7)",
        params![
            receipt.delivery_key,
            receipt.recipient,
            receipt.queue_message,
            receipt.message_id,
            receipt.sender,
            receipt.subject,
            receipt.final_delivery
        ],
    )?;
    Ok(())
}

/// Records that the MDN saying `disposition` was queued and queues `mdn` (in the write
/// transaction `tx`), unless that was done before: `processed` once, and one final outcome
/// (`dispatched` or `failed`), whichever comes first. Returns whether the MDN was queued now.
pub(super) fn answered(
    tx: &Connection,
    receipt: &Receipt,
    disposition: Disposition,
    mdn: &NewMessage,
    now: i64,
) -> Result<bool> {
    let unanswered = match disposition {
        Disposition::Processed => {
            "UPDATE receipts SET processed_at = ?3
             WHERE delivery_key = ?1 AND recipient = ?2 AND processed_at IS NULL"
        }
        Disposition::Dispatched => {
            "UPDATE receipts SET dispatched_at = ?3
             WHERE delivery_key = ?1 AND recipient = ?2 AND dispatched_at IS NULL AND failed_at IS NULL"
        }
        Disposition::Failed => {
            "UPDATE receipts SET failed_at = ?3
             WHERE delivery_key = ?1 AND recipient = ?2 AND dispatched_at IS NULL AND failed_at IS NULL"
        }
    };
    opened(tx, receipt)?;
    let changed = tx.run(unanswered, params![receipt.delivery_key, receipt.recipient, now])?;
    if changed == 1 {
        insert_message(tx, mdn, now)?;
    }
    Ok(changed == 1)
}

/// The receipt of a message opened and trusted for `recipient` from the queue entry
/// `queue_message`, if there is one.
pub(super) fn receipt_of(queue: &SqliteQueue, queue_message: i64, recipient: &str) -> Result<Option<Receipt>> {
    Ok(queue
        .conn()
        .row(
            "SELECT delivery_key, queue_message, message_id, recipient, sender, field_open(subject), final_delivery
             FROM receipts
             WHERE queue_message = ?1 AND recipient = ?2",
            params![queue_message, recipient],
            |r| {
                Ok(Receipt {
                    delivery_key: r.get(0)?,
                    queue_message: r.get(1)?,
                    message_id: r.get(2)?,
                    recipient: r.get(3)?,
                    sender: r.get(4)?,
                    subject: r.get(5)?,
                    final_delivery: r.get(6)?,
                })
            },
        )
        .optional()?)
}
