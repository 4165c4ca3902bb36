//! A practice's Direct domain: one DNS label (by default the practice name without spaces) under
//! the HISP's parent domain, e.g. "Smith Pediatrics" -> smithpediatrics.direct.example.org.

use crate::address::Domain;

/// The label suggested for a practice name: its letters and digits, lowercased.
pub(crate) fn suggested_label(practice: &str) -> String {
    practice.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
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
    let label = label.map(String::from).unwrap_or_else(|| suggested_label(name));
    direct_domain(&label, parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_practice_name_without_spaces_under_the_parent() {
        assert_eq!(suggested_label("Smith Pediatrics, P.C."), "smithpediatricspc");
        let d = direct_domain(&suggested_label("Smith Pediatrics"), "direct.example.org").unwrap();
        assert_eq!(d.as_str(), "smithpediatrics.direct.example.org");
        assert!(direct_domain("smith.peds", "direct.example.org").is_err(), "one label only");
        assert!(direct_domain("-smith", "direct.example.org").is_err());
        assert!(direct_domain("", "direct.example.org").is_err());
        assert!(direct_domain(&"a".repeat(64), "direct.example.org").is_err());
        assert!(direct_domain("smith-peds", "direct.example.org").is_ok());
    }
}
