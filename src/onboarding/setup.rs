//! The verifier and the confirmation-code channel the configuration asks for, and the e-mail
//! channel itself.

use std::time::Duration;

use super::code::{CodeChannel, LogChannel, NoChannel, Recipient};
use super::verifier::{HttpVerifier, ManualVerifier, RulesVerifier, Verifier};
use crate::clock::Clock;
use crate::config::{CodeChannelKind, OnboardingConfig, SmarthostConfig, VerifierKind};
use crate::dns::{DnsClient, DnsConfig, Resolver};
use crate::notify::smarthost::Smarthost;
use mail_builder::headers::date::Date;
use mail_builder::MessageBuilder;

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

/// The confirmation-code channel: by e-mail through `code_smtp`, or, when that is not set,
/// through the node's smarthost (`[notify.email]`, with its AUTH and anchors).
pub(crate) fn channel(
    config: &OnboardingConfig,
    smarthost_config: Option<&SmarthostConfig>,
    dns: &DnsConfig,
    hostname: &str,
) -> Result<Box<dyn CodeChannel>, String> {
    Ok(match config.code_channel {
        None => Box::new(NoChannel),
        Some(CodeChannelKind::Log) => Box::new(LogChannel),
        Some(CodeChannelKind::Email) => {
            let resolver = Box::new(DnsClient::new(dns.clone()));
            let (smarthost, from) = match smarthost_config.filter(|_| config.code_smtp.is_empty()) {
                Some(node) => (smarthost(node, hostname, resolver)?, node.from.clone()),
                None => {
                    let relay = Smarthost {
                        relay: config.code_smtp.clone(),
                        hello: hostname.to_string(),
                        credentials: None,
                        verify_tls: config.code_smtp_verify_tls,
                        ca_pem: None,
                        resolver,
                        timeout: Duration::from_secs(30),
                    };
                    (relay, String::new())
                }
            };
            let from = if config.code_from.is_empty() { from } else { config.code_from.clone() };
            Box::new(EmailChannel { smarthost, from, to: config.code_to.clone(), hostname: hostname.to_string() })
        }
    })
}

/// The node's smarthost as `[notify.email]` describes it: its password and anchors read now.
pub(crate) fn smarthost(c: &SmarthostConfig, hostname: &str, resolver: Box<dyn Resolver>) -> Result<Smarthost, String> {
    let credentials = match (&c.username, &c.password_file) {
        (Some(user), Some(file)) => Some((user.clone(), secret(file, "notify.email.password_file")?)),
        _ => None,
    };
    let ca_pem = c
        .tls_ca_file
        .as_ref()
        .map(|f| std::fs::read(f).map_err(|e| format!("notify.email.tls_ca_file {}: {e}", f.display())))
        .transpose()?;
    Ok(Smarthost {
        relay: c.relay.clone(),
        hello: hostname.to_string(),
        credentials,
        verify_tls: c.verify_tls,
        ca_pem,
        resolver,
        timeout: Duration::from_secs(c.timeout_secs),
    })
}

/// The first line of a secret's file.
pub(crate) fn secret(path: &std::path::Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    Ok(line)
}

/// Sends the code as a short e-mail through the relay: composed by mail-builder, sent by the
/// smarthost client (STARTTLS required).
pub(crate) struct EmailChannel {
    pub smarthost: Smarthost,
    pub from: String,
    /// The To address template: {email}, {phone}.
    pub to: String,
    pub hostname: String,
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

    /// The message: no PHI, only the code and the practice's name.
    fn message(&self, address: &str, practice: &str, code: &str) -> Result<Vec<u8>, String> {
        let mut id = [0u8; 12];
        openssl::rand::rand_bytes(&mut id).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        MessageBuilder::new()
            .from(self.from.as_str())
            .to(address)
            .subject("Your Direct enrollment confirmation code")
            .date(Date::new(crate::clock::SystemClock.unix_now()))
            .message_id(format!("code-{}@{}", hex::encode(id), self.hostname))
            // Short lines: the code stays readable as it is, whatever encoding the rest needs
            // (an SMS gateway may show the raw text).
            .text_body(format!(
                "Your Direct enrollment confirmation code is {code}.\r\n\
                 Practice: {practice}\r\n\
                 It expires in 10 minutes.\r\n\
                 If you did not ask for it, ignore this message.\r\n"
            ))
            .serialize(&mut out);
        Ok(out)
    }
}

impl CodeChannel for EmailChannel {
    fn send(&self, to: &Recipient, code: &str) -> Result<String, String> {
        let address = self.recipient(to)?;
        let message = self.message(&address, to.practice, code)?;
        self.smarthost.send(&self.from, &address, &message).map_err(|f| f.to_string())?;
        let (_, domain) = address.rsplit_once('@').unwrap_or(("", &address));
        Ok(format!("e-mail to ***@{domain}"))
    }
}
