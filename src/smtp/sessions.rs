//! The SMTP sessions a node is serving, so that a stop can wind them down in order (RFC 5321
//! §3.8): a session waiting for a command is closed at once with 421; one receiving or committing
//! a message finishes it first, so that a message committed to the queue is answered 250 rather
//! than cut off and sent again by its client.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where a session is, as a stop sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Between messages, waiting for a command: may be closed at any time.
    Command,
    /// Receiving a message's data or committing it: left to finish.
    Message,
    /// Closed by the stop (its reading side is shut): takes no new message.
    Closed,
}

struct Entry {
    /// A handle on the session's socket, to shut its reading side.
    tcp: TcpStream,
    state: Mutex<State>,
}

/// Every open session of the node's listeners.
#[derive(Default)]
pub(crate) struct Sessions {
    entries: Mutex<HashMap<u64, Arc<Entry>>>,
    next_id: AtomicU64,
}

/// One session's place in `Sessions`; leaving it (dropping it) takes the session off the list.
pub(crate) struct Membership {
    sessions: Arc<Sessions>,
    id: u64,
    entry: Arc<Entry>,
}

impl Sessions {
    /// Adds the session on `tcp`, waiting for a command.
    pub(crate) fn join(self: &Arc<Self>, tcp: &TcpStream) -> io::Result<Membership> {
        let entry = Arc::new(Entry { tcp: tcp.try_clone()?, state: Mutex::new(State::Command) });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.entries).insert(id, entry.clone());
        Ok(Membership { sessions: self.clone(), id, entry })
    }

    /// Closes the reading side of every session waiting for a command (its read ends at once;
    /// the session then says 421 and closes) and of every one that will come back to waiting for
    /// a command. Sessions in the middle of a message are left to finish it. Returns how many
    /// were closed now.
    pub(crate) fn wind_down(&self) -> usize {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).values().cloned().collect();
        let mut closed = 0;
        for entry in entries {
            let mut state = lock(&entry.state);
            if *state == State::Command {
                // An error here means the peer is gone already: its read ends all the same.
                let _ = entry.tcp.shutdown(Shutdown::Read);
                *state = State::Closed;
                closed += 1;
            }
        }
        closed
    }

    /// How many sessions are open.
    pub(crate) fn open(&self) -> usize {
        lock(&self.entries).len()
    }
}

impl Membership {
    /// The session starts receiving a message. False when the stop has closed it already (it
    /// must not take the message: its reading side is shut).
    pub(crate) fn begin_message(&self) -> bool {
        let mut state = lock(&self.entry.state);
        match *state {
            State::Closed => false,
            _ => {
                *state = State::Message;
                true
            }
        }
    }

    /// The message is answered: the session waits for a command again. When the stop came
    /// meanwhile, its reading side is shut now and the answer is false: the session says 421.
    pub(crate) fn end_message(&self, stopping: bool) -> bool {
        let mut state = lock(&self.entry.state);
        if stopping || *state == State::Closed {
            let _ = self.entry.tcp.shutdown(Shutdown::Read);
            *state = State::Closed;
            return false;
        }
        *state = State::Command;
        true
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        lock(&self.sessions.entries).remove(&self.id);
    }
}

/// The lock's contents, also after a panic elsewhere (the data is a plain state, never half
/// written).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connected pair: (the server's end, the client's end).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    #[test]
    fn a_stop_closes_waiting_sessions_and_lets_a_message_in_progress_finish() {
        let sessions = Arc::new(Sessions::default());
        let (waiting_tcp, _c1) = pair();
        let (busy_tcp, _c2) = pair();
        let waiting = sessions.join(&waiting_tcp).unwrap();
        let busy = sessions.join(&busy_tcp).unwrap();
        assert!(busy.begin_message());
        assert_eq!(sessions.open(), 2);

        assert_eq!(sessions.wind_down(), 1, "only the waiting session is closed");
        // Its blocked (or next) read ends at once, with nothing read.
        let mut buf = [0u8; 8];
        assert_eq!((&waiting_tcp).read(&mut buf).unwrap(), 0);
        assert!(!waiting.begin_message(), "a closed session takes no new message");
        // The busy one can still read the rest of its message...
        busy_tcp.set_read_timeout(Some(std::time::Duration::from_millis(50))).unwrap();
        assert!((&busy_tcp).read(&mut buf).is_err(), "still open: the read waits for data");
        // ...and is closed once it is answered.
        assert!(!busy.end_message(true));
        assert_eq!((&busy_tcp).read(&mut buf).unwrap(), 0);

        drop(waiting);
        drop(busy);
        assert_eq!(sessions.open(), 0, "leaving takes a session off the list");
    }

    #[test]
    fn without_a_stop_a_session_goes_from_message_to_command_and_stays_open() {
        let sessions = Arc::new(Sessions::default());
        let (tcp, _client) = pair();
        let member = sessions.join(&tcp).unwrap();
        assert!(member.begin_message());
        assert!(member.end_message(false));
        assert!(member.begin_message(), "the next message is taken");
        assert_eq!(sessions.wind_down(), 0, "a session in a message is not closed");
    }
}
