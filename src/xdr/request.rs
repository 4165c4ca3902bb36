//! Reading an ITI-41 request: the MTOM package (multipart/related, the root part the SOAP
//! envelope as application/xop+xml, each document a part its xop:Include names by Content-ID) or
//! a plain SOAP envelope with the documents inline in base64; the envelope without DTD and within
//! node limits; the WS-Addressing Action; the Direct addressBlock; the metadata as XDS reads it;
//! each document matched to its DocumentEntry.

use std::collections::HashMap;

use base64::Engine;
use roxmltree::{Document, Node, ParsingOptions};

use super::{codes, email_of, Refusal, Submission, ACTION, DIRECT, SOAP11, SOAP12, WSA, XDSB, XOP};
use crate::smime::mime::{self, ContentType, Entity};
use crate::xdm::metadata::{self, Require};
use crate::xdm::DocumentEntry;

/// The SOAP envelope may be at most this large (its documents travel beside it with MTOM).
const MAX_ENVELOPE: usize = 32 << 20;
const MAX_NODES: u32 = 500_000;
/// At most this many MIME parts.
const MAX_PARTS: usize = 1001;

/// Reads a request whose HTTP Content-Type is `content_type` and body `body`.
pub(crate) fn read(content_type: &str, body: &[u8]) -> Result<Submission, Refusal> {
    let ct = ContentType::parse(content_type);
    let (envelope, parts) = if ct.is("multipart/related") {
        mtom(&ct, body)?
    } else if ct.is("application/soap+xml") {
        (body.to_vec(), HashMap::new())
    } else if ct.is("text/xml") {
        return Err(Refusal::Fault {
            subcode: Some("env:VersionMismatch"),
            reason: "text/xml is SOAP 1.1; ITI-41 is SOAP 1.2 (application/soap+xml), with MTOM".into(),
        });
    } else {
        return Err(Refusal::fault(format!("a Content-Type of {:?} is not SOAP 1.2 or MTOM", ct.mime_type)));
    };
    envelope_of(&envelope, &parts)
}

/// MIME parts by Content-ID (without its angle brackets).
type Parts = HashMap<String, Vec<u8>>;

/// The root part and the other parts.
fn mtom(ct: &ContentType, body: &[u8]) -> Result<(Vec<u8>, Parts), Refusal> {
    if ct.param("type").is_some_and(|t| !t.eq_ignore_ascii_case("application/xop+xml")) {
        return Err(Refusal::fault("an MTOM package's type is application/xop+xml"));
    }
    let boundary = ct
        .param("boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Refusal::fault("multipart/related without a boundary"))?;
    let parts =
        mime::multipart_parts(body, boundary).map_err(|e| Refusal::fault(format!("malformed MTOM package: {e}")))?;
    if parts.is_empty() || parts.len() > MAX_PARTS {
        return Err(Refusal::fault(format!("an MTOM package of 1 to {MAX_PARTS} parts")));
    }
    let start = ct.param("start").map(|s| s.trim().trim_start_matches('<').trim_end_matches('>').to_string());
    let mut root = None;
    let mut others = HashMap::new();
    for (i, raw) in parts.iter().enumerate() {
        let part = Entity::parse(raw);
        let id =
            part.headers.get("content-id").map(|v| v.trim().trim_start_matches('<').trim_end_matches('>').to_string());
        let content =
            part.decoded_body().map_err(|e| Refusal::fault(format!("MTOM part {}: {e}", i + 1)))?.into_owned();
        let is_root = match (&start, &id) {
            (Some(start), Some(id)) => start == id,
            (Some(_), None) => false,
            (None, _) => i == 0,
        };
        if is_root {
            if !part.content_type().is("application/xop+xml") {
                return Err(Refusal::fault("the MTOM root part is not application/xop+xml"));
            }
            root = Some(content);
        } else if let Some(id) = id {
            if others.insert(id.clone(), content).is_some() {
                return Err(Refusal::fault(format!("two MTOM parts with Content-ID {id}")));
            }
        }
    }
    let root = root.ok_or_else(|| Refusal::fault("no MTOM root part (the start parameter names none)"))?;
    Ok((root, others))
}

fn envelope_of(bytes: &[u8], parts: &Parts) -> Result<Submission, Refusal> {
    if bytes.len() > MAX_ENVELOPE {
        return Err(Refusal::fault(format!("a SOAP envelope larger than {} MiB", MAX_ENVELOPE >> 20)));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Refusal::fault("the SOAP envelope is not UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES };
    let doc = Document::parse_with_options(text, options).map_err(|e| match e {
        // SOAP 1.2 Part 1 §5: a SOAP message has no document type declaration.
        roxmltree::Error::DtdDetected => Refusal::fault("the SOAP message has a DTD, which SOAP forbids"),
        roxmltree::Error::NodesLimitReached => Refusal::fault("the SOAP envelope has too many XML nodes"),
        e => Refusal::fault(format!("the SOAP envelope is not well-formed XML: {e}")),
    })?;
    let root = doc.root_element();
    if root.has_tag_name((SOAP11, "Envelope")) {
        return Err(Refusal::Fault { subcode: Some("env:VersionMismatch"), reason: "a SOAP 1.1 envelope".into() });
    }
    if !root.has_tag_name((SOAP12, "Envelope")) {
        return Err(Refusal::fault("the root is not a SOAP 1.2 Envelope"));
    }
    let header =
        child(root, SOAP12, "Header").ok_or_else(|| Refusal::fault("no SOAP Header (WS-Addressing is required)"))?;
    let action = child(header, WSA, "Action").and_then(|a| a.text()).map(str::trim).unwrap_or("");
    if action != ACTION {
        return Err(Refusal::Fault {
            subcode: Some("wsa:ActionNotSupported"),
            reason: format!("the action {action:?} is not {ACTION}"),
        });
    }
    let message_id = child(header, WSA, "MessageID").and_then(|m| m.text()).map(|t| t.trim().to_string());
    let block = child(header, DIRECT, "addressBlock");
    let block_from = block.and_then(|b| child(b, DIRECT, "from")).and_then(|f| f.text()).and_then(email_of);
    let block_to: Vec<String> = block
        .map(|b| {
            b.children()
                .filter(|n| n.has_tag_name((DIRECT, "to")))
                .filter_map(|t| t.text().and_then(email_of))
                .collect()
        })
        .unwrap_or_default();
    let body = child(root, SOAP12, "Body").ok_or_else(|| Refusal::fault("no SOAP Body"))?;
    let request = child(body, XDSB, "ProvideAndRegisterDocumentSetRequest")
        .ok_or_else(|| Refusal::fault("the Body is not an xdsb:ProvideAndRegisterDocumentSetRequest"))?;
    let submit = request
        .children()
        .find(Node::is_element)
        .filter(|n| n.tag_name().name() == "SubmitObjectsRequest")
        .ok_or_else(|| Refusal::registry(codes::REGISTRY_METADATA_ERROR, "no lcm:SubmitObjectsRequest"))?;
    let metadata = metadata::from_request(submit, Require::Xdr)
        .map_err(|e| Refusal::registry(codes::REGISTRY_METADATA_ERROR, e))?;
    let mut contents: HashMap<&str, Vec<u8>> = HashMap::new();
    for document in request.children().filter(|n| n.has_tag_name((XDSB, "Document"))) {
        let id = document.attribute("id").ok_or_else(|| Refusal::fault("an xdsb:Document without an id"))?;
        let content = match child(document, XOP, "Include") {
            Some(include) => {
                let href = include.attribute("href").unwrap_or("");
                let cid = href
                    .strip_prefix("cid:")
                    .ok_or_else(|| Refusal::fault(format!("xop:Include href {href:?} is not a cid: URL")))?;
                // RFC 2392: a cid URL is the Content-ID %-encoded.
                let cid = percent_encoding::percent_decode_str(cid).decode_utf8_lossy();
                parts.get(cid.as_ref()).cloned().ok_or_else(|| {
                    Refusal::fault(format!("xop:Include names {href:?}, which is not a part of the package"))
                })?
            }
            None => {
                let text: String = document.text().unwrap_or("").chars().filter(|c| !c.is_ascii_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| Refusal::fault(format!("document {id:?} is neither an xop:Include nor base64: {e}")))?
            }
        };
        if contents.insert(id, content).is_some() {
            return Err(Refusal::fault(format!("document {id:?} appears twice")));
        }
    }
    let mut documents = Vec::new();
    for entry in metadata.documents {
        let content = contents.remove(entry.entry_uuid.as_str()).ok_or_else(|| {
            Refusal::registry(codes::MISSING_DOCUMENT, format!("no document for DocumentEntry {:?}", entry.entry_uuid))
        })?;
        documents.push((checked(entry, &content)?, content));
    }
    if let Some(id) = contents.keys().next() {
        return Err(Refusal::registry(
            codes::MISSING_DOCUMENT_METADATA,
            format!("document {id:?} has no DocumentEntry"),
        ));
    }
    let set = metadata.submission_set;
    let from = block_from.or_else(|| set.authors.iter().flat_map(|a| &a.telecoms).find_map(|t| email_of(t)));
    let to: Vec<String> = if block_to.is_empty() {
        set.intended_recipients.iter().filter_map(|r| email_of(r)).collect()
    } else {
        block_to
    };
    let Some(from) = from else {
        let why = "no sender: no Direct addressBlock from, and no author telecommunication with an e-mail address";
        return Err(Refusal::registry(codes::REGISTRY_METADATA_ERROR, why));
    };
    if to.is_empty() {
        let why = "no recipient: no Direct addressBlock to, and no intendedRecipient with an e-mail address";
        return Err(Refusal::registry(codes::REGISTRY_METADATA_ERROR, why));
    }
    Ok(Submission { message_id, from, to, submission_set: set, documents })
}

/// The entry with the document's own size and hash; a size or hash the metadata gives must be
/// the document's.
fn checked(mut entry: DocumentEntry, content: &[u8]) -> Result<DocumentEntry, Refusal> {
    let size = content.len() as u64;
    let hash = crate::xdm::sha1_hex(content);
    if entry.size != 0 && entry.size != size {
        let why = format!("DocumentEntry {:?} says {} bytes, its document has {size}", entry.entry_uuid, entry.size);
        return Err(Refusal::registry(codes::REPOSITORY_METADATA_ERROR, why));
    }
    if !entry.hash.is_empty() && entry.hash != hash {
        let why = format!("DocumentEntry {:?} says SHA-1 {}, its document has {hash}", entry.entry_uuid, entry.hash);
        return Err(Refusal::registry(codes::REPOSITORY_METADATA_ERROR, why));
    }
    entry.size = size;
    entry.hash = hash;
    Ok(entry)
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name((ns, name)))
}
