//! A referral's metadata as it travels inside the (signed, encrypted) message, in header fields
//! the receiving node reads: Transferring (referring out) or Receiving (reporting back), the
//! patient's identifier, the C-CDA sections included and whether the encounter note is attached.
//! And the record each side keeps: the referral and a copy of every document, for the practice
//! and the patient.

use crate::address::DirectAddress;
use crate::kek::{Kek, KekError};
use crate::smime::mime::{self, Attachment, Headers};
use crate::store::api::{Exchange, NewDocument, NewReferral};
use crate::store::{ApiStore, Store, StoreError};

pub(crate) const DIRECTION: &str = "X-Referral-Direction";
pub(crate) const PATIENT: &str = "X-Referral-Patient";
pub(crate) const SECTIONS: &str = "X-Referral-Sections";
pub(crate) const ENCOUNTER_NOTE: &str = "X-Referral-Encounter-Note";

pub(crate) const DIRECTIONS: [&str; 2] = ["transferring", "receiving"];

/// What a referral says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub direction: String,
    pub patient_id: String,
    pub sections: Vec<String>,
    pub encounter_note: bool,
}

/// Text that can travel in a header field and be filtered on: printable ASCII, no commas
/// (sections are a comma list), 1 to `max` characters.
pub(crate) fn check_token(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max {
        return Err(format!("1 to {max} characters"));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b',') {
        return Err("printable ASCII only, no commas".into());
    }
    Ok(())
}

impl Metadata {
    /// The header fields, as (name, value).
    pub(crate) fn header_fields(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(DIRECTION, self.direction.clone()), (PATIENT, self.patient_id.clone())];
        if !self.sections.is_empty() {
            out.push((SECTIONS, self.sections.join(", ")));
        }
        if self.encounter_note {
            out.push((ENCOUNTER_NOTE, "attached".to_string()));
        }
        out
    }

    /// The metadata of a message that carries it (both the direction and the patient).
    pub(crate) fn from_headers(headers: &Headers) -> Option<Metadata> {
        let direction = headers.get(DIRECTION)?.trim().to_ascii_lowercase();
        let patient_id = headers.get(PATIENT)?.trim().to_string();
        if !DIRECTIONS.contains(&direction.as_str()) || check_token(&patient_id, 64).is_err() {
            return None;
        }
        let sections = headers
            .get(SECTIONS)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let encounter_note = headers.get(ENCOUNTER_NOTE).is_some();
        Some(Metadata { direction, patient_id, sections, encounter_note })
    }
}

/// Sealed copies of the attachments, to keep as documents.
pub(crate) fn documents(kek: &Kek, attachments: &[Attachment]) -> Result<Vec<NewDocument>, KekError> {
    attachments
        .iter()
        .map(|a| {
            Ok(NewDocument {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: a.content.len(),
                sha256: crate::pki::sha256_hex(&a.content),
                sealed: kek.seal_document(&a.content)?,
                xdm: None,
            })
        })
        .collect()
}

/// Who the first C-CDA among `files` is about (`ccda_view::patient_key`).
pub(crate) fn patient_key(files: &[Attachment]) -> Option<String> {
    files
        .iter()
        .filter(|f| crate::ccda_view::is_xml(&f.content_type, &f.filename))
        .find_map(|f| crate::ccda_view::patient_key(&f.content))
}

/// Records what a hosted address received: the referral (if the message is one) and a copy of
/// each of its `attachments` (as the delivery found them) for the recipient's practice. Once per practice: a retried delivery, or a
/// second recipient at the same practice, changes nothing.
pub(crate) fn record_received<S: Store + ApiStore + ?Sized>(
    store: &S,
    kek: &Kek,
    recipient: &DirectAddress,
    message_id: &str,
    original: &[u8],
    attachments: &[Attachment],
    sender: &str,
) -> Result<(), String> {
    let practice = match store.practice(recipient.domain().as_str()) {
        Ok(p) => p,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let entity = mime::Entity::parse(original);
    let headers = &entity.headers;
    let metadata = Metadata::from_headers(headers);
    if metadata.is_none() && attachments.is_empty() {
        return Ok(());
    }
    let mut documents = documents(kek, attachments).map_err(|e| e.to_string())?;
    let unpacked = super::xdm_received::unpack(kek, attachments).map_err(|e| e.to_string())?;
    documents.extend(unpacked.documents);
    // Filed for this practice's own patient when its records know who the C-CDA is about; the
    // sender's identifier means nothing here and is kept only as the sender's.
    let key = patient_key(attachments).or(unpacked.patient_key);
    let ours = match &key {
        Some(key) => store.patient_by_key(practice.id, key).map_err(|e| e.to_string())?,
        None => None,
    };
    let referral = metadata.as_ref().map(|m| NewReferral {
        direction: m.direction.clone(),
        patient_id: ours.clone(),
        sender_patient_id: Some(m.patient_id.clone()),
        sender: sender.to_string(),
        recipients: headers.get("to").map(mime::addresses).unwrap_or_default(),
        subject: headers.text("subject").unwrap_or_default().trim().to_string(),
        sections: m.sections.clone(),
        encounter_note: m.encounter_note,
        in_reply_to: headers.get("in-reply-to").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()),
    });
    let exchange = Exchange {
        practice_id: practice.id,
        message_id,
        way: "received",
        patient_id: ours.as_deref(),
        patient_key: key.as_deref(),
        referral: referral.as_ref(),
        documents: &documents,
        packages: &unpacked.packages,
    };
    store.save_exchange(&exchange).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_travels_in_header_fields_and_comes_back_the_same() {
        let m = Metadata {
            direction: "transferring".into(),
            patient_id: "MRN-1001".into(),
            sections: vec!["problems".into(), "medications".into()],
            encounter_note: true,
        };
        let block: String = m.header_fields().iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
        let headers = Headers::parse(block.as_bytes());
        assert_eq!(Metadata::from_headers(&headers), Some(m));
        let bad = Headers::parse(b"X-Referral-Direction: sideways\r\nX-Referral-Patient: 1\r\n");
        assert_eq!(Metadata::from_headers(&bad), None);
        assert!(check_token("MRN,1", 64).is_err());
        assert!(check_token("MRN\r\nBcc: x", 64).is_err());
    }
}
