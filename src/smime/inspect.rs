//! Describes an S/MIME message without keys: its layers, algorithms, recipients and signer.

use openssl::x509::X509;

use super::mime::{self, Entity};
use super::open::describe_recipients;
use super::structure::{self, ContentInfo};
use super::{oids, SmimeError};
use crate::pki;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Layer {
    pub kind: String,
    pub content_type: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<(String, String)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub layers: Vec<Layer>,
}

pub fn inspect(message: &[u8]) -> Result<Inspection, SmimeError> {
    let outer = Entity::parse(message);
    let mut layers = Vec::new();
    describe(&outer, &mut layers, 0)?;
    Ok(Inspection {
        from: outer.headers.get("from").map(str::to_string),
        to: outer.headers.get("to").map(str::to_string),
        subject: outer.headers.get("subject").map(str::to_string),
        message_id: outer.headers.get("message-id").map(str::to_string),
        layers,
    })
}

fn describe(entity: &Entity, layers: &mut Vec<Layer>, depth: usize) -> Result<(), SmimeError> {
    if depth > mime::MAX_NESTING {
        return Err(SmimeError::Malformed(format!("layers nested more than {} deep", mime::MAX_NESTING)));
    }
    let ct = entity.content_type();
    let content_type = entity.headers.get("content-type").unwrap_or("text/plain (default)").to_string();
    if ct.is("application/pkcs7-mime") || ct.is("application/x-pkcs7-mime") {
        let der = entity.decoded_body().map_err(SmimeError::Malformed)?;
        match structure::parse(&der)? {
            ContentInfo::Enveloped(e) => {
                let mut details = vec![("content encryption".to_string(), oids::name(&e.content_cipher))];
                for r in &e.recipients {
                    let alg = r.key_algorithm.as_deref().map(oids::name).unwrap_or_else(|| r.kind.to_string());
                    details.push((
                        "recipient".into(),
                        format!("{} via {alg}", describe_recipients(std::slice::from_ref(r))),
                    ));
                }
                let kind = if e.authenticated { "encrypted (AuthEnvelopedData)" } else { "encrypted (EnvelopedData)" };
                layers.push(Layer { kind: kind.into(), content_type, details });
                layers.push(Layer {
                    kind: "opaque".into(),
                    content_type: "(encrypted content: needs the recipient's key)".into(),
                    details: vec![],
                });
            }
            ContentInfo::Signed(s) => {
                layers.push(Layer {
                    kind: "signed (opaque SignedData)".into(),
                    content_type,
                    details: signed_details(&s),
                });
            }
            ContentInfo::Other(oid) => {
                layers.push(Layer { kind: format!("CMS {oid}"), content_type, details: vec![] });
            }
        }
        return Ok(());
    }
    if ct.is("multipart/signed") {
        let boundary = ct.param("boundary").unwrap_or("");
        let parts = mime::multipart_parts(entity.body, boundary).map_err(SmimeError::Malformed)?;
        let mut details = vec![
            ("protocol".to_string(), ct.param("protocol").unwrap_or("(none)").to_string()),
            ("micalg".to_string(), ct.param("micalg").unwrap_or("(none)").to_string()),
            ("parts".to_string(), parts.len().to_string()),
        ];
        if let Some(sig) = parts.get(1) {
            let sig = Entity::parse(sig);
            if let Ok(der) = sig.decoded_body() {
                if let Ok(ContentInfo::Signed(s)) = structure::parse(&der) {
                    details.extend(signed_details(&s));
                }
            }
        }
        layers.push(Layer { kind: "signed (multipart/signed, detached)".into(), content_type, details });
        if let Some(first) = parts.first() {
            describe(&Entity::parse(first), layers, depth + 1)?;
        }
        return Ok(());
    }
    if ct.is("message/rfc822") {
        let inner = Entity::parse(entity.body);
        let mut details = Vec::new();
        for name in ["From", "To", "Subject", "Date", "Message-ID"] {
            if let Some(v) = inner.headers.get(name) {
                details.push((name.to_string(), v.to_string()));
            }
        }
        layers.push(Layer { kind: "wrapped message (message/rfc822)".into(), content_type, details });
        return describe(&inner, layers, depth + 1);
    }
    layers.push(Layer {
        kind: "content".into(),
        content_type,
        details: vec![("size".into(), format!("{} bytes", entity.body.len()))],
    });
    Ok(())
}

fn signed_details(s: &structure::Signed) -> Vec<(String, String)> {
    let mut details = Vec::new();
    for signer in &s.signers {
        details.push(("digest".into(), oids::name(&signer.digest)));
        details.push(("signature algorithm".into(), oids::name(&signer.signature_algorithm)));
    }
    for der in &s.certificates {
        if let Ok(cert) = X509::from_der(der) {
            details.push((
                "certificate".into(),
                format!(
                    "{} (issuer {}; sha256 {})",
                    pki::name_line(cert.subject_name()),
                    pki::name_line(cert.issuer_name()),
                    pki::fingerprint(&cert)
                ),
            ));
        }
    }
    details
}
