//! Direct addresses and domains, parsed once at the boundary.
//!
//! Both are stored lowercased: DNS names are case-insensitive, and Direct addresses are compared
//! case-insensitively everywhere in the Direct ecosystem (certificate rfc822Name matching included).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("'{0}' is not a domain name: {1}")]
    BadDomain(String, &'static str),
    #[error("'{0}' is not a Direct address (expected user@domain): {1}")]
    BadAddress(String, &'static str),
}

/// A DNS domain name such as `smithpeds.direct.example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    pub fn parse(input: &str) -> Result<Domain, AddressError> {
        let bad = |why| AddressError::BadDomain(input.to_string(), why);
        let name = input.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > 253 {
            return Err(bad("it is longer than 253 characters"));
        }
        if !name.contains('.') {
            return Err(bad("it has a single label; a Direct domain needs at least two"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each label must be 1 to 63 characters"));
            }
            if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(bad("labels may hold only letters, digits and '-'"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label may not start or end with '-'"));
            }
        }
        Ok(Domain(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

/// A Direct address `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(into = "String")]
pub struct DirectAddress {
    local: String,
    domain: Domain,
}

impl DirectAddress {
    pub fn parse(input: &str) -> Result<DirectAddress, AddressError> {
        let bad = |why| AddressError::BadAddress(input.to_string(), why);
        let (local, domain) = input.rsplit_once('@').ok_or_else(|| bad("there is no '@'"))?;
        if local.is_empty() {
            return Err(bad("the part before '@' is empty"));
        }
        if local.len() > 64 {
            return Err(bad("the part before '@' is longer than 64 characters"));
        }
        // The dot-atom form of RFC 5322 (quoted local parts are not used for Direct addresses),
        // without '/': a local part names a mailbox directory, so it may hold no path separator
        // ('\\', NUL and control characters are outside atext already).
        let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-=?^_`{|}~".contains(&b);
        if local.contains('/') {
            return Err(bad("the part before '@' may not contain '/'"));
        }
        if local.contains('\\') {
            return Err(bad("the part before '@' may not contain '\\'"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(bad("the part before '@' may not start or end with '.' or hold '..'"));
        }
        if !local.bytes().all(|b| b == b'.' || atext(b)) {
            return Err(bad("the part before '@' has characters an address may not use"));
        }
        let domain = Domain::parse(domain).map_err(|_| bad("the part after '@' is not a domain name"))?;
        Ok(DirectAddress { local: local.to_ascii_lowercase(), domain })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

impl fmt::Display for DirectAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl From<DirectAddress> for String {
    fn from(a: DirectAddress) -> String {
        a.to_string()
    }
}

impl FromStr for DirectAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DirectAddress::parse(s)
    }
}

/// What a certificate is bound to: one address, or a whole domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Address(DirectAddress),
    Domain(Domain),
}

impl Owner {
    /// `user@domain` is an address, anything else must be a domain.
    pub fn parse(input: &str) -> Result<Owner, AddressError> {
        if input.contains('@') {
            DirectAddress::parse(input).map(Owner::Address)
        } else {
            Domain::parse(input).map(Owner::Domain)
        }
    }

    pub fn domain(&self) -> &Domain {
        match self {
            Owner::Address(a) => a.domain(),
            Owner::Domain(d) => d,
        }
    }

    pub fn binding(&self) -> Binding {
        match self {
            Owner::Address(_) => Binding::Address,
            Owner::Domain(_) => Binding::Domain,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Address(a) => a.fmt(f),
            Owner::Domain(d) => d.fmt(f),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    Address,
    Domain,
}

impl Binding {
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Address => "address",
            Binding::Domain => "domain",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_split() {
        let a = DirectAddress::parse("Dr.Smith@SmithPeds.Direct.Example.org").unwrap();
        assert_eq!(a.local(), "dr.smith");
        assert_eq!(a.domain().as_str(), "smithpeds.direct.example.org");
        assert_eq!(a.to_string(), "dr.smith@smithpeds.direct.example.org");
    }

    #[test]
    fn bad_addresses_are_refused_with_a_reason() {
        for bad in ["nobody", "@example.org", "a b@example.org", "a@localhost", "a..b@example.org", "a@-x.org"] {
            assert!(DirectAddress::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn local_parts_that_could_name_a_path_are_refused_with_the_reason() {
        let reason = |input: &str| match DirectAddress::parse(input) {
            Err(AddressError::BadAddress(_, why)) => why,
            other => panic!("{input} accepted: {other:?}"),
        };
        assert!(reason("/etc@b.test").contains("'/'"));
        assert!(reason("..%2f/x@b.test").contains("'/'"));
        assert!(reason("a\\b@b.test").contains("'\\'"));
        assert!(reason(".hidden@b.test").contains("start or end with '.'"));
        assert!(reason("x.@b.test").contains("start or end with '.'"));
        assert!(reason("..@b.test").contains("'.'"));
        for bad in ["a\0b@b.test", "a\nb@b.test", "a\tb@b.test", "a\x7fb@b.test", "caf\u{e9}@b.test"] {
            assert!(DirectAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(reason(&format!("{}@b.test", "a".repeat(65))).contains("64"));
        assert_eq!(DirectAddress::parse(&format!("{}@b.test", "a".repeat(64))).unwrap().local().len(), 64);
        assert!(DirectAddress::parse("o'brien+lab=1@b.test").is_ok(), "the rest of atext stays allowed");
    }

    #[test]
    fn domains_need_two_labels_and_valid_characters() {
        assert!(Domain::parse("example.org.").is_ok());
        assert!(Domain::parse("example").is_err());
        assert!(Domain::parse("exa_mple.org").is_err());
        assert!(Domain::parse(&format!("{}.org", "a".repeat(64))).is_err());
    }

    #[test]
    fn owner_tells_address_from_domain() {
        assert_eq!(Owner::parse("a@b.org").unwrap().binding(), Binding::Address);
        assert_eq!(Owner::parse("b.org").unwrap().binding(), Binding::Domain);
    }
}
