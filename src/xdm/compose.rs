//! The metadata a package of ours carries, from what we know: a C-CDA's header (patient, author,
//! type, title, time, confidentiality, language: IHE PCC's mapping), the file's type otherwise,
//! and the Direct addresses of the sender and the recipients ("XDR and XDM for Direct
//! Messaging": author telecommunication and intendedRecipient).

use super::package::{self, ToPack};
use super::{Author, Code, DocumentEntry, SubmissionSet};
use crate::ccda_view::{self, XdsFacts};
use crate::clock::{days_from_civil, hl7_dtm as dtm};

/// The coding scheme of IHE's format codes.
const IHE_FORMAT_CODES: &str = "1.3.6.1.4.1.19376.1.2.3";
const CONFIDENTIALITY: &str = "2.16.840.1.113883.5.25";

/// A file to put in a package.
pub(crate) struct File<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub content: &'a [u8],
}

/// Who sends the package to whom, and when.
pub(crate) struct Parties<'a> {
    /// The sender's Direct address.
    pub sender: &'a str,
    pub recipients: &'a [String],
    /// Our source OID (the submission set's sourceId), and the assigning authority of
    /// `patient_id`.
    pub source_oid: &'a str,
    /// The patient's identifier in the sending practice, when no C-CDA gives one.
    pub patient_id: Option<&'a str>,
    pub now: i64,
    /// Derive the package's identifiers from this (a message packed again, for a retried delivery,
    /// is then the same message); None: random ones.
    pub seed: Option<&'a [u8]>,
}

/// The identifiers of one package: random, or each derived from the seed and its number.
struct Ids<'a> {
    seed: Option<&'a [u8]>,
    count: u32,
}

impl Ids<'_> {
    fn bytes(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        match self.seed {
            Some(seed) => {
                self.count += 1;
                let digest = openssl::sha::sha256(&[seed, &self.count.to_be_bytes()].concat());
                b.copy_from_slice(&digest[..16]);
            }
            None => openssl::rand::rand_bytes(&mut b).expect("the system's random source"),
        }
        b
    }

    fn uuid(&mut self) -> String {
        uuid_of(self.bytes())
    }

    fn oid(&mut self) -> String {
        format!("2.25.{}", u128::from_be_bytes(self.bytes()))
    }
}

/// A package of `files` (one submission set); the ZIP and its metadata.
pub(crate) fn package(
    files: &[File],
    parties: &Parties,
) -> Result<(Vec<u8>, SubmissionSet, Vec<DocumentEntry>), String> {
    if files.is_empty() {
        return Err("an XDM package needs at least one document".into());
    }
    let facts: Vec<Option<XdsFacts>> = files
        .iter()
        .map(|f| ccda_view::is_xml(f.content_type, f.filename).then(|| ccda_view::xds_facts(f.content)).flatten())
        .collect();
    let given_patient = parties.patient_id.map(|id| format!("{id}^^^&{}&ISO", parties.source_oid));
    let mut ids = Ids { seed: parties.seed, count: 0 };
    let documents: Vec<ToPack> = files
        .iter()
        .zip(&facts)
        .map(|(file, facts)| ToPack {
            entry: entry(file, facts.as_ref(), given_patient.as_deref(), parties, &mut ids),
            content: file.content,
        })
        .collect();
    let patient_id = documents.iter().find_map(|d| d.entry.patient_id.clone());
    let set = SubmissionSet {
        entry_uuid: ids.uuid(),
        unique_id: ids.oid(),
        source_id: parties.source_oid.to_string(),
        submission_time: dtm(parties.now),
        patient_id,
        content_type_code: facts.iter().flatten().find_map(|f| f.code.as_ref()).map(code),
        intended_recipients: parties.recipients.iter().map(|r| format!("||^^Internet^{r}")).collect(),
        authors: vec![Author { telecoms: vec![format!("^^Internet^{}", parties.sender)], ..Author::default() }],
    };
    let (zip, entries) = package::write(&set, documents, parties.sender)?;
    Ok((zip, set, entries))
}

fn entry(
    file: &File,
    facts: Option<&XdsFacts>,
    given_patient: Option<&str>,
    parties: &Parties,
    ids: &mut Ids,
) -> DocumentEntry {
    let mime_type = mime_type(file);
    let telecom = format!("^^Internet^{}", parties.sender);
    let Some(facts) = facts else {
        return DocumentEntry {
            entry_uuid: ids.uuid(),
            unique_id: ids.oid(),
            mime_type,
            patient_id: given_patient.map(str::to_string),
            source_patient_id: given_patient.map(str::to_string),
            title: Some(file.filename.to_string()),
            creation_time: Some(dtm(parties.now)),
            format_code: Some(Code {
                code: "urn:ihe:iti:xds:2017:mimeTypeSufficient".into(),
                scheme: IHE_FORMAT_CODES.into(),
                display: "Format from mimeType".into(),
            }),
            confidentiality_codes: vec![Code {
                code: "N".into(),
                scheme: CONFIDENTIALITY.into(),
                display: "normal".into(),
            }],
            authors: vec![Author { telecoms: vec![telecom], ..Author::default() }],
            ..DocumentEntry::default()
        };
    };
    let patient = facts.patient_id.as_ref().map(|(root, ext)| format!("{ext}^^^&{root}&ISO"));
    let person = match (&facts.author_family, &facts.author_given) {
        (None, None) => None,
        (family, given) => Some(format!("^{}^{}", family.as_deref().unwrap_or(""), given.as_deref().unwrap_or(""))),
    };
    let unique_id = match &facts.id {
        (root, Some(ext)) => format!("{root}^{ext}"),
        (root, None) => root.clone(),
    };
    let format = if facts.structured { "structuredBody" } else { "nonXMLBody" };
    DocumentEntry {
        entry_uuid: ids.uuid(),
        unique_id,
        mime_type,
        patient_id: patient.clone().or(given_patient.map(str::to_string)),
        source_patient_id: patient.or(given_patient.map(str::to_string)),
        title: facts.title.clone().or_else(|| Some(file.filename.to_string())),
        creation_time: facts.effective_time.as_deref().and_then(utc_dtm).or_else(|| Some(dtm(parties.now))),
        language: facts.language.clone(),
        class_code: facts.code.as_ref().map(code),
        type_code: facts.code.as_ref().map(code),
        format_code: Some(Code {
            code: format!("urn:hl7-org:sdwg:ccda-{format}:2.1"),
            scheme: IHE_FORMAT_CODES.into(),
            display: format!("C-CDA R2.1 {format}"),
        }),
        confidentiality_codes: vec![facts.confidentiality.as_ref().map(code).unwrap_or(Code {
            code: "N".into(),
            scheme: CONFIDENTIALITY.into(),
            display: "normal".into(),
        })],
        authors: vec![Author {
            person,
            institutions: facts.author_organization.iter().cloned().collect(),
            telecoms: vec![telecom],
            ..Author::default()
        }],
        ..DocumentEntry::default()
    }
}

fn code(c: &ccda_view::Coded) -> Code {
    Code { code: c.code.clone(), scheme: c.system.clone(), display: c.display.clone() }
}

/// The file's type, from its name when it came as octet-stream.
fn mime_type(file: &File) -> String {
    let given = file.content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !given.is_empty() && given != "application/octet-stream" {
        return given;
    }
    let lower = file.filename.to_ascii_lowercase();
    let by_name = [
        (".xml", "text/xml"),
        (".pdf", "application/pdf"),
        (".txt", "text/plain"),
        (".jpg", "image/jpeg"),
        (".png", "image/png"),
    ];
    by_name.iter().find(|(ext, _)| lower.ends_with(ext)).map_or("application/octet-stream", |(_, t)| t).to_string()
}

/// A new entryUUID (a random version 4 UUID as a URN).
pub(crate) fn new_uuid() -> String {
    Ids { seed: None, count: 0 }.uuid()
}

/// 16 bytes as a version 4 UUID URN.
fn uuid_of(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("urn:uuid:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// An OID under 2.25 that stays the same for `name` (our host name: the package's sourceId).
pub(crate) fn oid_for(name: &str) -> String {
    let digest = openssl::sha::sha256(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// An HL7 TS ("201308151030-0800") in UTC; without a zone, its digits as they are; None when it
/// does not read.
fn utc_dtm(ts: &str) -> Option<String> {
    let (stamp, zone) = match ts.find(['+', '-']) {
        Some(i) => (&ts[..i], Some(&ts[i..])),
        None => (ts, None),
    };
    let digits = stamp.split('.').next()?;
    if digits.len() < 4 || digits.len() > 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let Some(zone) = zone.filter(|_| digits.len() >= 10) else { return Some(digits.to_string()) };
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let z = &zone[1..];
    if z.len() != 4 || !z.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let offset = sign * (z[..2].parse::<i64>().ok()? * 3600 + z[2..].parse::<i64>().ok()? * 60);
    let padded = format!("{digits:0<14}");
    let num = |r: std::ops::Range<usize>| padded[r].parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let local =
        days_from_civil(y, mo as u32, d as u32) * 86_400 + num(8..10)? * 3600 + num(10..12)? * 60 + num(12..14)?;
    Some(dtm(local - offset)[..digits.len()].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(dtm(0), "19700101000000");
        assert_eq!(dtm(1_765_022_400), "20251206120000");
        assert_eq!(utc_dtm("201308151030-0800").as_deref(), Some("201308151830"));
        assert_eq!(utc_dtm("20130815").as_deref(), Some("20130815"));
        assert_eq!(utc_dtm("2013081523+0200").as_deref(), Some("2013081521"));
        assert_eq!(utc_dtm("soon"), None);
    }

    #[test]
    fn a_c_cda_gives_its_metadata_and_another_file_its_type() {
        let ccd = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ccda/ccd.xml")).unwrap();
        let files = [
            File { filename: "ccd.xml", content_type: "text/xml", content: &ccd },
            File { filename: "note.pdf", content_type: "application/octet-stream", content: b"%PDF-1.4" },
        ];
        let recipients = ["dr.jones@b.test".to_string()];
        let parties = Parties {
            seed: None,
            sender: "dr.smith@a.test",
            recipients: &recipients,
            source_oid: "2.25.7",
            patient_id: Some("MRN-1"),
            now: 1_765_022_400,
        };
        let (zip, set, entries) = package(&files, &parties).unwrap();
        let read = package::read(&zip, package::Limits::default()).unwrap();
        assert_eq!(read.subsets[0].submission_set, set);
        assert_eq!(read.subsets[0].documents.iter().map(|d| d.entry.clone()).collect::<Vec<_>>(), entries);
        let ccd = &entries[0];
        assert_eq!(ccd.type_code.as_ref().unwrap().code, "34133-9");
        assert_eq!(ccd.format_code.as_ref().unwrap().code, "urn:hl7-org:sdwg:ccda-structuredBody:2.1");
        assert!(ccd.patient_id.as_deref().unwrap().ends_with("&ISO"), "{:?}", ccd.patient_id);
        assert_eq!(ccd.authors[0].person.as_deref(), Some("^Primary^Patricia"));
        let pdf = &entries[1];
        assert_eq!((pdf.mime_type.as_str(), pdf.uri.as_str()), ("application/pdf", "DOC0002.PDF"));
        assert_eq!(pdf.patient_id.as_deref(), Some("MRN-1^^^&2.25.7&ISO"));
        assert_eq!(set.intended_recipients, ["||^^Internet^dr.jones@b.test"]);
        assert_eq!(set.submission_time, "20251206120000");
        assert!(set.unique_id.starts_with("2.25.") && set.entry_uuid.starts_with("urn:uuid:"));
    }
}
