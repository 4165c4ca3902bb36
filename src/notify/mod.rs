//! Delivery notifications: what a message asks for (`request`), the MDNs a receiving HISP sends
//! and reads (`mdn`), and the DSNs that tell a local sender a recipient failed (`dsn`). What was
//! sent and answered is kept by `store::queue::tracking` and `store::queue::receipts`. The node's
//! own notices to people (invitations, confirmation codes) leave through the `smarthost`.

pub(crate) mod dsn;
pub(crate) mod mdn;
pub(crate) mod request;
pub(crate) mod smarthost;

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};

/// A `multipart/report` (RFC 6522) of `report_type` with the boundary given (a notice built twice
/// is the same message): the human-readable `explanation`, the machine-readable `fields` as 7-bit
/// text, unencoded (what readers of MDNs and DSNs expect), then `returned` (the original's header
/// block, for a DSN).
fn report_part<'x>(
    report_type: &'x str,
    boundary: &'x str,
    explanation: String,
    fields: String,
    returned: Option<MimePart<'x>>,
) -> MimePart<'x> {
    let mut parts = vec![
        MimePart::new("text/plain", BodyPart::Text(explanation.into())),
        MimePart::new(ContentType::new(format!("message/{report_type}")), BodyPart::Binary(fields.into_bytes().into()))
            .transfer_encoding("7bit"),
    ];
    parts.extend(returned);
    // The report type as a token, unquoted, as RFC 6522 writes it (and as peers that match it
    // literally expect); mail-builder would quote every parameter.
    MimePart::raw(BodyPart::Multipart(parts)).header(
        "Content-Type",
        Raw::new(format!("multipart/report; report-type={report_type}; boundary=\"{boundary}\"")),
    )
}
