//! A request's session: the `__Host-hisp` cookie's token, found by its digest; ended when idle
//! too long or too old. Before sign-in the cookie holds a random token no session has, which
//! keys the form token of the sign-in page; signing in replaces it, so a token from before is
//! worth nothing after.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use super::page::PageError;
use super::Portal;
use crate::http::Peer;
use crate::network::signin::{digest, Token};
use crate::store::accounts::AccountRecord;
use crate::store::portal::SessionRecord;
use crate::store::{NodeStore, SessionStage};

pub(crate) const COOKIE: &str = "__Host-hisp";
/// A session's last request is written down at most this often (not at every page).
const TOUCH_EVERY_SECS: i64 = 30;
/// The longest cookie value read.
const MAX_TOKEN_CHARS: usize = 128;

/// The browser's cookie that binds the links of documents shared with it (`share_link`).
/// SameSite=Lax, not Strict: a link is opened from an e-mail, another site, and the browser must
/// send it then. It keeps for 400 days (the most browsers allow); the sender revokes a link.
pub(crate) const SHARE_COOKIE: &str = "__Host-hisp-share";
const SHARE_COOKIE_SECS: u32 = 400 * 86_400;
/// The longest User-Agent read (for the coarse description of a shared link's reader).
const MAX_USER_AGENT_CHARS: usize = 512;

/// The cookie `name`'s token, if the request has one that looks like ours.
fn token_of(parts: &Parts, name: &str) -> Option<String> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|t| cookie_in(t, name))
}

/// The cookie `wanted` in one Cookie header's text, if its value is well formed.
pub(crate) fn cookie_in(text: &str, wanted: &str) -> Option<String> {
    for pair in text.split(';') {
        if let Some((name, value)) = pair.trim().split_once('=') {
            if name == wanted && well_formed(value) {
                return Some(value.to_string());
            }
        }
    }
    None
}

/// A token as we make them: base64url, at most `MAX_TOKEN_CHARS`.
pub(crate) fn well_formed(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_TOKEN_CHARS
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The Set-Cookie value that binds shared links to this browser.
pub(crate) fn share_cookie_for(token: &str) -> HeaderValue {
    let text = format!("{SHARE_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={SHARE_COOKIE_SECS}");
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("__Host-hisp-share=; Path=/; Secure; HttpOnly"))
}

/// The Set-Cookie value that gives the browser `token`.
pub(crate) fn cookie_for(token: &str) -> HeaderValue {
    let text = format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict");
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("__Host-hisp=; Path=/; Secure; HttpOnly"))
}

/// The Set-Cookie value that takes it away.
pub(crate) fn cookie_gone() -> HeaderValue {
    HeaderValue::from_static("__Host-hisp=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// `response` with the cookie set to `token`.
pub(crate) fn with_cookie(mut response: Response, token: Option<&str>) -> Response {
    if let Some(token) = token {
        response.headers_mut().append(header::SET_COOKIE, cookie_for(token));
    }
    response
}

/// What a request brings before its work: the portal, its client, its cookie.
pub(crate) struct Visit {
    portal: Arc<Portal>,
    peer: Peer,
    cookie: Option<String>,
    share_cookie: Option<String>,
    user_agent: String,
}

impl FromRequestParts<Arc<Portal>> for Visit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, portal: &Arc<Portal>) -> Result<Visit, PageError> {
        let peer = parts.extensions.get::<Peer>().copied().unwrap_or(Peer(([127, 0, 0, 1], 0).into()));
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        Ok(Visit {
            portal: portal.clone(),
            peer,
            cookie: token_of(parts, COOKIE),
            share_cookie: token_of(parts, SHARE_COOKIE),
            user_agent: user_agent.chars().take(MAX_USER_AGENT_CHARS).collect(),
        })
    }
}

/// A request's work, on a blocking thread with its own store connection.
pub(crate) struct Ctx<'a> {
    pub portal: &'a Portal,
    pub store: Box<dyn NodeStore>,
    pub now: i64,
    pub peer: Peer,
    cookie: Option<String>,
    /// The session the cookie names, if it is one and has not ended, and its account.
    pub session: Option<(SessionRecord, AccountRecord)>,
    /// The cookie named a session that has just ended (idle or too old).
    pub ended: bool,
    /// The cookie that binds shared links to this browser.
    pub share_cookie: Option<String>,
    pub user_agent: String,
}

impl Visit {
    /// Runs `work` on a blocking thread; a failure becomes its page.
    pub(crate) async fn run<F>(self, work: F) -> Response
    where
        F: FnOnce(&Ctx) -> Result<Response, PageError> + Send + 'static,
    {
        let Visit { portal, peer, cookie, share_cookie, user_agent } = self;
        let outcome = tokio::task::spawn_blocking(move || {
            let shared = &portal.shared;
            let actor = format!("portal:{}", peer.0.ip());
            let store = crate::store::open(&shared.db, &actor).map_err(PageError::internal)?;
            store.attach_fields(shared.kek.clone()).map_err(PageError::internal)?;
            let now = shared.clock.unix_now();
            let (session, ended) = match &cookie {
                Some(token) => current(&*store, &portal.shared.config.portal, token, now)?,
                None => (None, false),
            };
            let ctx = Ctx { portal: &portal, store, now, peer, cookie, session, ended, share_cookie, user_agent };
            work(&ctx)
        })
        .await;
        match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => e.into_response(),
            Err(e) => PageError::internal(e).into_response(),
        }
    }
}

/// The session `token` names, if it has not ended; and whether it has just ended (it is deleted).
fn current(
    store: &dyn NodeStore,
    config: &crate::config::PortalConfig,
    token: &str,
    now: i64,
) -> Result<(Option<(SessionRecord, AccountRecord)>, bool), PageError> {
    let Some(session) = store.session(&digest(token)).map_err(PageError::internal)? else { return Ok((None, false)) };
    let idle = now - session.seen_at >= config.idle_timeout_secs as i64;
    let old = now - session.created_at >= config.session_max_secs as i64;
    if idle || old {
        store.end_session(session.id).map_err(PageError::internal)?;
        return Ok((None, true));
    }
    if now - session.seen_at >= TOUCH_EVERY_SECS {
        store.touch_session(session.id, now).map_err(PageError::internal)?;
    }
    let account = store.account(session.account_id).map_err(PageError::internal)?;
    Ok((Some((session, account)), false))
}

impl Ctx<'_> {
    /// The signed-in account; a session part-way through signing in is sent on to its next
    /// step, and no session to the sign-in page.
    pub(crate) fn signed_in(&self) -> Result<(&SessionRecord, &AccountRecord), PageError> {
        match &self.session {
            Some((session, account)) if session.stage == SessionStage::SignedIn => Ok((session, account)),
            Some((session, _)) if session.stage == SessionStage::SecondFactor => {
                Err(PageError::Redirect("/two-factor"))
            }
            Some((session, _)) if session.stage == SessionStage::Enrol => Err(PageError::Redirect("/two-factor/setup")),
            _ if self.ended => Err(PageError::Redirect("/sign-in?then=ended")),
            _ => Err(PageError::Redirect("/sign-in")),
        }
    }

    /// The session at `stage`, whatever its account.
    pub(crate) fn at_stage(&self, stage: SessionStage) -> Option<(&SessionRecord, &AccountRecord)> {
        self.session.as_ref().filter(|(s, _)| s.stage == stage).map(|(s, a)| (s, a))
    }

    /// The form token of this request's pages, and the cookie to set for it when the browser has
    /// none yet: a session's own, or (before signing in) one keyed from the cookie's token.
    pub(crate) fn form_token(&self) -> Result<(String, Option<String>), PageError> {
        if let Some((session, _)) = &self.session {
            return Ok((session.csrf.clone(), None));
        }
        match &self.cookie {
            Some(token) => Ok((self.keyed(token)?, None)),
            None => {
                let token = Token::generate().map_err(PageError::internal)?.text;
                Ok((self.keyed(&token)?, Some(token)))
            }
        }
    }

    /// Refuses a form whose token is not this request's (a forged form, a stale page).
    pub(crate) fn check_form(&self, sent: &str) -> Result<(), PageError> {
        let expected = match (&self.session, &self.cookie) {
            (Some((session, _)), _) => session.csrf.clone(),
            (None, Some(token)) => self.keyed(token)?,
            (None, None) => return Err(PageError::Csrf),
        };
        if sent.len() == expected.len() && openssl::memcmp::eq(sent.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    fn keyed(&self, token: &str) -> Result<String, PageError> {
        let key = PKey::hmac(&self.portal.form_key).map_err(PageError::internal)?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key).map_err(PageError::internal)?;
        signer.update(token.as_bytes()).map_err(PageError::internal)?;
        Ok(hex::encode(signer.sign_to_vec().map_err(PageError::internal)?))
    }

    /// The client address, as the throttles count.
    pub(crate) fn client(&self) -> String {
        self.peer.0.ip().to_string()
    }
}
