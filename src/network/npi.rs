//! Pre-filling a practice's details from its NPI: the configured NPI registry
//! (`[invitations] npi_registry_url`, none by default; the NPPES API's answer format) is asked
//! for the number, and what it says of the organization (name, practice location, phones) is
//! offered to the colleague registering. The NPI's check digit is checked first; nothing is
//! asked of a registry for a number that cannot exist.

use serde::{Deserialize, Serialize};

use crate::onboarding::checks;

/// What a registry says of an NPI, as the registration form's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Prefill {
    pub npi: String,
    pub name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
}

/// The registry's URL for `npi`: `{npi}` in the template replaced by the number.
pub(crate) fn url(template: &str, npi: &str) -> String {
    template.replace("{npi}", npi)
}

/// The NPI without spaces or dashes, if its check digit is right.
pub(crate) fn checked(npi: &str) -> Result<String, &'static str> {
    let npi = npi.trim().replace([' ', '-'], "");
    checks::npi(&npi)?;
    Ok(npi)
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    number: Option<serde_json::Value>,
    #[serde(default)]
    basic: Basic,
    #[serde(default)]
    addresses: Vec<Address>,
}

#[derive(Deserialize, Default)]
struct Basic {
    organization_name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct Address {
    address_purpose: Option<String>,
    address_1: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    telephone_number: Option<String>,
    fax_number: Option<String>,
}

/// Reads a registry's answer about `npi`: None when it does not know the number. Every value
/// is trimmed, bounded and cleared of control characters (it is shown in a form).
pub(crate) fn read_answer(body: &[u8], npi: &str) -> Result<Option<Prefill>, String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("the NPI registry's answer is not understood: {e}"))?;
    let number = |e: &Entry| match &e.number {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let Some(entry) = answer.results.iter().find(|e| number(e) == npi) else { return Ok(None) };
    let location = entry
        .addresses
        .iter()
        .find(|a| a.address_purpose.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("location")))
        .or(entry.addresses.first());
    let person = match (&entry.basic.first_name, &entry.basic.last_name) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        _ => None,
    };
    let name = entry.basic.organization_name.clone().or(person);
    let field = |v: Option<&String>| v.map(|s| clean(s)).filter(|s| !s.is_empty());
    Ok(Some(Prefill {
        npi: npi.to_string(),
        name: field(name.as_ref()),
        address: field(location.and_then(|a| a.address_1.as_ref())),
        city: field(location.and_then(|a| a.city.as_ref())),
        state: field(location.and_then(|a| a.state.as_ref())),
        zip: location.and_then(|a| a.postal_code.as_deref()).and_then(zip),
        phone: location.and_then(|a| a.telephone_number.as_deref()).and_then(us_phone),
        fax: location.and_then(|a| a.fax_number.as_deref()).and_then(us_phone),
    }))
}

/// Asks the registry at `template` about `npi` (checked), within 10 seconds; None when it does
/// not know the number.
pub(crate) fn lookup(
    template: &str,
    resolver: &dyn crate::dns::Resolver,
    npi: &str,
) -> Result<Option<Prefill>, String> {
    let npi = checked(npi)?;
    let tls = crate::smtp::tls::connector(true, None).map_err(|e| e.to_string())?;
    let timeout = std::time::Duration::from_secs(10);
    match crate::fetch::get_json(resolver, &tls, &url(template, &npi), timeout) {
        Ok(body) => read_answer(&body, &npi),
        Err(e) if e.kind == crate::fetch::Missed::NotFound => Ok(None),
        Err(e) => Err(e.text),
    }
}

fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect::<String>().trim().to_string()
}

/// 12345 or 123456789 (as NPPES writes it) as 12345 or 12345-6789.
fn zip(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        5 => Some(digits),
        9 => Some(format!("{}-{}", &digits[..5], &digits[5..])),
        _ => None,
    }
}

/// A US number as NPPES writes it (217-555-0100) in E.164.
fn us_phone(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        10 => Some(format!("+1{digits}")),
        11 if digits.starts_with('1') => Some(format!("+{digits}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_nppes_answer_fills_the_form() {
        let body = br#"{"result_count": 1, "results": [{"number": 1234567893, "enumeration_type": "NPI-2",
            "basic": {"organization_name": "BIRCH FAMILY MEDICINE\u0007"},
            "addresses": [
              {"address_purpose": "MAILING", "address_1": "PO BOX 1", "city": "X", "state": "IL", "postal_code": "62702"},
              {"address_purpose": "LOCATION", "address_1": "1 MAIN ST", "city": "SPRINGFIELD", "state": "IL",
               "postal_code": "627011234", "telephone_number": "217-555-0100", "fax_number": "(217) 555-0101"}]}]}"#;
        let filled = read_answer(body, "1234567893").unwrap().unwrap();
        assert_eq!(filled.name.as_deref(), Some("BIRCH FAMILY MEDICINE"));
        assert_eq!(filled.address.as_deref(), Some("1 MAIN ST"));
        assert_eq!(filled.zip.as_deref(), Some("62701-1234"));
        assert_eq!(filled.phone.as_deref(), Some("+12175550100"));
        assert_eq!(filled.fax.as_deref(), Some("+12175550101"));
        assert_eq!(read_answer(br#"{"result_count": 0, "results": []}"#, "1234567893").unwrap(), None);
        assert_eq!(read_answer(body, "1111111112").unwrap(), None, "another number's entry is not this one's");
        assert!(read_answer(b"<html>", "1234567893").is_err());
        assert_eq!(
            url("https://npi.test/api/?version=2.1&number={npi}", "1234567893"),
            "https://npi.test/api/?version=2.1&number=1234567893"
        );
        assert_eq!(checked(" 1234-567893 ").unwrap(), "1234567893");
        assert!(checked("1234567890").is_err(), "a wrong check digit is never asked about");
    }
}
