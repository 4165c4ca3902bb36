//! The confirmation code of the enrollment: six random digits sent to the representative's
//! phone through a channel, kept only as a salted hash, good for ten minutes and five tries.

use serde::{Deserialize, Serialize};

pub(crate) const CODE_LIFETIME_SECS: i64 = 600;
pub(crate) const MAX_TRIES: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingCode {
    salt: String,
    hash: String,
    pub expires_at: i64,
    pub tries: u32,
}

fn digest(salt: &str, code: &str) -> String {
    let mut input = salt.as_bytes().to_vec();
    input.extend_from_slice(code.as_bytes());
    crate::pki::sha256_hex(&input)
}

impl PendingCode {
    /// A fresh code (to send) and what is kept of it.
    pub(crate) fn new(now: i64) -> Result<(String, PendingCode), openssl::error::ErrorStack> {
        // Rejection sampling keeps the six digits uniform.
        let code = loop {
            let mut bytes = [0u8; 4];
            openssl::rand::rand_bytes(&mut bytes)?;
            let n = u32::from_be_bytes(bytes);
            if n < u32::MAX - u32::MAX % 1_000_000 {
                break format!("{:06}", n % 1_000_000);
            }
        };
        let mut salt = [0u8; 16];
        openssl::rand::rand_bytes(&mut salt)?;
        let salt = hex::encode(salt);
        let pending = PendingCode { hash: digest(&salt, &code), salt, expires_at: now + CODE_LIFETIME_SECS, tries: 0 };
        Ok((code, pending))
    }

    /// Checks a guess, counting a wrong one.
    pub(crate) fn check(&mut self, code: &str, now: i64) -> Result<(), String> {
        if now > self.expires_at {
            return Err("the code expired (codes last 10 minutes): ask for a new one".into());
        }
        if self.tries >= MAX_TRIES {
            return Err(format!("{MAX_TRIES} wrong codes: ask for a new one"));
        }
        let guess = digest(&self.salt, code.trim());
        if openssl::memcmp::eq(guess.as_bytes(), self.hash.as_bytes()) {
            return Ok(());
        }
        self.tries += 1;
        match MAX_TRIES - self.tries {
            0 => Err(format!("wrong code, and that was the last of {MAX_TRIES} tries: ask for a new one")),
            left => Err(format!("wrong code ({left} tries left)")),
        }
    }

    /// Expired or out of tries: it can never succeed.
    pub(crate) fn spent(&self, now: i64) -> bool {
        now > self.expires_at || self.tries >= MAX_TRIES
    }
}

/// Where a confirmation code goes.
pub(crate) struct Recipient<'a> {
    pub practice: &'a str,
    pub phone: &'a str,
    /// The representative's personal e-mail, when the form has it.
    pub email: Option<&'a str>,
}

/// How a code reaches the representative. Returns where it went, for the audit log.
/// How many codes may be sent for one practice in an hour.
pub(crate) const MAX_CODES_PER_HOUR: usize = 5;

pub(crate) trait CodeChannel: Send + Sync {
    fn send(&self, to: &Recipient, code: &str) -> Result<String, String>;
}

/// No channel is configured: a code cannot be sent, and the reason says how to configure one.
pub(crate) struct NoChannel;

impl CodeChannel for NoChannel {
    fn send(&self, _: &Recipient, _: &str) -> Result<String, String> {
        Err("no confirmation-code channel is configured ([onboarding] code_channel = \"email\", with code_smtp \
             and code_from)"
            .into())
    }
}

/// For development only (chosen explicitly): the code is written to the node's log.
pub(crate) struct LogChannel;

impl CodeChannel for LogChannel {
    fn send(&self, to: &Recipient, code: &str) -> Result<String, String> {
        tracing::warn!("confirmation code for {} ({}): {code} (log channel: development only)", to.practice, to.phone);
        Ok("log".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_tries_or_ten_minutes_and_the_code_is_spent() {
        let (code, mut pending) = PendingCode::new(1000).unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for left in (1..MAX_TRIES).rev() {
            assert_eq!(pending.check(wrong, 1001), Err(format!("wrong code ({left} tries left)")));
        }
        assert!(pending.check(wrong, 1001).is_err());
        assert!(pending.spent(1001));
        assert!(pending.check(&code, 1001).is_err(), "the right code is too late after five tries");

        let (code, mut pending) = PendingCode::new(1000).unwrap();
        assert!(pending.check(&code, 1000 + CODE_LIFETIME_SECS + 1).is_err(), "expired");
        let (code, mut pending) = PendingCode::new(1000).unwrap();
        assert_eq!(pending.check(&format!(" {code}\n"), 1000 + CODE_LIFETIME_SECS), Ok(()));
        assert!(!serde_json::to_string(&pending).unwrap().contains(&code), "only a hash is kept");
    }
}
