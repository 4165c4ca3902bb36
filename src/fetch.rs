//! HTTP for the objects PKI publishes over plain HTTP (CRLs, AIA caIssuers certificates, IPKIX
//! certificate URLs, trust bundles: RFC 5280 §4.2.1.13, §4.2.2.1 name http URIs) and JSON posted
//! to configured services, through ureq. What a peer's server may make us read is bounded: each
//! request ends within its timeout as a whole (connect, headers and body together), headers are
//! capped, bodies have a size limit, and no redirect is followed (the address was resolved for
//! the host named, through the node's one resolver). No proxy from the environment is used.

#[cfg(any(test, feature = "fuzzing"))]
mod canned;
mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver as UreqResolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

use crate::dns::Resolver;

/// The most header bytes taken from a server.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Fetches the bytes at a URL.
pub trait Fetcher: Send + Sync {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

/// Why a fetch failed: what kind, for the callers that decide by it, and what an operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct FetchError {
    pub kind: Missed,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// The server says there is nothing there (HTTP 404).
    NotFound,
    /// No whole answer within the time allowed.
    TimedOut,
    /// Anything else: no address, refused, a bad answer, too large.
    Failed,
}

impl FetchError {
    fn new(kind: Missed, text: String) -> FetchError {
        FetchError { kind, text }
    }
}

/// Errors said before a request is made (a bad URL, no address) are failures of their own kind.
impl From<String> for FetchError {
    fn from(text: String) -> FetchError {
        FetchError::new(Missed::Failed, text)
    }
}

/// For callers that only report it.
impl From<FetchError> for String {
    fn from(e: FetchError) -> String {
        e.text
    }
}

/// Answers from a table of URL -> bytes: objects the node publishes itself (its development CA's
/// certificate and CRL) and tests of the core logic.
#[derive(Default)]
pub struct StaticFetcher(pub std::collections::HashMap<String, Vec<u8>>);

impl Fetcher for StaticFetcher {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.0.get(url).cloned().ok_or_else(|| FetchError::new(Missed::NotFound, format!("{url}: not found")))
    }
}

pub struct HttpFetcher<'a> {
    pub resolver: &'a dyn Resolver,
    /// For the whole of one request.
    pub timeout: Duration,
    pub max_bytes: u64,
}

impl<'a> HttpFetcher<'a> {
    pub fn new(resolver: &'a dyn Resolver) -> HttpFetcher<'a> {
        HttpFetcher { resolver, timeout: Duration::from_secs(5), max_bytes: 16 * 1024 * 1024 }
    }
}

/// The parts of an `http://host[:port]/path` URL.
fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are fetched"))?;
    split_rest(url, rest, 80)
}

/// Host, port (`default_port` when none is given) and path of what follows a URL's `scheme://`.
fn split_rest(url: &str, rest: &str, default_port: u16) -> Result<(String, u16, String), String> {
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let bad_port = |_| format!("{url}: bad port");
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: [::1] or [::1]:8080.
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| format!("{url}: bad host"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse::<u16>().map_err(bad_port)?),
                None if after.is_empty() => (host, default_port),
                None => return Err(format!("{url}: bad host")),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(bad_port)?),
            None => (authority, default_port),
        },
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("{url}: bad host"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// The addresses ureq connects to: those our resolver gave for the URL's host.
#[derive(Debug)]
struct Resolved(Vec<SocketAddr>);

impl UreqResolver for Resolved {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for addr in self.0.iter().take(16) {
            out.push(*addr);
        }
        Ok(out)
    }
}

/// An agent for one request to `addrs`, done within `timeout`; TLS (for https) through `tls`.
fn agent(addrs: Vec<SocketAddr>, timeout: Duration, tls: Option<&openssl::ssl::SslConnector>) -> Agent {
    let config = config(timeout);
    match tls {
        Some(tls) => Agent::with_parts(config, tls::connector(tls.clone()), Resolved(addrs)),
        None => Agent::with_parts(config, DefaultConnector::new(), Resolved(addrs)),
    }
}

/// Every request ends within `timeout`; headers capped, no redirect, no proxy.
fn config(timeout: Duration) -> ureq::config::Config {
    Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_response_header_size(MAX_HEADER_BYTES)
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .user_agent("hisp")
        .build()
}

/// The socket addresses of `host` (a name, through the resolver, or an IP address) at `port`.
fn addresses(resolver: &dyn Resolver, url: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let ips = resolver.addresses(host).map_err(|e| format!("{url}: {e}"))?.records;
    if ips.is_empty() {
        return Err(format!("{url}: {host} has no address"));
    }
    Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

/// What went wrong, as an operator reads it.
fn describe(url: &str, e: ureq::Error) -> FetchError {
    let failed = |text| FetchError::new(Missed::Failed, text);
    match e {
        ureq::Error::Timeout(_) => FetchError::new(Missed::TimedOut, format!("{url}: timed out")),
        ureq::Error::Io(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
            FetchError::new(Missed::TimedOut, format!("{url}: timed out ({e})"))
        }
        ureq::Error::BodyExceedsLimit(limit) => failed(format!("{url}: larger than {limit} bytes")),
        ureq::Error::LargeResponseHeader(..) => {
            failed(format!("{url}: its headers are larger than {MAX_HEADER_BYTES} bytes"))
        }
        other => failed(format!("{url}: {other}")),
    }
}

impl Fetcher for HttpFetcher<'_> {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let (host, port, _) = split_url(url)?;
        let addrs = addresses(self.resolver, url, &host, port)?;
        let response = agent(addrs, self.timeout, None).get(url).call();
        object(url, response, self.max_bytes)
    }
}

/// The body of a 200 answer, at most `max_bytes`; anything else is an error that says why.
fn object(
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    max_bytes: u64,
) -> Result<Vec<u8>, FetchError> {
    let mut response = response.map_err(|e| describe(url, e))?;
    match response.status().as_u16() {
        200 => response.body_mut().with_config().limit(max_bytes).read_to_vec().map_err(|e| describe(url, e)),
        404 => Err(FetchError::new(Missed::NotFound, format!("{url}: not found (HTTP 404)"))),
        code => Err(FetchError::new(Missed::Failed, format!("{url}: HTTP {code}"))),
    }
}

/// Fetches through the same configuration and answer handling as [`HttpFetcher`], from a server
/// whose whole answer is `answer` (fuzzing ureq's reading of a response and our use of it).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn get_canned(answer: &[u8]) -> Result<Vec<u8>, FetchError> {
    let url = "http://ca.fuzz.test/ca.crl";
    let config = config(Duration::from_secs(5));
    let agent = Agent::with_parts(config, canned::Canned(answer.to_vec()), Resolved(vec![([127, 0, 0, 1], 80).into()]));
    object(url, agent.get(url).call(), 1024 * 1024)
}

/// The agent for a configured service's `http://` or `https://` URL: its host through the node's
/// resolver, TLS 1.2+ with the certificate checked by `tls`, everything within `timeout`.
fn service_agent(
    resolver: &dyn Resolver,
    tls: &openssl::ssl::SslConnector,
    url: &str,
    timeout: Duration,
) -> Result<Agent, String> {
    let (secure, (host, port, _)) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, split_rest(url, rest, 443)?),
        (None, Some(rest)) => (false, split_rest(url, rest, 80)?),
        _ => return Err(format!("{url}: not an http:// or https:// URL")),
    };
    let addrs = addresses(resolver, url, &host, port)?;
    Ok(agent(addrs, timeout, secure.then_some(tls)))
}

/// GETs a JSON document (at most 1 MiB, an answer other than 200 an error) from an `http://` or
/// `https://` URL, all within `timeout`, as `post_json` reaches its server.
pub fn get_json(
    resolver: &dyn Resolver,
    tls: &openssl::ssl::SslConnector,
    url: &str,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let response = service_agent(resolver, tls, url, timeout)?.get(url).header("Accept", "application/json").call();
    object(url, response, 1024 * 1024)
}

/// POSTs a JSON body to an `http://` or `https://` URL (TLS 1.2+, the certificate checked by
/// `tls`), with `bearer` as its Authorization when given, and returns the status code and body
/// (at most 1 MiB) of the answer, all within `timeout`. The host name goes through the node's
/// resolver.
pub fn post_json(
    resolver: &dyn Resolver,
    tls: &openssl::ssl::SslConnector,
    url: &str,
    body: &[u8],
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let mut request = service_agent(resolver, tls, url, timeout)?
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json");
    if let Some(token) = bearer {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send(body).map_err(|e| describe(url, e).text)?;
    let status = response.status().as_u16();
    let answer =
        response.body_mut().with_config().limit(1024 * 1024).read_to_vec().map_err(|e| describe(url, e).text)?;
    Ok((status, answer))
}

/// POSTs a SOAP request (`content_type`: an MTOM package's) to an `https://` XDR endpoint, TLS by
/// `tls` (which holds our client certificate), all within `timeout`: the answer's status,
/// Content-Type and body (at most 4 MiB).
pub fn post_soap(
    resolver: &dyn Resolver,
    tls: &openssl::ssl::SslConnector,
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String, Vec<u8>), String> {
    if !url.starts_with("https://") {
        return Err(format!("{url}: an XDR endpoint is reached over https:// only"));
    }
    let mut response = service_agent(resolver, tls, url, timeout)?
        .post(url)
        .header("Content-Type", content_type)
        .header("Accept", "multipart/related, application/soap+xml")
        .send(body)
        .map_err(|e| describe(url, e).text)?;
    let status = response.status().as_u16();
    let answer_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let answer =
        response.body_mut().with_config().limit(4 * 1024 * 1024).read_to_vec().map_err(|e| describe(url, e).text)?;
    Ok((status, answer_type, answer))
}

/// POSTs a JSON `body` with `headers` to a callback an API client registered (a webhook): an
/// `https://` URL only, and unless `private_allowed`, only to public addresses, so that a token
/// cannot make the node reach its own loopback, private network or link-local services. The
/// status code of the answer (its body is not read beyond 64 KiB), all within `timeout`.
pub fn post_callback(
    resolver: &dyn Resolver,
    tls: &openssl::ssl::SslConnector,
    url: &str,
    body: &[u8],
    headers: &[(&str, String)],
    private_allowed: bool,
    timeout: Duration,
) -> Result<u16, String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| format!("{url}: only https:// callbacks are called"))?;
    let (host, port, _) = split_rest(url, rest, 443)?;
    let addrs = addresses(resolver, url, &host, port)?;
    if !private_allowed {
        if let Some(private) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(format!("{url}: {host} is at {}, not a public address", private.ip()));
        }
    }
    let mut request = agent(addrs, timeout, Some(tls)).post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut response = request.send(body).map_err(|e| describe(url, e).text)?;
    let status = response.status().as_u16();
    let _ = response.body_mut().with_config().limit(64 * 1024).read_to_vec();
    Ok(status)
}

/// An address on the public Internet: not loopback, private (RFC 1918, RFC 4193), shared
/// (RFC 6598), link-local, unspecified, multicast or documentation; IPv4 in IPv6 judged as IPv4.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0x0db8)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Loopback;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "203.0.114.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    #[test]
    fn urls_are_split_and_only_http_is_taken() {
        assert_eq!(split_url("http://ca.example.org/ca.crl").unwrap(), ("ca.example.org".into(), 80, "/ca.crl".into()));
        assert_eq!(split_url("http://127.0.0.1:8080").unwrap(), ("127.0.0.1".into(), 8080, "/".into()));
        assert_eq!(split_url("http://[::1]:8080/x").unwrap(), ("::1".into(), 8080, "/x".into()));
        assert_eq!(split_url("http://[::1]/x").unwrap(), ("::1".into(), 80, "/x".into()));
        assert!(split_url("https://ca.example.org/ca.crl").is_err());
        assert!(split_url("http://user@ca.example.org/").is_err());
        assert!(split_url("http://ca.example.org:x/").is_err());
        assert!(split_url("http://[::1/").is_err());
        assert_eq!(split_rest("", "idv.example.net/v1", 443).unwrap(), ("idv.example.net".into(), 443, "/v1".into()));
        assert_eq!(split_rest("", "idv.example.net:8443/v1", 443).unwrap().1, 8443);
    }

    /// A server on loopback that reads one request and then writes `answer` in pieces, `pause`
    /// apart, until done or the client hangs up; its port.
    fn server(answer: Vec<Vec<u8>>, pause: Duration) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((mut peer, _)) = listener.accept() else { return };
            let mut request = [0u8; 4096];
            let _ = peer.read(&mut request);
            for piece in answer {
                if peer.write_all(&piece).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        });
        port
    }

    fn fetch(port: u16, timeout: Duration, max_bytes: u64) -> Result<Vec<u8>, String> {
        fetch_as(port, timeout, max_bytes).map_err(String::from)
    }

    fn fetch_as(port: u16, timeout: Duration, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let fetcher = HttpFetcher { resolver: &Loopback, timeout, max_bytes };
        fetcher.get(&format!("http://crl.test:{port}/ca.crl"))
    }

    #[test]
    fn a_canned_answer_is_read_as_a_server_s_would_be() {
        let cert = b"0123456789";
        let chunked =
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n".as_slice(), cert, b"\r\n0\r\n\r\n"];
        assert_eq!(get_canned(&chunked.concat()).unwrap(), cert);
        assert_eq!(get_canned(&[b"HTTP/1.0 200 OK\r\n\r\n".as_slice(), cert].concat()).unwrap(), cert);
        let missing = get_canned(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err();
        assert_eq!(missing.kind, Missed::NotFound, "{missing}");
        assert!(missing.text.contains("404"));
        let moved = get_canned(b"HTTP/1.1 301 Moved\r\nLocation: http://x.test/\r\n\r\n").unwrap_err();
        assert!(moved.kind == Missed::Failed && moved.text.contains("HTTP 301"), "{moved}");
        let mut too_big = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", (1 << 20) + 1).into_bytes();
        too_big.resize(too_big.len() + (1 << 20) + 1, b'x');
        assert!(get_canned(&too_big).unwrap_err().text.contains("larger than"));
    }

    #[test]
    fn a_hostile_http_server_gets_an_error_never_a_panic_or_unbounded_reads() {
        let ok = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nCRL".to_vec()], Duration::ZERO);
        assert_eq!(fetch(ok, Duration::from_secs(5), 100).unwrap(), b"CRL");
        // A chunk size that overflows (the hand-written client panicked on it).
        let chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nxx\r\n".to_vec();
        assert!(fetch(server(vec![chunk], Duration::ZERO), Duration::from_secs(5), 100).is_err());
        // A body over the limit, declared or not.
        let declared = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        let body = [declared, vec![b'x'; 1000]].concat();
        let e = fetch(server(vec![body], Duration::ZERO), Duration::from_secs(5), 100).unwrap_err();
        assert!(e.contains("larger than 100"), "{e}");
        let endless =
            vec![b"HTTP/1.1 200 OK\r\n\r\n".to_vec()].into_iter().chain(std::iter::repeat_n(vec![b'x'; 1000], 50));
        let e = fetch(server(endless.collect(), Duration::ZERO), Duration::from_secs(5), 10_000).unwrap_err();
        assert!(e.contains("larger than 10000"), "{e}");
        // Headers without end.
        let headers = vec![b"HTTP/1.1 200 OK\r\n".to_vec()]
            .into_iter()
            .chain(std::iter::repeat_n(b"X-Pad: aaaaaaaaaaaaaaaa\r\n".to_vec(), 5000));
        let e = fetch(server(headers.collect(), Duration::ZERO), Duration::from_secs(5), 10_000).unwrap_err();
        assert!(e.contains("header"), "{e}");
        // A body trickled one byte at a time: the request as a whole times out.
        let trickle = vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec()]
            .into_iter()
            .chain(std::iter::repeat_n(b"x".to_vec(), 100));
        let port = server(trickle.collect(), Duration::from_millis(50));
        let started = Instant::now();
        let e = fetch_as(port, Duration::from_millis(800), 10_000).unwrap_err();
        assert!(e.kind == Missed::TimedOut && e.text.contains("timed out"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // Redirects are not followed (the address was resolved for the host named).
        let moved = b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.test/x\r\nContent-Length: 0\r\n\r\n".to_vec();
        assert!(fetch(server(vec![moved], Duration::ZERO), Duration::from_secs(5), 100).unwrap_err().contains("302"));
    }

    #[test]
    fn json_is_posted_over_tls_with_the_connector_given_and_refused_by_an_untrusting_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::pki::ca::generate_rsa(2048).unwrap();
        let now = crate::clock::Clock::unix_now(&crate::clock::SystemClock);
        let cert = crate::pki::ca::self_signed_server(&key, "localhost", now - 300, 1).unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
        std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let acceptor = crate::smtp::tls::acceptor_from_files(&cert_file, &key_file).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let Ok((tcp, _)) = listener.accept() else { return };
                let Ok(mut tls) = acceptor.accept(tcp) else { continue };
                // The whole request: its headers, then as many bytes as they announce.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let complete = |r: &[u8]| {
                    let text = String::from_utf8_lossy(r);
                    let Some(end) = text.find("\r\n\r\n") else { return false };
                    let length = text.lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    });
                    r.len() >= end + 4 + length.unwrap_or(0)
                };
                while !complete(&request) {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let asked = String::from_utf8_lossy(&request).contains(r#"{"a":1}"#);
                let body = if asked { r#"{"decision":"verified"}"# } else { "{}" };
                let _ = write!(tls, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            }
        });
        let url = format!("https://localhost:{port}/verify");
        let trusting = crate::smtp::tls::connector(true, Some(&cert_file)).unwrap();
        let (status, body) =
            post_json(&Loopback, &trusting, &url, br#"{"a":1}"#, None, Duration::from_secs(5)).unwrap();
        assert_eq!((status, body.as_slice()), (200, br#"{"decision":"verified"}"#.as_slice()));
        let other = crate::smtp::tls::connector(true, None).unwrap();
        let e = post_json(&Loopback, &other, &url, b"{}", None, Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("TLS handshake"), "{e}");
    }
}
