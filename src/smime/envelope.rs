//! EnvelopedData (RFC 5652 §6) with AES-CBC content encryption and RSA PKCS#1 v1.5 key transport,
//! built directly: on OpenSSL 3.0 the generic CMS encoder spends about as long on provider look-ups
//! as on the two RSA public-key operations a Direct message needs. (RSA-OAEP goes through OpenSSL's
//! CMS, which encodes its parameters.)

use openssl::error::ErrorStack;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use openssl::x509::X509;

use crate::der::{self, INTEGER, OCTET_STRING, OID, SEQUENCE, SET};
use crate::wiped::Wiped;

const OID_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_ENVELOPED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
const OID_RSA_ENCRYPTION: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_AES128_CBC: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
const OID_AES256_CBC: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];

/// Encrypts `content` to each certificate (RSA keys; the caller checked the policy). Takes the
/// content so it is freed before the caller encodes the result (peak memory for large messages).
pub(super) fn encrypt_pkcs1(content: Vec<u8>, recipients: &[&X509], aes256: bool) -> Result<Vec<u8>, ErrorStack> {
    let (cipher, cipher_oid) =
        if aes256 { (Cipher::aes_256_cbc(), OID_AES256_CBC) } else { (Cipher::aes_128_cbc(), OID_AES128_CBC) };
    // Key and IV from one call to the RNG (each call costs about a microsecond on OpenSSL 3.0).
    let mut key = Wiped(vec![0u8; cipher.key_len() + 16]);
    openssl::rand::rand_bytes(&mut key.0)?;
    let iv: [u8; 16] = key.0[cipher.key_len()..].try_into().expect("16 bytes were drawn for the IV");
    key.0.truncate(cipher.key_len());

    let mut infos = Vec::with_capacity(recipients.len());
    for cert in recipients {
        infos.push(key_trans_recipient_info(cert, &key.0)?);
    }
    infos.sort(); // DER orders the members of a SET OF by their encodings

    // CBC with PKCS#7 padding always adds 1 to 16 bytes, so every length is known up front.
    let ciphertext_len = (content.len() / 16 + 1) * 16;
    let content_algorithm =
        der::encode(SEQUENCE, &[der::encode(OID, &cipher_oid), der::encode(OCTET_STRING, &iv)].concat());
    // encryptedContent [0] IMPLICIT OCTET STRING, primitive.
    let eci_prefix = [der::encode(OID, &OID_DATA), content_algorithm, der::header(0x80, ciphertext_len)].concat();
    let eci_header = der::header(SEQUENCE, eci_prefix.len() + ciphertext_len);
    let version = der::encode(INTEGER, &[0]);
    let recipient_infos = der::encode(SET, &infos.concat());
    let enveloped_len = version.len() + recipient_infos.len() + eci_header.len() + eci_prefix.len() + ciphertext_len;
    let enveloped_header = der::header(SEQUENCE, enveloped_len);
    let explicit_header = der::header(0xA0, enveloped_header.len() + enveloped_len);
    let oid = der::encode(OID, &OID_ENVELOPED_DATA);
    let total = oid.len() + explicit_header.len() + enveloped_header.len() + enveloped_len;

    let mut out = Vec::with_capacity(total + 8);
    out.extend_from_slice(&der::header(SEQUENCE, total));
    for part in [&oid, &explicit_header, &enveloped_header, &version, &recipient_infos, &eci_header, &eci_prefix] {
        out.extend_from_slice(part);
    }
    // Encrypt straight into the output: a large message's ciphertext is never copied.
    let start = out.len();
    out.resize(start + ciphertext_len + cipher.block_size(), 0);
    let mut crypter = Crypter::new(cipher, Mode::Encrypt, &key.0, Some(&iv))?;
    let mut n = crypter.update(&content, &mut out[start..])?;
    drop(content);
    n += crypter.finalize(&mut out[start + n..])?;
    debug_assert_eq!(n, ciphertext_len);
    out.truncate(start + n);
    Ok(out)
}

/// KeyTransRecipientInfo: version 0, issuerAndSerialNumber, rsaEncryption, the wrapped key.
fn key_trans_recipient_info(cert: &X509, key: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    // RSAES-PKCS1-v1_5 (RFC 8017 §7.2.1), padding and all, by OpenSSL.
    let rsa = cert.public_key()?.rsa()?;
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(key, &mut wrapped, Padding::PKCS1)?;
    wrapped.truncate(n);
    let serial = super::signed_data::positive(&cert.serial_number().to_bn()?.to_vec());
    let issuer_and_serial =
        der::encode(SEQUENCE, &[cert.issuer_name().to_der()?, der::encode(INTEGER, &serial)].concat());
    let algorithm = der::encode(SEQUENCE, &[der::encode(OID, &OID_RSA_ENCRYPTION), vec![0x05, 0x00]].concat());
    let fields = [der::encode(INTEGER, &[0]), issuer_and_serial, algorithm, der::encode(OCTET_STRING, &wrapped)];
    Ok(der::encode(SEQUENCE, &fields.concat()))
}
