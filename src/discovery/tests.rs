//! The order of the steps and the stop rule, with fakes behind the adapter traits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use super::*;
use crate::dns::{CertRecord, Lookup, SrvRecord};

#[derive(Default)]
struct FakeDns {
    certs: HashMap<String, Vec<CertRecord>>,
    srv: HashMap<String, Vec<SrvRecord>>,
    fail: Option<String>,
    asked: Mutex<Vec<String>>,
}

impl Resolver for FakeDns {
    fn cert(&self, name: &str) -> Result<Lookup<CertRecord>, DnsError> {
        self.asked.lock().unwrap().push(format!("CERT {name}"));
        if self.fail.as_deref() == Some(name) {
            return Err(DnsError::NoServers);
        }
        Ok(Lookup { records: self.certs.get(name).cloned().unwrap_or_default(), ttl: 60 })
    }
    fn srv(&self, name: &str) -> Result<Lookup<SrvRecord>, DnsError> {
        self.asked.lock().unwrap().push(format!("SRV {name}"));
        Ok(Lookup { records: self.srv.get(name).cloned().unwrap_or_default(), ttl: 60 })
    }
    fn addresses(&self, _: &str) -> Result<Lookup<IpAddr>, DnsError> {
        Ok(Lookup { records: vec!["127.0.0.1".parse().unwrap()], ttl: 60 })
    }
    fn mx(&self, _: &str) -> Result<Lookup<(u16, String)>, DnsError> {
        Ok(Lookup { records: vec![], ttl: 60 })
    }
}

/// host -> mail -> certificates; a host missing from the map is unreachable.
#[derive(Default)]
struct FakeLdap(HashMap<String, HashMap<String, Vec<Vec<u8>>>>);

impl LdapDirectory for FakeLdap {
    fn certificates(&self, host: &str, _: u16, mail: &str) -> Result<Vec<Vec<u8>>, String> {
        let server = self.0.get(host).ok_or_else(|| format!("{host}: connection refused"))?;
        Ok(server.get(mail).cloned().unwrap_or_default())
    }
}

struct FakeFetch(HashMap<String, Vec<u8>>);

impl Fetcher for FakeFetch {
    fn get(&self, url: &str) -> Result<Vec<u8>, crate::fetch::FetchError> {
        self.0.get(url).cloned().ok_or_else(|| "not found (HTTP 404)".to_string().into())
    }
}

fn pkix(data: &[u8]) -> CertRecord {
    CertRecord { cert_type: CertType::Pkix, data: data.to_vec() }
}

fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
    SrvRecord { priority, weight, port: 389, target: target.into() }
}

fn run(dns: &FakeDns, ldap: &FakeLdap) -> Result<Discovered, DiscoveryError> {
    let fetch = FakeFetch(HashMap::from([("http://x.example/c.cer".to_string(), b"FETCHED".to_vec())]));
    let address = DirectAddress::parse("bob@b.example.org").unwrap();
    discover(&address, &Sources { dns, ldap, fetch: &fetch })
}

fn data(d: &Discovered) -> Vec<&[u8]> {
    d.found.iter().map(|f| f.data.as_slice()).collect()
}

#[test]
fn the_address_record_wins_and_ends_the_search() {
    let mut dns = FakeDns::default();
    dns.certs.insert("bob.b.example.org".into(), vec![pkix(b"A")]);
    dns.certs.insert("b.example.org".into(), vec![pkix(b"D")]);
    let d = run(&dns, &FakeLdap::default()).unwrap();
    assert_eq!(d.step, Some(Step::DnsAddress));
    assert_eq!(data(&d), [b"A"]);
    assert_eq!(*dns.asked.lock().unwrap(), ["CERT bob.b.example.org"]);
}

#[test]
fn the_domain_record_is_second_and_ipkix_urls_are_fetched() {
    let mut dns = FakeDns::default();
    let ipkix = CertRecord { cert_type: CertType::Ipkix, data: b"http://x.example/c.cer".to_vec() };
    let other = CertRecord { cert_type: CertType::Other(3), data: b"PGP".to_vec() };
    dns.certs.insert("b.example.org".into(), vec![ipkix, other]);
    let d = run(&dns, &FakeLdap::default()).unwrap();
    assert_eq!(d.step, Some(Step::DnsDomain));
    assert_eq!(data(&d), [b"FETCHED"]);
    assert!(d.notes.iter().any(|n| n.contains("type 3")), "{:?}", d.notes);
}

#[test]
fn ldap_servers_are_walked_in_srv_order_past_unreachable_ones() {
    let mut dns = FakeDns::default();
    dns.srv.insert("_ldap._tcp.b.example.org".into(), vec![srv(10, 1, "late"), srv(0, 0, "down"), srv(5, 9, "up")]);
    let mut ldap = FakeLdap::default();
    ldap.0.insert("up".into(), HashMap::from([("bob@b.example.org".to_string(), vec![b"L".to_vec()])]));
    ldap.0.insert("late".into(), HashMap::from([("bob@b.example.org".to_string(), vec![b"WRONG".to_vec()])]));
    let d = run(&dns, &ldap).unwrap();
    assert_eq!(d.step, Some(Step::LdapAddress));
    assert_eq!(data(&d), [b"L"]);
    assert!(d.notes.iter().any(|n| n.contains("down")));
}

#[test]
fn ldap_domain_entry_is_the_last_step() {
    let mut dns = FakeDns::default();
    dns.srv.insert("_ldap._tcp.b.example.org".into(), vec![srv(0, 0, "up")]);
    let mut ldap = FakeLdap::default();
    ldap.0.insert("up".into(), HashMap::from([("b.example.org".to_string(), vec![b"LD".to_vec()])]));
    let d = run(&dns, &ldap).unwrap();
    assert_eq!(d.step, Some(Step::LdapDomain));
    assert_eq!(data(&d), [b"LD"]);
}

#[test]
fn nothing_published_is_no_step_and_unreachable_ldap_is_an_error() {
    let d = run(&FakeDns::default(), &FakeLdap::default()).unwrap();
    assert_eq!(d.step, None);
    assert!(d.found.is_empty());

    let mut dns = FakeDns::default();
    dns.srv.insert("_ldap._tcp.b.example.org".into(), vec![srv(0, 0, "down")]);
    assert!(matches!(run(&dns, &FakeLdap::default()), Err(DiscoveryError::LdapUnreachable { .. })));
}

#[test]
fn a_dns_failure_stops_the_walk() {
    let mut dns = FakeDns { fail: Some("bob.b.example.org".into()), ..FakeDns::default() };
    dns.certs.insert("b.example.org".into(), vec![pkix(b"D")]);
    assert!(matches!(run(&dns, &FakeLdap::default()), Err(DiscoveryError::Dns(_))));
    assert_eq!(dns.asked.lock().unwrap().len(), 1, "the domain record must not answer for the address");
}
