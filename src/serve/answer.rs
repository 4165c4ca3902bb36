//! MDNs back to the sender of a message opened here: `processed` once it is opened, trusted and
//! written into the mailbox (never for a message that was not written), `dispatched` with it when
//! the sender asked for final delivery, `failed` when a message opened and trusted cannot be
//! delivered after all. Each is queued as an outbound message from the hosted
//! recipient, so it is signed with the recipient's key, encrypted, and delivered (and retried)
//! like any Direct message; the receipts table makes each one happen once.

use super::{Shared, Work};
use crate::address::DirectAddress;
use crate::failure::Failure;
use crate::notify::mdn::{self, Disposition, Mdn};
use crate::store::queue::receipts::Receipt;
use crate::store::queue::{FinishWrite, NewMessage};
use crate::store::Flow;

/// Records that the message of `receipt` was opened and trusted, with the job's outcome: if it is
/// never delivered, its failure is answered with a failed MDN.
pub(crate) fn opened(work: &Work, receipt: &Receipt) {
    work.at_finish.add(FinishWrite::Opened(receipt.clone()));
}

/// Queues the MDN saying `disposition` for `receipt`, unless it was queued before: built and
/// sealed now, recorded and queued in the transaction that records the job's outcome.
pub(crate) fn send(
    work: &Work,
    receipt: &Receipt,
    disposition: Disposition,
    failure: Option<&str>,
) -> Result<(), String> {
    let mdn = queued_mdn(work.shared, receipt, disposition, failure, work.now)?;
    work.at_finish.add(FinishWrite::Answered { receipt: receipt.clone(), disposition, mdn });
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
/// trusted (a receipt was recorded, before or by this processing), a failed MDN goes out with the
/// job's outcome. Err: the receipt could not be read (the recipient is to be processed again).
pub(crate) fn failed(work: &Work, queue_message: i64, recipient: &str, failure: &Failure) -> Result<(), Failure> {
    let recipient = recipient.to_ascii_lowercase();
    let receipt = match work.at_finish.opened(queue_message, &recipient) {
        Some(receipt) => receipt,
        None => match work.queue.receipt_of(queue_message, &recipient) {
            Ok(Some(receipt)) => receipt,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.failure().with_detail(format!("cannot read its receipt: {e}"))),
        },
    };
    if let Err(e) = send(work, &receipt, Disposition::Failed, Some(&failure.public())) {
        tracing::error!("worker: cannot build the failed MDN for {} to {recipient}: {e}", receipt.message_id);
    }
    Ok(())
}
