//! The portal's journeys in a real browser: a script under tests/browser/ run by Node.js, driving
//! Debian's Chromium through playwright-core (both installed by scripts/test.sh). Its screenshots
//! go to target/tmp/portal-screenshots/<journey>/, kept with the test output.

use std::path::{Path, PathBuf};

const CHROMIUM: &str = "/usr/bin/chromium";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the journey's screenshots go (emptied first).
pub(crate) fn screenshots(journey: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portal-screenshots").join(journey);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs tests/browser/`script` with `env` (PORTAL_URL among them); fails the test with the
/// script's output, and `log` (the node's), when the journey fails.
pub(crate) fn journey(script: &str, env: &[(&str, String)], log: impl Fn() -> String) {
    let modules = root().join(".peers/node/node_modules");
    assert!(
        Path::new(CHROMIUM).exists() && modules.join("playwright-core").exists(),
        "the browser tests need Debian's chromium and playwright-core under .peers/node: run bash scripts/test.sh"
    );
    let name = script.trim_end_matches(".js");
    let shots = screenshots(name);
    let mut cmd = std::process::Command::new("node");
    cmd.arg(root().join("tests/browser").join(script))
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOTS", &shots)
        .env_remove("HISP_DB")
        .env_remove("HISP_CONFIG")
        .env_remove("HISP_KEK");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "journey {script} failed ({}):\n{stdout}\n{stderr}\nscreenshots so far: {}\nnode log:\n{}",
        out.status,
        shots.display(),
        log()
    );
    println!("{stdout}");
}
