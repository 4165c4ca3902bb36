//! What a notice says, from the templates under `templates/notices/`: the inviting practice's
//! name, the code, the link and the expiry date, as plain text (the e-mail's text part and the
//! fax's page) and HTML (the e-mail's other part, escaped by askama). Nothing of a message, a
//! patient or the invitee is in it.

use askama::Template;
use mail_builder::headers::date::Date;
use mail_builder::MessageBuilder;

use super::notices::Notice;
use crate::failure::Failure;
use crate::store::NoticeKind;

struct Words<'a> {
    reminder: bool,
    locked: bool,
    to_sender: bool,
    invitation: i64,
    practice: &'a str,
    code: String,
    link: &'a str,
    expires: String,
}

#[derive(Template)]
#[template(path = "notices/invitation.txt")]
struct Plain<'a> {
    w: &'a Words<'a>,
}

#[derive(Template)]
#[template(path = "notices/invitation.html")]
struct Html<'a> {
    w: &'a Words<'a>,
    subject: &'a str,
}

fn words<'a>(notice: &'a Notice) -> Words<'a> {
    Words {
        reminder: notice.kind == NoticeKind::Reminder,
        locked: notice.kind == NoticeKind::Locked,
        to_sender: notice.kind == NoticeKind::SenderLocked,
        invitation: notice.invitation,
        practice: notice.practice,
        code: notice.code.to_string(),
        link: &notice.link,
        expires: format!("{} (UTC)", &crate::clock::iso8601(notice.expires_at)[..10]),
    }
}

pub(crate) fn subject(notice: &Notice) -> String {
    match notice.kind {
        NoticeKind::Invitation => format!("{} invites you to exchange secure messages", notice.practice),
        NoticeKind::Reminder => format!("Reminder: {} invites you to exchange secure messages", notice.practice),
        NoticeKind::Locked => format!("Your registration with {}'s invitation was stopped", notice.practice),
        NoticeKind::SenderLocked => {
            format!("Invitation #{} was locked after three wrong dates of birth", notice.invitation)
        }
    }
}

/// The text of the notice: the e-mail's text part, the fax's page.
pub(crate) fn plain_text(notice: &Notice) -> Result<String, Failure> {
    let text = Plain { w: &words(notice) }.render().map_err(Failure::local)?;
    // CRLF line ends: what a mail's text part and a fax gateway's text expect.
    Ok(text.lines().map(|line| format!("{line}\r\n")).collect())
}

/// The e-mail to the invitee: multipart/alternative of the text and the HTML.
pub(crate) fn email(notice: &Notice, from: &str, hostname: &str, now: i64) -> Result<Vec<u8>, Failure> {
    message(notice, from, notice.contact, hostname, now)
}

/// The message to whoever sent the invitation (into their mailbox here).
pub(crate) fn to_sender(notice: &Notice, from: &str, to: &str, hostname: &str, now: i64) -> Result<Vec<u8>, Failure> {
    message(notice, from, to, hostname, now)
}

fn message(notice: &Notice, from: &str, to: &str, hostname: &str, now: i64) -> Result<Vec<u8>, Failure> {
    let subject = subject(notice);
    let html = Html { w: &words(notice), subject: &subject }.render().map_err(Failure::local)?;
    let parts = Parts { subject: &subject, text: &plain_text(notice)?, html: &html };
    alternative(from, to, &parts, &notice.reference, hostname, now)
}

/// A notice's subject and its two renderings.
pub(crate) struct Parts<'a> {
    pub subject: &'a str,
    /// With CRLF line ends.
    pub text: &'a str,
    pub html: &'a str,
}

/// A notice e-mail: multipart/alternative of its text and HTML, its Message-ID `reference`
/// and a random part at `hostname`.
pub(crate) fn alternative(
    from: &str,
    to: &str,
    parts: &Parts,
    reference: &str,
    hostname: &str,
    now: i64,
) -> Result<Vec<u8>, Failure> {
    let mut id = [0u8; 12];
    openssl::rand::rand_bytes(&mut id).map_err(Failure::local)?;
    let mut out = Vec::new();
    MessageBuilder::new()
        .from(from)
        .to(to)
        .subject(parts.subject)
        .date(Date::new(now))
        .message_id(format!("{reference}-{}@{hostname}", hex::encode(id)))
        .text_body(parts.text)
        .html_body(parts.html)
        .write_to(&mut out)
        .map_err(Failure::local)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::code::InvitationCode;
    use crate::store::ContactKind;

    fn notice(kind: NoticeKind, practice: &str) -> Notice<'_> {
        let code = InvitationCode::parse("7KQ4-M2XD-9R0T").unwrap();
        Notice {
            kind,
            contact_kind: ContactKind::Email,
            contact: "ada@example.org",
            practice,
            link: crate::network::notices::link("https://portal.test/invitations/accept", &code),
            code,
            expires_at: 1_798_761_600, // 2027-01-01
            reference: "invitation-7-notice-9".into(),
            invitation: 7,
            inviter: "dr@elm.test",
        }
    }

    #[test]
    fn the_notice_says_who_invites_the_code_the_link_and_the_expiry() {
        let text = plain_text(&notice(NoticeKind::Invitation, "Elm Clinic")).unwrap();
        assert!(text.starts_with("Elm Clinic invites you"), "{text}");
        assert!(text.contains("Your invitation code: 7KQ4-M2XD-9R0T\r\n"));
        assert!(text.contains("https://portal.test/invitations/accept?code=7KQ4M2XD9R0T\r\n"));
        assert!(text.contains("expires on 2027-01-01 (UTC)"));
        assert!(!text.contains('\n') || text.matches('\n').count() == text.matches("\r\n").count());
        let reminder = plain_text(&notice(NoticeKind::Reminder, "Elm Clinic")).unwrap();
        assert!(reminder.starts_with("Reminder: Elm Clinic invites you"), "{reminder}");
        let locked = plain_text(&notice(NoticeKind::Locked, "Elm Clinic")).unwrap();
        assert!(locked.contains("contact Elm Clinic to be invited again"), "{locked}");
        assert!(!locked.contains("7KQ4"), "a locked invitation's code is not repeated");
    }

    #[test]
    fn the_email_has_text_and_html_parts_and_escapes_the_practice_name() {
        let mail = email(&notice(NoticeKind::Invitation, "Elm & <Oak>"), "no-reply@hisp.test", "hisp.test", 0).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&mail).unwrap();
        assert_eq!(parsed.subject(), Some("Elm & <Oak> invites you to exchange secure messages"));
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("<strong>Elm &#38; &#60;Oak&#62;</strong>"), "{html}");
        assert!(html.contains(r#"href="https://portal.test/invitations/accept?code=7KQ4M2XD9R0T""#));
        assert!(parsed.body_text(0).unwrap().contains("7KQ4-M2XD-9R0T"));
        assert!(!String::from_utf8_lossy(&mail).contains("ada@example.org\r\nBcc"));
    }
}
