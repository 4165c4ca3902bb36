//! The peers that stand in for services outside: an SMTP smarthost (aiosmtpd, STARTTLS and AUTH
//! required) that keeps what it is given as NNNN.eml files, and Python peers in general.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::servers::{self, Server};
use super::{self_signed_tls, Files};

/// A certificate for 127.0.0.1 (and localhost) and its key, made by the openssl CLI once.
pub(crate) fn loopback_tls(files: &Files) -> (String, String) {
    let (cert, key) = (files.p("relay.pem"), files.p("relay.key"));
    if Path::new(&cert).exists() {
        return (cert, key);
    }
    self_signed_tls(files, "relay", "/CN=127.0.0.1", "IP:127.0.0.1,DNS:localhost")
}

/// A Python peer script run once (not a server): the command, to run or read the output of.
pub(crate) fn python_peer_command(script: &str, args: &[&str]) -> std::process::Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new("python3");
    command.env("PYTHONPATH", root.join(".peers/python")).arg(root.join("tests/peers").join(script)).args(args);
    command
}

pub(crate) fn python_peer(script: &str, args: &[String], port: u16) -> Server {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join(".peers/python").display().to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(script).display().to_string();
    let mut all = vec![format!("PYTHONPATH={site}"), "python3".into(), script];
    all.extend_from_slice(args);
    servers::start_program("env", &all, port)
}

/// The smarthost on `port`, keeping mail in `out`; user "hisp", password "relay-secret".
pub(crate) fn smarthost(files: &Files, port: u16, out: &Path) -> Server {
    let (cert, key) = loopback_tls(files);
    std::fs::create_dir_all(out).unwrap();
    let args = [port.to_string(), cert, key, out.display().to_string(), "hisp".into(), "relay-secret".into()];
    python_peer("smarthost.py", &args, port)
}

/// Waits up to 30 s for `n` files ending in `ext` in `dir`; their contents, in order.
pub(crate) fn wait_files(dir: &Path, ext: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect())
            .unwrap_or_default();
        names.sort();
        if names.len() >= n {
            return names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        }
        assert!(Instant::now() < deadline, "{n} .{ext} files in {} (found {})", dir.display(), names.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}
