//! Non-ASCII text in header fields as peers write it: RFC 2047 encoded words in unstructured
//! fields and quoted parameters (`Subject: =?UTF-8?B?...?=`, `filename="=?UTF-8?Q?...?="`), and
//! RFC 2231 parameter values (`filename*=UTF-8''n%C3%A9.pdf`, split as `filename*0*=`,
//! `filename*1*=`...). Charsets read: UTF-8, US-ASCII, ISO-8859-1 and Windows-1252 (as Latin-1);
//! bytes of any other charset are read as UTF-8 with U+FFFD for what is not.

use std::borrow::Cow;

/// At most this many RFC 2231 continuation sections are joined (`name*0` to `name*63`).
const MAX_SECTIONS: usize = 64;

/// `value` with every RFC 2047 encoded word decoded; blanks between two adjacent encoded words
/// dropped (RFC 2047 §6.2); anything that is not a well-formed encoded word kept as it is.
pub(super) fn decode_words(value: &str) -> Cow<'_, str> {
    if !value.contains("=?") {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    // Blanks seen after an encoded word, written only if what follows is not one.
    let mut pending_blank: Option<&str> = None;
    while !rest.is_empty() {
        if let Some((decoded, used)) = rest.starts_with("=?").then(|| encoded_word(rest)).flatten() {
            pending_blank = None;
            out.push_str(&decoded);
            rest = &rest[used..];
            let blanks = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
            if blanks > 0 {
                pending_blank = Some(&rest[..blanks]);
                rest = &rest[blanks..];
            }
            continue;
        }
        if let Some(blank) = pending_blank.take() {
            out.push_str(blank);
        }
        // Past the first character (whatever its width), up to the next possible encoded word.
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let next = rest[first..].find("=?").map_or(rest.len(), |i| i + first);
        out.push_str(&rest[..next]);
        rest = &rest[next..];
    }
    if let Some(blank) = pending_blank {
        out.push_str(blank);
    }
    Cow::Owned(out)
}

/// One `=?charset?B|Q?text?=` at the start of `s`: its text and the bytes it took.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = &s[2..];
    let (written, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let text = &inner[..end];
    if text.contains([' ', '\t', '\r', '\n']) || written.is_empty() || written.len() > 40 {
        return None;
    }
    // RFC 2231 §5: a language may follow the charset after '*'.
    let charset = written.split('*').next().unwrap_or(written);
    let bytes = match encoding {
        "B" | "b" => super::mime::decode_base64(text.as_bytes()).ok()?,
        "Q" | "q" => q_decode(text)?,
        _ => return None,
    };
    let used = "=?".len() + written.len() + 1 + encoding.len() + 1 + end + "?=".len();
    Some((in_charset(charset, &bytes), used))
}

/// RFC 2047 §4.2 "Q": '_' is a space, "=XX" a byte.
fn q_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// `bytes` in `charset`, as text.
fn in_charset(charset: &str, bytes: &[u8]) -> String {
    match charset.to_ascii_lowercase().as_str() {
        "iso-8859-1" | "latin1" | "windows-1252" | "cp1252" => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The value of parameter `name` among `params` (names lowercased, values unquoted): its RFC
/// 2231 form (`name*`, or the sections `name*0`, `name*1*`...) first, else the plain one with
/// any RFC 2047 encoded words decoded.
pub(super) fn parameter(params: &[(String, String)], name: &str) -> Option<String> {
    let starred = format!("{name}*");
    if let Some((_, v)) = params.iter().find(|(k, _)| *k == starred) {
        return Some(extended(v, true).0);
    }
    let mut joined: Option<(String, String)> = None; // (charset, text so far)
    for section in 0..MAX_SECTIONS {
        let plain = format!("{name}*{section}");
        let encoded = format!("{name}*{section}*");
        let (value, is_encoded) = match params.iter().find(|(k, _)| *k == encoded || *k == plain) {
            Some((k, v)) => (v, *k == encoded),
            None => break,
        };
        match &mut joined {
            None => {
                let (text, charset) = if is_encoded {
                    let (text, charset) = extended(value, true);
                    (text, charset)
                } else {
                    (value.clone(), String::new())
                };
                joined = Some((charset, text));
            }
            Some((charset, text)) => {
                if is_encoded {
                    text.push_str(&in_charset(charset, &percent_decode(value)));
                } else {
                    text.push_str(value);
                }
            }
        }
    }
    if let Some((_, text)) = joined {
        return Some(text);
    }
    params.iter().find(|(k, _)| k == name).map(|(_, v)| decode_words(v).into_owned())
}

/// An RFC 2231 extended value `charset'language'percent-encoded`: its text and its charset.
fn extended(value: &str, first: bool) -> (String, String) {
    let mut parts = value.splitn(3, '\'');
    match (first, parts.next(), parts.next(), parts.next()) {
        (true, Some(charset), Some(_language), Some(text)) => {
            (in_charset(charset, &percent_decode(text)), charset.to_string())
        }
        _ => (String::from_utf8_lossy(&percent_decode(value)).into_owned(), String::new()),
    }
}

fn percent_decode(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn encoded_words_in_a_subject_are_decoded_and_their_joining_blanks_dropped() {
        assert_eq!(decode_words("Referral: knee"), "Referral: knee");
        assert_eq!(decode_words("=?UTF-8?B?UsOpZsOpcmVuY2U=?= for Ni=?x"), "Référence for Ni=?x");
        assert_eq!(decode_words("=?utf-8?q?Cl=C3=ADnica?= =?utf-8?q?_Ni=C3=B1os?="), "Clínica Niños");
        assert_eq!(decode_words("=?ISO-8859-1?Q?Fran=E7ois?= says hi"), "François says hi");
        assert_eq!(decode_words("=?UTF-8?X?abc?= stays"), "=?UTF-8?X?abc?= stays");
        assert_eq!(decode_words("a =?UTF-8?B?w6k=?="), "a é");
        // Text that is not an encoded word is kept, whatever characters follow an "=?" (found by
        // the mime fuzz target: a slice inside a multi-byte character).
        assert_eq!(decode_words("=?é=?ü"), "=?é=?ü");
        assert_eq!(decode_words("=?UTF-8?Q?broken ü=?"), "=?UTF-8?Q?broken ü=?");
    }

    #[test]
    fn rfc_2231_names_whole_and_in_sections_and_rfc_2047_in_quotes() {
        let whole = params(&[("filename*", "UTF-8''r%C3%A9sum%C3%A9%20de%20sortie.pdf")]);
        assert_eq!(parameter(&whole, "filename").as_deref(), Some("résumé de sortie.pdf"));
        let sections =
            params(&[("filename*0*", "UTF-8'en'Cl%C3%ADnica"), ("filename*1", " Ni"), ("filename*2*", "%C3%B1os.xml")]);
        assert_eq!(parameter(&sections, "filename").as_deref(), Some("Clínica Niños.xml"));
        let quoted = params(&[("filename", "=?UTF-8?B?w6lww6lyYS54bWw=?=")]);
        assert_eq!(parameter(&quoted, "filename").as_deref(), Some("épéra.xml"));
        assert_eq!(parameter(&params(&[("filename", "plain.pdf")]), "filename").as_deref(), Some("plain.pdf"));
        assert_eq!(parameter(&params(&[("name", "x")]), "filename"), None);
    }
}
