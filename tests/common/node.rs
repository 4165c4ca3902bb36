//! A node under test: a database file and the environment that selects it, driven through the
//! hisp binary.

use super::servers::{self, Server};
use super::{hisp, Files, Run};

pub(crate) const KEK: &str = "test-kek-0123456789abcdef";

/// A node: a database path and the environment that selects it.
pub(crate) struct Node {
    pub files: Files,
    pub db: String,
    /// Where the node's development CA publishes its certificate and CRL (see `publish_ca`).
    pub web: Option<Server>,
    config: Option<String>,
}

impl Node {
    pub(crate) fn new() -> Node {
        let files = Files::new();
        let db = files.p("data/hisp.db");
        let node = Node { files, db, web: None, config: None };
        node.ok(&["init"]);
        node
    }

    /// A node whose development CA names an HTTP server on loopback in the certificates it
    /// issues (ca.base_url), so peers can check their revocation; `publish_ca` puts the files there.
    pub(crate) fn with_published_ca() -> Node {
        Self::with_published_ca_and("")
    }

    /// As `with_published_ca`, with more configuration (TOML sections other than [ca]).
    pub(crate) fn with_published_ca_and(extra: &str) -> Node {
        let files = Files::new();
        let web = servers::http();
        let text = format!("[ca]\nbase_url = \"http://127.0.0.1:{}\"\n{extra}", web.port);
        let config = files.write("hisp.toml", text.as_bytes());
        let node = Node { db: files.p("data/hisp.db"), files, web: Some(web), config: Some(config) };
        node.ok(&["init"]);
        node
    }

    /// A node with this configuration file (no web server of its own).
    pub(crate) fn with_config(text: &str) -> Node {
        let files = Files::new();
        let config = files.write("hisp.toml", text.as_bytes());
        let node = Node { db: files.p("data/hisp.db"), files, web: None, config: Some(config) };
        node.ok(&["init"]);
        node
    }

    /// A node of the same configuration whose database is to be made elsewhere (by `hisp
    /// restore`, say): nothing is created.
    pub(crate) fn elsewhere(&self) -> Node {
        let files = Files::new();
        Node { db: files.p("data/hisp.db"), files, web: None, config: self.config.clone() }
    }

    /// Writes the development CA's certificate and current CRL where its certificates point.
    pub(crate) fn publish_ca(&self) {
        let web = self.web.as_ref().expect("a node made with_published_ca");
        self.ok(&["ca", "crl", "--out", &web.path("ca.crl").display().to_string()]);
        self.ok(&["ca", "export", "--der", "--force", "--out", &web.path("ca.cer").display().to_string()]);
    }

    /// Starts `hisp serve` and waits until it listens on `port`; stopped when the Daemon drops.
    pub(crate) fn serve(&self, port: u16) -> Daemon {
        let log = std::fs::File::create(self.files.path("serve.log")).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hisp"));
        cmd.arg("serve").env("HISP_DB", &self.db).env("HISP_KEK", KEK).env_remove("HISP_CONFIG");
        if let Some(config) = &self.config {
            cmd.env("HISP_CONFIG", config);
        }
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        let mut child = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("hisp serve exited ({status}): {}", self.serve_log());
            }
            assert!(std::time::Instant::now() < deadline, "hisp serve did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Daemon { child }
    }

    pub(crate) fn serve_log(&self) -> String {
        std::fs::read_to_string(self.files.path("serve.log")).unwrap_or_default()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_in(args, None)
    }

    pub(crate) fn run_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut env = vec![("HISP_DB", self.db.as_str()), ("HISP_KEK", KEK)];
        if let Some(config) = &self.config {
            env.push(("HISP_CONFIG", config));
        }
        hisp(args, stdin, &env)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Run {
        self.run(args).ok()
    }

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    pub(crate) fn sql(&self, query: &str) -> Vec<Vec<u8>> {
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

/// A running `hisp serve`.
pub(crate) struct Daemon {
    child: std::process::Child,
}

impl Daemon {
    /// Its environment as /proc shows it (what it started with, as it stands in its memory).
    pub(crate) fn environ(&self) -> Vec<u8> {
        std::fs::read(format!("/proc/{}/environ", self.child.id())).unwrap_or_default()
    }

    /// Its resident memory in KiB, as the kernel counts it.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
    }

    /// Sends it SIGTERM (an orderly stop, as systemd asks).
    pub(crate) fn terminate(&self) {
        // SAFETY: sends a signal to a child process of ours.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
    }

    /// Waits up to `limit` for it to end; its exit status.
    pub(crate) fn wait_exit(mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
