//! The e-mails of sharing by link, from `templates/notices/share.*`: the link to the contact (the
//! practice's name and a "View document" link), and to the member who shared, the first view
//! and a contact's request for a new link. None names a patient, a document or a contact.

use askama::Template;

use super::password_mail::Mailer;
use crate::failure::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShareMailKind {
    /// To the contact: the link.
    Link,
    /// To the sender: the first view.
    Viewed,
    /// To the sender: the contact asks for a new link.
    RenewalAsked,
}

/// One e-mail's words.
pub(crate) struct ShareMail {
    pub kind: ShareMailKind,
    pub practice: String,
    /// The portal's name (`[portal] name`).
    pub portal: String,
    /// The link (to the contact), or the portal's sharing page (to the sender).
    pub link: String,
    /// When an unused link expires.
    pub expires_at: i64,
}

#[derive(Template)]
#[template(path = "notices/share.txt")]
struct Plain<'a> {
    w: &'a Words<'a>,
}

#[derive(Template)]
#[template(path = "notices/share.html")]
struct Html<'a> {
    w: &'a Words<'a>,
    subject: &'a str,
}

struct Words<'a> {
    kind: ShareMailKind,
    practice: &'a str,
    portal: &'a str,
    link: &'a str,
    expires: String,
}

impl ShareMail {
    pub(crate) fn subject(&self) -> String {
        match self.kind {
            ShareMailKind::Link => format!("{} shared a document with you", self.practice),
            ShareMailKind::Viewed => "A document you shared was viewed".to_string(),
            ShareMailKind::RenewalAsked => "A new link is asked for a document you shared".to_string(),
        }
    }

    pub(crate) fn compose(&self, from: &str, to: &str, hostname: &str, now: i64) -> Result<Vec<u8>, Failure> {
        let subject = self.subject();
        let words = Words {
            kind: self.kind,
            practice: &self.practice,
            portal: &self.portal,
            link: &self.link,
            expires: format!("{} UTC", crate::clock::iso8601(self.expires_at).replace('T', " ").trim_end_matches('Z')),
        };
        let text = Plain { w: &words }.render().map_err(Failure::local)?;
        let text: String = text.lines().map(|line| format!("{line}\r\n")).collect();
        let html = Html { w: &words, subject: &subject }.render().map_err(Failure::local)?;
        let parts = super::compose::Parts { subject: &subject, text: &text, html: &html };
        super::compose::alternative(from, to, &parts, "share", hostname, now)
    }

    pub(crate) fn send(&self, mailer: &Mailer, to: &str, now: i64) -> Result<(), Failure> {
        let message = self.compose(&mailer.from, to, &mailer.hostname, now)?;
        mailer.smarthost.send(&mailer.from, to, &message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_email_names_the_practice_and_the_link_and_nothing_else() {
        let mail = ShareMail {
            kind: ShareMailKind::Link,
            practice: "Elm & <Oak>".into(),
            portal: "hisp".into(),
            link: "https://portal.test/s/abc".into(),
            expires_at: 1_798_761_600,
        };
        let bytes = mail.compose("no-reply@hisp.test", "jane@law.test", "hisp.test", 0).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(parsed.subject(), Some("Elm & <Oak> shared a document with you"));
        let text = parsed.body_text(0).unwrap();
        assert!(text.starts_with("Elm & <Oak> shared a document with you on hisp."), "{text}");
        assert!(text.contains("https://portal.test/s/abc") && text.contains("2027-01-01 00:00:00 UTC"), "{text}");
        let html = parsed.body_html(0).unwrap();
        assert!(
            html.contains("<strong>Elm &#38; &#60;Oak&#62;</strong>") && html.contains(">View document</a>"),
            "{html}"
        );
        let viewed = ShareMail { kind: ShareMailKind::Viewed, link: "https://portal.test/shares".into(), ..mail };
        let bytes = viewed.compose("no-reply@hisp.test", "ada@elm.test", "hisp.test", 0).unwrap();
        let text = mail_parser::MessageParser::default().parse(&bytes).unwrap().body_text(0).unwrap().to_string();
        assert!(text.starts_with("A document you shared on hisp was viewed for the first time."), "{text}");
    }
}
