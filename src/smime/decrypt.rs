//! Decrypting an EnvelopedData with one of our keys. The common Direct case (RSA PKCS#1 v1.5 key
//! transport, AES-CBC content) is done here directly from the parsed structure: OpenSSL 3.0's
//! `CMS_decrypt` re-parses the message and looks up providers on every call, which costs a sixth
//! of the RSA operation itself. Everything else (OAEP, AES-GCM, EC keys) goes through OpenSSL's
//! CMS.

use openssl::cms::CmsContentInfo;
use openssl::pkey::{Id, PKey, Private};
use openssl::rand::rand_bytes;
use openssl::rsa::Padding;
use openssl::symm::{self, Cipher};
use openssl::x509::X509;

use super::structure::{self, Enveloped, Recipient};
use super::{oids, SmimeError};
use crate::der::OCTET_STRING;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// The plaintext of `ber` (an EnvelopedData, already parsed as `enveloped`), using `recipient`'s
/// encrypted key and our `key`/`cert`.
pub(super) fn decrypt(
    ber: &[u8],
    enveloped: &Enveloped,
    recipient: &Recipient,
    key: &PKey<Private>,
    cert: &X509,
) -> Result<Vec<u8>, SmimeError> {
    let cipher = aes_cbc(&enveloped.content_cipher);
    let direct =
        !enveloped.authenticated && recipient.key_algorithm.as_deref() == Some(RSA_ENCRYPTION) && key.id() == Id::RSA;
    match cipher {
        Some(cipher) if direct => rsa_pkcs1_aes_cbc(ber, &recipient.encrypted_key, key, cipher),
        _ => {
            let cms = CmsContentInfo::from_der(ber).map_err(|e| SmimeError::Malformed(e.to_string()))?;
            cms.decrypt(key, cert).map_err(|_| SmimeError::DecryptFailed)
        }
    }
}

fn aes_cbc(oid: &str) -> Option<Cipher> {
    match oids::name(oid).as_str() {
        "AES-128-CBC" => Some(Cipher::aes_128_cbc()),
        "AES-192-CBC" => Some(Cipher::aes_192_cbc()),
        "AES-256-CBC" => Some(Cipher::aes_256_cbc()),
        _ => None,
    }
}

fn rsa_pkcs1_aes_cbc(
    ber: &[u8],
    encrypted_key: &[u8],
    key: &PKey<Private>,
    cipher: Cipher,
) -> Result<Vec<u8>, SmimeError> {
    let ciphertext = structure::ciphertext(ber)?;
    let iv = match ciphertext.parameters {
        Some(p) if p.tag == OCTET_STRING && p.content.len() == cipher.block_size() => p.content,
        _ => return Err(SmimeError::Malformed("the AES-CBC parameters are not a 16-byte IV".into())),
    };
    let cek = content_key(encrypted_key, key, cipher.key_len())?;
    symm::decrypt(cipher, &cek, Some(iv), &ciphertext.content).map_err(|_| SmimeError::DecryptFailed)
}

/// The content-encryption key, or a random one when the RSA block does not decrypt to a key of
/// the right length: a padding failure must look exactly like a wrong key (RFC 3218 §2.3.2, the
/// countermeasure to Bleichenbacher's attack), so both end in the same content decryption failure.
fn content_key(encrypted_key: &[u8], key: &PKey<Private>, key_len: usize) -> Result<Vec<u8>, SmimeError> {
    let rsa = key.rsa()?;
    let mut random = vec![0u8; key_len];
    rand_bytes(&mut random)?;
    let mut block = vec![0u8; rsa.size() as usize];
    let decrypted = rsa.private_decrypt(encrypted_key, &mut block, Padding::PKCS1);
    let good = u8::from(decrypted.is_ok_and(|n| n == key_len));
    let mask = good.wrapping_neg(); // 0xFF when good, 0x00 otherwise
    Ok(block[..key_len].iter().zip(&random).map(|(b, r)| (b & mask) | (r & !mask)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_key_block_yields_a_random_key_not_an_error() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let rsa = key.rsa().unwrap();
        let mut good = vec![0u8; 256];
        let n = rsa.public_encrypt(&[7u8; 32], &mut good, Padding::PKCS1).unwrap();
        assert_eq!(content_key(&good[..n], &key, 32).unwrap(), vec![7u8; 32]);
        // A 16-byte key where 32 are expected, and a block that is not PKCS#1 at all.
        let mut short = vec![0u8; 256];
        let n = rsa.public_encrypt(&[7u8; 16], &mut short, Padding::PKCS1).unwrap();
        let first = content_key(&short[..n], &key, 32).unwrap();
        let second = content_key(&[0x55; 256], &key, 32).unwrap();
        assert_eq!((first.len(), second.len()), (32, 32));
        assert_ne!(first, vec![7u8; 32]);
        assert_ne!(first, second, "each failure draws a fresh random key");
    }
}
