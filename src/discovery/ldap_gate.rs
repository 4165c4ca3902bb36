//! A gate between ldap3 and an LDAP server it is asked to search. ldap3 buffers whatever length a
//! server announces and decodes BER without a depth limit, so a hostile directory (anyone can
//! publish `_ldap._tcp` for their own domain) could fill the node's memory or overflow a stack.
//! ldap3 therefore talks to one end of a socket pair, and this gate relays: requests go to the
//! server as they are; the server's answers come back one whole LDAP message at a time (RFC 4511
//! §5.1: definite lengths), each checked for size and nesting before ldap3 sees it, with a cap on
//! all bytes and one deadline for the whole conversation.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

use crate::deadline::Deadlined;

/// What a server may send in one conversation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// One LDAP message (a search result entry carrying certificates).
    pub message_bytes: usize,
    /// Everything the server sends.
    pub total_bytes: usize,
    /// How deep BER elements may nest in one message.
    pub depth: usize,
    /// The whole conversation, from connect to the last answer.
    pub time: Duration,
}

impl Limits {
    pub(crate) fn within(time: Duration) -> Limits {
        Limits { message_bytes: 1024 * 1024, total_bytes: 8 * 1024 * 1024, depth: 32, time }
    }
}

/// Connects to `server` and runs `talk` with the stream ldap3 is to use; relays through the gate
/// meanwhile. An error of `talk` is given the gate's reason when the gate cut the server off.
pub(crate) fn converse<T>(
    server: SocketAddr,
    limits: Limits,
    talk: impl FnOnce(UnixStream) -> Result<T, String>,
) -> Result<T, String> {
    let tcp = TcpStream::connect_timeout(&server, limits.time).map_err(|e| format!("{server}: {e}"))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let closed = || -> io::Result<(UnixStream, TcpStream)> { Ok((ours.try_clone()?, tcp.try_clone()?)) };
    let (ours_down, tcp_down) = closed().map_err(|e| e.to_string())?;
    let (ours_up, tcp_up) = closed().map_err(|e| e.to_string())?;
    let refusal = Mutex::new(None::<String>);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = relay_requests(ours_up, Deadlined::new(tcp_up, limits.time));
        });
        scope.spawn(|| {
            if let Err(why) = relay_answers(Deadlined::new(tcp_down, limits.time), &ours_down, limits) {
                if let Ok(mut r) = refusal.lock() {
                    *r = Some(why);
                }
            }
            // Whatever ended the answers ends the conversation for ldap3 too.
            let _ = ours_down.shutdown(Shutdown::Both);
        });
        let outcome = talk(theirs);
        let _ = ours.shutdown(Shutdown::Both);
        let _ = tcp.shutdown(Shutdown::Both);
        outcome
    })
    .map_err(|e| match refusal.lock().ok().and_then(|mut r| r.take()) {
        Some(why) => format!("{server}: {why}"),
        None => e,
    })
}

/// ldap3's requests, to the server as they are.
fn relay_requests(mut from: UnixStream, mut to: Deadlined<TcpStream>) -> io::Result<()> {
    io::copy(&mut from, &mut to)?;
    to.get_ref().shutdown(Shutdown::Write)
}

/// The server's answers, one whole message at a time, each checked before ldap3 sees it.
pub(crate) fn relay_answers(mut from: impl Read, mut to: impl Write, limits: Limits) -> Result<(), String> {
    let io = |e: io::Error| {
        if e.kind() == io::ErrorKind::TimedOut {
            format!("the LDAP server took longer than {:?}", limits.time)
        } else {
            e.to_string()
        }
    };
    let mut total = 0usize;
    loop {
        let mut tag = [0u8; 1];
        match from.read(&mut tag).map_err(io)? {
            0 => return Ok(()),
            _ if tag[0] != crate::der::SEQUENCE => {
                return Err("the LDAP server sent something that is not an LDAP message".into())
            }
            _ => {}
        }
        let mut first = [0u8; 1];
        from.read_exact(&mut first).map_err(io)?;
        let mut header = vec![tag[0], first[0]];
        let length = match first[0] {
            short @ 0..=0x7f => usize::from(short),
            0x80 => return Err("the LDAP server sent an indefinite length, which LDAP does not allow".into()),
            long => {
                let count = usize::from(long & 0x7f);
                if count > 4 {
                    return Err("the LDAP server announced a message too large to be one".into());
                }
                let mut bytes = vec![0u8; count];
                from.read_exact(&mut bytes).map_err(io)?;
                header.extend_from_slice(&bytes);
                bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
            }
        };
        if length > limits.message_bytes {
            return Err(format!(
                "the LDAP server sent a message of {length} bytes (at most {} taken)",
                limits.message_bytes
            ));
        }
        total += header.len() + length;
        if total > limits.total_bytes {
            return Err(format!("the LDAP server sent more than {} bytes", limits.total_bytes));
        }
        let mut message = header;
        let start = message.len();
        message.resize(start + length, 0);
        from.read_exact(&mut message[start..]).map_err(io)?;
        crate::der::check_nesting(&message[start..], limits.depth)
            .map_err(|e| format!("the LDAP server sent a malformed message ({e})"))?;
        to.write_all(&message).map_err(|e| e.to_string())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    /// A server that, once a client connects, sends `answer` in pieces `pause` apart.
    fn server(answer: Vec<Vec<u8>>, pause: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let Ok((mut peer, _)) = listener.accept() else { return };
            for piece in answer {
                if peer.write_all(&piece).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        });
        addr
    }

    /// What the client end received (everything the gate let through, until it closed), and
    /// why the conversation ended: "closed" when the gate had nothing to say against the server.
    fn received(server: SocketAddr, limits: Limits) -> (Vec<u8>, String) {
        let got = Mutex::new(Vec::new());
        let ended = converse(server, limits, |mut stream| -> Result<(), String> {
            let mut all = Vec::new();
            let _ = stream.read_to_end(&mut all);
            *got.lock().unwrap() = all;
            Err("closed".into())
        });
        (got.into_inner().unwrap(), ended.unwrap_err())
    }

    fn limits() -> Limits {
        Limits::within(Duration::from_secs(5))
    }

    #[test]
    fn whole_shallow_messages_pass_and_hostile_ones_are_cut_off_with_the_reason() {
        use crate::der::{encode, INTEGER, SEQUENCE};
        let message = encode(SEQUENCE, &[encode(INTEGER, &[1]), encode(0x61, &encode(0x0a, &[0]))].concat());
        let two = [message.clone(), message.clone()].concat();
        // Split anywhere: the gate waits for each whole message.
        let pieces = vec![two[..3].to_vec(), two[3..].to_vec()];
        assert_eq!(received(server(pieces, Duration::from_millis(20)), limits()), (two, "closed".to_string()));

        let mut deep = encode(INTEGER, &[1]);
        for _ in 0..10_000 {
            deep = encode(SEQUENCE, &deep);
        }
        let (got, why) = received(server(vec![message.clone(), deep], Duration::ZERO), limits());
        assert_eq!(got, message, "the message before it passed");
        assert!(why.contains("malformed") && why.contains("nested too deeply"), "{why}");

        let huge = [vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff], vec![0; 1000]].concat();
        let (got, why) = received(server(vec![huge], Duration::ZERO), limits());
        assert!(got.is_empty() && why.contains("at most 1048576 taken"), "{why}");

        let big = encode(SEQUENCE, &encode(0x04, &vec![0u8; 1000 * 1000]));
        let (got, why) = received(server(std::iter::repeat_n(big, 9).collect(), Duration::ZERO), limits());
        assert!(got.len() <= 8 * 1024 * 1024 && why.contains("more than 8388608 bytes"), "{why}");

        let (_, why) = received(server(vec![vec![0x30, 0x80, 0, 0]], Duration::ZERO), limits());
        assert!(why.contains("indefinite"), "{why}");
    }

    #[test]
    fn a_server_trickling_its_answer_is_cut_off_at_the_deadline() {
        let trickle: Vec<Vec<u8>> = [vec![vec![0x30, 0x7f]], vec![vec![0x04]; 127]].concat();
        let started = Instant::now();
        let (_, why) =
            received(server(trickle, Duration::from_millis(100)), Limits::within(Duration::from_millis(600)));
        assert!(why.contains("took longer"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }
}
