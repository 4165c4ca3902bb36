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
use crate::store::{SqliteStore, Store};

/// What the publisher answers with besides the store's contents.
#[derive(Debug, Clone)]
pub struct Publishing {
    /// The MX host of every hosted domain.
    pub mx_host: String,
    /// The IPv4 address published for the MX host.
    pub mx_address: Ipv4Addr,
    pub ttl: u32,
}

/// Answers one query from the store's current contents.
pub struct Answerer<'a> {
    pub store: &'a dyn Store,
    pub publishing: &'a Publishing,
    pub now: i64,
}

/// Classic DNS over UDP without EDNS takes 512 bytes.
const UDP_DEFAULT: usize = 512;

impl Answerer<'_> {
    /// The reply to `query` (wire format), truncated over UDP to what the client can take.
    pub fn answer(&self, query: &[u8], over_udp: bool) -> Option<Vec<u8>> {
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

    /// The hosted domain `name` is in (the longest one), if any.
    fn zone_of(&self, name: &str) -> Result<Option<Domain>, String> {
        let domains = self.store.domains().map_err(|e| e.to_string())?;
        Ok(domains
            .into_iter()
            .map(|d| d.domain)
            .filter(|d| name == d.as_str() || name.ends_with(&format!(".{}", d.as_str())))
            .max_by_key(|d| d.as_str().len()))
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

/// Serves `listen` over UDP and TCP from the store at `db`, each on its own threads.
pub fn start(
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
    std::thread::Builder::new().name("dns-udp".into()).spawn(move || {
        let Ok(store) = SqliteStore::open(&db_udp, "dns") else { return };
        let mut buf = [0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf) {
            let answerer = Answerer { store: &store, publishing: &publishing_udp, now: clock_udp.unix_now() };
            if let Some(reply) = answerer.answer(&buf[..n], true) {
                let _ = udp.send_to(&reply, peer);
            }
        }
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
    let store = SqliteStore::open(db, "dns").map_err(std::io::Error::other)?;
    loop {
        stream.set_deadline(std::time::Instant::now() + PER_QUERY);
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return Ok(());
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut query)?;
        let answerer = Answerer { store: &store, publishing, now: clock.unix_now() };
        let Some(reply) = answerer.answer(&query, false) else { return Ok(()) };
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        stream.write_all(&framed)?;
    }
}
