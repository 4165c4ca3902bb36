//! Publishes the development CA over HTTP, where the certificates it issues point (AIA caIssuers
//! `/ca.cer`, CRL distribution point `/ca.crl`): peers fetch these to build paths and check
//! revocation. The CRL is made from the store's revocations: again at once when they change, and
//! otherwise at most once a minute.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::admission::Admission;
use crate::clock::Clock;
use crate::deadline::Deadlined;
use crate::dev_ca::DevCa;
use crate::kek::Kek;

/// How long a published CRL is good for (its nextUpdate).
const CRL_DAYS: u32 = 7;
const CRL_REFRESH_SECS: i64 = 60;

struct Publisher {
    db: PathBuf,
    kek: Arc<Kek>,
    clock: Arc<dyn Clock>,
    /// (made at, revocations listed, DER) of the last CRL.
    crl: Mutex<Option<(i64, usize, Vec<u8>)>>,
}

pub(crate) fn start(
    listen: &str,
    db: PathBuf,
    kek: Arc<Kek>,
    clock: Arc<dyn Clock>,
    admission: Arc<Admission>,
) -> std::io::Result<SocketAddr> {
    let socket = TcpListener::bind(listen)?;
    let bound = socket.local_addr()?;
    let publisher = Arc::new(Publisher { db, kek, clock, crl: Mutex::new(None) });
    std::thread::Builder::new().name("ca-http".into()).spawn(move || {
        for stream in socket.incoming().flatten() {
            let Some(ticket) = stream.peer_addr().ok().and_then(|peer| admission.admit(peer.ip()).ok()) else {
                continue;
            };
            let publisher = publisher.clone();
            let _ = std::thread::Builder::new().name("ca-http-conn".into()).spawn(move || {
                let _ticket = ticket;
                let _ = publisher.serve(stream);
            });
        }
    })?;
    Ok(bound)
}

impl Publisher {
    /// One request, read (at most 16 KiB of it) and answered within 10 seconds in all.
    fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let stream = Deadlined::new(stream, Duration::from_secs(10));
        let mut reader = BufReader::new(stream.take(16 * 1024));
        let mut request = String::new();
        reader.read_line(&mut request)?;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
        }
        let mut parts = request.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, kind, body) = match (method, path) {
            ("GET", "/ca.cer") => match self.certificate() {
                Ok(der) => ("200 OK", "application/pkix-cert", der),
                Err(e) => ("503 Service Unavailable", "text/plain", e.into_bytes()),
            },
            ("GET", "/ca.crl") => match self.current_crl() {
                Ok(der) => ("200 OK", "application/pkix-crl", der),
                Err(e) => ("503 Service Unavailable", "text/plain", e.into_bytes()),
            },
            ("GET", _) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
            _ => ("405 Method Not Allowed", "text/plain", b"GET only\n".to_vec()),
        };
        let mut out = reader.into_inner().into_inner();
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        out.write_all(&body)
    }

    fn certificate(&self) -> Result<Vec<u8>, String> {
        let store = crate::store::open(&self.db, "ca-http").map_err(|e| e.to_string())?;
        DevCa::certificate(&*store).and_then(|c| Ok(c.to_der()?)).map_err(|e| e.to_string())
    }

    fn current_crl(&self) -> Result<Vec<u8>, String> {
        let now = self.clock.unix_now();
        let store = crate::store::open(&self.db, "ca-http").map_err(|e| e.to_string())?;
        let revoked = store.revocations().map_err(|e| e.to_string())?.len();
        let mut cached = self.crl.lock().map_err(|_| "CRL cache poisoned".to_string())?;
        if let Some((_, _, der)) =
            cached.as_ref().filter(|(made, listed, _)| now - made < CRL_REFRESH_SECS && *listed == revoked)
        {
            return Ok(der.clone());
        }
        let ca = DevCa::load(&*store, &self.kek).map_err(|e| e.to_string())?;
        let der = ca.crl(&*store, now, CRL_DAYS).map_err(|e| e.to_string())?.to_der().map_err(|e| e.to_string())?;
        *cached = Some((now, revoked, der.clone()));
        Ok(der)
    }
}
