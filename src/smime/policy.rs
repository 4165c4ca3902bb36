//! Which algorithms hisp sends and accepts (Applicability Statement for Secure Health Transport,
//! DirectTrust policy): AES content encryption, RSA key transport, SHA-256+ digests, RSA >= 2048
//! or ECDSA P-256/P-384 keys. Everything else is refused with the weakness named.

use openssl::nid::Nid;
use openssl::pkey::{Id, PKeyRef, Public};
use serde::Deserialize;

use super::{oids, SmimeError};

pub(crate) use crate::pki::MIN_RSA_BITS;

/// Content encryption for messages we seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, clap::ValueEnum)]
pub enum ContentCipher {
    #[default]
    #[serde(rename = "aes-256-cbc")]
    #[value(name = "aes-256-cbc")]
    Aes256Cbc,
    #[serde(rename = "aes-128-cbc")]
    #[value(name = "aes-128-cbc")]
    Aes128Cbc,
}

impl ContentCipher {
    pub fn openssl(self) -> openssl::symm::Cipher {
        match self {
            ContentCipher::Aes256Cbc => openssl::symm::Cipher::aes_256_cbc(),
            ContentCipher::Aes128Cbc => openssl::symm::Cipher::aes_128_cbc(),
        }
    }
}

/// RSA key transport for messages we seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, clap::ValueEnum)]
pub enum KeyTransport {
    #[default]
    #[serde(rename = "rsa-pkcs1")]
    #[value(name = "rsa-pkcs1")]
    RsaPkcs1,
    #[serde(rename = "rsa-oaep")]
    #[value(name = "rsa-oaep")]
    RsaOaep,
}

/// Content encryption algorithms we accept on receive.
pub(crate) fn check_content_cipher(oid: &str) -> Result<String, SmimeError> {
    match oid {
        "2.16.840.1.101.3.4.1.2"
        | "2.16.840.1.101.3.4.1.22"
        | "2.16.840.1.101.3.4.1.42"
        | "2.16.840.1.101.3.4.1.6"
        | "2.16.840.1.101.3.4.1.26"
        | "2.16.840.1.101.3.4.1.46" => Ok(oids::name(oid)),
        "1.2.840.113549.3.7" | "1.2.840.113549.3.2" | "1.3.14.3.2.7" => Err(SmimeError::WeakCipher(oids::name(oid))),
        other => Err(SmimeError::Unsupported(format!("content encryption algorithm {}", oids::name(other)))),
    }
}

pub(crate) fn check_key_transport(oid: &str) -> Result<String, SmimeError> {
    match oid {
        oids::RSA_ENCRYPTION | oids::RSAES_OAEP => Ok(oids::name(oid)),
        other => Err(SmimeError::Unsupported(format!("key transport algorithm {}", oids::name(other)))),
    }
}

/// Digest algorithms we accept on signatures: SHA-256 or stronger.
pub(crate) fn check_digest(oid: &str) -> Result<String, SmimeError> {
    match oid {
        "2.16.840.1.101.3.4.2.1" | "2.16.840.1.101.3.4.2.2" | "2.16.840.1.101.3.4.2.3" => Ok(oids::name(oid)),
        "1.2.840.113549.2.5"
        | "1.3.14.3.2.26"
        | "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.10045.4.1" => Err(SmimeError::WeakDigest(oids::name(oid))),
        other => Err(SmimeError::Unsupported(format!("digest algorithm {}", oids::name(other)))),
    }
}

/// Signature algorithms: RSA (PKCS#1 v1.5 or PSS) or ECDSA with SHA-256+; the digest is checked apart.
pub(crate) fn check_signature_algorithm(oid: &str) -> Result<String, SmimeError> {
    match oid {
        oids::RSA_ENCRYPTION
        | "1.2.840.113549.1.1.11"
        | "1.2.840.113549.1.1.12"
        | "1.2.840.113549.1.1.13"
        | "1.2.840.113549.1.1.10"
        | "1.2.840.10045.2.1"
        | "1.2.840.10045.4.3.2"
        | "1.2.840.10045.4.3.3"
        | "1.2.840.10045.4.3.4" => Ok(oids::name(oid)),
        "1.2.840.113549.1.1.4" | "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" => {
            Err(SmimeError::WeakDigest(oids::name(oid)))
        }
        other => Err(SmimeError::Unsupported(format!("signature algorithm {}", oids::name(other)))),
    }
}

/// What a key is, if policy allows it: RSA >= 2048 bits; for signatures also ECDSA P-256/P-384.
pub(crate) fn check_key(key: &PKeyRef<Public>, whose: &str, for_encryption: bool) -> Result<String, SmimeError> {
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if bits < MIN_RSA_BITS {
                return Err(SmimeError::KeyTooShort { whose: whose.to_string(), bits });
            }
            Ok(format!("RSA-{bits}"))
        }
        Id::EC if !for_encryption => {
            let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1) => Ok("ECDSA P-256".into()),
                Some(Nid::SECP384R1) => Ok("ECDSA P-384".into()),
                _ => Err(SmimeError::Unsupported(format!("{whose} has an EC key on a curve other than P-256/P-384"))),
            }
        }
        Id::EC => Err(SmimeError::Unsupported(format!("{whose} has an EC key; Direct key transport needs RSA"))),
        _ => Err(SmimeError::Unsupported(format!("{whose} has a key type Direct does not use"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_algorithms_are_named_in_the_refusal() {
        assert!(
            matches!(check_content_cipher("1.2.840.113549.3.7"), Err(SmimeError::WeakCipher(n)) if n.contains("3DES"))
        );
        assert!(
            matches!(check_content_cipher("1.2.840.113549.3.2"), Err(SmimeError::WeakCipher(n)) if n.contains("RC2"))
        );
        assert!(matches!(check_digest("1.3.14.3.2.26"), Err(SmimeError::WeakDigest(n)) if n == "SHA-1"));
        assert!(matches!(check_digest("1.2.840.113549.2.5"), Err(SmimeError::WeakDigest(n)) if n == "MD5"));
        assert_eq!(check_content_cipher("2.16.840.1.101.3.4.1.46").unwrap(), "AES-256-GCM");
        assert_eq!(check_digest("2.16.840.1.101.3.4.2.1").unwrap(), "SHA-256");
        assert!(check_digest("2.16.840.1.101.3.4.2.4").is_err(), "SHA-224 is below SHA-256");
    }
}
