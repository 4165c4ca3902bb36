//! The DigestInfo of RSASSA-PKCS1-v1_5 (RFC 8017 §9.2, note 1): the fixed DER prefix naming the
//! hash, then the hash. Signing and verifying build it themselves and use the raw RSA operation
//! with PKCS#1 type-1 padding, which skips OpenSSL 3.0's per-call provider set-up (a few µs per
//! message beside the RSA operation).

use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;

const SHA256: &[u8] =
    &[0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
const SHA384: &[u8] =
    &[0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30];
const SHA512: &[u8] =
    &[0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40];

/// DigestInfo { digestAlgorithm (with NULL parameters), digest } of `data`, for SHA-256/384/512.
pub fn of(md: MessageDigest, data: &[u8]) -> Option<Vec<u8>> {
    let prefix = match md.type_() {
        Nid::SHA256 => SHA256,
        Nid::SHA384 => SHA384,
        Nid::SHA512 => SHA512,
        _ => return None,
    };
    let digest = hash(md, data).ok()?;
    Some([prefix, &digest].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use openssl::rsa::{Padding, Rsa};
    use openssl::sign::Verifier;

    #[test]
    fn a_raw_pkcs1_signature_over_the_digest_info_is_a_standard_signature() {
        let rsa = Rsa::generate(2048).unwrap();
        for md in [MessageDigest::sha256(), MessageDigest::sha384(), MessageDigest::sha512()] {
            let info = of(md, b"signed attributes").unwrap();
            let mut signature = vec![0u8; rsa.size() as usize];
            let n = rsa.private_encrypt(&info, &mut signature, Padding::PKCS1).unwrap();
            let key = PKey::from_rsa(rsa.clone()).unwrap();
            let mut verifier = Verifier::new(md, &key).unwrap();
            verifier.update(b"signed attributes").unwrap();
            assert!(verifier.verify(&signature[..n]).unwrap(), "{:?}", md.type_());
        }
        assert!(of(MessageDigest::sha1(), b"x").is_none(), "SHA-1 is not offered");
    }
}
