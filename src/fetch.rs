//! HTTP GET for the objects PKI publishes over plain HTTP: CRLs, AIA caIssuers certificates, IPKIX
//! certificate URLs and trust bundles (RFC 5280 §4.2.1.13, §4.2.2.1 name http URIs). Host names go
//! through the node's one resolver; every step has a timeout and the body a size limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::dns::Resolver;

/// Fetches the bytes at a URL.
pub trait Fetcher: Send + Sync {
    fn get(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// Answers from a table of URL -> bytes: objects the node publishes itself (its development CA's
/// certificate and CRL) and tests of the core logic.
#[derive(Default)]
pub struct StaticFetcher(pub std::collections::HashMap<String, Vec<u8>>);

impl Fetcher for StaticFetcher {
    fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        self.0.get(url).cloned().ok_or_else(|| format!("{url}: not found"))
    }
}

pub struct HttpFetcher<'a> {
    pub resolver: &'a dyn Resolver,
    pub timeout: Duration,
    pub max_bytes: usize,
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
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h, p.parse::<u16>().map_err(|_| format!("{url}: bad port"))?),
        _ => (authority, default_port),
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("{url}: bad host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port, path.to_string()))
}

impl Fetcher for HttpFetcher<'_> {
    fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let (host, port, path) = split_url(url)?;
        let ips = self.resolver.addresses(&host).map_err(|e| format!("{url}: {e}"))?.records;
        if ips.is_empty() {
            return Err(format!("{url}: {host} has no address"));
        }
        let mut last = String::new();
        for ip in ips {
            match self.get_from(SocketAddr::new(ip, port), &host, &path) {
                Ok(body) => return Ok(body),
                Err(e) => last = e,
            }
        }
        Err(format!("{url}: {last}"))
    }
}

impl HttpFetcher<'_> {
    fn get_from(&self, addr: SocketAddr, host: &str, path: &str) -> Result<Vec<u8>, String> {
        let io = |e: std::io::Error| format!("{addr}: {e}");
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout).map_err(io)?;
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hisp\r\nConnection: close\r\n\r\n")
            .map_err(io)?;
        let (code, body) =
            read_response(&mut BufReader::new(stream), self.max_bytes).map_err(|e| format!("{addr}: {e}"))?;
        match code {
            200 => Ok(body),
            404 => Err("not found (HTTP 404)".into()),
            c => Err(format!("HTTP {c}")),
        }
    }
}

/// Reads an HTTP/1.1 response: its status code and its body (Content-Length, chunked, or up to
/// the close), refusing a body over `limit` bytes.
fn read_response(reader: &mut impl BufRead, limit: usize) -> Result<(u16, Vec<u8>), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut status = String::new();
    reader.read_line(&mut status).map_err(io)?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| status.starts_with("HTTP/"))
        .ok_or_else(|| format!("not an HTTP answer: {}", status.trim()))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Err("the connection closed inside the headers".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
        }
    }
    let too_big = || format!("larger than {limit} bytes");
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(io)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| "bad chunk size".to_string())?;
            if size == 0 {
                break;
            }
            if body.len() + size > limit {
                return Err(too_big());
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).map_err(io)?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).map_err(io)?;
        }
    } else if let Some(n) = length {
        if n > limit {
            return Err(too_big());
        }
        body.resize(n, 0);
        reader.read_exact(&mut body).map_err(io)?;
    } else {
        reader.take(limit as u64 + 1).read_to_end(&mut body).map_err(io)?;
        if body.len() > limit {
            return Err(too_big());
        }
    }
    Ok((code, body))
}

/// POSTs a JSON body to an `http://` or `https://` URL (TLS 1.2+, the certificate checked by
/// `tls`) and returns the status code and body of the answer. The host name goes through the
/// node's resolver.
pub fn post_json(
    resolver: &dyn Resolver,
    tls: &openssl::ssl::SslConnector,
    url: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let (secure, (host, port, path)) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, split_rest(url, rest, 443)?),
        (None, Some(rest)) => (false, split_rest(url, rest, 80)?),
        _ => return Err(format!("{url}: not an http:// or https:// URL")),
    };
    let ips = resolver.addresses(&host).map_err(|e| format!("{url}: {e}"))?.records;
    let addr = SocketAddr::new(*ips.first().ok_or_else(|| format!("{url}: {host} has no address"))?, port);
    let io = |e: std::io::Error| format!("{url}: {e}");
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hisp\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let exchange = |mut s: Box<dyn ReadWrite>| -> Result<(u16, Vec<u8>), String> {
        s.write_all(head.as_bytes()).map_err(io)?;
        s.write_all(body).map_err(io)?;
        s.flush().map_err(io)?;
        read_response(&mut BufReader::new(s), 1024 * 1024).map_err(|e| format!("{url}: {e}"))
    };
    if secure {
        let tls = tls.connect(&host, stream).map_err(|e| format!("{url}: TLS: {e}"))?;
        exchange(Box::new(tls))
    } else {
        exchange(Box::new(stream))
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[cfg(test)]
mod tests {
    use super::{split_rest, split_url};

    #[test]
    fn urls_are_split_and_only_http_is_taken() {
        assert_eq!(split_url("http://ca.example.org/ca.crl").unwrap(), ("ca.example.org".into(), 80, "/ca.crl".into()));
        assert_eq!(split_url("http://127.0.0.1:8080").unwrap(), ("127.0.0.1".into(), 8080, "/".into()));
        assert!(split_url("https://ca.example.org/ca.crl").is_err());
        assert!(split_url("http://user@ca.example.org/").is_err());
        assert!(split_url("http://ca.example.org:x/").is_err());
        assert_eq!(split_rest("", "idv.example.net/v1", 443).unwrap(), ("idv.example.net".into(), 443, "/v1".into()));
        assert_eq!(split_rest("", "idv.example.net:8443/v1", 443).unwrap().1, 8443);
    }
}
