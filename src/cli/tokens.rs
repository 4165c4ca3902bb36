//! `hisp token`: bearer tokens for the REST API, one per EHR integration.

use clap::Subcommand;
use serde_json::json;

use super::output::{self, table};
use super::{Context, Failure};
use crate::clock::iso8601;
use crate::http::tokens;

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Create a token for an EHR integration and print it (once: only its hash is kept).
    ///
    /// With --practice the token acts for that practice. Without, it may set up one new practice
    /// through the API (POST /v1/practice, the EHR's "Direct setup") and acts for it from then on.
    Create {
        /// A name for the integration, e.g. "kareo-smith-pediatrics".
        #[arg(value_parser = super::output::plain_line)]
        name: String,
        /// The practice (name or Direct domain) the token acts for.
        #[arg(long)]
        practice: Option<String>,
    },
    /// The tokens, whom they act for, and whether they are revoked.
    List,
    /// Revoke a token: requests with it are refused from now on.
    Revoke {
        /// The token's name (`hisp token list`).
        name: String,
    },
}

pub(super) fn run(ctx: &Context, command: TokenCommand) -> Result<(), Failure> {
    let store = ctx.node_store()?;
    match command {
        TokenCommand::Create { name, practice } => {
            let name = name.trim();
            if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(Failure::usage("a token's name: 1 to 100 characters, no spaces"));
            }
            let practice = practice.map(|p| store.practice(&p)).transpose()?;
            let (token, digest) = tokens::generate().map_err(|e| Failure::new("crypto", e.to_string()))?;
            store.add_token(name, practice.as_ref().map(|p| p.id), &digest)?;
            let practice = practice.map(|p| p.name);
            if ctx.json {
                output::json(&json!({ "name": name, "practice": practice, "token": token }));
            } else {
                println!("{token}");
                eprintln!(
                    "token {name} created for {}; it is shown only now: give it to the EHR as `Authorization: Bearer <token>`",
                    practice.as_deref().unwrap_or("a practice it will set up (POST /v1/practice)")
                );
            }
        }
        TokenCommand::List => {
            let list = store.tokens()?;
            if ctx.json {
                output::json(&list);
                return Ok(());
            }
            let rows = list
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.practice.clone().unwrap_or_else(|| "(setup pending)".into()),
                        iso8601(t.created_at),
                        t.revoked_at.map(iso8601).unwrap_or_else(|| "live".into()),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["TOKEN", "PRACTICE", "CREATED", "STATE"], &rows, "no API tokens");
        }
        TokenCommand::Revoke { name } => {
            store.revoke_token(&name)?;
            if ctx.json {
                output::json(&json!({ "revoked": name }));
            } else {
                println!("revoked token {name}");
            }
        }
    }
    Ok(())
}
