//! `hisp xdm`: IHE XDM packages for operators. `inspect` checks a package as a received one is
//! checked and shows its metadata; `unpack` writes its checked documents into a new folder;
//! `pack` makes one from files, its metadata from their C-CDA headers.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{output, Context, Failure};
use crate::xdm::compose::{self, File, Parties};
use crate::xdm::package::{self, Limits, Package};

#[derive(Subcommand, Debug)]
pub(crate) enum XdmCommand {
    /// Check a package as a received one is checked (entry names, ZIP bomb ratio and size, the
    /// metadata, each document's size and SHA-1) and show its submission set and documents.
    #[command(after_help = "Exit status: 0 the package passes, 1 it is refused (the reason is said), 2 usage error.")]
    Inspect {
        /// The ZIP file.
        file: PathBuf,
    },
    /// Check a package, then write its checked documents under a new folder, at their paths in
    /// the package (IHE_XDM/<subset>/<file>), 0600; nothing is written from a refused package.
    Unpack {
        /// The ZIP file.
        file: PathBuf,
        /// A folder that does not exist yet (or is empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Make a package of files (one submission set): a C-CDA's header gives its patient, author,
    /// type, title and time; any other file is described by its type.
    Pack {
        /// The documents, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The sender's Direct address (the author's telecommunication).
        #[arg(long, value_name = "ADDRESS")]
        from: String,
        /// A recipient's Direct address (intendedRecipient); repeat for several.
        #[arg(long, value_name = "ADDRESS")]
        to: Vec<String>,
        /// The patient's identifier at the sender, for files that are not C-CDA documents (those
        /// name their patient).
        #[arg(long, value_name = "ID")]
        patient_id: Option<String>,
        /// The ZIP file to write (0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub(super) fn run(ctx: &Context, command: XdmCommand) -> Result<(), Failure> {
    match command {
        XdmCommand::Inspect { file } => inspect(ctx, &file),
        XdmCommand::Unpack { file, out } => unpack(ctx, &file, &out),
        XdmCommand::Pack { files, from, to, patient_id, out, force } => {
            pack(ctx, &files, &from, &to, patient_id.as_deref(), &out, force)
        }
    }
}

fn read_package(file: &Path) -> Result<Package, Failure> {
    let bytes = std::fs::read(file).map_err(|e| Failure::new("io", format!("cannot read {}: {e}", file.display())))?;
    package::read(&bytes, Limits::default()).map_err(|refused| Failure::new("refused", format!("refused: {refused}")))
}

fn inspect(ctx: &Context, file: &Path) -> Result<(), Failure> {
    let package = read_package(file)?;
    if ctx.json {
        let subsets: Vec<_> = package
            .subsets
            .iter()
            .map(|s| {
                let documents: Vec<_> =
                    s.documents.iter().map(|d| json!({ "path": d.path, "entry": d.entry })).collect();
                json!({ "name": s.name, "submission_set": s.submission_set, "documents": documents })
            })
            .collect();
        output::json(&json!({ "subsets": subsets, "warnings": package.warnings }));
        return Ok(());
    }
    for subset in &package.subsets {
        let set = &subset.submission_set;
        println!("subset {}: submitted {} by source {}", subset.name, set.submission_time, set.source_id);
        for recipient in &set.intended_recipients {
            println!("  for {recipient}");
        }
        let rows: Vec<Vec<String>> = subset
            .documents
            .iter()
            .map(|d| {
                let e = &d.entry;
                vec![
                    d.path.clone(),
                    e.mime_type.clone(),
                    e.size.to_string(),
                    e.type_code.as_ref().map(|c| format!("{} {}", c.code, c.display)).unwrap_or_default(),
                    e.title.clone().unwrap_or_default(),
                    e.patient_id.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(&["PATH", "TYPE", "BYTES", "CODE", "TITLE", "PATIENT"], &rows, "no documents");
    }
    for warning in &package.warnings {
        println!("warning: {warning}");
    }
    println!("passes: names, sizes, ratio, metadata, each document's size and SHA-1");
    Ok(())
}

fn unpack(ctx: &Context, file: &Path, out: &Path) -> Result<(), Failure> {
    let package = read_package(file)?;
    let fail = |what: &Path, e: std::io::Error| Failure::new("io", format!("cannot write {}: {e}", what.display()));
    match std::fs::read_dir(out).map(|mut entries| entries.next().is_some()) {
        Ok(true) => return Err(Failure::new("exists", format!("{} is not empty", out.display()))),
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(out, e)),
    }
    let mut written = Vec::new();
    for subset in &package.subsets {
        for doc in &subset.documents {
            // The path passed the package's name rules: plain relative components only.
            let target = out.join(&doc.path);
            if let Some(folder) = target.parent() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(folder).map_err(|e| fail(folder, e))?;
            }
            output::write_new_file(&target, &doc.content, false, 0o600)?;
            written.push(doc.path.clone());
        }
    }
    if ctx.json {
        output::json(&json!({ "written": written, "folder": out.display().to_string(), "warnings": package.warnings }));
    } else {
        println!("wrote {} document(s) under {}", written.len(), out.display());
        for warning in &package.warnings {
            println!("warning: {warning}");
        }
    }
    Ok(())
}

fn pack(
    ctx: &Context,
    files: &[PathBuf],
    from: &str,
    to: &[String],
    patient_id: Option<&str>,
    out: &Path,
    force: bool,
) -> Result<(), Failure> {
    let check = |a: &str| {
        crate::address::DirectAddress::parse(a).map(|a| a.to_string()).map_err(|e| Failure::usage(format!("{a}: {e}")))
    };
    let from = check(from)?;
    let to: Vec<String> = to.iter().map(|a| check(a)).collect::<Result<_, _>>()?;
    if let Some(id) = patient_id {
        crate::onboarding::referral::check_token(id, 64).map_err(|e| Failure::usage(format!("--patient-id: {e}")))?;
    }
    let contents: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            std::fs::read(f)
                .map(|c| (name, c))
                .map_err(|e| Failure::new("io", format!("cannot read {}: {e}", f.display())))
        })
        .collect::<Result<_, _>>()?;
    let files: Vec<File> = contents
        .iter()
        .map(|(name, content)| File { filename: name, content_type: "application/octet-stream", content })
        .collect();
    let source_oid = compose::oid_for(&ctx.config.server.hostname);
    let parties =
        Parties { sender: &from, recipients: &to, source_oid: &source_oid, patient_id, now: ctx.now(), seed: None };
    let (zip, set, entries) = compose::package(&files, &parties).map_err(|e| Failure::new("xdm", e))?;
    output::write_new_file(out, &zip, force, 0o600)?;
    if ctx.json {
        output::json(&json!({ "file": out.display().to_string(), "submission_set": set, "documents": entries }));
    } else {
        println!("wrote {} ({} document(s), submission set {})", out.display(), entries.len(), set.unique_id);
    }
    Ok(())
}
