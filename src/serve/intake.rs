//! From an accepted SMTP transaction to a committed queue entry. Sessions hand their messages to
//! one committer thread, which writes whatever has arrived in one transaction (one fsync for the
//! batch: group commit) and only then lets each session answer 250.

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{rfc5322, Clock};
use crate::kek::Kek;
use crate::node::Wakeup;
use crate::notify::request::{self, FinalDelivery};
use crate::smime::mime;
use crate::smtp::server::Committer;
use crate::smtp::session::Envelope;
use crate::store::queue::tracking::Tracked;
use crate::store::queue::{NewMessage, Queue};
use crate::store::Flow;

/// The most messages written in one transaction.
const MAX_BATCH: usize = 256;

struct Pending {
    message: NewMessage,
    reply: SyncSender<Result<i64, String>>,
}

pub(crate) struct Intake {
    sender: Sender<Pending>,
    hostname: String,
    kek: Arc<Kek>,
    clock: Arc<dyn Clock>,
}

impl Intake {
    /// Starts the committer thread on `queue`; it wakes the workers after each batch.
    pub(crate) fn start(
        queue: Box<dyn Queue>,
        hostname: String,
        kek: Arc<Kek>,
        clock: Arc<dyn Clock>,
        wakeup: Arc<Wakeup>,
    ) -> std::io::Result<Intake> {
        let (sender, receiver) = mpsc::channel();
        let committer_clock = clock.clone();
        std::thread::Builder::new()
            .name("queue-commit".into())
            .spawn(move || commit_loop(queue, receiver, committer_clock, wakeup))?;
        Ok(Intake { sender, hostname, kek, clock })
    }
}

fn commit_loop(queue: Box<dyn Queue>, receiver: Receiver<Pending>, clock: Arc<dyn Clock>, wakeup: Arc<Wakeup>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (messages, replies): (Vec<NewMessage>, Vec<_>) = batch.into_iter().map(|p| (p.message, p.reply)).unzip();
        match queue.enqueue(&messages, clock.unix_now()) {
            Ok(ids) => {
                for (reply, id) in replies.into_iter().zip(ids) {
                    let _ = reply.send(Ok(id));
                }
                wakeup.wake(messages.iter().map(|m| m.recipients.len()).sum());
            }
            Err(e) => {
                tracing::error!("queue: cannot commit {} message(s): {e}", messages.len());
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

impl Committer for Intake {
    fn commit(&self, envelope: Envelope, peer: SocketAddr) -> Result<String, String> {
        let now = self.clock.unix_now();
        let flow = if envelope.authenticated.is_some() { Flow::Outbound } else { Flow::Inbound };
        let Traced { fields, message_id, tracked } = traced(&envelope, peer, &self.hostname, now);
        // Sealed as it is read from the session's spool: the message is never whole in clear here.
        let size = fields.len() + envelope.data.len();
        let mut sealing = self.kek.message_sealing(size).map_err(|e| e.to_string())?;
        sealing.update(&fields).map_err(|e| e.to_string())?;
        envelope
            .data
            .drain(|piece| sealing.update(piece).map_err(std::io::Error::other))
            .map_err(|e| format!("reading the spooled message: {e}"))?;
        let sealed_data = sealing.finish().map_err(|e| e.to_string())?;
        let message = NewMessage {
            flow,
            mail_from: envelope.mail_from.map(|a| a.to_string()).unwrap_or_default(),
            authenticated_as: envelope.authenticated.map(|a| a.to_string()),
            message_id,
            recipients: envelope.recipients.iter().map(|r| r.to_string()).collect(),
            size,
            sealed_data,
            tracked,
        };
        let (reply, answer) = mpsc::sync_channel(1);
        self.sender.send(Pending { message, reply }).map_err(|_| "the queue committer stopped".to_string())?;
        let id = answer
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "no answer from the queue committer".to_string())??;
        Ok(id.to_string())
    }
}

struct Traced {
    /// The header fields we add above the message's own.
    fields: Vec<u8>,
    /// "" when it has none.
    message_id: String,
    /// For an EHR's message (not itself a notification): what its notifications are tracked by.
    tracked: Option<Tracked>,
}

/// The fields to put on top of the message: our Received field (RFC 5321 §4.4); for a submission a Message-ID and
/// Date when the EHR left them out (RFC 6409 §8), and a request for MDNs to the sender
/// (Disposition-Notification-To) unless it is a notification itself or already asks.
fn traced(envelope: &Envelope, peer: SocketAddr, hostname: &str, now: i64) -> Traced {
    let protocol = match (envelope.tls, envelope.authenticated.is_some()) {
        (true, true) => "ESMTPSA",
        (true, false) => "ESMTPS",
        (false, _) => "ESMTP",
    };
    let mut out = format!(
        "Received: from {} ([{}])\r\n\tby {hostname} (hisp) with {protocol};\r\n\t{}\r\n",
        envelope.helo.replace(['\r', '\n'], ""),
        peer.ip(),
        rfc5322(now)
    )
    .into_bytes();
    let headers = mime::Entity::parse(envelope.data.head()).headers;
    let existing = headers.get("message-id");
    // As the queue, the log and the CLI show it: a peer's control characters masked.
    let mut message_id = crate::printable::printable(existing.unwrap_or("").trim(), 998);
    let mut tracked = None;
    if let (Some(sender), None) = (&envelope.authenticated, request::report(&headers)) {
        if headers.get("disposition-notification-to").is_none() {
            out.extend_from_slice(format!("Disposition-Notification-To: <{sender}>\r\n").as_bytes());
        }
        tracked = Some(Tracked {
            subject: headers.text("subject").unwrap_or_default(),
            final_delivery: request::final_delivery(&headers) == FinalDelivery::Requested,
        });
    }
    if envelope.authenticated.is_some() {
        if existing.is_none() {
            message_id = crate::node::new_message_id(hostname);
            out.extend_from_slice(format!("Message-ID: {message_id}\r\n").as_bytes());
        }
        if headers.get("date").is_none() {
            out.extend_from_slice(format!("Date: {}\r\n", rfc5322(now)).as_bytes());
        }
    }
    Traced { fields: out, message_id, tracked }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::spool::Spool;

    #[test]
    fn a_peers_control_characters_never_reach_the_queued_message_id() {
        let envelope = Envelope {
            mail_from: None,
            recipients: vec![],
            data: Spool::in_memory(b"Message-ID: <a\x1b[2Jb@evil.test>\r\nSubject: x\r\n\r\nbody\r\n".to_vec()),
            authenticated: None,
            helo: "peer".into(),
            tls: true,
        };
        let traced = traced(&envelope, "192.0.2.1:25".parse().unwrap(), "mx.test", 0);
        assert_eq!(traced.message_id, "<a?[2Jb@evil.test>");
    }
}
