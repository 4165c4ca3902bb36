//! Publishes what peers need to find this node (Certificate Discovery for Direct, RFC 5321 §5):
//! CERT records for every hosted address (at `user.domain`, address-bound certificates) and
//! domain (domain-bound), the MX of each hosted domain and the A record of the MX host. The node
//! is authoritative for its hosted domains only and refuses everything else. UDP answers larger
//! than the client can take are truncated, and the client retries over TCP.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};

use crate::admission::Admission;
use crate::deadline::Deadlined;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::cert::{Algorithm, CertType, CERT};
use hickory_proto::rr::rdata::{A, MX, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::address::{DirectAddress, Domain, Owner};
use crate::clock::Clock;
use crate::store::Store;

/// What the publisher answers with besides the store's contents.
#[derive(Debug, Clone)]
pub(crate) struct Publishing {
    /// The MX host of every hosted domain.
    pub mx_host: String,
    /// The IPv4 address published for the MX host.
    pub mx_address: Ipv4Addr,
    pub ttl: u32,
}

/// Answers one query from the store's current contents.
pub(crate) struct Answerer<'a> {
    pub store: &'a dyn Store,
    pub publishing: &'a Publishing,
    pub now: i64,
}

/// Classic DNS over UDP without EDNS takes 512 bytes.
const UDP_DEFAULT: usize = 512;

impl Answerer<'_> {
    /// The reply to `query` (wire format), truncated over UDP to what the client can take.
    pub(crate) fn answer(&self, query: &[u8], over_udp: bool) -> Option<Vec<u8>> {
        let request = Message::from_vec(query).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let id = request.metadata.id;
        let Some(question) = request.queries.first().cloned() else {
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr).to_vec().ok();
        };
        let mut reply = Message::response(id, request.metadata.op_code);
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        reply.add_query(question.clone());
        if request.metadata.op_code != OpCode::Query || request.queries.len() != 1 {
            reply.metadata.response_code = ResponseCode::NotImp;
            return reply.to_vec().ok();
        }
        let name = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
        match self.zone_of(&name) {
            Ok(Some(zone)) => {
                reply.metadata.authoritative = true;
                match self.records(&name, &zone, question.query_type()) {
                    Ok((true, records)) if records.is_empty() => reply.add_authority(self.soa(&zone)),
                    Ok((true, records)) => reply.add_answers(records),
                    Ok((false, _)) => {
                        reply.metadata.response_code = ResponseCode::NXDomain;
                        reply.add_authority(self.soa(&zone))
                    }
                    Err(_) => {
                        reply.metadata.response_code = ResponseCode::ServFail;
                        &mut reply
                    }
                };
            }
            Ok(None) => reply.metadata.response_code = ResponseCode::Refused,
            Err(_) => reply.metadata.response_code = ResponseCode::ServFail,
        }
        let limit = over_udp
            .then(|| request.edns.as_ref().map_or(UDP_DEFAULT, |e| usize::from(e.max_payload()).max(UDP_DEFAULT)));
        if let Some(e) = &request.edns {
            let mut edns = hickory_proto::op::Edns::new();
            edns.set_max_payload(e.max_payload().max(UDP_DEFAULT as u16));
            reply.set_edns(edns);
        }
        let bytes = reply.to_vec().ok()?;
        match limit {
            Some(limit) if bytes.len() > limit => {
                reply.answers.clear();
                reply.authorities.clear();
                reply.metadata.truncation = true;
                reply.to_vec().ok()
            }
            _ => Some(bytes),
        }
    }

    /// The hosted domain `name` is in (the longest one), if any: the name and each of its
    /// parents in turn, looked up one by one (a name has at most 127 labels; the node may host
    /// thousands of domains).
    fn zone_of(&self, name: &str) -> Result<Option<Domain>, String> {
        let mut candidate = name;
        loop {
            if let Ok(domain) = Domain::parse(candidate) {
                if self.store.has_domain(&domain).map_err(|e| e.to_string())? {
                    return Ok(Some(domain));
                }
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => return Ok(None),
            }
        }
    }

    /// (does the name exist, its records of `rtype`).
    fn records(&self, name: &str, zone: &Domain, rtype: RecordType) -> Result<(bool, Vec<Record>), String> {
        let owner = Name::from_ascii(format!("{name}.")).map_err(|e| e.to_string())?;
        let ttl = self.publishing.ttl;
        let mut records = Vec::new();
        let mut exists = false;
        if name == zone.as_str() {
            exists = true;
            if matches!(rtype, RecordType::MX | RecordType::ANY) {
                let exchange = Name::from_ascii(format!("{}.", self.publishing.mx_host)).map_err(|e| e.to_string())?;
                records.push(Record::from_rdata(owner.clone(), ttl, RData::MX(MX::new(10, exchange))));
            }
            if matches!(rtype, RecordType::CERT | RecordType::ANY) {
                records.extend(self.certs(&Owner::Domain(zone.clone()), &owner)?);
            }
        } else if let Some(local) = name.strip_suffix(&format!(".{}", zone.as_str())) {
            if let Ok(address) = DirectAddress::parse(&format!("{local}@{zone}")) {
                if self.store.has_address(&address).map_err(|e| e.to_string())? {
                    exists = true;
                    if matches!(rtype, RecordType::CERT | RecordType::ANY) {
                        records.extend(self.certs(&Owner::Address(address), &owner)?);
                    }
                }
            }
        }
        if name == self.publishing.mx_host.to_ascii_lowercase() {
            exists = true;
            if matches!(rtype, RecordType::A | RecordType::ANY) {
                records.push(Record::from_rdata(owner, ttl, RData::A(A(self.publishing.mx_address))));
            }
        }
        Ok((exists, records))
    }

    /// CERT PKIX records of the owner's certificates fit to publish (valid now, not revoked).
    fn certs(&self, owner: &Owner, name: &Name) -> Result<Vec<Record>, String> {
        let certs = self.store.certificates(Some(owner)).map_err(|e| e.to_string())?;
        Ok(certs
            .into_iter()
            .filter(|c| c.usable_at(self.now))
            .map(|c| {
                let cert = CERT::new(CertType::PKIX, 0, Algorithm::from(0u8), c.der);
                Record::from_rdata(name.clone(), self.publishing.ttl, RData::CERT(cert))
            })
            .collect())
    }

    fn soa(&self, zone: &Domain) -> Record {
        let origin = Name::from_ascii(format!("{zone}.")).unwrap_or_default();
        let mname = Name::from_ascii(format!("{}.", self.publishing.mx_host)).unwrap_or_default();
        let rname = Name::from_ascii(format!("hostmaster.{zone}.")).unwrap_or_default();
        let soa = SOA::new(mname, rname, 1, 3600, 600, 86_400, 60);
        Record::from_rdata(origin, 60, RData::SOA(soa))
    }
}

/// UDP questions are answered by this many threads, each reading from the one socket with a
/// store of its own: a slow question holds one of them, not the rest.
const UDP_WORKERS: usize = 4;

/// Serves `listen` over UDP and TCP from the store at `db`, each on its own threads.
pub(crate) fn start(
    listen: SocketAddr,
    db: PathBuf,
    publishing: Publishing,
    clock: Arc<dyn Clock>,
    admission: Arc<Admission>,
) -> std::io::Result<SocketAddr> {
    let udp = UdpSocket::bind(listen)?;
    let bound = udp.local_addr()?;
    let tcp = TcpListener::bind(bound)?;
    let publishing = Arc::new(publishing);
    let (db_udp, publishing_udp, clock_udp) = (db.clone(), publishing.clone(), clock.clone());
    spawn_udp_workers(&udp, UDP_WORKERS, move || {
        let store = crate::store::open(&db_udp, "dns").ok()?;
        let (publishing, clock) = (publishing_udp.clone(), clock_udp.clone());
        Some(Box::new(move |query: &[u8]| {
            Answerer { store: &*store, publishing: &publishing, now: clock.unix_now() }.answer(query, true)
        }))
    })?;
    std::thread::Builder::new().name("dns-tcp".into()).spawn(move || {
        for stream in tcp.incoming().flatten() {
            let Some(ticket) = stream.peer_addr().ok().and_then(|peer| admission.admit(peer.ip()).ok()) else {
                continue;
            };
            let (db, publishing, clock) = (db.clone(), publishing.clone(), clock.clone());
            let _ = std::thread::Builder::new().name("dns-tcp-conn".into()).spawn(move || {
                let _ticket = ticket;
                let _ = serve_tcp(stream, &db, &publishing, clock.as_ref());
            });
        }
    })?;
    Ok(bound)
}

/// What a UDP worker answers with: made in its own thread (a store is not shared between threads).
type UdpAnswer = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>>>;

/// Starts `workers` threads answering the questions that arrive at `udp`, each with the answer
/// `make` gives it (a worker whose `make` fails does not start).
fn spawn_udp_workers(
    udp: &UdpSocket,
    workers: usize,
    make: impl Fn() -> Option<UdpAnswer> + Send + Sync + 'static,
) -> std::io::Result<()> {
    let make = Arc::new(make);
    for worker in 0..workers {
        let (udp, make) = (udp.try_clone()?, make.clone());
        std::thread::Builder::new().name(format!("dns-udp-{worker}")).spawn(move || {
            let Some(mut answer) = make() else { return };
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf) {
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = udp.send_to(&reply, peer);
                }
            }
        })?;
    }
    Ok(())
}

/// RFC 7766: two-byte length-prefixed messages, several per connection; each query must arrive
/// whole, and its answer be taken, within 10 seconds (however the client trickles).
fn serve_tcp(
    stream: TcpStream,
    db: &std::path::Path,
    publishing: &Publishing,
    clock: &dyn Clock,
) -> std::io::Result<()> {
    const PER_QUERY: Duration = Duration::from_secs(10);
    let mut stream = Deadlined::new(stream, PER_QUERY);
    let store = crate::store::open(db, "dns").map_err(std::io::Error::other)?;
    loop {
        stream.set_deadline(std::time::Instant::now() + PER_QUERY);
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return Ok(());
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut query)?;
        let answerer = Answerer { store: &*store, publishing, now: clock.unix_now() };
        let Some(reply) = answerer.answer(&query, false) else { return Ok(()) };
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        stream.write_all(&framed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Mutex;

    #[test]
    fn a_slow_question_over_udp_does_not_hold_up_the_others() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let at = server.local_addr().unwrap();
        // "slow" is answered only once the test says so; anything else at once.
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        spawn_udp_workers(&server, UDP_WORKERS, move || {
            let released = released.clone();
            Some(Box::new(move |query: &[u8]| {
                if query == b"slow" {
                    let _ = released.lock().unwrap().recv();
                }
                Some(query.to_vec())
            }))
        })
        .unwrap();
        let ask = |query: &[u8]| {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            client.send_to(query, at).unwrap();
            client
        };
        let read = |client: &UdpSocket| {
            let mut buf = [0u8; 16];
            client.recv(&mut buf).map(|n| buf[..n].to_vec())
        };
        let slow = ask(b"slow");
        std::thread::sleep(Duration::from_millis(100));
        let fast = ask(b"fast");
        assert_eq!(read(&fast).expect("answered while the slow question waits"), b"fast");
        release.send(()).unwrap();
        assert_eq!(read(&slow).unwrap(), b"slow");
    }

    #[test]
    fn the_zone_of_a_name_is_the_longest_hosted_domain_above_it() {
        let store = crate::store::in_memory("test").unwrap();
        for (domain, practice) in [("a.test", "A"), ("direct.a.test", "A2")] {
            store.add_domain(&Domain::parse(domain).unwrap(), practice).unwrap();
        }
        let publishing = Publishing { mx_host: "mx.a.test".into(), mx_address: Ipv4Addr::LOCALHOST, ttl: 60 };
        let answerer = Answerer { store: &*store, publishing: &publishing, now: 0 };
        let zone = |name: &str| answerer.zone_of(name).unwrap().map(|d| d.to_string());
        assert_eq!(zone("dr.smith.direct.a.test").as_deref(), Some("direct.a.test"));
        assert_eq!(zone("direct.a.test").as_deref(), Some("direct.a.test"));
        assert_eq!(zone("dr.smith.a.test").as_deref(), Some("a.test"));
        assert_eq!(zone("a.test").as_deref(), Some("a.test"));
        assert_eq!(zone("b.test"), None);
        assert_eq!(zone("xa.test"), None);
        assert_eq!(zone("test"), None);
    }
}
