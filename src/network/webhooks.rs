//! Webhook deliveries leave here: each event the store holds for a callback is POSTed with its
//! signature, and retried with backoff until the callback answers 2xx or the delivery is given up.
//!
//! The signature (header `Hisp-Signature: t=<unix time>,v1=<hex>`) is HMAC-SHA256 under the
//! webhook's secret of `<t>.<body>`: a receiver recomputes it, compares in constant time, and
//! refuses a `t` too far from its clock (a replay).

use std::time::Duration;

use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::config::WebhooksConfig;
use crate::dns::Resolver;
use crate::store::webhooks::{DueDelivery, WebhookStore};

pub(crate) const SIGNATURE_HEADER: &str = "Hisp-Signature";

/// The longest wait between two tries.
const MAX_BACKOFF_SECS: u64 = 3600;

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub(crate) fn signature(secret: &str, timestamp: i64, body: &[u8]) -> Result<String, openssl::error::ErrorStack> {
    let key = PKey::hmac(secret.as_bytes())?;
    let mut signer = Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(timestamp.to_string().as_bytes())?;
    signer.update(b".")?;
    signer.update(body)?;
    Ok(format!("t={timestamp},v1={}", hex::encode(signer.sign_to_vec()?)))
}

/// How the due deliveries went in one round.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Round {
    pub delivered: usize,
    pub retrying: usize,
    pub given_up: usize,
}

/// What sends: the store, the node's resolver, the TLS client for callbacks, the settings.
pub(crate) struct Sender<'a> {
    pub store: &'a dyn WebhookStore,
    pub resolver: &'a dyn Resolver,
    pub tls: &'a openssl::ssl::SslConnector,
    pub config: &'a WebhooksConfig,
}

impl Sender<'_> {
    /// Sends up to `limit` deliveries due by `now`.
    pub(crate) fn send_due(&self, now: i64, limit: usize) -> crate::store::Result<Round> {
        let mut round = Round::default();
        for due in self.store.due_webhook_deliveries(now, limit)? {
            let (status, error) = match self.post(&due, now) {
                Ok(status) => {
                    (Some(i64::from(status)), (!(200..300).contains(&status)).then(|| format!("HTTP {status}")))
                }
                Err(e) => (None, Some(e)),
            };
            if error.is_none() {
                self.store.webhook_attempted(due.id, status, None, None, true, now)?;
                round.delivered += 1;
                continue;
            }
            let next_at = self.next_try(&due, now);
            if next_at.is_some() {
                round.retrying += 1;
            } else {
                round.given_up += 1;
            }
            tracing::info!(
                webhook = due.webhook_id,
                delivery = due.id,
                "webhook delivery not accepted: {}{}",
                error.as_deref().unwrap_or(""),
                if next_at.is_some() { "; will retry" } else { "; given up" }
            );
            self.store.webhook_attempted(due.id, status, error.as_deref(), next_at, false, now)?;
        }
        Ok(round)
    }

    fn post(&self, due: &DueDelivery, now: i64) -> Result<u16, String> {
        let body = due.payload.as_bytes();
        let signed = signature(&due.secret, now, body).map_err(|e| e.to_string())?;
        let event = serde_json::from_str::<serde_json::Value>(&due.payload)
            .ok()
            .and_then(|p| p["event"].as_str().map(String::from))
            .unwrap_or_default();
        let headers = [
            (SIGNATURE_HEADER, signed),
            ("Hisp-Event", event),
            ("Hisp-Delivery", due.id.to_string()),
            ("Hisp-Webhook", due.webhook_id.to_string()),
        ];
        crate::fetch::post_callback(
            self.resolver,
            self.tls,
            &due.url,
            body,
            &headers,
            self.config.allow_private_addresses,
            Duration::from_secs(self.config.timeout_secs.max(1)),
        )
    }

    /// When to try again after the attempt made at `now`: `retry_secs`, doubling, at most an
    /// hour apart; None once it has been failing for `give_up_secs`.
    fn next_try(&self, due: &DueDelivery, now: i64) -> Option<i64> {
        if now - due.created_at >= self.config.give_up_secs as i64 {
            return None;
        }
        let wait = self.config.retry_secs.max(1).saturating_mul(1 << due.attempts.clamp(0, 16)).min(MAX_BACKOFF_SECS);
        Some(now + wait as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() {
        // RFC 4231 test case 2's key and data, with our "<t>." prefix computed by the openssl CLI:
        // printf '1700000000.what do ya want for nothing?' | openssl dgst -sha256 -hmac Jefe
        let signed = signature("Jefe", 1_700_000_000, b"what do ya want for nothing?").unwrap();
        assert_eq!(signed, "t=1700000000,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e");
        assert_ne!(signed, signature("Jefe", 1_700_000_001, b"what do ya want for nothing?").unwrap());
        assert_ne!(signed, signature("Jeff", 1_700_000_000, b"what do ya want for nothing?").unwrap());
    }
}
