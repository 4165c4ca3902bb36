//! `hisp http cert export`: the certificate the REST API and the portal serve, for an EHR's
//! client to trust (curl's `--cacert`).

use std::path::PathBuf;

use clap::Subcommand;

use super::{Context, Failure};

#[derive(Subcommand, Debug)]
pub(crate) enum HttpCommand {
    /// The certificate the API serves: [http] tls_cert_file's, else the node's own self-signed one
    /// (made now if `hisp serve` has not made it yet; kept across restarts).
    #[command(subcommand)]
    Cert(HttpCertCommand),
}

#[derive(Subcommand, Debug)]
pub(crate) enum HttpCertCommand {
    /// Write it in PEM, for clients to trust (curl --cacert FILE).
    Export {
        /// A new file to write (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace FILE if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
}

pub(super) fn http(ctx: &Context, command: HttpCommand) -> Result<(), Failure> {
    let HttpCommand::Cert(HttpCertCommand::Export { out, force }) = command;
    let configured = match (&ctx.config.http.tls_cert_file, &ctx.config.server.tls_cert_file) {
        (Some(file), _) => Some(file),
        (None, Some(file)) if ctx.config.server.tls_key_file.is_some() => Some(file),
        _ => None,
    };
    let cert = match configured {
        Some(file) => super::output::read_certs(file)?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::new("bad-input", format!("{} holds no certificate", file.display())))?,
        None => {
            let store = ctx.store()?;
            let (cert, _, _) =
                crate::identities::self_signed_tls(store, &ctx.kek()?, &ctx.config.server.hostname, ctx.now())
                    .map_err(|e| Failure::new("tls", e.to_string()))?;
            cert
        }
    };
    super::certs::write_cert(ctx, &cert, false, out.as_deref(), force)
}
