//! A CA that publishes its CRL and certificate over HTTP on loopback, as DirectTrust CAs do, so
//! the revocation checks of the code under test fetch a real CRL.

use super::servers::{self, Server};
use super::*;

pub(crate) struct Pki {
    pub ca: Ca,
    pub web: Server,
    /// The host name in the published URLs: 127.0.0.1, or a name the test DNS server answers.
    host: String,
}

impl Pki {
    /// Published at http://127.0.0.1:PORT/ (no DNS needed), with an empty CRL.
    pub(crate) fn new(name: &str) -> Pki {
        Self::at_host(name, "127.0.0.1")
    }

    /// Published at crl.pki.test, which the discovery tests' DNS server answers: CRL and AIA
    /// fetches then go through the resolver.
    pub(crate) fn named(name: &str) -> Pki {
        Self::at_host(name, "crl.pki.test")
    }

    fn at_host(name: &str, host: &str) -> Pki {
        let pki = Pki { ca: ca(name), web: servers::http(), host: host.to_string() };
        std::fs::write(pki.web.path("ca.cer"), pki.ca.cert.to_der().unwrap()).unwrap();
        pki.publish_crl(&[]);
        pki
    }

    pub(crate) fn url(&self, file: &str) -> String {
        format!("http://{}:{}/{file}", self.host, self.web.port)
    }

    pub(crate) fn issue_with(&self, owner: &str, bits: u32, from: i64, until: i64) -> Identity {
        issue_at(&self.ca, owner, bits, from, until, &self.url("ca.crl"), &self.url("ca.cer"))
    }

    pub(crate) fn issue(&self, owner: &str) -> Identity {
        self.issue_with(owner, 2048, *NOW - DAY, *NOW + 365 * DAY)
    }

    pub(crate) fn publish_crl(&self, revoked: &[&Identity]) {
        std::fs::write(self.web.path("ca.crl"), crl(&self.ca, revoked, *NOW - DAY, *NOW + 7 * DAY)).unwrap();
    }
}
