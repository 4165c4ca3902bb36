//! Delivery to a recipient's EHR over XDR (`[[xdr.destinations]]`): the message's documents go
//! as an ITI-41 request, with mutual TLS, to the EHR's endpoint. An XDM package in the message
//! gives its documents with their metadata; otherwise each attachment (or the text, when there is
//! none) is described as `hisp xdm pack` describes it. A refusal by the endpoint is permanent; a
//! connection that fails, or a 5xx answer, is retried like any delivery.

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};

use crate::config::XdrDestination;
use crate::failure::{Code, Failure};
use crate::node::Shared;
use crate::smime::mime::Attachment;
use crate::xdm::compose::{self, File, Parties};
use crate::xdm::package::{self, Limits};
use crate::xdm::{Described, DocumentEntry};
use crate::xdr::soap;

pub(super) fn forward(
    shared: &Shared,
    destination: &XdrDestination,
    sender: &str,
    recipient: &str,
    original: &[u8],
    attachments: &[Attachment],
) -> Result<(), Failure> {
    let Described { set, documents } = documents(shared, sender, recipient, original, attachments)?;
    let tls =
        connector(destination).map_err(|e| Failure::local(format!("XDR client TLS for {}: {e}", destination.url)))?;
    let parts: Vec<(DocumentEntry, &[u8])> = documents.iter().map(|(e, c)| (e.clone(), c.as_slice())).collect();
    let (content_type, body) =
        soap::request(&compose::new_uuid(), &destination.url, sender, &[recipient.to_string()], &set, &parts);
    let timeout = std::time::Duration::from_secs(shared.config.xdr.timeout_secs);
    let (status, answer_type, answer) =
        crate::fetch::post_soap(&shared.resolver, &tls, &destination.url, &content_type, &body, timeout)
            .map_err(|e| Failure::temporary(Code::CONNECTION, format!("XDR: {e}")))?;
    let read = soap::read_response(&answer_type, &answer);
    match (status, read) {
        (200, Ok(())) => Ok(()),
        (500..=599, read) => Err(Failure::temporary(
            Code::CONNECTION,
            format!("XDR endpoint answered {status}: {}", read.err().unwrap_or_default()),
        )),
        (_, read) => Err(Failure::permanent(
            Code::OTHER,
            format!("XDR endpoint refused the documents ({status}): {}", read.err().unwrap_or_default()),
        )),
    }
}

/// The documents to send and their submission set.
fn documents(
    shared: &Shared,
    sender: &str,
    recipient: &str,
    original: &[u8],
    attachments: &[Attachment],
) -> Result<Described, Failure> {
    // A package the sender made: its own metadata.
    for attachment in attachments.iter().filter(|a| crate::xdm::is_zip(&a.content)) {
        if let Ok(read) = package::read(&attachment.content, Limits::default()) {
            let mut subsets = read.subsets.into_iter();
            let Some(first) = subsets.next() else { continue };
            let mut documents: Vec<(DocumentEntry, Vec<u8>)> =
                first.documents.into_iter().map(|d| (d.entry, d.content)).collect();
            documents.extend(subsets.flat_map(|s| s.documents).map(|d| (d.entry, d.content)));
            return Ok(Described { set: first.submission_set, documents });
        }
    }
    let text;
    let files: Vec<File> = if attachments.is_empty() {
        text = crate::smime::mime::first_text(original).unwrap_or_default();
        vec![File { filename: "message.txt", content_type: "text/plain", content: text.as_bytes() }]
    } else {
        attachments
            .iter()
            .map(|a| File { filename: &a.filename, content_type: &a.content_type, content: &a.content })
            .collect()
    };
    let source_oid = compose::oid_for(&shared.config.server.hostname);
    let recipients = [recipient.to_string()];
    let parties = Parties {
        sender,
        recipients: &recipients,
        source_oid: &source_oid,
        patient_id: None,
        now: shared.clock.unix_now(),
        // The same message forwarded again carries the same identifiers.
        seed: Some(original),
    };
    let (zip, set, _) = compose::package(&files, &parties).map_err(Failure::local)?;
    let read =
        package::read(&zip, Limits::default()).map_err(|e| Failure::local(format!("XDR: our own package: {e}")))?;
    let documents = read.subsets.into_iter().flat_map(|s| s.documents).map(|d| (d.entry, d.content)).collect();
    Ok(Described { set, documents })
}

/// TLS 1.2+ with our client certificate; the endpoint's certificate checked against its anchors
/// (or the system's) and its name.
fn connector(destination: &XdrDestination) -> Result<SslConnector, openssl::error::ErrorStack> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_certificate_chain_file(&destination.client_cert_file)?;
    b.set_private_key_file(&destination.client_key_file, SslFiletype::PEM)?;
    b.check_private_key()?;
    if let Some(anchors) = &destination.ca_file {
        b.set_ca_file(anchors)?;
    }
    b.set_verify(SslVerifyMode::PEER);
    Ok(b.build())
}
