//! MDNs back to the sender of a message opened here: `processed` once it is opened and trusted,
//! `dispatched` once it is in the mailbox (when the sender asked for final delivery), `failed`
//! when it cannot be delivered after all. Each is queued as an outbound message from the hosted
//! recipient, so it is signed with the recipient's key, encrypted, and delivered (and retried)
//! like any Direct message; the receipts table makes each one happen once.

use super::{Shared, Work};
use crate::address::DirectAddress;
use crate::notify::mdn::{self, Disposition, Mdn};
use crate::notify::receipts::{self, Receipt};
use crate::smtp::queue::{Flow, NewMessage};

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

/// A message opened here will not be delivered after all (`reason`): if its processed MDN went
/// out (or goes out with this outcome), a failed MDN follows, in the same transaction.
pub fn failed(work: &Work, message_id: &str, recipient: &str, reason: &str) {
    let (shared, now) = (work.shared, work.now);
    let (message_id, recipient, reason) = (message_id.to_string(), recipient.to_string(), reason.to_string());
    work.at_finish.add(move |tx| {
        let Some(receipt) = receipts::get(tx, &message_id, &recipient)? else { return Ok(0) };
        let queued = match queued_mdn(shared, &receipt, Disposition::Failed, Some(&reason), now) {
            Ok(queued) => queued,
            Err(e) => {
                eprintln!("worker: cannot build the failed MDN for {message_id} to {recipient}: {e}");
                return Ok(0);
            }
        };
        Ok(usize::from(receipts::concluded(tx, &receipt, Disposition::Failed, &queued, now)?))
    });
}
