//! Mail from a local EHR to one recipient: find and trust the recipient's certificate (discovery),
//! seal to it and to the sender, and deliver to the recipient's MX over SMTP with STARTTLS. A
//! recipient hosted on this node is sealed to its stored certificate and delivered locally.

use std::net::SocketAddr;

use super::{inbound, Work};
use crate::address::DirectAddress;
use crate::discovery::assess::{self, TrustContext};
use crate::discovery::ldap::Ldap3Directory;
use crate::discovery::{self, Sources};
use crate::failure::{Code, Failure};
use crate::fetch::HttpFetcher;
use crate::identities;
use crate::network::held;
use crate::smime::seal::{seal, SealOptions, SignerIdentity};
use crate::smtp::client::ClientConfig;
use crate::store::queue::{FinishWrite, Job, Outcome};
use crate::store::Direction;
use crate::trust::{AnchorSource, StoreAnchors};

pub(crate) fn process(work: &Work, job: &Job, message: Vec<u8>) -> Outcome {
    match seal_and_send(work, job, message) {
        Ok(outcome) => outcome,
        Err(failure) => Outcome::from(failure),
    }
}

fn seal_and_send(work: &Work, job: &Job, message: Vec<u8>) -> Result<Outcome, Failure> {
    let (sender, recipient) = match (DirectAddress::parse(&job.message.mail_from), DirectAddress::parse(&job.recipient))
    {
        (Ok(s), Ok(r)) => (s, r),
        _ => return Err(Failure::permanent(Code::BAD_ADDRESS, "bad sender or recipient address")),
    };
    let hosted = work.store.has_domain(recipient.domain()).map_err(|e| e.failure())?;
    let certs = if hosted {
        match identities::hosted_cert(work.store, &recipient, work.now).map_err(|e| e.failure())? {
            Some(cert) => vec![cert],
            None => {
                let why = format!("{recipient} is hosted here but has no valid certificate");
                return Err(Failure::permanent(Code::REFUSED, why));
            }
        }
    } else {
        match recipient_certs(work, &sender, &recipient)? {
            Some(certs) => certs,
            None => return hold(work, job, &sender, &recipient, &message),
        }
    };
    // Packaged as XDM first when the EHR asked (X-Hisp-XDM).
    let message = super::xdm_submission::prepare(
        message,
        &sender.to_string(),
        std::slice::from_ref(&job.recipient),
        &work.shared.config.server.hostname,
        job.message.received_at,
    )?;
    let signer = signer(work, &sender)?;
    let options = SealOptions {
        cipher: work.shared.config.smime.content_cipher,
        key_transport: work.shared.config.smime.key_transport,
        outer_subject: work.shared.config.smime.outer_subject.clone(),
    };
    let sealed = seal(message, &signer, &certs, options, work.now)
        .map_err(|e| Failure::permanent(Code::MEDIA, format!("cannot seal: {e}")))?
        .message;
    if hosted {
        return Ok(inbound::process(work, job, &sealed));
    }
    send(work, &sender, &recipient, &sealed).map(Outcome::Sent)
}

/// No certificate is published for the recipient: not a Direct address. If the sender's practice
/// invites such recipients, the message is held for them and they are invited; else it fails,
/// saying why.
fn hold(
    work: &Work,
    job: &Job,
    sender: &DirectAddress,
    recipient: &DirectAddress,
    message: &[u8],
) -> Result<Outcome, Failure> {
    let config = &work.shared.config.invitations;
    let message_id = &job.message.message_id;
    match held::hold(work.store, config, sender, recipient, message_id, message, work.now)? {
        Some(held) => {
            work.at_finish.add(FinishWrite::Held {
                sender: job.message.mail_from.clone(),
                message_id: message_id.clone(),
                recipient: job.recipient.clone(),
                note: held.note.clone(),
            });
            Ok(Outcome::Delivered(held.note))
        }
        None => Err(Failure::permanent(Code::NO_SUCH_ADDRESS, held::not_invited(recipient))),
    }
}

/// The recipient's usable certificates, None when none is published (not a Direct address), or
/// why none can be used: a lookup that failed (or a CRL that could not be had) is temporary;
/// nothing trusted is final.
fn recipient_certs(
    work: &Work,
    sender: &DirectAddress,
    recipient: &DirectAddress,
) -> Result<Option<Vec<openssl::x509::X509>>, Failure> {
    let resolver = &work.shared.resolver;
    let fetch = HttpFetcher::new(resolver);
    let ldap = Ldap3Directory { resolver, timeout: work.shared.lookup_timeout };
    let sources = Sources { dns: resolver, ldap: &ldap, fetch: &fetch };
    let found = discovery::discover(recipient, &sources).map_err(|e| e.failure())?;
    let Some(step) = found.step else { return Ok(None) };
    let anchors = StoreAnchors(work.store)
        .anchors(Some(sender.domain()), Direction::Outgoing)
        .map_err(|e| Failure::local(format!("trust anchors: {e}")))?;
    let trust = TrustContext {
        anchors: &anchors,
        fetch: &fetch,
        now: work.now,
        revocation: work.shared.config.trust.revocation,
    };
    let mut usable = Vec::new();
    let mut unusable = Vec::new();
    for f in &found.found {
        let assessed = assess::assess(f, step, recipient, &trust);
        if assessed.usable {
            if let Some(parsed) = assess::certificate(f) {
                usable.push(parsed.cert.clone());
            }
        } else {
            unusable.push(assessed);
        }
    }
    if usable.is_empty() {
        return Err(assess::none_usable(recipient, &unusable));
    }
    Ok(Some(usable))
}

fn signer(work: &Work, sender: &DirectAddress) -> Result<std::sync::Arc<SignerIdentity>, Failure> {
    let (cert, key_id) = identities::signing_cert(work.store, sender, work.now).map_err(|e| e.failure())?;
    let sealed_key = work.store.key(key_id).map_err(|e| e.failure())?;
    work.shared.unsealed.signer(&work.shared.kek, &cert, &sealed_key.sealed).map_err(Failure::local)
}

/// Delivers to the MX hosts of the recipient's domain by preference (the domain itself when it has
/// no MX), each of their addresses in turn, until one takes the message (its reply) or refuses it
/// for good.
fn send(work: &Work, sender: &DirectAddress, recipient: &DirectAddress, sealed: &[u8]) -> Result<String, Failure> {
    let domain = recipient.domain().as_str();
    let resolver = &work.shared.resolver;
    let hosts: Vec<String> = match crate::dns::Resolver::mx(resolver, domain) {
        Ok(mx) if !mx.records.is_empty() => mx.records.into_iter().map(|(_, host)| host).collect(),
        Ok(_) => vec![domain.to_string()],
        Err(e) => return Err(Failure::temporary(Code::ROUTING, format!("MX lookup: {e}"))),
    };
    let (port, verify_tls, tls_ca) = work.shared.config.delivery.for_domain(domain);
    let connector = match work.shared.connector(verify_tls, tls_ca) {
        Ok(c) => c,
        Err(e) => return Err(Failure::local(e)),
    };
    let config = ClientConfig {
        hostname: &work.shared.config.server.hostname,
        timeout: std::time::Duration::from_secs(work.shared.config.delivery.timeout_secs),
        tls: &connector,
        verify_tls,
        auth: None,
    };
    let mut last = Failure::temporary(Code::ROUTING, format!("no address for the MX hosts of {domain}"));
    for host in hosts {
        let ips = match crate::dns::Resolver::addresses(resolver, &host) {
            Ok(found) => found.records,
            Err(e) => {
                last = Failure::temporary(Code::ROUTING, format!("{host}: {e}"));
                continue;
            }
        };
        for ip in ips {
            let from = sender.to_string();
            let addr = SocketAddr::new(ip, port);
            match work.shared.sessions.deliver(addr, &host, &config, Some(&from), &recipient.to_string(), sealed) {
                Ok(reply) => return Ok(format!("{host} [{ip}]:{port} said {reply}")),
                Err(e) if e.is_temporary() => last = Failure { text: format!("{host} [{ip}]:{port}: {}", e.text), ..e },
                Err(e) => return Err(Failure { text: format!("{host} [{ip}]: {}", e.text), ..e }),
            }
        }
    }
    Err(last)
}
