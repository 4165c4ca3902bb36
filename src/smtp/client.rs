//! Delivery to a peer's MX over SMTP (RFC 5321) with STARTTLS required (RFC 3207): one message,
//! one recipient per transaction. A 4xx reply or a broken connection is temporary (retry later); a
//! 5xx reply is permanent (`Failure::from_reply`, `Failure::from_io`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslStream};

use crate::deadline::Deadlined;
use crate::failure::{Code, Failure};
use crate::printable::printable;

pub(crate) struct ClientConfig<'a> {
    /// Our name in EHLO.
    pub hostname: &'a str,
    pub timeout: Duration,
    pub tls: &'a SslConnector,
    /// Check the certificate's chain and that it names the MX host.
    pub verify_tls: bool,
    /// User and password for AUTH PLAIN after STARTTLS (submitting as an EHR does); None for
    /// server-to-server delivery.
    pub auth: Option<(&'a str, &'a str)>,
}

/// A reply: its code and its text lines joined.
#[derive(Debug)]
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    /// Does this EHLO reply announce `keyword` (a line that is the keyword, or it and parameters).
    fn offers(&self, keyword: &str) -> bool {
        self.text.split(" / ").any(|line| {
            let line = line.trim();
            line.eq_ignore_ascii_case(keyword)
                || line.get(..keyword.len() + 1).is_some_and(|head| head.eq_ignore_ascii_case(&format!("{keyword} ")))
        })
    }

    fn expect(self, wanted: u16, during: &str) -> Result<Reply, Failure> {
        if self.code == wanted {
            return Ok(self);
        }
        Err(Failure::from_reply(self.code, &self.text, during))
    }
}

/// The longest reply line taken from a peer (RFC 5321 §4.5.3.1.5 allows 512 octets; servers
/// that write longer ones exist), and the most lines one reply may have.
const MAX_REPLY_LINE: usize = 1000;
const MAX_REPLY_LINES: usize = 100;
/// The slowest a peer may take a message: a transaction may last three command timeouts plus one
/// second per this many bytes.
const MIN_BYTES_PER_SECOND: u64 = 16 * 1024;

/// A connection to a peer whose every read and write must be done by a deadline.
trait Conn: BufRead + Write {
    fn due_by(&mut self, deadline: Instant);
}

/// A buffered reader over a stream that is also written to.
struct Duplex<S: std::io::Read + Write> {
    reader: BufReader<S>,
}

impl<S: std::io::Read + Write> std::io::Read for Duplex<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}
impl<S: std::io::Read + Write> BufRead for Duplex<S> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.reader.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.reader.consume(n)
    }
}
impl<S: std::io::Read + Write> Write for Duplex<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.reader.get_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.reader.get_mut().flush()
    }
}

type Plain = Deadlined<TcpStream>;
type Secure = SslStream<Deadlined<TcpStream>>;

impl Conn for Duplex<Plain> {
    fn due_by(&mut self, deadline: Instant) {
        self.reader.get_mut().set_deadline(deadline);
    }
}

impl Conn for Duplex<Secure> {
    fn due_by(&mut self, deadline: Instant) {
        self.reader.get_mut().get_mut().set_deadline(deadline);
    }
}

/// How long a peer may take: `command` for each reply, and everything by `until`.
#[derive(Clone, Copy)]
struct Limits {
    command: Duration,
    until: Instant,
}

impl Limits {
    fn new(command: Duration, whole: Duration) -> Limits {
        Limits { command, until: Instant::now() + whole }
    }

    /// The deadline for the next reply.
    fn next_reply(&self) -> Instant {
        (Instant::now() + self.command).min(self.until)
    }
}

fn temporary(during: &str) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::from_io(during, &e)
}

/// Something about the connection or the peer's replies that may be better at another attempt.
fn broken(text: String) -> Failure {
    Failure::temporary(Code::CONNECTION, text)
}

/// One reply line, CRLF included, of at most `MAX_REPLY_LINE` octets.
fn read_line(conn: &mut dyn Conn, during: &str) -> Result<Vec<u8>, Failure> {
    let mut line = Vec::new();
    loop {
        let available = conn.fill_buf().map_err(temporary(during))?;
        if available.is_empty() {
            return Err(broken(format!("{during}: the connection closed")));
        }
        let (take, ended) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > MAX_REPLY_LINE + 2 {
            return Err(broken(format!("{during}: the peer sent a reply line longer than {MAX_REPLY_LINE} octets")));
        }
        line.extend_from_slice(&available[..take]);
        conn.consume(take);
        if ended {
            return Ok(line);
        }
    }
}

/// A whole reply, due by `deadline`: at most `MAX_REPLY_LINES` lines.
fn read_reply(conn: &mut dyn Conn, during: &str, deadline: Instant) -> Result<Reply, Failure> {
    conn.due_by(deadline);
    let mut text = Vec::new();
    loop {
        if text.len() == MAX_REPLY_LINES {
            return Err(broken(format!("{during}: the peer's reply has over {MAX_REPLY_LINES} lines")));
        }
        let line = read_line(conn, during)?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end();
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else {
            return Err(broken(format!("{during}: not an SMTP reply: {}", printable(line, 200))));
        };
        text.push(printable(line.get(4..).unwrap_or(""), 200));
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(Reply { code, text: text.join(" / ") });
        }
    }
}

/// A reply read from `bytes` as a peer would send it (for the fuzz target).
#[cfg(feature = "fuzzing")]
pub(crate) fn reply_from(bytes: &[u8]) -> Result<(u16, String), Failure> {
    struct Bytes(std::io::Cursor<Vec<u8>>, Vec<u8>);
    impl std::io::Read for Bytes {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl BufRead for Bytes {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            self.0.fill_buf()
        }
        fn consume(&mut self, n: usize) {
            self.0.consume(n)
        }
    }
    impl Write for Bytes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Conn for Bytes {
        fn due_by(&mut self, _: Instant) {}
    }
    let mut peer = Bytes(std::io::Cursor::new(bytes.to_vec()), Vec::new());
    let reply = read_reply(&mut peer, "fuzz", Instant::now())?;
    let offers = reply.offers("STARTTLS");
    Ok((reply.code + u16::from(offers), reply.text))
}

fn command(conn: &mut dyn Conn, line: &str, during: &str, limits: Limits) -> Result<Reply, Failure> {
    conn.due_by(limits.next_reply());
    conn.write_all(format!("{line}\r\n").as_bytes()).map_err(temporary(during))?;
    conn.flush().map_err(temporary(during))?;
    read_reply(conn, during, limits.next_reply())
}

/// MAIL, RCPT and DATA, up to the peer's 354. With PIPELINING the three go in one write and every
/// reply is read, in order, before deciding (RFC 2920 §3.1): one round trip instead of three.
fn open_transaction(
    conn: &mut dyn Conn,
    mail: &str,
    rcpt: &str,
    pipelining: bool,
    limits: Limits,
) -> Result<Reply, Failure> {
    if !pipelining {
        command(conn, mail, "MAIL", limits)?.expect(250, "MAIL")?;
        command(conn, rcpt, "RCPT", limits)?.expect(250, "RCPT")?;
        return command(conn, "DATA", "DATA", limits)?.expect(354, "DATA");
    }
    conn.due_by(limits.next_reply());
    conn.write_all(format!("{mail}\r\n{rcpt}\r\nDATA\r\n").as_bytes()).map_err(temporary("MAIL"))?;
    conn.flush().map_err(temporary("MAIL"))?;
    let [mail_reply, rcpt_reply, data_reply] = [
        read_reply(conn, "MAIL", limits.next_reply())?,
        read_reply(conn, "RCPT", limits.next_reply())?,
        read_reply(conn, "DATA", limits.next_reply())?,
    ];
    let data_accepted = data_reply.code == 354;
    let checked = mail_reply
        .expect(250, "MAIL")
        .and_then(|_| rcpt_reply.expect(250, "RCPT"))
        .and_then(|_| data_reply.expect(354, "DATA"));
    if checked.is_err() && data_accepted {
        // DATA went through although MAIL or RCPT did not: end that empty message at once.
        conn.due_by(limits.next_reply());
        conn.write_all(b".\r\n").map_err(temporary("DATA"))?;
        conn.flush().map_err(temporary("DATA"))?;
        read_reply(conn, "end of DATA", limits.next_reply())?;
    }
    checked
}

/// Delivers `data` from `mail_from` (None: the null reverse-path) to `recipient` via the MX
/// `host` at `addr` on a new session, closed afterwards. Returns the peer's final reply.
pub(crate) fn deliver(
    addr: SocketAddr,
    host: &str,
    config: &ClientConfig,
    mail_from: Option<&str>,
    recipient: &str,
    data: &[u8],
) -> Result<String, Failure> {
    let mut session = Session::connect(addr, host, config)?;
    let outcome = session.send(mail_from, recipient, data);
    session.quit();
    outcome
}

/// An SMTP session to a peer, past STARTTLS (and AUTH when configured), ready for transactions.
pub(crate) struct Session {
    conn: Duplex<Secure>,
    announces_size: bool,
    /// The peer offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
    /// How long the peer may take over each reply.
    timeout: Duration,
    last_used: Instant,
    /// The connection failed (not a refusal the peer answered): no QUIT is sent on it.
    broken: bool,
}

impl Session {
    /// Connects, greets, starts TLS (and authenticates): each reply within the timeout, and all
    /// of it within three. A peer that refuses a step, or offers no STARTTLS, is told QUIT.
    pub(crate) fn connect(addr: SocketAddr, host: &str, config: &ClientConfig) -> Result<Session, Failure> {
        let limits = Limits::new(config.timeout, config.timeout * 3);
        let tcp = TcpStream::connect_timeout(&addr, config.timeout).map_err(temporary("connect"))?;
        tcp.set_nodelay(true).map_err(temporary("connect"))?;
        let mut plain = Duplex { reader: BufReader::new(Deadlined::new(tcp, config.timeout)) };
        let greeting = read_reply(&mut plain, "greeting", limits.next_reply())?.expect(220, "greeting");
        or_quit(&mut plain, greeting, config.timeout)?;
        let ehlo = command(&mut plain, &format!("EHLO {}", config.hostname), "EHLO", limits)?.expect(250, "EHLO");
        let ehlo = or_quit(&mut plain, ehlo, config.timeout)?;
        if !ehlo.offers("STARTTLS") {
            let refusal = Err(broken(format!("{host} does not offer STARTTLS, which is required")));
            return or_quit(&mut plain, refusal, config.timeout);
        }
        let starttls = command(&mut plain, "STARTTLS", "STARTTLS", limits)?.expect(220, "STARTTLS");
        or_quit(&mut plain, starttls, config.timeout)?;
        if !plain.reader.buffer().is_empty() {
            // Bytes after the 220 would be read as if they came over TLS (CVE-2011-0411's kind).
            return Err(broken(format!("{host} sent data before the TLS handshake")));
        }
        let mut tcp = plain.reader.into_inner();
        tcp.set_deadline(limits.next_reply());
        let mut tls_config = config.tls.configure().map_err(|e| broken(format!("TLS: {e}")))?;
        tls_config.set_verify_hostname(config.verify_tls);
        if !config.verify_tls {
            tls_config.set_verify(openssl::ssl::SslVerifyMode::NONE);
        }
        let tls = tls_config.connect(host, tcp).map_err(|e| broken(format!("TLS handshake with {host}: {e}")))?;
        let mut conn = Duplex { reader: BufReader::new(tls) };
        let ehlo = command(&mut conn, &format!("EHLO {}", config.hostname), "EHLO", limits)?
            .expect(250, "EHLO after STARTTLS");
        let ehlo = or_quit(&mut conn, ehlo, config.timeout)?;
        if let Some((user, password)) = config.auth {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            let auth = command(&mut conn, &format!("AUTH PLAIN {token}"), "AUTH", limits)?.expect(235, "AUTH");
            or_quit(&mut conn, auth, config.timeout)?;
        }
        let (announces_size, pipelining) = (ehlo.offers("SIZE"), ehlo.offers("PIPELINING"));
        Ok(Session {
            conn,
            announces_size,
            pipelining,
            timeout: config.timeout,
            last_used: Instant::now(),
            broken: false,
        })
    }

    /// One transaction, within three command timeouts plus the time the message takes at a
    /// slow but steady rate. After a refusal the session is reset and stays usable; after any
    /// other error it must be dropped.
    pub(crate) fn send(&mut self, mail_from: Option<&str>, recipient: &str, data: &[u8]) -> Result<String, Failure> {
        let outcome = self.transaction(mail_from, recipient, data);
        self.last_used = Instant::now();
        // Only a peer's own reply leaves the session in step; anything else (a broken
        // connection, a reply that cannot be read) ends it.
        if matches!(&outcome, Err(e) if e.remote_reply.is_none()) {
            self.broken = true;
        }
        outcome
    }

    fn transaction(&mut self, mail_from: Option<&str>, recipient: &str, data: &[u8]) -> Result<String, Failure> {
        let transfer = Duration::from_secs(data.len() as u64 / MIN_BYTES_PER_SECOND);
        let limits = Limits::new(self.timeout, self.timeout * 3 + transfer);
        let size = if self.announces_size { format!(" SIZE={}", data.len()) } else { String::new() };
        let mail = format!("MAIL FROM:<{}>{size}", mail_from.unwrap_or(""));
        let rcpt = format!("RCPT TO:<{recipient}>");
        let conn = &mut self.conn;
        let envelope = open_transaction(conn, &mail, &rcpt, self.pipelining, limits);
        if let Err(e) = envelope {
            // A refused MAIL or RCPT leaves a transaction open: reset it for the next message.
            if e.remote_reply.is_some() && command(conn, "RSET", "RSET", limits).is_err() {
                self.broken = true;
            }
            return Err(e);
        }
        conn.due_by(limits.until);
        conn.write_all(&dot_stuffed(data)).map_err(temporary("DATA"))?;
        conn.flush().map_err(temporary("DATA"))?;
        let done = read_reply(conn, "end of DATA", limits.next_reply())?.expect(250, "end of DATA")?;
        Ok(format!("{} {}", done.code, done.text))
    }

    /// Ends the session with QUIT (RFC 5321 §4.1.1.10) and waits a little for the 221; a broken
    /// connection is only closed.
    pub(crate) fn quit(mut self) {
        if !self.broken {
            say_quit(&mut self.conn, self.timeout);
        }
    }
}

/// The longest wait for a peer's answer to QUIT: the message is already settled either way.
const QUIT_WAIT: Duration = Duration::from_secs(5);

fn say_quit(conn: &mut dyn Conn, timeout: Duration) {
    let wait = timeout.min(QUIT_WAIT);
    let _ = command(conn, "QUIT", "QUIT", Limits::new(wait, wait));
}

/// `result` of a step the peer answered: when it is a refusal, the peer is told QUIT before the
/// session is given up.
fn or_quit<T>(conn: &mut dyn Conn, result: Result<T, Failure>, timeout: Duration) -> Result<T, Failure> {
    if result.is_err() {
        say_quit(conn, timeout);
    }
    result
}

/// Open sessions to peers, kept between deliveries so that a busy destination costs one TCP
/// connection and TLS handshake, not one per message. A session left idle for `max_idle` is
/// closed with QUIT (`close_idle`, run every second) rather than left for the peer to time out,
/// and so is every session when the node stops (`close_all`).
pub(crate) struct SessionPool {
    idle: Mutex<HashMap<(SocketAddr, String), Vec<Session>>>,
    max_idle: Duration,
    per_destination: usize,
}

impl SessionPool {
    pub(crate) fn new(max_idle: Duration) -> SessionPool {
        SessionPool { idle: Mutex::new(HashMap::new()), max_idle, per_destination: 8 }
    }

    /// Delivers on an idle session to `addr` if there is one (falling back to a new session when
    /// it turns out to be dead), else on a new session; keeps the session for the next message.
    pub(crate) fn deliver(
        &self,
        addr: SocketAddr,
        host: &str,
        config: &ClientConfig,
        mail_from: Option<&str>,
        recipient: &str,
        data: &[u8],
    ) -> Result<String, Failure> {
        let key = (addr, host.to_string());
        if let Some(mut session) = self.take(&key) {
            match session.send(mail_from, recipient, data) {
                Ok(reply) => {
                    self.put(key, session);
                    return Ok(reply);
                }
                Err(e) if !e.is_temporary() => {
                    self.put(key, session);
                    return Err(e);
                }
                // A session the peer closed, or a 4xx: nothing was accepted, try a new session.
                Err(_) => session.quit(),
            }
        }
        let mut session = Session::connect(addr, host, config)?;
        let outcome = session.send(mail_from, recipient, data);
        if matches!(&outcome, Err(e) if e.is_temporary()) {
            session.quit();
        } else {
            self.put(key, session);
        }
        outcome
    }

    fn take(&self, key: &(SocketAddr, String)) -> Option<Session> {
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.idle.lock().ok()?;
            let sessions = idle.get_mut(key)?;
            let mut found = None;
            while let Some(session) = sessions.pop() {
                if session.last_used.elapsed() < self.max_idle {
                    found = Some(session);
                    break;
                }
                stale.push(session);
            }
            found
        };
        // QUIT outside the lock: other workers need the pool meanwhile.
        stale.into_iter().for_each(Session::quit);
        found
    }

    fn put(&self, key: (SocketAddr, String), session: Session) {
        let extra = match self.idle.lock() {
            Ok(mut idle) => {
                let sessions = idle.entry(key).or_default();
                if session.broken || sessions.len() >= self.per_destination {
                    Some(session)
                } else {
                    sessions.push(session);
                    None
                }
            }
            Err(_) => Some(session),
        };
        if let Some(extra) = extra {
            extra.quit();
        }
    }

    /// Closes, with QUIT, the sessions idle for `max_idle` or more; returns how many.
    pub(crate) fn close_idle(&self) -> usize {
        self.close_where(|session| session.last_used.elapsed() >= self.max_idle)
    }

    /// Closes every idle session with QUIT (the node stops); returns how many.
    pub(crate) fn close_all(&self) -> usize {
        self.close_where(|_| true)
    }

    fn close_where(&self, close: impl Fn(&Session) -> bool) -> usize {
        let closing: Vec<Session> = match self.idle.lock() {
            Ok(mut idle) => {
                let mut closing = Vec::new();
                for sessions in idle.values_mut() {
                    let (gone, kept) = std::mem::take(sessions).into_iter().partition(|s| close(s));
                    *sessions = kept;
                    closing.extend::<Vec<Session>>(gone);
                }
                idle.retain(|_, sessions| !sessions.is_empty());
                closing
            }
            Err(_) => Vec::new(),
        };
        let closed = closing.len();
        closing.into_iter().for_each(Session::quit);
        closed
    }
}

/// The message as DATA carries it: CRLF line endings, a leading dot doubled, ending in CRLF.CRLF.
pub(crate) fn dot_stuffed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 5);
    let mut at_line_start = true;
    let mut previous = 0u8;
    for &b in data {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        previous = b;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that answers from a script and records what it was sent.
    struct Scripted {
        replies: std::io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl std::io::Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl BufRead for Scripted {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            self.replies.fill_buf()
        }
        fn consume(&mut self, n: usize) {
            self.replies.consume(n)
        }
    }

    impl Conn for Scripted {
        fn due_by(&mut self, _: Instant) {}
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn limits() -> Limits {
        Limits::new(Duration::from_secs(5), Duration::from_secs(5))
    }

    fn peer(replies: &str) -> Scripted {
        Scripted { replies: std::io::Cursor::new(replies.as_bytes().to_vec()), sent: Vec::new() }
    }

    #[test]
    fn a_pipelined_envelope_is_one_write_and_every_reply_counts() {
        let mut ok = peer("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
        let reply = open_transaction(&mut ok, "MAIL FROM:<a@a.test>", "RCPT TO:<b@b.test>", true, limits()).unwrap();
        assert_eq!(reply.code, 354);
        assert_eq!(ok.sent, b"MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");

        // A refused recipient is the error even though MAIL succeeded; DATA is then refused too.
        let mut refused = peer("250 ok\r\n550 5.1.1 No such user here\r\n554 5.5.1 No valid recipients\r\n");
        match open_transaction(&mut refused, "MAIL FROM:<a@a.test>", "RCPT TO:<x@b.test>", true, limits()) {
            Err(f) if !f.is_temporary() => assert!(f.text.starts_with("RCPT: 550 5.1.1"), "{f}"),
            other => panic!("expected a permanent RCPT failure, got {other:?}"),
        }

        // A server that takes DATA after refusing the recipient gets an empty message ended at once.
        let mut lax = peer("250 ok\r\n451 4.3.0 try later\r\n354 go ahead\r\n250 ok\r\n");
        match open_transaction(&mut lax, "MAIL FROM:<a@a.test>", "RCPT TO:<x@b.test>", true, limits()) {
            Err(f) if f.is_temporary() => assert!(f.text.starts_with("RCPT: 451"), "{f}"),
            other => panic!("expected a temporary RCPT failure, got {other:?}"),
        }
        assert!(lax.sent.ends_with(b"DATA\r\n.\r\n"), "{:?}", String::from_utf8_lossy(&lax.sent));
    }

    #[test]
    fn ehlo_keywords_are_matched_whole_and_with_parameters() {
        let ehlo = Reply { code: 250, text: "mx.b.test / pipelining / SIZE 10485760 / STARTTLSX / 8BITMIME".into() };
        assert!(ehlo.offers("PIPELINING"), "any case");
        assert!(ehlo.offers("SIZE"), "with a parameter");
        assert!(!ehlo.offers("STARTTLS"), "not a prefix of another keyword");
        assert!(!ehlo.offers("SIZ"));
    }

    #[test]
    fn without_pipelining_each_command_waits_for_its_reply() {
        let mut refused = peer("550 5.7.1 sender refused\r\n");
        assert!(matches!(
            open_transaction(&mut refused, "MAIL FROM:<a@a.test>", "RCPT TO:<b@b.test>", false, limits()),
            Err(f) if !f.is_temporary()
        ));
        assert_eq!(refused.sent, b"MAIL FROM:<a@a.test>\r\n", "nothing more after the refusal");
    }

    #[test]
    fn data_is_dot_stuffed_and_terminated() {
        assert_eq!(dot_stuffed(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuffed(b".x\ny"), b"..x\r\ny\r\n.\r\n");
        assert_eq!(dot_stuffed(b""), b".\r\n");
    }

    #[test]
    fn a_reply_is_bounded_in_line_length_and_line_count_and_controls_are_masked() {
        let long = format!("220 {}\r\n", "A".repeat(MAX_REPLY_LINE));
        match read_reply(&mut peer(&long), "greeting", Instant::now()) {
            Err(f) if f.is_temporary() => assert!(f.text.contains("longer than 1000"), "{f}"),
            other => panic!("{other:?}"),
        }
        // Without any line end at all: refused as soon as the limit is passed, not read to the end.
        let endless = "220-".to_string() + &"A".repeat(10 * MAX_REPLY_LINE);
        assert!(read_reply(&mut peer(&endless), "greeting", Instant::now()).is_err());
        let many = "250-x\r\n".repeat(MAX_REPLY_LINES) + "250 x\r\n";
        match read_reply(&mut peer(&many), "EHLO", Instant::now()) {
            Err(f) if f.is_temporary() => assert!(f.text.contains("over 100 lines"), "{f}"),
            other => panic!("{other:?}"),
        }
        let fine = "250-x\r\n".repeat(MAX_REPLY_LINES - 1) + "250 x\r\n";
        assert_eq!(read_reply(&mut peer(&fine), "EHLO", Instant::now()).unwrap().code, 250);
        let control = read_reply(&mut peer("550 no\x1b[31m such\x07 user\r\n"), "RCPT", Instant::now()).unwrap();
        assert_eq!(control.text, "no?[31m such? user");
    }
}
