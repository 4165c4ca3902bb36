//! IHE XDM (Cross-Enterprise Document Media Interchange, ITI TF-1 §16, ITI TF-3 §4.2 and §4.3)
//! as Direct uses it ("XDR and XDM for Direct Messaging"): a ZIP attachment holding INDEX.HTM,
//! README.TXT and, per submission set, `IHE_XDM/<SUBSET>/METADATA.XML` (an ebRIM
//! SubmitObjectsRequest) beside the documents it lists by their URI slot, each with its size and
//! SHA-1 hash.
//!
//! `package` reads a package a peer sent (bounded: entry names, sizes, compression ratio, entry
//! count, the metadata's own limits) and writes one; `metadata` reads and writes METADATA.XML.
//! A package that breaks a rule is refused whole, with the reason: nothing of it is filed.

pub(crate) mod compose;
pub(crate) mod metadata;
pub(crate) mod package;
#[cfg(test)]
mod tests;

use serde::Serialize;

/// The ebRIM identifiers XDM metadata is written with (ITI TF-3 §4.2.5).
pub(crate) mod uuids {
    /// objectType of a stable DocumentEntry.
    pub(crate) const STABLE_DOCUMENT: &str = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1";
    /// The classification node that makes a RegistryPackage a SubmissionSet.
    pub(crate) const SUBMISSION_SET: &str = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd";

    pub(crate) const DOC_AUTHOR: &str = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d";
    pub(crate) const DOC_CLASS_CODE: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
    pub(crate) const DOC_CONFIDENTIALITY_CODE: &str = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f";
    pub(crate) const DOC_FORMAT_CODE: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
    pub(crate) const DOC_FACILITY_TYPE_CODE: &str = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1";
    pub(crate) const DOC_PRACTICE_SETTING_CODE: &str = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead";
    pub(crate) const DOC_TYPE_CODE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
    pub(crate) const DOC_PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
    pub(crate) const DOC_UNIQUE_ID: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";

    pub(crate) const SET_AUTHOR: &str = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d";
    pub(crate) const SET_CONTENT_TYPE_CODE: &str = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500";
    pub(crate) const SET_PATIENT_ID: &str = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446";
    pub(crate) const SET_SOURCE_ID: &str = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832";
    pub(crate) const SET_UNIQUE_ID: &str = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8";
}

/// A coded value: the code, its coding scheme and its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Code {
    pub code: String,
    pub scheme: String,
    pub display: String,
}

/// An author of a document or of a submission set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Author {
    /// authorPerson (an XCN, e.g. "^Smith^John").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub institutions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub specialties: Vec<String>,
    /// authorTelecommunication (an XTN, "^^Internet^dr.smith@a.example" for a Direct address).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telecoms: Vec<String>,
}

/// A DocumentEntry: what the metadata says about one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct DocumentEntry {
    pub entry_uuid: String,
    pub unique_id: String,
    pub mime_type: String,
    /// The file, relative to the METADATA.XML that lists it.
    pub uri: String,
    pub size: u64,
    /// SHA-1 of the document, lowercase hex.
    pub hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_patient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// HL7 DTM: YYYY[MM[DD[hh[mm[ss]]]]] in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_code: Option<Code>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub confidentiality_codes: Vec<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facility_type_code: Option<Code>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub practice_setting_code: Option<Code>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Author>,
}

/// The SubmissionSet: what the metadata says about the package's contents as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct SubmissionSet {
    pub entry_uuid: String,
    pub unique_id: String,
    pub source_id: String,
    /// HL7 DTM, UTC.
    pub submission_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type_code: Option<Code>,
    /// intendedRecipient values (XON|XCN|XTN; Direct puts the address in the XTN).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intended_recipients: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Author>,
}

/// Documents their sender described, as one submission set (an XDR submission's, or a
/// package's read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described {
    pub set: SubmissionSet,
    pub documents: Vec<(DocumentEntry, Vec<u8>)>,
}

/// Why a package is refused: its contents are not filed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// A ZIP with nothing under IHE_XDM/: an attachment like any other, not a package.
    #[error("a ZIP file with no IHE_XDM folder: not an XDM package")]
    NotXdm,
    #[error("not a ZIP file: {0}")]
    NotZip(String),
    #[error("entry name {0:?} is not a plain relative path (absolute, '..', a drive or a backslash)")]
    UnsafeName(String),
    #[error("more than {0} entries")]
    TooManyEntries(usize),
    #[error("entry {name:?} expands {ratio} times (more than {limit}): a ZIP bomb")]
    Ratio { name: String, ratio: u64, limit: u64 },
    #[error("the contents expand to more than {0} bytes")]
    TooLarge(u64),
    #[error("entry {0:?} cannot be read: {1}")]
    Unreadable(String, String),
    #[error("entry {0:?} appears twice")]
    Duplicate(String),
    #[error("no IHE_XDM/<subset>/METADATA.XML")]
    NoMetadata,
    #[error("{path}: {why}")]
    Metadata { path: String, why: String },
    #[error("{path}: document {uri:?} is not in the package")]
    MissingDocument { path: String, uri: String },
    #[error("{path}: document {uri:?} is {actual} bytes, the metadata says {declared}")]
    SizeMismatch { path: String, uri: String, declared: u64, actual: u64 },
    #[error("{path}: document {uri:?} has SHA-1 {actual}, the metadata says {declared}")]
    HashMismatch { path: String, uri: String, declared: String, actual: String },
}

/// The file name of the package a message of ours carries.
pub(crate) const PACKAGE_NAME: &str = "xdm.zip";

/// What a practice keeps with a document that travelled in a package (sent or received), as
/// the API shows it (`xdm` of a document): the package, where the document is in it, the
/// submission set and its DocumentEntry.
pub(crate) fn filed_metadata(
    package: &str,
    subset: &str,
    path: &str,
    set: &SubmissionSet,
    entry: &DocumentEntry,
) -> String {
    serde_json::json!({
        "package": package,
        "subset": subset,
        "path": path,
        "submission_set": set,
        "document": entry,
    })
    .to_string()
}

/// SHA-1 as XDM's hash slot has it: lowercase hex (OpenSSL's digest).
pub(crate) fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha1(bytes))
}

/// Whether `bytes` look like a ZIP file (a local file header first).
pub(crate) fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}
