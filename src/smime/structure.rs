//! What a CMS ContentInfo says about itself (RFC 5652, RFC 5083): content type, recipients,
//! algorithms, signers and carried certificates. Read before any key is used, so policy can refuse
//! a message with a specific reason, and `inspect` can describe one without keys.

use super::oids;
use crate::der::{self, DerError, Reader, Tlv, INTEGER, OCTET_STRING, SEQUENCE, SET};

const NULL: u8 = 0x05;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientId {
    IssuerSerial { issuer_der: Vec<u8>, serial: Vec<u8> },
    SubjectKeyId(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Recipient {
    /// "ktri", "kari", "kekri", "pwri" or "ori" (RFC 5652 §6.2).
    pub kind: &'static str,
    pub id: Option<RecipientId>,
    pub key_algorithm: Option<String>,
    /// The encrypted content-encryption key (ktri only).
    pub encrypted_key: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Enveloped {
    /// True for AuthEnvelopedData (AES-GCM).
    pub authenticated: bool,
    pub content_cipher: String,
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Clone)]
pub struct Signer {
    pub id: Option<RecipientId>,
    pub digest: String,
    /// The signedAttrs element as received ([0] IMPLICIT SET OF Attribute), if present.
    pub signed_attrs: Option<Vec<u8>>,
    pub signature_algorithm: String,
    /// The signatureAlgorithm's parameters as received (RSASSA-PSS carries its hash and salt here).
    pub signature_parameters: Option<Vec<u8>>,
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Signed {
    pub digests: Vec<String>,
    /// eContentType of the encapsulated content.
    pub content_type: String,
    /// The encapsulated content (None when the signature is detached).
    pub content: Option<Vec<u8>>,
    pub certificates: Vec<Vec<u8>>,
    pub signers: Vec<Signer>,
}

#[derive(Debug, Clone)]
pub enum ContentInfo {
    Enveloped(Enveloped),
    Signed(Signed),
    Other(String),
}

pub fn parse(ber: &[u8]) -> Result<ContentInfo, DerError> {
    let (content_type, content) = content_info(ber)?;
    Ok(match content_type.as_str() {
        oids::ENVELOPED_DATA => ContentInfo::Enveloped(enveloped(content, false)?),
        oids::AUTH_ENVELOPED_DATA => ContentInfo::Enveloped(enveloped(content, true)?),
        oids::SIGNED_DATA => ContentInfo::Signed(signed(content)?),
        other => ContentInfo::Other(other.to_string()),
    })
}

/// A ContentInfo's contentType and its content (inside the [0] EXPLICIT wrapper).
fn content_info(ber: &[u8]) -> Result<(String, Tlv<'_>), DerError> {
    let top = der::parse(ber)?.expect(SEQUENCE, "ContentInfo is not a SEQUENCE")?;
    let mut fields = top.children();
    let content_type = fields.required("ContentInfo has no contentType")?.oid()?;
    let wrapper = fields.required("ContentInfo has no content")?;
    if wrapper.context() != Some(0) {
        return Err(DerError("ContentInfo content is not [0]"));
    }
    Ok((content_type, wrapper.children().required("ContentInfo content is empty")?))
}

fn algorithm(tlv: Tlv) -> Result<String, DerError> {
    algorithm_with_parameters(tlv).map(|(oid, _)| oid)
}

/// An AlgorithmIdentifier (RFC 5280 §4.1.1.2): its OID and its parameters, one whole element or
/// none (a NULL with nothing in it), and nothing after them.
fn algorithm_with_parameters(tlv: Tlv) -> Result<(String, Option<Tlv>), DerError> {
    let mut f = tlv.expect(SEQUENCE, "AlgorithmIdentifier is not a SEQUENCE")?.children();
    let oid = f.required("empty AlgorithmIdentifier")?.oid()?;
    let parameters = f.read()?;
    f.end("AlgorithmIdentifier has more than its parameters")?;
    if parameters.is_some_and(|p| p.tag == NULL && !p.content.is_empty()) {
        return Err(DerError("a NULL with contents"));
    }
    Ok((oid, parameters))
}

fn identifier(tlv: Tlv) -> Result<RecipientId, DerError> {
    if tlv.tag == SEQUENCE {
        let mut f = tlv.children();
        let issuer = f.required("IssuerAndSerialNumber has no issuer")?;
        let serial = f.required("IssuerAndSerialNumber has no serial")?.expect(INTEGER, "serial is not an INTEGER")?;
        Ok(RecipientId::IssuerSerial { issuer_der: issuer.raw.to_vec(), serial: serial.unsigned()?.to_vec() })
    } else if tlv.context() == Some(0) {
        // [0] IMPLICIT SubjectKeyIdentifier (an OCTET STRING).
        Ok(RecipientId::SubjectKeyId(tlv.octets()?))
    } else {
        Err(DerError("unknown identifier form"))
    }
}

fn enveloped(tlv: Tlv, authenticated: bool) -> Result<Enveloped, DerError> {
    let (infos, mut e) = enveloped_fields(tlv)?;
    let mut recipients = Vec::new();
    let mut each = infos.children();
    while let Some(info) = each.read()? {
        recipients.push(recipient(info)?);
    }
    let content_cipher = algorithm(e.required("encryptedContentInfo has no algorithm")?)?;
    Ok(Enveloped { authenticated, content_cipher, recipients })
}

/// An EnvelopedData's recipientInfos SET, and the fields of its encryptedContentInfo after the
/// content type (version and originatorInfo checked and skipped).
fn enveloped_fields(tlv: Tlv) -> Result<(Tlv, Reader), DerError> {
    let mut f = tlv.expect(SEQUENCE, "EnvelopedData is not a SEQUENCE")?.children();
    f.required("EnvelopedData has no version")?.expect(INTEGER, "EnvelopedData version")?;
    let mut infos = f.required("EnvelopedData has no recipientInfos")?;
    if infos.context() == Some(0) {
        infos = f.required("EnvelopedData has no recipientInfos")?; // skip originatorInfo
    }
    let infos = infos.expect(SET, "recipientInfos is not a SET")?;
    let eci = f.required("EnvelopedData has no encryptedContentInfo")?.expect(SEQUENCE, "encryptedContentInfo")?;
    let mut e = eci.children();
    // What S/MIME encrypts is a MIME entity: id-data (RFC 8551 §3.3), nothing else.
    if e.required("encryptedContentInfo has no contentType")?.oid()? != oids::DATA {
        return Err(DerError("the encrypted content is not id-data"));
    }
    Ok((infos, e))
}

/// The encrypted content of an EnvelopedData: the content-encryption algorithm's parameters (the
/// IV, for CBC) and the ciphertext, borrowed when it is one primitive OCTET STRING.
pub struct Ciphertext<'a> {
    pub parameters: Option<Tlv<'a>>,
    pub content: std::borrow::Cow<'a, [u8]>,
}

pub fn ciphertext(ber: &[u8]) -> Result<Ciphertext<'_>, DerError> {
    let (_, content) = content_info(ber)?;
    let (_, mut e) = enveloped_fields(content)?;
    let (_, parameters) = algorithm_with_parameters(e.required("encryptedContentInfo has no algorithm")?)?;
    let encrypted = e.required("encryptedContentInfo has no encryptedContent")?;
    if encrypted.context() != Some(0) {
        return Err(DerError("encryptedContent is not [0]"));
    }
    let content = if encrypted.is_constructed() {
        std::borrow::Cow::Owned(encrypted.octets()?)
    } else {
        std::borrow::Cow::Borrowed(encrypted.content)
    };
    Ok(Ciphertext { parameters, content })
}

fn recipient(info: Tlv) -> Result<Recipient, DerError> {
    let kind = match (info.tag, info.context()) {
        (SEQUENCE, _) => "ktri",
        (_, Some(1)) => "kari",
        (_, Some(2)) => "kekri",
        (_, Some(3)) => "pwri",
        (_, Some(4)) => "ori",
        _ => return Err(DerError("unknown RecipientInfo")),
    };
    if kind != "ktri" {
        return Ok(Recipient { kind, id: None, key_algorithm: None, encrypted_key: Vec::new() });
    }
    let mut f = info.children();
    f.required("KeyTransRecipientInfo has no version")?.expect(INTEGER, "ktri version")?;
    let id = identifier(f.required("KeyTransRecipientInfo has no rid")?)?;
    let key_algorithm = algorithm(f.required("KeyTransRecipientInfo has no algorithm")?)?;
    let encrypted_key = f.required("KeyTransRecipientInfo has no encryptedKey")?.expect_octets()?;
    f.end("KeyTransRecipientInfo has more than its fields")?;
    Ok(Recipient { kind, id: Some(id), key_algorithm: Some(key_algorithm), encrypted_key })
}

fn signed(tlv: Tlv) -> Result<Signed, DerError> {
    let mut f = tlv.expect(SEQUENCE, "SignedData is not a SEQUENCE")?.children();
    f.required("SignedData has no version")?.expect(INTEGER, "SignedData version")?;
    let mut digests = Vec::new();
    let mut algs = f.required("SignedData has no digestAlgorithms")?.expect(SET, "digestAlgorithms")?.children();
    while let Some(alg) = algs.read()? {
        digests.push(algorithm(alg)?);
    }
    let encap = f.required("SignedData has no encapContentInfo")?.expect(SEQUENCE, "encapContentInfo")?;
    let mut e = encap.children();
    let content_type = e.required("encapContentInfo has no eContentType")?.oid()?;
    let content = match e.read()? {
        Some(wrapper) if wrapper.context() == Some(0) => {
            Some(wrapper.children().required("eContent is empty")?.expect_octets()?)
        }
        Some(_) => return Err(DerError("eContent is not [0]")),
        None => None,
    };
    let mut certificates = Vec::new();
    let mut signers = Vec::new();
    while let Some(field) = f.read()? {
        match (field.tag, field.context()) {
            (_, Some(0)) => {
                let mut certs = field.children();
                while let Some(cert) = certs.read()? {
                    if cert.tag == SEQUENCE {
                        certificates.push(cert.raw.to_vec());
                    }
                }
            }
            (_, Some(1)) => {} // CRLs
            (SET, _) => {
                let mut infos = field.children();
                while let Some(info) = infos.read()? {
                    signers.push(signer(info)?);
                }
            }
            _ => return Err(DerError("unexpected field in SignedData")),
        }
    }
    Ok(Signed { digests, content_type, content, certificates, signers })
}

fn signer(info: Tlv) -> Result<Signer, DerError> {
    let mut f = info.expect(SEQUENCE, "SignerInfo is not a SEQUENCE")?.children();
    f.required("SignerInfo has no version")?.expect(INTEGER, "SignerInfo version")?;
    let id = identifier(f.required("SignerInfo has no sid")?).ok();
    let digest = algorithm(f.required("SignerInfo has no digestAlgorithm")?)?;
    let mut next = f.required("SignerInfo has no signatureAlgorithm")?;
    let mut signed_attrs = None;
    if next.context() == Some(0) {
        signed_attrs = Some(next.raw.to_vec());
        next = f.required("SignerInfo has no signatureAlgorithm")?;
    }
    let (signature_algorithm, parameters) = algorithm_with_parameters(next)?;
    let signature_parameters = parameters.filter(|p| p.tag != NULL).map(|p| p.raw.to_vec());
    let signature = f.required("SignerInfo has no signature")?.expect_octets()?;
    if f.read()?.is_some_and(|unsigned| unsigned.context() != Some(1)) {
        return Err(DerError("SignerInfo has more than its fields"));
    }
    f.end("SignerInfo has more than its fields")?;
    Ok(Signer { id, digest, signed_attrs, signature_algorithm, signature_parameters, signature })
}

impl Tlv<'_> {
    /// The bytes of an OCTET STRING (primitive or constructed).
    fn expect_octets(self) -> Result<Vec<u8>, DerError> {
        if self.tag & !0x20 != OCTET_STRING {
            return Err(DerError("expected an OCTET STRING"));
        }
        self.octets()
    }
}
