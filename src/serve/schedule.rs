//! When a recipient is tried again, and when it is given up on.

use super::Shared;
use crate::failure::{Code, Failure};
use crate::store::queue::{Job, Outcome};

/// A temporary failure is retried with exponential backoff until the message's maximum age,
/// then fails.
pub(super) fn schedule(shared: &Shared, job: &Job, outcome: Outcome, now: i64) -> Outcome {
    let Outcome::Deferred { failure, .. } = outcome else { return outcome };
    let q = &shared.config.queue;
    if now - job.message.received_at >= q.max_age_secs as i64 {
        let text = format!("gave up after {} attempts over {} s: {}", job.attempts, q.max_age_secs, failure.public());
        return Outcome::Failed(Failure { detail: failure.detail, ..Failure::permanent(Code::EXPIRED, text) });
    }
    Outcome::Deferred { failure, retry_at: retry_at(shared, job, now) }
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
