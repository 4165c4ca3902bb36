//! Passwords of EHR users: argon2id hashes in PHC string form, never the password itself.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::{Condvar, Mutex};

pub(crate) const MIN_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password is shorter than {MIN_LEN} characters")]
    TooShort,
    #[error("the password is longer than 1024 bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("{0}")]
    BadHash(String),
    /// Common, or quickly guessed: why, and what would do.
    #[error("{0}")]
    Weak(String),
}

/// Whether `password` is good enough for a new password: long enough, and not a common password
/// or one quickly guessed (zxcvbn's estimate, whose dictionaries hold the 30,000 most common
/// passwords and common names and words, with `context` - the person's name, e-mail, practice -
/// added). A passphrase of a few uncommon words passes; "Password1234" does not.
pub(crate) fn check_new(password: &str, context: &[&str]) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > 1024 {
        return Err(PasswordError::TooLong);
    }
    // zxcvbn's time grows with length; past 100 characters a password is long enough anyway.
    let judged: String = password.chars().take(100).collect();
    // Each word of the context, and each part run together ("Grace Hopper": "gracehopper").
    let joined: Vec<String> = context
        .iter()
        .map(|c| c.chars().filter(|ch| ch.is_alphanumeric()).collect::<String>().to_lowercase())
        .collect();
    let words: Vec<&str> = context
        .iter()
        .flat_map(|c| c.split(|ch: char| !ch.is_alphanumeric()))
        .chain(joined.iter().map(String::as_str))
        .filter(|w| w.len() > 2)
        .collect();
    let estimate = zxcvbn::zxcvbn(&judged, &words);
    if estimate.score() >= zxcvbn::Score::Three {
        return Ok(());
    }
    let mut why = "this password is too easy to guess".to_string();
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            why = format!("{why}: {}", warning.to_string().trim_end_matches('.').to_lowercase());
        }
    }
    Err(PasswordError::Weak(format!("{why}; a passphrase of four or more uncommon words works well")))
}

/// argon2id runs at once in this process, at most. Each holds 19 MiB while it runs: without a
/// bound, a flood of logins (wrong passwords always run it) would take connections x 19 MiB of
/// memory, and the CPU is saturated by a few runs anyway. Those past the bound wait their turn.
fn slots() -> &'static Slots {
    static SLOTS: std::sync::OnceLock<Slots> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| Slots::new(std::thread::available_parallelism().map_or(2, |n| n.get()).max(2)))
}

struct Slots {
    max: usize,
    /// (runs now, the most there ever were at once)
    used: Mutex<(usize, usize)>,
    freed: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(max: usize) -> Slots {
        Slots { max, used: Mutex::new((0, 0)), freed: Condvar::new() }
    }

    fn take(&self) -> Slot<'_> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while used.0 >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        used.0 += 1;
        used.1 = used.1.max(used.0);
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|p| p.into_inner());
        used.0 -= 1;
        drop(used);
        self.0.freed.notify_one();
    }
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > 1024 {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let _slot = slots().take();
    Argon2::default() // argon2id, v19, m=19 MiB, t=2, p=1 (the OWASP baseline)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// The costs an imported hash may have: at least OWASP's argon2id baseline (m=19 MiB and t=2,
/// or an equal product of memory and passes, down to m=7 MiB and t=5), and no more memory than
/// a login may take (each of the few logins hashing at once holds it).
const MIN_COST_KIB_PASSES: u64 = 7 * 1024 * 5;
const MAX_MEMORY_KIB: u64 = 64 * 1024;

/// Whether `stored` is an argon2id hash in PHC string form this node can verify logins against
/// at a bounded cost (`hisp address import` takes hashes made elsewhere).
pub(crate) fn check_stored(stored: &str) -> Result<(), PasswordError> {
    let bad = |why: &str| Err(PasswordError::BadHash(why.to_string()));
    let Ok(parsed) = PasswordHash::new(stored) else {
        return bad("not a password hash in PHC string form ($argon2id$v=19$m=...,t=...,p=...$salt$hash)");
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return bad("not an argon2id hash (the only kind this node verifies)");
    }
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return bad("its argon2id parameters are not valid");
    };
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return bad("it has no salt or no hash");
    }
    let (memory, passes) = (u64::from(params.m_cost()), u64::from(params.t_cost()));
    if memory * passes < MIN_COST_KIB_PASSES {
        return bad("its cost is below the argon2id baseline (m=19456,t=2 or an equal memory x passes)");
    }
    if memory > MAX_MEMORY_KIB {
        return bad("it needs more than 64 MiB per login");
    }
    Ok(())
}

/// A hash no password matches, made once: a sign-in for an account that does not exist is
/// checked against it, so it takes as long as one for an account that does.
pub(crate) fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 32];
        let _ = openssl::rand::rand_bytes(&mut secret);
        hash(&hex::encode(secret)).unwrap_or_default()
    })
}

/// False for a wrong password and for a stored hash that cannot be parsed.
pub(crate) fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    let _slot = slots().take();
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("a long enough password").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("a long enough password", &h));
        assert!(!verify("a long enough passworD", &h));
        assert!(!verify("anything", "not a hash"));
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
    }

    #[test]
    fn common_and_guessable_passwords_are_refused_and_passphrases_pass() {
        for weak in ["password1234", "Password1234!", "qwertyuiop123", "123456789012", "iloveyouiloveyou"] {
            assert!(matches!(check_new(weak, &[]), Err(PasswordError::Weak(_))), "{weak}");
        }
        let Err(PasswordError::Weak(why)) = check_new("lovelaceada!", &["Ada Lovelace", "ada@elm.test"]) else {
            panic!("the person's own name is guessable")
        };
        assert!(why.starts_with("this password is too easy to guess"), "{why}");
        assert_eq!(check_new("short", &[]), Err(PasswordError::TooShort));
        for strong in ["correct horse battery staple", "tulip kettle orbit mauve", "r8#Kq2!vLz9@Wm"] {
            assert_eq!(check_new(strong, &["Ada Lovelace"]), Ok(()), "{strong}");
        }
    }

    #[test]
    fn stored_hashes_are_checked_for_kind_and_cost() {
        assert_eq!(check_stored(&hash("a long enough password").unwrap()), Ok(()));
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let digest = "RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        let with = |params: &str| format!("$argon2id$v=19${params}${salt}${digest}");
        assert_eq!(check_stored(&with("m=7168,t=5,p=1")), Ok(()), "an OWASP equivalent");
        for (stored, why) in [
            (with("m=4096,t=3,p=1"), "below the argon2id baseline"),
            (with("m=262144,t=2,p=1"), "more than 64 MiB"),
            (format!("$argon2i$v=19$m=19456,t=2,p=1${salt}${digest}"), "not an argon2id hash"),
            ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_string(), "PHC string form"),
            ("plain text".to_string(), "PHC string form"),
            (format!("$argon2id$v=19$m=19456,t=2,p=1${salt}"), "no salt or no hash"),
        ] {
            match check_stored(&stored) {
                Err(PasswordError::BadHash(e)) => assert!(e.contains(why), "{stored}: {e}"),
                other => panic!("{stored}: {other:?}"),
            }
        }
    }

    #[test]
    fn no_more_than_the_bound_of_argon2id_runs_at_once() {
        let stored = hash("a long enough password").unwrap();
        let bound = slots().max;
        std::thread::scope(|s| {
            for n in 0..bound * 4 {
                let stored = &stored;
                s.spawn(move || assert!(!verify(&format!("wrong password {n}"), stored)));
            }
        });
        // (Other tests hash at the same time: the count now is theirs too, the peak holds for all.)
        let peak = slots().used.lock().unwrap().1;
        assert!(peak <= bound, "{peak} runs at once, bound {bound}");
        assert!(peak >= 2, "they did run side by side ({peak})");
    }

    #[test]
    fn a_waiting_run_starts_when_a_slot_is_given_back() {
        let slots = Slots::new(1);
        let first = slots.take();
        std::thread::scope(|s| {
            let waiting = s.spawn(|| {
                let second = slots.take();
                let runs = slots.used.lock().unwrap().0;
                drop(second);
                runs
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiting.is_finished(), "the second waits while the only slot is taken");
            drop(first);
            assert_eq!(waiting.join().unwrap(), 1);
        });
        assert_eq!(*slots.used.lock().unwrap(), (0, 1));
    }
}
