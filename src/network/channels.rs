//! The channels notices go through, from the configuration: e-mail through `[notify.email]`'s
//! smarthost, fax through `[notify.gateway]`'s HTTP API. A kind of contact without one is
//! refused (`NotConfigured`): nothing is sent anywhere unless configured. The gateway also texts
//! the codes of documents shared by link (`Texter`).

use std::time::Duration;

use serde_json::json;

use super::compose;
use super::notices::{masked, NotConfigured, Notice, Notifier};
use crate::config::{Config, GatewayConfig, SmarthostConfig};
use crate::dns::Resolver;
use crate::failure::{Code, Failure};
use crate::notify::smarthost::Smarthost;
use crate::onboarding::setup;
use crate::store::ContactKind;

/// Notices by e-mail.
pub(crate) struct EmailNotifier {
    pub smarthost: Smarthost,
    pub from: String,
    pub hostname: String,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

impl Notifier for EmailNotifier {
    fn send(&self, notice: &Notice) -> Result<String, Failure> {
        let message = compose::email(notice, &self.from, &self.hostname, self.clock.unix_now())?;
        self.smarthost.send(&self.from, notice.contact, &message)?;
        Ok(masked(notice.contact_kind, notice.contact))
    }
}

/// Notices by fax, through a gateway's HTTP API (see `GatewayConfig`).
pub(crate) struct GatewayNotifier {
    pub url: String,
    pub token: Option<String>,
    pub resolver: Box<dyn Resolver>,
    pub tls: openssl::ssl::SslConnector,
    pub timeout: Duration,
}

impl GatewayNotifier {
    /// One JSON POST to the gateway: `channel` "fax" or "sms".
    fn post(&self, channel: &str, to: &str, subject: &str, text: &str, reference: &str) -> Result<(), Failure> {
        let body = json!({ "channel": channel, "to": to, "subject": subject, "text": text, "reference": reference });
        let body = serde_json::to_vec(&body).map_err(Failure::local)?;
        let sent =
            crate::fetch::post_json(&*self.resolver, &self.tls, &self.url, &body, self.token.as_deref(), self.timeout);
        match sent {
            Ok((status, _)) if (200..300).contains(&status) => Ok(()),
            Ok((status, answer)) => {
                let said = crate::printable::printable(&String::from_utf8_lossy(&answer), 200);
                let text = format!("the {channel} gateway answered HTTP {status}: {said}");
                if status == 429 || status >= 500 {
                    Err(Failure::temporary(Code::CONNECTION, text))
                } else {
                    Err(Failure::permanent(Code::OTHER, text))
                }
            }
            Err(e) => Err(Failure::temporary(Code::CONNECTION, format!("the {channel} gateway: {e}"))),
        }
    }
}

impl Notifier for GatewayNotifier {
    fn send(&self, notice: &Notice) -> Result<String, Failure> {
        let text = compose::plain_text(notice)?;
        self.post("fax", notice.contact, &compose::subject(notice), &text, &notice.reference)?;
        Ok(masked(notice.contact_kind, notice.contact))
    }
}

/// Sends a short text message to a mobile number (E.164).
pub(crate) trait Texter: Send + Sync {
    fn text(&self, to: &str, text: &str, reference: &str) -> Result<(), Failure>;
}

impl Texter for GatewayNotifier {
    fn text(&self, to: &str, text: &str, reference: &str) -> Result<(), Failure> {
        self.post("sms", to, "", text, reference)
    }
}

/// The texter `[notify.gateway]` describes, if any.
pub(crate) fn texter(config: &Config, resolver: Box<dyn Resolver>) -> Result<Option<GatewayNotifier>, String> {
    config.notify.gateway.as_ref().map(|c| gateway(c, resolver)).transpose()
}

/// One channel per kind of contact.
pub(crate) struct Channels {
    pub email: Box<dyn Notifier>,
    pub fax: Box<dyn Notifier>,
}

impl Notifier for Channels {
    fn send(&self, notice: &Notice) -> Result<String, Failure> {
        if notice.kind == crate::store::NoticeKind::SenderLocked {
            // Never to the invitee's address: the running node puts these in the sender's mailbox.
            return Err(Failure::permanent(Code::ROUTING, "a notice to the sender goes to their mailbox"));
        }
        match notice.contact_kind {
            ContactKind::Email => self.email.send(notice),
            ContactKind::Fax => self.fax.send(notice),
        }
    }
}

/// The channels the configuration asks for; `resolver` makes the resolver each one uses.
pub(crate) fn from_config(
    config: &Config,
    resolver: &dyn Fn() -> Box<dyn Resolver>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> Result<Channels, String> {
    let email: Box<dyn Notifier> = match &config.notify.email {
        Some(c) => Box::new(email(c, &config.server.hostname, resolver(), clock)?),
        None => Box::new(NotConfigured),
    };
    let fax: Box<dyn Notifier> = match &config.notify.gateway {
        Some(c) => Box::new(gateway(c, resolver())?),
        None => Box::new(NotConfigured),
    };
    Ok(Channels { email, fax })
}

fn email(
    c: &SmarthostConfig,
    hostname: &str,
    resolver: Box<dyn Resolver>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> Result<EmailNotifier, String> {
    Ok(EmailNotifier {
        smarthost: setup::smarthost(c, hostname, resolver)?,
        from: c.from.clone(),
        hostname: hostname.to_string(),
        clock,
    })
}

fn gateway(c: &GatewayConfig, resolver: Box<dyn Resolver>) -> Result<GatewayNotifier, String> {
    Ok(GatewayNotifier {
        url: c.url.clone(),
        token: c.token_file.as_deref().map(|f| setup::secret(f, "notify.gateway.token_file")).transpose()?,
        resolver,
        tls: crate::smtp::tls::connector(true, c.tls_ca_file.as_deref()).map_err(|e| e.to_string())?,
        timeout: Duration::from_secs(c.timeout_secs),
    })
}
