//! When an invitation is reminded and when it expires: reminders on days 3, 15 and 30 after it
//! was sent (day N begins N × 24 hours after), and the invitation lasts through day 30, expiring
//! when day 31 begins. Pure functions of the send time and the node's clock.

pub(crate) const DAY: i64 = 86_400;

/// The days the scheduled reminders go out.
pub(crate) const REMINDER_DAYS: [i64; 3] = [3, 15, 30];

/// Sent at `sent_at`, it expires at `sent_at + EXPIRES_AFTER_DAYS × DAY` (when day 31 begins).
pub(crate) const EXPIRES_AFTER_DAYS: i64 = 31;

/// What is due for a pending invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A scheduled reminder; `steps_done` is the count of scheduled reminders passed with it.
    Remind {
        steps_done: u32,
    },
    Expire,
}

pub(crate) fn expires_at(sent_at: i64) -> i64 {
    sent_at + EXPIRES_AFTER_DAYS * DAY
}

/// What is due at `now`, `steps_done` scheduled reminders having passed. Reminders missed while
/// the node was stopped are not sent in a burst: only the latest one due goes.
pub(crate) fn due(sent_at: i64, steps_done: u32, now: i64) -> Option<Step> {
    if now >= expires_at(sent_at) {
        return Some(Step::Expire);
    }
    let reached = REMINDER_DAYS.iter().filter(|day| sent_at + *day * DAY <= now).count() as u32;
    (reached > steps_done).then_some(Step::Remind { steps_done: reached })
}

/// When the next step falls due once `steps_done` scheduled reminders have passed.
pub(crate) fn next_due(sent_at: i64, steps_done: u32) -> i64 {
    match REMINDER_DAYS.get(steps_done as usize) {
        Some(day) => sent_at + day * DAY,
        None => expires_at(sent_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_on_days_3_15_and_30_then_expiry() {
        let sent = 1_800_000_000;
        let at = |days: i64, secs: i64| sent + days * DAY + secs;
        let cases: &[(i64, u32, Option<Step>, &str)] = &[
            (at(0, 0), 0, None, "just sent"),
            (at(3, -1), 0, None, "a second before day 3"),
            (at(3, 0), 0, Some(Step::Remind { steps_done: 1 }), "day 3"),
            (at(3, 0), 1, None, "day 3, already reminded"),
            (at(14, 0), 1, None, "between the first two"),
            (at(15, 0), 1, Some(Step::Remind { steps_done: 2 }), "day 15"),
            (at(30, 0), 2, Some(Step::Remind { steps_done: 3 }), "day 30"),
            (at(30, DAY - 1), 3, None, "the last second of day 30"),
            (at(31, 0), 3, Some(Step::Expire), "day 31 begins"),
            (at(20, 0), 0, Some(Step::Remind { steps_done: 2 }), "stopped through day 3: only day 15's goes"),
            (at(45, 0), 0, Some(Step::Expire), "stopped through it all: expired, no reminders"),
        ];
        for (now, steps_done, expected, why) in cases {
            assert_eq!(due(sent, *steps_done, *now), *expected, "{why}");
        }
        assert_eq!(next_due(sent, 0), at(3, 0));
        assert_eq!(next_due(sent, 1), at(15, 0));
        assert_eq!(next_due(sent, 2), at(30, 0));
        assert_eq!(next_due(sent, 3), at(31, 0));
    }

    #[test]
    fn the_next_due_time_is_when_something_becomes_due() {
        let sent = 1_800_000_000;
        for steps_done in 0..=3 {
            let next = next_due(sent, steps_done);
            assert_eq!(due(sent, steps_done, next - 1), None, "{steps_done}: nothing due a second before");
            assert!(due(sent, steps_done, next).is_some(), "{steps_done}: due at that time");
        }
    }
}
