//! The DirectTrust end-entity profile as far as it decides what a peer's certificate may be used
//! for (DirectTrust Certificate Policy; RFC 5280 §4.2.1.3, §4.2.1.9, §4.2.1.12): not a CA; a
//! keyUsage, when present, that allows the use (digitalSignature to sign, keyEncipherment to
//! receive a content key); an extendedKeyUsage, when present, that includes emailProtection or
//! anyExtendedKeyUsage. A TLS server certificate or a CA's own certificate signs no Direct mail.

use foreign_types::ForeignTypeRef;
use openssl::x509::{X509ExtendedKeyUsage, X509KeyUsage, X509Ref};

/// What the certificate is to be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Its key signed a message we received.
    Signing,
    /// A message is to be encrypted to it.
    Encryption,
}

/// Why `cert` may not be used for `purpose`, or Ok.
pub(crate) fn check(cert: &X509Ref, purpose: Use) -> Result<(), String> {
    // SAFETY: reads the extension flags of a certificate we hold a reference to (OpenSSL caches
    // them on first use; the call is thread-safe).
    let flags = unsafe { openssl_sys::X509_get_extension_flags(cert.as_ptr() as *mut _) };
    if flags & openssl_sys::EXFLAG_INVALID != 0 {
        return Err("its extensions cannot be decoded".into());
    }
    if flags & openssl_sys::EXFLAG_CA != 0 {
        return Err("it is a CA certificate (basicConstraints CA:TRUE), not an end entity".into());
    }
    if let Some(usage) = cert.key_usage() {
        let (needed, name) = match purpose {
            Use::Signing => (X509KeyUsage::DIGITAL_SIGNATURE, "digitalSignature"),
            Use::Encryption => (X509KeyUsage::KEY_ENCIPHERMENT, "keyEncipherment"),
        };
        if !usage.contains(needed) {
            return Err(format!("its keyUsage does not include {name}"));
        }
    }
    if let Some(extended) = cert.extended_key_usage() {
        if !extended.intersects(X509ExtendedKeyUsage::SMIME | X509ExtendedKeyUsage::ANYEKU) {
            return Err("its extendedKeyUsage includes neither emailProtection nor anyExtendedKeyUsage".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
    use openssl::x509::{X509Extension, X509};

    /// A self-signed certificate with these extensions.
    fn with(extensions: Vec<X509Extension>) -> X509 {
        let key = crate::pki::ca::generate_rsa(2048).unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let mut name = openssl::x509::X509Name::builder().unwrap();
        name.append_entry_by_text("CN", "purpose test").unwrap();
        let name = name.build();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap()).unwrap();
        for e in extensions {
            b.append_extension(e).unwrap();
        }
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    #[test]
    fn only_end_entity_email_certificates_with_the_right_key_usage_pass() {
        let both = || KeyUsage::new().digital_signature().key_encipherment().build().unwrap();
        let email = || ExtendedKeyUsage::new().email_protection().build().unwrap();
        let good = with(vec![BasicConstraints::new().build().unwrap(), both(), email()]);
        assert_eq!(check(&good, Use::Signing), Ok(()));
        assert_eq!(check(&good, Use::Encryption), Ok(()));
        assert_eq!(check(&with(vec![]), Use::Signing), Ok(()), "no extension restricts nothing");

        let ca = with(vec![BasicConstraints::new().ca().build().unwrap(), both(), email()]);
        assert!(check(&ca, Use::Signing).unwrap_err().contains("CA"));
        let server = with(vec![both(), ExtendedKeyUsage::new().server_auth().build().unwrap()]);
        assert!(check(&server, Use::Signing).unwrap_err().contains("emailProtection"));
        let any = with(vec![both(), ExtendedKeyUsage::new().other("anyExtendedKeyUsage").build().unwrap()]);
        assert_eq!(check(&any, Use::Encryption), Ok(()));
        let sign_only = with(vec![KeyUsage::new().digital_signature().build().unwrap(), email()]);
        assert_eq!(check(&sign_only, Use::Signing), Ok(()));
        assert!(check(&sign_only, Use::Encryption).unwrap_err().contains("keyEncipherment"));
        let encrypt_only = with(vec![KeyUsage::new().key_encipherment().build().unwrap()]);
        assert!(check(&encrypt_only, Use::Signing).unwrap_err().contains("digitalSignature"));
    }
}
