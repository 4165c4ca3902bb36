//! Delivery into Maildir (the layout Dovecot and other IMAP servers read): write the message into
//! `tmp/`, rename it into `new/`, then fsync the file and the directory. The file name is derived
//! from the message and the recipient, so a message delivered again after a crash finds its first
//! copy and is not doubled.
//!
//! The rename comes before the file's fsync so that one journal commit makes both the content and
//! the name durable (on ext4 an fsync commits every metadata change before it; syncing the file
//! first and the directory after costs two). A crash in between can leave a name in `new/` whose
//! content did not reach the disk: the retry after it compares the copy with the message and
//! writes it again when they differ.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::address::DirectAddress;

/// `<root>/<domain>/<user>/`. The address types admit no separator and no dot-only name, and
/// this checks again that each part is one plain path component, so a mailbox cannot lie outside
/// `root` whatever a future address rule allows.
pub(crate) fn mailbox(root: &Path, address: &DirectAddress) -> std::io::Result<PathBuf> {
    under(root, &[address.domain().as_str(), address.local()])
}

fn under(root: &Path, parts: &[&str]) -> std::io::Result<PathBuf> {
    let mut path = root.to_path_buf();
    for part in parts {
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) if name == std::ffi::OsStr::new(part) => path.push(name),
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{part:?} cannot name a mailbox directory"),
                ))
            }
        }
    }
    Ok(path)
}

/// Delivers `message` as `name` unless a copy of that name is already in `new/` (or, when
/// `retry` says an earlier attempt may have written it, in `cur/`: an IMAP server may have moved
/// it there since; `cur/` is read only then, because a mailbox's `cur/` can hold thousands of
/// messages). Returns the path of the delivered (or earlier) copy.
pub(crate) fn deliver(
    root: &Path,
    address: &DirectAddress,
    name: &str,
    message: &[u8],
    retry: bool,
) -> std::io::Result<PathBuf> {
    let dir = mailbox(root, address)?;
    if !dir.join("new").is_dir() {
        for sub in ["tmp", "new", "cur"] {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir.join(sub))?;
        }
    }
    let target = dir.join("new").join(name);
    if retry {
        // An earlier attempt may have been cut off before its fsync: its copy counts only if
        // it is whole.
        match std::fs::read(&target) {
            Ok(copy) if copy == message => return Ok(target),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(existing) = in_cur(&dir, name)? {
                    return Ok(existing);
                }
            }
            Err(e) => return Err(e),
        }
    } else if target.exists() {
        return Ok(target);
    }
    let tmp = dir.join("tmp").join(name);
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(message)?;
    std::fs::rename(&tmp, &target)?;
    file.sync_all()?;
    // The name is durable once the directory is synced (on ext4 the file's sync did it already).
    std::fs::File::open(dir.join("new"))?.sync_all()?;
    Ok(target)
}

/// A copy in `cur/`, with or without the ":2,FLAGS" an IMAP server adds.
fn in_cur(dir: &Path, name: &str) -> std::io::Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(dir.join("cur"))? {
        let entry = entry?;
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file == name || file.starts_with(&format!("{name}:")) {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_lands_in_new_once() {
        let root = tempfile::tempdir().unwrap();
        let bob = DirectAddress::parse("bob@b.test").unwrap();
        let path = deliver(root.path(), &bob, "1.abc.hisp", b"hello\r\n", false).unwrap();
        assert_eq!(deliver(root.path(), &bob, "1.abc.hisp", b"other\r\n", false).unwrap(), path, "found in new/");
        assert_eq!(path, root.path().join("b.test/bob/new/1.abc.hisp"));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello\r\n");
        // Read by an IMAP server: moved to cur/ with flags. A retry finds it there.
        let seen = root.path().join("b.test/bob/cur/1.abc.hisp:2,S");
        std::fs::rename(&path, &seen).unwrap();
        assert_eq!(deliver(root.path(), &bob, "1.abc.hisp", b"hello\r\n", true).unwrap(), seen);
        assert!(!path.exists());
        assert!(std::fs::read_dir(root.path().join("b.test/bob/tmp")).unwrap().next().is_none());
    }

    #[test]
    fn a_retry_rewrites_a_copy_cut_off_before_its_sync() {
        let root = tempfile::tempdir().unwrap();
        let bob = DirectAddress::parse("bob@b.test").unwrap();
        let path = deliver(root.path(), &bob, "2.abc.hisp", b"whole message\r\n", false).unwrap();
        // What a crash between the rename and the fsync can leave behind.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(deliver(root.path(), &bob, "2.abc.hisp", b"whole message\r\n", true).unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), b"whole message\r\n");
        // A first attempt never reads what is there (the name is the message's own).
        std::fs::write(&path, b"").unwrap();
        deliver(root.path(), &bob, "2.abc.hisp", b"whole message\r\n", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_mailbox_path_is_only_ever_plain_names_under_the_root() {
        let root = Path::new("/srv/mail");
        assert_eq!(under(root, &["b.test", "bob"]).unwrap(), root.join("b.test/bob"));
        for bad in
            [&["b.test", "/etc"][..], &["b.test", ".."], &["b.test", "a/b"], &["..", "x"], &["b.test", "."], &["", "x"]]
        {
            assert!(under(root, bad).is_err(), "{bad:?}");
        }
    }
}
