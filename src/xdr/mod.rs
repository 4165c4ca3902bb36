//! IHE XDR as Direct uses it ("XDR and XDM for Direct Messaging"): an ITI-41 Provide and Register
//! Document Set-b request, SOAP 1.2 over HTTP with MTOM/XOP (ITI TF-2b §3.41, ITI TF-2x Appendix
//! V), its Direct `addressBlock` SOAP header naming the sender and recipients.
//!
//! `request` reads one a client sent (bounded, no DTD) into a `Submission`, or says which SOAP
//! fault or registry error answers it; `soap` writes the answers, and writes a request of our own
//! (a received Direct message forwarded to an EHR's XDR endpoint) and reads its answer.

pub(crate) mod request;
pub(crate) mod soap;
#[cfg(test)]
mod tests;

use crate::xdm::{DocumentEntry, SubmissionSet};

pub(crate) const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub(crate) const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const WSA: &str = "http://www.w3.org/2005/08/addressing";
pub(crate) const XDSB: &str = "urn:ihe:iti:xds-b:2007";
pub(crate) const XOP: &str = "http://www.w3.org/2004/08/xop/include";
pub(crate) const DIRECT: &str = "urn:direct:addressing";
pub(crate) const RS: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0";
pub(crate) const ACTION: &str = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b";
pub(crate) const RESPONSE_ACTION: &str = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse";

/// A submission that passed every check: who sends it to whom, and the documents with their
/// metadata (size and hash as the documents have them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Submission {
    /// wsa:MessageID, for the answer's wsa:RelatesTo.
    pub message_id: Option<String>,
    /// The Direct sender: the addressBlock's `from`, else the submission set author's e-mail.
    pub from: String,
    /// The Direct recipients: the addressBlock's `to`, else the intendedRecipient e-mails.
    pub to: Vec<String>,
    pub submission_set: SubmissionSet,
    pub documents: Vec<(DocumentEntry, Vec<u8>)>,
}

/// How a request is refused: a SOAP fault (the message itself is wrong: HTTP 400, or 403 for an
/// unknown client) or a RegistryResponse of status Failure with the ITI-41 error code (the
/// submission is wrong: HTTP 200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Fault { subcode: Option<&'static str>, reason: String },
    Registry { code: &'static str, context: String },
}

impl Refusal {
    pub(crate) fn fault(reason: impl Into<String>) -> Refusal {
        Refusal::Fault { subcode: None, reason: reason.into() }
    }

    pub(crate) fn registry(code: &'static str, context: impl Into<String>) -> Refusal {
        Refusal::Registry { code, context: context.into() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Fault { subcode: Some(code), reason } => write!(f, "SOAP fault {code}: {reason}"),
            Refusal::Fault { subcode: None, reason } => write!(f, "SOAP fault: {reason}"),
            Refusal::Registry { code, context } => write!(f, "{code}: {context}"),
        }
    }
}

/// The ITI-41 error codes used here (ITI TF-3 Table 4.2.4.1-2).
pub(crate) mod codes {
    /// A DocumentEntry whose document is not in the request.
    pub(crate) const MISSING_DOCUMENT: &str = "XDSMissingDocument";
    /// A document in the request that no DocumentEntry describes.
    pub(crate) const MISSING_DOCUMENT_METADATA: &str = "XDSMissingDocumentMetadata";
    /// Metadata that does not match its document (size, hash) or cannot be read.
    pub(crate) const REPOSITORY_METADATA_ERROR: &str = "XDSRepositoryMetadataError";
    /// Metadata that breaks the registry's rules (no submission set, no Direct addressing).
    pub(crate) const REGISTRY_METADATA_ERROR: &str = "XDSRegistryMetadataError";
    /// The submission was well-formed but could not be taken (the sender may not send, the
    /// queue refused it).
    pub(crate) const REPOSITORY_ERROR: &str = "XDSRepositoryError";
}

/// The e-mail address in a Direct address as XDR carries it: "mailto:a@b", an XTN
/// ("^^Internet^a@b"), an intendedRecipient ("org|person|^^Internet^a@b", or the address as the
/// person's id, "|a@b^Family^Given", as the Direct reference implementation writes it), or bare.
pub(crate) fn email_of(value: &str) -> Option<String> {
    let value = value.trim();
    let plain = |text: &str| {
        let text = text.trim();
        (text.contains('@') && !text.contains(|c: char| c.is_whitespace() || "^|&<>".contains(c)))
            .then(|| text.to_string())
    };
    if let Some(rest) = value.strip_prefix("mailto:") {
        return plain(rest);
    }
    if let Some(at) = value.find("^^Internet^") {
        return plain(value[at + "^^Internet^".len()..].split(['^', '|', '&']).next().unwrap_or(""));
    }
    // An XCN whose id is the address (the second field of an intendedRecipient).
    let person = value.split('|').nth(1).unwrap_or(value);
    plain(person.split('^').next().unwrap_or(""))
}
