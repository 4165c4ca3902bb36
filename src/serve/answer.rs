//! MDNs back to the sender of a message opened here: `processed` once it is opened and trusted,
//! `dispatched` once it is in the mailbox (when the sender asked for final delivery), `failed`
//! when it cannot be delivered after all. Each is queued as an outbound message from the hosted
//! recipient, so it is signed with the recipient's key, encrypted, and delivered (and retried)
//! like any Direct message; the receipts table makes each one happen once.

use super::Work;
use crate::address::DirectAddress;
use crate::notify::mdn::{self, Disposition, Mdn};
use crate::notify::receipts::{self, Receipt};
use crate::smtp::queue::{Flow, NewMessage};

/// Queues the MDN saying `disposition` for `receipt`, unless it was queued before.
pub fn send(work: &Work, receipt: &Receipt, disposition: Disposition, failure: Option<&str>) -> Result<(), String> {
    let from = DirectAddress::parse(&receipt.recipient).map_err(|e| e.to_string())?;
    let (message, message_id) = mdn::build(
        &Mdn {
            from: &from,
            to: &receipt.sender,
            original_message_id: &receipt.message_id,
            original_subject: &receipt.subject,
            disposition,
            final_delivery: receipt.final_delivery,
            failure,
            reporting_host: &work.shared.config.server.hostname,
        },
        work.now,
    );
    let queued = NewMessage {
        flow: Flow::Outbound,
        mail_from: receipt.recipient.clone(),
        authenticated_as: None,
        message_id,
        recipients: vec![receipt.sender.clone()],
        size: message.len(),
        sealed_data: work.shared.kek.seal_message(&message).map_err(|e| e.to_string())?,
        tracked: None,
    };
    let queued_now = match disposition {
        Disposition::Processed => receipts::processed(work.queue, receipt, &queued, work.now),
        outcome => receipts::concluded(work.queue, receipt, outcome, &queued, work.now),
    }
    .map_err(|e| format!("cannot queue the {} MDN: {e}", disposition.as_str()))?;
    if queued_now {
        work.shared.wakeup.wake();
    }
    Ok(())
}

/// A message opened here will not be delivered after all (`reason`): if its processed MDN went
/// out, a failed MDN follows.
pub fn failed(work: &Work, message_id: &str, recipient: &str, reason: &str) {
    match receipts::get(work.queue, message_id, recipient) {
        Ok(Some(receipt)) => {
            if let Err(e) = send(work, &receipt, Disposition::Failed, Some(reason)) {
                eprintln!("worker: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("worker: cannot read the receipt of {message_id} for {recipient}: {e}"),
    }
}
