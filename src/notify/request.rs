//! What a message asks of its notifications: whether it is itself a notification (never answered
//! with one), and whether its sender asked for "timely and reliable" delivery with the
//! `X-DIRECT-FINAL-DESTINATION-DELIVERY` disposition option (RFC 8098 §2.2 syntax:
//! `Disposition-Notification-Options: name=importance,value[,value]*[; ...]`).

use crate::smime::mime::{ContentType, Headers};

pub(crate) const FINAL_DELIVERY: &str = "X-DIRECT-FINAL-DESTINATION-DELIVERY";
/// The option as a sender requests it (Implementation Guide for Delivery Notification §3.1).
pub(crate) const FINAL_DELIVERY_REQUEST: &str = "X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// `multipart/report; report-type=disposition-notification` (an MDN).
    Disposition,
    /// `multipart/report; report-type=delivery-status` (a DSN).
    DeliveryStatus,
}

/// The kind of report a message with these headers is, if it is one.
pub(crate) fn report(headers: &Headers) -> Option<Report> {
    let ct = ContentType::parse(headers.get("content-type").unwrap_or(""));
    if !ct.is("multipart/report") {
        return None;
    }
    match ct.param("report-type").map(|t| t.to_ascii_lowercase()) {
        Some(t) if t == "disposition-notification" => Some(Report::Disposition),
        Some(t) if t == "delivery-status" => Some(Report::DeliveryStatus),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FinalDelivery {
    NotRequested,
    Requested,
    /// The options header names the option but does not say it the way RFC 8098 does; the
    /// message is treated as not asking for it (and the reason recorded).
    Malformed(String),
}

/// Whether the sender asked for a `dispatched` MDN once the message is in the mailbox.
pub(crate) fn final_delivery(headers: &Headers) -> FinalDelivery {
    let mut result = FinalDelivery::NotRequested;
    for value in headers.all("disposition-notification-options") {
        for parameter in value.split(';') {
            let parameter = parameter.trim();
            let (name, rest) = match parameter.split_once('=') {
                Some((n, r)) => (n.trim(), Some(r.trim())),
                None => (parameter, None),
            };
            if !name.eq_ignore_ascii_case(FINAL_DELIVERY) {
                continue;
            }
            let Some(rest) = rest else {
                return FinalDelivery::Malformed(format!("{parameter:?}: no importance and value"));
            };
            let mut fields = rest.split(',').map(str::trim);
            let importance = fields.next().unwrap_or("").to_ascii_lowercase();
            let values: Vec<String> = fields.map(|v| v.to_ascii_lowercase()).collect();
            if !matches!(importance.as_str(), "required" | "optional") {
                return FinalDelivery::Malformed(format!("{parameter:?}: importance must be required or optional"));
            }
            match values.as_slice() {
                [v] if v == "true" => result = FinalDelivery::Requested,
                [v] if v == "false" => {}
                _ => return FinalDelivery::Malformed(format!("{parameter:?}: the value must be true or false")),
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(text: &str) -> Headers {
        Headers::parse(text.as_bytes())
    }

    #[test]
    fn the_final_delivery_option_is_read_as_rfc_8098_writes_it() {
        let asked = headers("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n");
        assert_eq!(final_delivery(&asked), FinalDelivery::Requested);
        let spaced = headers("Disposition-Notification-Options: foo=optional,1 ; x-direct-final-destination-delivery = required , TRUE\r\n");
        assert_eq!(final_delivery(&spaced), FinalDelivery::Requested);
        assert_eq!(final_delivery(&headers("Subject: x\r\n")), FinalDelivery::NotRequested);
        let declined =
            headers("Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,false\r\n");
        assert_eq!(final_delivery(&declined), FinalDelivery::NotRequested);
    }

    #[test]
    fn a_malformed_option_is_not_a_request() {
        for bad in [
            "X-DIRECT-FINAL-DESTINATION-DELIVERY",
            "X-DIRECT-FINAL-DESTINATION-DELIVERY=true",
            "X-DIRECT-FINAL-DESTINATION-DELIVERY=maybe,true",
            "X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,yes,please",
        ] {
            let h = headers(&format!("Disposition-Notification-Options: {bad}\r\n"));
            assert!(matches!(final_delivery(&h), FinalDelivery::Malformed(_)), "{bad}");
        }
    }

    #[test]
    fn reports_are_recognised_by_their_report_type() {
        let mdn = headers("Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n");
        assert_eq!(report(&mdn), Some(Report::Disposition));
        let dsn = headers("Content-Type: multipart/report; report-type=\"delivery-status\"; boundary=b\r\n");
        assert_eq!(report(&dsn), Some(Report::DeliveryStatus));
        assert_eq!(report(&headers("Content-Type: multipart/mixed; boundary=b\r\n")), None);
        assert_eq!(report(&headers("Content-Type: multipart/report; report-type=other; boundary=b\r\n")), None);
    }
}
