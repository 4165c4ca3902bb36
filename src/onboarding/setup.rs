//! The verifier and the confirmation-code channel the configuration asks for, and the e-mail
//! channel itself.

use std::net::SocketAddr;
use std::time::Duration;

use super::code::{CodeChannel, LogChannel, NoChannel, Recipient};
use super::verifier::{HttpVerifier, ManualVerifier, RulesVerifier, Verifier};
use crate::clock::Clock;
use crate::config::{CodeChannelKind, OnboardingConfig, VerifierKind};
use crate::dns::{DnsClient, DnsConfig, Resolver};

pub(crate) fn verifier(config: &OnboardingConfig, dns: &DnsConfig) -> Result<Box<dyn Verifier>, String> {
    Ok(match config.effective_verifier() {
        VerifierKind::Rules => Box::new(RulesVerifier),
        VerifierKind::Manual => Box::new(ManualVerifier),
        VerifierKind::Http => Box::new(HttpVerifier {
            url: config.verifier_url.clone().unwrap_or_default(),
            resolver: Box::new(DnsClient::new(dns.clone())),
            tls: crate::smtp::tls::connector(true, config.verifier_tls_ca_file.as_deref())
                .map_err(|e| e.to_string())?,
            timeout: Duration::from_secs(config.verifier_timeout_secs),
        }),
    })
}

pub(crate) fn channel(
    config: &OnboardingConfig,
    dns: &DnsConfig,
    hostname: &str,
) -> Result<Box<dyn CodeChannel>, String> {
    Ok(match config.code_channel {
        None => Box::new(NoChannel),
        Some(CodeChannelKind::Log) => Box::new(LogChannel),
        Some(CodeChannelKind::Email) => Box::new(EmailChannel {
            relay: config.code_smtp.clone(),
            from: config.code_from.clone(),
            to: config.code_to.clone(),
            hostname: hostname.to_string(),
            verify_tls: config.code_smtp_verify_tls,
            tls: crate::smtp::tls::connector(config.code_smtp_verify_tls, None).map_err(|e| e.to_string())?,
            resolver: Box::new(DnsClient::new(dns.clone())),
        }),
    })
}

/// Sends the code as a short e-mail through a relay, over STARTTLS.
pub(crate) struct EmailChannel {
    pub relay: String,
    pub from: String,
    /// The To address template: {email}, {phone}.
    pub to: String,
    pub hostname: String,
    pub verify_tls: bool,
    pub tls: openssl::ssl::SslConnector,
    pub resolver: Box<dyn Resolver>,
}

impl EmailChannel {
    fn recipient(&self, to: &Recipient) -> Result<String, String> {
        if self.to.contains("{email}") && to.email.is_none() {
            return Err("the representative's personal e-mail is not in the form yet".into());
        }
        let digits: String = to.phone.chars().filter(char::is_ascii_digit).collect();
        let address = self.to.replace("{email}", to.email.unwrap_or("")).replace("{phone}", &digits);
        super::checks::email(&address).map_err(|e| format!("{address}: {e}"))?;
        Ok(address)
    }
}

impl CodeChannel for EmailChannel {
    fn send(&self, to: &Recipient, code: &str) -> Result<String, String> {
        let address = self.recipient(to)?;
        let (host, port) = self.relay.rsplit_once(':').ok_or("code_smtp is HOST:PORT")?;
        let port: u16 = port.parse().map_err(|_| "code_smtp is HOST:PORT".to_string())?;
        let ip = *self.resolver.addresses(host).map_err(|e| e.to_string())?.records.first().ok_or("no address")?;
        let now = crate::clock::SystemClock.unix_now();
        let mut id = [0u8; 12];
        openssl::rand::rand_bytes(&mut id).map_err(|e| e.to_string())?;
        let message = format!(
            "From: <{from}>\r\nTo: <{address}>\r\nSubject: Your Direct enrollment confirmation code\r\n\
             Date: {date}\r\nMessage-ID: <code-{id}@{host}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             Your confirmation code for the Direct enrollment of {practice} is {code}.\r\n\
             It expires in 10 minutes. If you did not ask for it, ignore this message.\r\n",
            from = self.from,
            date = crate::clock::rfc5322(now),
            id = hex::encode(id),
            host = self.hostname,
            practice = to.practice,
        );
        let config = crate::smtp::client::ClientConfig {
            hostname: &self.hostname,
            timeout: Duration::from_secs(30),
            tls: &self.tls,
            verify_tls: self.verify_tls,
            auth: None,
        };
        crate::smtp::client::deliver(
            SocketAddr::new(ip, port),
            host,
            &config,
            Some(&self.from),
            &address,
            message.as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        let (_, domain) = address.rsplit_once('@').unwrap_or(("", &address));
        Ok(format!("e-mail to ***@{domain}"))
    }
}
