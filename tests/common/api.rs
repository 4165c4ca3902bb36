//! A node's REST API as an EHR reaches it: curl over HTTPS, the JSON answer and its status.

use super::run;
use serde_json::Value;

/// A node's API as curl sees it.
pub(crate) struct Api {
    pub port: u16,
    pub ca_file: String,
}

pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Api {
    pub(crate) fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.attempt(token, method, path, body).unwrap_or_else(|stderr| panic!("curl {method} {path}: {stderr}"))
    }

    /// As `call`, the transport's failure (curl's message) an Err instead of a panic: a server may
    /// close the connection on a request it refuses before reading its body.
    pub(crate) fn attempt(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        self.attempt_with(token, method, path, body, &[])
    }

    /// As `call`, with more request headers ("Name: value").
    pub(crate) fn call_with(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[&str],
    ) -> Answer {
        self.attempt_with(Some(token), method, path, body, headers)
            .unwrap_or_else(|stderr| panic!("curl {method} {path}: {stderr}"))
    }

    fn attempt_with(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[&str],
    ) -> Result<Answer, String> {
        let url = format!("https://localhost:{}{path}", self.port);
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec!["-sS", "--cacert", &self.ca_file, "-X", method, "-o", "-", "-w", "\n%{http_code}"];
        if let Some(a) = &auth {
            args.extend_from_slice(&["-H", a]);
        }
        for h in headers {
            args.extend_from_slice(&["-H", h]);
        }
        let data = body.map(|b| b.to_string());
        if data.is_some() {
            args.extend_from_slice(&["-H", "Content-Type: application/json", "--data-binary", "@-"]);
        }
        args.push(&url);
        let run = run("curl", &args, data.as_ref().map(|d| d.as_bytes()), &[]);
        if run.status != 0 {
            return Err(format!("exit {}: {}", run.status, run.stderr));
        }
        let split = run.stdout.iter().rposition(|&b| b == b'\n').unwrap();
        let status = String::from_utf8_lossy(&run.stdout[split + 1..]).trim().parse().unwrap();
        let raw = run.stdout[..split].to_vec();
        Ok(Answer { status, body: serde_json::from_slice(&raw).unwrap_or(Value::Null), raw })
    }

    /// A call that must answer `status`; its JSON.
    pub(crate) fn expect(&self, token: &str, status: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
        let a = self.call(Some(token), method, path, body);
        assert_eq!(a.status, status, "{method} {path}: {}", String::from_utf8_lossy(&a.raw));
        a.body
    }
}
