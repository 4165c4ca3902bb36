//! The data of a message being received. The first `IN_MEMORY` bytes stay in memory (where the
//! header section is read); the rest goes to a file without a name in the spool directory, so a
//! large or slow message holds disk rather than memory while it comes in. What goes to the file is
//! encrypted under a key that lives only in this process's memory (AES-256-CTR, OpenSSL): the file
//! holds PHI, and it is gone when the spool is dropped, whatever becomes of the process.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use openssl::symm::{Cipher, Crypter, Mode};

use crate::wiped::Wiped;

/// What stays in memory: a header section is far smaller, and most messages fit whole.
pub(crate) const IN_MEMORY: usize = 1024 * 1024;

/// The size of the pieces written to and read from the file.
const CHUNK: usize = 64 * 1024;

pub(crate) struct Spool {
    head: Vec<u8>,
    rest: Option<Spilled>,
    len: usize,
    /// Where the rest goes; None keeps everything in memory (fuzzing, tests).
    dir: Option<Arc<Path>>,
}

struct Spilled {
    file: BufWriter<File>,
    encrypt: Crypter,
    key: Wiped,
    iv: [u8; 16],
    sealed: Vec<u8>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("len", &self.len).field("spilled", &self.spilled()).finish()
    }
}

impl Spool {
    pub(crate) fn new(dir: Option<Arc<Path>>) -> Spool {
        Spool { head: Vec::new(), rest: None, len: 0, dir }
    }

    /// A message already in memory (one the REST API composed).
    pub(crate) fn in_memory(bytes: Vec<u8>) -> Spool {
        Spool { len: bytes.len(), head: bytes, rest: None, dir: None }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first bytes of the message: all of it, or the first `IN_MEMORY` bytes when it spilled.
    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }

    /// Whether part of the message is in the file.
    pub(crate) fn spilled(&self) -> bool {
        self.rest.is_some()
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.len += bytes.len();
        if self.rest.is_none() {
            let room = match self.dir {
                Some(_) => IN_MEMORY.saturating_sub(self.head.len()),
                None => usize::MAX,
            };
            let now = bytes.len().min(room);
            self.head.extend_from_slice(&bytes[..now]);
            bytes = &bytes[now..];
            if bytes.is_empty() {
                return Ok(());
            }
        }
        let rest = match &mut self.rest {
            Some(rest) => rest,
            None => {
                let dir = self.dir.as_deref().expect("only a spool with a directory spills");
                self.rest.insert(Spilled::create(dir)?)
            }
        };
        for piece in bytes.chunks(CHUNK) {
            rest.sealed.resize(piece.len() + 16, 0);
            let n = rest.encrypt.update(piece, &mut rest.sealed).map_err(io::Error::other)?;
            rest.file.write_all(&rest.sealed[..n])?;
        }
        Ok(())
    }

    /// Hands the whole message to `take` in pieces, in order: the head, then the file's content.
    pub(crate) fn drain(self, mut take: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        take(&self.head)?;
        let Some(rest) = self.rest else { return Ok(()) };
        let mut file = rest.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        let mut decrypt = Crypter::new(Cipher::aes_256_ctr(), Mode::Decrypt, &rest.key.0, Some(&rest.iv))
            .map_err(io::Error::other)?;
        let mut sealed = vec![0u8; CHUNK];
        let mut plain = Wiped(vec![0u8; CHUNK + 16]);
        let mut left = self.len - self.head.len();
        while left > 0 {
            let n = file.read(&mut sealed[..CHUNK.min(left)])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the spool file is shorter than what was written",
                ));
            }
            let m = decrypt.update(&sealed[..n], &mut plain.0).map_err(io::Error::other)?;
            take(&plain.0[..m])?;
            left -= n;
        }
        Ok(())
    }

    /// The whole message in one buffer (tests compare what was spooled).
    #[cfg(test)]
    pub(crate) fn into_bytes(self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len);
        self.drain(|piece| {
            out.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(out)
    }
}

impl Spilled {
    fn create(dir: &Path) -> io::Result<Spilled> {
        let mut key = Wiped(vec![0u8; 32]);
        let mut iv = [0u8; 16];
        openssl::rand::rand_bytes(&mut key.0).map_err(io::Error::other)?;
        openssl::rand::rand_bytes(&mut iv).map_err(io::Error::other)?;
        let encrypt =
            Crypter::new(Cipher::aes_256_ctr(), Mode::Encrypt, &key.0, Some(&iv)).map_err(io::Error::other)?;
        // Unnamed (O_TMPFILE where the file system has it, else unlinked at once), mode 0600.
        let file = tempfile::tempfile_in(dir)?;
        Ok(Spilled { file: BufWriter::with_capacity(CHUNK, file), encrypt, key, iv, sealed: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_large_message_spills_encrypted_and_comes_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let message = pattern(3 * IN_MEMORY + 12_345);
        let mut spool = Spool::new(Some(Arc::from(dir.path())));
        // In the uneven pieces lines arrive in.
        for piece in message.chunks(7_919) {
            spool.push(piece).unwrap();
        }
        assert!(spool.spilled());
        assert_eq!(spool.len(), message.len());
        assert_eq!(spool.head(), &message[..IN_MEMORY]);
        // The file is nowhere to be found by name, and what it holds is not the message.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let rest = spool.rest.as_mut().unwrap();
        rest.file.flush().unwrap();
        let mut on_disk = Vec::new();
        let mut file = rest.file.get_ref().try_clone().unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut on_disk).unwrap();
        assert_eq!(on_disk.len(), message.len() - IN_MEMORY);
        assert_ne!(on_disk, &message[IN_MEMORY..]);
        assert!(!on_disk.windows(64).any(|w| w == &message[IN_MEMORY..IN_MEMORY + 64]));
        assert_eq!(spool.into_bytes().unwrap(), message);
    }

    #[test]
    fn a_small_message_or_a_spool_without_a_directory_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut small = Spool::new(Some(Arc::from(dir.path())));
        small.push(&pattern(IN_MEMORY)).unwrap();
        assert!(!small.spilled());
        let mut unspooled = Spool::new(None);
        unspooled.push(&pattern(2 * IN_MEMORY)).unwrap();
        assert!(!unspooled.spilled());
        assert_eq!(unspooled.into_bytes().unwrap(), pattern(2 * IN_MEMORY));
    }

    #[test]
    fn a_spool_directory_that_cannot_be_written_is_an_error() {
        let mut spool = Spool::new(Some(Arc::from(Path::new("/nonexistent/spool"))));
        assert!(spool.push(&pattern(IN_MEMORY + 1)).is_err());
    }
}
