//! The e-mail that carries a one-time link to set a password (a new member's welcome, or a
//! forgotten password), from the templates under `templates/notices/`. It names the practice and
//! the portal, never a password and nothing about a patient or a message.

use askama::Template;

use super::signin::SignIn;
use crate::failure::Failure;
use crate::notify::smarthost::Smarthost;
use crate::store::accounts::AccountRecord;
use crate::store::StoreError;

/// What the link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkPurpose {
    /// A new account's first password.
    Welcome,
    /// A forgotten one.
    Reset,
}

pub(crate) struct Words<'a> {
    welcome: bool,
    practice: &'a str,
    portal: &'a str,
    link: &'a str,
    expires: String,
}

#[derive(Template)]
#[template(path = "notices/password_link.txt")]
struct Plain<'a> {
    w: &'a Words<'a>,
}

#[derive(Template)]
#[template(path = "notices/password_link.html")]
struct Html<'a> {
    w: &'a Words<'a>,
    subject: &'a str,
}

/// One link's e-mail.
pub(crate) struct LinkMail {
    pub purpose: LinkPurpose,
    /// The account's practice ("" for a patient).
    pub practice: String,
    /// The portal's name (`[portal] name`).
    pub portal: String,
    pub link: String,
    pub expires_at: i64,
}

impl LinkMail {
    /// A new one-time link to set `account`'s password (its earlier ones stop working), and the
    /// e-mail that carries it.
    pub(crate) fn issue(
        signing: &SignIn,
        config: &crate::config::Config,
        account: &AccountRecord,
        purpose: LinkPurpose,
    ) -> Result<LinkMail, StoreError> {
        let valid = config.portal.link_valid_secs as i64;
        let token = signing.issue_link(account.id, valid)?;
        Ok(LinkMail {
            purpose,
            practice: account.practice.clone().unwrap_or_default(),
            portal: config.portal.name.clone(),
            link: format!("{}/password?token={}", config.portal_url(), token.text),
            expires_at: signing.now + valid,
        })
    }

    pub(crate) fn subject(&self) -> String {
        match self.purpose {
            LinkPurpose::Welcome => format!("Set your password for {}", self.portal),
            LinkPurpose::Reset => format!("A link to set a new password for {}", self.portal),
        }
    }

    fn words(&self) -> Words<'_> {
        Words {
            welcome: self.purpose == LinkPurpose::Welcome,
            practice: if self.practice.is_empty() { &self.portal } else { &self.practice },
            portal: &self.portal,
            link: &self.link,
            expires: format!("{} UTC", crate::clock::iso8601(self.expires_at).replace('T', " ").trim_end_matches('Z')),
        }
    }

    /// The whole message, text and HTML.
    pub(crate) fn compose(&self, from: &str, to: &str, hostname: &str, now: i64) -> Result<Vec<u8>, Failure> {
        let subject = self.subject();
        let words = self.words();
        let text = Plain { w: &words }.render().map_err(Failure::local)?;
        let text: String = text.lines().map(|line| format!("{line}\r\n")).collect();
        let html = Html { w: &words, subject: &subject }.render().map_err(Failure::local)?;
        let parts = super::compose::Parts { subject: &subject, text: &text, html: &html };
        super::compose::alternative(from, to, &parts, "password", hostname, now)
    }
}

/// Sends link e-mails through `[notify.email]`'s smarthost.
pub(crate) struct Mailer {
    pub smarthost: Smarthost,
    pub from: String,
    pub hostname: String,
}

impl Mailer {
    pub(crate) fn send(&self, mail: &LinkMail, to: &str, now: i64) -> Result<(), Failure> {
        let message = mail.compose(&self.from, to, &self.hostname, now)?;
        self.smarthost.send(&self.from, to, &message)
    }
}

/// Sends `mail` to `account` on a thread of its own, after the page has answered (so the answer
/// takes no longer whether or not a mail goes); a failure is logged.
pub(crate) fn send_later(mailer: std::sync::Arc<Mailer>, mail: LinkMail, account: &AccountRecord, now: i64) {
    let (to, id) = (account.email.clone(), account.id);
    std::thread::spawn(move || {
        if let Err(e) = mailer.send(&mail, &to, now) {
            tracing::warn!(account = id, "portal: the password link could not be sent: {e}");
        }
    });
}

/// The mailer `[notify.email]` describes, if any.
pub(crate) fn mailer(
    config: &crate::config::Config,
    resolver: Box<dyn crate::dns::Resolver>,
) -> Result<Option<Mailer>, String> {
    let Some(c) = &config.notify.email else { return Ok(None) };
    Ok(Some(Mailer {
        smarthost: crate::onboarding::setup::smarthost(c, &config.server.hostname, resolver)?,
        from: c.from.clone(),
        hostname: config.server.hostname.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_email_names_practice_and_link_and_no_password() {
        let mail = LinkMail {
            purpose: LinkPurpose::Welcome,
            practice: "Elm & <Oak>".into(),
            portal: "hisp".into(),
            link: "https://portal.test/password?token=abc".into(),
            expires_at: 1_798_761_600,
        };
        let bytes = mail.compose("no-reply@hisp.test", "ada@elm.test", "hisp.test", 0).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(parsed.subject(), Some("Set your password for hisp"));
        let text = parsed.body_text(0).unwrap();
        assert!(text.starts_with("Elm & <Oak> made you an account on hisp"), "{text}");
        assert!(text.contains("https://portal.test/password?token=abc"));
        assert!(text.contains("until 2027-01-01 00:00:00 UTC"), "{text}");
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("<strong>Elm &#38; &#60;Oak&#62;</strong>"), "{html}");
        let reset = LinkMail { purpose: LinkPurpose::Reset, ..mail };
        let bytes = reset.compose("no-reply@hisp.test", "ada@elm.test", "hisp.test", 0).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let text = parsed.body_text(0).unwrap();
        assert!(text.starts_with("Someone asked to set a new password"), "{text}");
        assert!(text.contains("If you did not ask, ignore this message"), "{text}");
    }
}
