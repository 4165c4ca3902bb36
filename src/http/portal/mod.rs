//! The web portal (`[portal] listen`): server-rendered pages (askama) for staff, invited
//! colleagues and patients. HTTPS only; every asset served from here (no CDN, no outside font);
//! a strict Content-Security-Policy with no inline script or style; a form token on every form;
//! the session cookie `__Host-hisp` (Secure, HttpOnly, SameSite=Strict), replaced at each step
//! of signing in, ending after `idle_timeout_secs` without a request and `session_max_secs`
//! after sign-in.

pub(crate) mod account;
pub(crate) mod contacts;
pub(crate) mod direct;
pub(crate) mod form;
pub(crate) mod mailbox;
pub(crate) mod page;
pub(crate) mod password;
pub(crate) mod practice;
pub(crate) mod refer;
pub(crate) mod register;
pub(crate) mod session;
pub(crate) mod share_contacts;
pub(crate) mod shared;
pub(crate) mod shares;
pub(crate) mod signin;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use openssl::ssl::SslAcceptor;

use super::{Limits, Stopper};
use crate::admission::Admission;
use crate::network::channels::Texter;
use crate::network::password_mail::Mailer;
use crate::node::Shared;

/// What every request of the portal shares.
pub(crate) struct Portal {
    pub shared: Arc<Shared>,
    /// Failed sign-ins and second factors per client address (accounts lock on their own).
    pub failures: crate::throttle::Throttle,
    /// Requests for a password link per e-mail address, so no one is flooded with them.
    pub link_requests: crate::throttle::Throttle,
    /// Keys the form tokens of pages seen before signing in (made at start: such a form from
    /// before a restart asks to be sent again).
    pub form_key: [u8; 32],
    /// Sends set-password links (`[notify.email]`); None: links are given by the operator's CLI.
    pub mailer: Option<Arc<Mailer>>,
    /// The queue's committer: a member's message to Direct addresses goes in as a submission would.
    pub committer: Arc<dyn crate::smtp::server::Committer>,
    /// Texts the codes of shared links (`[notify.gateway]`); None: a practice asking for an SMS
    /// code cannot have one sent.
    pub texter: Option<Arc<dyn Texter>>,
}

impl Portal {
    pub(crate) fn new(
        shared: Arc<Shared>,
        committer: Arc<dyn crate::smtp::server::Committer>,
        mailer: Option<Mailer>,
        texter: Option<Arc<dyn Texter>>,
    ) -> Result<Portal, String> {
        let mut form_key = [0u8; 32];
        openssl::rand::rand_bytes(&mut form_key).map_err(|e| e.to_string())?;
        let window = Duration::from_secs(15 * 60);
        Ok(Portal {
            shared,
            failures: crate::throttle::Throttle::new(20, window, window),
            link_requests: crate::throttle::Throttle::new(3, Duration::from_secs(3600), Duration::from_secs(3600)),
            form_key,
            mailer: mailer.map(Arc::new),
            committer,
            texter,
        })
    }
}

/// A form's body: a few fields; a message's, its files too (base64 and multipart take a little
/// more than the files themselves).
const FORM_BYTES: usize = 64 * 1024;
const UPLOAD_BYTES: usize = mailbox::MAX_UPLOAD_BYTES + 2 * 1024 * 1024;

/// The stylesheet and the script of progressive enhancement: the portal's only assets.
const STYLESHEET: &str = include_str!("../../../templates/portal/portal.css");
const SCRIPT: &str = include_str!("../../../templates/portal/portal.js");

/// What every answer carries: the policy allows only this origin's stylesheet, scripts and
/// images and no framing; nothing is kept in caches or sent as a referrer.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A download sets a stricter policy of its own.
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    for (name, value) in [
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // A shared PDF is framed by its own page (SAMEORIGIN); nothing else is framed.
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        SCRIPT,
    )
        .into_response()
}

async fn not_found() -> Response {
    page::PageError::NotFound.into_response()
}

pub(crate) fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/", get(account::home))
        .route("/sign-in", get(signin::form).post(signin::submit))
        .route("/sign-out", post(signin::sign_out))
        .route("/two-factor", get(signin::second_factor_form).post(signin::second_factor))
        .route("/two-factor/setup", get(account::enrol_form).post(account::enrol))
        .route("/account", get(account::show))
        .route("/account/recovery-codes", post(account::recovery_codes))
        .route("/contacts", get(contacts::list))
        .route("/contacts/orgs/{id}", get(contacts::organization))
        .route("/contacts/add", post(contacts::add))
        .route("/contacts/remove", post(contacts::remove))
        .route("/practice", get(practice::show))
        .route("/practice/settings", post(practice::settings))
        .route("/practice/sharing", post(practice::sharing))
        .route("/practice/members", post(practice::add_member))
        .route("/practice/members/{id}/role", post(practice::set_role))
        .route("/practice/listings", post(practice::list_member))
        .route("/practice/listings/{id}/remove", post(practice::unlist))
        .route("/shares", get(shares::list).post(shares::create).layer(DefaultBodyLimit::max(UPLOAD_BYTES)))
        .route("/shares/new", get(shares::new))
        .route("/shares/{id}", get(shares::show))
        .route("/shares/{id}/revoke", post(shares::revoke))
        .route("/shares/{id}/resend", post(shares::resend))
        .route("/s/{token}", get(shared::open))
        .route("/s/{token}/file", get(shared::file))
        .route("/s/{token}/code", post(shared::send_code))
        .route("/s/{token}/check", post(shared::check))
        .route("/s/{token}/renew", post(shared::renew))
        .route("/shares/contacts", get(share_contacts::list).post(share_contacts::add))
        .route("/shares/contacts/{id}", get(share_contacts::edit_form).post(share_contacts::edit))
        .route("/shares/contacts/{id}/remove", post(share_contacts::remove))
        .route("/invitations", get(refer::list))
        .route("/invitations/new", get(refer::new).post(refer::send))
        .route("/invitations/{id}/remind", post(refer::remind))
        .route("/invitations/{id}/cancel", post(refer::cancel))
        .route("/invitations/accept", get(register::form).post(register::register))
        .route("/invitations/accept-signed-in", post(register::accept))
        .route("/password", get(password::form).post(password::set))
        .route("/password/forgot", get(password::forgot_form).post(password::forgot))
        .route("/messages", get(mailbox::inbox).post(mailbox::send).layer(DefaultBodyLimit::max(UPLOAD_BYTES)))
        .route("/messages/sent", get(mailbox::sent))
        .route("/messages/new", get(mailbox::compose))
        .route("/messages/{id}", get(mailbox::show))
        .route("/messages/verify", get(direct::verify))
        .route("/messages/direct/{id}", get(direct::show))
        .route("/direct", get(direct::received))
        .route("/directory", get(direct::directory))
        .route("/direct/{id}", get(direct::received_one))
        .route("/direct/{id}/documents/{document}", get(direct::document))
        .route("/messages/{id}/attachments/{file}", get(mailbox::attachment))
        .route(
            "/messages/{id}/reply",
            get(mailbox::reply_form).post(mailbox::reply).layer(DefaultBodyLimit::max(UPLOAD_BYTES)),
        )
        .route("/assets/portal.css", get(stylesheet))
        .route("/assets/portal.js", get(script))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(FORM_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(portal)
}

/// Binds `listen` and serves the portal there; the bound address and the handle that stops it.
pub(crate) fn start(
    listen: &str,
    tls: Arc<SslAcceptor>,
    portal: Portal,
    admission: Arc<Admission>,
) -> std::io::Result<(SocketAddr, Stopper)> {
    // Time enough to send a message's files over a slow line.
    let request_timeout = Duration::from_secs(120);
    super::serve("portal", listen, tls, router(Arc::new(portal)), Limits { admission, request_timeout })
}

/// 303: go there next (after a form).
pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}
