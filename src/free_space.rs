//! Whether the disks the node writes to have room left: below a watermark the backbone stops
//! taking mail from peers (they retry later), so what is already accepted can still be processed
//! and EHRs' submissions keep working as long as they can.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one look at the file systems is trusted.
const RECHECK: Duration = Duration::from_secs(1);

pub(crate) struct FreeSpace {
    paths: Vec<PathBuf>,
    min_bytes: u64,
    /// When last looked at, and what was seen.
    last: Mutex<Option<(Instant, bool)>>,
}

impl FreeSpace {
    /// Watches the file systems holding `paths` (those that exist), with `min_bytes` to spare.
    pub(crate) fn new(paths: Vec<PathBuf>, min_bytes: u64) -> FreeSpace {
        FreeSpace { paths, min_bytes, last: Mutex::new(None) }
    }

    /// Is there room on every file system watched (looked at again at most once a second).
    pub(crate) fn enough(&self) -> bool {
        if self.min_bytes == 0 {
            return true;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, enough)) = *last {
            if at.elapsed() < RECHECK {
                return enough;
            }
        }
        let enough = self.paths.iter().filter_map(|p| available(p)).all(|free| free >= self.min_bytes);
        *last = Some((Instant::now(), enough));
        enough
    }
}

/// Bytes an unprivileged process may still write on the file system holding `path` (its nearest
/// existing ancestor).
pub(crate) fn available(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let c_path = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we pass for a NUL-terminated path we own.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a NUL-terminated path and a struct of ours to fill.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_measured_against_the_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let free = available(dir.path()).unwrap();
        assert!(free > 0);
        assert!(available(&dir.path().join("not/yet/made")).is_some(), "the nearest existing ancestor counts");
        assert!(FreeSpace::new(vec![dir.path().to_path_buf()], 1).enough());
        assert!(!FreeSpace::new(vec![dir.path().to_path_buf()], u64::MAX).enough());
        assert!(FreeSpace::new(vec![dir.path().to_path_buf()], 0).enough(), "0 turns it off");
    }
}
