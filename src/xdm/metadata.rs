//! METADATA.XML: an ebRIM 3.0 SubmitObjectsRequest (ITI TF-3 §4.2.3, §4.3.1) with one
//! SubmissionSet (a RegistryPackage classified as one) and a DocumentEntry (ExtrinsicObject) per
//! document, read with the bounds every parser of peer bytes has and written from our types.

use std::fmt::Write as _;

use roxmltree::{Document, Node, ParsingOptions};

use super::uuids::*;
use super::{Author, Code, DocumentEntry, SubmissionSet};
use crate::ccda_view::escape as esc;

const RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
const LCM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0";
/// A METADATA.XML larger than this is refused (a submission set of hundreds of documents is
/// tens of kilobytes).
pub(crate) const MAX_BYTES: usize = 4 << 20;
const MAX_NODES: u32 = 200_000;
/// At most this many documents in one submission set.
pub(crate) const MAX_DOCUMENTS: usize = 1000;

/// What one METADATA.XML says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub submission_set: SubmissionSet,
    pub documents: Vec<DocumentEntry>,
}

/// Reads METADATA.XML; the error says what is missing or malformed.
pub(crate) fn read(bytes: &[u8]) -> Result<Metadata, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("larger than {} MiB", MAX_BYTES >> 20));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES };
    let doc = Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => "declares a DTD, which is refused".to_string(),
        roxmltree::Error::NodesLimitReached => "too many XML nodes".to_string(),
        e => format!("not well-formed XML: {e}"),
    })?;
    from_request(doc.root_element(), Require::Xdm)
}

/// What a DocumentEntry must say besides its id, mimeType and uniqueId: XDM's also its file
/// (URI), size and hash; an XDR submission carries its documents beside the metadata, so those
/// may be absent (then empty: the receiver computes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Require {
    Xdm,
    Xdr,
}

/// Reads a SubmitObjectsRequest element (METADATA.XML's root, or inside an ITI-41 request).
pub(crate) fn from_request(root: Node, require: Require) -> Result<Metadata, String> {
    if !root.has_tag_name((LCM, "SubmitObjectsRequest")) {
        return Err("not an ebRIM 3.0 lcm:SubmitObjectsRequest".into());
    }
    let list = child(root, "RegistryObjectList").ok_or("no rim:RegistryObjectList")?;
    let objects: Vec<Node> = list.children().filter(Node::is_element).collect();
    let classified = |id: &str| -> Vec<Node> {
        // Classifications inside the object, or beside it naming it.
        let inside =
            objects.iter().filter(|o| o.attribute("id") == Some(id)).flat_map(|o| children(*o, "Classification"));
        let beside = objects
            .iter()
            .copied()
            .filter(|o| o.has_tag_name((RIM, "Classification")) && o.attribute("classifiedObject") == Some(id));
        inside.chain(beside).collect()
    };
    let mut sets = objects.iter().filter(|o| o.has_tag_name((RIM, "RegistryPackage"))).filter(|p| {
        let id = p.attribute("id").unwrap_or("");
        classified(id).iter().any(|c| c.attribute("classificationNode") == Some(SUBMISSION_SET))
    });
    let set = sets.next().ok_or("no SubmissionSet (a RegistryPackage classified as one)")?;
    if sets.next().is_some() {
        return Err("more than one SubmissionSet".into());
    }
    let submission_set = read_submission_set(*set, &classified(set.attribute("id").unwrap_or("")))?;
    let mut documents = Vec::new();
    for entry in objects.iter().filter(|o| o.has_tag_name((RIM, "ExtrinsicObject"))) {
        if documents.len() == MAX_DOCUMENTS {
            return Err(format!("more than {MAX_DOCUMENTS} documents"));
        }
        let id = entry.attribute("id").unwrap_or("");
        let read = read_document(*entry, &classified(id), require);
        documents.push(read.map_err(|e| format!("DocumentEntry {id:?}: {e}"))?);
    }
    if documents.is_empty() {
        return Err("no DocumentEntry (rim:ExtrinsicObject)".into());
    }
    Ok(Metadata { submission_set, documents })
}

fn read_submission_set(set: Node, classifications: &[Node]) -> Result<SubmissionSet, String> {
    let entry_uuid = set.attribute("id").filter(|i| !i.is_empty()).ok_or("the SubmissionSet has no id")?;
    let required = |scheme: &str, what: &str| {
        identifier(set, scheme).ok_or_else(|| format!("the SubmissionSet has no {what} (ExternalIdentifier {scheme})"))
    };
    Ok(SubmissionSet {
        entry_uuid: entry_uuid.to_string(),
        unique_id: required(SET_UNIQUE_ID, "uniqueId")?,
        source_id: required(SET_SOURCE_ID, "sourceId")?,
        submission_time: slot(set, "submissionTime").ok_or("the SubmissionSet has no submissionTime")?,
        patient_id: identifier(set, SET_PATIENT_ID),
        content_type_code: code_of(classifications, SET_CONTENT_TYPE_CODE),
        intended_recipients: slot_values(set, "intendedRecipient"),
        authors: authors_of(classifications, SET_AUTHOR),
    })
}

fn read_document(entry: Node, classifications: &[Node], require: Require) -> Result<DocumentEntry, String> {
    let entry_uuid = entry.attribute("id").filter(|i| !i.is_empty()).ok_or("no id")?;
    let mime_type = entry.attribute("mimeType").filter(|m| !m.trim().is_empty()).ok_or("no mimeType")?;
    let xdm = require == Require::Xdm;
    let size = match slot(entry, "size") {
        Some(size) => size.trim().parse::<u64>().map_err(|_| format!("size {size:?} is not a number"))?,
        None if xdm => return Err("no size slot".into()),
        None => 0,
    };
    let hash = match slot(entry, "hash") {
        Some(hash) => hash.trim().to_ascii_lowercase(),
        None if xdm => return Err("no hash slot".into()),
        None => String::new(),
    };
    if !hash.is_empty() && (hash.len() != 40 || !hash.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(format!("hash {hash:?} is not a SHA-1 in hex"));
    }
    let uri = match uri(entry) {
        Ok(uri) => uri,
        Err(e) if xdm => return Err(e),
        Err(_) => String::new(),
    };
    Ok(DocumentEntry {
        entry_uuid: entry_uuid.to_string(),
        unique_id: identifier(entry, DOC_UNIQUE_ID).ok_or("no uniqueId")?,
        mime_type: mime_type.trim().to_string(),
        uri,
        size,
        hash,
        patient_id: identifier(entry, DOC_PATIENT_ID),
        source_patient_id: slot(entry, "sourcePatientId"),
        title: child(entry, "Name").and_then(localized),
        creation_time: slot(entry, "creationTime"),
        language: slot(entry, "languageCode"),
        class_code: code_of(classifications, DOC_CLASS_CODE),
        type_code: code_of(classifications, DOC_TYPE_CODE),
        format_code: code_of(classifications, DOC_FORMAT_CODE),
        confidentiality_codes: codes_of(classifications, DOC_CONFIDENTIALITY_CODE),
        facility_type_code: code_of(classifications, DOC_FACILITY_TYPE_CODE),
        practice_setting_code: code_of(classifications, DOC_PRACTICE_SETTING_CODE),
        authors: authors_of(classifications, DOC_AUTHOR),
    })
}

/// The URI slot: one value, or a long one split as "1|...", "2|..." (ITI TF-3 §4.2.3.2.24).
fn uri(entry: Node) -> Result<String, String> {
    let values = slot_values(entry, "URI");
    let numbered: Option<Vec<(u32, &str)>> =
        values.iter().map(|v| v.split_once('|').and_then(|(n, rest)| Some((n.parse().ok()?, rest)))).collect();
    let uri = match numbered {
        Some(mut parts) if values.len() > 1 => {
            parts.sort_by_key(|(n, _)| *n);
            parts.into_iter().map(|(_, part)| part).collect()
        }
        _ => values.into_iter().next().ok_or("no URI slot")?,
    };
    if uri.trim().is_empty() {
        return Err("an empty URI slot".into());
    }
    Ok(uri.trim().to_string())
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name((RIM, name)))
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |n| n.has_tag_name((RIM, name)))
}

fn slot_values(node: Node, name: &str) -> Vec<String> {
    children(node, "Slot")
        .filter(|s| s.attribute("name") == Some(name))
        .filter_map(|s| child(s, "ValueList"))
        .flat_map(|list| children(list, "Value"))
        .map(|v| v.text().unwrap_or("").trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn slot(node: Node, name: &str) -> Option<String> {
    slot_values(node, name).into_iter().next()
}

fn localized(name: Node) -> Option<String> {
    child(name, "LocalizedString").and_then(|l| l.attribute("value")).map(str::to_string).filter(|v| !v.is_empty())
}

fn identifier(node: Node, scheme: &str) -> Option<String> {
    children(node, "ExternalIdentifier")
        .find(|e| e.attribute("identificationScheme") == Some(scheme))
        .and_then(|e| e.attribute("value"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn codes_of(classifications: &[Node], scheme: &str) -> Vec<Code> {
    classifications
        .iter()
        .filter(|c| c.attribute("classificationScheme") == Some(scheme))
        .filter_map(|c| {
            Some(Code {
                code: c.attribute("nodeRepresentation")?.to_string(),
                scheme: slot(*c, "codingScheme").unwrap_or_default(),
                display: child(*c, "Name").and_then(localized).unwrap_or_default(),
            })
        })
        .collect()
}

fn code_of(classifications: &[Node], scheme: &str) -> Option<Code> {
    codes_of(classifications, scheme).into_iter().next()
}

fn authors_of(classifications: &[Node], scheme: &str) -> Vec<Author> {
    classifications
        .iter()
        .filter(|c| c.attribute("classificationScheme") == Some(scheme))
        .map(|c| Author {
            person: slot(*c, "authorPerson"),
            institutions: slot_values(*c, "authorInstitution"),
            roles: slot_values(*c, "authorRole"),
            specialties: slot_values(*c, "authorSpecialty"),
            telecoms: slot_values(*c, "authorTelecommunication"),
        })
        .collect()
}

/// Writes METADATA.XML for `set` and its `documents`, with an Original HasMember association for
/// each document.
pub(crate) fn write(set: &SubmissionSet, documents: &[DocumentEntry]) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}", request(set, documents))
}

/// The SubmitObjectsRequest element alone (an ITI-41 request carries it in its SOAP body).
pub(crate) fn request(set: &SubmissionSet, documents: &[DocumentEntry]) -> String {
    let mut w = Writer { out: String::new(), next_id: 0 };
    w.out.push_str(
        "<lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" \
         xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\">\n<rim:RegistryObjectList>\n",
    );
    for doc in documents {
        w.document(doc);
    }
    w.submission_set(set);
    let id = w.id("cl");
    let _ = writeln!(
        w.out,
        "<rim:Classification id=\"{id}\" classifiedObject=\"{}\" classificationNode=\"{SUBMISSION_SET}\"/>",
        esc(&set.entry_uuid)
    );
    for doc in documents {
        let id = w.id("as");
        let _ = writeln!(
            w.out,
            "<rim:Association id=\"{id}\" associationType=\"urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember\" \
             sourceObject=\"{}\" targetObject=\"{}\">",
            esc(&set.entry_uuid),
            esc(&doc.entry_uuid)
        );
        w.slot("SubmissionSetStatus", &["Original".to_string()]);
        w.out.push_str("</rim:Association>\n");
    }
    w.out.push_str("</rim:RegistryObjectList>\n</lcm:SubmitObjectsRequest>\n");
    w.out
}

struct Writer {
    out: String,
    next_id: u32,
}

impl Writer {
    /// A symbolic id for a classification, identifier or association (ITI TF-3 §4.2.3.1.6).
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:02}", self.next_id)
    }

    fn slot(&mut self, name: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let _ = write!(self.out, "<rim:Slot name=\"{}\"><rim:ValueList>", esc(name));
        for value in values {
            let _ = write!(self.out, "<rim:Value>{}</rim:Value>", esc(value));
        }
        self.out.push_str("</rim:ValueList></rim:Slot>\n");
    }

    fn name(&mut self, text: &str) {
        let _ = writeln!(self.out, "<rim:Name><rim:LocalizedString value=\"{}\"/></rim:Name>", esc(text));
    }

    fn code(&mut self, object: &str, scheme: &str, code: &Code) {
        let id = self.id("cl");
        let _ = writeln!(
            self.out,
            "<rim:Classification id=\"{id}\" classificationScheme=\"{scheme}\" classifiedObject=\"{}\" \
             nodeRepresentation=\"{}\">",
            esc(object),
            esc(&code.code)
        );
        self.slot("codingScheme", std::slice::from_ref(&code.scheme));
        self.name(if code.display.is_empty() { &code.code } else { &code.display });
        self.out.push_str("</rim:Classification>\n");
    }

    fn author(&mut self, object: &str, scheme: &str, author: &Author) {
        let id = self.id("cl");
        let _ = writeln!(
            self.out,
            "<rim:Classification id=\"{id}\" classificationScheme=\"{scheme}\" classifiedObject=\"{}\" \
             nodeRepresentation=\"\">",
            esc(object)
        );
        self.slot("authorPerson", author.person.as_slice());
        self.slot("authorInstitution", &author.institutions);
        self.slot("authorRole", &author.roles);
        self.slot("authorSpecialty", &author.specialties);
        self.slot("authorTelecommunication", &author.telecoms);
        self.out.push_str("</rim:Classification>\n");
    }

    fn identifier(&mut self, object: &str, scheme: &str, value: &str, name: &str) {
        let id = self.id("ei");
        let _ = writeln!(
            self.out,
            "<rim:ExternalIdentifier id=\"{id}\" registryObject=\"{}\" identificationScheme=\"{scheme}\" value=\"{}\">",
            esc(object),
            esc(value)
        );
        self.name(name);
        self.out.push_str("</rim:ExternalIdentifier>\n");
    }

    fn document(&mut self, doc: &DocumentEntry) {
        let id = &doc.entry_uuid;
        let _ = writeln!(
            self.out,
            "<rim:ExtrinsicObject id=\"{}\" mimeType=\"{}\" objectType=\"{STABLE_DOCUMENT}\">",
            esc(id),
            esc(&doc.mime_type)
        );
        self.slot("creationTime", doc.creation_time.as_slice());
        self.slot("hash", std::slice::from_ref(&doc.hash));
        self.slot("languageCode", doc.language.as_slice());
        self.slot("size", &[doc.size.to_string()]);
        self.slot("sourcePatientId", doc.source_patient_id.as_slice());
        self.slot("URI", std::slice::from_ref(&doc.uri));
        if let Some(title) = &doc.title {
            self.name(title);
        }
        for author in &doc.authors {
            self.author(id, DOC_AUTHOR, author);
        }
        let codes = [
            (DOC_CLASS_CODE, &doc.class_code),
            (DOC_FORMAT_CODE, &doc.format_code),
            (DOC_FACILITY_TYPE_CODE, &doc.facility_type_code),
            (DOC_PRACTICE_SETTING_CODE, &doc.practice_setting_code),
            (DOC_TYPE_CODE, &doc.type_code),
        ];
        for (scheme, code) in codes {
            if let Some(code) = code {
                self.code(id, scheme, code);
            }
        }
        for code in &doc.confidentiality_codes {
            self.code(id, DOC_CONFIDENTIALITY_CODE, code);
        }
        if let Some(patient) = &doc.patient_id {
            self.identifier(id, DOC_PATIENT_ID, patient, "XDSDocumentEntry.patientId");
        }
        self.identifier(id, DOC_UNIQUE_ID, &doc.unique_id, "XDSDocumentEntry.uniqueId");
        self.out.push_str("</rim:ExtrinsicObject>\n");
    }

    fn submission_set(&mut self, set: &SubmissionSet) {
        let id = &set.entry_uuid;
        let _ = writeln!(self.out, "<rim:RegistryPackage id=\"{}\">", esc(id));
        self.slot("submissionTime", std::slice::from_ref(&set.submission_time));
        self.slot("intendedRecipient", &set.intended_recipients);
        for author in &set.authors {
            self.author(id, SET_AUTHOR, author);
        }
        if let Some(code) = &set.content_type_code {
            self.code(id, SET_CONTENT_TYPE_CODE, code);
        }
        self.identifier(id, SET_UNIQUE_ID, &set.unique_id, "XDSSubmissionSet.uniqueId");
        self.identifier(id, SET_SOURCE_ID, &set.source_id, "XDSSubmissionSet.sourceId");
        if let Some(patient) = &set.patient_id {
            self.identifier(id, SET_PATIENT_ID, patient, "XDSSubmissionSet.patientId");
        }
        self.out.push_str("</rim:RegistryPackage>\n");
    }
}
