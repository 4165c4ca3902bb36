//! The SMTP listeners: accept connections (up to a limit in all and per peer address), one thread
//! each, and drive a `Session` over the socket: read lines with a length limit and deadlines,
//! write replies, upgrade to TLS on STARTTLS, and commit accepted messages before answering 250.
//!
//! Deadlines, not per-read timeouts, so a client cannot hold a slot by trickling: a command line
//! (and a TLS handshake) must arrive whole within the idle timeout; DATA must keep up a minimum
//! rate after a grace of the data timeout (RFC 5321 §4.5.3.2 gives minutes per block, never an
//! unbounded total).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ssl::{SslAcceptor, SslStream};

use crate::admission::{Admission, Refusal, Ticket};
use crate::deadline::Deadlined;
use crate::failure::{Code, Failure};
use crate::free_space::FreeSpace;

use super::session::{Action, Envelope, Gate, Session, SessionConfig, MAX_COMMAND_LINE};
use super::sessions::Sessions;

/// Where accepted messages go: returns the queue id once the message is durably committed.
pub(crate) trait Committer: Send + Sync {
    fn commit(&self, envelope: Envelope, peer: SocketAddr) -> Result<String, String>;
}

/// Makes the `Gate` a connection from `peer` asks (each connection gets its own, e.g. its own
/// database handle).
pub(crate) trait GateFactory: Send + Sync {
    fn gate(&self, peer: std::net::IpAddr) -> Result<Box<dyn Gate>, String>;
}

pub(crate) struct Listener {
    pub session: SessionConfig,
    pub tls: Option<Arc<SslAcceptor>>,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    /// How many connections at once, in all and from one address.
    pub admission: Arc<Admission>,
    /// When set, connections are turned away (421) while the disks are short of room.
    pub free_space: Option<Arc<FreeSpace>>,
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
/// After the data timeout's grace, DATA must arrive at least this fast on average.
const DATA_MIN_BYTES_PER_SECOND: u64 = 16 * 1024;

/// Accepts connections on `socket` until it fails; each is served on its own thread.
pub(crate) fn run(socket: TcpListener, listener: Arc<Listener>) {
    for stream in socket.incoming() {
        let Ok(mut stream) = stream else { continue };
        if listener.stopping.load(Ordering::SeqCst) {
            let _ = stream.write_all(b"421 4.3.2 Shutting down, try again later\r\n");
            continue;
        }
        if listener.free_space.as_ref().is_some_and(|f| !f.enough()) {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = stream.write_all(b"421 4.3.1 Insufficient system storage, try again later\r\n");
            continue;
        }
        let Ok(peer) = stream.peer_addr() else { continue };
        let ticket = match listener.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = stream.write_all(match refusal {
                    Refusal::Full => b"421 4.3.2 Too many connections, try again later\r\n".as_slice(),
                    Refusal::PeerFull => b"421 4.7.0 Too many connections from your address, try again later\r\n",
                });
                continue;
            }
        };
        let listener = listener.clone();
        let spawned = std::thread::Builder::new().name("smtp-session".into()).spawn(move || {
            let _span = tracing::info_span!("smtp", %peer).entered();
            let mut ticket = ticket;
            if let Err(e) = serve_connection(stream, &listener, &mut ticket) {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::warn!("smtp {peer}: {e}");
                }
            }
        });
        if spawned.is_err() {
            tracing::error!("smtp: cannot start a session thread");
        }
    }
}

enum Stream {
    Plain(Deadlined<TcpStream>),
    Tls(Box<SslStream<Deadlined<TcpStream>>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s.get_ref(),
            Stream::Tls(s) => s.get_ref().get_ref(),
        }
    }

    /// Every read and write from now on must be done by `deadline`.
    fn due_by(&mut self, deadline: Instant) {
        match self {
            Stream::Plain(s) => s.set_deadline(deadline),
            Stream::Tls(s) => s.get_mut().set_deadline(deadline),
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
            size_of::<libc::c_int>() as libc::socklen_t,
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

/// Writes `bytes` to the client, which has the data timeout to take them.
fn send(reader: &mut BufReader<Stream>, bytes: &[u8], listener: &Listener) -> io::Result<()> {
    let stream = reader.get_mut();
    stream.due_by(Instant::now() + listener.data_timeout);
    stream.write_all(bytes)
}

fn serve_connection(stream: TcpStream, listener: &Listener, ticket: &mut Ticket) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    // On the list before the stop flag is read: a stop either sees this session or is seen here.
    let membership = listener.sessions.join(&stream)?;
    let stopping = || listener.stopping.load(Ordering::SeqCst);
    // Replies are small and each answers a request: send them at once (no Nagle delay waiting
    // for the client's delayed ACK).
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(Stream::Plain(Deadlined::new(stream, listener.data_timeout)));
    let Some((gate, mut session)) = greet(&mut reader, listener, peer, stopping())? else { return Ok(()) };
    let mut line = Vec::with_capacity(1024);
    let mut replies = Vec::new();
    // Whether the session is receiving (or committing) a message, as the stop last learnt it.
    let mut in_message = false;
    // When the command now awaited began to be awaited (None while in DATA).
    let mut awaiting_since = None;
    // When DATA began, and how many of its bytes have come.
    let mut data = (Instant::now(), 0u64);
    loop {
        // The message was answered: the session closes now if the node is stopping.
        if in_message && !session.in_data() {
            in_message = false;
            ticket.release();
            if !membership.end_message(stopping()) {
                let _ = send(&mut reader, session.shutting_down().as_bytes(), listener);
                return Ok(());
            }
        }
        let limit = next_read(&mut reader, listener, session.in_data(), data, &mut awaiting_since);
        line.clear();
        let read = (&mut reader).take(limit as u64).read_until(b'\n', &mut line);
        // The stop closed this session's reading side while it waited for a command.
        if matches!(read, Ok(0) | Err(_)) && !in_message && stopping() {
            let _ = send(&mut reader, session.shutting_down().as_bytes(), listener);
            return Ok(());
        }
        match took(read, &line, &mut session, ticket, &mut data.1)? {
            Took::Closed => return Ok(()),
            Took::TimedOut => {
                let _ = send(&mut reader, session.timed_out().as_bytes(), listener);
                return Ok(());
            }
            Took::Line => awaiting_since = None,
            Took::Part => {}
        }
        let step = session.line(&line, gate.as_ref());
        // A session starts a message before its 354 goes out (the client may answer before this
        // thread runs again): a stop that came first closes it instead, with 421 for the 354.
        if session.in_data() && !in_message {
            in_message = true;
            data = (Instant::now(), 0);
            if !membership.begin_message() {
                replies.extend_from_slice(session.shutting_down().as_bytes());
                let _ = send(&mut reader, &replies, listener);
                return Ok(());
            }
        }
        if let Some(reply) = &step.reply {
            replies.extend_from_slice(reply.as_bytes());
        }
        flush_replies(&mut reader, &mut replies, matches!(step.action, Action::Continue), listener)?;
        match step.action {
            Action::Continue => {}
            Action::Close => return Ok(()),
            Action::Commit(envelope) => {
                let outcome = listener.committer.commit(*envelope, peer);
                send(&mut reader, session.committed(outcome).as_bytes(), listener)?;
            }
            Action::StartTls => {
                let Some(secure) = start_tls(reader, listener)? else { return Ok(()) };
                reader = secure;
                session.tls_started();
            }
        }
    }
}

/// Replies to pipelined commands (RFC 2920) go out together, in one TLS record, once no further
/// complete command is waiting; always before anything that blocks (`continues` false).
fn flush_replies(
    reader: &mut BufReader<Stream>,
    replies: &mut Vec<u8>,
    continues: bool,
    listener: &Listener,
) -> io::Result<()> {
    let more_waiting = || memchr::memchr(b'\n', reader.buffer()).is_some();
    if !replies.is_empty() && (!continues || !more_waiting()) {
        send(reader, replies, listener)?;
        replies.clear();
    }
    Ok(())
}

/// What one read brought.
enum Took {
    /// The client closed the connection.
    Closed,
    /// The client did not send in time.
    TimedOut,
    /// A whole command line.
    Line,
    /// Message data, or a line longer than the limit (the session refuses it).
    Part,
}

/// Accounts for a read: message data counts against the client's allowance (`ticket`) and the
/// bytes of this DATA (`data_bytes`); past the allowance the session refuses the message.
fn took(
    read: io::Result<usize>,
    line: &[u8],
    session: &mut Session,
    ticket: &mut Ticket,
    data_bytes: &mut u64,
) -> io::Result<Took> {
    match read {
        Ok(0) => Ok(Took::Closed),
        Ok(n) if session.in_data() => {
            *data_bytes += n as u64;
            // What one address has us hold at once is bounded across its connections.
            if !ticket.hold(n) {
                session.refuse_data(
                    Failure::temporary(Code::FULL, "Too much mail in progress from your address, try again later")
                        .with_reply(452),
                );
            }
            Ok(Took::Part)
        }
        Ok(_) if line.ends_with(b"\n") => Ok(Took::Line),
        Ok(_) => Ok(Took::Part),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(Took::TimedOut),
        Err(e) => Err(e),
    }
}

/// The session's gate and its greeting, or None once the client was told the service is not
/// available (the store cannot be had, or the node is stopping).
fn greet(
    reader: &mut BufReader<Stream>,
    listener: &Listener,
    peer: SocketAddr,
    stopping: bool,
) -> io::Result<Option<(Box<dyn Gate>, Session)>> {
    let gate = match listener.gates.gate(peer.ip()) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("smtp {peer}: {e}");
            send(reader, b"421 4.3.0 Service temporarily unavailable\r\n", listener)?;
            return Ok(None);
        }
    };
    let session = Session::new(listener.session.clone());
    if stopping {
        send(reader, session.shutting_down().as_bytes(), listener)?;
        return Ok(None);
    }
    send(reader, session.greeting().as_bytes(), listener)?;
    Ok(Some((gate, session)))
}

/// Sets the deadline of the next read and returns how much it may take: a chunk of message data
/// by a deadline that grows with the data received (`data`: when DATA began and its bytes so
/// far), or a command line, however it trickles in, within the idle timeout of when it began to
/// be awaited.
fn next_read(
    reader: &mut BufReader<Stream>,
    listener: &Listener,
    in_data: bool,
    data: (Instant, u64),
    awaiting_since: &mut Option<Instant>,
) -> usize {
    if in_data {
        let (started, received) = data;
        let allowed = listener.data_timeout + Duration::from_secs(received / DATA_MIN_BYTES_PER_SECOND);
        reader.get_mut().due_by(started + allowed);
        DATA_CHUNK
    } else {
        let since = *awaiting_since.get_or_insert_with(Instant::now);
        reader.get_mut().due_by(since + listener.idle_timeout);
        MAX_COMMAND_LINE + 1
    }
}

/// The TLS handshake after STARTTLS, within the idle timeout; None when the connection is to be
/// closed instead: anything the client sent after STARTTLS and before the handshake would be read
/// as if protected by TLS (the STARTTLS injection attack), or there is no TLS here.
fn start_tls(reader: BufReader<Stream>, listener: &Listener) -> io::Result<Option<BufReader<Stream>>> {
    if !reader.buffer().is_empty() {
        return Ok(None);
    }
    let Some(acceptor) = &listener.tls else { return Ok(None) };
    let Stream::Plain(mut tcp) = reader.into_inner() else { return Ok(None) };
    tcp.set_deadline(Instant::now() + listener.idle_timeout);
    let tls = acceptor.accept(tcp).map_err(|e| io::Error::other(format!("TLS handshake: {e}")))?;
    Ok(Some(BufReader::new(Stream::Tls(Box::new(tls)))))
}
