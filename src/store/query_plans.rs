//! Every SQL statement in the node's source, planned by SQLite against the full schema: none may
//! read the whole of a table that grows with the network (addresses, certificates, messages,
//! documents...). On a store of 1.6 million addresses one such scan took 1-292 s where a search of
//! an index takes a millisecond. The statements are found in the source (string literals that
//! begin an SQL statement, with the `const` pieces they are formatted from), not from a run, so a
//! statement no test reaches is planned too.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::Connection;

/// Tables whose rows grow with addresses or messages: a full scan of one is a slow path.
const LARGE_TABLES: &[&str] = &[
    "addresses",
    "certificates",
    "private_keys",
    "revocations",
    "queue_messages",
    "queue_recipients",
    "mailbox_deliveries",
    "received_attachments",
    "tracked",
    "tracking_events",
    "receipts",
    "referrals",
    "documents",
    "audit_log",
    "invitations",
    "invitation_notices",
    "accounts",
    "connections",
    "listings",
    "contacts",
    "secure_messages",
    "secure_attachments",
    "secure_deliveries",
    "held_messages",
];

/// Statements that read a whole large table because that is what they are for, each with why
/// (matched by a piece of their text).
const WHOLE_TABLE_BY_DESIGN: &[(&str, &str)] = &[
    ("FROM addresses a\n             JOIN domains d ON d.id = a.domain_id ORDER BY a.address", "every address listed"),
    ("FROM certificates ORDER BY owner", "every certificate listed"),
    ("FROM revocations ORDER BY id", "the development CA's CRL lists every revocation"),
    ("FROM received_attachments ORDER BY id DESC", "every received attachment listed"),
    ("FROM audit_log ORDER BY id DESC LIMIT", "newest first: stops at its LIMIT"),
    ("SELECT id FROM queue_messages WHERE ?1", "`hisp queue list --all`: every message in the queue"),
    ("ORDER BY id LIMIT 500)", "the queue's purge walks its oldest messages and stops at its LIMIT"),
    ("WHERE typeof(", "fields sealed once, at the first start after the upgrade that sealed them"),
];

/// What a `{name}` formatted into a statement stands for when planning it: a number written into
/// the statement, or a column chosen from a fixed set (any column plans alike).
const FORMATTED: &[(&str, &str)] = &[("{limit}", "100"), ("{window}", "500"), ("{column}", "rowid")];

/// An SQL literal of the source, where it is.
#[derive(Debug)]
struct Statement {
    file: String,
    line: usize,
    sql: String,
}

/// Every string literal of `source` outside its test module, with the line it starts on.
fn string_literals(source: &str) -> Vec<(usize, String)> {
    let code = match source.find("\n#[cfg(test)]\nmod tests") {
        Some(end) => &source[..end],
        None => source,
    };
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            // A character literal ('"' or '\"'), not the start of a string.
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') => i += 3,
            // Raw strings hold JSON and DDL here, never a statement: skipped whole.
            b'r' if bytes.get(i + 1) == Some(&b'#') && bytes.get(i + 2) == Some(&b'"') => {
                let end = code[i + 3..].find("\"#").map_or(bytes.len(), |e| i + 3 + e + 2);
                line += code[i..end].matches('\n').count();
                i = end;
                continue;
            }
            b'"' => {
                let start_line = line;
                let mut text = String::new();
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        match bytes.get(i + 1) {
                            // A line continuation: the newline and the next line's indentation go.
                            Some(b'\n') => {
                                line += 1;
                                i += 2;
                                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                                    line += usize::from(bytes[i] == b'\n');
                                    i += 1;
                                }
                                continue;
                            }
                            Some(b'n') => text.push('\n'),
                            Some(&c) => text.push(c as char),
                            None => {}
                        }
                        i += 2;
                        continue;
                    }
                    line += usize::from(bytes[i] == b'\n');
                    let ch = code[i..].chars().next().unwrap_or(' ');
                    text.push(ch);
                    i += ch.len_utf8();
                }
                out.push((start_line, text));
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The `const NAME: &str = "...";` of `source`, by name.
fn string_consts(source: &str) -> HashMap<String, String> {
    let literals = string_literals(source);
    let mut out = HashMap::new();
    for (number, text) in source.lines().enumerate() {
        let Some(rest) =
            text.trim_start().strip_prefix("const ").or_else(|| text.trim_start().strip_prefix("pub const "))
        else {
            continue;
        };
        let Some((name, ty)) = rest.split_once(':') else { continue };
        if !ty.trim_start().starts_with("&str") {
            continue;
        }
        // Its value: the first literal on its line or the next.
        if let Some((_, value)) = literals.iter().find(|(line, _)| *line == number + 1 || *line == number + 2) {
            out.insert(name.trim().to_string(), value.clone());
        }
    }
    out
}

/// `text` with each `{NAME}` replaced by the const of that name (repeatedly: consts use consts).
fn resolve(text: &str, consts: &HashMap<String, String>) -> String {
    let mut text = text.to_string();
    for _ in 0..4 {
        for (name, value) in consts {
            text = text.replace(&format!("{{{name}}}"), value);
        }
    }
    for (name, value) in FORMATTED {
        text = text.replace(name, value);
    }
    text
}

fn is_statement(text: &str) -> bool {
    // The node writes SQL keywords in capitals; "replace" in a message is not a statement.
    let first = text.split_whitespace().next().unwrap_or("");
    matches!(first, "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "WITH" | "REPLACE")
}

/// Every SQL statement in the node's source (outside the migrations and the tests).
fn statements() -> Vec<Statement> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|p| (p.strip_prefix(&root).unwrap().display().to_string(), std::fs::read_to_string(p).unwrap()))
        .filter(|(name, _)| name != "store/migrations.rs" && name != "store/query_plans.rs")
        .collect();
    let consts: HashMap<String, String> = sources.iter().flat_map(|(_, s)| string_consts(s)).collect();
    let mut out = Vec::new();
    for (file, source) in &sources {
        for (line, text) in string_literals(source) {
            let sql = resolve(&text, &consts);
            if is_statement(&sql) {
                out.push(Statement { file: file.clone(), line, sql });
            }
        }
    }
    out
}

/// The table each name in `sql` stands for: tables by their own name and by their aliases.
fn table_names(sql: &str) -> HashMap<String, String> {
    const NOT_ALIASES: &[&str] = &[
        "WHERE",
        "JOIN",
        "LEFT",
        "INNER",
        "CROSS",
        "ON",
        "ORDER",
        "GROUP",
        "LIMIT",
        "UNION",
        "SET",
        "VALUES",
        "USING",
        "HAVING",
        "AND",
        "OR",
        "INDEXED",
        "NOT",
        "SELECT",
        "RETURNING",
        "DEFAULT",
        "WINDOW",
    ];
    let words: Vec<&str> =
        sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    let mut out = HashMap::new();
    for (i, word) in words.iter().enumerate() {
        if !["FROM", "JOIN", "UPDATE", "INTO"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
            continue;
        }
        let Some(table) = words.get(i + 1) else { continue };
        out.insert(table.to_string(), table.to_string());
        let alias = match words.get(i + 2) {
            Some(w) if w.eq_ignore_ascii_case("AS") => words.get(i + 3),
            other => other,
        };
        if let Some(alias) = alias.filter(|a| !NOT_ALIASES.iter().any(|k| a.eq_ignore_ascii_case(k))) {
            out.insert(alias.to_string(), table.to_string());
        }
    }
    out
}

/// The large tables `sql` reads whole, as SQLite plans it on `conn`. Walking a partial index is
/// not reading the table: such an index holds only the rows in a given state (in flight, waiting).
fn whole_table_reads(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let names = table_names(sql);
    let partial: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    // Planned with its parameters unbound (NULL), as EXPLAIN allows.
    let mut rows = stmt.raw_query();
    let mut details: Vec<String> = Vec::new();
    while let Some(row) = rows.next()? {
        details.push(row.get(3)?);
    }
    Ok(details
        .iter()
        .filter_map(|d| d.strip_prefix("SCAN "))
        .filter(|rest| !partial.iter().any(|index| rest.ends_with(&format!(" USING INDEX {index}"))))
        .filter_map(|rest| {
            let name = rest.split_whitespace().next()?;
            let table = names.get(name).map_or(name, String::as_str);
            LARGE_TABLES.contains(&table).then(|| rest.to_string())
        })
        .collect())
}

/// A database with every migration run and the node's SQL functions.
fn schema() -> Connection {
    let store = super::SqliteStore::in_memory("plans").unwrap();
    store.conn
}

#[test]
fn no_statement_reads_a_whole_large_table() {
    let conn = schema();
    let statements = statements();
    assert!(statements.len() > 150, "the source's statements were found: {}", statements.len());
    let mut failures = BTreeMap::new();
    for s in &statements {
        if WHOLE_TABLE_BY_DESIGN.iter().any(|(piece, _)| s.sql.contains(piece)) {
            continue;
        }
        match whole_table_reads(&conn, &s.sql) {
            Ok(scans) if scans.is_empty() => {}
            Ok(scans) => {
                failures.insert(format!("{}:{}", s.file, s.line), format!("scans {}\n    {}", scans.join(", "), s.sql));
            }
            Err(e) => {
                failures.insert(format!("{}:{}", s.file, s.line), format!("does not plan ({e})\n    {}", s.sql));
            }
        }
    }
    let report: Vec<String> = failures.iter().map(|(at, why)| format!("{at}: {why}")).collect();
    assert!(report.is_empty(), "{} statements read a whole large table:\n{}", report.len(), report.join("\n\n"));
}

#[test]
fn every_reference_to_a_large_table_has_an_index_to_find_it_by() {
    // A foreign key is checked (and cascades) by looking up its referencing column: without an
    // index there, deleting one parent row reads the whole child table.
    let conn = schema();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut missing = Vec::new();
    for table in tables.iter().filter(|t| LARGE_TABLES.contains(&t.as_str())) {
        let keys: Vec<(String, String)> = conn
            .prepare(&format!("SELECT \"from\", \"table\" FROM pragma_foreign_key_list('{table}')"))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for (column, parent) in keys {
            let indexed: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM pragma_index_list(?1) l, pragma_index_info(l.name) i
                     WHERE i.seqno = 0 AND i.name = ?2 AND l.partial = 0",
                    [table, &column],
                    |r| r.get(0),
                )
                .unwrap();
            if !indexed {
                missing.push(format!("{table}.{column} (-> {parent})"));
            }
        }
    }
    assert!(missing.is_empty(), "references without an index: {}", missing.join(", "));
}

#[test]
fn the_finder_reads_literals_consts_and_aliases_as_written() {
    let source = "const COLUMNS: &str = \"a, b\";\nfn f() { let c = '\"'; run(&format!(\"SELECT {COLUMNS} FROM t x\\\n    WHERE x.a = 1\")); // \"SELECT no\"\n}\n#[cfg(test)]\nmod tests { \"SELECT 1\" }";
    let literals = string_literals(source);
    assert_eq!(literals, [(1, "a, b".to_string()), (2, "SELECT {COLUMNS} FROM t xWHERE x.a = 1".to_string())]);
    let consts = string_consts(source);
    assert_eq!(resolve(&literals[1].1, &consts), "SELECT a, b FROM t xWHERE x.a = 1");
    let names = table_names("SELECT * FROM addresses a JOIN domains AS d ON d.id = a.domain_id WHERE 1");
    assert_eq!(names.get("a").map(String::as_str), Some("addresses"));
    assert_eq!(names.get("d").map(String::as_str), Some("domains"));
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE addresses (id INTEGER PRIMARY KEY, domain_id INTEGER, address TEXT UNIQUE)")
        .unwrap();
    let scans = whole_table_reads(&conn, "SELECT count(*) FROM addresses a WHERE a.domain_id = ?1").unwrap();
    assert_eq!(scans, ["a"]);
    assert!(whole_table_reads(&conn, "SELECT id FROM addresses WHERE address = ?1").unwrap().is_empty());
}
