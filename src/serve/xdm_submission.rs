//! A message an EHR submits over SMTP with `X-Hisp-XDM: package` has its files sent as one IHE
//! XDM package: before sealing, its attachments (with the metadata a C-CDA's header gives, and
//! the patient of `X-Referral-Patient` for other files) become `xdm.zip` beside its text. The
//! package's identifiers derive from the message, so a retried delivery sends the same message.

use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};

use crate::failure::{Code, Failure};
use crate::smime::mime::{self, Headers};
use crate::xdm::compose::{self, File, Parties};

/// The header an EHR asks with; it is removed from what is sent.
pub(crate) const HEADER: &str = "X-Hisp-XDM";

/// Fields of the original's top level that describe its body, rewritten with the new one.
const BODY_FIELDS: [&str; 6] =
    ["content-type", "content-transfer-encoding", "mime-version", "content-disposition", "content-id", "x-hisp-xdm"];

/// `message` (submitted at `submitted_at`) as it is to be sealed: packaged when it asks, else as
/// it is.
pub(crate) fn prepare(
    message: Vec<u8>,
    sender: &str,
    recipients: &[String],
    hostname: &str,
    submitted_at: i64,
) -> Result<Vec<u8>, Failure> {
    let end = mime::body_offset(&message).unwrap_or(message.len());
    let headers = Headers::parse(&message[..end]);
    let Some(asked) = headers.get(HEADER) else { return Ok(message) };
    match asked.trim().to_ascii_lowercase().as_str() {
        "package" | "yes" | "true" | "1" => {}
        "no" | "false" | "0" => return Ok(without_field(&message[..end], &message[end..])),
        other => {
            let why = format!("{HEADER}: {other:?} is not \"package\" (or \"no\")");
            return Err(Failure::permanent(Code::MEDIA, why));
        }
    }
    let attachments =
        mime::attachments(&message).map_err(|e| Failure::permanent(Code::MEDIA, format!("{HEADER}: {e}")))?;
    if attachments.is_empty() {
        let why = format!("{HEADER}: the message has no attachment to put in an XDM package");
        return Err(Failure::permanent(Code::MEDIA, why));
    }
    let files: Vec<File> = attachments
        .iter()
        .map(|a| File { filename: &a.filename, content_type: &a.content_type, content: &a.content })
        .collect();
    let patient = headers.get("x-referral-patient").map(str::trim).filter(|p| !p.is_empty());
    let source_oid = compose::oid_for(hostname);
    let parties = Parties {
        sender,
        recipients,
        source_oid: &source_oid,
        patient_id: patient,
        now: submitted_at,
        seed: Some(&message),
    };
    let (zip, _, _) = compose::package(&files, &parties).map_err(|e| Failure::permanent(Code::MEDIA, e))?;
    let text = mime::first_text(&message).unwrap_or_default();
    // A boundary of its own, from the message: packed again, the same bytes.
    let boundary = format!("xdm-{}", &crate::pki::sha256_hex(&message)[..24]);
    let body = MimePart::new(
        ContentType::new("multipart/mixed").attribute("boundary", boundary),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", BodyPart::Text(text.into())),
            MimePart::new("application/zip", BodyPart::Binary(zip.into())).attachment(crate::xdm::PACKAGE_NAME),
        ]),
    );
    let mut out = kept_fields(&message[..end]);
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    body.write_part(&mut out);
    Ok(out)
}

/// The header block without the fields that describe the body (folded lines kept as they were).
fn kept_fields(block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len());
    let mut keep = true;
    for line in block.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
            keep = !BODY_FIELDS.contains(&name.as_str());
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The message without the `X-Hisp-XDM` field (its body as it was).
fn without_field(block: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len() + body.len());
    let mut keep = true;
    for line in block.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = line.split(|&b| b == b':').next().unwrap_or(b"");
            keep = !String::from_utf8_lossy(name).trim().eq_ignore_ascii_case(HEADER);
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06 12:00:00 UTC.
    const AT: i64 = 1_796_558_400;

    const MESSAGE: &str = "From: dr.smith@a.test\r\nTo: dr.jones@b.test\r\nSubject: Referral\r\n\
        Date: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <m1@a.test>\r\nX-Hisp-XDM: package\r\n\
        X-Referral-Patient: MRN-5\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nPlease see.\r\n\
        --b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b--\r\n";

    #[test]
    fn a_message_that_asks_goes_with_its_files_in_an_xdm_package() {
        let recipients = ["dr.jones@b.test".to_string()];
        let out = prepare(MESSAGE.as_bytes().to_vec(), "dr.smith@a.test", &recipients, "mx.a.test", AT).unwrap();
        let again = prepare(MESSAGE.as_bytes().to_vec(), "dr.smith@a.test", &recipients, "mx.a.test", AT).unwrap();
        assert_eq!(out, again, "packed again, the same message");
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains(HEADER) && text.contains("Message-ID: <m1@a.test>\r\n"), "{text}");
        assert_eq!(text.matches("MIME-Version").count(), 1, "{text}");
        assert_eq!(mime::first_text(&out).as_deref().map(str::trim), Some("Please see."));
        let files = mime::attachments(&out).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!((files[0].filename.as_str(), files[0].content_type.as_str()), ("xdm.zip", "application/zip"));
        let package = crate::xdm::package::read(&files[0].content, Default::default()).unwrap();
        let entry = &package.subsets[0].documents[0].entry;
        assert_eq!(package.subsets[0].documents[0].content, b"%PDF-1.4");
        assert_eq!(entry.patient_id.as_deref().map(|p| p.split('^').next().unwrap()), Some("MRN-5"));
        assert_eq!(package.subsets[0].submission_set.submission_time, "20261206120000");
    }

    #[test]
    fn a_message_that_does_not_ask_is_left_alone_and_a_bad_value_is_refused() {
        let plain = MESSAGE.replace("X-Hisp-XDM: package\r\n", "");
        assert_eq!(prepare(plain.clone().into_bytes(), "a@a.test", &[], "h", AT).unwrap(), plain.as_bytes());
        let no = MESSAGE.replace("X-Hisp-XDM: package", "X-Hisp-XDM: no");
        assert_eq!(prepare(no.into_bytes(), "a@a.test", &[], "h", AT).unwrap(), plain.as_bytes());
        let bad = MESSAGE.replace("X-Hisp-XDM: package", "X-Hisp-XDM: maybe");
        let refused = prepare(bad.into_bytes(), "a@a.test", &[], "h", AT).unwrap_err();
        assert!(!refused.is_temporary() && refused.text.contains("\"maybe\""), "{refused}");
    }
}
