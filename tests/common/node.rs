//! A node under test: a database file and the environment that selects it, driven through the
//! hisp binary.

use super::{hisp, Files, Run};

pub const KEK: &str = "test-kek-0123456789abcdef";

/// A node: a database path and the environment that selects it.
pub struct Node {
    pub files: Files,
    pub db: String,
}

impl Node {
    pub fn new() -> Node {
        let files = Files::new();
        let db = files.p("data/hisp.db");
        let node = Node { files, db };
        node.ok(&["init"]);
        node
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(args, None)
    }

    pub fn run_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        hisp(args, stdin, &[("HISP_DB", &self.db), ("HISP_KEK", KEK)])
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        self.run(args).ok()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    pub fn sql(&self, query: &str) -> Vec<Vec<u8>> {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let mut stmt = conn.prepare(query).unwrap();
        stmt.query_map([], |r| {
            let v: rusqlite::types::Value = r.get(0)?;
            Ok(match v {
                rusqlite::types::Value::Blob(b) => b,
                rusqlite::types::Value::Text(t) => t.into_bytes(),
                other => format!("{other:?}").into_bytes(),
            })
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    }
}
