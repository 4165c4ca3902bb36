//! A stub resolver over UDP and TCP to the configured servers (RFC 1035 §4.2, RFC 7766). Each
//! query has a bounded timeout per attempt, so an unreachable server cannot hang a lookup; a
//! truncated UDP answer is asked again over TCP; a server that fails or cannot be reached is
//! skipped for the next one.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::cert::CertType as HickoryCertType;
use hickory_proto::rr::{Name, RData, RecordType};

use super::records::{CertRecord, CertType, Lookup, SrvRecord};
use super::{DnsError, Resolver};
use crate::deadline::Deadlined;

/// UDP payload size we advertise (EDNS0): the 2020 DNS flag day value, which avoids IP
/// fragmentation; larger answers come truncated and are asked again over TCP.
const UDP_PAYLOAD: u16 = 1232;
/// Negative answers without an SOA are cached this long.
const DEFAULT_NEGATIVE_TTL: u32 = 60;

#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub servers: Vec<SocketAddr>,
    /// Per attempt, per server.
    pub timeout: Duration,
    pub attempts: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig { servers: Vec::new(), timeout: Duration::from_secs(2), attempts: 2 }
    }
}

pub struct DnsClient {
    config: DnsConfig,
}

impl DnsClient {
    pub fn new(config: DnsConfig) -> DnsClient {
        DnsClient { config }
    }

    /// The servers from /etc/resolv.conf, for a node with no `dns.servers` configured.
    pub fn system_servers() -> Vec<SocketAddr> {
        std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }

    /// Asks each server in turn until one answers NOERROR or NXDOMAIN.
    fn ask(&self, name: &str, rtype: RecordType) -> Result<Message, DnsError> {
        if self.config.servers.is_empty() {
            return Err(DnsError::NoServers);
        }
        let fqdn = if name.ends_with('.') { name.to_string() } else { format!("{name}.") };
        let qname =
            Name::from_ascii(&fqdn).map_err(|e| DnsError::BadName { name: name.to_string(), reason: e.to_string() })?;
        let mut last = String::new();
        let mut failure = None;
        for &server in &self.config.servers {
            for _ in 0..self.config.attempts.max(1) {
                let mut query = Message::query();
                query.metadata.recursion_desired = true;
                query.add_query(Query::query(qname.clone(), rtype));
                let mut edns = Edns::new();
                edns.set_max_payload(UDP_PAYLOAD);
                query.set_edns(edns);
                let answer = self.exchange_udp(server, &query).and_then(|a| {
                    if a.metadata.truncation {
                        self.exchange_tcp(server, &query)
                    } else {
                        Ok(a)
                    }
                });
                match answer {
                    Ok(a) => match a.metadata.response_code {
                        ResponseCode::NoError | ResponseCode::NXDomain => return Ok(a),
                        code => {
                            failure = Some(DnsError::ServerFailure {
                                name: name.to_string(),
                                rtype: rtype.to_string(),
                                server,
                                code: code.to_string(),
                            });
                            break; // this server has answered; try the next one
                        }
                    },
                    Err(e) => last = format!("{server}: {e}"),
                }
            }
        }
        Err(failure.unwrap_or_else(|| DnsError::Unreachable {
            name: name.to_string(),
            rtype: rtype.to_string(),
            servers: self.config.servers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            reason: last,
        }))
    }

    fn exchange_udp(&self, server: SocketAddr, query: &Message) -> Result<Message, String> {
        let bytes = query.to_vec().map_err(|e| e.to_string())?;
        let local: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
        let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
        socket.connect(server).map_err(|e| e.to_string())?;
        socket.send(&bytes).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + self.config.timeout;
        let mut buf = vec![0u8; 65_535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timed out".into());
            }
            socket.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            let n = socket.recv(&mut buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".to_string(),
                _ => e.to_string(),
            })?;
            // A datagram that is not the answer to this query (stale, spoofed) is ignored.
            if let Ok(answer) = Message::from_vec(&buf[..n]) {
                if answers(query, &answer) {
                    return Ok(answer);
                }
            }
        }
    }

    fn exchange_tcp(&self, server: SocketAddr, query: &Message) -> Result<Message, String> {
        let bytes = query.to_vec().map_err(|e| e.to_string())?;
        // One deadline for the whole exchange: a server trickling its answer cannot hold the lookup.
        let stream = TcpStream::connect_timeout(&server, self.config.timeout).map_err(|e| e.to_string())?;
        let mut stream = Deadlined::new(stream, self.config.timeout);
        let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).map_err(|e| format!("TCP: {e}"))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).map_err(|e| format!("TCP: {e}"))?;
        let answer = Message::from_vec(&buf).map_err(|e| format!("TCP: bad answer: {e}"))?;
        if answers(query, &answer) {
            Ok(answer)
        } else {
            Err("TCP: the answer does not match the question".into())
        }
    }

    fn lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Lookup<T>, DnsError> {
        if is_special_invalid(name) {
            return Ok(Lookup { records: Vec::new(), ttl: DEFAULT_NEGATIVE_TTL });
        }
        let answer = self.ask(name, rtype)?;
        let records: Vec<T> = answer.answers.iter().filter_map(|r| pick(&r.data)).collect();
        let ttl = if records.is_empty() {
            negative_ttl(&answer)
        } else {
            answer.answers.iter().filter(|r| r.record_type() == rtype).map(|r| r.ttl).min().unwrap_or(0)
        };
        Ok(Lookup { records, ttl })
    }
}

/// RFC 6761 §6.4: names under `invalid.` never exist, and resolvers may say so without asking, so
/// placeholder URLs (the development CA's default) never leak queries to a real server.
fn is_special_invalid(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "invalid" || name.ends_with(".invalid")
}

/// Is `answer` the response to `query`: same id, a response, the same question.
fn answers(query: &Message, answer: &Message) -> bool {
    answer.metadata.id == query.metadata.id
        && answer.metadata.message_type == MessageType::Response
        && answer.queries.len() == 1
        && query.queries.first().is_some_and(|q| {
            let a = &answer.queries[0];
            a.query_type() == q.query_type() && a.name().eq_case(q.name())
        })
}

/// RFC 2308 §5: the SOA's TTL, capped by its minimum field.
fn negative_ttl(answer: &Message) -> u32 {
    answer
        .authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
        .unwrap_or(DEFAULT_NEGATIVE_TTL)
}

fn host_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn cert_record(data: &RData) -> Option<CertRecord> {
    match data {
        RData::CERT(cert) => Some(CertRecord {
            cert_type: match cert.cert_type {
                HickoryCertType::PKIX => CertType::Pkix,
                HickoryCertType::IPKIX => CertType::Ipkix,
                other => CertType::Other(u16::from(other)),
            },
            data: cert.cert_data.clone(),
        }),
        _ => None,
    }
}

fn srv_record(data: &RData) -> Option<SrvRecord> {
    match data {
        RData::SRV(srv) => Some(SrvRecord {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: host_name(&srv.target),
        }),
        _ => None,
    }
}

fn mx_record(data: &RData) -> Option<(u16, String)> {
    match data {
        RData::MX(mx) => Some((mx.preference, host_name(&mx.exchange))),
        _ => None,
    }
}

fn address_record(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// Everything the resolver takes from an answer, read from its wire form (for the fuzz target).
#[cfg(feature = "fuzzing")]
pub(crate) fn read_answer(wire: &[u8]) {
    if let Ok(answer) = Message::from_vec(wire) {
        for record in &answer.answers {
            let _ = (cert_record(&record.data), srv_record(&record.data), mx_record(&record.data));
            let _ = address_record(&record.data);
        }
        let _ = negative_ttl(&answer);
    }
}

impl Resolver for DnsClient {
    fn cert(&self, name: &str) -> Result<Lookup<CertRecord>, DnsError> {
        self.lookup(name, RecordType::CERT, cert_record)
    }

    fn srv(&self, name: &str) -> Result<Lookup<SrvRecord>, DnsError> {
        self.lookup(name, RecordType::SRV, srv_record)
    }

    fn addresses(&self, host: &str) -> Result<Lookup<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Lookup { records: vec![ip], ttl: u32::MAX });
        }
        let v4 = self.lookup(host, RecordType::A, |d| address_record(d).filter(IpAddr::is_ipv4))?;
        let v6 = self.lookup(host, RecordType::AAAA, |d| address_record(d).filter(IpAddr::is_ipv6));
        let mut records = v4.records;
        let mut ttl = v4.ttl;
        if let Ok(v6) = v6 {
            records.extend(v6.records);
            ttl = ttl.min(v6.ttl);
        }
        Ok(Lookup { records, ttl })
    }

    fn mx(&self, domain: &str) -> Result<Lookup<(u16, String)>, DnsError> {
        let mut found = self.lookup(domain, RecordType::MX, mx_record)?;
        found.records.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use crate::dns::Resolver;

    #[test]
    fn invalid_names_are_answered_without_asking() {
        // No server configured: any real query would fail with NoServers.
        let client = super::DnsClient::new(super::DnsConfig {
            servers: Vec::new(),
            timeout: std::time::Duration::from_millis(10),
            attempts: 1,
        });
        assert!(client.addresses("ca.hisp.INVALID.").unwrap().records.is_empty());
        assert!(client.addresses("ca.hisp.example").is_err());
    }

    #[test]
    fn a_server_trickling_its_tcp_answer_is_cut_off_at_the_timeout() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let Ok((mut peer, _)) = listener.accept() else { return };
            let mut query = [0u8; 512];
            let _ = peer.read(&mut query);
            let _ = peer.write_all(&[0x01, 0x00]); // 256 bytes announced, sent one every 100 ms
            for _ in 0..256 {
                if peer.write_all(&[0]).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        let timeout = std::time::Duration::from_millis(500);
        let client = super::DnsClient::new(super::DnsConfig { servers: vec![server], timeout, attempts: 1 });
        let mut query = super::Message::query();
        query.add_query(super::Query::query(super::Name::from_ascii("a.test.").unwrap(), super::RecordType::A));
        let started = std::time::Instant::now();
        assert!(client.exchange_tcp(server, &query).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
