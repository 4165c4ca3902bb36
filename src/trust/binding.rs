//! DirectTrust binding rules: an address-bound certificate names the address as subjectAltName
//! rfc822Name (and any subject emailAddress agrees); a domain-bound one names the domain as
//! dNSName. No wildcards.

use openssl::x509::X509Ref;

use crate::address::{Binding, DirectAddress, Domain};
use crate::pki;

/// How `cert` is bound to `address`, if it is.
pub fn binding_for(cert: &X509Ref, address: &DirectAddress) -> Option<Binding> {
    let (emails, dns) = pki::alt_names(cert);
    let wanted = address.to_string();
    if emails.contains(&wanted) {
        let subject_emails = pki::subject_emails(cert);
        if subject_emails.iter().all(|e| *e == wanted) {
            return Some(Binding::Address);
        }
        return None;
    }
    if emails.is_empty() && dns.iter().any(|d| d == address.domain().as_str()) {
        return Some(Binding::Domain);
    }
    None
}

/// Is `cert` domain-bound to exactly `domain`.
pub fn is_domain_bound(cert: &X509Ref, domain: &Domain) -> bool {
    let (emails, dns) = pki::alt_names(cert);
    emails.is_empty() && dns.iter().any(|d| d == domain.as_str())
}

/// What the certificate is bound to, for messages: its rfc822Names and dNSNames.
pub fn bound_names(cert: &X509Ref) -> Vec<String> {
    let (mut emails, dns) = pki::alt_names(cert);
    emails.extend(dns);
    emails
}
