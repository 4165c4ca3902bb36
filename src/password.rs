//! Passwords of EHR users: argon2id hashes in PHC string form, never the password itself.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password is shorter than {MIN_LEN} characters")]
    TooShort,
    #[error("the password is longer than 1024 bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
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
    Argon2::default() // argon2id, v19, m=19 MiB, t=2, p=1 (the OWASP baseline)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// False for a wrong password and for a stored hash that cannot be parsed.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
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
}
