//! A node under test: a database file and the environment that selects it, driven through the
//! hisp binary.

use super::servers::{self, Server};
use super::{hisp, Files, Run};

pub const KEK: &str = "test-kek-0123456789abcdef";

/// A node: a database path and the environment that selects it.
pub struct Node {
    pub files: Files,
    pub db: String,
    /// Where the node's development CA publishes its certificate and CRL (see `publish_ca`).
    pub web: Option<Server>,
    config: Option<String>,
}

impl Node {
    pub fn new() -> Node {
        let files = Files::new();
        let db = files.p("data/hisp.db");
        let node = Node { files, db, web: None, config: None };
        node.ok(&["init"]);
        node
    }

    /// A node whose development CA names an HTTP server on loopback in the certificates it
    /// issues (ca.base_url), so peers can check their revocation; `publish_ca` puts the files there.
    pub fn with_published_ca() -> Node {
        let files = Files::new();
        let web = servers::http();
        let config =
            files.write("hisp.toml", format!("[ca]\nbase_url = \"http://127.0.0.1:{}\"\n", web.port).as_bytes());
        let node = Node { db: files.p("data/hisp.db"), files, web: Some(web), config: Some(config) };
        node.ok(&["init"]);
        node
    }

    /// Writes the development CA's certificate and current CRL where its certificates point.
    pub fn publish_ca(&self) {
        let web = self.web.as_ref().expect("a node made with_published_ca");
        self.ok(&["ca", "crl", "--out", &web.path("ca.crl").display().to_string()]);
        self.ok(&["ca", "export", "--der", "--out", &web.path("ca.cer").display().to_string()]);
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(args, None)
    }

    pub fn run_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut env = vec![("HISP_DB", self.db.as_str()), ("HISP_KEK", KEK)];
        if let Some(config) = &self.config {
            env.push(("HISP_CONFIG", config));
        }
        hisp(args, stdin, &env)
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
