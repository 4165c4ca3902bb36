//! The REST API EHRs integrate with (`[http]`): Direct setup, identity proofing, address
//! verification, sending referrals and following them, documents and the directory, invitations
//! and their acceptance, connections. HTTPS only
//! (TLS 1.2+, the node's certificate unless the API has its own), bearer tokens per integration.
//!
//! It runs on a small tokio runtime of its own; each request's work (SQLite, discovery, the queue
//! committer) runs on the runtime's blocking threads with its own store connection.

pub(crate) mod accept;
pub(crate) mod address_book;
pub(crate) mod call;
pub(crate) mod directory;
pub(crate) mod documents;
pub(crate) mod error;
pub(crate) mod invitations;
pub(crate) mod messages;
pub(crate) mod paging;
pub(crate) mod portal;
pub(crate) mod practice;
pub(crate) mod proofing;
pub(crate) mod referrals;
pub(crate) mod routes;
pub(crate) mod secure;
pub(crate) mod send;
pub(crate) mod share_contacts;
pub(crate) mod shares;
pub(crate) mod tokens;
pub(crate) mod webhooks;
pub(crate) mod xdr;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::sync::watch;

use crate::admission::Admission;
use crate::node::Shared;
use crate::smtp::server::Committer;

/// What every request shares: the node's state and the queue's committer (a message sent
/// through the API is committed exactly like one submitted over SMTP).
pub(crate) struct Api {
    pub shared: Arc<Shared>,
    pub committer: Arc<dyn Committer>,
    /// Requests with unknown tokens, counted per client address (guessing is slowed to a crawl).
    pub token_failures: crate::throttle::Throttle,
    /// Wrong invitation codes per client address, failed sign-ins and dates of birth per code.
    pub code_failures: crate::throttle::Throttle,
    /// For the identity-verification service and the code channel's relay.
    pub dns: crate::dns::DnsConfig,
}

/// The client's address, for the Received field of what it sends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub SocketAddr);

/// The SHA-256 fingerprint (lowercase hex) of the certificate the client presented, if any (the
/// XDR endpoint asks for one; the API and the portal do not).
#[derive(Clone, Debug)]
pub(crate) struct ClientCertificate(pub Option<String>);

/// How long a client has to send a request's body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyTimeout(pub Duration);

/// A TLS handshake must finish within this, and a request's header within `HEADER_TIMEOUT` (or
/// the request timeout, when shorter).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the node's stop needs of the API: a signal that makes every connection finish the
/// request in hand and close (idle ones at once) and stops accepting new ones, and a count of the
/// connections still open.
pub(crate) struct Stopper {
    signal: watch::Sender<bool>,
    admission: Arc<Admission>,
}

impl Stopper {
    pub(crate) fn stop(&self) {
        self.signal.send_replace(true);
    }

    /// Connections still open (each with a request under way, once stopped).
    pub(crate) fn open(&self) -> usize {
        self.admission.open()
    }
}

/// Binds `listen` and serves the API there on a thread of its own; returns the bound address and
/// the handle that stops it.
pub(crate) fn start(
    listen: &str,
    tls: Arc<SslAcceptor>,
    api: Api,
    admission: Arc<Admission>,
) -> std::io::Result<(SocketAddr, Stopper)> {
    let max_body = api.shared.config.http.max_body_bytes;
    let request_timeout = Duration::from_secs(api.shared.config.http.request_timeout_secs);
    let app = routes::router(Arc::new(api), max_body);
    serve("http-api", listen, tls, app, Limits { admission, request_timeout })
}

/// Binds `listen` and serves `app` over TLS there, on a thread (named `name`) and a small
/// runtime of its own.
pub(crate) fn serve(
    name: &str,
    listen: &str,
    tls: Arc<SslAcceptor>,
    app: axum::Router,
    limits: Limits,
) -> std::io::Result<(SocketAddr, Stopper)> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(name).enable_all().build()?;
    let (signal, stopping) = watch::channel(false);
    let stopper = Stopper { signal, admission: limits.admission.clone() };
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || runtime.block_on(accept_loop(listener, tls, app, limits, stopping)))?;
    Ok((bound, stopper))
}

/// How many connections, and how long a request may take to arrive.
pub(crate) struct Limits {
    pub admission: Arc<Admission>,
    pub request_timeout: Duration,
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Arc<SslAcceptor>,
    app: axum::Router,
    limits: Limits,
    stopping: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return tracing::error!("http: cannot listen: {e}"),
    };
    loop {
        let mut stop = stopping.clone();
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::error!("http: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Turned away without a word: there is no TLS yet to say it in.
        let Ok(guard) = limits.admission.admit(peer.ip()) else { continue };
        // An answer written as two TLS records (head, then body) must not wait for the client's
        // delayed ACK of the first: 40 ms on a kept-alive connection (bench/scale.py's p99).
        let _ = tcp.set_nodelay(true);
        let (tls, app) = (tls.clone(), app.clone());
        let request_timeout = limits.request_timeout;
        let span = tracing::info_span!("api", %peer);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let _guard = guard;
                let Ok(ssl) = Ssl::new(tls.context()) else { return };
                let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else { return };
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut stream).accept());
                tokio::select! {
                    handshake = handshake => {
                        // A failed or slow handshake (plain HTTP, an old TLS version): nothing to answer.
                        if !matches!(handshake, Ok(Ok(()))) {
                            return;
                        }
                    }
                    // No request yet: a stop closes it.
                    _ = stopped(&mut stop) => return,
                }
                let presented =
                    stream.ssl().peer_certificate().and_then(|c| c.digest(openssl::hash::MessageDigest::sha256()).ok());
                let certificate = ClientCertificate(presented.map(|d| hex::encode(&*d)));
                let app = app
                    .layer(Extension(Peer(peer)))
                    .layer(Extension(BodyTimeout(request_timeout)))
                    .layer(Extension(certificate));
                let service = TowerToHyperService::new(app);
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT.min(request_timeout))
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = stopped(&mut stop) => {
                        // The request under way, if any, is answered; then the connection closes.
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            },
            span,
        ));
    }
    // Stopping: the listener closes (new connections are refused), but the runtime must live on
    // (returning would drop it, and with it the connections still answering their requests)
    // until the process ends.
    drop(listener);
    std::future::pending::<()>().await
}

/// Resolves once the node stops (never, if the handle is gone without a stop).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await
    }
}
