//! `hisp backup FILE` and `hisp restore FILE`: a consistent copy of the node's database, made
//! while it runs, and that copy put back as a node's database.

use std::path::PathBuf;

use serde_json::json;

use super::provision::done;
use super::{Context, Failure};

#[derive(clap::Args, Debug)]
pub(crate) struct BackupArgs {
    /// The new file to write (0600). It holds the node's keys and PHI sealed under the KEK:
    /// restoring it needs the same HISP_KEK.
    file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RestoreArgs {
    /// A file `hisp backup` wrote.
    file: PathBuf,
}

pub(super) fn backup(ctx: &Context, args: BackupArgs) -> Result<(), Failure> {
    if args.file.exists() {
        if !args.force {
            return Err(Failure::new("exists", format!("{} exists; give --force to replace it", args.file.display())));
        }
        std::fs::remove_file(&args.file)
            .map_err(|e| Failure::new("io", format!("cannot replace {}: {e}", args.file.display())))?;
    }
    let (version, bytes) = crate::store::backup(&ctx.db_path, &args.file)?;
    done(
        ctx,
        &format!(
            "backed up {} to {} ({bytes} bytes, schema version {version}); it needs the same HISP_KEK to be used",
            ctx.db_path.display(),
            args.file.display()
        ),
        json!({ "database": ctx.db_path, "file": args.file, "bytes": bytes, "schema_version": version }),
    );
    Ok(())
}

pub(super) fn restore(ctx: &Context, args: RestoreArgs) -> Result<(), Failure> {
    let (version, bytes) = crate::store::restore(&args.file, &ctx.db_path)?;
    done(
        ctx,
        &format!(
            "restored {} as {} ({bytes} bytes, schema version {version}); start hisp serve with the same HISP_KEK",
            args.file.display(),
            ctx.db_path.display()
        ),
        json!({ "database": ctx.db_path, "file": args.file, "bytes": bytes, "schema_version": version }),
    );
    Ok(())
}
