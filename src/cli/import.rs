//! `hisp address import FILE`: a large HISP's addresses from a CSV file, in batches of one
//! transaction each. A bad row is refused with its line number and the rest go on; what was
//! committed stays if the run is stopped, and running the file again refuses only what is in.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::{Context, Failure};
use crate::address::{DirectAddress, Owner};
use crate::dev_ca::DevCa;
use crate::password;
use crate::store::{Imported, NewAddress, Store};

/// The columns a file may have, by the name in its header row.
const COLUMNS: &[&str] = &["address", "practice", "password_hash", "certificate"];

/// Refusals printed (all of them with --json).
const SHOWN_REFUSALS: usize = 20;

#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// A CSV file ("-": standard input) with a header row naming its columns: `address`
    /// (required), `practice` (the practice of the address's domain: a domain not hosted yet is
    /// added to it, a new practice starting unproofed), `password_hash` (an argon2id hash in PHC
    /// form; empty: no password, set one later with `hisp address passwd`), `certificate`
    /// (`issue`: a certificate from the development CA, for a proofed practice; empty: none).
    pub file: PathBuf,
    /// Addresses committed per transaction.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
}

/// One row that was read and checked.
struct Row {
    new: NewAddress,
    certificate: bool,
}

#[derive(Default)]
struct Tally {
    read: u64,
    added: u64,
    domains_added: u64,
    certificates: u64,
    refused: Vec<(u64, String)>,
}

/// Imports the file; the exit status is 0 when every row went in, 1 when some were refused.
pub(super) fn run(ctx: &Context, args: &ImportArgs) -> Result<i32, Failure> {
    let store = ctx.store()?;
    let started = Instant::now();
    let input: Box<dyn Read> = if args.file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.file)
            .map_err(|e| Failure::new("io", format!("cannot read {}: {e}", args.file.display())))?;
        Box::new(std::io::BufReader::with_capacity(1 << 16, file))
    };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
    let columns = Columns::of(reader.headers().map_err(|e| Failure::usage(format!("the header row: {e}")))?)?;
    let progress = !ctx.json && std::io::stderr().is_terminal();
    let mut tally = Tally::default();
    let mut certifier = Certifier::new(ctx);
    let mut batch: Vec<Row> = Vec::with_capacity(args.batch as usize);
    for record in reader.records() {
        tally.read += 1;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(tally.read + 1, |p| p.line());
                tally.refused.push((line, format!("not a CSV row ({e}; a field holding a comma is quoted)")));
                continue;
            }
        };
        let line = record.position().map_or(tally.read + 1, |p| p.line());
        match columns.row(&record, line) {
            Ok(row) => batch.push(row),
            Err(why) => tally.refused.push((line, why)),
        }
        if batch.len() == args.batch as usize {
            commit(store, &mut batch, &mut certifier, &mut tally)?;
            if progress {
                eprint!("\r{} rows read, {} addresses added, {} refused", tally.read, tally.added, tally.refused.len());
            }
        }
    }
    commit(store, &mut batch, &mut certifier, &mut tally)?;
    if progress {
        eprintln!();
    }
    // Rows refused when read and when committed, in the file's order.
    tally.refused.sort_by_key(|(line, _)| *line);
    report(ctx, args, &tally, started.elapsed().as_secs_f64());
    Ok(if tally.refused.is_empty() { 0 } else { 1 })
}

/// Which field of a row holds each column.
struct Columns {
    address: usize,
    practice: Option<usize>,
    password_hash: Option<usize>,
    certificate: Option<usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord) -> Result<Columns, Failure> {
        let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        if let Some(unknown) = header.iter().find(|h| !COLUMNS.iter().any(|c| h.eq_ignore_ascii_case(c))) {
            return Err(Failure::usage(format!(
                "the header row names a column {unknown:?}; the columns are {}",
                COLUMNS.join(", ")
            )));
        }
        let address = find("address").ok_or_else(|| {
            Failure::usage(format!("the header row has no `address` column ({})", COLUMNS.join(", ")))
        })?;
        Ok(Columns {
            address,
            practice: find("practice"),
            password_hash: find("password_hash"),
            certificate: find("certificate"),
        })
    }

    /// The row at `line`, checked, or why it is refused.
    fn row(&self, record: &csv::StringRecord, line: u64) -> Result<Row, String> {
        let field = |at: Option<usize>| at.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        let text = field(Some(self.address)).ok_or("no address")?;
        let address = DirectAddress::parse(text).map_err(|e| e.to_string())?;
        let practice = field(self.practice).map(str::to_string);
        if practice.as_ref().is_some_and(|p| p.len() > 200 || p.chars().any(char::is_control)) {
            return Err("the practice name is longer than 200 bytes or holds control characters".into());
        }
        let password_hash = field(self.password_hash).map(str::to_string);
        if let Some(hash) = &password_hash {
            password::check_stored(hash).map_err(|e| format!("password_hash: {e}"))?;
        }
        let certificate = match field(self.certificate) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("issue") => true,
            Some(v) if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("no") => false,
            Some(other) => return Err(format!("certificate: {other:?} is not `issue` or empty")),
        };
        Ok(Row { new: NewAddress { line, address, practice, password_hash }, certificate })
    }
}

/// Commits `batch` (emptied) and issues the certificates its added rows ask for.
fn commit(
    store: &dyn Store,
    batch: &mut Vec<Row>,
    certifier: &mut Certifier,
    tally: &mut Tally,
) -> Result<(), Failure> {
    if batch.is_empty() {
        return Ok(());
    }
    let news: Vec<NewAddress> = batch.iter().map(|r| r.new.clone()).collect();
    let outcomes = store.import_addresses(&news)?;
    for (row, outcome) in batch.drain(..).zip(outcomes) {
        match outcome {
            Imported::Added { domain_added } => {
                tally.added += 1;
                tally.domains_added += u64::from(domain_added);
                if row.certificate {
                    match certifier.issue(store, &row.new.address) {
                        Ok(()) => tally.certificates += 1,
                        Err(why) => tally.refused.push((row.new.line, format!("added, but no certificate: {why}"))),
                    }
                }
            }
            Imported::Refused(why) => tally.refused.push((row.new.line, why)),
        }
    }
    Ok(())
}

/// Issues certificates from the development CA, loaded when the first is asked for.
struct Certifier<'a> {
    ctx: &'a Context,
    ca: Option<Result<(DevCa, crate::kek::Kek), String>>,
}

impl<'a> Certifier<'a> {
    fn new(ctx: &'a Context) -> Self {
        Certifier { ctx, ca: None }
    }

    fn issue(&mut self, store: &dyn Store, address: &DirectAddress) -> Result<(), String> {
        let ctx = self.ctx;
        let ca = self.ca.get_or_insert_with(|| {
            let kek = ctx.kek().map_err(|e| e.message)?;
            let ca = DevCa::load(store, &kek).map_err(|e| e.to_string())?;
            Ok((ca, kek))
        });
        let (ca, kek) = ca.as_ref().map_err(Clone::clone)?;
        let config = &ctx.config.ca;
        let owner = Owner::Address(address.clone());
        ca.issue_stored(store, kek, &owner, config.key_bits, ctx.now(), config.validity_days, &config.base_url)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn report(ctx: &Context, args: &ImportArgs, tally: &Tally, seconds: f64) {
    if ctx.json {
        let refused: Vec<_> = tally.refused.iter().map(|(line, why)| json!({ "line": line, "error": why })).collect();
        super::output::json(&json!({
            "ok": tally.refused.is_empty(),
            "rows": tally.read,
            "imported": tally.added,
            "domains_added": tally.domains_added,
            "certificates_issued": tally.certificates,
            "refused": refused,
            "seconds": (seconds * 100.0).round() / 100.0,
        }));
        return;
    }
    println!(
        "imported {} of {} addresses from {} in {seconds:.1} s ({} domains added, {} certificates issued)",
        tally.added,
        tally.read,
        args.file.display(),
        tally.domains_added,
        tally.certificates
    );
    if !tally.refused.is_empty() {
        println!("refused {} rows:", tally.refused.len());
        for (line, why) in tally.refused.iter().take(SHOWN_REFUSALS) {
            println!("  line {line}: {why}");
        }
        if tally.refused.len() > SHOWN_REFUSALS {
            println!("  ... and {} more (--json lists every one)", tally.refused.len() - SHOWN_REFUSALS);
        }
    }
}
