//! What a practice does with its invitations: send, list, show, remind by hand, cancel, correct a
//! patient's date of birth (a new invitation replaces the old), and the schedule's reminders and
//! expiry. Every step is saved with an audit entry; times come from the caller's clock.

use serde::Serialize;

use super::code::InvitationCode;
use super::invitee::{self, FieldError, InviteeRequest};
use super::schedule::{self, Step};
use crate::config::InvitationsConfig;
use crate::store::invitations::{InvitationFilter, InvitationRecord, NewInvitation, NoticeRecord};
use crate::store::{InvitationState, NodeStore, NoticeKind, NoticeState, Relationship, StoreError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum InvitationError {
    /// The request is wrong: every problem, each with its field.
    #[error("{}", super::invitee::describe(.0))]
    Invalid(Vec<FieldError>),
    /// Not possible in the invitation's state (cancelling an accepted one).
    #[error("{0}")]
    State(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot make an invitation code: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

pub(crate) type Result<T> = std::result::Result<T, InvitationError>;

/// Where an invitation stands, as its sender sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    Sent,
    Reminded,
    Accepted,
    Expired,
    Cancelled,
    Locked,
    NotificationFailed,
}

impl Status {
    pub(crate) fn of(record: &InvitationRecord) -> Status {
        match record.state {
            InvitationState::Pending if record.notice == NoticeState::Failed => Status::NotificationFailed,
            InvitationState::Pending if record.reminders > 0 => Status::Reminded,
            InvitationState::Pending => Status::Sent,
            InvitationState::Accepted => Status::Accepted,
            InvitationState::Expired => Status::Expired,
            InvitationState::Cancelled => Status::Cancelled,
            InvitationState::Locked => Status::Locked,
        }
    }

    const ALL: [Status; 7] = [
        Status::Sent,
        Status::Reminded,
        Status::Accepted,
        Status::Expired,
        Status::Cancelled,
        Status::Locked,
        Status::NotificationFailed,
    ];

    /// For `--status`: sent, reminded, accepted, expired, cancelled, locked, notification-failed.
    pub(crate) fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Reminded => "reminded",
            Status::Accepted => "accepted",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Locked => "locked",
            Status::NotificationFailed => "notification-failed",
        }
    }

    /// What a filter by this status asks the store for.
    fn filter(self) -> InvitationFilter {
        let pending = Some(InvitationState::Pending);
        match self {
            Status::Sent => InvitationFilter { state: pending, reminded: Some(false), ..Default::default() },
            Status::Reminded => InvitationFilter { state: pending, reminded: Some(true), ..Default::default() },
            Status::NotificationFailed => {
                InvitationFilter { state: pending, notification_failed: true, ..Default::default() }
            }
            Status::Accepted => InvitationFilter { state: Some(InvitationState::Accepted), ..Default::default() },
            Status::Expired => InvitationFilter { state: Some(InvitationState::Expired), ..Default::default() },
            Status::Cancelled => InvitationFilter { state: Some(InvitationState::Cancelled), ..Default::default() },
            Status::Locked => InvitationFilter { state: Some(InvitationState::Locked), ..Default::default() },
        }
    }
}

/// An invitation as its sender sees it (never its code).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    #[serde(flatten)]
    pub record: InvitationRecord,
    pub status: Status,
    /// Waiting for the invitee: what a UI marks with a warning.
    pub pending: bool,
    pub expires_at: i64,
}

impl Summary {
    fn of(record: InvitationRecord) -> Summary {
        Summary {
            status: Status::of(&record),
            pending: record.state == InvitationState::Pending,
            expires_at: schedule::expires_at(record.created_at),
            record,
        }
    }
}

/// One invitation with its notices.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Detail {
    #[serde(flatten)]
    pub summary: Summary,
    pub notices: Vec<NoticeRecord>,
}

/// What one run of the schedule did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Scheduled {
    pub reminded: usize,
    pub expired: usize,
}

/// A practice's invitations, at one instant.
pub(crate) struct Invitations<'a> {
    pub store: &'a dyn NodeStore,
    pub config: &'a InvitationsConfig,
    pub now: i64,
}

impl Invitations<'_> {
    /// Invites someone on behalf of `practice` (its name or a domain); `inviter` is who asked.
    pub(crate) fn send(&self, practice: &str, inviter: &str, request: &InviteeRequest) -> Result<Summary> {
        self.send_replacing(practice, inviter, request, None)
    }

    fn send_replacing(
        &self,
        practice: &str,
        inviter: &str,
        request: &InviteeRequest,
        replaces: Option<i64>,
    ) -> Result<Summary> {
        let practice = self.store.practice(practice)?;
        if !practice.invitations_allowed {
            return Err(InvitationError::State(format!(
                "{} does not allow invitations (its admin can turn them on in the practice settings)",
                practice.name
            )));
        }
        let invitee = invitee::check(request, self.now).map_err(InvitationError::Invalid)?;
        // A code that collides with another's (one chance in 2^60 per code) is drawn again.
        for _ in 0..3 {
            let code = InvitationCode::generate()?;
            let new = NewInvitation {
                practice_id: practice.id,
                inviter,
                relationship: invitee.relationship,
                role: invitee.role,
                name: &invitee.name,
                contact_kind: invitee.contact_kind,
                contact: &invitee.contact,
                date_of_birth: invitee.date_of_birth.as_deref(),
                code: code.as_str(),
                next_due_at: schedule::next_due(self.now, 0),
                replaces,
                now: self.now,
            };
            match self.store.add_invitation(&new, self.config.per_practice_per_hour) {
                Err(StoreError::Duplicate(_)) => continue,
                other => return Ok(Summary::of(other?)),
            }
        }
        Err(StoreError::Conflict("could not draw an unused invitation code; try again".into()).into())
    }

    pub(crate) fn list(&self, practice: &str, status: Option<Status>, limit: usize) -> Result<Vec<Summary>> {
        let practice = self.store.practice(practice)?;
        let filter = InvitationFilter { limit, ..status.map(Status::filter).unwrap_or_default() };
        Ok(self.store.invitations(practice.id, &filter)?.into_iter().map(Summary::of).collect())
    }

    pub(crate) fn show(&self, practice: &str, id: i64) -> Result<Detail> {
        let record = self.record(practice, id)?;
        let notices = self.store.notices(record.id)?;
        Ok(Detail { summary: Summary::of(record), notices })
    }

    /// A reminder sent by hand; refused while the last notice is still on its way.
    pub(crate) fn remind(&self, practice: &str, id: i64) -> Result<Summary> {
        let mut record = self.pending(practice, id, "remind")?;
        if matches!(record.notice, NoticeState::Queued | NoticeState::Retrying) {
            return Err(InvitationError::State(format!(
                "invitation #{id}: its last notice is still being sent ({}); `hisp invite show {id}` follows it",
                record.notice
            )));
        }
        record.reminders += 1;
        self.store.save_invitation(&record, &[NoticeKind::Reminder], "invitation.remind", self.now)?;
        Ok(Summary::of(self.record(practice, id)?))
    }

    pub(crate) fn cancel(&self, practice: &str, id: i64) -> Result<Summary> {
        let mut record = self.pending(practice, id, "cancel")?;
        record.state = InvitationState::Cancelled;
        record.next_due_at = None;
        record.closed_at = Some(self.now);
        self.store.save_invitation(&record, &[], "invitation.cancel", self.now)?;
        Ok(Summary::of(self.record(practice, id)?))
    }

    /// Corrects a patient's date of birth: the invitation is cancelled and a new one, with a new
    /// code, goes to the same person.
    pub(crate) fn change_date_of_birth(&self, practice: &str, id: i64, date_of_birth: &str) -> Result<Summary> {
        let old = self.pending(practice, id, "edit")?;
        if old.relationship != Relationship::Patient {
            return Err(InvitationError::State(format!(
                "invitation #{id} is not a patient's: it has no date of birth"
            )));
        }
        let request = InviteeRequest {
            name: old.name.clone(),
            email: (old.contact_kind == crate::store::ContactKind::Email).then(|| old.contact.clone()),
            fax: (old.contact_kind == crate::store::ContactKind::Fax).then(|| old.contact.clone()),
            relationship: old.relationship.to_string(),
            role: None,
            date_of_birth: Some(date_of_birth.to_string()),
        };
        self.send_replacing(practice, &old.inviter, &request, Some(old.id))
    }

    /// Sends the reminders due and expires the invitations whose time is up, across every
    /// practice (at most `limit` invitations in one run).
    pub(crate) fn run_schedule(&self, limit: usize) -> Result<Scheduled> {
        let mut done = Scheduled::default();
        for mut record in self.store.due_invitations(self.now, limit)? {
            let (notices, action) = match schedule::due(record.created_at, record.steps_done, self.now) {
                Some(Step::Remind { steps_done }) => {
                    record.reminders += 1;
                    record.steps_done = steps_done;
                    record.next_due_at = Some(schedule::next_due(record.created_at, steps_done));
                    done.reminded += 1;
                    (&[NoticeKind::Reminder][..], "invitation.remind")
                }
                Some(Step::Expire) => {
                    record.state = InvitationState::Expired;
                    record.next_due_at = None;
                    record.closed_at = Some(self.now);
                    done.expired += 1;
                    (&[][..], "invitation.expire")
                }
                None => {
                    record.next_due_at = Some(schedule::next_due(record.created_at, record.steps_done));
                    (&[][..], "invitation.reschedule")
                }
            };
            match self.store.save_invitation(&record, notices, action, self.now) {
                // Changed meanwhile (cancelled, accepted): the next run sees it as it is now.
                Err(StoreError::Conflict(why)) => tracing::info!("invitation schedule: {why}"),
                other => other?,
            }
        }
        Ok(done)
    }

    fn record(&self, practice: &str, id: i64) -> Result<InvitationRecord> {
        let practice = self.store.practice(practice)?;
        Ok(self.store.invitation(practice.id, id)?)
    }

    fn pending(&self, practice: &str, id: i64, doing: &str) -> Result<InvitationRecord> {
        let record = self.record(practice, id)?;
        if record.state != InvitationState::Pending {
            return Err(InvitationError::State(format!(
                "cannot {doing} invitation #{id}: it is {} (send a new invitation instead)",
                record.state
            )));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests;
