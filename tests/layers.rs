//! The modules stand in one-way layers (README, "Layout"): a module may use only modules of lower
//! layers. This test reads every source file's `crate::` paths (test modules left out) and fails
//! on an arrow that goes sideways or up, and on a top-level module no layer names, so the knot of
//! modules that used each other in circles cannot come back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first. Modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &[
        "address",
        "admission",
        "clock",
        "ccda_view",
        "deadline",
        "der",
        "failure",
        "free_space",
        "logging",
        "password",
        "printable",
        "throttle",
        "totp",
        "wiped",
    ],
    &["dns", "login_cache", "xdm"],
    &["fetch", "pki"],
    &["store"],
    &["kek", "trust"],
    &["smime"],
    &["bundle", "discovery", "dns_server", "identities", "notify", "smtp", "xdr"],
    &["config", "dev_ca"],
    &["onboarding"],
    &["network"],
    &["node"],
    &["http"],
    &["serve"],
    &["demo", "fuzzing"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of a file without its `#[cfg(test)]` items (a `mod … { … }` block or one line).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let line_end = after.find('\n').map_or(after.len(), |i| i + 1);
        let item = &after[line_end..];
        let open = item.find('{');
        let semi = item.find(';');
        rest = match (open, semi) {
            // A block: skip to its matching brace.
            (Some(open), semi) if semi.is_none_or(|s| open < s) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item.char_indices().skip(open) {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                &item[end..]
            }
            (_, Some(semi)) => &item[semi + 1..],
            _ => "",
        };
    }
    out.push_str(rest);
    out
}

fn identifier(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// The top-level modules `text` names through `crate::`.
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let after = &text[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // `use crate::{a, b::c, d::{e, f}}`: the first name of each top-level item.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(identifier(&group[i..]).to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(identifier(after).to_string());
        }
    }
    found
}

/// Source files that are test modules as a whole (declared under `#[cfg(test)]`).
fn test_only_files(root: &Path, files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "#[cfg(test)]" {
                continue;
            }
            // The declaration may carry a #[path] of its own.
            let mut path_attr = None;
            for next in lines.iter().skip(i + 1).take(3) {
                let next = next.trim();
                if let Some(p) = next.strip_prefix("#[path = \"").and_then(|p| p.strip_suffix("\"]")) {
                    path_attr = Some(p.to_string());
                } else if let Some(name) = next.strip_prefix("mod ").and_then(|n| n.strip_suffix(';')) {
                    let dir = file.parent().unwrap_or(root);
                    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                    let base = if matches!(stem, "mod" | "lib") { dir.to_path_buf() } else { dir.join(stem) };
                    match &path_attr {
                        Some(p) => out.insert(dir.join(p)),
                        None => {
                            out.insert(base.join(format!("{name}.rs"))) || out.insert(base.join(name).join("mod.rs"))
                        }
                    };
                    break;
                }
            }
        }
    }
    out
}

fn arrows() -> (Vec<String>, BTreeSet<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let tests = test_only_files(&root, &files);
    let mut wrong = Vec::new();
    let mut modules = BTreeSet::new();
    for file in files.iter().filter(|f| !tests.contains(*f)) {
        let relative = file.strip_prefix(&root).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_str().unwrap().trim_end_matches(".rs");
        if matches!(top, "lib" | "main") {
            continue;
        }
        modules.insert(top.to_string());
        let Some(from) = layer_of(top) else {
            wrong.push(format!("{top} is in no layer: add it to LAYERS and to the README's Layout"));
            continue;
        };
        for used in uses(&without_tests(&std::fs::read_to_string(file).unwrap())) {
            if used == top {
                continue;
            }
            match layer_of(&used) {
                Some(to) if to < from => {}
                Some(_) => wrong.push(format!("{} uses {used}, which is not below {top}", relative.display())),
                None => wrong.push(format!("{} uses {used}, which is in no layer", relative.display())),
            }
        }
    }
    (wrong, modules)
}

#[test]
fn every_module_uses_only_the_layers_below_its_own() {
    let (wrong, modules) = arrows();
    assert!(wrong.is_empty(), "arrows that go sideways or up:\n{}", wrong.join("\n"));
    // Every layer's modules exist (a renamed module is renamed here too).
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(modules.contains(*module), "LAYERS names {module}, which is not a module of src/");
    }
}

/// Nothing above the store knows which database keeps the node's state: it names the store's
/// traits (`NodeStore`, `Queue`), never a backend's types or its driver, so a PostgreSQL backend
/// changes only `src/store/`.
#[test]
fn only_the_store_knows_the_database() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut wrong = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(root.join("store"))) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["rusqlite", "Sqlite", "sqlite"].iter().any(|name| code.contains(name)) {
                wrong.push(format!("{}:{}: {}", file.strip_prefix(&root).unwrap().display(), n + 1, line.trim()));
            }
        }
    }
    assert!(wrong.is_empty(), "SQLite named above the store:\n{}", wrong.join("\n"));
}

#[test]
fn the_reader_finds_arrows_in_every_form_and_leaves_tests_out() {
    let text = "use crate::smime::open;\nuse crate::{store::Store, pki::{self, ca}, address};\n\
                fn f() { crate::serve::start(); }\n#[cfg(test)]\nmod tests {\n    use crate::cli;\n    fn g() { if x { crate::demo::run(); } }\n}\n\
                #[cfg(test)]\nmod fixtures;\nfn h() { crate::queue::x(); }\n";
    let found: Vec<String> = uses(&without_tests(text)).into_iter().collect();
    assert_eq!(found, ["address", "pki", "queue", "serve", "smime", "store"]);
    // An upward arrow is one the layers refuse.
    assert!(layer_of("smime") < layer_of("serve"));
}
