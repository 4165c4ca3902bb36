//! Mail from a local EHR to one recipient: find and trust the recipient's certificate (discovery),
//! seal to it and to the sender, and deliver to the recipient's MX over SMTP with STARTTLS. A
//! recipient hosted on this node is sealed to its stored certificate and delivered locally.

use std::net::SocketAddr;

use super::{inbound, Work};
use crate::address::DirectAddress;
use crate::discovery::assess::{self, TrustContext};
use crate::discovery::ldap::Ldap3Directory;
use crate::discovery::{self, Sources};
use crate::fetch::HttpFetcher;
use crate::identities;
use crate::smime::seal::{seal, SealOptions, SignerIdentity};
use crate::smtp::client::{ClientConfig, DeliveryError};
use crate::store::queue::{Job, Outcome};
use crate::store::Direction;
use crate::store::Store;
use crate::trust::{AnchorSource, StoreAnchors};

pub fn process(work: &Work, job: &Job, message: Vec<u8>) -> Outcome {
    let (sender, recipient) = match (DirectAddress::parse(&job.message.mail_from), DirectAddress::parse(&job.recipient))
    {
        (Ok(s), Ok(r)) => (s, r),
        _ => return Outcome::failed("5.1.3", "bad sender or recipient address"),
    };
    let hosted = match work.store.has_domain(recipient.domain()) {
        Ok(h) => h,
        Err(e) => return Outcome::deferred(e.to_string()),
    };
    let certs = if hosted {
        match identities::hosted_cert(work.store, &recipient, work.now) {
            Ok(Some(cert)) => vec![cert],
            Ok(None) => {
                return Outcome::failed("5.7.1", format!("{recipient} is hosted here but has no valid certificate"))
            }
            Err(e) => return Outcome::deferred(e.to_string()),
        }
    } else {
        match recipient_certs(work, &sender, &recipient) {
            Ok(certs) => certs,
            Err(outcome) => return outcome,
        }
    };
    let signer = match signer(work, &sender) {
        Ok(s) => s,
        Err(e) => return Outcome::failed("5.7.1", e),
    };
    let options = SealOptions {
        cipher: work.shared.config.smime.content_cipher,
        key_transport: work.shared.config.smime.key_transport,
        outer_subject: work.shared.config.smime.outer_subject.clone(),
    };
    let sealed = match seal(message, &signer, &certs, options, work.now) {
        Ok(s) => s.message,
        Err(e) => return Outcome::failed("5.6.0", format!("cannot seal: {e}")),
    };
    if hosted {
        return inbound::process(work, job, &sealed);
    }
    send(work, &sender, &recipient, &sealed)
}

/// The recipient's usable certificates, or the outcome when there are none: a lookup that failed
/// (or a CRL that could not be had) is temporary; nothing published, or nothing trusted, is final.
fn recipient_certs(
    work: &Work,
    sender: &DirectAddress,
    recipient: &DirectAddress,
) -> Result<Vec<openssl::x509::X509>, Outcome> {
    let resolver = &work.shared.resolver;
    let fetch = HttpFetcher::new(resolver);
    let ldap = Ldap3Directory { resolver, timeout: work.shared.lookup_timeout };
    let sources = Sources { dns: resolver, ldap: &ldap, fetch: &fetch };
    let found = discovery::discover(recipient, &sources)
        .map_err(|e| Outcome::deferred(format!("certificate discovery: {e}")))?;
    let Some(step) = found.step else {
        return Err(Outcome::failed(
            "5.1.1",
            format!("no certificate is published for {recipient} (DNS CERT or LDAP)"),
        ));
    };
    let anchors = StoreAnchors(work.store)
        .anchors(Some(sender.domain()), Direction::Outgoing)
        .map_err(|e| Outcome::deferred(format!("trust anchors: {e}")))?;
    let trust = TrustContext {
        anchors: &anchors,
        fetch: &fetch,
        now: work.now,
        revocation: work.shared.config.trust.revocation,
    };
    let mut usable = Vec::new();
    let mut problems = Vec::new();
    for f in &found.found {
        let assessed = assess::assess(f, step, recipient, &trust);
        if assessed.usable {
            if let Some(parsed) = assess::certificate(f) {
                usable.push(parsed.cert.clone());
            }
        } else {
            problems.push(format!("{} ({})", assessed.subject, assessed.details.join("; ")));
        }
    }
    if !usable.is_empty() {
        return Ok(usable);
    }
    let why = format!("no usable certificate for {recipient}: {}", problems.join(", "));
    if problems.iter().any(|p| p.contains("revocation could not be checked")) {
        Err(Outcome::deferred(why))
    } else {
        Err(Outcome::failed("5.7.1", why))
    }
}

fn signer(work: &Work, sender: &DirectAddress) -> Result<std::sync::Arc<SignerIdentity>, String> {
    let (cert, key_id) = identities::signing_cert(work.store, sender, work.now).map_err(|e| e.to_string())?;
    let sealed_key = work.store.key(key_id).map_err(|e| e.to_string())?;
    work.shared.unsealed.signer(&work.shared.kek, &cert, &sealed_key.sealed)
}

/// Delivers to the MX hosts of the recipient's domain by preference (the domain itself when it has
/// no MX), each of their addresses in turn, until one takes the message or refuses it for good.
fn send(work: &Work, sender: &DirectAddress, recipient: &DirectAddress, sealed: &[u8]) -> Outcome {
    let domain = recipient.domain().as_str();
    let resolver = &work.shared.resolver;
    let hosts: Vec<String> = match crate::dns::Resolver::mx(resolver, domain) {
        Ok(mx) if !mx.records.is_empty() => mx.records.into_iter().map(|(_, host)| host).collect(),
        Ok(_) => vec![domain.to_string()],
        Err(e) => return Outcome::deferred(format!("MX lookup: {e}")),
    };
    let (port, verify_tls, tls_ca) = work.shared.config.delivery.for_domain(domain);
    let connector = match work.shared.connector(verify_tls, tls_ca) {
        Ok(c) => c,
        Err(e) => return Outcome::deferred(format!("TLS set-up: {e}")),
    };
    let config = ClientConfig {
        hostname: &work.shared.config.server.hostname,
        timeout: std::time::Duration::from_secs(work.shared.config.delivery.timeout_secs),
        tls: &connector,
        verify_tls,
        auth: None,
    };
    let mut last = format!("no address for the MX hosts of {domain}");
    for host in hosts {
        let ips = match crate::dns::Resolver::addresses(resolver, &host) {
            Ok(found) => found.records,
            Err(e) => {
                last = format!("{host}: {e}");
                continue;
            }
        };
        for ip in ips {
            let from = sender.to_string();
            let addr = SocketAddr::new(ip, port);
            match work.shared.sessions.deliver(addr, &host, &config, Some(&from), &recipient.to_string(), sealed) {
                Ok(reply) => return Outcome::Sent(format!("{host} [{ip}]:{port} said {reply}")),
                Err(DeliveryError::Permanent(e)) => {
                    let status = peer_status(&e);
                    return Outcome::failed(&status, format!("{host} [{ip}]: {e}"));
                }
                Err(DeliveryError::Temporary(e)) => last = format!("{host} [{ip}]:{port}: {e}"),
            }
        }
    }
    Outcome::deferred(last)
}

/// The enhanced status code in a peer's permanent refusal ("RCPT: 550 5.1.1 ..."), else 5.0.0.
fn peer_status(reply: &str) -> String {
    reply
        .split_whitespace()
        .find(|w| w.starts_with("5.") && w.split('.').count() == 3 && w.split('.').all(|p| p.parse::<u16>().is_ok()))
        .unwrap_or("5.0.0")
        .to_string()
}
