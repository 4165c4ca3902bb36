use std::sync::Mutex;

use super::*;
use crate::failure::{Code, Failure};
use crate::network::notices::{self, Notice, Notifier};
use crate::network::schedule::DAY;
use crate::network::testing::{patient, store, T0};
use crate::store::ContactKind;

const ACCEPT: &str = "https://portal.test/invitations/accept";
const RETRY: notices::Retry = notices::Retry { first_secs: 60, give_up_secs: DAY };

fn at<'a>(store: &'a dyn NodeStore, config: &'a InvitationsConfig, now: i64) -> Invitations<'a> {
    Invitations { store, config, now }
}

/// Records what it is asked to send; fails while `failing` holds a failure.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(NoticeKind, String, String)>>,
    failing: Mutex<Option<Failure>>,
}

impl Notifier for Recorder {
    fn send(&self, notice: &Notice) -> std::result::Result<String, Failure> {
        if let Some(failure) = self.failing.lock().unwrap().clone() {
            return Err(failure);
        }
        self.sent.lock().unwrap().push((notice.kind, notice.contact.to_string(), notice.link.clone()));
        Ok(notices::masked(notice.contact_kind, notice.contact))
    }
}

fn kinds(recorder: &Recorder) -> Vec<NoticeKind> {
    recorder.sent.lock().unwrap().iter().map(|(kind, _, _)| *kind).collect()
}

#[test]
fn an_invitation_is_kept_pending_with_its_notice_queued_and_sent_once() {
    let store = store();
    let config = InvitationsConfig::default();
    let sent = at(&*store, &config, T0).send("elm.test", "dr@elm.test", &patient("Ada@Example.org")).unwrap();
    assert_eq!(sent.status, Status::Sent);
    assert!(sent.pending);
    assert_eq!(sent.record.contact, "ada@example.org");
    assert_eq!(sent.record.contact_kind, ContactKind::Email);
    assert_eq!(sent.expires_at, T0 + 31 * DAY);
    assert!(!serde_json::to_string(&sent).unwrap().contains(&sent.record.code), "the sender never sees the code");

    let recorder = Recorder::default();
    let report = notices::send_due(&*store, &recorder, ACCEPT, RETRY, T0, 10).unwrap();
    assert_eq!(report, notices::Sent { sent: 1, retrying: 0, failed: 0 });
    let (kind, to, link) = recorder.sent.lock().unwrap()[0].clone();
    assert_eq!((kind, to.as_str()), (NoticeKind::Invitation, "ada@example.org"));
    assert_eq!(link, format!("{ACCEPT}?code={}", sent.record.code));
    assert_eq!(notices::send_due(&*store, &recorder, ACCEPT, RETRY, T0 + 60, 10).unwrap().sent, 0, "sent once");

    let detail = at(&*store, &config, T0).show("Elm Clinic", sent.record.id).unwrap();
    assert_eq!(detail.notices.len(), 1);
    assert_eq!(detail.notices[0].sent_to.as_deref(), Some("***@example.org"));
    assert_eq!(detail.summary.record.notice, NoticeState::Sent);
    let audit: Vec<String> = store.audit_log(10).unwrap().into_iter().map(|e| e.action).collect();
    assert!(audit.contains(&"invitation.send".to_string()) && audit.contains(&"invitation.notice.sent".into()));
    let found = store.invitation_by_code(&sent.record.code).unwrap().unwrap();
    assert_eq!(found.id, sent.record.id);
}

#[test]
fn reminders_go_on_days_3_15_and_30_and_it_expires_after_day_30() {
    let store = store();
    let config = InvitationsConfig::default();
    let recorder = Recorder::default();
    let sent = at(&*store, &config, T0).send("elm.test", "dr@elm.test", &patient("ada@example.org")).unwrap();
    let id = sent.record.id;
    let mut log = Vec::new();
    // Hour by hour through 35 days: the schedule runs as the daemon runs it.
    for hour in 0..35 * 24 {
        let now = T0 + hour * 3600;
        let done = at(&*store, &config, now).run_schedule(100).unwrap();
        notices::send_due(&*store, &recorder, ACCEPT, RETRY, now, 100).unwrap();
        if done != Scheduled::default() {
            log.push((hour / 24, done));
        }
    }
    assert_eq!(
        log,
        [
            (3, Scheduled { reminded: 1, expired: 0 }),
            (15, Scheduled { reminded: 1, expired: 0 }),
            (30, Scheduled { reminded: 1, expired: 0 }),
            (31, Scheduled { reminded: 0, expired: 1 }),
        ]
    );
    assert_eq!(
        kinds(&recorder),
        [NoticeKind::Invitation, NoticeKind::Reminder, NoticeKind::Reminder, NoticeKind::Reminder]
    );
    let record = at(&*store, &config, T0).show("elm.test", id).unwrap().summary;
    assert_eq!((record.status, record.record.reminders), (Status::Expired, 3));
    assert!(matches!(
        at(&*store, &config, T0 + 40 * DAY).remind("elm.test", id),
        Err(InvitationError::State(why)) if why.contains("expired")
    ));
}

#[test]
fn no_reminder_after_cancelling_and_unsent_notices_are_withdrawn() {
    let store = store();
    let config = InvitationsConfig::default();
    let recorder = Recorder::default();
    let sent = at(&*store, &config, T0).send("elm.test", "dr@elm.test", &patient("ada@example.org")).unwrap();
    let cancelled = at(&*store, &config, T0 + 10).cancel("elm.test", sent.record.id).unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    for day in 0..40 {
        at(&*store, &config, T0 + day * DAY).run_schedule(100).unwrap();
        notices::send_due(&*store, &recorder, ACCEPT, RETRY, T0 + day * DAY, 100).unwrap();
    }
    assert!(kinds(&recorder).is_empty(), "the queued invitation was withdrawn, and nothing came after");
    let notices = at(&*store, &config, T0).show("elm.test", sent.record.id).unwrap().notices;
    assert_eq!(notices[0].state, NoticeState::Failed);
    assert!(notices[0].last_error.as_deref().unwrap().starts_with("withdrawn"));
}

#[test]
fn inviting_the_same_person_again_or_correcting_the_date_of_birth_replaces_the_invitation() {
    let store = store();
    let config = InvitationsConfig::default();
    let first = at(&*store, &config, T0).send("elm.test", "dr@elm.test", &patient("ada@example.org")).unwrap();
    let second = at(&*store, &config, T0 + 60).send("elm.test", "dr@elm.test", &patient("ADA@example.org")).unwrap();
    let show = |id| at(&*store, &config, T0).show("elm.test", id).unwrap().summary;
    assert_eq!(show(first.record.id).status, Status::Cancelled);
    assert_eq!(show(second.record.id).status, Status::Sent);
    // Another practice inviting the same person cancels nothing of this one's.
    at(&*store, &config, T0 + 60).send("oak.test", "dr@oak.test", &patient("ada@example.org")).unwrap();
    assert_eq!(show(second.record.id).status, Status::Sent);

    let third =
        at(&*store, &config, T0 + 120).change_date_of_birth("elm.test", second.record.id, "1971-05-17").unwrap();
    assert_eq!(third.record.date_of_birth.as_deref(), Some("1971-05-17"));
    assert_eq!(third.record.replaces, Some(second.record.id));
    assert_ne!(third.record.code, second.record.code, "a new code");
    assert_eq!(show(second.record.id).status, Status::Cancelled);
    assert!(store.invitation_by_code(&second.record.code).unwrap().unwrap().state == InvitationState::Cancelled);
    let bad = at(&*store, &config, T0 + 180).change_date_of_birth("elm.test", third.record.id, "1971-02-30");
    assert!(matches!(bad, Err(InvitationError::Invalid(e)) if e[0].field == "date_of_birth"));
    assert_eq!(show(third.record.id).status, Status::Sent, "a refused edit changes nothing");
}

#[test]
fn a_practice_sends_at_most_its_hourly_limit() {
    let store = store();
    let config = InvitationsConfig { per_practice_per_hour: 2, ..Default::default() };
    let invitations = at(&*store, &config, T0);
    invitations.send("elm.test", "dr@elm.test", &patient("a@example.org")).unwrap();
    invitations.send("elm.test", "dr@elm.test", &patient("b@example.org")).unwrap();
    let refused = invitations.send("elm.test", "dr@elm.test", &patient("c@example.org"));
    assert!(matches!(refused, Err(InvitationError::Store(StoreError::TooMany(_)))), "{refused:?}");
    invitations.send("oak.test", "dr@oak.test", &patient("c@example.org")).expect("another practice's own limit");
    at(&*store, &config, T0 + 3601).send("elm.test", "dr@elm.test", &patient("c@example.org")).expect("an hour on");
    let listed = at(&*store, &config, T0).list("elm.test", None, 100).unwrap();
    assert_eq!(listed.len(), 3, "nothing kept of the refused one");
}

#[test]
fn a_failing_channel_is_retried_then_shown_as_notification_failed() {
    let store = store();
    let config = InvitationsConfig::default();
    let recorder = Recorder::default();
    let sent = at(&*store, &config, T0).send("elm.test", "dr@elm.test", &patient("ada@example.org")).unwrap();
    *recorder.failing.lock().unwrap() = Some(Failure::temporary(Code::CONNECTION, "smarthost: connection refused"));
    let first = notices::send_due(&*store, &recorder, ACCEPT, RETRY, T0, 10).unwrap();
    assert_eq!(first.retrying, 1);
    let detail = at(&*store, &config, T0).show("elm.test", sent.record.id).unwrap();
    assert_eq!(detail.summary.record.notice, NoticeState::Retrying);
    assert_eq!(detail.summary.status, Status::Sent, "still being tried: not failed yet");
    assert_eq!(detail.notices[0].next_attempt_at, Some(T0 + 60));
    assert_eq!(detail.notices[0].last_error.as_deref(), Some("smarthost: connection refused"));
    assert_eq!(notices::send_due(&*store, &recorder, ACCEPT, RETRY, T0 + 59, 10).unwrap(), notices::Sent::default());
    assert!(matches!(at(&*store, &config, T0).remind("elm.test", sent.record.id), Err(InvitationError::State(_))));

    let mut now = T0;
    while now < T0 + 2 * DAY {
        now += 60;
        notices::send_due(&*store, &recorder, ACCEPT, RETRY, now, 10).unwrap();
    }
    let detail = at(&*store, &config, now).show("elm.test", sent.record.id).unwrap();
    assert_eq!(detail.summary.status, Status::NotificationFailed);
    assert!((8..=12).contains(&detail.notices[0].attempts), "backed off: {} tries", detail.notices[0].attempts);
    let failed = at(&*store, &config, now).list("elm.test", Some(Status::NotificationFailed), 10).unwrap();
    assert_eq!(failed.len(), 1);

    // The channel is back: a reminder by hand goes.
    *recorder.failing.lock().unwrap() = None;
    let reminded = at(&*store, &config, now).remind("elm.test", sent.record.id).unwrap();
    notices::send_due(&*store, &recorder, ACCEPT, RETRY, now, 10).unwrap();
    assert_eq!(kinds(&recorder), [NoticeKind::Reminder]);
    let after = at(&*store, &config, now).show("elm.test", reminded.record.id).unwrap().summary;
    assert_eq!((after.status, after.record.reminders), (Status::Reminded, 1));

    // A permanent failure (no channel configured) is given up at once.
    let fax = InviteeRequest { email: None, fax: Some("+15555550123".into()), ..patient("") };
    let faxed = at(&*store, &config, now).send("elm.test", "dr@elm.test", &fax).unwrap();
    let report = notices::send_due(&*store, &notices::NotConfigured, ACCEPT, RETRY, now, 10).unwrap();
    assert_eq!(report.failed, 1);
    let shown = at(&*store, &config, now).show("elm.test", faxed.record.id).unwrap();
    assert_eq!(shown.summary.status, Status::NotificationFailed);
    assert!(shown.notices[0].last_error.as_deref().unwrap().contains("[notify.gateway]"));
}

#[test]
fn one_practice_never_sees_or_changes_anothers_invitations() {
    let store = store();
    let config = InvitationsConfig::default();
    let sent = at(&*store, &config, T0).send("elm.test", "dr@elm.test", &patient("ada@example.org")).unwrap();
    let oak = at(&*store, &config, T0);
    assert!(oak.list("oak.test", None, 100).unwrap().is_empty());
    for attempt in [oak.show("oak.test", sent.record.id).map(|d| d.summary), oak.cancel("oak.test", sent.record.id)] {
        assert!(matches!(attempt, Err(InvitationError::Store(StoreError::NotFound(_)))), "{attempt:?}");
    }
    assert_eq!(oak.show("elm.test", sent.record.id).unwrap().summary.status, Status::Sent);
}

#[test]
fn listing_filters_by_status_newest_first() {
    let store = store();
    let config = InvitationsConfig::default();
    let invitations = at(&*store, &config, T0);
    let a = invitations.send("elm.test", "dr@elm.test", &patient("a@example.org")).unwrap();
    let b = invitations.send("elm.test", "dr@elm.test", &patient("b@example.org")).unwrap();
    let c = invitations.send("elm.test", "dr@elm.test", &patient("c@example.org")).unwrap();
    invitations.cancel("elm.test", b.record.id).unwrap();
    notices::send_due(&*store, &Recorder::default(), ACCEPT, RETRY, T0, 10).unwrap();
    invitations.remind("elm.test", c.record.id).unwrap();
    let ids = |status| -> Vec<i64> {
        invitations.list("elm.test", status, 10).unwrap().iter().map(|s| s.record.id).collect()
    };
    assert_eq!(ids(None), [c.record.id, b.record.id, a.record.id]);
    assert_eq!(ids(Some(Status::Sent)), [a.record.id]);
    assert_eq!(ids(Some(Status::Reminded)), [c.record.id]);
    assert_eq!(ids(Some(Status::Cancelled)), [b.record.id]);
    assert!(ids(Some(Status::Accepted)).is_empty());
}

#[test]
fn each_status_reads_back_from_its_name_as_the_json_shows_it() {
    for status in Status::ALL {
        assert_eq!(Status::parse(status.as_str()), Some(status));
        assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
    }
    assert_eq!(Status::parse("pending"), None);
}
