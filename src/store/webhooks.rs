//! Webhooks: the HTTPS callbacks an EHR's token registers for its practice's events, and the
//! deliveries of those events. The events themselves are written by triggers (migration 27) in
//! the transaction that records what happened; here they are registered, listed, claimed for
//! sending and marked.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::cached::CachedSql;
use super::sqlite::SqliteStore;
use super::{Result, StoreError};

/// The events a webhook may ask for.
pub(crate) const EVENTS: [&str; 4] = ["message.received", "message.status", "delivery.failed", "referral.received"];

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WebhookRecord {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: i64,
    /// Deliveries waiting to be sent, and given up.
    pub pending: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WebhookDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    /// The JSON posted (ids and states only).
    pub payload: serde_json::Value,
    /// pending, delivered or failed (given up).
    pub state: String,
    pub attempts: i64,
    /// When it is tried next, while pending.
    pub next_at: Option<i64>,
    /// The HTTP status of the last answer, or the reason there was none.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// A delivery to send now: where to, with which secret.
#[derive(Debug, Clone)]
pub(crate) struct DueDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    pub payload: String,
    pub attempts: i64,
    pub created_at: i64,
}

pub(crate) trait WebhookStore {
    /// Registers a webhook for the token's practice; its id.
    fn add_webhook(&self, practice_id: i64, token_id: i64, url: &str, events: &[String], secret: &str) -> Result<i64>;
    /// The token's live webhooks.
    fn webhooks(&self, token_id: i64) -> Result<Vec<WebhookRecord>>;
    /// Removes one of the token's webhooks (its deliveries stop).
    fn remove_webhook(&self, token_id: i64, id: i64) -> Result<()>;
    /// One of the token's webhook's deliveries, newest first, at most `limit`.
    fn webhook_deliveries(&self, token_id: i64, webhook_id: i64, limit: usize) -> Result<Vec<WebhookDelivery>>;
    /// Pending deliveries due by `now`, oldest first.
    fn due_webhook_deliveries(&self, now: i64, limit: usize) -> Result<Vec<DueDelivery>>;
    /// A delivery's attempt: delivered (`next_at` None and a 2xx `status`), tried again at
    /// `next_at`, or given up (`next_at` None, not delivered).
    fn webhook_attempted(
        &self,
        id: i64,
        status: Option<i64>,
        error: Option<&str>,
        next_at: Option<i64>,
        delivered: bool,
        now: i64,
    ) -> Result<()>;
}

fn events_column(events: &[String]) -> String {
    format!(" {} ", events.join(" "))
}

fn delivery_row(r: &Row) -> rusqlite::Result<WebhookDelivery> {
    let payload: String = r.get(3)?;
    let state: String = r.get(4)?;
    let next_at: i64 = r.get(6)?;
    Ok(WebhookDelivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event: r.get(2)?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        next_at: (state == "pending").then_some(next_at),
        state,
        attempts: r.get(5)?,
        last_status: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        delivered_at: r.get(10)?,
    })
}

impl WebhookStore for SqliteStore {
    fn add_webhook(&self, practice_id: i64, token_id: i64, url: &str, events: &[String], secret: &str) -> Result<i64> {
        let now = self.clock.unix_now();
        let detail = format!("{url} {}", events.join(" "));
        self.change("webhook.add", &format!("token #{token_id}"), &detail, |tx| {
            tx.run(
                "INSERT INTO webhooks (practice_id, token_id, url, events, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, field_seal(?5), ?6)",
                params![practice_id, token_id, url, events_column(events), secret, now],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn webhooks(&self, token_id: i64) -> Result<Vec<WebhookRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT w.id, w.url, w.events, w.created_at,
                    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending'),
                    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'failed')
             FROM webhooks w WHERE w.token_id = ?1 AND w.removed_at IS NULL ORDER BY w.id",
        )?;
        let rows = stmt.query_map([token_id], |r| {
            Ok(WebhookRecord {
                id: r.get(0)?,
                url: r.get(1)?,
                events: r.get::<_, String>(2)?.split_whitespace().map(String::from).collect(),
                created_at: r.get(3)?,
                pending: r.get(4)?,
                failed: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn remove_webhook(&self, token_id: i64, id: i64) -> Result<()> {
        let now = self.clock.unix_now();
        self.change("webhook.remove", &format!("token #{token_id}"), &format!("webhook #{id}"), |tx| {
            let removed = tx.run(
                "UPDATE webhooks SET removed_at = ?3 WHERE id = ?1 AND token_id = ?2 AND removed_at IS NULL",
                params![id, token_id, now],
            )?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!("webhook {id}")));
            }
            tx.run(
                "UPDATE webhook_deliveries SET state = 'failed', last_error = 'the webhook was removed'
                 WHERE webhook_id = ?1 AND state = 'pending'",
                [id],
            )?;
            Ok(())
        })
    }

    fn webhook_deliveries(&self, token_id: i64, webhook_id: i64, limit: usize) -> Result<Vec<WebhookDelivery>> {
        let owned: Option<i64> = self
            .conn
            .row("SELECT 1 FROM webhooks WHERE id = ?1 AND token_id = ?2", params![webhook_id, token_id], |r| r.get(0))
            .optional()?;
        if owned.is_none() {
            return Err(StoreError::NotFound(format!("webhook {webhook_id}")));
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, webhook_id, event, payload, state, attempts, next_at, last_status, last_error, created_at,
                    delivered_at
             FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![webhook_id, limit as i64], delivery_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn due_webhook_deliveries(&self, now: i64, limit: usize) -> Result<Vec<DueDelivery>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.webhook_id, w.url, field_open(w.secret), d.payload, d.attempts, d.created_at
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.state = 'pending' AND d.next_at <= ?1 ORDER BY d.next_at, d.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit as i64], |r| {
            Ok(DueDelivery {
                id: r.get(0)?,
                webhook_id: r.get(1)?,
                url: r.get(2)?,
                secret: r.get(3)?,
                payload: r.get(4)?,
                attempts: r.get(5)?,
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn webhook_attempted(
        &self,
        id: i64,
        status: Option<i64>,
        error: Option<&str>,
        next_at: Option<i64>,
        delivered: bool,
        now: i64,
    ) -> Result<()> {
        let state = match (delivered, next_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        self.conn.run(
            "UPDATE webhook_deliveries
             SET attempts = attempts + 1, last_status = ?2, last_error = ?3, state = ?4,
                 next_at = coalesce(?5, next_at), delivered_at = CASE WHEN ?6 THEN ?7 END
             WHERE id = ?1 AND state = 'pending'",
            params![id, status, error, state, next_at, delivered, now],
        )?;
        Ok(())
    }
}
