//! The enrollment form a practice's legal representative fills in, section by section, and what
//! makes each section complete ("Ready to be Submitted"). Whether the answers are *right* is the
//! verifiers' business; here only whether they are there.

use serde::{Deserialize, Serialize};

use super::checks;

/// The sections of the form, in the order an EHR shows them.
pub(crate) const SECTIONS: [&str; 5] = ["business", "representative", "government_id", "financial_id", "confirmation"];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enrollment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<Business>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representative: Option<Representative>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub government_id: Option<GovernmentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_id: Option<FinancialId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Business {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Representative {
    #[serde(default)]
    pub first_name: String,
    /// Optional, as on the representative's identity documents.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub middle_name: String,
    #[serde(default)]
    pub last_name: String,
    /// Optional: Jr., Sr., II, III, MD...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suffix: String,
    #[serde(default)]
    pub home_address: HomeAddress,
    /// YYYY-MM-DD
    #[serde(default)]
    pub date_of_birth: String,
    #[serde(default)]
    pub personal_email: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct HomeAddress {
    #[serde(default)]
    pub street: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub postal_code: String,
}

/// A government identifier: the representative's individual NPI, or an SSN.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct GovernmentId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn: Option<String>,
    /// What is kept of the SSN once a decision is made (set by us, never taken from input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn_last4: Option<String>,
}

/// A financial or utility identifier: a personal phone, a credit card, or knowledge answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinancialId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_last4: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knowledge_answers: Vec<KnowledgeAnswer>,
    /// How many knowledge answers were erased after a decision.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub knowledge_erased: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct KnowledgeAnswer {
    pub question: String,
    pub answer: String,
}

/// Knowledge-based verification needs at least this many answers.
pub(crate) const MIN_KNOWLEDGE_ANSWERS: usize = 3;

/// One section as it is sent in (the `confirmation` section is not data: it is the code step).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Section {
    Business(Business),
    Representative(Representative),
    GovernmentId(GovernmentId),
    FinancialId(FinancialId),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum SectionError {
    #[error("no section {0:?}: sections are business, representative, government_id, financial_id (confirmation is the code step)")]
    Unknown(String),
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

impl Section {
    /// Parses a section's JSON; the field named in an error is `section.field`.
    pub(crate) fn parse(name: &str, json: &serde_json::Value) -> Result<Section, SectionError> {
        fn from<T: serde::de::DeserializeOwned>(name: &str, json: &serde_json::Value) -> Result<T, SectionError> {
            T::deserialize(json).map_err(|e| {
                let text = e.to_string();
                // serde names the offending field in backquotes: surface it as section.field.
                let field = text.split('`').nth(1).map_or(name.to_string(), |f| format!("{name}.{f}"));
                SectionError::Field { field, message: text }
            })
        }
        let section = match name {
            "business" => Section::Business(from(name, json)?),
            "representative" => Section::Representative(from(name, json)?),
            "government_id" => {
                let mut g: GovernmentId = from(name, json)?;
                g.ssn_last4 = None;
                Section::GovernmentId(g)
            }
            "financial_id" => {
                let mut f: FinancialId = from(name, json)?;
                f.card_last4 = None;
                f.knowledge_erased = 0;
                Section::FinancialId(f)
            }
            other => return Err(SectionError::Unknown(other.to_string())),
        };
        section.check_shape()?;
        Ok(section)
    }

    /// Refuses what is malformed whatever a verifier would say: one of several alternatives given
    /// twice, unreadable dates, fields far too long.
    fn check_shape(&self) -> Result<(), SectionError> {
        let field = |f: &str, m: &str| Err(SectionError::Field { field: f.into(), message: m.into() });
        let strings: Vec<(&str, &str)> = match self {
            Section::Business(b) => vec![("business.name", &b.name)],
            Section::Representative(r) => vec![
                ("representative.first_name", &r.first_name),
                ("representative.last_name", &r.last_name),
                ("representative.home_address.street", &r.home_address.street),
                ("representative.home_address.city", &r.home_address.city),
                ("representative.home_address.state", &r.home_address.state),
                ("representative.home_address.postal_code", &r.home_address.postal_code),
                ("representative.date_of_birth", &r.date_of_birth),
                ("representative.personal_email", &r.personal_email),
            ],
            Section::GovernmentId(g) => {
                if g.npi.is_some() && g.ssn.is_some() {
                    return field("government_id", "give either npi or ssn, not both");
                }
                vec![]
            }
            Section::FinancialId(f) => {
                let given = [f.phone.is_some(), f.card_number.is_some(), !f.knowledge_answers.is_empty()];
                if given.iter().filter(|g| **g).count() > 1 {
                    return field("financial_id", "give one of phone, card_number or knowledge_answers");
                }
                f.knowledge_answers.iter().map(|k| ("financial_id.knowledge_answers", k.answer.as_str())).collect()
            }
        };
        for (name, value) in strings {
            if value.len() > 200 {
                return field(name, "longer than 200 characters");
            }
        }
        if let Section::Representative(r) = self {
            if !r.date_of_birth.is_empty() && crate::clock::parse_date(&r.date_of_birth).is_none() {
                return field("representative.date_of_birth", "a date is YYYY-MM-DD");
            }
        }
        Ok(())
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Section::Business(_) => "business",
            Section::Representative(_) => "representative",
            Section::GovernmentId(_) => "government_id",
            Section::FinancialId(_) => "financial_id",
        }
    }
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

impl Enrollment {
    pub(crate) fn set(&mut self, section: Section) {
        match section {
            Section::Business(b) => self.business = Some(b),
            Section::Representative(r) => self.representative = Some(r),
            Section::GovernmentId(g) => self.government_id = Some(g),
            Section::FinancialId(f) => self.financial_id = Some(f),
        }
    }

    /// What a section still needs, in words an EHR can show beside it (empty: nothing missing).
    pub(crate) fn what_is_missing(&self, section: &str) -> Vec<String> {
        let missing = self.missing(section);
        if missing.is_empty() {
            return Vec::new();
        }
        match section {
            "business" => vec!["the business name".into()],
            "government_id" => vec!["the representative's individual NPI or Social Security number".into()],
            "financial_id" => {
                let answered = self
                    .financial_id
                    .as_ref()
                    .map_or(0, |f| f.knowledge_answers.iter().filter(|k| !blank(&k.answer)).count());
                vec![format!(
                    "a personal phone, a credit card number, or answers to {MIN_KNOWLEDGE_ANSWERS} knowledge \
                     questions ({answered} answered)"
                )]
            }
            _ => {
                let fields: Vec<String> =
                    missing.iter().map(|f| f.rsplit('.').next().unwrap_or(f).replace('_', " ")).collect();
                vec![format!("missing: {}", fields.join(", "))]
            }
        }
    }

    /// The fields still missing from a data section (empty: the section is ready).
    pub(crate) fn missing(&self, section: &str) -> Vec<String> {
        let mut out = Vec::new();
        // An alternative (npi or ssn; phone, card or answers) is missing as the whole section.
        let mut need = |field: &str, absent: bool| {
            if absent {
                out.push(if field.is_empty() { section.to_string() } else { format!("{section}.{field}") });
            }
        };
        match section {
            "business" => need("name", self.business.as_ref().is_none_or(|b| blank(&b.name))),
            "representative" => {
                let r = self.representative.clone().unwrap_or_default();
                let a = &r.home_address;
                need("first_name", blank(&r.first_name));
                need("last_name", blank(&r.last_name));
                need("home_address.street", blank(&a.street));
                need("home_address.city", blank(&a.city));
                need("home_address.state", blank(&a.state));
                need("home_address.postal_code", blank(&a.postal_code));
                need("date_of_birth", blank(&r.date_of_birth));
                need("personal_email", blank(&r.personal_email));
            }
            "government_id" => {
                let g = self.government_id.clone().unwrap_or_default();
                let given = g.npi.as_deref().is_some_and(|n| !blank(n)) || g.ssn.as_deref().is_some_and(|s| !blank(s));
                need("", !given);
            }
            "financial_id" => {
                let f = self.financial_id.clone().unwrap_or_default();
                let answered = f.knowledge_answers.iter().filter(|k| !blank(&k.answer)).count();
                let given = f.phone.as_deref().is_some_and(|p| !blank(p))
                    || f.card_number.as_deref().is_some_and(|c| !blank(c))
                    || answered >= MIN_KNOWLEDGE_ANSWERS;
                need("", !given);
            }
            _ => {}
        }
        out
    }

    /// Erases what must not outlive the decision: the SSN and card number (their last four digits
    /// are kept) and the knowledge answers.
    pub(crate) fn erase_sensitive(&mut self) {
        self.keep_last4();
        if let Some(f) = &mut self.financial_id {
            f.knowledge_erased += f.knowledge_answers.len();
            f.knowledge_answers.clear();
        }
    }

    /// Replaces the SSN and the card number with their last four digits.
    fn keep_last4(&mut self) {
        if let Some(g) = &mut self.government_id {
            if let Some(ssn) = g.ssn.take() {
                g.ssn_last4 = Some(checks::last4(&ssn));
            }
        }
        if let Some(f) = &mut self.financial_id {
            if let Some(card) = f.card_number.take() {
                f.card_last4 = Some(checks::last4(&card));
            }
        }
    }

    /// The form as it may be shown back: identifiers masked, knowledge answers never shown.
    pub(crate) fn masked(&self) -> serde_json::Value {
        let mut copy = self.clone();
        copy.keep_last4();
        if let Some(f) = &mut copy.financial_id {
            for k in &mut f.knowledge_answers {
                k.answer = "(hidden)".into();
            }
        }
        serde_json::to_value(copy).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_a_section_lacks_is_said_in_words() {
        let mut e = Enrollment::default();
        let two = json!({"knowledge_answers": [{"question": "a", "answer": "1"}, {"question": "b", "answer": "2"}]});
        e.set(Section::parse("financial_id", &two).unwrap());
        let said = e.what_is_missing("financial_id").join("");
        assert!(said.contains("3 knowledge questions (2 answered)"), "{said}");
        let named = json!({"first_name": "Jane", "middle_name": "Q", "last_name": "Smith", "suffix": "Jr."});
        e.set(Section::parse("representative", &named).unwrap());
        let said = e.what_is_missing("representative").join("");
        assert!(said.starts_with("missing: street, city"), "{said}");
        assert!(e.what_is_missing("business").join("").contains("business name"));
    }

    #[test]
    fn a_section_is_ready_when_its_fields_are_there() {
        let mut e = Enrollment::default();
        assert_eq!(e.missing("business"), vec!["business.name"]);
        e.set(Section::parse("business", &json!({"name": "Smith Pediatrics"})).unwrap());
        assert!(e.missing("business").is_empty());
        e.set(Section::parse("representative", &json!({"first_name": "Jane", "date_of_birth": "1980-04-02"})).unwrap());
        assert!(e.missing("representative").contains(&"representative.personal_email".to_string()));
        e.set(
            Section::parse("financial_id", &json!({"knowledge_answers": [{"question": "q", "answer": "a"}]})).unwrap(),
        );
        assert_eq!(e.missing("financial_id").len(), 1, "one answer is not enough");
    }

    #[test]
    fn bad_input_names_its_field() {
        let err = Section::parse("representative", &json!({"date_of_birth": "04/02/1980"})).unwrap_err();
        assert_eq!(err.to_string(), "representative.date_of_birth: a date is YYYY-MM-DD");
        let err = Section::parse("business", &json!({"nmae": "x"})).unwrap_err();
        assert!(matches!(&err, SectionError::Field { field, .. } if field == "business.nmae"), "{err}");
        let err = Section::parse("government_id", &json!({"npi": "1234567893", "ssn": "123-45-6789"})).unwrap_err();
        assert!(err.to_string().starts_with("government_id:"));
        assert!(matches!(Section::parse("hobbies", &json!({})), Err(SectionError::Unknown(_))));
        // What only we may set is not taken from input.
        let Section::GovernmentId(g) = Section::parse("government_id", &json!({"ssn_last4": "1234"})).unwrap() else {
            panic!()
        };
        assert_eq!(g.ssn_last4, None);
    }

    #[test]
    fn erasing_keeps_only_the_last_four_digits() {
        let mut e = Enrollment::default();
        e.set(Section::parse("government_id", &json!({"ssn": "123-45-6789"})).unwrap());
        e.set(Section::parse("financial_id", &json!({"card_number": "4111 1111 1111 1111"})).unwrap());
        let shown = e.masked().to_string();
        assert!(!shown.contains("123-45") && !shown.contains("4111 1111"), "{shown}");
        e.erase_sensitive();
        let kept = serde_json::to_string(&e).unwrap();
        assert!(kept.contains("6789") && kept.contains("1111"));
        assert!(!kept.contains("123-45") && !kept.contains("4111 1111 1111"), "{kept}");
        assert_eq!(e.missing("government_id").len(), 1, "an erased SSN must be given again to retry");
    }
}
