//! `hisp message track` and `hisp message list`: what became of each recipient of a message sent
//! through this node (its notifications, in order), and what arrived in the hosted mailboxes.

use super::output::{self, table};
use super::{Context, Failure};
use crate::clock::iso8601;
use crate::store::queue::tracking::SentMessage;
use crate::store::queue::Queue;

/// The queue, able to open sealed subjects when the KEK is at hand (else they show "(sealed)").
fn queue(ctx: &Context) -> Result<Box<dyn Queue>, Failure> {
    ctx.store()?; // opens (and migrates) the database, or says clearly that there is none
    let queue = crate::store::queue::open(&ctx.db_path)?;
    if let Some(kek) = ctx.kek_if_given()? {
        queue.attach_fields(std::sync::Arc::new(kek))?;
    }
    Ok(queue)
}

pub(super) fn track(ctx: &Context, message_id: &str, sender: Option<&str>) -> Result<(), Failure> {
    let queue = queue(ctx)?;
    let mut found = queue.track(message_id.trim())?;
    if let Some(sender) = sender {
        found.retain(|m| m.sender.eq_ignore_ascii_case(sender.trim()));
    }
    if found.len() > 1 {
        let senders: Vec<&str> = found.iter().map(|m| m.sender.as_str()).collect();
        return Err(Failure::usage(format!(
            "{} senders used the Message-ID {message_id} ({}): name one with --sender",
            found.len(),
            senders.join(", ")
        )));
    }
    let Some(message) = found.pop() else {
        return Err(Failure::new(
            "not-found",
            format!("no message {message_id} was sent through this node (see `hisp message list --sent`)"),
        ));
    };
    if ctx.json {
        output::json(&message);
        return Ok(());
    }
    println!("{} from {}, submitted {}", message.message_id, message.sender, iso8601(message.submitted_at));
    println!("subject: {}", message.subject);
    for r in &message.recipients {
        let asked = if r.final_delivery { " (timely and reliable: final delivery asked for)" } else { "" };
        println!("\n{}: {}{asked}", r.recipient, r.status);
        if let Some(detail) = r.detail.as_deref().filter(|d| !d.is_empty()) {
            println!("  why: {detail}");
        }
        for e in &r.timeline {
            let detail = if e.detail.is_empty() { String::new() } else { format!("  {}", e.detail) };
            println!("  {}  {:<10}{detail}", iso8601(e.at), e.event);
        }
    }
    Ok(())
}

/// `--since`: a duration back from now (`90s`, `30m`, `12h`, `7d`) or a date (`2026-11-23`, UTC).
pub(super) fn parse_since(text: &str, now: i64) -> Result<i64, Failure> {
    let text = text.trim();
    if let Some(start) = crate::clock::parse_date(text) {
        return Ok(start);
    }
    let unit = text.chars().last().unwrap_or(' ');
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 0,
    };
    let amount: Option<i64> = text[..text.len() - unit.len_utf8().min(text.len())].parse().ok();
    match amount {
        Some(n) if seconds > 0 && n >= 0 => Ok(now - n * seconds),
        _ => Err(Failure::usage(format!(
            "--since {text:?}: give a duration back from now (90s, 30m, 12h, 7d) or a date (2026-11-23)"
        ))),
    }
}

pub(super) fn list(ctx: &Context, received: bool, since: Option<&str>) -> Result<(), Failure> {
    let now = ctx.now();
    let since = match since {
        Some(text) => parse_since(text, now)?,
        None => now - 7 * 86_400,
    };
    let queue = queue(ctx)?;
    if received {
        let messages = queue.received_since(since)?;
        if ctx.json {
            output::json(&messages);
            return Ok(());
        }
        let rows: Vec<Vec<String>> = messages
            .iter()
            .map(|m| {
                vec![
                    iso8601(m.delivered_at),
                    m.recipient.clone(),
                    m.sender.clone(),
                    m.kind.clone(),
                    m.subject.clone(),
                    m.message_id.clone(),
                ]
            })
            .collect();
        table(&["DELIVERED", "TO", "FROM (VERIFIED)", "KIND", "SUBJECT", "MESSAGE-ID"], &rows, "nothing received");
        return Ok(());
    }
    let messages = queue.sent_since(since)?;
    if ctx.json {
        output::json(&messages);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = messages.iter().flat_map(sent_rows).collect();
    table(&["SUBMITTED", "FROM", "TO", "STATUS", "SUBJECT", "MESSAGE-ID"], &rows, "nothing sent");
    Ok(())
}

fn sent_rows(m: &SentMessage) -> Vec<Vec<String>> {
    m.recipients
        .iter()
        .map(|r| {
            vec![
                iso8601(m.submitted_at),
                m.sender.clone(),
                r.recipient.clone(),
                r.status.to_string(),
                m.subject.clone(),
                m.message_id.clone(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_dates() {
        let now = 1_800_000_000;
        assert_eq!(parse_since("30m", now).unwrap(), now - 1800);
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400);
        assert_eq!(parse_since("1970-01-02", now).unwrap(), 86_400);
        for bad in ["", "m", "-5h", "5w", "soon", "2026-02-30"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
