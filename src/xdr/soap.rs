//! The SOAP 1.2 messages this node writes for XDR: the answer to an ITI-41 request (a
//! RegistryResponse, or a fault), a request of its own in an MTOM package, and the reading of
//! the answer to that request.

use std::fmt::Write as _;

use roxmltree::{Document, ParsingOptions};

use super::{Refusal, RESPONSE_ACTION, RS, SOAP12, WSA, XOP};
use crate::ccda_view::escape as esc;
use crate::xdm::{metadata, DocumentEntry, SubmissionSet};

const SUCCESS: &str = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success";
const FAILURE: &str = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure";
const ERROR: &str = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error";
const FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";

fn envelope(action: &str, relates_to: Option<&str>, extra_headers: &str, body: &str) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{SOAP12}\" xmlns:wsa=\"{WSA}\">\
         <soap:Header><wsa:Action soap:mustUnderstand=\"1\">{}</wsa:Action>",
        esc(action)
    );
    if let Some(id) = relates_to {
        let _ = write!(out, "<wsa:RelatesTo>{}</wsa:RelatesTo>", esc(id));
    }
    let _ = writeln!(out, "{extra_headers}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>");
    out
}

/// The answer to an ITI-41 request: Success, or Failure with the registry error.
pub(crate) fn response(relates_to: Option<&str>, refused: Option<&Refusal>) -> String {
    let body = match refused {
        Some(Refusal::Registry { code, context }) => format!(
            "<rs:RegistryResponse xmlns:rs=\"{RS}\" status=\"{FAILURE}\"><rs:RegistryErrorList>\
             <rs:RegistryError errorCode=\"{code}\" codeContext=\"{}\" location=\"\" severity=\"{ERROR}\"/>\
             </rs:RegistryErrorList></rs:RegistryResponse>",
            esc(context)
        ),
        _ => format!("<rs:RegistryResponse xmlns:rs=\"{RS}\" status=\"{SUCCESS}\"/>"),
    };
    envelope(RESPONSE_ACTION, relates_to, "", &body)
}

/// A SOAP 1.2 fault: of the sender (env:Sender) with its subcode when there is one; or
/// env:VersionMismatch, or env:Receiver (our own trouble), given as the subcode.
pub(crate) fn fault(relates_to: Option<&str>, subcode: Option<&str>, reason: &str) -> String {
    let (code, subcode) = match subcode {
        Some("env:VersionMismatch") => ("soap:VersionMismatch", None),
        Some("env:Receiver") => ("soap:Receiver", None),
        other => ("soap:Sender", other),
    };
    let subcode = subcode
        .map(|s| format!("<soap:Subcode><soap:Value>{}</soap:Value></soap:Subcode>", esc(s)))
        .unwrap_or_default();
    let body = format!(
        // The subcodes named here are WS-Addressing's and WS-Security's.
        "<soap:Fault xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\
         <soap:Code><soap:Value>{code}</soap:Value>{subcode}</soap:Code>\
         <soap:Reason><soap:Text xml:lang=\"en\">{}</soap:Text></soap:Reason></soap:Fault>",
        esc(reason)
    );
    envelope(FAULT_ACTION, relates_to, "", &body)
}

/// `envelope` as the root of an MTOM package with `documents` (Content-ID, bytes) beside it: the
/// HTTP Content-Type and body.
pub(crate) fn mtom(envelope: &str, documents: &[(String, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("MIMEBoundary_{}", &crate::xdm::compose::new_uuid()[9..]);
    let mut body = Vec::new();
    let mut part = |headers: &str, content: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n\
         Content-Transfer-Encoding: binary\r\nContent-ID: <root.message@hisp>\r\n",
        envelope.as_bytes(),
    );
    for (id, content) in documents {
        let headers = format!(
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{id}>\r\n"
        );
        part(&headers, content);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = format!(
        "multipart/related; boundary=\"{boundary}\"; type=\"application/xop+xml\"; \
         start=\"<root.message@hisp>\"; start-info=\"application/soap+xml\""
    );
    (content_type, body)
}

/// An ITI-41 request of ours in an MTOM package: the Direct addressBlock (`from`, `to`), the
/// metadata, and each document as an xop:Include. The HTTP Content-Type and body.
pub(crate) fn request(
    message_id: &str,
    endpoint: &str,
    from: &str,
    to: &[String],
    set: &SubmissionSet,
    documents: &[(DocumentEntry, &[u8])],
) -> (String, Vec<u8>) {
    let entries: Vec<DocumentEntry> = documents.iter().map(|(e, _)| e.clone()).collect();
    let mut headers = format!(
        "<wsa:MessageID>{}</wsa:MessageID><wsa:To>{}</wsa:To>\
         <direct:metadata-level xmlns:direct=\"urn:direct:addressing\">XDS</direct:metadata-level>\
         <direct:addressBlock xmlns:direct=\"urn:direct:addressing\" soap:role=\"urn:direct:addressing:destination\" \
         soap:relay=\"true\"><direct:from>mailto:{}</direct:from>",
        esc(message_id),
        esc(endpoint),
        esc(from)
    );
    for recipient in to {
        let _ = write!(headers, "<direct:to>mailto:{}</direct:to>", esc(recipient));
    }
    headers.push_str("</direct:addressBlock>");
    let mut body = format!("<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb=\"{}\">", super::XDSB);
    body.push_str(&metadata::request(set, &entries));
    let mut parts = Vec::new();
    for (n, (entry, content)) in documents.iter().enumerate() {
        let id = format!("document{}@hisp", n + 1);
        let _ = write!(
            body,
            "<xdsb:Document id=\"{}\"><xop:Include xmlns:xop=\"{XOP}\" href=\"cid:{id}\"/></xdsb:Document>",
            esc(&entry.entry_uuid)
        );
        parts.push((id, *content));
    }
    body.push_str("</xdsb:ProvideAndRegisterDocumentSetRequest>");
    mtom(&envelope(super::ACTION, None, &headers, &body), &parts)
}

/// What an XDR endpoint answered to our request: Ok for Success (or PartialSuccess), else the
/// error codes and texts (or the fault's reason).
pub(crate) fn read_response(content_type: &str, body: &[u8]) -> Result<(), String> {
    let ct = crate::smime::mime::ContentType::parse(content_type);
    let envelope = if ct.is("multipart/related") {
        let boundary = ct.param("boundary").ok_or("multipart/related without a boundary")?;
        let parts = crate::smime::mime::multipart_parts(body, boundary)?;
        let first = parts.first().ok_or("an empty MTOM answer")?;
        crate::smime::mime::Entity::parse(first).decoded_body()?.into_owned()
    } else {
        body.to_vec()
    };
    let text = std::str::from_utf8(&envelope).map_err(|_| "the answer is not UTF-8")?;
    let options = ParsingOptions { allow_dtd: false, nodes_limit: 100_000 };
    let doc = Document::parse_with_options(text, options).map_err(|e| format!("the answer is not XML: {e}"))?;
    if let Some(fault) = doc.descendants().find(|n| n.has_tag_name((SOAP12, "Fault"))) {
        let reason: String = fault
            .descendants()
            .find(|n| n.has_tag_name((SOAP12, "Text")))
            .and_then(|t| t.text())
            .unwrap_or("(no reason)")
            .chars()
            .take(300)
            .collect();
        return Err(format!("SOAP fault: {reason}"));
    }
    let response = doc
        .descendants()
        .find(|n| n.has_tag_name((RS, "RegistryResponse")))
        .ok_or("the answer holds no rs:RegistryResponse")?;
    let status = response.attribute("status").unwrap_or("");
    if status == SUCCESS || status.ends_with(":PartialSuccess") {
        return Ok(());
    }
    let errors: Vec<String> = response
        .descendants()
        .filter(|n| n.has_tag_name((RS, "RegistryError")))
        .take(10)
        .map(|e| {
            let context: String = e.attribute("codeContext").unwrap_or("").chars().take(200).collect();
            format!("{} {context}", e.attribute("errorCode").unwrap_or("?"))
        })
        .collect();
    Err(format!("status {status}: {}", errors.join("; ")))
}
