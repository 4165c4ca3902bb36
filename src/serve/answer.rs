//! MDNs back to the sender of a message opened here: `processed` once it is opened, trusted and
//! written into the mailbox (never for a message that was not written), `dispatched` with it when
//! the sender asked for final delivery, `failed` when a message opened and trusted cannot be
//! delivered after all. Each is queued as an outbound message from the hosted
//! recipient, so it is signed with the recipient's key, encrypted, and delivered (and retried)
//! like any Direct message; the receipts table makes each one happen once.

use super::{Shared, Work};
use crate::address::DirectAddress;
use crate::notify::mdn::{self, Disposition, Mdn};
use crate::queue::receipts::{self, Receipt};
use crate::queue::{Flow, NewMessage};

/// Records that the message of `receipt` was opened and trusted, with the job's outcome: if it is
/// never delivered, its failure is answered with a failed MDN.
pub fn opened(work: &Work, receipt: &Receipt) {
    let receipt = receipt.clone();
    work.at_finish.add(move |tx| receipts::opened(tx, &receipt).map(|()| 0));
}

/// Queues the MDN saying `disposition` for `receipt`, unless it was queued before: built and
/// sealed now, recorded and queued in the transaction that records the job's outcome.
pub fn send(work: &Work, receipt: &Receipt, disposition: Disposition, failure: Option<&str>) -> Result<(), String> {
    let queued = queued_mdn(work.shared, receipt, disposition, failure, work.now)?;
    let (receipt, now) = (receipt.clone(), work.now);
    work.at_finish.add(move |tx| {
        let queued_now = match disposition {
            Disposition::Processed => receipts::processed(tx, &receipt, &queued, now)?,
            outcome => receipts::concluded(tx, &receipt, outcome, &queued, now)?,
        };
        Ok(usize::from(queued_now))
    });
    Ok(())
}

/// The MDN, as queued: from the hosted recipient, sealed under the KEK.
fn queued_mdn(
    shared: &Shared,
    receipt: &Receipt,
    disposition: Disposition,
    failure: Option<&str>,
    now: i64,
) -> Result<NewMessage, String> {
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
            reporting_host: &shared.config.server.hostname,
        },
        now,
    );
    Ok(NewMessage {
        flow: Flow::Outbound,
        mail_from: receipt.recipient.clone(),
        authenticated_as: None,
        message_id,
        recipients: vec![receipt.sender.clone()],
        size: message.len(),
        sealed_data: shared.kek.seal_message(&message).map_err(|e| e.to_string())?,
        tracked: None,
    })
}

/// A message opened here will not be delivered after all (`reason`): if it was opened and
/// trusted (a receipt was recorded), a failed MDN goes out, in the same transaction.
pub fn failed(work: &Work, queue_message: i64, recipient: &str, reason: &str) {
    let (shared, now) = (work.shared, work.now);
    let (recipient, reason) = (recipient.to_ascii_lowercase(), reason.to_string());
    work.at_finish.add(move |tx| {
        let Some(receipt) = receipts::of_queued(tx, queue_message, &recipient)? else { return Ok(0) };
        let queued = match queued_mdn(shared, &receipt, Disposition::Failed, Some(&reason), now) {
            Ok(queued) => queued,
            Err(e) => {
                tracing::error!("worker: cannot build the failed MDN for {} to {recipient}: {e}", receipt.message_id);
                return Ok(0);
            }
        };
        Ok(usize::from(receipts::concluded(tx, &receipt, Disposition::Failed, &queued, now)?))
    });
}
