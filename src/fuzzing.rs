//! Entry points for the cargo-fuzz targets under `fuzz/`: one per parser of bytes a peer, a client
//! or a remote server chooses. Each takes the bytes and must return (an error is fine) without a
//! panic, an abort, unbounded recursion or unbounded memory. Built only with the `fuzzing` feature.

use std::io::Cursor;

use crate::address::{DirectAddress, Domain};
use crate::smime::mime::{self, Entity};
use crate::smtp::session::{Gate, Login, Role, Session, SessionConfig};

/// BER/DER: one element, the segments of OCTET STRINGs, nesting.
pub fn der(data: &[u8]) {
    if let Ok(tlv) = crate::der::parse(data) {
        let _ = tlv.octets();
        let _ = tlv.oid();
        let _ = tlv.unsigned();
        let mut children = tlv.children();
        while let Ok(Some(child)) = children.read() {
            let _ = child.octets();
        }
    }
    let _ = crate::der::check_nesting(data, 32);
}

/// CMS ContentInfo structures (RFC 5652): what `open` and `inspect` read before any key is used.
pub fn cms(data: &[u8]) {
    let _ = crate::smime::structure::parse(data);
    let _ = crate::smime::structure::ciphertext(data);
}

/// A whole message as `message inspect` reads it: MIME layers, base64, CMS.
pub fn inspect(data: &[u8]) {
    let _ = crate::smime::inspect::inspect(data);
}

/// MIME on raw bytes: headers, content types, multiparts, base64, attachments, address lists.
pub fn mime(data: &[u8]) {
    let entity = Entity::parse(data);
    let ct = entity.content_type();
    let _ = entity.decoded_body();
    if let Some(boundary) = ct.param("boundary") {
        let _ = mime::multipart_parts(entity.body, boundary);
    }
    let _ = mime::attachments(data);
    for (_, value) in &entity.headers.fields {
        let _ = mime::addresses(value);
    }
    let _ = mime::decode_base64(data);
    let _ = mime::to_crlf(data);
    let _ = mime::body_offset(data);
    let mut out = Vec::new();
    mime::copy_fields_except(data, &["X-Direct-Verified-Sender"], &mut out);
}

/// MDNs and DSNs (RFC 8098, RFC 3464) as the sending side reads them.
pub fn report(data: &[u8]) {
    let _ = crate::notify::mdn::parse(data);
}

/// Trust bundles (PKCS#7 certs-only, DER or PEM, signed or not).
pub fn bundle(data: &[u8]) {
    let _ = crate::bundle::anchors(data, None);
}

/// Certificates as DNS CERT records, LDAP attributes and IPKIX URLs deliver them.
pub fn certificate(data: &[u8]) {
    if let Ok(parsed) = crate::pki::cert_cache::parse(data) {
        let address = DirectAddress::parse("bob@b.example.org").expect("a valid address");
        let _ = parsed.names.binding_for(&address);
        let _ = crate::trust::purpose::check(&parsed.cert, crate::trust::purpose::Use::Signing);
    }
    let _ = crate::pki::load_certs(data, "fuzz");
}

/// A gate that knows one hosted domain and grants no login.
struct Hosting;

impl Gate for Hosting {
    fn authenticate(&self, _: &str, _: &str) -> Login {
        Login::Refused
    }
    fn hosts_domain(&self, domain: &Domain) -> Result<bool, String> {
        Ok(domain.as_str() == "b.test")
    }
    fn hosts_address(&self, address: &DirectAddress) -> Result<bool, String> {
        Ok(address.domain().as_str() == "b.test")
    }
    fn may_send(&self, _: &DirectAddress) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// An SMTP session driven by a client's lines (the first byte picks the listener).
pub fn smtp_session(data: &[u8]) {
    let Some((&first, lines)) = data.split_first() else { return };
    let role = if first % 2 == 0 { Role::Backbone } else { Role::Submission };
    let mut session = Session::new(SessionConfig {
        role,
        hostname: "mx.b.test".into(),
        max_message_bytes: 64 * 1024,
        max_recipients: 10,
        max_auth_failures: 3,
        tls_available: true,
        require_tls: first & 2 != 0,
        spool_dir: None,
    });
    for line in lines.split_inclusive(|&b| b == b'\n') {
        let step = session.line(line, &Hosting);
        if matches!(step.action, crate::smtp::session::Action::StartTls) {
            session.tls_started();
        }
        if matches!(step.action, crate::smtp::session::Action::Close) {
            return;
        }
    }
}

/// An SMTP reply as the client reads it from a peer's MX.
pub fn smtp_reply(data: &[u8]) {
    let _ = crate::smtp::client::reply_from(data);
}

/// A DNS query to the publisher, over UDP and TCP.
pub fn dns_query(data: &[u8]) {
    thread_local! {
        static STORE: Box<dyn crate::store::NodeStore> = {
            let store = crate::store::in_memory("fuzz").expect("an in-memory store");
            let _ = crate::store::Store::add_domain(&*store, &Domain::parse("b.test").expect("a domain"), "B");
            store
        };
    }
    let publishing = crate::dns_server::Publishing {
        mx_host: "mx.b.test".into(),
        mx_address: std::net::Ipv4Addr::LOCALHOST,
        ttl: 60,
    };
    STORE.with(|store| {
        let answerer = crate::dns_server::Answerer { store: &**store, publishing: &publishing, now: 0 };
        let _ = answerer.answer(data, true);
        let _ = answerer.answer(data, false);
    });
}

/// A DNS answer as the resolver reads it (CERT, SRV, MX and address records).
pub fn dns_answer(data: &[u8]) {
    crate::dns::read_answer(data);
}

/// What an LDAP server sends, through the gate in front of ldap3.
pub fn ldap_messages(data: &[u8]) {
    let limits = crate::discovery::ldap_gate::Limits::within(std::time::Duration::from_secs(1));
    let _ = crate::discovery::ldap_gate::relay_answers(Cursor::new(data), std::io::sink(), limits);
}

/// An HTTP answer to a fetch of a CRL, an issuer certificate, an IPKIX URL or a bundle.
pub fn http_answer(data: &[u8]) {
    let _ = crate::fetch::get_canned(data);
}

/// REST API request bodies: a message to send, and each section of the proofing form.
/// What a visitor of the portal types or their browser sends: the session and shared-link
/// cookies, Direct addresses typed in one field, a second factor (a TOTP code or a recovery code),
/// a new password (zxcvbn over it), a file name made into a download's header, a User-Agent.
pub fn portal(data: &[u8]) {
    use crate::http::portal::session::{cookie_in, COOKIE, SHARE_COOKIE};
    let Ok(text) = std::str::from_utf8(data) else { return };
    for name in [COOKIE, SHARE_COOKIE] {
        if let Some(token) = cookie_in(text, name) {
            assert!(token.len() <= 128 && !token.contains(';'));
        }
    }
    let _ = crate::network::share_link::client(text, std::net::Ipv4Addr::LOCALHOST.into());
    for address in crate::http::portal::direct::addresses(text).iter().take(100) {
        let _ = DirectAddress::parse(address);
    }
    let secret = [7u8; crate::totp::SECRET_BYTES];
    let _ = crate::totp::matching_step(&secret, text, 1_796_000_000, Some(59_866_665));
    let _ = crate::network::code::InvitationCode::parse(text);
    if text.len() <= 2048 {
        let _ = crate::password::check_new(text, &["Ada Lovelace", "ada@elm.test", "Elm Clinic"]);
    }
    let name = crate::network::messages::clean_filename(text);
    let _ = crate::http::portal::mailbox::disposition(&name);
}

pub fn api_json(data: &[u8]) {
    let _ = crate::http::send::parse_outgoing(data);
    // An invitation as a practice sends it, and the invitee's registration (no token needed).
    const NOW: i64 = 1_796_000_000;
    if let Ok(request) = serde_json::from_slice::<crate::network::invitee::InviteeRequest>(data) {
        let _ = crate::network::invitee::check(&request, NOW);
    }
    if let Ok(registration) = serde_json::from_slice::<crate::network::accept::Registration>(data) {
        let _ = crate::network::code::InvitationCode::parse(&registration.code);
        if let Some(practice) = &registration.practice {
            let _ = crate::network::accept::practice_details(practice);
        }
    }
    // An NPI registry's answer (the practice's details offered to a registering colleague).
    let _ = crate::network::npi::read_answer(data, "1234567893");
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = crate::network::code::InvitationCode::parse(text) {
            assert_eq!(crate::network::code::InvitationCode::parse(&code.to_string()).ok(), Some(code));
        }
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        for name in ["business", "representative", "government_id", "financial_id"] {
            let _ = crate::onboarding::enrollment::Section::parse(name, &value);
        }
    }
}

/// Keys for `open_differential`: a CA (the trust anchor), and the recipient's certificate and
/// private key (PEM).
pub struct Keys<'a> {
    pub ca: &'a [u8],
    pub recipient_cert: &'a [u8],
    pub recipient_key: &'a [u8],
}

/// `open` (the hand-built CMS reading, decryption and signature check) against OpenSSL's CMS on
/// the same EnvelopedData: whatever `open` accepts, OpenSSL must accept too, with the same signed
/// content; `open` may refuse more (its algorithm policy, its binding and trust rules).
pub fn open_differential(data: &[u8], keys: &Keys) {
    use base64::Engine;
    use openssl::cms::{CMSOptions, CmsContentInfo};
    let (Ok(ca), Ok(cert), Ok(key)) = (
        openssl::x509::X509::from_pem(keys.ca),
        openssl::x509::X509::from_pem(keys.recipient_cert),
        openssl::pkey::PKey::private_key_from_pem(keys.recipient_key),
    ) else {
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let message = format!(
        "From: alice@a.test\r\nTo: bob@a.test\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
    );
    let now = crate::pki::unix_time(cert.not_before()) + 3600;
    let anchors = crate::trust::FixedAnchors(vec![ca]);
    let fetch = crate::fetch::StaticFetcher::default();
    let trust = crate::smime::open::OpenTrust {
        anchors: &anchors,
        revocation: crate::trust::revocation::Policy { fetch: &fetch, mode: crate::trust::revocation::FailMode::Soft },
        now,
    };
    let ours = crate::smime::open::RecipientKey { cert: cert.clone(), key: key.clone(), domain: None };
    let Ok(opened) = crate::smime::open::open(message.as_bytes(), std::slice::from_ref(&ours), &trust) else {
        return;
    };
    // Accepted: OpenSSL must decrypt it, and verify the signature with the signer's certificate.
    let decrypted = CmsContentInfo::from_der(data)
        .and_then(|cms| cms.decrypt(&key, &cert))
        .expect("open accepted a message OpenSSL cannot decrypt");
    let entity = Entity::parse(&decrypted);
    let ct = entity.content_type();
    let signature = match ct.param("boundary") {
        Some(boundary) => {
            let parts = mime::multipart_parts(entity.body, boundary).expect("a multipart open accepted");
            let der = Entity::parse(parts[1]).decoded_body().expect("the signature part").into_owned();
            (der, Some(parts[0].to_vec()))
        }
        None => (entity.decoded_body().expect("an opaque signature").into_owned(), None),
    };
    // OpenSSL is given the one certificate `open` validated, and told to use no other (it would
    // otherwise pick among the message's own certificates).
    let Ok(crate::smime::structure::ContentInfo::Signed(signed)) = crate::smime::structure::parse(&signature.0) else {
        panic!("open accepted a signature that is not SignedData");
    };
    let signer = signed
        .certificates
        .iter()
        .find(|der| crate::pki::sha256_hex(der) == opened.signer.sha256)
        .and_then(|der| openssl::x509::X509::from_der(der).ok())
        .expect("the signer's certificate is in the message");
    let mut certs = openssl::stack::Stack::new().expect("a stack");
    certs.push(signer).expect("pushed");
    let mut cms = CmsContentInfo::from_der(&signature.0).expect("open accepted a SignedData OpenSSL cannot read");
    let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY | CMSOptions::NOINTERN;
    let mut out = Vec::new();
    let verified = match &signature.1 {
        Some(content) => cms.verify(Some(&certs), None, Some(&mime::to_crlf(content)), Some(&mut out), flags),
        None => cms.verify(Some(&certs), None, None, Some(&mut out), flags),
    };
    assert!(verified.is_ok(), "open accepted a signature OpenSSL does not verify");
    assert!(!opened.original.is_empty());
}

/// A shared document's C-CDA as the viewer reads it: XML, the header, sections, narrative.
pub fn ccda_view(data: &[u8]) {
    let _ = crate::ccda_view::render(data);
}

/// An XDM package as a received one is read (the first byte even) or its METADATA.XML alone
/// (odd): what passes has every document of the size and SHA-1 its metadata says.
pub fn xdm(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    if first % 2 == 1 {
        let _ = crate::xdm::metadata::read(rest);
        return;
    }
    let limits = crate::xdm::package::Limits { max_bytes: 16 << 20, ..Default::default() };
    if let Ok(package) = crate::xdm::package::read(rest, limits) {
        for document in package.subsets.iter().flat_map(|s| &s.documents) {
            assert_eq!(document.content.len() as u64, document.entry.size);
            assert_eq!(crate::xdm::sha1_hex(&document.content), document.entry.hash);
        }
    }
}

/// An ITI-41 request as the XDR endpoint reads it: the first byte picks the Content-Type (an
/// MTOM package with the boundary "b" and the root part "root", or plain SOAP 1.2), the rest is
/// the body. What passes has each document of its metadata's size and SHA-1. A first byte of 2
/// or 3 reads the body instead as an XDR endpoint's answer to a forward of ours.
pub fn xdr(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else { return };
    if first % 4 >= 2 {
        let content_type = if first % 4 == 2 { "multipart/related; boundary=\"b\"" } else { "application/soap+xml" };
        let _ = crate::xdr::soap::read_response(content_type, body);
        return;
    }
    let content_type = if first % 2 == 0 {
        "multipart/related; boundary=\"b\"; type=\"application/xop+xml\"; start=\"<root>\""
    } else {
        "application/soap+xml; charset=utf-8"
    };
    if let Ok(submission) = crate::xdr::request::read(content_type, body) {
        for (entry, content) in &submission.documents {
            assert_eq!(entry.size, content.len() as u64);
            assert_eq!(entry.hash, crate::xdm::sha1_hex(content));
        }
    }
}
