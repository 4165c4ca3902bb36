//! The SMTP listeners: accept connections (up to a limit), one thread each, and drive a `Session`
//! over the socket: read lines with a length limit and timeouts, write replies, upgrade to TLS on
//! STARTTLS, and commit accepted messages before answering 250.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslStream};

use super::session::{Action, Envelope, Gate, Session, SessionConfig, MAX_COMMAND_LINE};
use super::sessions::Sessions;

/// Where accepted messages go: returns the queue id once the message is durably committed.
pub trait Committer: Send + Sync {
    fn commit(&self, envelope: Envelope, peer: SocketAddr) -> Result<String, String>;
}

/// Makes the `Gate` a connection asks (each connection gets its own, e.g. its own database handle).
pub trait GateFactory: Send + Sync {
    fn gate(&self) -> Result<Box<dyn Gate>, String>;
}

pub struct Listener {
    pub session: SessionConfig,
    pub tls: Option<Arc<SslAcceptor>>,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    pub max_connections: usize,
    pub gates: Arc<dyn GateFactory>,
    pub committer: Arc<dyn Committer>,
    /// Set when the node stops: new connections are turned away, and open sessions close once
    /// the message they are receiving, if any, is answered.
    pub stopping: Arc<AtomicBool>,
    /// The open sessions, for the stop to wind down.
    pub sessions: Arc<Sessions>,
}

/// The longest piece of a DATA line read at once; longer lines arrive in pieces.
const DATA_CHUNK: usize = 64 * 1024;

/// Accepts connections on `socket` until it fails; each is served on its own thread.
pub fn run(socket: TcpListener, listener: Arc<Listener>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in socket.incoming() {
        let Ok(mut stream) = stream else { continue };
        if listener.stopping.load(Ordering::SeqCst) {
            let _ = stream.write_all(b"421 4.3.2 Shutting down, try again later\r\n");
            continue;
        }
        if open.fetch_add(1, Ordering::SeqCst) >= listener.max_connections {
            open.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n");
            continue;
        }
        let listener = listener.clone();
        let open = open.clone();
        let spawned = std::thread::Builder::new().name("smtp-session".into()).spawn(move || {
            let peer = stream.peer_addr().ok();
            if let Err(e) = serve_connection(stream, &listener) {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    eprintln!("smtp {}: {e}", peer.map(|p| p.to_string()).unwrap_or_default());
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            eprintln!("smtp: cannot start a session thread");
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

/// Asks the kernel to acknowledge what arrives at once. A client with Nagle's algorithm on whose
/// TLS library writes a message as several records holds each record back until the one before is
/// acknowledged, and Linux may delay that acknowledgement by up to 40 ms: a 50 KB message took
/// some 40 ms more per message. The setting does not stick, so it is renewed before each read.
fn quick_ack(tcp: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on an open socket, with a pointer to a live c_int and its size.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        quick_ack(self.tcp());
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn serve_connection(stream: TcpStream, listener: &Listener) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    // On the list before the stop flag is read: a stop either sees this session or is seen here.
    let membership = listener.sessions.join(&stream)?;
    let stopping = || listener.stopping.load(Ordering::SeqCst);
    stream.set_write_timeout(Some(listener.data_timeout))?;
    // Replies are small and each answers a request: send them at once (no Nagle delay waiting
    // for the client's delayed ACK).
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(Stream::Plain(stream));
    let gate = match listener.gates.gate() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("smtp {peer}: {e}");
            reader.get_mut().write_all(b"421 4.3.0 Service temporarily unavailable\r\n")?;
            return Ok(());
        }
    };
    let mut session = Session::new(listener.session.clone());
    if stopping() {
        reader.get_mut().write_all(session.shutting_down().as_bytes())?;
        return Ok(());
    }
    reader.get_mut().write_all(session.greeting().as_bytes())?;
    let mut line = Vec::with_capacity(1024);
    let mut replies = Vec::new();
    // The read timeout in force: set again only when it changes (DATA lines come by the thousand).
    let mut timeout_set = None;
    // Whether the session is receiving (or committing) a message, as the stop last learnt it.
    let mut in_message = false;
    loop {
        // The message was answered: the session closes now if the node is stopping.
        if in_message && !session.in_data() {
            in_message = false;
            if !membership.end_message(stopping()) {
                let _ = reader.get_mut().write_all(session.shutting_down().as_bytes());
                return Ok(());
            }
        }
        let (timeout, limit) = if session.in_data() {
            (listener.data_timeout, DATA_CHUNK)
        } else {
            (listener.idle_timeout, MAX_COMMAND_LINE + 1)
        };
        if timeout_set != Some(timeout) {
            reader.get_ref().tcp().set_read_timeout(Some(timeout))?;
            timeout_set = Some(timeout);
        }
        line.clear();
        let read = (&mut reader).take(limit as u64).read_until(b'\n', &mut line);
        // The stop closed this session's reading side while it waited for a command.
        if matches!(read, Ok(0) | Err(_)) && !in_message && stopping() {
            let _ = reader.get_mut().write_all(session.shutting_down().as_bytes());
            return Ok(());
        }
        match read {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                let _ = reader.get_mut().write_all(session.timed_out().as_bytes());
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let step = session.line(&line, gate.as_ref());
        // A session starts a message before its 354 goes out (the client may answer before this
        // thread runs again): a stop that came first closes it instead, with 421 for the 354.
        if session.in_data() && !in_message {
            in_message = true;
            if !membership.begin_message() {
                replies.extend_from_slice(session.shutting_down().as_bytes());
                let _ = reader.get_mut().write_all(&replies);
                return Ok(());
            }
        }
        if let Some(reply) = &step.reply {
            replies.extend_from_slice(reply.as_bytes());
        }
        // Replies to pipelined commands (RFC 2920) go out together, in one TLS record, once no
        // further complete command is waiting; always before anything that blocks.
        let more_waiting = || memchr::memchr(b'\n', reader.buffer()).is_some();
        if !replies.is_empty() && (!matches!(step.action, Action::Continue) || !more_waiting()) {
            reader.get_mut().write_all(&replies)?;
            replies.clear();
        }
        match step.action {
            Action::Continue => {}
            Action::Close => return Ok(()),
            Action::Commit(envelope) => {
                let outcome = listener.committer.commit(*envelope, peer);
                reader.get_mut().write_all(session.committed(outcome).as_bytes())?;
            }
            Action::StartTls => {
                // Anything the client sent after STARTTLS and before the handshake would be read
                // as if protected by TLS: refuse the connection (the STARTTLS injection attack).
                if !reader.buffer().is_empty() {
                    return Ok(());
                }
                let Some(acceptor) = &listener.tls else { return Ok(()) };
                let Stream::Plain(tcp) = reader.into_inner() else { return Ok(()) };
                let tls = acceptor.accept(tcp).map_err(|e| io::Error::other(format!("TLS handshake: {e}")))?;
                reader = BufReader::new(Stream::Tls(Box::new(tls)));
                timeout_set = None;
                session.tls_started();
            }
        }
    }
}
