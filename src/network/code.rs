//! Invitation codes: 60 random bits from OpenSSL's generator, written as 12 characters of
//! Crockford's base 32 and shown in groups of four (`7KQ4-M2XD-9R0T`). Its alphabet has no I, L,
//! O or U, so no two characters look alike; a code is typed in any case, with or without the
//! dashes and spaces, and an O typed for 0 or an I or L for 1 still counts.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters of a code (5 bits each: 60 bits).
pub(crate) const LENGTH: usize = 12;

/// Why typed text is not a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodeError {
    #[error("an invitation code has 12 characters (like 7KQ4-M2XD-9R0T); this has {0}")]
    Length(usize),
    #[error("{0:?} is not in an invitation code (letters and digits only; no U)")]
    Character(char),
}

/// A code, normalized: 12 characters of the alphabet, upper case.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct InvitationCode(String);

impl InvitationCode {
    /// A fresh code.
    pub(crate) fn generate() -> Result<InvitationCode, openssl::error::ErrorStack> {
        let mut bytes = [0u8; 8];
        openssl::rand::rand_bytes(&mut bytes)?;
        let bits = u64::from_be_bytes(bytes);
        // 12 groups of 5 bits: each symbol is equally likely.
        let code = (0..LENGTH).map(|i| char::from(ALPHABET[((bits >> (5 * i)) & 31) as usize])).collect();
        Ok(InvitationCode(code))
    }

    /// A code as someone typed it.
    pub(crate) fn parse(typed: &str) -> Result<InvitationCode, CodeError> {
        let mut code = String::with_capacity(LENGTH);
        for c in typed.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return Err(CodeError::Character(c)),
            };
            if code.len() == LENGTH * 4 {
                break; // long enough to be wrong: no need to keep reading
            }
            code.push(c);
        }
        if code.len() != LENGTH {
            return Err(CodeError::Length(code.len()));
        }
        Ok(InvitationCode(code))
    }

    /// As the store keeps it (and finds it by).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shown in groups of four.
impl fmt::Display for InvitationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<&str> = (0..LENGTH).step_by(4).map(|i| &self.0[i..i + 4]).collect();
        f.write_str(&groups.join("-"))
    }
}

/// Never in a log by accident.
impl fmt::Debug for InvitationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvitationCode(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_twelve_unambiguous_characters_shown_in_groups_of_four() {
        let code = InvitationCode::generate().unwrap();
        assert_eq!(code.as_str().len(), LENGTH);
        assert!(code.as_str().chars().all(|c| !"ILOU".contains(c)), "{code}");
        let shown = code.to_string();
        assert_eq!(shown.len(), 14);
        assert_eq!(shown.matches('-').count(), 2);
        assert_eq!(InvitationCode::parse(&shown).unwrap(), code);
        assert!(!format!("{code:?}").contains(code.as_str()), "Debug hides the code");
    }

    #[test]
    fn typed_codes_are_forgiving_about_case_separators_and_look_alikes() {
        let code = InvitationCode::parse("7kq4 m2xd-9r0t").unwrap();
        assert_eq!(code.as_str(), "7KQ4M2XD9R0T");
        assert_eq!(InvitationCode::parse("7KQ4-M2XD-9ROT").unwrap(), code, "O is read as 0");
        assert_eq!(InvitationCode::parse("7KQ4-M2XD-9R0t").unwrap().to_string(), "7KQ4-M2XD-9R0T");
        assert_eq!(InvitationCode::parse("1111-1111-1111").unwrap(), InvitationCode::parse("ILil-1111-1111").unwrap());
        assert_eq!(InvitationCode::parse("7KQ4-M2XD-9R0"), Err(CodeError::Length(11)));
        assert_eq!(InvitationCode::parse("7KQ4-M2XD-9R0TT"), Err(CodeError::Length(13)));
        assert_eq!(InvitationCode::parse("7KQ4-M2XD-9RUT"), Err(CodeError::Character('U')));
        assert_eq!(InvitationCode::parse("7KQ4-M2XD-9R0\r\n"), Err(CodeError::Character('\r')));
        assert!(InvitationCode::parse(&"A".repeat(1_000_000)).is_err());
    }

    #[test]
    fn every_symbol_turns_up() {
        // 200 codes hold 2,400 symbols: a symbol the generator never uses would be missing.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.extend(InvitationCode::generate().unwrap().as_str().chars());
        }
        assert_eq!(seen.len(), 32);
    }
}
