//! A shared document's link, the contact's side: what the link's page shows (the check, the
//! document, or why not), the SMS code (6 digits through `[notify.gateway]`, valid 10 minutes,
//! 5 wrong codes lock the link), the date of birth (3 wrong dates lock it), and binding the link
//! to the browser that passed the check. Every step goes into the share's trail with a coarse
//! description of the client (its browser and operating system, its network), never more.

use std::net::IpAddr;

use super::channels::Texter;
use super::shares::FIRST_USE_SECS;
use super::signin::{digest, Token};
use crate::failure::Failure;
use crate::store::sharing::ShareRecord;
use crate::store::{NodeStore, ShareCheck, ShareEvent, StoreError};

pub(crate) const CODE_VALID_SECS: i64 = 600;
pub(crate) const MAX_CODE_FAILURES: u32 = 5;
pub(crate) const MAX_DOB_FAILURES: u32 = 3;
/// Codes texted per link (each one costs the practice, and a pumped link is a nuisance).
pub(crate) const MAX_CODES_SENT: u32 = 5;
/// A contact asking again for a new link tells the sender again only after this long.
const RENEWAL_NOTICE_EVERY_SECS: i64 = 3600;

/// Where a link stands for the browser that opened it.
#[derive(Debug)]
pub(crate) enum LinkState {
    /// No share has this link (never had, or a fresh link replaced it).
    Unknown,
    Revoked(ShareRecord),
    Locked(ShareRecord),
    /// Bound to another browser.
    OtherBrowser(ShareRecord),
    /// Not used within 24 hours; the contact asks the practice for a new link.
    Expired(ShareRecord),
    /// The check is to pass (with none, a button to press). `renewing`: the link had expired and
    /// the practice renews it once the check passes.
    Check {
        share: ShareRecord,
        renewing: bool,
    },
    /// Bound to this browser: the document is shown.
    Open(ShareRecord),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("that code is not right: {0} tries left")]
    WrongCode(u32),
    #[error("that date of birth is not right: {0} tries left")]
    WrongDate(u32),
    #[error("too many wrong answers: this link is locked. Ask {0} to send you a new one")]
    Locked(String),
    #[error("that code has expired: send yourself a new one")]
    CodeExpired,
    #[error("send yourself a code first")]
    NoCode,
    #[error("{MAX_CODES_SENT} codes were sent for this link, the most there may be: ask {0} to send you a new link")]
    TooManyCodes(String),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("this link can no longer be used")]
    Closed,
    #[error("no code can be texted now (the practice has no text message gateway): ask {0} for help")]
    NoTexter(String),
    #[error("the code could not be texted: {0}. Try again in a minute")]
    NotSent(Failure),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One visit to a link.
pub(crate) struct Visitor<'a> {
    pub store: &'a dyn NodeStore,
    pub now: i64,
    /// `client` as the trail shows it.
    pub client: String,
    /// The browser's share cookie, if it sent one.
    pub browser: Option<&'a str>,
}

impl Visitor<'_> {
    /// Where the link `token` stands for this browser.
    pub(crate) fn state(&self, token: &str) -> Result<LinkState, StoreError> {
        let Some(share) = self.store.share_by_link(&digest(token))? else { return Ok(LinkState::Unknown) };
        let bound_here = match (&share.browser_hash, self.browser) {
            (Some(bound), Some(cookie)) => openssl::memcmp::eq(bound.as_bytes(), digest(cookie).as_bytes()),
            _ => false,
        };
        Ok(if share.revoked_at.is_some() {
            LinkState::Revoked(share)
        } else if share.first_used_at.is_some() && bound_here {
            LinkState::Open(share)
        } else if share.locked_at.is_some() {
            LinkState::Locked(share)
        } else if share.first_used_at.is_some() {
            LinkState::OtherBrowser(share)
        } else if self.now > share.link_sent_at + FIRST_USE_SECS {
            if share.auto_renew {
                LinkState::Check { share, renewing: true }
            } else {
                LinkState::Expired(share)
            }
        } else {
            LinkState::Check { share, renewing: false }
        })
    }

    pub(crate) fn record(&self, share: &ShareRecord, event: ShareEvent) -> Result<bool, StoreError> {
        self.store.share_event(share.id, event, &self.client, self.now)
    }

    /// Texts a new code to the contact's mobile.
    pub(crate) fn send_code(&self, share: &ShareRecord, texter: Option<&dyn Texter>) -> Result<(), LinkError> {
        let Some(mobile) = share.contact_mobile.as_deref().filter(|_| share.check == ShareCheck::Sms) else {
            return Err(LinkError::Closed);
        };
        if share.codes_sent >= MAX_CODES_SENT {
            return Err(LinkError::TooManyCodes(share.practice.clone()));
        }
        let texter = texter.ok_or_else(|| LinkError::NoTexter(share.practice.clone()))?;
        let code = six_digits()?;
        self.store.set_share_code(share.id, &code, &self.client, self.now)?;
        let text = format!(
            "{code} is your code to see the document {} shared with you. It works for {} minutes.",
            share.practice,
            CODE_VALID_SECS / 60
        );
        texter.text(mobile, &text, &format!("share-{}", share.id)).map_err(LinkError::NotSent)
    }

    /// Checks `answer` (the code, or the date of birth as YYYY-MM-DD; nothing when there is no
    /// check). Passed: the link is bound to this browser, and the cookie value to give it is
    /// returned (the browser's own, when it has one, so its other links stay bound).
    pub(crate) fn check(&self, share: &ShareRecord, answer: &str, renewing: bool) -> Result<String, LinkError> {
        let answer = answer.trim();
        match share.check {
            ShareCheck::Sms => {
                let code: String = answer.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
                if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(LinkError::Invalid("the code is the 6 digits texted to you"));
                }
                let Some(sent_at) = share.code_sent_at else { return Err(LinkError::NoCode) };
                if self.now > sent_at + CODE_VALID_SECS {
                    return Err(LinkError::CodeExpired);
                }
                if !self.store.share_code_matches(share.id, &code)? {
                    return Err(self.failed(share, MAX_CODE_FAILURES, LinkError::WrongCode)?);
                }
            }
            ShareCheck::DateOfBirth => {
                let Some(given) = crate::clock::parse_date(answer) else {
                    return Err(LinkError::Invalid("your date of birth, as YYYY-MM-DD"));
                };
                let expected = share.contact_date_of_birth.as_deref().and_then(crate::clock::parse_date);
                if expected != Some(given) {
                    return Err(self.failed(share, MAX_DOB_FAILURES, LinkError::WrongDate)?);
                }
            }
            ShareCheck::None => {}
            ShareCheck::Off => return Err(LinkError::Closed),
        }
        let cookie = match self.browser {
            Some(cookie) => cookie.to_string(),
            None => Token::generate()?.text,
        };
        let event = if renewing { ShareEvent::Renewed } else { ShareEvent::Passed };
        self.store.bind_share(share.id, &digest(&cookie), event, &self.client, self.now)?;
        Ok(cookie)
    }

    /// One more wrong answer: how many are left, or the lock.
    fn failed(&self, share: &ShareRecord, limit: u32, wrong: fn(u32) -> LinkError) -> Result<LinkError, StoreError> {
        let (failures, locked) = self.store.share_check_failed(share.id, limit, &self.client, self.now)?;
        Ok(if locked { LinkError::Locked(share.practice.clone()) } else { wrong(limit.saturating_sub(failures)) })
    }

    /// The contact asks for a new link: recorded; whether the sender is to be told (not again
    /// within the hour).
    pub(crate) fn ask_renewal(&self, share: &ShareRecord) -> Result<bool, StoreError> {
        let told_lately = share.renewal_asked_at.is_some_and(|at| self.now - at < RENEWAL_NOTICE_EVERY_SECS);
        self.record(share, ShareEvent::RenewalAsked)?;
        Ok(!told_lately)
    }
}

/// A code of six decimal digits, each equally likely.
fn six_digits() -> Result<String, StoreError> {
    loop {
        let mut bytes = [0u8; 4];
        openssl::rand::rand_bytes(&mut bytes).map_err(|e| StoreError::Conflict(format!("no random bytes: {e}")))?;
        let n = u32::from_be_bytes(bytes);
        // Below the largest multiple of a million: no digit is likelier than another.
        if n < u32::MAX - u32::MAX % 1_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// A coarse description of a client: its browser and system from the User-Agent, and its network
/// (an IPv4 /24, an IPv6 /48), never its whole address or the User-Agent itself.
pub(crate) fn client(user_agent: &str, ip: IpAddr) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "a browser"
    };
    let system = if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") {
        "macOS"
    } else if ua.contains("Linux") || ua.contains("X11") {
        "Linux"
    } else {
        "an unknown system"
    };
    let network = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    };
    format!("{browser} on {system}, {network}")
}
