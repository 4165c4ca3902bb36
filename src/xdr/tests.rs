use super::request::read;
use super::*;
use crate::xdm::{Code, DocumentEntry, SubmissionSet};

fn set() -> SubmissionSet {
    SubmissionSet {
        entry_uuid: "SubmissionSet01".into(),
        unique_id: "2.25.1".into(),
        source_id: "2.25.2".into(),
        submission_time: "20261206120000".into(),
        ..SubmissionSet::default()
    }
}

fn entry() -> DocumentEntry {
    DocumentEntry {
        entry_uuid: "Document01".into(),
        unique_id: "2.25.3".into(),
        mime_type: "text/xml".into(),
        uri: "DOC0001.XML".into(),
        title: Some("Summary".into()),
        type_code: Some(Code {
            code: "34133-9".into(),
            scheme: "2.16.840.1.113883.6.1".into(),
            display: "Summary".into(),
        }),
        ..DocumentEntry::default()
    }
}

const DOC: &[u8] = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>\r\n\r\n--not-a-boundary\r\n";

fn ours() -> (String, Vec<u8>) {
    let to = ["dr.jones@b.test".to_string()];
    soap::request("urn:uuid:m1", "https://ehr.test/xdr", "dr.smith@a.test", &to, &set(), &[(entry(), DOC)])
}

#[test]
fn a_request_written_here_reads_back_with_its_addresses_metadata_and_documents() {
    let (content_type, body) = ours();
    let submission = read(&content_type, &body).unwrap();
    assert_eq!(submission.message_id.as_deref(), Some("urn:uuid:m1"));
    assert_eq!(
        (submission.from.as_str(), submission.to.as_slice()),
        ("dr.smith@a.test", &["dr.jones@b.test".to_string()][..])
    );
    assert_eq!(submission.submission_set, set());
    let (entry, content) = &submission.documents[0];
    assert_eq!(content, DOC, "the document's bytes, binary part and all");
    assert_eq!((entry.size, entry.hash.as_str()), (DOC.len() as u64, crate::xdm::sha1_hex(DOC).as_str()));
    assert_eq!(entry.title.as_deref(), Some("Summary"));
}

/// Our request with `edit` applied to its text (the envelope and parts are ASCII).
fn edited(edit: impl Fn(String) -> String) -> Result<Submission, Refusal> {
    let (content_type, body) = ours();
    read(&content_type, edit(String::from_utf8(body).unwrap()).as_bytes())
}

#[test]
fn each_broken_request_gets_the_fault_or_error_code_that_names_it() {
    let fault = |r: Result<Submission, Refusal>| match r {
        Err(Refusal::Fault { subcode, reason }) => format!("{} {reason}", subcode.unwrap_or("")),
        other => panic!("a fault, not {other:?}"),
    };
    let code = |r: Result<Submission, Refusal>| match r {
        Err(Refusal::Registry { code, .. }) => code,
        other => panic!("a registry error, not {other:?}"),
    };
    // No addressBlock and no intendedRecipient: no one to send to.
    let no_block = edited(|t| {
        let start = t.find("<direct:addressBlock").unwrap();
        let end = t.find("</direct:addressBlock>").unwrap() + "</direct:addressBlock>".len();
        format!("{}{}", &t[..start], &t[end..])
    });
    assert_eq!(code(no_block), codes::REGISTRY_METADATA_ERROR);
    // An external entity: SOAP forbids a DTD.
    let xxe = edited(|t| {
        t.replace("<soap:Envelope", "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><soap:Envelope")
    });
    assert!(fault(xxe).contains("DTD"));
    // Malformed MTOM: the closing delimiter gone.
    let cut = edited(|t| t[..t.rfind("--MIMEBoundary").unwrap()].to_string());
    assert!(fault(cut).contains("malformed MTOM"));
    // An xop:Include that names no part.
    let dangling = edited(|t| t.replace("href=\"cid:document1@hisp\"", "href=\"cid:elsewhere@hisp\""));
    assert!(fault(dangling).contains("not a part of the package"));
    // Metadata with no document, and a document with no metadata.
    let no_document = edited(|t| t.replace("<xdsb:Document id=\"Document01\">", "<xdsb:Document id=\"Document02\">"));
    assert_eq!(code(no_document), codes::MISSING_DOCUMENT);
    // The wrong action; SOAP 1.1.
    let action =
        edited(|t| t.replace("ProvideAndRegisterDocumentSet-b</wsa:Action>", "RegistryStoredQuery</wsa:Action>"));
    assert!(fault(action).starts_with("wsa:ActionNotSupported"));
    let (_, body) = ours();
    assert!(fault(read("text/xml; charset=utf-8", &body)).starts_with("env:VersionMismatch"));
    // A hash that is not the document's.
    let hash = edited(|t| {
        t.replace("<rim:Slot name=\"URI\">", &format!("<rim:Slot name=\"hash\"><rim:ValueList><rim:Value>{}</rim:Value></rim:ValueList></rim:Slot><rim:Slot name=\"URI\">", "0".repeat(40)))
    });
    assert_eq!(code(hash), codes::REPOSITORY_METADATA_ERROR);
}

#[test]
fn answers_are_soap_12_a_registry_response_or_a_fault_and_ours_read_back() {
    let ok = soap::response(Some("urn:uuid:m1"), None);
    assert!(ok.contains("ResponseStatusType:Success") && ok.contains("<wsa:RelatesTo>urn:uuid:m1</wsa:RelatesTo>"));
    assert_eq!(soap::read_response("application/soap+xml", ok.as_bytes()), Ok(()));
    let refused = Refusal::registry(codes::MISSING_DOCUMENT, "no document for \"Document01\"");
    let failure = soap::response(None, Some(&refused));
    let read_back = soap::read_response("application/soap+xml", failure.as_bytes()).unwrap_err();
    assert!(read_back.contains("XDSMissingDocument"), "{read_back}");
    let (content_type, body) = soap::mtom(&soap::fault(None, Some("wsse:FailedAuthentication"), "who <are> you"), &[]);
    let read_back = soap::read_response(&content_type, &body).unwrap_err();
    assert_eq!(read_back, "SOAP fault: who <are> you");
}

#[test]
fn addresses_are_read_from_every_form_xdr_carries_them_in() {
    assert_eq!(email_of("mailto:dr.jones@b.test").as_deref(), Some("dr.jones@b.test"));
    assert_eq!(email_of("^^Internet^dr.jones@b.test").as_deref(), Some("dr.jones@b.test"));
    assert_eq!(email_of("Org^^^^^^^^^1.2.3|^Jones^Ann|^^Internet^ann@b.test").as_deref(), Some("ann@b.test"));
    assert_eq!(email_of("|dr.jones@b.test^Jones^John^^^Dr").as_deref(), Some("dr.jones@b.test"));
    assert_eq!(email_of("dr.jones@b.test").as_deref(), Some("dr.jones@b.test"));
    assert_eq!(email_of("Some Hospital|^Wel^Marcus"), None);
    assert_eq!(email_of("no address"), None);
}

#[test]
fn the_fuzz_targets_seeds_are_requests_that_pass() {
    let seeds = [
        ("mtom", "multipart/related; boundary=\"b\"; type=\"application/xop+xml\"; start=\"<root>\""),
        ("inline", "application/soap+xml; charset=utf-8"),
    ];
    for (name, content_type) in seeds {
        let seed = std::fs::read(format!("{}/fuzz/corpus/xdr/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let submission = read(content_type, &seed[1..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(submission.documents.len(), 1, "{name}");
        assert_eq!((submission.from.as_str(), submission.to[0].as_str()), ("a@a.test", "b@b.test"));
    }
    // And the endpoint's answers (first byte 2: in MTOM; 3: plain SOAP).
    for (name, content_type) in
        [("answer-mtom", "multipart/related; boundary=\"b\""), ("answer", "application/soap+xml")]
    {
        let seed = std::fs::read(format!("{}/fuzz/corpus/xdr/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let refused = soap::read_response(content_type, &seed[1..]).unwrap_err();
        assert!(refused.contains("XDSMissingDocument"), "{name}: {refused}");
    }
}
