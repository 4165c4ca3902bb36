//! Detached SignedData (RFC 5652 §5) with SHA-256, built directly. What depends only on the
//! signer (its issuerAndSerialNumber, the certificates carried, the algorithm identifiers) is
//! encoded once per identity; per message there is one digest and one signature.

use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::Signer;
use openssl::x509::X509;

use crate::der::{self, INTEGER, OCTET_STRING, OID, SEQUENCE, SET};

const OID_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_SIGNED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_RSA_ENCRYPTION: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ECDSA_SHA256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_CONTENT_TYPE: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_SIGNING_TIME: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];

/// The signer-dependent parts of a SignedData, encoded once.
#[derive(Clone)]
pub(super) struct SignerTemplate {
    digest_algorithms: Vec<u8>,
    certificates: Vec<u8>,
    issuer_and_serial: Vec<u8>,
    digest_algorithm: Vec<u8>,
    signature_algorithm: Vec<u8>,
}

impl SignerTemplate {
    pub(super) fn new(cert: &X509, key: &PKey<Private>, chain: &[X509]) -> Result<SignerTemplate, ErrorStack> {
        let digest_algorithm = der::encode(SEQUENCE, &der::encode(OID, &OID_SHA256)); // parameters absent (RFC 5754)
        let signature_algorithm = match key.id() {
            Id::EC => der::encode(SEQUENCE, &der::encode(OID, &OID_ECDSA_SHA256)),
            _ => der::encode(SEQUENCE, &[der::encode(OID, &OID_RSA_ENCRYPTION), vec![0x05, 0x00]].concat()),
        };
        let mut certs = cert.to_der()?;
        for c in chain {
            certs.extend(c.to_der()?);
        }
        let serial = positive(&cert.serial_number().to_bn()?.to_vec());
        Ok(SignerTemplate {
            digest_algorithms: der::encode(SET, &digest_algorithm),
            certificates: der::encode(0xA0, &certs),
            issuer_and_serial: der::encode(
                SEQUENCE,
                &[cert.issuer_name().to_der()?, der::encode(INTEGER, &serial)].concat(),
            ),
            digest_algorithm,
            signature_algorithm,
        })
    }

    /// A detached SignedData over `content` (taken as it is: the caller canonicalized it).
    pub(super) fn sign(&self, content: &[u8], key: &PKey<Private>, now: i64) -> Result<Vec<u8>, ErrorStack> {
        let digest = hash(MessageDigest::sha256(), content)?;
        let attribute = |oid: &[u8], value: Vec<u8>| {
            der::encode(SEQUENCE, &[der::encode(OID, oid), der::encode(SET, &value)].concat())
        };
        let mut attributes = [
            attribute(&OID_CONTENT_TYPE, der::encode(OID, &OID_DATA)),
            attribute(&OID_SIGNING_TIME, signing_time(now)),
            attribute(&OID_MESSAGE_DIGEST, der::encode(OCTET_STRING, &digest)),
        ];
        attributes.sort(); // DER orders the members of a SET OF by their encodings
        let attributes = attributes.concat();
        // The signature covers the attributes encoded as a SET; they travel as [0] IMPLICIT.
        let signed_attributes = der::encode(SET, &attributes);
        // Hashing, encoding and padding are OpenSSL's (EVP_DigestSign).
        let mut signer = Signer::new(MessageDigest::sha256(), key)?;
        if key.id() == Id::RSA {
            signer.set_rsa_padding(Padding::PKCS1)?;
        }
        signer.update(&signed_attributes)?;
        let signature = signer.sign_to_vec()?;

        let signer_info = der::encode(
            SEQUENCE,
            &[
                der::encode(INTEGER, &[1]),
                self.issuer_and_serial.clone(),
                self.digest_algorithm.clone(),
                der::encode(0xA0, &attributes),
                self.signature_algorithm.clone(),
                der::encode(OCTET_STRING, &signature),
            ]
            .concat(),
        );
        let signed_data = der::encode(
            SEQUENCE,
            &[
                der::encode(INTEGER, &[1]),
                self.digest_algorithms.clone(),
                der::encode(SEQUENCE, &der::encode(OID, &OID_DATA)),
                self.certificates.clone(),
                der::encode(SET, &signer_info),
            ]
            .concat(),
        );
        Ok(der::encode(SEQUENCE, &[der::encode(OID, &OID_SIGNED_DATA), der::encode(0xA0, &signed_data)].concat()))
    }
}

/// signingTime as UTCTime (RFC 5652 §11.3: UTCTime for 1950 through 2049, else GeneralizedTime).
fn signing_time(now: i64) -> Vec<u8> {
    let iso = crate::clock::iso8601(now); // 2026-11-23T14:03:46Z
    let digits: String = iso.chars().filter(|c| c.is_ascii_digit()).collect(); // 20261123140346
    let year: i64 = digits[..4].parse().unwrap_or(0);
    if (1950..2050).contains(&year) {
        der::encode(0x17, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        der::encode(0x18, format!("{digits}Z").as_bytes())
    }
}

/// An INTEGER's content octets for a non-negative magnitude (a leading 0 keeps it positive).
pub(super) fn positive(magnitude: &[u8]) -> Vec<u8> {
    match magnitude.first() {
        None => vec![0],
        Some(b) if b & 0x80 != 0 => [&[0u8][..], magnitude].concat(),
        Some(_) => magnitude.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_time_uses_utctime_until_2049() {
        assert_eq!(signing_time(1_795_442_626), der::encode(0x17, b"261123140346Z"));
        assert_eq!(signing_time(2_556_144_000)[0], 0x18, "2051 needs GeneralizedTime");
    }
}
