//! DirectTrust binding rules: an address-bound certificate names the address as subjectAltName
//! rfc822Name (and any subject emailAddress agrees); a domain-bound one names the domain as
//! dNSName. No wildcards.

use openssl::x509::X509Ref;

use crate::address::{Binding, DirectAddress, Domain};
use crate::pki;

/// The names a certificate is bound to, read once (decoding subjectAltName is not free).
#[derive(Debug, Clone)]
pub struct BoundNames {
    emails: Vec<String>,
    dns: Vec<String>,
    subject_emails: Vec<String>,
}

impl BoundNames {
    pub fn of(cert: &X509Ref) -> BoundNames {
        let (emails, dns) = pki::alt_names(cert);
        BoundNames { emails, dns, subject_emails: pki::subject_emails(cert) }
    }

    /// How the certificate is bound to `address`, if it is.
    pub fn binding_for(&self, address: &DirectAddress) -> Option<Binding> {
        let wanted = address.to_string();
        if self.emails.contains(&wanted) {
            return self.subject_emails.iter().all(|e| *e == wanted).then_some(Binding::Address);
        }
        self.is_domain_bound(address.domain()).then_some(Binding::Domain)
    }

    /// Domain-bound to exactly `domain`: a dNSName and no rfc822Name.
    pub fn is_domain_bound(&self, domain: &Domain) -> bool {
        self.emails.is_empty() && self.dns.iter().any(|d| d == domain.as_str())
    }

    /// For messages: every rfc822Name and dNSName.
    pub fn all(&self) -> Vec<String> {
        self.emails.iter().chain(&self.dns).cloned().collect()
    }
}

/// How `cert` is bound to `address`, if it is.
pub(crate) fn binding_for(cert: &X509Ref, address: &DirectAddress) -> Option<Binding> {
    BoundNames::of(cert).binding_for(address)
}

/// Is `cert` domain-bound to exactly `domain`.
pub(crate) fn is_domain_bound(cert: &X509Ref, domain: &Domain) -> bool {
    BoundNames::of(cert).is_domain_bound(domain)
}

/// What the certificate is bound to, for messages: its rfc822Names and dNSNames.
pub(crate) fn bound_names(cert: &X509Ref) -> Vec<String> {
    BoundNames::of(cert).all()
}
