//! Failed logins, counted per key (an account, a peer address): after a few failures in a row,
//! each further attempt must wait, the wait doubling with every failure up to a ceiling, so that
//! guessing a password (or an API token) is slowed to a crawl wherever it comes from. A key with
//! no failure for the window is forgotten; a success clears an account's count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most keys remembered: past it, those whose window has passed are forgotten first, then
/// the oldest.
const MAX_KEYS: usize = 100_000;

pub(crate) struct Throttle {
    /// Failures allowed before the waiting starts.
    free: u32,
    /// How long after the last failure a key is forgotten.
    window: Duration,
    max_wait: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub(crate) fn new(free: u32, window: Duration, max_wait: Duration) -> Throttle {
        Throttle { free, window, max_wait, failures: Mutex::new(HashMap::new()) }
    }

    /// How long `key` must still wait before its next attempt counts (None: it may try now).
    pub(crate) fn wait(&self, key: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let &(count, last) = failures.get(key)?;
        if count < self.free || last.elapsed() >= self.window {
            return None;
        }
        let wait = self.max_wait.min(Duration::from_secs(1u64 << (count - self.free).min(30)));
        wait.checked_sub(last.elapsed())
    }

    pub(crate) fn failed(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_KEYS && !failures.contains_key(key) {
            let window = self.window;
            failures.retain(|_, (_, last)| last.elapsed() < window);
            if failures.len() >= MAX_KEYS {
                if let Some(oldest) = failures.iter().min_by_key(|(_, (_, last))| *last).map(|(k, _)| k.clone()) {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(key.to_string()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = Instant::now();
    }

    pub(crate) fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_the_free_failures_each_attempt_waits_longer() {
        let throttle = Throttle::new(3, Duration::from_secs(900), Duration::from_secs(8));
        for _ in 0..3 {
            assert_eq!(throttle.wait("user:a"), None);
            throttle.failed("user:a");
        }
        let first = throttle.wait("user:a").expect("waits after three failures");
        assert!(first <= Duration::from_secs(1));
        for _ in 0..10 {
            throttle.failed("user:a");
        }
        let long = throttle.wait("user:a").unwrap();
        assert!(long > Duration::from_secs(7) && long <= Duration::from_secs(8), "capped: {long:?}");
        assert_eq!(throttle.wait("user:b"), None, "keys are apart");
        throttle.succeeded("user:a");
        assert_eq!(throttle.wait("user:a"), None);
    }
}
