//! The daemon's log: one line per event on stderr, with its time, level, where it comes from and
//! the span it happened in (an SMTP session and its peer, a queue job, an API connection), as
//! text for a person or JSON for a log shipper (`[server] log_format`). `HISP_LOG` filters it
//! (`info` by default; e.g. `warn,hisp::serve=debug`). Never a password, token, key, subject or
//! message content: events carry addresses, Message-IDs, peers and outcomes only.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

impl Format {
    pub(crate) fn parse(text: &str) -> Result<Format, String> {
        match text {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("log_format {other:?}: \"text\" or \"json\"")),
        }
    }
}

/// The filter of `HISP_LOG` (a level, and levels per module: `info,hisp::smtp=debug`).
pub(crate) fn filter(spec: Option<&str>) -> Result<Targets, String> {
    spec.unwrap_or("info").parse::<Targets>().map_err(|e| format!("HISP_LOG: {e}"))
}

/// Sends this process's events to stderr from now on (once: a second call changes nothing).
pub(crate) fn init(format: Format) -> Result<(), String> {
    let filter = filter(std::env::var("HISP_LOG").ok().as_deref())?;
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = match format {
        Format::Text => tracing_subscriber::registry().with(lines.with_filter(filter)).try_init(),
        Format::Json => tracing_subscriber::registry()
            .with(lines.json().with_current_span(true).with_span_list(true).with_filter(filter))
            .try_init(),
    };
    // Already installed (the demo runs nodes in one process): the first one stays.
    let _ = installed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_filters_are_read_or_refused_with_why() {
        assert_eq!(Format::parse("json"), Ok(Format::Json));
        assert!(Format::parse("xml").unwrap_err().contains("\"text\" or \"json\""));
        assert!(filter(None).is_ok());
        assert!(filter(Some("warn,hisp::smtp=debug")).is_ok());
        assert!(filter(Some("hisp=loud")).unwrap_err().starts_with("HISP_LOG"));
    }
}
