//! The states the store keeps, as types: a practice's identity-proofing state (the machine that
//! moves it is `onboarding::proofing`), a queued message's direction and each recipient's status,
//! a sent message's tracked status and what notifications report, and the receipts owed for
//! messages received. Each is kept as its name in a TEXT column; reading a name this hisp does not
//! know is an error, never a guess. Also the check everything only a verified practice may do
//! goes through.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::{Result, Store};
use crate::address::Domain;

/// A state kept as its name: `as_str`, `parse`, `Display`, serde and the SQL conversions, all
/// from one table of names.
macro_rules! named_state {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub(crate) fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        /// Compares with a name, as tests and reports read it.
        impl PartialEq<&str> for $name {
            fn eq(&self, text: &&str) -> bool {
                self.as_str() == *text
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<$name, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::parse(&text).ok_or_else(|| {
                    serde::de::Error::invalid_value(serde::de::Unexpected::Str(&text), &concat!("a ", stringify!($name)))
                })
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<$name> {
                let text = value.as_str()?;
                $name::parse(text)
                    .ok_or_else(|| FromSqlError::Other(format!("unknown {} {text:?}", stringify!($name)).into()))
            }
        }
    };
}

/// Where a practice stands in identity proofing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ProofingState {
    #[default]
    NotStarted,
    TermsAccepted,
    InProgress,
    Submitted,
    Verified,
    Failed,
}

named_state!(ProofingState {
    NotStarted => "not-started",
    TermsAccepted => "terms-accepted",
    InProgress => "in-progress",
    Submitted => "submitted",
    Verified => "verified",
    Failed => "failed",
});

/// Which way a queued message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// From a local EHR, to be sealed and delivered to a peer.
    Outbound,
    /// From a peer, to be opened and delivered into a mailbox.
    Inbound,
}

named_state!(Flow {
    Outbound => "outbound",
    Inbound => "inbound",
});

/// Where one recipient of a queued message stands: queued -> (in flight) -> sent | delivered |
/// failed, or deferred -> tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecipientStatus {
    Queued,
    Deferred,
    /// Handed to the peer HISP.
    Sent,
    /// Put into a local mailbox.
    Delivered,
    Failed,
}

named_state!(RecipientStatus {
    Queued => "queued",
    Deferred => "deferred",
    Sent => "sent",
    Delivered => "delivered",
    Failed => "failed",
});

/// Who an invitation is for, chosen when inviting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relationship {
    /// A patient of the practice (a date of birth is required and checked when they register).
    Patient,
    /// Someone joining the inviting practice (as a clinician or staff).
    ColleagueHere,
    /// Someone at another practice, which they describe when they register.
    ColleagueElsewhere,
}

named_state!(Relationship {
    Patient => "patient",
    ColleagueHere => "colleague-here",
    ColleagueElsewhere => "colleague-elsewhere",
});

/// What a colleague joining the inviting practice does there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Clinician,
    Staff,
}

named_state!(Role {
    Clinician => "clinician",
    Staff => "staff",
});

/// What an account is: a member of a practice (clinician or staff), or a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccountRole {
    Clinician,
    Staff,
    /// A member who manages the practice's users and settings in the portal.
    Admin,
    Patient,
}

named_state!(AccountRole {
    Clinician => "clinician",
    Staff => "staff",
    Admin => "admin",
    Patient => "patient",
});

/// How far a session has come: past the password, waiting for the second factor or for the
/// account to enrol one (its practice requires it); or signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionStage {
    SecondFactor,
    Enrol,
    SignedIn,
}

named_state!(SessionStage {
    SecondFactor => "second-factor",
    Enrol => "enrol",
    SignedIn => "signed-in",
});

/// What a contact passes before seeing a document shared with them; off: the practice does not
/// share documents by link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ShareCheck {
    #[default]
    Off,
    None,
    Sms,
    DateOfBirth,
}

named_state!(ShareCheck {
    Off => "off",
    None => "none",
    Sms => "sms",
    DateOfBirth => "date-of-birth",
});

/// What happened to a shared document's link, as its sender's audit trail lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShareEvent {
    /// The link was e-mailed to the contact.
    Sent,
    /// The link's page was opened (before the check).
    Opened,
    CodeSent,
    CheckFailed,
    /// Too many failed checks: the link works again only once the sender sends a fresh one.
    Locked,
    /// The check was passed (or there is none): the link is bound to this browser.
    Passed,
    Viewed,
    Downloaded,
    /// The link was used in a browser it is not bound to, or after it expired, was revoked or locked.
    Refused,
    Revoked,
    /// The sender sent a fresh link (the earlier one no longer works).
    Resent,
    /// The contact asked for a new link on an expired link's page.
    RenewalAsked,
    /// The practice renews expired links after the check: this one was.
    Renewed,
}

named_state!(ShareEvent {
    Sent => "sent",
    Opened => "opened",
    CodeSent => "code-sent",
    CheckFailed => "check-failed",
    Locked => "locked",
    Passed => "passed",
    Viewed => "viewed",
    Downloaded => "downloaded",
    Refused => "refused",
    Revoked => "revoked",
    Resent => "resent",
    RenewalAsked => "renewal-asked",
    Renewed => "renewed",
});

/// How an invitation reaches its invitee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContactKind {
    Email,
    Fax,
}

named_state!(ContactKind {
    Email => "email",
    Fax => "fax",
});

/// Where an invitation stands: pending until accepted, expired (30 days), cancelled (by the
/// sender, or replaced by a new invitation) or locked (three wrong dates of birth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvitationState {
    Pending,
    Accepted,
    Expired,
    Cancelled,
    Locked,
}

named_state!(InvitationState {
    Pending => "pending",
    Accepted => "accepted",
    Expired => "expired",
    Cancelled => "cancelled",
    Locked => "locked",
});

/// Where the latest notice of an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeState {
    Queued,
    Sent,
    /// Failed at least once; tried again later.
    Retrying,
    /// Given up on: the invitation shows "notification failed".
    Failed,
}

named_state!(NoticeState {
    Queued => "queued",
    Sent => "sent",
    Retrying => "retrying",
    Failed => "failed",
});

/// What a notice about an invitation says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeKind {
    /// The invitation itself: the practice, the code and the link.
    Invitation,
    /// A reminder of a pending invitation (scheduled, or sent by hand).
    Reminder,
    /// To the invitee: three wrong dates of birth; contact the sender.
    Locked,
    /// To the sender: the invitation was locked after three wrong dates of birth.
    SenderLocked,
}

named_state!(NoticeKind {
    Invitation => "invitation",
    Reminder => "reminder",
    Locked => "locked",
    SenderLocked => "sender-locked",
});

/// What is known of one recipient of a message a local EHR sent, from its notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackStatus {
    Queued,
    Sent,
    Processed,
    Dispatched,
    Failed,
    /// No notification came in time.
    TimedOut,
    /// Kept here for a recipient with no Direct address, who was invited (no notification is
    /// awaited); dispatched into their mailbox when they accept.
    Held,
}

named_state!(TrackStatus {
    Queued => "queued",
    Sent => "sent",
    Processed => "processed",
    Dispatched => "dispatched",
    Failed => "failed",
    TimedOut => "timed-out",
    Held => "held",
});

impl TrackStatus {
    /// The status once `happened` is recorded over this one. It moves forward only: a processed
    /// MDN overtaken by its dispatched one (they may arrive in either order) does not move it
    /// back, a failure (or a timeout) stays what it is, and news that is no status (displayed,
    /// a DSN's delayed) changes nothing.
    pub(crate) fn after(self, happened: &Event) -> TrackStatus {
        match (happened, self) {
            (_, TrackStatus::Failed | TrackStatus::TimedOut) => self,
            (Event::Failed(_), _) => TrackStatus::Failed,
            (Event::Processed, TrackStatus::Dispatched) => self,
            (Event::Processed, _) => TrackStatus::Processed,
            (Event::Dispatched, _) => TrackStatus::Dispatched,
            (Event::Other(_), _) => self,
        }
    }
}

/// The disposition an MDN reports (RFC 8098, as Direct profiles it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    Processed,
    Dispatched,
    Failed,
}

named_state!(Disposition {
    Processed => "processed",
    Dispatched => "dispatched",
    Failed => "failed",
});

/// What a notification (MDN or DSN) says happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Processed,
    Dispatched,
    /// A failed MDN, or a DSN with `Action: failed` (its status and diagnostic).
    Failed(String),
    /// Anything else (displayed, deleted, a DSN's delayed or relayed): recorded only.
    Other(String),
}

impl Event {
    pub(crate) fn name(&self) -> &str {
        match self {
            Event::Processed => "processed",
            Event::Dispatched => "dispatched",
            Event::Failed(_) => "failed",
            Event::Other(what) => what,
        }
    }
}

/// Refuses what only a verified practice may do, naming the practice and its state. Err(Ok):
/// refused; Err(Err): the store could not be asked.
pub(crate) fn require_verified(store: &dyn Store, domain: &Domain) -> std::result::Result<(), Result<String>> {
    let Some((practice, state)) = store.practice_state(domain).map_err(Err)? else {
        return Err(Ok(format!("{domain} is not a hosted domain")));
    };
    if state == ProofingState::Verified {
        return Ok(());
    }
    Err(Ok(format!(
        "practice {practice} has not completed identity proofing (it is {state}); `hisp proofing status {domain}` shows what is left"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracked recipient's status after each kind of news, over each status it may have: the
    /// table the tracking of sent messages follows.
    #[test]
    fn the_tracked_status_moves_forward_only() {
        use TrackStatus::*;
        let failed = Event::Failed("5.1.1 no such user".into());
        let displayed = Event::Other("displayed".into());
        let table: &[(TrackStatus, &Event, TrackStatus)] = &[
            (Sent, &Event::Processed, Processed),
            (Sent, &Event::Dispatched, Dispatched),
            (Sent, &failed, Failed),
            (Sent, &displayed, Sent),
            (Processed, &Event::Dispatched, Dispatched),
            (Processed, &failed, Failed),
            (Dispatched, &Event::Processed, Dispatched),
            (Dispatched, &failed, Failed),
            (Failed, &Event::Processed, Failed),
            (Failed, &Event::Dispatched, Failed),
            (TimedOut, &Event::Dispatched, TimedOut),
            (TimedOut, &failed, TimedOut),
            (Queued, &Event::Processed, Processed),
        ];
        for (current, happened, expected) in table {
            assert_eq!(current.after(happened), *expected, "{happened:?} over {current}");
        }
    }

    #[test]
    fn every_name_reads_back_as_its_state_and_an_unknown_name_is_refused() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for status in [TrackStatus::Queued, TrackStatus::TimedOut, TrackStatus::Dispatched] {
            let back: TrackStatus = conn.query_row("SELECT ?1", [status], |r| r.get(0)).unwrap();
            assert_eq!(back, status);
            assert_eq!(TrackStatus::parse(status.as_str()), Some(status));
        }
        let back: ProofingState = conn.query_row("SELECT 'terms-accepted'", [], |r| r.get(0)).unwrap();
        assert_eq!(back, ProofingState::TermsAccepted);
        let unknown = conn.query_row("SELECT 'lost'", [], |r| r.get::<_, RecipientStatus>(0));
        assert!(unknown.unwrap_err().to_string().contains("unknown RecipientStatus \"lost\""));
        assert_eq!(serde_json::to_string(&TrackStatus::TimedOut).unwrap(), "\"timed-out\"");
    }
}
