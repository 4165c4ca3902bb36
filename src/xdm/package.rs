//! The XDM ZIP: read with bounds (every name a plain relative path, each entry at most `MAX_RATIO`
//! times its compressed size, all of them together at most `Limits::max_bytes` as actually
//! decompressed, not as declared), each document checked against its metadata; and written.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};

use super::metadata::{self, Metadata};
use super::{sha1_hex, DocumentEntry, Refused, SubmissionSet};

/// How much a package may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// All entries together, decompressed.
    pub max_bytes: u64,
    pub max_entries: usize,
    /// The most an entry may expand: deflate reaches about 1000; real documents, 5 to 20.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 128 << 20, max_entries: 10_000, max_ratio: 100 }
    }
}

/// A document of the package with what its metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub entry: DocumentEntry,
    /// Where it is in the package ("IHE_XDM/SUBSET01/DOC0001.XML").
    pub path: String,
    pub content: Vec<u8>,
}

/// One submission set of the package (`IHE_XDM/<name>/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subset {
    pub name: String,
    pub submission_set: SubmissionSet,
    pub documents: Vec<Document>,
}

/// A package that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub subsets: Vec<Subset>,
    /// What the package lacks that XDM asks for but that does not stop its documents being
    /// filed (INDEX.HTM, README.TXT).
    pub warnings: Vec<String>,
}

/// Checks an entry's name: a relative path of plain components, printable, no backslash or
/// colon (Windows separators and drives), no "." or ".."; a directory's ends with '/'.
pub(crate) fn plain_path(raw: &[u8]) -> Result<String, Refused> {
    let shown = || String::from_utf8_lossy(raw).chars().take(200).collect::<String>();
    let name = std::str::from_utf8(raw).map_err(|_| Refused::UnsafeName(shown()))?;
    let body = name.strip_suffix('/').unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= 1024
        && !name.chars().any(|c| c.is_control() || c == '\\' || c == ':')
        && body.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if ok {
        Ok(name.to_string())
    } else {
        Err(Refused::UnsafeName(shown()))
    }
}

/// Reads and checks a package.
pub(crate) fn read(bytes: &[u8], limits: Limits) -> Result<Package, Refused> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| Refused::NotZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(Refused::TooManyEntries(limits.max_entries));
    }
    let xdm = (0..archive.len()).any(|i| {
        let name = archive.name_for_index(i).and_then(Result::ok);
        name.is_some_and(|n| n.get(..8).is_some_and(|top| top.eq_ignore_ascii_case("IHE_XDM/")))
    });
    if !xdm {
        return Err(Refused::NotXdm);
    }
    // Every entry's name first: one bad name refuses the package before anything is inflated.
    let mut files: HashMap<String, usize> = HashMap::new();
    let mut by_folded: HashMap<String, String> = HashMap::new();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| Refused::NotZip(e.to_string()))?;
        let name = plain_path(entry.name_raw())?;
        if entry.is_dir() {
            continue;
        }
        let ratio = entry.size() / entry.compressed_size().max(1);
        if ratio > limits.max_ratio {
            return Err(Refused::Ratio { name, ratio, limit: limits.max_ratio });
        }
        if by_folded.insert(name.to_ascii_uppercase(), name.clone()).is_some()
            || files.insert(name.clone(), i).is_some()
        {
            return Err(Refused::Duplicate(name));
        }
    }
    let mut budget = limits.max_bytes;
    let mut take = |archive: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str| -> Result<Vec<u8>, Refused> {
        let index = files[name];
        let mut entry = archive.by_index(index).map_err(|e| Refused::Unreadable(name.to_string(), e.to_string()))?;
        let compressed = entry.compressed_size().max(1);
        // The declared size is not believed: what is read is bounded by the budget left and the
        // ratio, whichever comes first.
        let bound = budget.min(compressed.saturating_mul(limits.max_ratio));
        let mut content = Vec::new();
        (&mut entry)
            .take(bound + 1)
            .read_to_end(&mut content)
            .map_err(|e| Refused::Unreadable(name.to_string(), e.to_string()))?;
        let got = content.len() as u64;
        if got > budget {
            return Err(Refused::TooLarge(limits.max_bytes));
        }
        if got > bound {
            return Err(Refused::Ratio { name: name.to_string(), ratio: got / compressed, limit: limits.max_ratio });
        }
        budget -= got;
        Ok(content)
    };
    let mut metadata_paths: Vec<(String, String)> = files
        .keys()
        .filter_map(|name| {
            let parts: Vec<&str> = name.split('/').collect();
            match parts[..] {
                [top, subset, file]
                    if top.eq_ignore_ascii_case("IHE_XDM") && file.eq_ignore_ascii_case("METADATA.XML") =>
                {
                    Some((subset.to_string(), name.clone()))
                }
                _ => None,
            }
        })
        .collect();
    if metadata_paths.is_empty() {
        return Err(Refused::NoMetadata);
    }
    metadata_paths.sort();
    let mut subsets = Vec::new();
    for (subset, path) in metadata_paths {
        let xml = take(&mut archive, &path)?;
        let Metadata { submission_set, documents: entries } =
            metadata::read(&xml).map_err(|why| Refused::Metadata { path: path.clone(), why })?;
        let folder = &path[..path.len() - "METADATA.XML".len()];
        let mut documents = Vec::new();
        for entry in entries {
            let uri = &entry.uri;
            let wanted = plain_path(uri.as_bytes())
                .map_err(|_| Refused::Metadata { path: path.clone(), why: format!("URI {uri:?} leaves the subset") })?;
            let full = format!("{folder}{wanted}");
            let Some(found) = by_folded.get(&full.to_ascii_uppercase()).cloned() else {
                return Err(Refused::MissingDocument { path, uri: uri.clone() });
            };
            let content = take(&mut archive, &found)?;
            let actual = content.len() as u64;
            if actual != entry.size {
                return Err(Refused::SizeMismatch { path, uri: uri.clone(), declared: entry.size, actual });
            }
            let hash = sha1_hex(&content);
            if hash != entry.hash {
                return Err(Refused::HashMismatch { path, uri: uri.clone(), declared: entry.hash, actual: hash });
            }
            documents.push(Document { entry, path: found, content });
        }
        subsets.push(Subset { name: subset, submission_set, documents });
    }
    let warnings = ["INDEX.HTM", "README.TXT"]
        .iter()
        .filter(|name| !by_folded.contains_key(**name))
        .map(|name| format!("no {name} at the top of the package (XDM asks for one)"))
        .collect();
    Ok(Package { subsets, warnings })
}

/// A document to pack: what its entry says beyond what the package sets (URI, size, hash).
pub(crate) struct ToPack<'a> {
    pub entry: DocumentEntry,
    pub content: &'a [u8],
}

/// The file name a document gets in the package, by its type (ISO 9660 style, as XDM asks).
fn file_name(n: usize, mime_type: &str) -> String {
    let ext = match mime_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "text/xml" | "application/xml" => "XML",
        "application/pdf" => "PDF",
        "text/plain" => "TXT",
        "text/html" => "HTM",
        "image/jpeg" => "JPG",
        "image/png" => "PNG",
        "image/tiff" => "TIF",
        _ => "BIN",
    };
    format!("DOC{n:04}.{ext}")
}

/// Writes a package of one submission set (`IHE_XDM/SUBSET01/`) holding `documents`, with
/// INDEX.HTM and README.TXT naming `sender`. Returns the package and the entries as written.
pub(crate) fn write(
    set: &SubmissionSet,
    documents: Vec<ToPack>,
    sender: &str,
) -> Result<(Vec<u8>, Vec<DocumentEntry>), String> {
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for (n, doc) in documents.into_iter().enumerate() {
        let mut entry = doc.entry;
        entry.uri = file_name(n + 1, &entry.mime_type);
        entry.size = doc.content.len() as u64;
        entry.hash = sha1_hex(doc.content);
        files.push((format!("IHE_XDM/SUBSET01/{}", entry.uri), doc.content));
        entries.push(entry);
    }
    let metadata = metadata::write(set, &entries);
    let readme = format!(
        "This package holds documents in IHE XDM form (IHE ITI Technical Framework, XDM).\r\n\
         Sent by: {sender}\r\nWritten by: hisp {}\r\n\
         The documents and their metadata are in IHE_XDM/SUBSET01; INDEX.HTM lists them.\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut index = String::from(
        "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>Documents</title></head><body>\r\n\
         <h1>Documents</h1>\r\n<p><a href=\"README.TXT\">About this package</a></p>\r\n<ul>\r\n",
    );
    for entry in &entries {
        let title = entry.title.as_deref().unwrap_or(&entry.uri);
        let title: String = title.chars().map(|c| if "<>&\"".contains(c) { ' ' } else { c }).collect();
        index.push_str(&format!("<li><a href=\"IHE_XDM/SUBSET01/{}\">{title}</a></li>\r\n", entry.uri));
    }
    index.push_str("</ul>\r\n</body></html>\r\n");
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut add = |name: &str, bytes: &[u8]| -> Result<(), String> {
        zip.start_file(name, options).map_err(|e| format!("{name}: {e}"))?;
        zip.write_all(bytes).map_err(|e| format!("{name}: {e}"))
    };
    add("INDEX.HTM", index.as_bytes())?;
    add("README.TXT", readme.as_bytes())?;
    add("IHE_XDM/SUBSET01/METADATA.XML", metadata.as_bytes())?;
    for (name, content) in files {
        add(&name, content)?;
    }
    let bytes = zip.finish().map_err(|e| e.to_string())?.into_inner();
    Ok((bytes, entries))
}
