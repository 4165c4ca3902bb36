//! Sending the notices of invitations: each due notice goes through the notifier for its
//! contact's kind; a temporary failure is retried with backoff (1 minute, doubling, at most 6
//! hours between tries) until it has been tried for a day, a permanent one is given up at once.
//! What a notice says is only the practice's name, the code and the link: no PHI, ever.

use serde::Serialize;

use super::code::InvitationCode;
use crate::failure::{Code, Failure};
use crate::store::invitations::{InvitationRecord, NoticeOutcome, NoticeRecord};
use crate::store::{ContactKind, InvitationStore, NoticeKind};

/// Everything a notice says and where it goes.
#[derive(Debug, Clone)]
pub(crate) struct Notice<'a> {
    pub kind: NoticeKind,
    pub contact_kind: ContactKind,
    pub contact: &'a str,
    pub practice: &'a str,
    pub code: InvitationCode,
    /// Where the code is entered, the code in it.
    pub link: String,
    /// When the invitation expires.
    pub expires_at: i64,
    /// Names this notice to the channel (a Message-ID's first part, a gateway's reference).
    pub reference: String,
    pub invitation: i64,
    /// Who sent the invitation (a practice user's address, or the CLI's or API's actor).
    pub inviter: &'a str,
}

/// How notices reach invitees (e-mail through the smarthost, fax through a gateway).
pub(crate) trait Notifier: Send + Sync {
    /// Sends one; Ok says where it went, masked, for the invitation's record.
    fn send(&self, notice: &Notice) -> Result<String, Failure>;
}

/// No channel is configured for a kind of contact: nothing is ever sent anywhere by default.
pub(crate) struct NotConfigured;

impl Notifier for NotConfigured {
    fn send(&self, notice: &Notice) -> Result<String, Failure> {
        let what = match notice.contact_kind {
            ContactKind::Email => "e-mail: configure [notify.email]",
            ContactKind::Fax => "fax: configure [notify.gateway]",
        };
        Err(Failure::permanent(Code::ROUTING, format!("no notification channel for {what}")))
    }
}

/// Retries are at most this far apart.
const MAX_BACKOFF_SECS: i64 = 6 * 3600;

/// When a failing notice is tried again ([invitations] notice_retry_secs, notice_give_up_secs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    /// The first retry waits this long; each next one twice as long, up to 6 hours.
    pub first_secs: i64,
    /// A notice still failing this long after it was queued is given up.
    pub give_up_secs: i64,
}

impl Retry {
    pub(crate) fn of(config: &crate::config::InvitationsConfig) -> Retry {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        Retry { first_secs: secs(config.notice_retry_secs), give_up_secs: secs(config.notice_give_up_secs) }
    }

    /// When to try again after `attempts` failed tries of a notice queued at `queued_at`; None:
    /// give up.
    pub(crate) fn at(self, queued_at: i64, attempts: u32, now: i64) -> Option<i64> {
        let factor = 1i64 << attempts.saturating_sub(1).min(30);
        let wait = self.first_secs.saturating_mul(factor).min(MAX_BACKOFF_SECS.max(self.first_secs));
        let at = now.saturating_add(wait);
        (at <= queued_at.saturating_add(self.give_up_secs)).then_some(at)
    }
}

/// The link an invitee follows: `accept_url` with the code as its `code` parameter.
pub(crate) fn link(accept_url: &str, code: &InvitationCode) -> String {
    let join = if accept_url.contains('?') { '&' } else { '?' };
    format!("{accept_url}{join}code={}", code.as_str())
}

/// What one pass over the due notices did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Sent {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Sends the notices due at `now` (at most `limit`), recording each outcome.
pub(crate) fn send_due(
    store: &dyn InvitationStore,
    notifier: &dyn Notifier,
    accept_url: &str,
    retry: Retry,
    now: i64,
    limit: usize,
) -> crate::store::Result<Sent> {
    let mut report = Sent::default();
    for (notice, invitation) in store.due_notices(now, limit)? {
        let outcome = attempt(notifier, &notice, &invitation, accept_url);
        let recorded = match &outcome {
            Ok(to) => {
                report.sent += 1;
                NoticeOutcome::Sent { to }
            }
            Err(failure) => match (failure.is_temporary(), retry.at(notice.created_at, notice.attempts + 1, now)) {
                (true, Some(at)) => {
                    report.retrying += 1;
                    tracing::warn!(notice = notice.id, "invitation notice failed, tried again later: {failure}");
                    NoticeOutcome::Retry { error: &failure.text, at }
                }
                _ => {
                    report.failed += 1;
                    tracing::error!(notice = notice.id, "invitation notice failed for good: {failure}");
                    NoticeOutcome::GiveUp { error: &failure.text }
                }
            },
        };
        store.record_notice(notice.id, &recorded, now)?;
    }
    Ok(report)
}

fn attempt(
    notifier: &dyn Notifier,
    notice: &NoticeRecord,
    invitation: &InvitationRecord,
    accept_url: &str,
) -> Result<String, Failure> {
    let code = InvitationCode::parse(&invitation.code)
        .map_err(|e| Failure::local(format!("invitation #{}: its code cannot be read: {e}", invitation.id)))?;
    notifier.send(&Notice {
        kind: notice.kind,
        contact_kind: invitation.contact_kind,
        contact: &invitation.contact,
        practice: &invitation.practice,
        link: link(accept_url, &code),
        code,
        expires_at: super::schedule::expires_at(invitation.created_at),
        reference: format!("invitation-{}-notice-{}", invitation.id, notice.id),
        invitation: invitation.id,
        inviter: &invitation.inviter,
    })
}

/// A contact as records and logs may show it: the domain of an e-mail address, the last four
/// digits of a fax number.
pub(crate) fn masked(kind: ContactKind, contact: &str) -> String {
    match kind {
        ContactKind::Email => format!("***@{}", contact.rsplit_once('@').map_or("", |(_, d)| d)),
        ContactKind::Fax => format!("fax ***{}", &contact[contact.len().saturating_sub(4)..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        let retry = Retry::of(&crate::config::InvitationsConfig::default());
        let queued = 1_000_000;
        assert_eq!(retry.at(queued, 1, queued), Some(queued + 60));
        assert_eq!(retry.at(queued, 2, queued + 60), Some(queued + 60 + 120));
        assert_eq!(retry.at(queued, 5, queued), Some(queued + 960));
        assert_eq!(retry.at(queued, 30, queued), Some(queued + 6 * 3600), "at most 6 hours apart");
        assert_eq!(retry.at(queued, 9, queued + 20 * 3600), None, "past a day: given up");
        let quick = Retry { first_secs: 1, give_up_secs: 10 };
        assert_eq!(quick.at(queued, 3, queued + 5), Some(queued + 9));
        assert_eq!(quick.at(queued, 4, queued + 5), None);
    }

    #[test]
    fn links_carry_the_code_and_contacts_are_masked() {
        let code = InvitationCode::parse("7KQ4-M2XD-9R0T").unwrap();
        assert_eq!(link("https://h.test/accept", &code), "https://h.test/accept?code=7KQ4M2XD9R0T");
        assert_eq!(link("https://h.test/a?lang=en", &code), "https://h.test/a?lang=en&code=7KQ4M2XD9R0T");
        assert_eq!(masked(ContactKind::Email, "ada@example.org"), "***@example.org");
        assert_eq!(masked(ContactKind::Fax, "+15555550123"), "fax ***0123");
    }
}
