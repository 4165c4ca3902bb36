//! Searching an address book: every word of the query must begin a word of the member's name,
//! label, practice or address (case and accents of ASCII letters aside). The store keeps names
//! sealed, so the search runs over an account's own contacts in memory: a few hundred at most.

use crate::store::address_book::ListingRecord;

/// The members of `list` the query finds; an empty query finds all.
pub(crate) fn search(list: Vec<ListingRecord>, query: &str) -> Vec<ListingRecord> {
    let wanted: Vec<String> = words(query);
    list.into_iter()
        .filter(|l| {
            let mut have = words(&l.name);
            for text in [&l.label, &l.address].into_iter().flatten() {
                have.extend(words(text));
            }
            have.extend(words(&l.practice));
            wanted.iter().all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
        })
        .collect()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(name: &str, label: Option<&str>, practice: &str) -> ListingRecord {
        ListingRecord {
            id: 0,
            practice: practice.into(),
            kind: "account".into(),
            name: name.into(),
            address: None,
            label: label.map(String::from),
            role: None,
            created_at: 0,
            account_id: None,
        }
    }

    #[test]
    fn every_word_of_the_query_begins_a_word_of_the_member() {
        let list = vec![
            listing("Grace Hopper", None, "Birch Family Medicine"),
            listing("intake@elm.test", Some("Referrals inbox"), "Elm Clinic"),
            listing("Ada Lovelace", Some("Cardiology"), "Elm Clinic"),
        ];
        let names = |q: &str| search(list.clone(), q).into_iter().map(|l| l.name).collect::<Vec<_>>();
        assert_eq!(names("hop"), ["Grace Hopper"]);
        assert_eq!(names("elm"), ["intake@elm.test", "Ada Lovelace"]);
        assert_eq!(names("elm referr"), ["intake@elm.test"]);
        assert_eq!(names("CARDIO ada"), ["Ada Lovelace"]);
        assert!(names("opper").is_empty(), "beginnings of words, not any part");
        assert_eq!(names("").len(), 3);
    }
}
