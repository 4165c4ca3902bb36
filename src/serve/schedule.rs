//! When a recipient is tried again, and when it is given up on.

use super::Shared;
use crate::store::queue::{Job, Outcome};

/// A temporary failure is retried with exponential backoff until the message's maximum age,
/// then fails.
pub(super) fn schedule(shared: &Shared, job: &Job, outcome: Outcome, now: i64) -> Outcome {
    let Outcome::Deferred { error, .. } = outcome else { return outcome };
    let q = &shared.config.queue;
    if now - job.message.received_at >= q.max_age_secs as i64 {
        return Outcome::failed(
            "5.4.7",
            format!("gave up after {} attempts over {} s: {error}", job.attempts, q.max_age_secs),
        );
    }
    Outcome::Deferred { error, retry_at: retry_at(shared, job, now) }
}

/// When a recipient deferred now is due again: exponential backoff by its attempts.
pub(super) fn retry_at(shared: &Shared, job: &Job, now: i64) -> i64 {
    let q = &shared.config.queue;
    now + backoff(job.attempts, q.retry_base_secs, q.retry_max_secs) as i64
}

/// The wait before attempt `attempts + 1`: base * 2^(attempts - 1), capped.
fn backoff(attempts: u32, base: u64, max: u64) -> u64 {
    let factor = 1u64.checked_shl(attempts.saturating_sub(1).min(32)).unwrap_or(u64::MAX);
    base.saturating_mul(factor).min(max)
}

/// The enhanced status code a failure's text starts with ("5.0.0" when it has none).
pub(super) fn failure_status(reason: &str) -> &str {
    let first = reason.split_whitespace().next().unwrap_or("");
    let parts: Vec<&str> = first.split('.').collect();
    let valid = parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if valid && (parts[0] == "5" || parts[0] == "4") {
        first
    } else {
        "5.0.0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1, 60, 3600), 60);
        assert_eq!(backoff(2, 60, 3600), 120);
        assert_eq!(backoff(4, 60, 3600), 480);
        assert_eq!(backoff(40, 60, 3600), 3600);
    }
}
