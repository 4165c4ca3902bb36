//! A practice's Direct domain: one DNS label under the HISP's parent domain, by default made from
//! the practice name, e.g. "Smith Pediatrics" -> smithpediatrics.direct.example.org.
//!
//! The rule for the default label, in order:
//! 1. Latin letters lose their accents ("Clínica Niños" -> "clinicaninos"), and the few letters
//!    with no accent to lose are spelled out (ß -> ss, æ -> ae, œ -> oe, ø -> o, ł -> l, đ/ð -> d,
//!    þ -> th, ı -> i);
//! 2. letters and digits are kept, lowercased; spaces and punctuation are dropped;
//! 3. when a letter or digit of another script remains ("診療所"), the label is the
//!    internationalised one, in its ASCII (punycode, "xn--") form, of the name's letters and digits;
//! 4. the label is cut to 63 characters (DNS's limit), never mid-character.
//!
//! A name with no letter or digit gets no default: its practice needs an explicit label.

use icu_normalizer::DecomposingNormalizerBorrowed;

use crate::address::Domain;

/// A practice's name as both the API and the CLI accept it: trimmed, 1 to 200 characters, no
/// control characters (a CR or LF would forge lines in the audit log and in listings).
pub(crate) fn practice_name(name: &str) -> Result<&str, String> {
    crate::printable::plain_line(name).map_err(|rule| format!("the practice's name: {rule}"))
}

/// The label suggested for a practice name, by the rule above.
pub(crate) fn suggested_label(practice: &str) -> Result<String, String> {
    let mut ascii = String::new();
    let mut other_script = false;
    for c in DecomposingNormalizerBorrowed::new_nfkd().normalize(practice).chars() {
        let c = c.to_lowercase().next().unwrap_or(c);
        match c {
            'a'..='z' | '0'..='9' => ascii.push(c),
            'ß' => ascii.push_str("ss"),
            'æ' => ascii.push_str("ae"),
            'œ' => ascii.push_str("oe"),
            'ø' => ascii.push('o'),
            'ł' => ascii.push('l'),
            'đ' | 'ð' => ascii.push('d'),
            'þ' => ascii.push_str("th"),
            'ı' => ascii.push('i'),
            // What the decomposition split off: accents, not letters.
            '\u{300}'..='\u{36f}' => {}
            c if c.is_alphanumeric() => other_script = true,
            _ => {}
        }
    }
    let label = if other_script { punycode(practice)? } else { ascii[..ascii.len().min(63)].to_string() };
    if label.is_empty() {
        return Err(format!("{practice:?} has no letter or digit to make a DNS label of: choose one"));
    }
    Ok(label)
}

/// The ASCII form of the internationalised label of `practice`'s letters and digits, as many of
/// them as fit in 63 characters (a punycode label cut short would not decode).
fn punycode(practice: &str) -> Result<String, String> {
    let mut kept: Vec<char> = practice.chars().filter(|c| c.is_alphanumeric()).collect();
    while !kept.is_empty() {
        let label = idna::domain_to_ascii(&kept.iter().collect::<String>())
            .map_err(|_| format!("{practice:?} gives no DNS label: choose one"))?;
        if label.len() <= 63 {
            return Ok(label);
        }
        kept.pop();
    }
    Ok(String::new())
}

/// `label` under `parent`, checked as one DNS label (RFC 1035: letters, digits, inner hyphens,
/// at most 63 characters).
pub(crate) fn direct_domain(label: &str, parent: &str) -> Result<Domain, String> {
    let label = label.trim().to_ascii_lowercase();
    if label.is_empty() || label.len() > 63 {
        return Err(format!("{label:?} is not a DNS label: 1 to 63 characters"));
    }
    if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || label.starts_with('-') || label.ends_with('-')
    {
        return Err(format!("{label:?} is not a DNS label: letters, digits and inner hyphens only"));
    }
    Domain::parse(&format!("{label}.{}", parent.trim_matches('.'))).map_err(|e| e.to_string())
}

/// A new practice's Direct domain: `label` (default: from the name) under `parent`.
pub(crate) fn for_practice(name: &str, label: Option<&str>, parent: Option<&str>) -> Result<Domain, String> {
    let Some(parent) = parent else {
        return Err("no parent domain is configured (onboarding.parent_domain): give the whole domain".into());
    };
    let label = match label {
        Some(label) => label.to_string(),
        None => suggested_label(name)?,
    };
    direct_domain(&label, parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_practice_name_without_spaces_under_the_parent() {
        assert_eq!(suggested_label("Smith Pediatrics, P.C.").unwrap(), "smithpediatricspc");
        assert_eq!(suggested_label("Lee Family Medicine, P.A.").unwrap(), "leefamilymedicinepa");
        let d = direct_domain(&suggested_label("Smith Pediatrics").unwrap(), "direct.example.org").unwrap();
        assert_eq!(d.as_str(), "smithpediatrics.direct.example.org");
        assert!(direct_domain("smith.peds", "direct.example.org").is_err(), "one label only");
        assert!(direct_domain("-smith", "direct.example.org").is_err());
        assert!(direct_domain("", "direct.example.org").is_err());
        assert!(direct_domain(&"a".repeat(64), "direct.example.org").is_err());
        assert!(direct_domain("smith-peds", "direct.example.org").is_ok());
    }

    #[test]
    fn accented_latin_letters_lose_their_accents_and_other_scripts_become_punycode() {
        assert_eq!(suggested_label("Clínica Niños").unwrap(), "clinicaninos");
        assert_eq!(suggested_label("Praxis Dr. Weiß & Søn").unwrap(), "praxisdrweissson");
        assert_eq!(suggested_label("ÉCOLE Œuvre").unwrap(), "ecoleoeuvre");
        let label = suggested_label("東京 Clinic 2").unwrap();
        assert!(label.starts_with("xn--"), "{label}");
        assert_eq!(idna::domain_to_unicode(&label).0, "東京clinic2");
        assert!(direct_domain(&label, "direct.example.org").is_ok());
    }

    #[test]
    fn a_long_name_is_cut_to_one_label_and_a_name_without_letters_needs_one_given() {
        let label = suggested_label(&"Family Medicine ".repeat(10)).unwrap();
        assert_eq!(label.len(), 63);
        let label = suggested_label(&"診療所".repeat(20)).unwrap();
        assert!(label.len() <= 63 && idna::domain_to_unicode(&label).1.is_ok(), "{label}");
        assert!(suggested_label("& - !").is_err());
        assert!(practice_name("Lee\r\nFamily").is_err());
        assert!(practice_name(&"a".repeat(201)).is_err());
        assert_eq!(practice_name("  Foo P.C. ").unwrap(), "Foo P.C.");
    }
}
