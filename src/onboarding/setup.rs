//! The verifier and the confirmation-code channel the configuration asks for, and the e-mail
//! channel itself.

use std::time::Duration;

use super::code::{CodeChannel, LogChannel, NoChannel, Recipient};
use super::verifier::{HttpVerifier, ManualVerifier, RulesVerifier, Verifier};
use crate::clock::Clock;
use crate::config::{CodeChannelKind, OnboardingConfig, VerifierKind};
use crate::dns::{DnsClient, DnsConfig};
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

pub(crate) fn channel(
    config: &OnboardingConfig,
    dns: &DnsConfig,
    hostname: &str,
) -> Result<Box<dyn CodeChannel>, String> {
    Ok(match config.code_channel {
        None => Box::new(NoChannel),
        Some(CodeChannelKind::Log) => Box::new(LogChannel),
        Some(CodeChannelKind::Email) => Box::new(EmailChannel {
            smarthost: Smarthost {
                relay: config.code_smtp.clone(),
                hello: hostname.to_string(),
                credentials: None,
                verify_tls: config.code_smtp_verify_tls,
                ca_pem: None,
                resolver: Box::new(DnsClient::new(dns.clone())),
                timeout: Duration::from_secs(30),
            },
            from: config.code_from.clone(),
            to: config.code_to.clone(),
            hostname: hostname.to_string(),
        }),
    })
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
