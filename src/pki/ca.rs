//! The development CA: a self-signed root that issues end-entity certificates with the DirectTrust
//! profile (DESIGN.md §2), and CSRs for certificates from a real CA.

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{
    X509Crl, X509CrlBuilder, X509Extension, X509Name, X509Ref, X509Req, X509ReqBuilder, X509RevokedBuilder, X509,
};

use super::PkiError;
use super::MIN_RSA_BITS;
use crate::address::Owner;
use crate::der::{self, SEQUENCE};

/// A new RSA key; refuses sizes under the Direct minimum.
pub fn generate_rsa(bits: u32) -> Result<PKey<Private>, PkiError> {
    if bits < MIN_RSA_BITS {
        return Err(PkiError::Policy(format!("RSA keys must be at least {MIN_RSA_BITS} bits, not {bits}")));
    }
    Ok(PKey::from_rsa(Rsa::generate(bits)?)?)
}

fn name(common_name: &str, organization: Option<&str>) -> Result<X509Name, PkiError> {
    let mut name = X509Name::builder()?;
    if let Some(org) = organization {
        name.append_entry_by_text("O", org)?;
    }
    name.append_entry_by_text("CN", common_name)?;
    Ok(name.build())
}

/// The subject of `owner`'s certificate, within X.520's bounds (RFC 5280 appendix A: a common or
/// organization name of at most 64 characters): the address or domain as the common name when it
/// fits, else its local part or first label; the domain as the organization when it fits. The
/// address itself is always whole in the subjectAltName, which is what Direct matches on.
fn owner_name(owner: &Owner, with_organization: bool) -> Result<X509Name, PkiError> {
    const UPPER_BOUND: usize = 64;
    let whole = owner.to_string();
    let common_name = if whole.len() <= UPPER_BOUND {
        whole
    } else {
        match owner {
            Owner::Address(a) => a.local().to_string(),
            Owner::Domain(d) => d.as_str().split('.').next().unwrap_or_default().to_string(),
        }
    };
    let domain = owner.domain().as_str();
    let organization = (with_organization && domain.len() <= UPPER_BOUND).then_some(domain);
    name(&common_name, organization)
}

/// A random positive 127-bit serial number: unpredictable (RFC 5280 §4.1.2.2 and CA/B practice),
/// and unique across CAs in practice, so issuer + serial identifies a recipient without collisions
/// even between two development CAs of the same name.
pub fn random_serial() -> Result<Asn1Integer, PkiError> {
    let mut n = BigNum::new()?;
    n.rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    Ok(n.to_asn1_integer()?)
}

/// The self-signed development root.
pub fn create_root(key: &PKeyRef<Private>, common_name: &str, not_before: i64, days: u32) -> Result<X509, PkiError> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(&*random_serial()?)?;
    let subject = name(common_name, Some("hisp development CA"))?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(key)?;
    b.set_not_before(&*Asn1Time::from_unix(not_before as libc::time_t)?)?;
    b.set_not_after(&*Asn1Time::from_unix((not_before + i64::from(days) * 86_400) as libc::time_t)?)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().digital_signature().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// A self-signed TLS server certificate for `hostname` (SAN dNSName, EKU serverAuth); also for
/// `localhost` and 127.0.0.1, where a node's own tools and a developer's client reach it.
pub fn self_signed_server(
    key: &PKeyRef<Private>,
    hostname: &str,
    not_before: i64,
    days: u32,
) -> Result<X509, PkiError> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(&*random_serial()?)?;
    let subject = name(hostname, None)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(key)?;
    b.set_not_before(&*Asn1Time::from_unix(not_before as libc::time_t)?)?;
    b.set_not_after(&*Asn1Time::from_unix((not_before + i64::from(days) * 86_400) as libc::time_t)?)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().key_encipherment().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut san = SubjectAlternativeName::new();
    san.dns(hostname);
    if hostname != "localhost" {
        san.dns("localhost");
    }
    let san = san.ip("127.0.0.1").build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// What goes into an end-entity certificate besides the key.
pub struct EndEntity<'a> {
    pub owner: &'a Owner,
    pub not_before: i64,
    pub not_after: i64,
    /// CRL distribution point URL.
    pub crl_url: &'a str,
    /// AIA caIssuers URL (where the issuer certificate can be fetched).
    pub issuer_url: &'a str,
}

/// Issues an end-entity certificate with the DirectTrust profile: SAN rfc822Name (address-bound) or
/// dNSName (domain-bound); keyUsage digitalSignature + keyEncipherment; EKU emailProtection;
/// basicConstraints CA:false; SKI/AKI; CRL distribution point; AIA caIssuers. Signed SHA-256.
/// Key size policy is the caller's: tests use this to build deliberately weak certificates.
pub fn issue<K: HasPublic>(
    ca_cert: &X509Ref,
    ca_key: &PKeyRef<Private>,
    subject_key: &PKeyRef<K>,
    profile: &EndEntity,
) -> Result<X509, PkiError> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(&*random_serial()?)?;
    b.set_subject_name(&*owner_name(profile.owner, true)?)?;
    b.set_issuer_name(ca_cert.subject_name())?;
    b.set_pubkey(subject_key)?;
    b.set_not_before(&*Asn1Time::from_unix(profile.not_before as libc::time_t)?)?;
    b.set_not_after(&*Asn1Time::from_unix(profile.not_after as libc::time_t)?)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().key_encipherment().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().email_protection().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(ca_cert), None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(ca_cert), None))?;
    b.append_extension(aki)?;
    let mut san = SubjectAlternativeName::new();
    match profile.owner {
        Owner::Address(a) => san.email(&a.to_string()),
        Owner::Domain(d) => san.dns(d.as_str()),
    };
    let san = san.build(&b.x509v3_context(Some(ca_cert), None))?;
    b.append_extension(san)?;
    b.append_extension(crl_distribution_point(profile.crl_url)?)?;
    b.append_extension(authority_info_access(profile.issuer_url)?)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// A URI GeneralName: [6] IA5String.
fn uri_name(url: &str) -> Vec<u8> {
    der::encode(0x86, url.as_bytes())
}

/// CRLDistributionPoints (RFC 5280 §4.2.1.13) with one fullName URI.
pub fn crl_distribution_point(url: &str) -> Result<X509Extension, PkiError> {
    let full_name = der::encode(0xA0, &uri_name(url)); // fullName [0] GeneralNames
    let point_name = der::encode(0xA0, &full_name); // distributionPoint [0]
    let value = der::encode(SEQUENCE, &der::encode(SEQUENCE, &point_name));
    extension("2.5.29.31", &value)
}

/// AuthorityInfoAccess (RFC 5280 §4.2.2.1) with one caIssuers URI.
fn authority_info_access(url: &str) -> Result<X509Extension, PkiError> {
    let ca_issuers = der::encode(der::OID, &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02]); // 1.3.6.1.5.5.7.48.2
    let description = der::encode(SEQUENCE, &[ca_issuers, uri_name(url)].concat());
    extension("1.3.6.1.5.5.7.1.1", &der::encode(SEQUENCE, &description))
}

fn extension(oid: &str, value: &[u8]) -> Result<X509Extension, PkiError> {
    let oid = Asn1Object::from_str(oid)?;
    let value = Asn1OctetString::new_from_bytes(value)?;
    Ok(X509Extension::new_from_der(&oid, false, &value)?)
}

/// A CSR for `owner` with the subjectAltName a DirectTrust CA will expect.
pub fn csr(owner: &Owner, key: &PKeyRef<Private>) -> Result<X509Req, PkiError> {
    let mut b = X509ReqBuilder::new()?;
    b.set_version(0)?;
    b.set_subject_name(&*owner_name(owner, false)?)?;
    b.set_pubkey(key)?;
    let mut san = SubjectAlternativeName::new();
    match owner {
        Owner::Address(a) => san.email(&a.to_string()),
        Owner::Domain(d) => san.dns(d.as_str()),
    };
    let mut extensions = Stack::new()?;
    extensions.push(san.build(&b.x509v3_context(None))?)?;
    extensions.push(KeyUsage::new().critical().digital_signature().key_encipherment().build()?)?;
    extensions.push(ExtendedKeyUsage::new().email_protection().build()?)?;
    b.add_extensions(&extensions)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// One entry of a CRL: a serial number (big-endian bytes) and when it was revoked.
pub struct RevokedSerial {
    pub serial: Vec<u8>,
    pub revoked_at: i64,
}

/// A CRL (RFC 5280 §5) of `ca_cert` listing `revoked`, valid [this_update, next_update], with the
/// AuthorityKeyIdentifier and CRLNumber a conforming CRL carries. The CRL number is `this_update`:
/// it only ever grows, which is all §5.2.3 asks.
pub fn crl(
    ca_cert: &X509Ref,
    ca_key: &PKeyRef<Private>,
    revoked: &[RevokedSerial],
    this_update: i64,
    next_update: i64,
) -> Result<X509Crl, PkiError> {
    let mut b = X509CrlBuilder::new()?;
    b.set_issuer_name(ca_cert.subject_name())?;
    if let Some(ski) = ca_cert.subject_key_id() {
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
        b.append_extension(extension("2.5.29.35", &der::encode(SEQUENCE, &der::encode(0x80, ski.as_slice())))?)?;
    }
    let number = BigNum::from_dec_str(&this_update.max(1).to_string())?.to_vec();
    let number = if number[0] & 0x80 != 0 { [&[0u8][..], &number].concat() } else { number };
    b.append_extension(extension("2.5.29.20", &der::encode(der::INTEGER, &number))?)?;
    b.set_last_update(&*Asn1Time::from_unix(this_update as libc::time_t)?)?;
    b.set_next_update(&*Asn1Time::from_unix(next_update as libc::time_t)?)?;
    for entry in revoked {
        let mut r = X509RevokedBuilder::new()?;
        r.set_serial_number(&*BigNum::from_slice(&entry.serial)?.to_asn1_integer()?)?;
        r.set_revocation_date(&*Asn1Time::from_unix(entry.revoked_at as libc::time_t)?)?;
        b.add_revoked(r.build())?;
    }
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok(b.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::DirectAddress;

    #[test]
    fn an_address_too_long_for_a_common_name_is_whole_in_the_subject_alt_name() {
        let ca_key = generate_rsa(2048).unwrap();
        let root = create_root(&ca_key, "test CA", 0, 30).unwrap();
        let local = "a".repeat(64);
        let domain = format!("{}.direct.example.org", "leefamilymedicinepa".repeat(3));
        let address = DirectAddress::parse(&format!("{local}@{domain}")).unwrap();
        let owner = Owner::Address(address.clone());
        let profile = EndEntity {
            owner: &owner,
            not_before: 0,
            not_after: 86_400,
            crl_url: "http://127.0.0.1/crl",
            issuer_url: "http://127.0.0.1/ca",
        };
        let key = generate_rsa(2048).unwrap();
        let cert = issue(&root, &ca_key, &key, &profile).unwrap();
        let emails: Vec<String> =
            cert.subject_alt_names().unwrap().iter().filter_map(|n| n.email().map(String::from)).collect();
        assert_eq!(emails, vec![address.to_string()]);
        let cn = cert.subject_name().entries_by_nid(openssl::nid::Nid::COMMONNAME).next().unwrap();
        assert_eq!(cn.data().to_string().unwrap(), local);
        assert!(csr(&owner, &key).is_ok(), "a CSR for it too");
    }
}
