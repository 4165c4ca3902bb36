//! The checks the `rules` verifier makes of an enrollment, each a pure function: an identifier's
//! check digit, never-issued number ranges, age, E.164 phone numbers, e-mail syntax.

use crate::clock;

/// The digits of `text` once spaces and dashes are taken out; None if anything else is in it.
pub(crate) fn digits(text: &str) -> Option<String> {
    let kept: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (!kept.is_empty() && kept.bytes().all(|b| b.is_ascii_digit())).then_some(kept)
}

/// The Luhn (mod 10) check over a digit string, its last digit being the check digit.
pub(crate) fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// An NPI: 10 digits whose last is the Luhn check digit of the first nine prefixed with 80840
/// (the NPI standard's card-issuer prefix for US health).
pub(crate) fn npi(text: &str) -> Result<(), &'static str> {
    let d = digits(text).ok_or("an NPI is 10 digits")?;
    if d.len() != 10 {
        return Err("an NPI is 10 digits");
    }
    if !matches!(d.as_bytes()[0], b'1' | b'2') {
        return Err("an individual or organization NPI starts with 1 or 2");
    }
    if !luhn_valid(&format!("80840{d}")) {
        return Err("the NPI's check digit does not match");
    }
    Ok(())
}

/// A Social Security number as AAA-GG-SSSS (or 9 digits), outside the ranges never issued: area
/// 000, 666 or 900-999, group 00, serial 0000, and the numbers published in advertisements.
pub(crate) fn ssn(text: &str) -> Result<(), &'static str> {
    let d = digits(text).filter(|d| d.len() == 9).ok_or("an SSN is 9 digits (AAA-GG-SSSS)")?;
    let (area, group, serial) = (&d[..3], &d[3..5], &d[5..]);
    if area == "000" || area == "666" || area.starts_with('9') {
        return Err("the SSN's area number (first 3 digits) is never issued");
    }
    if group == "00" {
        return Err("the SSN's group number (middle 2 digits) is never issued");
    }
    if serial == "0000" {
        return Err("the SSN's serial number (last 4 digits) is never issued");
    }
    if d == "078051120" || d == "219099999" {
        return Err("the SSN is a published advertising number, not a person's");
    }
    Ok(())
}

/// A date of birth (YYYY-MM-DD) of someone at least 18 years old at `now`.
pub(crate) fn adult_born_on(text: &str, now: i64) -> Result<(), &'static str> {
    let born = clock::parse_date(text).ok_or("a date of birth is YYYY-MM-DD")?;
    let (by, bm, bd) = clock::civil_date(born);
    let (ny, nm, nd) = clock::civil_date(now);
    if born > now {
        return Err("the date of birth is in the future");
    }
    let age = ny - by - i64::from((nm, nd) < (bm, bd));
    if age < 18 {
        return Err("the legal representative must be at least 18 years old");
    }
    if age > 130 {
        return Err("the date of birth is not plausible");
    }
    Ok(())
}

/// A phone number in E.164 form: `+`, a country code not starting with 0, at most 15 digits.
pub(crate) fn e164(text: &str) -> Result<(), &'static str> {
    let rest = text.strip_prefix('+').ok_or("a phone number is in E.164 form, e.g. +15555550123")?;
    let ok = (8..=15).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit()) && !rest.starts_with('0');
    ok.then_some(()).ok_or("a phone number is in E.164 form, e.g. +15555550123")
}

/// A payment card number: 13 to 19 digits with a valid Luhn check digit.
pub(crate) fn card_number(text: &str) -> Result<(), &'static str> {
    let d = digits(text).filter(|d| (13..=19).contains(&d.len())).ok_or("a card number is 13 to 19 digits")?;
    luhn_valid(&d).then_some(()).ok_or("the card number's check digit does not match")
}

/// An e-mail address: one `@`, a local part, a domain with a dot, no spaces.
pub(crate) fn email(text: &str) -> Result<(), &'static str> {
    let ok = match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    };
    ok.then_some(()).ok_or("not an e-mail address")
}

/// The last four digits of a number, for what is kept once the rest is erased.
pub(crate) fn last4(text: &str) -> String {
    let d: String = text.chars().filter(char::is_ascii_digit).collect();
    d[d.len().saturating_sub(4)..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit_follows_the_standard() {
        // The example of the NPI check digit specification.
        assert_eq!(npi("1234567893"), Ok(()));
        assert_eq!(npi("1234567890"), Err("the NPI's check digit does not match"));
        assert!(npi("123456789").is_err());
        assert!(npi("12345678a3").is_err());
        assert!(npi("3234567893").is_err());
    }

    #[test]
    fn ssn_ranges_never_issued_are_refused() {
        assert_eq!(ssn("123-45-6789"), Ok(()));
        assert_eq!(ssn("123456789"), Ok(()));
        for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "999-99-9999", "123-00-4567", "123-45-0000"] {
            assert!(ssn(bad).is_err(), "{bad}");
        }
        assert!(ssn("078-05-1120").is_err());
        assert!(ssn("12-345-678").is_err());
        assert!(ssn("123-45-678x").is_err());
    }

    #[test]
    fn the_representative_is_an_adult_on_the_day() {
        let now = clock::parse_date("2026-11-23").unwrap() + 3600;
        assert_eq!(adult_born_on("2008-11-23", now), Ok(()), "18 today");
        assert!(adult_born_on("2008-11-24", now).is_err(), "18 tomorrow");
        assert!(adult_born_on("2030-01-01", now).is_err());
        assert!(adult_born_on("1880-01-01", now).is_err());
        assert!(adult_born_on("1980-02-30", now).is_err());
        assert!(adult_born_on("11/23/1980", now).is_err());
    }

    #[test]
    fn phones_cards_and_emails() {
        assert_eq!(e164("+15555550123"), Ok(()));
        for bad in ["5555550123", "+1 555 555 0123", "+0123456789", "+1234567", "+1234567890123456"] {
            assert!(e164(bad).is_err(), "{bad}");
        }
        assert_eq!(card_number("4111 1111 1111 1111"), Ok(()));
        assert!(card_number("4111 1111 1111 1112").is_err());
        assert!(card_number("4111").is_err());
        assert_eq!(email("jane@example.org"), Ok(()));
        for bad in ["jane", "jane@example", "@example.org", "jane doe@example.org", "a@b@c.org"] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert_eq!(last4("123-45-6789"), "6789");
        assert_eq!(last4("12"), "12");
    }
}
