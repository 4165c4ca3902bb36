//! Message disposition notifications (RFC 8098, as the Implementation Guide for Delivery
//! Notification in Direct profiles them): building the `processed`, `dispatched` and `failed` MDNs
//! a receiving HISP sends, and reading the MDNs and DSNs (RFC 3464) that come back.
//!
//! An MDN we build has `Disposition: automatic-action/MDN-sent-automatically;<type>`,
//! Original-Message-ID, Final-Recipient, Reporting-UA, never a Disposition-Notification-To (a
//! notification is never answered with one), and for a `dispatched` MDN answering a request for
//! final delivery the `X-DIRECT-FINAL-DESTINATION-DELIVERY` extension field.

use super::request::{self, Report, FINAL_DELIVERY};
use crate::address::DirectAddress;
use crate::smime::mime::{self, Entity, Headers};
pub(crate) use crate::store::{Disposition, Event};
use mail_builder::headers::{date::Date, raw::Raw};
use mail_builder::MessageBuilder;

/// One MDN from a hosted recipient back to the original's sender.
pub(crate) struct Mdn<'a> {
    /// The hosted recipient who reports (the MDN's From; its key signs it).
    pub from: &'a DirectAddress,
    /// The original's sender.
    pub to: &'a str,
    pub original_message_id: &'a str,
    pub original_subject: &'a str,
    pub disposition: Disposition,
    /// Carry the final-delivery extension (a `dispatched` MDN answering that request).
    pub final_delivery: bool,
    /// Why delivery failed (a `failed` MDN).
    pub failure: Option<&'a str>,
    /// Our host name, for Reporting-UA and the Message-ID.
    pub reporting_host: &'a str,
}

/// The MDN message and its Message-ID, derived from the original, the recipient and the
/// disposition: the same notice always has the same Message-ID.
pub(crate) fn build(m: &Mdn, now: i64) -> (Vec<u8>, String) {
    let disposition = m.disposition.as_str();
    let seed = format!("{}\0{}\0{disposition}", m.original_message_id, m.from);
    let hash = crate::pki::sha256_hex(seed.as_bytes());
    let message_id = format!("<mdn-{}@{}>", &hash[..32], m.reporting_host);
    let boundary = format!("mdn-{}", &hash[32..48]);
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let subject = clean(m.original_subject);
    let title = match m.disposition {
        Disposition::Processed => "Processed",
        Disposition::Dispatched => "Dispatched",
        Disposition::Failed => "Failed",
    };
    let explanation = match m.disposition {
        Disposition::Processed => format!("Your message was received and its sender verified by {}'s HISP.", m.from),
        Disposition::Dispatched => format!("Your message was delivered to the mailbox of {}.", m.from),
        Disposition::Failed => format!(
            "Your message to {} was received but could not be delivered: {}",
            m.from,
            clean(m.failure.unwrap_or("delivery failed"))
        ),
    };
    let mut fields = format!("Reporting-UA: {}; hisp {}\r\n", m.reporting_host, env!("CARGO_PKG_VERSION"));
    fields.push_str(&format!("Final-Recipient: rfc822;{}\r\n", m.from));
    fields.push_str(&format!("Original-Message-ID: {}\r\n", clean(m.original_message_id)));
    fields.push_str(&format!("Disposition: automatic-action/MDN-sent-automatically;{disposition}\r\n"));
    if let (Disposition::Failed, Some(why)) = (m.disposition, m.failure) {
        fields.push_str(&format!("Failure: {}\r\n", clean(why)));
    }
    if m.final_delivery && m.disposition == Disposition::Dispatched {
        fields.push_str(&format!("{FINAL_DELIVERY}:\r\n"));
    }
    let report = super::report_part("disposition-notification", &boundary, explanation, fields, None);
    let mut message = MessageBuilder::new()
        .from(m.from.to_string())
        .to(clean(m.to))
        .subject(format!("{title}: {subject}"))
        .date(Date::new(now))
        .message_id(mime::bare_message_id(&message_id))
        .header("Auto-Submitted", Raw::new("auto-replied"));
    if !m.original_message_id.is_empty() {
        let original = mime::bare_message_id(&clean(m.original_message_id));
        message = message.in_reply_to(original.clone()).references(original);
    }
    let mut out = Vec::new();
    message.body(report).serialize(&mut out);
    (out, message_id)
}

/// A notification that arrived: which message it is about, and what it says per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub report: Report,
    pub original_message_id: Option<String>,
    /// (recipient, lowercased; what happened to it)
    pub recipients: Vec<(String, Event)>,
    /// The MDN carries `X-DIRECT-FINAL-DESTINATION-DELIVERY`.
    pub final_delivery: bool,
}

/// Reads a message as an MDN or a DSN; `None` when it is neither, or is a report whose fields
/// cannot be read.
pub(crate) fn parse(message: &[u8]) -> Option<Notice> {
    let entity = Entity::parse(message);
    let headers = &entity.headers;
    let report = request::report(headers)?;
    let boundary = entity.content_type().param("boundary")?.to_string();
    let parts = mime::multipart_parts(entity.body, &boundary).ok()?;
    let wanted = match report {
        Report::Disposition => "message/disposition-notification",
        Report::DeliveryStatus => "message/delivery-status",
    };
    let mut fields_part = None;
    let mut returned_headers = None;
    for part in &parts {
        let p = Entity::parse(part);
        let ct = p.content_type();
        if ct.is(wanted) && fields_part.is_none() {
            fields_part = Some(p.decoded_body().ok()?.into_owned());
        } else if ct.is("text/rfc822-headers") || ct.is("message/rfc822") {
            // Only the header block (a returned message's body is not header fields).
            returned_headers = Some(Headers::parse(&p.body[..mime::body_offset(p.body).unwrap_or(p.body.len())]));
        }
    }
    let fields = fields_part?;
    let blocks = field_blocks(&fields);
    let from_returned = returned_headers.as_ref().and_then(|h| h.get("message-id")).map(str::to_string);
    match report {
        Report::Disposition => {
            let block = blocks.first()?;
            let recipient = block.get("final-recipient").map(address_of)?;
            let disposition = block.get("disposition")?;
            let kind = disposition.rsplit(';').next().unwrap_or("").trim();
            let kind = kind.split('/').next().unwrap_or("").trim().to_ascii_lowercase();
            let event = match kind.as_str() {
                "processed" => Event::Processed,
                "dispatched" => Event::Dispatched,
                // `error` is what some implementations send for `failed`.
                "failed" | "error" => {
                    Event::Failed(block.get("failure").or_else(|| block.get("error")).unwrap_or("failed").to_string())
                }
                other => Event::Other(other.to_string()),
            };
            Some(Notice {
                report,
                original_message_id: block.get("original-message-id").map(str::to_string).or(from_returned),
                recipients: vec![(recipient, event)],
                final_delivery: block.get(FINAL_DELIVERY).is_some(),
            })
        }
        Report::DeliveryStatus => {
            let recipients = blocks
                .iter()
                .skip(1)
                .filter_map(|b| {
                    let recipient = b.get("final-recipient").map(address_of)?;
                    let action = b.get("action").unwrap_or("").trim().to_ascii_lowercase();
                    let event = if action == "failed" {
                        let status = b.get("status").unwrap_or("5.0.0");
                        let diagnostic = b.get("diagnostic-code").unwrap_or("");
                        Event::Failed(format!("{status} {diagnostic}").trim().to_string())
                    } else {
                        Event::Other(action)
                    };
                    Some((recipient, event))
                })
                .collect();
            Some(Notice {
                report,
                original_message_id: headers.get("x-original-message-id").map(str::to_string).or(from_returned),
                recipients,
                final_delivery: false,
            })
        }
    }
}

/// The blank-line-separated field groups of a report part.
fn field_blocks(text: &[u8]) -> Vec<Headers> {
    let text = String::from_utf8_lossy(text).replace("\r\n", "\n");
    text.split("\n\n").filter(|b| !b.trim().is_empty()).map(|b| Headers::parse(b.as_bytes())).collect()
}

/// `rfc822; someone@example.org` -> `someone@example.org`.
fn address_of(value: &str) -> String {
    let address = value.split_once(';').map(|(_, a)| a).unwrap_or(value);
    address.trim().trim_start_matches('<').trim_end_matches('>').trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mdn(disposition: Disposition, final_delivery: bool, failure: Option<&str>) -> Vec<u8> {
        let from = DirectAddress::parse("dr.jones@b.test").unwrap();
        build(
            &Mdn {
                from: &from,
                to: "dr.smith@a.test",
                original_message_id: "<m1@a.test>",
                original_subject: "Referral",
                disposition,
                final_delivery,
                failure,
                reporting_host: "mx.b.test",
            },
            1_800_000_000,
        )
        .0
    }

    #[test]
    fn a_processed_mdn_has_the_fields_the_guide_requires_and_reads_back() {
        let message = mdn(Disposition::Processed, true, None);
        let text = String::from_utf8(message.clone()).unwrap();
        assert!(text.contains("Disposition: automatic-action/MDN-sent-automatically;processed\r\n"), "{text}");
        assert!(text.contains("Final-Recipient: rfc822;dr.jones@b.test\r\n"));
        assert!(text.contains("Original-Message-ID: <m1@a.test>\r\n"));
        assert!(text.contains("Reporting-UA: mx.b.test; hisp "));
        assert!(!text.to_ascii_lowercase().contains("disposition-notification-to"));
        assert!(!text.contains(FINAL_DELIVERY), "only a dispatched MDN carries the extension");
        let notice = parse(&message).unwrap();
        assert_eq!(notice.report, Report::Disposition);
        assert_eq!(notice.original_message_id.as_deref(), Some("<m1@a.test>"));
        assert_eq!(notice.recipients, vec![("dr.jones@b.test".to_string(), Event::Processed)]);
        assert!(!notice.final_delivery);
    }

    #[test]
    fn a_dispatched_mdn_carries_the_extension_only_when_asked_and_failed_says_why() {
        let read = |m: Vec<u8>| parse(&m);
        let dispatched = read(mdn(Disposition::Dispatched, true, None)).unwrap();
        assert_eq!(dispatched.recipients[0].1, Event::Dispatched);
        assert!(dispatched.final_delivery);
        assert!(!read(mdn(Disposition::Dispatched, false, None)).unwrap().final_delivery);
        let failed = read(mdn(Disposition::Failed, false, Some("mailbox unavailable"))).unwrap();
        assert_eq!(failed.recipients[0].1, Event::Failed("mailbox unavailable".into()));
        // The same notice is always the same message.
        assert_eq!(mdn(Disposition::Processed, false, None), mdn(Disposition::Processed, false, None));
    }

    #[test]
    fn a_dsn_is_read_per_recipient() {
        let sender = DirectAddress::parse("dr.smith@a.test").unwrap();
        let dsn = super::super::dsn::build(
            &super::super::dsn::Failure {
                sender: &sender,
                recipient: "Nobody@B.test",
                status: "5.1.1",
                reason: "no such user",
                remote_reply: None,
                original: b"From: dr.smith@a.test\r\nMessage-ID: <m2@a.test>\r\n\r\n",
                original_message_id: "<m2@a.test>",
                arrived_at: 1_800_000_000,
                reporting_mta: "mx.a.test",
            },
            1_800_000_000,
        );
        let notice = parse(&dsn).unwrap();
        assert_eq!(notice.report, Report::DeliveryStatus);
        assert_eq!(notice.original_message_id.as_deref(), Some("<m2@a.test>"));
        assert_eq!(notice.recipients.len(), 1);
        assert_eq!(notice.recipients[0].0, "nobody@b.test");
        assert!(matches!(&notice.recipients[0].1, Event::Failed(s) if s.starts_with("5.1.1")));
        assert!(parse(b"Subject: hello\r\n\r\nnot a report\r\n").is_none());
    }
}
