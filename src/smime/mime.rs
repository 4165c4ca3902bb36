//! Just enough MIME (RFC 5322, 2045, 2046) on raw bytes. The signed layer needs it: a signature
//! covers exact bytes, so the signed part is cut out of the message as it is and never
//! re-serialized, and what we sign is written byte for byte as it will be verified; a builder
//! that chooses encodings and folds lines (mail-builder, which composes everything else) would
//! change those bytes. Reading received messages (attachments, MDNs, DSNs) stays here too, bounded
//! and fuzzed: mail-parser 0.11 trips a `debug_assert!(false)` on malformed multiparts (found by
//! the `mime` fuzz target; its input is in that corpus), and 1.x needs Rust 1.98.

use std::borrow::Cow;

use base64::Engine;

use super::base64_line::{self, LINE_BYTES};

/// A message or body part split into its header section and body.
pub struct Entity<'a> {
    pub headers: Headers,
    pub header_bytes: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Entity<'a> {
    pub fn parse(raw: &'a [u8]) -> Entity<'a> {
        let (header_bytes, body) = split_header(raw);
        Entity { headers: Headers::parse(header_bytes), header_bytes, body }
    }

    pub fn content_type(&self) -> ContentType {
        self.headers.get("content-type").map(ContentType::parse).unwrap_or_default()
    }

    /// The body with its Content-Transfer-Encoding undone (base64 only; others are taken as is).
    pub fn decoded_body(&self) -> Result<Cow<'a, [u8]>, String> {
        match self.headers.get("content-transfer-encoding").map(|v| v.trim().to_ascii_lowercase()) {
            Some(enc) if enc == "base64" => decode_base64(self.body).map(Cow::Owned),
            _ => Ok(Cow::Borrowed(self.body)),
        }
    }
}

/// Splits at the first empty line (CRLF CRLF, or LF LF for files with bare LF endings).
fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    for i in memchr::memchr_iter(b'\n', raw) {
        let rest = &raw[i + 1..];
        if rest.starts_with(b"\r\n") {
            return (&raw[..i + 1], &raw[i + 3..]);
        }
        if rest.starts_with(b"\n") {
            return (&raw[..i + 1], &raw[i + 2..]);
        }
    }
    // No blank line: a bare header block (RFC 5322 allows an absent body).
    (raw, &raw[raw.len()..])
}

/// Header fields in order, unfolded, names as written.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub fields: Vec<(String, String)>,
}

impl Headers {
    pub fn parse(block: &[u8]) -> Headers {
        let text = String::from_utf8_lossy(block);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        Headers { fields }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// An unstructured field as people read it (a Subject): RFC 2047 encoded words decoded,
    /// control characters as spaces.
    pub fn text(&self, name: &str) -> Option<String> {
        let value = self.get(name)?;
        Some(super::encoded_words::decode_words(value).chars().map(|c| if c.is_control() { ' ' } else { c }).collect())
    }

    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.fields.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// `type/subtype; param=value` with type and parameter names lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub mime_type: String,
    pub params: Vec<(String, String)>,
}

impl Default for ContentType {
    fn default() -> Self {
        ContentType { mime_type: "text/plain".into(), params: Vec::new() }
    }
}

impl ContentType {
    pub fn parse(value: &str) -> ContentType {
        let mut parts = split_params(value).into_iter();
        let mime_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let params = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).replace("\\\"", "\"");
                Some((k.trim().to_ascii_lowercase(), v))
            })
            .collect();
        ContentType { mime_type, params }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A parameter holding text for people (a file name): RFC 2231 and RFC 2047 forms decoded.
    pub fn text_param(&self, name: &str) -> Option<String> {
        super::encoded_words::parameter(&self.params, name)
    }

    pub fn is(&self, mime_type: &str) -> bool {
        self.mime_type == mime_type
    }
}

/// Splits on ';' outside double quotes (a backslash inside quotes escapes the next character).
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in value.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' && quoted {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == b';' && !quoted {
            out.push(&value[start..i]); // ';' is ASCII, so i is a character boundary
            start = i + 1;
        }
    }
    out.push(&value[start..]);
    out
}

/// The body parts of a multipart body, exactly as they appear between the delimiters
/// (RFC 2046 §5.1.1: the line break before a delimiter belongs to the delimiter).
pub fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut starts = Vec::new(); // (start of the delimiter line, end of that line, is_close)
    let mut line_start = 0;
    while line_start <= body.len() {
        let line_end = memchr::memchr(b'\n', &body[line_start..]).map_or(body.len(), |p| line_start + p);
        let line = &body[line_start..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(delimiter) {
            let rest = &line[delimiter.len()..];
            let close = rest.starts_with(b"--");
            let tail = if close { &rest[2..] } else { rest };
            if tail.iter().all(|b| *b == b' ' || *b == b'\t') {
                starts.push((line_start, (line_end + 1).min(body.len()), close));
                if close {
                    break;
                }
            }
        }
        line_start = line_end + 1;
    }
    if !starts.last().is_some_and(|s| s.2) {
        return Err(format!("multipart body has no closing delimiter --{boundary}--"));
    }
    let mut parts = Vec::new();
    for pair in starts.windows(2) {
        let content_start = pair[0].1;
        let mut content_end = pair[1].0;
        // Drop the line break that precedes the next delimiter.
        if content_end > content_start && body[content_end - 1] == b'\n' {
            content_end -= 1;
            if content_end > content_start && body[content_end - 1] == b'\r' {
                content_end -= 1;
            }
        }
        parts.push(&body[content_start..content_end.max(content_start)]);
    }
    Ok(parts)
}

/// Converts bare LF (and bare CR) line endings to CRLF, the canonical form S/MIME signs.
pub fn to_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    // Only the line-ending bytes are looked at (memchr skips the rest a vector at a time): a
    // message is usually canonical already, and this check runs on every seal and open.
    let canonical = memchr::memchr2_iter(b'\r', b'\n', data).all(|i| match data[i] {
        b'\n' => i > 0 && data[i - 1] == b'\r',
        _ => data.get(i + 1) == Some(&b'\n'),
    });
    if canonical {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Base64 with line breaks and other whitespace (RFC 2045). MIME writers emit lines of 76
/// characters and CRLF, so such lines are copied out whole without looking at each byte, other
/// lines are trimmed, and the result decoded in one call. Only if that fails (blanks inside a line,
/// or a line break inside what looked like a full line) is every whitespace byte removed and
/// decoding tried again.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, String> {
    const LINE: usize = 76;
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut compact = Vec::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() >= LINE + 2 && &rest[LINE..LINE + 2] == b"\r\n" {
            compact.extend_from_slice(&rest[..LINE]);
            rest = &rest[LINE + 2..];
            continue;
        }
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |n| n + 1);
        compact.extend_from_slice(rest[..end].trim_ascii());
        rest = &rest[end..];
    }
    engine.decode(&compact).or_else(|_| {
        compact.retain(|b| !b.is_ascii_whitespace());
        engine.decode(&compact).map_err(|e| format!("bad base64: {e}"))
    })
}

/// One base64 line of 76 characters (57 bytes, RFC 2045 §6.8) with its CRLF.
const LINE_LEN: usize = 78;

/// Base64 in lines of 76 characters, each ended by CRLF (RFC 2045 §6.8).
pub fn encode_base64_lines(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len().div_ceil(LINE_BYTES) * LINE_LEN);
    let mut buf = [0u8; 76];
    for chunk in data.chunks(LINE_BYTES) {
        let n = base64_line::encode(chunk, &mut buf);
        out.extend_from_slice(&buf[..n]);
        out.extend_from_slice(b"\r\n");
    }
}

/// The length of `len` bytes in base64 lines of 76 characters and CRLF.
fn base64_lines_len(len: usize) -> usize {
    let last_line = match len % LINE_BYTES {
        0 if len > 0 => LINE_LEN,
        0 => 0,
        rest => rest.div_ceil(3) * 4 + 2,
    };
    len.div_ceil(LINE_BYTES).saturating_sub(1) * LINE_LEN + last_line
}

/// `prefix`, then `data` in base64 lines exactly as `encode_base64_lines` writes them, built in
/// `data`'s own buffer so a large message's DER and its base64 are never held at once (peak
/// memory sealing a 10 MB message).
pub fn prefix_base64_lines_in_place(mut data: Vec<u8>, prefix: &[u8]) -> Vec<u8> {
    let len = data.len();
    let lines = len.div_ceil(LINE_BYTES);
    let total = prefix.len() + base64_lines_len(len);
    data.resize(total, 0);
    // Last line first: line j's characters go to prefix + 78j, at or after where its bytes were
    // (57j), and the lines before it lie wholly below 57j, so nothing unread is overwritten.
    for j in (0..lines).rev() {
        let start = j * LINE_BYTES;
        let end = (start + LINE_BYTES).min(len);
        let mut chunk = [0u8; LINE_BYTES];
        chunk[..end - start].copy_from_slice(&data[start..end]);
        let mut encoded = [0u8; 76];
        let n = base64_line::encode(&chunk[..end - start], &mut encoded);
        let at = prefix.len() + j * LINE_LEN;
        data[at..at + n].copy_from_slice(&encoded[..n]);
        data[at + n..at + n + 2].copy_from_slice(b"\r\n");
    }
    data[..prefix.len()].copy_from_slice(prefix);
    data
}

/// A file carried by a message: a part with a file name (Content-Disposition filename, or the
/// Content-Type name parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// How deep multiparts and wrapped messages may nest before a message is refused as malformed:
/// a Direct message has three or four levels; a peer's nesting must not decide how deep a
/// recursive walk goes.
pub const MAX_NESTING: usize = 16;

/// Every attachment of `message`, walking nested multiparts; an error when they nest deeper than
/// `MAX_NESTING`.
pub fn attachments(message: &[u8]) -> Result<Vec<Attachment>, String> {
    let mut out = Vec::new();
    collect_attachments(message, 0, &mut out)?;
    Ok(out)
}

fn collect_attachments(raw: &[u8], depth: usize, out: &mut Vec<Attachment>) -> Result<(), String> {
    let entity = Entity::parse(raw);
    let ct = entity.content_type();
    if ct.mime_type.starts_with("multipart/") {
        if depth >= MAX_NESTING {
            return Err(format!("multiparts nested more than {MAX_NESTING} levels deep"));
        }
        if let Some(parts) = ct.param("boundary").and_then(|b| multipart_parts(entity.body, b).ok()) {
            for part in parts {
                collect_attachments(part, depth + 1, out)?;
            }
        }
        return Ok(());
    }
    let disposition = entity.headers.get("content-disposition").map(ContentType::parse);
    let filename = disposition.as_ref().and_then(|d| d.text_param("filename")).or_else(|| ct.text_param("name"));
    if let Some(filename) = filename.map(|f| printable_name(&f)).filter(|f| !f.is_empty()) {
        // A body that does not decode is kept as it came rather than dropped: the practice's copy
        // must hold every file the message carried.
        let content = entity.decoded_body().map_or_else(|_| entity.body.to_vec(), Cow::into_owned);
        out.push(Attachment { filename, content_type: ct.mime_type.clone(), content });
    }
    Ok(())
}

/// The message's text: its first text/plain part that is not a file, decoded, in its charset
/// (UTF-8 unless it says Latin-1), with LF line ends; None when it has none.
pub fn first_text(message: &[u8]) -> Option<String> {
    first_text_at(message, 0)
}

fn first_text_at(raw: &[u8], depth: usize) -> Option<String> {
    let entity = Entity::parse(raw);
    let ct = entity.content_type();
    if ct.mime_type.starts_with("multipart/") {
        if depth >= MAX_NESTING {
            return None;
        }
        let parts = multipart_parts(entity.body, ct.param("boundary")?).ok()?;
        return parts.into_iter().find_map(|part| first_text_at(part, depth + 1));
    }
    let disposition = entity.headers.get("content-disposition").map(ContentType::parse);
    let is_file = disposition.is_some_and(|d| d.mime_type == "attachment" || d.text_param("filename").is_some());
    if ct.mime_type != "text/plain" || is_file {
        return None;
    }
    let body = entity.decoded_body().ok()?;
    let text = match ct.param("charset").map(str::to_ascii_lowercase).as_deref() {
        Some("iso-8859-1" | "latin1" | "windows-1252") => body.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(&body).into_owned(),
    };
    Some(text.replace("\r\n", "\n"))
}

/// A file name as people see it: control characters (a peer's CR or LF) become spaces.
fn printable_name(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

/// Copies the header block `raw` to `out` without the fields named (case-insensitive; with their
/// continuation lines) and without the blank line that ends the block.
pub fn copy_fields_except(raw: &[u8], names: &[&str], out: &mut Vec<u8>) {
    let mut skipping = false;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            // The name as a reader may take it: blanks before the colon are obsolete syntax
            // (RFC 5322 §4.5) that some readers still accept.
            let name = line.iter().position(|&b| b == b':').map(|colon| line[..colon].trim_ascii_end());
            skipping = name.is_some_and(|name| names.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes())));
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
}

/// Where the body of `message` starts (after the blank line ending the header), if it has one.
pub fn body_offset(message: &[u8]) -> Option<usize> {
    if message.starts_with(b"\r\n") {
        return Some(2);
    }
    let crlf = message.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = message.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A Message-ID without its angle brackets (`<a@b>` -> `a@b`), as mail-builder takes one.
pub(crate) fn bare_message_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

/// The addr-specs in an address-list header (`"Dr. Smith" <smith@a.org>, b@c.org, group: x@y.org;`).
pub fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut angle: Option<String> = None;
    let mut quoted = false;
    let mut comment = 0u32;
    let mut flush = |current: &mut String, angle: &mut Option<String>| {
        let addr = angle.take().unwrap_or_else(|| current.trim().to_string());
        let addr = addr.rsplit(':').next().unwrap_or("").trim().to_string(); // group display name
        if addr.contains('@') {
            out.push(addr);
        }
        current.clear();
    };
    let mut in_angle = false;
    for c in value.chars() {
        match c {
            '"' if comment == 0 && !in_angle => quoted = !quoted,
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            _ if quoted || comment > 0 => {}
            '<' => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' => in_angle = false,
            ',' | ';' if !in_angle => flush(&mut current, &mut angle),
            _ if in_angle => angle.as_mut().expect("set on '<'").push(c),
            _ => current.push(c),
        }
    }
    flush(&mut current, &mut angle);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_place_matches_the_plain_encoder_for_every_length() {
        for len in (0..400).chain([57 * 40, 57 * 40 + 1, 10_000]) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 3) as u8).collect();
            for prefix in [&b""[..], b"Content-Type: application/pkcs7-mime\r\n\r\n"] {
                let mut expected = prefix.to_vec();
                encode_base64_lines(&data, &mut expected);
                assert_eq!(prefix_base64_lines_in_place(data.clone(), prefix), expected, "{len} bytes");
            }
        }
    }

    #[test]
    fn base64_decodes_lines_of_any_shape_and_refuses_garbage() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut lines = Vec::new();
        encode_base64_lines(&data, &mut lines);
        assert_eq!(decode_base64(&lines).unwrap(), data, "76-character CRLF lines");
        let compact = base64::engine::general_purpose::STANDARD.encode(&data);
        let ragged: Vec<u8> = compact.as_bytes().chunks(30).flat_map(|c| [c, b" \n\t"].concat()).collect();
        assert_eq!(decode_base64(&ragged).unwrap(), data, "30-character lines with blanks");
        // Two 37-character lines span 78 bytes ending in CRLF, like one full line would.
        let short: Vec<u8> = compact.as_bytes().chunks(37).flat_map(|c| [c, b"\r\n"].concat()).collect();
        assert_eq!(decode_base64(&short).unwrap(), data, "37-character lines");
        assert!(decode_base64(b"QUJD\nRA==\nRUZH\n").is_err(), "padding before the last line");
        assert!(decode_base64(b"QUJD\nR*==\n").is_err(), "a character outside the alphabet");
        assert_eq!(decode_base64(b"QUJD\r\nRA==\r\n").unwrap(), b"ABCD");
    }

    #[test]
    fn splits_headers_and_unfolds() {
        let e = Entity::parse(
            b"Subject: a\r\n  folded\r\nContent-Type: multipart/signed;\r\n\tboundary=\"b;1\"\r\n\r\nbody\r\n",
        );
        assert_eq!(e.headers.get("subject"), Some("a folded"));
        let ct = e.content_type();
        assert!(ct.is("multipart/signed"));
        assert_eq!(ct.param("boundary"), Some("b;1"));
        assert_eq!(e.body, b"body\r\n");
    }

    #[test]
    fn multipart_parts_are_exact_bytes() {
        let body = b"preamble\r\n--xx\r\nA: 1\r\n\r\npart one\r\n--xx\r\n\r\npart two\n\r\n--xx--\r\nepilogue";
        let parts = multipart_parts(body, "xx").unwrap();
        assert_eq!(parts, vec![&b"A: 1\r\n\r\npart one"[..], &b"\r\npart two\n"[..]]);
        assert!(multipart_parts(b"--xx\r\nno end", "xx").is_err());
        // A line that merely starts like the boundary is not a delimiter.
        let parts = multipart_parts(b"--xx\r\n--xxy\r\n--xx--", "xx").unwrap();
        assert_eq!(parts, vec![&b"--xxy"[..]]);
    }

    #[test]
    fn canonicalizes_line_endings() {
        assert!(matches!(to_crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(to_crlf(b""), Cow::Borrowed(_)));
        assert_eq!(&*to_crlf(b"\n\r"), b"\r\n\r\n");
        assert_eq!(&*to_crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd");
    }

    #[test]
    fn base64_round_trips_in_76_character_lines() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut out = Vec::new();
        encode_base64_lines(&data, &mut out);
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 77));
        assert_eq!(decode_base64(&out).unwrap(), data);
    }

    #[test]
    fn finds_addresses_in_lists() {
        assert_eq!(
            addresses(r#""Smith, Dr." <Smith@a.org>, b@c.org (Bob), team: x@y.org, z@y.org;"#),
            vec!["Smith@a.org", "b@c.org", "x@y.org", "z@y.org"]
        );
        assert!(addresses("undisclosed-recipients:;").is_empty());
    }

    #[test]
    fn attachments_are_found_in_nested_multiparts() {
        let msg = b"Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n\
Content-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nhi\r\n--i--\r\n\
--o\r\nContent-Type: application/xml; name=ccd.xml\r\nContent-Transfer-Encoding: base64\r\n\r\nPGE+PC9hPg==\r\n\
--o\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n%PDF\r\n--o--\r\n";
        let found = attachments(msg).unwrap();
        let names: Vec<&str> = found.iter().map(|a| a.filename.as_str()).collect();
        assert_eq!(names, ["ccd.xml", "scan.pdf"]);
        assert_eq!(found[0].content, b"<a></a>");
        assert_eq!(found[0].content_type, "application/xml");
    }

    #[test]
    fn multiparts_nested_too_deeply_are_refused() {
        let mut message = b"Content-Type: text/plain; name=a.txt\r\n\r\nx\r\n".to_vec();
        for level in 0..=MAX_NESTING {
            let b = format!("b{level}");
            message = [
                format!("Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n").as_bytes(),
                &message,
                format!("\r\n--{b}--\r\n").as_bytes(),
            ]
            .concat();
            if level + 1 == MAX_NESTING {
                assert_eq!(attachments(&message).unwrap().len(), 1, "{MAX_NESTING} levels are read");
            }
        }
        assert!(attachments(&message).unwrap_err().contains("nested"));
    }

    #[test]
    fn fields_are_dropped_whatever_blanks_stand_before_their_colon() {
        let head = b"X-Direct-Verified-Sender: a\r\nX-Direct-Verified-Sender \t: b\r\n\tfolded\r\nx-direct-verified-sender:c\r\nSubject: kept\r\nX-Direct-Verified-Senders: kept too\r\n\r\n";
        let mut out = Vec::new();
        copy_fields_except(head, &["X-Direct-Verified-Sender"], &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "Subject: kept\r\nX-Direct-Verified-Senders: kept too\r\n");
    }
}
