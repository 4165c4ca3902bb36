//! Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP): HMAC-SHA1 of the 30-second
//! step counter, from OpenSSL, truncated to 6 digits. What authenticator apps compute.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// Seconds per step (RFC 6238's X), and the digits of a code.
const STEP_SECS: i64 = 30;
const DIGITS: u32 = 6;
/// Steps either side of now a code is taken from: a phone's clock a little off, a code typed as
/// it changes.
const DRIFT_STEPS: i64 = 1;
/// Secret bytes (RFC 4226 §4 recommends 160 bits).
pub(crate) const SECRET_BYTES: usize = 20;

/// A new random secret.
pub(crate) fn new_secret() -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut secret = vec![0u8; SECRET_BYTES];
    openssl::rand::rand_bytes(&mut secret)?;
    Ok(secret)
}

/// The secret as an authenticator app takes it typed in: RFC 4648 base 32 without padding.
pub(crate) fn secret_text(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI a QR code carries (the de facto Key URI format apps read).
pub(crate) fn key_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let label = format!("{}:{}", encode(issuer), encode(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        secret_text(secret),
        encode(issuer)
    )
}

/// RFC 3986's unreserved characters: all a URI part keeps as they are.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The step `unix` falls in.
pub(crate) fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECS)
}

/// HOTP of `counter` (RFC 4226 §5.3), `digits` long.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> Result<u32, openssl::error::ErrorStack> {
    let key = PKey::hmac(secret)?;
    let mut signer = Signer::new(MessageDigest::sha1(), &key)?;
    signer.update(&counter.to_be_bytes())?;
    let mac = signer.sign_to_vec()?;
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    Ok(binary % 10u32.pow(digits))
}

/// The code for `step`, as typed (leading zeros kept).
pub(crate) fn code_at(secret: &[u8], step: i64) -> Result<String, openssl::error::ErrorStack> {
    let value = hotp(secret, step.max(0) as u64, DIGITS)?;
    Ok(format!("{value:0width$}", width = DIGITS as usize))
}

/// The step whose code `typed` is, within the drift around `now`, and later than `last_used`
/// (a code works once); None when it is none of them. Spaces in what was typed are ignored.
pub(crate) fn matching_step(secret: &[u8], typed: &str, now: i64, last_used: Option<i64>) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut found = None;
    // Every candidate is computed and compared in constant time, so the time taken says nothing
    // about which one matched.
    for step in current - DRIFT_STEPS..=current + DRIFT_STEPS {
        let Ok(expected) = code_at(secret, step) else { continue };
        let fresh = last_used.is_none_or(|last| step > last);
        if openssl::memcmp::eq(expected.as_bytes(), typed.as_bytes()) && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 key and its 8-digit codes.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn the_codes_of_rfc_6238_appendix_b() {
        for (time, code) in [
            (59i64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(RFC_SECRET, step_of(time) as u64, 8).unwrap(), code, "T = {time}");
        }
        // Six digits are the last six of those, leading zeros kept.
        assert_eq!(code_at(RFC_SECRET, step_of(1111111111)).unwrap(), "050471");
    }

    #[test]
    fn a_code_matches_within_one_step_and_only_once() {
        let now = 1_800_000_000;
        let code = code_at(RFC_SECRET, step_of(now)).unwrap();
        assert_eq!(matching_step(RFC_SECRET, &code, now, None), Some(step_of(now)));
        assert_eq!(matching_step(RFC_SECRET, &format!("{} {}", &code[..3], &code[3..]), now, None), Some(step_of(now)));
        assert_eq!(matching_step(RFC_SECRET, &code, now + 30, None), Some(step_of(now)), "a step late");
        assert_eq!(matching_step(RFC_SECRET, &code, now - 30, None), Some(step_of(now)), "a step early");
        assert_eq!(matching_step(RFC_SECRET, &code, now + 61, None), None, "two steps late");
        assert_eq!(matching_step(RFC_SECRET, &code, now, Some(step_of(now))), None, "used already");
        assert_eq!(matching_step(RFC_SECRET, "12345", now, None), None);
        assert_eq!(matching_step(RFC_SECRET, "abcdef", now, None), None);
    }

    #[test]
    fn the_key_uri_names_the_issuer_and_account_encoded() {
        let uri = key_uri(RFC_SECRET, "Elm Clinic", "ada@elm.test");
        assert_eq!(
            uri,
            "otpauth://totp/Elm%20Clinic:ada%40elm.test?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Elm%20Clinic\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
