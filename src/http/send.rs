//! POST /v1/messages: an EHR sends a message (a referral, with its C-CDA and encounter note)
//! through the API. It is composed as MIME, committed to the queue exactly as an SMTP submission
//! would be (then sealed and delivered by the workers), and a copy of each attachment is kept
//! for the practice and the patient.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::call::{Call, Caller};
use super::error::{parse_body, ApiError, Body};
use crate::address::DirectAddress;
use crate::network::messages::FileRequest as FileIn;
use crate::onboarding::referral::{self, check_token, Metadata};
use crate::smime::mime::{bare_message_id, Attachment};
use crate::smtp::session::Envelope;
use crate::smtp::spool::Spool;
use crate::store::api::{Exchange, NewPackage, NewReferral};
use crate::store::PracticeRecord;
use crate::xdm::{Described, PACKAGE_NAME};
use mail_builder::headers::{date::Date, raw::Raw};
use mail_builder::MessageBuilder;

/// A message to Direct addresses, as an EHR (or a member writing as the practice) sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Outgoing {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<FileIn>,
    pub referral: Option<ReferralIn>,
    /// Send the attachments (and the encounter note) as one IHE XDM package.
    #[serde(default)]
    pub xdm: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReferralIn {
    patient_id: String,
    /// "transferring" or "receiving".
    direction: String,
    #[serde(default)]
    ccda_sections: Vec<String>,
    encounter_note: Option<FileIn>,
    /// The Message-ID of the referral this one answers.
    in_reply_to: Option<String>,
}

/// A POST /v1/messages body as the API reads it (for the fuzz target).
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_outgoing(body: &[u8]) -> bool {
    parse_body::<Outgoing>(body).is_ok()
}

/// What sending needs of the node: the caller's store connection, the node's state, the queue's
/// committer, who asks (for the Received field) and the time.
pub(crate) struct Sending<'a> {
    pub store: &'a dyn crate::store::NodeStore,
    pub shared: &'a crate::node::Shared,
    pub committer: &'a dyn crate::smtp::server::Committer,
    pub peer: std::net::SocketAddr,
    /// What the Received field says the message came by ("rest-api", "portal").
    pub via: &'static str,
    pub now: i64,
}

impl<'a> Sending<'a> {
    /// An API call's.
    pub(crate) fn of(call: &'a Call) -> Sending<'a> {
        Sending {
            store: &*call.store,
            shared: &call.api.shared,
            committer: &*call.api.committer,
            peer: call.peer.0,
            via: "rest-api",
            now: call.now,
        }
    }
}

/// A request that passed every check.
struct Checked {
    from: DirectAddress,
    to: Vec<DirectAddress>,
    subject: String,
    body: String,
    files: Vec<Attachment>,
    referral: Option<(Metadata, Option<String>)>,
    /// The files as one XDM package, when asked for: sent in their place.
    package: Option<SentPackage>,
}

/// An XDM package of the message's files and the metadata it gives each.
struct SentPackage {
    zip: Attachment,
    set: crate::xdm::SubmissionSet,
    entries: Vec<crate::xdm::DocumentEntry>,
}

/// Packs `files` as XDM, the referral's patient identifier for those that are not C-CDA.
fn pack(
    call: &Sending,
    from: &DirectAddress,
    to: &[DirectAddress],
    files: &[Attachment],
    patient: Option<&str>,
) -> Result<SentPackage, ApiError> {
    if files.is_empty() {
        return Err(ApiError::field("xdm", "an XDM package needs at least one attachment"));
    }
    use crate::xdm::compose;
    let recipients: Vec<String> = to.iter().map(ToString::to_string).collect();
    let source_oid = compose::oid_for(&call.shared.config.server.hostname);
    let sender = from.to_string();
    let parties = compose::Parties {
        sender: &sender,
        recipients: &recipients,
        source_oid: &source_oid,
        patient_id: patient,
        now: call.now,
        seed: None,
    };
    let documents: Vec<compose::File> = files
        .iter()
        .map(|f| compose::File { filename: &f.filename, content_type: &f.content_type, content: &f.content })
        .collect();
    let (zip, set, entries) = compose::package(&documents, &parties).map_err(ApiError::internal)?;
    let zip = Attachment { filename: PACKAGE_NAME.into(), content_type: "application/zip".into(), content: zip };
    Ok(SentPackage { zip, set, entries })
}

pub(crate) async fn send(caller: Caller, Body(body): Body) -> Response {
    caller
        .run_once(&body.clone(), move |call| {
            let request: Outgoing = parse_body(&body)?;
            let practice = call.practice()?;
            Ok((StatusCode::ACCEPTED, queue(&Sending::of(call), &practice, request)?))
        })
        .await
}

/// Checks a message to Direct addresses, commits it to the queue (sealed and delivered by the
/// workers, tracked by its MDNs) and keeps the practice's copies; what was queued.
pub(crate) fn queue(
    call: &Sending,
    practice: &PracticeRecord,
    request: Outgoing,
) -> Result<serde_json::Value, ApiError> {
    let checked = check(call, practice, request)?;
    finish(call, practice, checked)
}

/// As `queue`, the request's files replaced by `described`'s documents, sent as an XDM package
/// whose metadata is theirs.
pub(crate) fn queue_described(
    call: &Sending,
    practice: &PracticeRecord,
    mut request: Outgoing,
    described: Described,
) -> Result<serde_json::Value, ApiError> {
    request.xdm = false;
    request.attachments = Vec::new();
    let mut checked = check(call, practice, request)?;
    let mut documents = Vec::new();
    for (n, (entry, content)) in described.documents.into_iter().enumerate() {
        let filename = format!("document{}{}", n + 1, extension(&entry.mime_type));
        checked.files.push(Attachment { filename, content_type: entry.mime_type.clone(), content });
        documents.push(entry);
    }
    let to_pack = documents
        .into_iter()
        .zip(&checked.files)
        .map(|(entry, file)| crate::xdm::package::ToPack { entry, content: &file.content })
        .collect();
    let (zip, entries) =
        crate::xdm::package::write(&described.set, to_pack, &checked.from.to_string()).map_err(ApiError::internal)?;
    let zip = Attachment { filename: PACKAGE_NAME.into(), content_type: "application/zip".into(), content: zip };
    checked.package = Some(SentPackage { zip, set: described.set, entries });
    finish(call, practice, checked)
}

/// A file name's extension for a type, for the practice's copy of a described document.
fn extension(mime_type: &str) -> &'static str {
    match mime_type.split(';').next().unwrap_or("").trim() {
        "text/xml" | "application/xml" => ".xml",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        _ => "",
    }
}

fn finish(call: &Sending, practice: &PracticeRecord, checked: Checked) -> Result<serde_json::Value, ApiError> {
    let (message_id, queue_id) = commit(call, &checked)?;
    let referral_id = record_sent(call, practice, &checked, &message_id)?;
    let documents: Vec<i64> =
        call.store.documents(practice.id, None, Some(&message_id))?.iter().map(|d| d.id).collect();
    Ok(json!({
        // As every other answer names messages: without angle brackets.
        "message_id": super::messages::bare(&message_id),
        "queue_id": queue_id,
        "status": "queued",
        "recipients": checked.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "referral_id": referral_id,
        "documents": documents,
    }))
}

fn check(call: &Sending, practice: &PracticeRecord, r: Outgoing) -> Result<Checked, ApiError> {
    let from = DirectAddress::parse(&r.from).map_err(|e| ApiError::field("from", e.to_string()))?;
    if !practice.owns(call.store, &from)? {
        let mut e = ApiError::forbidden("not-your-address", format!("{from} is not an address of {}", practice.name));
        e.field = Some("from".into());
        return Err(e);
    }
    // Until its identity is proofed, a practice cannot send: the same rule as SMTP submission.
    if let Err(refused) = crate::store::require_verified(call.store, from.domain()) {
        return Err(match refused {
            Ok(why) => ApiError::forbidden("not-verified", why),
            Err(e) => e.into(),
        });
    }
    let max = call.shared.config.server.max_recipients;
    if r.to.is_empty() || r.to.len() > max {
        return Err(ApiError::field("to", format!("1 to {max} recipients")));
    }
    let mut to: Vec<DirectAddress> = Vec::with_capacity(r.to.len());
    for (i, a) in r.to.iter().enumerate() {
        let address = DirectAddress::parse(a).map_err(|e| ApiError::field(format!("to[{i}]"), e.to_string()))?;
        // The same recipient twice gets the message once.
        if !to.contains(&address) {
            to.push(address);
        }
    }
    let subject = r.subject.trim().to_string();
    if subject.is_empty() || subject.chars().count() > 200 || subject.chars().any(char::is_control) {
        return Err(ApiError::field("subject", "1 to 200 characters, no control characters"));
    }
    let mut files = Vec::new();
    for (i, f) in r.attachments.iter().enumerate() {
        files.push(file(f, &format!("attachments[{i}]"))?);
    }
    let referral = match r.referral {
        None => None,
        Some(referral) => {
            if !referral::DIRECTIONS.contains(&referral.direction.as_str()) {
                return Err(ApiError::field(
                    "referral.direction",
                    "transferring (referring out) or receiving (reporting back)",
                ));
            }
            check_token(&referral.patient_id, 64).map_err(|e| ApiError::field("referral.patient_id", e))?;
            let mut sections: Vec<String> = Vec::new();
            for (i, s) in referral.ccda_sections.iter().enumerate() {
                let s = s.trim();
                check_token(s, 100).map_err(|e| ApiError::field(format!("referral.ccda_sections[{i}]"), e))?;
                if !sections.iter().any(|seen| seen.eq_ignore_ascii_case(s)) {
                    sections.push(s.to_string());
                }
            }
            // Each XML file of a referral is its C-CDA: checked now, not found wanting by the
            // receiving EHR.
            let mut ccda = false;
            for (i, f) in files.iter().enumerate() {
                if crate::ccda_view::is_xml(&f.content_type, &f.filename) {
                    crate::ccda_view::check_ccda(&f.content)
                        .map_err(|e| ApiError::field(format!("attachments[{i}].content_base64"), e.to_string()))?;
                    ccda = true;
                }
            }
            if !ccda {
                return Err(ApiError::field(
                    "attachments",
                    "a referral carries its C-CDA summary of care as an attachment (an XML file)",
                ));
            }
            if let Some(note) = &referral.encounter_note {
                files.push(file(note, "referral.encounter_note")?);
            }
            let in_reply_to = referral.in_reply_to.as_deref().map(message_id_field).transpose()?;
            let metadata = Metadata {
                direction: referral.direction,
                patient_id: referral.patient_id,
                sections,
                encounter_note: referral.encounter_note.is_some(),
            };
            Some((metadata, in_reply_to))
        }
    };
    let patient = referral.as_ref().map(|(m, _)| m.patient_id.as_str());
    let package = if r.xdm { Some(pack(call, &from, &to, &files, patient)?) } else { None };
    Ok(Checked { from, to, subject, body: r.body, files, referral, package })
}

/// An attachment decoded and checked: a plain file name and a `type/subtype`.
fn file(f: &FileIn, field: &str) -> Result<Attachment, ApiError> {
    let name_ok = !f.filename.is_empty()
        && f.filename.len() <= 200
        && f.filename.bytes().all(|b| (0x20..0x7f).contains(&b) && !b"\"\\/".contains(&b));
    if !name_ok {
        return Err(ApiError::field(
            format!("{field}.filename"),
            "1 to 200 printable ASCII characters, no quotes or slashes",
        ));
    }
    let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    let type_ok = f.content_type.split_once('/').is_some_and(|(a, b)| token(a) && token(b));
    if !type_ok {
        return Err(ApiError::field(format!("{field}.content_type"), "a MIME type such as application/xml"));
    }
    // Line breaks as GNU base64 and MIME write them are taken as they are.
    let compact: Vec<u8> = f.content_base64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| ApiError::field(format!("{field}.content_base64"), format!("not base64: {e}")))?;
    Ok(Attachment { filename: f.filename.clone(), content_type: f.content_type.to_ascii_lowercase(), content })
}

/// A Message-ID in angle brackets (added when missing).
fn message_id_field(text: &str) -> Result<String, ApiError> {
    let inner = text.trim().trim_start_matches('<').trim_end_matches('>');
    let ok =
        inner.contains('@') && inner.len() <= 250 && inner.bytes().all(|b| b.is_ascii_graphic() && !b"<>".contains(&b));
    if !ok {
        return Err(ApiError::field("referral.in_reply_to", "the Message-ID of the referral this one answers"));
    }
    Ok(format!("<{inner}>"))
}

/// Composes the message and commits it to the queue; returns its Message-ID and queue id.
fn commit(call: &Sending, c: &Checked) -> Result<(String, String), ApiError> {
    let message_id = crate::node::new_message_id(&call.shared.config.server.hostname);
    let data = compose(c, &message_id, call.now);
    // Refused now, as SMTP submission refuses it, rather than queued and failed later.
    let max = call.shared.config.server.max_message_bytes;
    if data.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "the message would be {} bytes; this node takes at most {max} ([server] max_message_bytes)",
                data.len()
            ),
        ));
    }
    let envelope = Envelope {
        mail_from: Some(c.from.clone()),
        recipients: c.to.clone(),
        data: Spool::in_memory(data),
        authenticated: Some(c.from.clone()),
        helo: call.via.into(),
        tls: true,
    };
    let queue_id = call
        .committer
        .commit(envelope, call.peer)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue", format!("not queued: {e}")))?;
    Ok((message_id, queue_id))
}

/// The message as the EHR's user wrote it: a text part and the files, with the referral's
/// metadata in header fields; non-ASCII text is encoded as mail-builder sees fit (RFC 2047).
fn compose(c: &Checked, message_id: &str, now: i64) -> Vec<u8> {
    let mut message = MessageBuilder::new()
        .from(c.from.to_string())
        .to(c.to.iter().map(|a| a.to_string()).collect::<Vec<_>>())
        .subject(c.subject.as_str())
        .date(Date::new(now))
        .message_id(bare_message_id(message_id))
        .text_body(c.body.as_str());
    if let Some((metadata, in_reply_to)) = &c.referral {
        for (name, value) in metadata.header_fields() {
            message = message.header(name, Raw::new(value));
        }
        if let Some(answered) = in_reply_to.as_deref().map(bare_message_id) {
            message = message.in_reply_to(answered.clone()).references(answered);
        }
    }
    let files = match &c.package {
        Some(package) => std::slice::from_ref(&package.zip),
        None => &c.files[..],
    };
    for f in files {
        message = message.attachment(f.content_type.as_str(), f.filename.as_str(), f.content.as_slice());
    }
    let mut out = Vec::new();
    message.serialize(&mut out);
    out
}

/// Keeps the referral and a copy of each attachment for the practice (and the patient).
fn record_sent(
    call: &Sending,
    practice: &PracticeRecord,
    c: &Checked,
    message_id: &str,
) -> Result<Option<i64>, ApiError> {
    let mut documents = referral::documents(&call.shared.kek, &c.files).map_err(ApiError::internal)?;
    let mut packages = Vec::new();
    if let Some(package) = &c.package {
        for (document, entry) in documents.iter_mut().zip(&package.entries) {
            let path = format!("IHE_XDM/SUBSET01/{}", entry.uri);
            document.xdm = Some(crate::xdm::filed_metadata(PACKAGE_NAME, "SUBSET01", &path, &package.set, entry));
        }
        packages.push(NewPackage {
            filename: PACKAGE_NAME.into(),
            sha256: crate::pki::sha256_hex(&package.zip.content),
            refused: None,
            documents: package.entries.len(),
            warnings: Vec::new(),
        });
    }
    // Who the C-CDA is about: this practice knows them by its identifier from now on.
    let patient_key = referral::patient_key(&c.files);
    let referral = c.referral.as_ref().map(|(m, in_reply_to)| NewReferral {
        direction: m.direction.clone(),
        patient_id: Some(m.patient_id.clone()),
        sender_patient_id: None,
        sender: c.from.to_string(),
        recipients: c.to.iter().map(ToString::to_string).collect(),
        subject: c.subject.clone(),
        sections: m.sections.clone(),
        encounter_note: m.encounter_note,
        in_reply_to: in_reply_to.clone(),
    });
    let exchange = Exchange {
        practice_id: practice.id,
        message_id,
        way: "sent",
        patient_id: c.referral.as_ref().map(|(m, _)| m.patient_id.as_str()),
        patient_key: patient_key.as_deref(),
        referral: referral.as_ref(),
        documents: &documents,
        packages: &packages,
    };
    Ok(call.store.save_exchange(&exchange)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composed_referral_carries_its_metadata_and_files() {
        let c = Checked {
            from: DirectAddress::parse("dr.smith@a.test").unwrap(),
            to: vec![DirectAddress::parse("dr.jones@b.test").unwrap()],
            subject: "Referral für Müller".into(),
            body: "Please see the attached summary.".into(),
            files: vec![Attachment {
                filename: "ccda.xml".into(),
                content_type: "application/xml".into(),
                content: b"<x/>".to_vec(),
            }],
            referral: Some((
                Metadata {
                    direction: "transferring".into(),
                    patient_id: "MRN-1".into(),
                    sections: vec!["problems".into()],
                    encounter_note: false,
                },
                Some("<m0@b.test>".into()),
            )),
            package: None,
        };
        let raw = compose(&c, "<m1@a.test>", 1_700_000_000);
        let entity = crate::smime::mime::Entity::parse(&raw);
        assert_eq!(Metadata::from_headers(&entity.headers), c.referral.as_ref().map(|(m, _)| m.clone()));
        assert_eq!(entity.headers.get("in-reply-to").map(str::trim), Some("<m0@b.test>"));
        // RFC 2047 encoded words; the charset's name is case-insensitive.
        assert!(entity.headers.get("subject").unwrap().to_ascii_uppercase().contains("=?UTF-8?B?"));
        let files = crate::smime::mime::attachments(&raw).unwrap();
        assert_eq!(files, c.files);
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Referral für Müller"));
        assert_eq!(parsed.body_text(0).as_deref(), Some("Please see the attached summary."));
    }

    #[test]
    fn bad_files_name_their_field() {
        let f = FileIn { filename: "a\"b".into(), content_type: "text/plain".into(), content_base64: "".into() };
        assert_eq!(file(&f, "attachments[0]").unwrap_err().field.as_deref(), Some("attachments[0].filename"));
        let f = FileIn { filename: "a.xml".into(), content_type: "xml".into(), content_base64: "".into() };
        assert_eq!(file(&f, "attachments[0]").unwrap_err().field.as_deref(), Some("attachments[0].content_type"));
        let f = FileIn { filename: "a.xml".into(), content_type: "text/xml".into(), content_base64: "***".into() };
        assert_eq!(file(&f, "x").unwrap_err().field.as_deref(), Some("x.content_base64"));
    }
}
