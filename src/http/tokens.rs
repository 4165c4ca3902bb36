//! API tokens: 32 random bytes shown once; the store keeps only their SHA-256 (a token is as
//! strong as a 256-bit key, so a slow password hash would add nothing but latency).

use base64::Engine;

/// Every token starts with this, so a leaked one is easy to recognise (and to scan for).
pub(crate) const PREFIX: &str = "hisp_";

/// A new token and the digest to store.
pub(crate) fn generate() -> Result<(String, String), openssl::error::ErrorStack> {
    let mut secret = [0u8; 32];
    openssl::rand::rand_bytes(&mut secret)?;
    let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let digest = digest(&token);
    Ok((token, digest))
}

pub(crate) fn digest(token: &str) -> String {
    crate::pki::sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_only_their_digest_matches() {
        let (a, da) = super::generate().unwrap();
        let (b, _) = super::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(super::PREFIX) && a.len() == 5 + 43);
        assert_eq!(super::digest(&a), da);
        assert_ne!(super::digest(&b), da);
    }
}
