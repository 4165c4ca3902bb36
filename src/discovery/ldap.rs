//! Certificates from LDAP directories (Certificate Discovery for Direct, steps 3 and 4): an
//! anonymous bind, the rootDSE's naming contexts, and in each a search for `(mail=VALUE)` returning
//! userSMIMECertificate / userCertificate.

use std::net::SocketAddr;
use std::time::Duration;

use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, SearchOptions, StdStream};

/// One LDAP server to ask.
pub trait LdapDirectory: Send + Sync {
    /// The certificates of the entries whose mail is `mail` on `host:port`. An error means the
    /// server could not be reached, bound or searched, and the next server should be tried.
    fn certificates(&self, host: &str, port: u16, mail: &str) -> Result<Vec<Vec<u8>>, String>;
}

const CERT_ATTRIBUTES: [&str; 3] = ["userSMIMECertificate", "userCertificate;binary", "userCertificate"];

/// RFC 4515 §3: `*`, `(`, `)`, `\` and NUL in a filter value become `\XX`; so do non-ASCII bytes,
/// so a value can never change the filter's structure.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'*' | b'(' | b')' | b'\\' | 0 | 0x80.. => out.push_str(&format!("\\{b:02x}")),
            _ => out.push(char::from(b)),
        }
    }
    out
}

/// The LDAP adapter on real servers; host names are resolved by the caller's resolver first.
pub struct Ldap3Directory<'a> {
    pub resolver: &'a dyn crate::dns::Resolver,
    pub timeout: Duration,
}

impl LdapDirectory for Ldap3Directory<'_> {
    fn certificates(&self, host: &str, port: u16, mail: &str) -> Result<Vec<Vec<u8>>, String> {
        let ips = self.resolver.addresses(host).map_err(|e| e.to_string())?.records;
        let ip = ips.first().ok_or_else(|| format!("{host} has no address"))?;
        let url = match ip {
            std::net::IpAddr::V4(v4) => format!("ldap://{v4}:{port}"),
            std::net::IpAddr::V6(v6) => format!("ldap://[{v6}]:{port}"),
        };
        // Through the gate: whole, bounded, shallow messages only, all within twice the timeout.
        let limits = super::ldap_gate::Limits::within(self.timeout * 2);
        super::ldap_gate::converse(SocketAddr::new(*ip, port), limits, |stream| {
            let settings =
                LdapConnSettings::new().set_conn_timeout(self.timeout).set_std_stream(StdStream::Unix(stream));
            let mut conn = LdapConn::with_settings(settings, "ldapi:///").map_err(|e| format!("{url}: {e}"))?;
            let found = search(&mut conn, &url, mail, self.timeout);
            let _ = conn.unbind();
            found
        })
    }
}

/// The certificates of the entries whose mail is `mail`, in every naming context of `conn`'s server.
fn search(conn: &mut LdapConn, url: &str, mail: &str, timeout: Duration) -> Result<Vec<Vec<u8>>, String> {
    // The server is asked to keep its answers small and quick too.
    let options = || SearchOptions::new().sizelimit(100).timelimit(timeout.as_secs().clamp(1, 60) as i32);
    conn.with_timeout(timeout);
    conn.simple_bind("", "").and_then(|r| r.success()).map_err(|e| format!("{url}: anonymous bind: {e}"))?;
    let root = conn
        .with_timeout(timeout)
        .with_search_options(options())
        .search("", Scope::Base, "(objectClass=*)", vec!["namingContexts"])
        .and_then(|r| r.success())
        .map_err(|e| format!("{url}: rootDSE: {e}"))?;
    let contexts: Vec<String> = root
        .0
        .into_iter()
        .filter_map(entry)
        .flat_map(|e| e.attrs.get("namingContexts").cloned().unwrap_or_default())
        .collect();
    let filter = format!("(mail={})", escape_filter_value(mail));
    let mut found = Vec::new();
    for base in contexts {
        let result = conn
            .with_timeout(timeout)
            .with_search_options(options())
            .search(&base, Scope::Subtree, &filter, CERT_ATTRIBUTES.to_vec())
            .and_then(|r| r.success())
            .map_err(|e| format!("{url}: search in {base}: {e}"))?;
        for e in result.0.into_iter().filter_map(entry) {
            for (name, values) in &e.bin_attrs {
                if is_cert_attribute(name) {
                    found.extend(values.iter().cloned());
                }
            }
            for (name, values) in &e.attrs {
                if is_cert_attribute(name) {
                    found.extend(values.iter().map(|v| v.as_bytes().to_vec()));
                }
            }
        }
    }
    Ok(found)
}

fn is_cert_attribute(name: &str) -> bool {
    CERT_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// ldap3 panics on an entry it cannot decode; a hostile server must not bring the node down.
fn entry(raw: ldap3::ResultEntry) -> Option<SearchEntry> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(raw))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_directory_answering_with_deeply_nested_ber_is_an_error_not_a_crash() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((mut peer, _)) = listener.accept() else { return };
            let mut bind = [0u8; 256];
            let _ = peer.read(&mut bind);
            // A "bind response" of 200,000 nested SEQUENCEs (definite lengths, about 1 MB).
            let mut headers = Vec::new();
            let mut len = 0;
            for _ in 0..200_000 {
                let header = crate::der::header(0x30, len);
                len += header.len();
                headers.push(header);
            }
            let deep: Vec<u8> = headers.into_iter().rev().flatten().collect();
            let _ = peer.write_all(&deep);
        });
        let directory = Ldap3Directory { resolver: &crate::dns::Loopback, timeout: Duration::from_secs(5) };
        let e = directory.certificates("ldap.evil.test", port, "x@evil.test").unwrap_err();
        assert!(e.contains("at most 1048576 taken") || e.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn filter_values_cannot_change_the_filter() {
        assert_eq!(escape_filter_value("bob@example.org"), "bob@example.org");
        assert_eq!(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape_filter_value("é"), "\\c3\\a9");
    }
}
