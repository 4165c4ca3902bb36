//! Cursor pagination for every list of the API: `?limit=N` (1 to 1000, 100 by default) items
//! per page, and `?cursor=...` from the previous page's `next_cursor` (null on the last page).
//! A cursor is opaque to the client; it holds the position the next page starts at.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

use super::error::ApiError;

pub(crate) const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

/// One page asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    pub limit: usize,
    offset: usize,
}

impl Paging {
    /// From `limit` and `cursor` in the query.
    pub(crate) fn of(query: &HashMap<String, String>) -> Result<Paging, ApiError> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::field("limit", format!("a number from 1 to {MAX_LIMIT}")))?,
        };
        let offset = match query.get("cursor").filter(|c| !c.is_empty()) {
            None => 0,
            Some(cursor) => URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| t.strip_prefix("o:").and_then(|n| n.parse().ok()))
                .ok_or_else(|| ApiError::field("cursor", "the next_cursor of the previous page, as it was given"))?,
        };
        Ok(Paging { limit, offset })
    }

    /// How many items to read to answer this page and know whether another follows.
    pub(crate) fn reach(&self) -> usize {
        self.offset.saturating_add(self.limit).saturating_add(1)
    }

    /// This page of `items` (read from the start, at least `reach()` of them when there are) and
    /// the cursor of the next, if any.
    pub(crate) fn page<T>(&self, items: Vec<T>) -> (Vec<T>, Option<String>) {
        let more = items.len() > self.offset + self.limit;
        let page: Vec<T> = items.into_iter().skip(self.offset).take(self.limit).collect();
        let next = more.then(|| URL_SAFE_NO_PAD.encode(format!("o:{}", self.offset + self.limit)));
        (page, next)
    }

    /// The JSON answer `{name: [page], "next_cursor": ...}`.
    pub(crate) fn answer<T: Serialize>(&self, name: &str, items: Vec<T>) -> Value {
        let (page, next) = self.page(items);
        json!({ name: page, "next_cursor": next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn pages_follow_one_another_to_the_end_and_bad_input_is_named() {
        let items: Vec<u32> = (0..250).collect();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("limit", "100")];
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let paging = Paging::of(&query(&q)).unwrap();
            let read: Vec<u32> = items.iter().copied().take(paging.reach()).collect();
            let (page, next) = paging.page(read);
            seen.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(Paging::of(&query(&[("limit", "1001")])).is_err());
        assert!(Paging::of(&query(&[("cursor", "garbage!")])).is_err());
        assert_eq!(Paging::of(&query(&[])).unwrap().limit, 100);
    }
}
