use std::io::{Cursor, Write};

use super::package::{self, Limits, ToPack};
use super::*;

fn set() -> SubmissionSet {
    SubmissionSet {
        entry_uuid: "urn:uuid:00000000-0000-4000-8000-000000000001".into(),
        unique_id: "2.25.1".into(),
        source_id: "2.25.2".into(),
        submission_time: "20261206120000".into(),
        patient_id: Some("MRN-1^^^&2.25.3&ISO".into()),
        content_type_code: Some(Code {
            code: "34133-9".into(),
            scheme: "2.16.840.1.113883.6.1".into(),
            display: "Summary of episode note".into(),
        }),
        intended_recipients: vec!["||^^Internet^dr.jones@b.test".into()],
        authors: vec![Author { telecoms: vec!["^^Internet^dr.smith@a.test".into()], ..Author::default() }],
    }
}

fn entry(n: u32, mime_type: &str) -> DocumentEntry {
    DocumentEntry {
        entry_uuid: format!("urn:uuid:00000000-0000-4000-8000-00000000010{n}"),
        unique_id: format!("2.25.10{n}"),
        mime_type: mime_type.into(),
        patient_id: Some("MRN-1^^^&2.25.3&ISO".into()),
        title: Some(format!("Document <{n}> & more")),
        creation_time: Some("20261201093000".into()),
        type_code: Some(Code {
            code: "57133-1".into(),
            scheme: "2.16.840.1.113883.6.1".into(),
            display: "Referral note".into(),
        }),
        confidentiality_codes: vec![Code {
            code: "N".into(),
            scheme: "2.16.840.1.113883.5.25".into(),
            display: "normal".into(),
        }],
        authors: vec![Author {
            person: Some("^Smith^John".into()),
            institutions: vec!["Smith Pediatrics".into()],
            ..Author::default()
        }],
        ..DocumentEntry::default()
    }
}

fn packed() -> Vec<u8> {
    let docs = vec![
        ToPack { entry: entry(1, "text/xml"), content: b"<ClinicalDocument/>" },
        ToPack { entry: entry(2, "application/pdf"), content: b"%PDF-1.4 ..." },
    ];
    package::write(&set(), docs, "dr.smith@a.test").unwrap().0
}

/// A ZIP of `(name, bytes)` entries, written as given (deflated).
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A package whose METADATA.XML lists `documents` as they are, beside `files`.
fn with_metadata(documents: &[DocumentEntry], files: &[(&str, &[u8])]) -> Vec<u8> {
    let xml = metadata::write(&set(), documents);
    let mut all: Vec<(&str, &[u8])> =
        vec![("INDEX.HTM", b"<html></html>"), ("README.TXT", b"readme"), ("IHE_XDM/S1/METADATA.XML", xml.as_bytes())];
    all.extend_from_slice(files);
    zip_of(&all)
}

fn listed(uri: &str, content: &[u8]) -> DocumentEntry {
    DocumentEntry { uri: uri.into(), size: content.len() as u64, hash: sha1_hex(content), ..entry(1, "text/plain") }
}

#[test]
fn a_package_written_here_reads_back_with_every_field_and_checked_documents() {
    let package = package::read(&packed(), Limits::default()).unwrap();
    assert!(package.warnings.is_empty(), "{:?}", package.warnings);
    let [subset] = &package.subsets[..] else { panic!("one subset") };
    assert_eq!(subset.name, "SUBSET01");
    assert_eq!(subset.submission_set, set());
    let names: Vec<&str> = subset.documents.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(names, ["IHE_XDM/SUBSET01/DOC0001.XML", "IHE_XDM/SUBSET01/DOC0002.PDF"]);
    let first = &subset.documents[0];
    assert_eq!(first.content, b"<ClinicalDocument/>");
    let expected = DocumentEntry {
        uri: "DOC0001.XML".into(),
        size: 19,
        hash: sha1_hex(b"<ClinicalDocument/>"),
        ..entry(1, "text/xml")
    };
    assert_eq!(first.entry, expected, "the title's markup characters survive escaping");
}

#[test]
fn names_that_leave_the_package_are_refused_before_anything_is_read() {
    for bad in ["../evil.txt", "IHE_XDM/../../etc/passwd", "/etc/passwd", "IHE_XDM\\S1\\x", "C:x", "a//b", "./a"] {
        let zip = zip_of(&[("IHE_XDM/S1/METADATA.XML", b"x"), (bad, b"x")]);
        assert!(
            matches!(package::read(&zip, Limits::default()), Err(Refused::UnsafeName(_))),
            "{bad}: {:?}",
            package::read(&zip, Limits::default())
        );
    }
    // The URI in the metadata is held to the same rule.
    let outside = with_metadata(&[listed("../../README.TXT", b"readme")], &[]);
    let refused = package::read(&outside, Limits::default()).unwrap_err();
    assert!(refused.to_string().contains("leaves the subset"), "{refused}");
}

#[test]
fn a_zip_bomb_is_refused_by_its_ratio_and_a_large_package_by_its_total() {
    let zeros = vec![0u8; 4 << 20];
    let bomb = with_metadata(&[listed("DOC.TXT", &zeros)], &[("IHE_XDM/S1/DOC.TXT", &zeros)]);
    assert!(matches!(package::read(&bomb, Limits::default()), Err(Refused::Ratio { .. })));
    // Each entry within the ratio, together beyond the total.
    let text: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_string().into_bytes()).collect();
    let big = with_metadata(&[listed("DOC.TXT", &text)], &[("IHE_XDM/S1/DOC.TXT", &text)]);
    assert!(package::read(&big, Limits::default()).is_ok());
    let small = Limits { max_bytes: 100_000, ..Limits::default() };
    assert_eq!(package::read(&big, small).unwrap_err(), Refused::TooLarge(100_000));
}

#[test]
fn documents_must_match_their_size_and_hash_and_be_there() {
    let content = b"the document";
    let good = with_metadata(&[listed("DOC.TXT", content)], &[("IHE_XDM/S1/DOC.TXT", content)]);
    assert_eq!(package::read(&good, Limits::default()).unwrap().subsets[0].documents[0].content, content);

    let tampered = with_metadata(&[listed("DOC.TXT", content)], &[("IHE_XDM/S1/DOC.TXT", b"the documenT")]);
    assert!(matches!(package::read(&tampered, Limits::default()), Err(Refused::HashMismatch { .. })));
    let longer = with_metadata(&[listed("DOC.TXT", content)], &[("IHE_XDM/S1/DOC.TXT", b"the document!")]);
    assert!(matches!(package::read(&longer, Limits::default()), Err(Refused::SizeMismatch { .. })));
    let missing = with_metadata(&[listed("DOC.TXT", content)], &[]);
    assert!(matches!(package::read(&missing, Limits::default()), Err(Refused::MissingDocument { .. })));
}

#[test]
fn missing_or_malformed_metadata_is_refused_with_what_is_wrong() {
    assert_eq!(package::read(&zip_of(&[("README.TXT", b"x")]), Limits::default()), Err(Refused::NotXdm));
    let no_metadata = zip_of(&[("IHE_XDM/S1/DOC.TXT", b"x")]);
    assert_eq!(package::read(&no_metadata, Limits::default()), Err(Refused::NoMetadata));
    assert!(matches!(package::read(b"not a zip", Limits::default()), Err(Refused::NotZip(_))));
    let cases: [(&[u8], &str); 4] = [
        (b"<lcm:SubmitObjectsRequest", "not well-formed"),
        (b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>", "DTD"),
        (b"<other/>", "SubmitObjectsRequest"),
        (
            b"<lcm:SubmitObjectsRequest xmlns:lcm=\"urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0\" \
              xmlns:rim=\"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0\"><rim:RegistryObjectList/></lcm:SubmitObjectsRequest>",
            "no SubmissionSet",
        ),
    ];
    for (xml, why) in cases {
        let zip = zip_of(&[("IHE_XDM/S1/METADATA.XML", xml)]);
        let refused = package::read(&zip, Limits::default()).unwrap_err().to_string();
        assert!(refused.contains(why), "{why}: {refused}");
    }
    // A document without its hash.
    let xml = metadata::write(&set(), &[listed("DOC.TXT", b"x")]).replace("name=\"hash\"", "name=\"hash-not\"");
    let zip = zip_of(&[("IHE_XDM/S1/METADATA.XML", xml.as_bytes()), ("IHE_XDM/S1/DOC.TXT", b"x")]);
    let refused = package::read(&zip, Limits::default()).unwrap_err().to_string();
    assert!(refused.contains("no hash slot"), "{refused}");
}

#[test]
fn a_package_without_index_and_readme_is_read_with_warnings() {
    let content = b"doc";
    let xml = metadata::write(&set(), &[listed("DOC.TXT", content)]);
    let zip = zip_of(&[("IHE_XDM/S1/METADATA.XML", xml.as_bytes()), ("ihe_xdm/s1/doc.txt", content)]);
    let package = package::read(&zip, Limits::default()).unwrap();
    assert_eq!(package.warnings.len(), 2, "{:?}", package.warnings);
    assert_eq!(package.subsets[0].documents[0].path, "ihe_xdm/s1/doc.txt", "found whatever its case");
}
