//! One deadline for a whole exchange with a peer. A socket timeout bounds each read, not their
//! sum: a peer that sends one byte just before each timeout holds a connection forever. Here every
//! read and write is given only the time left until the deadline, so the exchange as a whole ends
//! by then, however the peer trickles.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Streams whose TCP socket can be reached, to set its timeouts.
pub(crate) trait Socket {
    fn socket(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl<S: Socket + Read + Write> Socket for openssl::ssl::SslStream<S> {
    fn socket(&self) -> &TcpStream {
        self.get_ref().socket()
    }
}

impl<S: Socket + Read + Write> Socket for Deadlined<S> {
    fn socket(&self) -> &TcpStream {
        self.inner.socket()
    }
}

/// A stream whose reads and writes fail with `TimedOut` once its deadline has passed.
#[derive(Debug)]
pub(crate) struct Deadlined<S> {
    inner: S,
    deadline: Instant,
}

impl<S: Socket> Deadlined<S> {
    /// `inner`, due within `limit` from now.
    pub(crate) fn new(inner: S, limit: Duration) -> Deadlined<S> {
        Deadlined { inner, deadline: Instant::now() + limit }
    }

    /// From now on, everything must be done by `deadline`.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gives the socket the time left, or fails when there is none.
    fn arm(&self) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer took longer than allowed"));
        }
        let socket = self.inner.socket();
        socket.set_read_timeout(Some(left))?;
        socket.set_write_timeout(Some(left))
    }
}

impl<S: Socket + Read> Read for Deadlined<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.read(buf).map_err(timed_out)
    }
}

impl<S: Socket + Write> Write for Deadlined<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.arm()?;
        self.inner.flush().map_err(timed_out)
    }
}

/// A socket timeout reads as WouldBlock on Unix: say what it is.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "the peer took longer than allowed")
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_peer_trickling_bytes_is_cut_off_at_the_deadline_not_per_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let trickler = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            // One byte every 100 ms, for 3 s: each read is quick, the whole is not.
            for _ in 0..30 {
                if peer.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let started = Instant::now();
        let mut timed = Deadlined::new(stream, Duration::from_millis(500));
        let mut got = Vec::new();
        let error = timed.read_to_end(&mut got).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
        assert!(!got.is_empty() && got.len() < 30, "{} bytes", got.len());
        drop(timed);
        trickler.join().unwrap();
    }
}
