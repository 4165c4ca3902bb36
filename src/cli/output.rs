//! Printing: aligned text tables for people, JSON for programs.

use serde::Serialize;

pub(super) fn json<T: Serialize + ?Sized>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
}

/// A text table with a header row; prints `empty` instead when there are no rows.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
        return;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Reads all of standard input, or a file.
pub(super) fn read_input(path: Option<&std::path::Path>) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    match path {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::read(p).map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display())))
        }
        _ => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            Ok(buf)
        }
    }
}

/// Every certificate in a file (PEM, possibly several; DER; PKCS#7).
pub(super) fn read_certs(path: &std::path::Path) -> Result<Vec<openssl::x509::X509>, super::Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| super::Failure::new("io", format!("cannot read {}: {e}", path.display())))?;
    Ok(crate::pki::load_certs(&bytes, &path.display().to_string())?)
}

/// Writes to a file (0600: what a command writes may be PHI, a decrypted message), or standard
/// output.
pub(super) fn write_output(path: Option<&std::path::Path>, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match path {
        Some(p) if p.as_os_str() != "-" => {
            let cannot =
                |e: std::io::Error| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", p.display()));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(p)
                .map_err(cannot)?;
            // A file that was there keeps its mode through open(): narrow it too.
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(cannot)?;
            file.write_all(data).map_err(cannot)
        }
        _ => {
            let mut out = std::io::stdout().lock();
            out.write_all(data)?;
            out.flush()
        }
    }
}

/// Writes `data` to a new file at `path` (`mode`: 0o600 for anything holding PHI or a key, 0o644
/// for a public certificate); an existing file is refused unless `force`, with the flag named.
pub(super) fn write_new_file(
    path: &std::path::Path,
    data: &[u8],
    force: bool,
    mode: u32,
) -> Result<(), super::Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            super::Failure::new("exists", format!("{} exists; give --force to replace it", path.display()))
        }
        _ => super::Failure::new("io", format!("cannot write {}: {e}", path.display())),
    })?;
    file.write_all(data).map_err(|e| super::Failure::new("io", format!("cannot write {}: {e}", path.display())))
}

/// Goes ahead with something that removes `what` (a list of what goes) when `yes` was given, or
/// when the operator types "yes" at a terminal; refuses otherwise, saying what it would remove.
pub(super) fn confirm(what: &str, yes: bool) -> Result<(), super::Failure> {
    use std::io::{IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if std::io::stdin().is_terminal() {
        eprint!("This removes {what}. Type yes to go ahead: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() == "yes" {
            return Ok(());
        }
        return Err(super::Failure::new("not-confirmed", "nothing was removed"));
    }
    Err(super::Failure::new(
        "not-confirmed",
        format!("this removes {what}; give --yes to go ahead (nothing was removed)"),
    ))
}

/// "2 addresses, 1 certificates": what (what, how many) lists, or `none`.
pub(super) fn tally(items: &[(&str, i64)], none: &str) -> String {
    if items.is_empty() {
        return none.to_string();
    }
    items.iter().map(|(what, n)| format!("{n} {what}")).collect::<Vec<_>>().join(", ")
}

/// A name or a reason as every command takes it, as the API does: 1 to 200 characters, no line
/// break or other control character (which would forge lines in `hisp audit` and listings).
pub(crate) fn plain_line(value: &str) -> Result<String, String> {
    crate::printable::plain_line(value).map(str::to_string).map_err(str::to_string)
}

/// The first line of standard input (a password or passphrase), without its line ending.
pub(super) fn read_secret_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
