//! Discovery latency against a local knot and HTTP server (CRL): a cold lookup (empty caches: DNS
//! over the wire, certificate parsed, path built, CRL fetched and verified) and a cached one (what
//! the daemon answers for a recipient it has looked up within the TTL). Target (issue 3): cached
//! p99 under 1 ms.
//!
//!   cargo bench --bench discovery

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use hisp::address::DirectAddress;
use hisp::discovery::assess::{self, TrustContext};
use hisp::discovery::cache::CachingResolver;
use hisp::discovery::ldap::Ldap3Directory;
use hisp::discovery::{self, Sources};
use hisp::dns::{DnsClient, DnsConfig, Resolver};
use hisp::fetch::HttpFetcher;
use hisp::trust::revocation::FailMode;

fn lookup(resolver: &dyn Resolver, address: &DirectAddress, anchors: &[openssl::x509::X509], now: i64) -> usize {
    let fetch = HttpFetcher::new(resolver);
    let ldap = Ldap3Directory { resolver, timeout: Duration::from_secs(2) };
    let found = discovery::discover(address, &Sources { dns: resolver, ldap: &ldap, fetch: &fetch }).unwrap();
    let trust = TrustContext { anchors, fetch: &fetch, now, revocation: FailMode::Hard };
    let step = found.step.unwrap();
    let usable = found.found.iter().map(|f| assess::assess(f, step, address, &trust)).filter(|a| a.usable).count();
    assert_eq!(usable, 1);
    usable
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name:<8} n={:<5} p50 {:>9.1} µs   p99 {:>9.1} µs   max {:>9.1} µs",
        times.len(),
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().unwrap().as_secs_f64() * 1e6
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (cold_runs, cached_runs) = if full { (50, 5000) } else { (2, 20) };
    let ca = ca("Bench CA");
    let web = servers::http();
    let url = |f: &str| format!("http://crl.pki.test:{}/{f}", web.port);
    let bob = issue_at(&ca, "bob@bench.test", 2048, *NOW - DAY, *NOW + 365 * DAY, &url("ca.crl"), &url("ca.cer"));
    std::fs::write(web.path("ca.crl"), crl(&ca, &[], *NOW - DAY, *NOW + 7 * DAY)).unwrap();
    let der = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bob.cert.to_der().unwrap());
    let dns = servers::knot(&[
        ("bench.test", format!("bob IN CERT PKIX 0 0 {der}\n")),
        ("pki.test", "crl IN A 127.0.0.1\n".to_string()),
    ]);
    let config =
        DnsConfig { servers: vec![format!("127.0.0.1:{}", dns.port).parse().unwrap()], ..DnsConfig::default() };
    let address = DirectAddress::parse("bob@bench.test").unwrap();
    let anchors = [ca.cert.clone()];

    let mut cold = Vec::new();
    for _ in 0..cold_runs {
        hisp::pki::cert_cache::clear();
        hisp::trust::chain::clear_cache();
        hisp::trust::revocation::clear_cache();
        let resolver = CachingResolver::new(DnsClient::new(config.clone()));
        let started = Instant::now();
        lookup(&resolver, &address, &anchors, *NOW);
        cold.push(started.elapsed());
    }

    let resolver = CachingResolver::new(DnsClient::new(config.clone()));
    lookup(&resolver, &address, &anchors, *NOW);
    let mut cached = Vec::new();
    for _ in 0..cached_runs {
        let started = Instant::now();
        lookup(&resolver, &address, &anchors, *NOW);
        cached.push(started.elapsed());
    }
    println!("discover bob@bench.test against knot on loopback (CERT over TCP fallback as needed, CRL over HTTP):");
    report("cold", cold);
    report("cached", cached);
}
