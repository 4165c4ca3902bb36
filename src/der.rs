//! A minimal BER/DER reader (X.690), enough to walk CMS structures (RFC 5652) for inspection and
//! policy checks before any key is used. Indefinite lengths are accepted because BER producers
//! (streaming CMS encoders) use them; the decryption itself is OpenSSL's.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed ASN.1: {0}")]
pub struct DerError(pub &'static str);

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const OID: u8 = 0x06;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;

/// One element: its identifier octet, its contents (without the end-of-contents marker for
/// indefinite lengths) and its whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub(crate) fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// Context-specific tag number, if this is `[n]`.
    pub(crate) fn context(&self) -> Option<u8> {
        (self.tag & 0xC0 == 0x80).then_some(self.tag & 0x1F)
    }

    pub(crate) fn children(&self) -> Reader<'a> {
        Reader::new(self.content)
    }

    pub(crate) fn expect(self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(DerError(what))
        }
    }

    /// An OBJECT IDENTIFIER in dotted form.
    pub(crate) fn oid(&self) -> Result<String, DerError> {
        if self.tag != OID || self.content.is_empty() {
            return Err(DerError("expected an object identifier"));
        }
        if self.content.last().is_some_and(|b| b & 0x80 != 0) {
            return Err(DerError("object identifier ends mid-arc"));
        }
        // X.690 8.19.2: each arc in the fewest bytes, so none begins with 0x80 (OpenSSL refuses it).
        let starts = std::iter::once(0)
            .chain(self.content.iter().enumerate().filter(|(_, b)| *b & 0x80 == 0).map(|(i, _)| i + 1));
        if starts.take_while(|&i| i < self.content.len()).any(|i| self.content[i] == 0x80) {
            return Err(DerError("object identifier arc not in its fewest bytes"));
        }
        // Written straight into one string: several OIDs are read per message opened.
        let mut dotted = String::with_capacity(self.content.len() * 3);
        let mut value: u64 = 0;
        let mut first = true;
        for &b in self.content {
            if value > (u64::MAX >> 7) {
                return Err(DerError("object identifier arc too large"));
            }
            value = (value << 7) | u64::from(b & 0x7F);
            if b & 0x80 == 0 {
                if first {
                    let top = (value / 40).min(2);
                    push_arc(&mut dotted, top);
                    dotted.push('.');
                    push_arc(&mut dotted, value - top * 40);
                    first = false;
                } else {
                    dotted.push('.');
                    push_arc(&mut dotted, value);
                }
                value = 0;
            }
        }
        Ok(dotted)
    }

    /// The bytes of an OCTET STRING, joining the segments of a constructed (BER) one. Segments
    /// are OCTET STRINGs themselves (X.690 §8.7.3.2), nested at most `MAX_DEPTH` deep: a peer's
    /// nesting must not decide how deep this recurses.
    pub(crate) fn octets(&self) -> Result<Vec<u8>, DerError> {
        let mut out = Vec::new();
        self.append_octets(&mut out, 0)?;
        Ok(out)
    }

    fn append_octets(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), DerError> {
        if !self.is_constructed() {
            out.extend_from_slice(self.content);
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Err(DerError("nested too deeply"));
        }
        let mut inner = self.children();
        while let Some(part) = inner.read()? {
            if part.tag & !0x20 != OCTET_STRING {
                return Err(DerError("a segment of a constructed OCTET STRING is not an OCTET STRING"));
            }
            part.append_octets(out, depth + 1)?;
        }
        Ok(())
    }

    /// An INTEGER's magnitude with leading zero octets removed (serial numbers are positive).
    pub(crate) fn unsigned(&self) -> Result<&'a [u8], DerError> {
        if self.tag != INTEGER || self.content.is_empty() {
            return Err(DerError("expected an integer"));
        }
        let start = self.content.iter().position(|&b| b != 0).unwrap_or(self.content.len() - 1);
        Ok(&self.content[start..])
    }
}

/// Appends `value` in decimal.
fn push_arc(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    /// The next element, or None at the end (or at an end-of-contents marker).
    pub(crate) fn read(&mut self) -> Result<Option<Tlv<'a>>, DerError> {
        if self.data.is_empty() || self.data.starts_with(&[0, 0]) {
            return Ok(None);
        }
        let (tlv, used) = parse_one(self.data, 0)?;
        self.data = &self.data[used..];
        Ok(Some(tlv))
    }

    pub(crate) fn required(&mut self, what: &'static str) -> Result<Tlv<'a>, DerError> {
        self.read()?.ok_or(DerError(what))
    }

    /// Checks that nothing is left: a structure with elements after its last field is refused
    /// (what `what` says), as OpenSSL's templates refuse it.
    pub(crate) fn end(&self, what: &'static str) -> Result<(), DerError> {
        match self.data.is_empty() {
            true => Ok(()),
            false => Err(DerError(what)),
        }
    }
}

/// How deep constructed elements may nest where this reader recurses (indefinite lengths, the
/// segments of an OCTET STRING); CMS needs a handful of levels.
const MAX_DEPTH: usize = 64;

/// Parses one element at the start of `data`; returns it and how many bytes it used.
fn parse_one(data: &[u8], depth: usize) -> Result<(Tlv<'_>, usize), DerError> {
    if depth > MAX_DEPTH {
        return Err(DerError("nested too deeply"));
    }
    let tag = *data.first().ok_or(DerError("truncated"))?;
    if tag & 0x1F == 0x1F {
        return Err(DerError("multi-byte tags are not used by CMS"));
    }
    check_form(tag)?;
    let first = *data.get(1).ok_or(DerError("truncated length"))?;
    let mut pos = 2;
    if first == 0x80 {
        if tag & 0x20 == 0 {
            return Err(DerError("indefinite length on a primitive element"));
        }
        // Walk the children until the end-of-contents marker.
        let mut inner = pos;
        loop {
            let rest = data.get(inner..).ok_or(DerError("truncated"))?;
            if rest.starts_with(&[0, 0]) {
                let tlv = Tlv { tag, content: &data[pos..inner], raw: &data[..inner + 2] };
                return Ok((tlv, inner + 2));
            }
            if rest.is_empty() {
                return Err(DerError("missing end-of-contents"));
            }
            let (_, used) = parse_one(rest, depth + 1)?;
            inner += used;
        }
    }
    let len = if first & 0x80 == 0 {
        first as usize
    } else {
        let count = (first & 0x7F) as usize;
        if count > 4 {
            return Err(DerError("length too large"));
        }
        let bytes = data.get(2..2 + count).ok_or(DerError("truncated length"))?;
        pos += count;
        bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize)
    };
    let end = pos.checked_add(len).ok_or(DerError("length overflow"))?;
    let content = data.get(pos..end).ok_or(DerError("truncated contents"))?;
    Ok((Tlv { tag, content, raw: &data[..end] }, end))
}

/// X.690 §8 fixes the form of some universal types: BOOLEAN, INTEGER, NULL, OBJECT IDENTIFIER,
/// REAL, ENUMERATED and RELATIVE-OID are always primitive, SEQUENCE and SET always constructed.
/// OpenSSL refuses the other form, so reading it here would accept what OpenSSL then cannot.
fn check_form(tag: u8) -> Result<(), DerError> {
    if tag & 0xC0 != 0 {
        return Ok(());
    }
    match (tag & 0x1F, tag & 0x20 != 0) {
        (1 | 2 | 5 | 6 | 9 | 10 | 13, true) => Err(DerError("a constructed encoding of a primitive-only type")),
        (16 | 17, false) => Err(DerError("a primitive SEQUENCE or SET")),
        _ => Ok(()),
    }
}

/// Checks that `data` is a run of whole elements whose constructed elements nest at most
/// `max_depth` deep, walking every one (a gate in front of a parser that recurses without limit).
pub(crate) fn check_nesting(data: &[u8], max_depth: usize) -> Result<(), DerError> {
    let mut rest = data;
    while !rest.is_empty() {
        let (tlv, used) = parse_one(rest, 0)?;
        if tlv.is_constructed() {
            if max_depth == 0 {
                return Err(DerError("nested too deeply"));
            }
            check_nesting(tlv.content, max_depth - 1)?;
        }
        rest = &rest[used..];
    }
    Ok(())
}

/// Parses exactly one element spanning all of `data` (trailing bytes are an error).
pub fn parse(data: &[u8]) -> Result<Tlv<'_>, DerError> {
    let (tlv, used) = parse_one(data, 0)?;
    if used != data.len() {
        return Err(DerError("trailing bytes after the structure"));
    }
    Ok(tlv)
}

/// The identifier and definite length octets of an element whose contents are `len` bytes.
pub(crate) fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out
}

/// Encodes one definite-length element.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = header(tag, content.len());
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oids_and_nested_sequences() {
        // SEQUENCE { OID 1.2.840.113549.1.7.3, [0] { INTEGER 0 } }
        let der = [
            0x30, 0x10, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0, 0x03, 0x02, 0x01, 0x00,
        ];
        let top = parse(&der).unwrap().expect(SEQUENCE, "seq").unwrap();
        let mut r = top.children();
        assert_eq!(r.required("oid").unwrap().oid().unwrap(), "1.2.840.113549.1.7.3");
        let ctx = r.required("ctx").unwrap();
        assert_eq!(ctx.context(), Some(0));
        assert_eq!(ctx.children().required("int").unwrap().unsigned().unwrap(), &[0]);
        assert!(r.read().unwrap().is_none());
    }

    #[test]
    fn object_identifiers_in_every_form() {
        let oid = |content: &[u8]| Tlv { tag: OID, content, raw: content }.oid();
        assert_eq!(oid(&[0x00]).unwrap(), "0.0");
        assert_eq!(oid(&[0x27, 0x00]).unwrap(), "0.39.0");
        assert_eq!(oid(&[0x88, 0x37, 0x03]).unwrap(), "2.999.3", "a first arc of 2 takes the rest");
        assert_eq!(oid(&[0x2b, 0x81, 0x80, 0x80, 0x80, 0x00]).unwrap(), "1.3.268435456");
        assert_eq!(
            oid(&[0x2b, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).unwrap(),
            format!("1.3.{}", u64::MAX),
        );
        assert!(oid(&[0x2b, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).is_err(), "past 64 bits");
        assert!(oid(&[0x2b, 0x86]).is_err(), "ends mid-arc");
        for padded in [&[0x80, 0x2b][..], &[0x2b, 0x80, 0x01], &[0x2b, 0x06, 0x80, 0x80, 0x01]] {
            assert_eq!(oid(padded), Err(DerError("object identifier arc not in its fewest bytes")), "{padded:x?}");
        }
        assert_eq!(oid(&[0x2b, 0x06, 0x81, 0x00]).unwrap(), "1.3.6.128", "0x80 inside an arc is fine");
        assert!(oid(&[]).is_err());
    }

    #[test]
    fn reads_indefinite_lengths_and_constructed_octet_strings() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" } }
        let ber = [0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00, 0x00];
        let top = parse(&ber).unwrap();
        let octets = top.children().required("os").unwrap();
        assert_eq!(octets.octets().unwrap(), b"abc");
    }

    #[test]
    fn encodes_short_and_long_lengths() {
        assert_eq!(encode(OCTET_STRING, b"ab"), vec![0x04, 0x02, b'a', b'b']);
        let long = encode(OCTET_STRING, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(parse(&long).unwrap().content.len(), 300);
    }

    #[test]
    fn universal_types_come_only_in_their_form() {
        // NULL, INTEGER and OID with the constructed bit; SEQUENCE and SET without it.
        for bad in [&[0x25, 0x00][..], &[0x22, 0x01, 0x00], &[0x26, 0x01, 0x2a], &[0x10, 0x00], &[0x11, 0x00]] {
            assert!(parse(bad).is_err(), "{bad:02x?}");
        }
        // A constructed OCTET STRING is BER's segmented form; a primitive [0] is an implicit tag.
        assert!(parse(&[0x24, 0x03, 0x04, 0x01, 0x61]).is_ok());
        assert!(parse(&[0x80, 0x01, 0x61]).is_ok());
        assert!(parse(&[0x30, 0x02, 0x25, 0x00]).unwrap().children().read().is_err(), "inside a SEQUENCE too");
    }

    #[test]
    fn refuses_truncation_and_garbage() {
        assert!(parse(&[0x30, 0x05, 0x02, 0x01]).is_err());
        assert!(parse(&[0x30, 0x80, 0x02, 0x01, 0x00]).is_err());
        assert!(parse(&[0x02, 0x01, 0x00, 0xff]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_followed() {
        // 100,000 constructed OCTET STRINGs, each holding the next (definite lengths).
        let mut headers = Vec::new();
        let mut len = 3;
        for _ in 0..100_000 {
            let h = header(0x24, len);
            len += h.len();
            headers.push(h);
        }
        let nested = [headers.into_iter().rev().flatten().collect(), encode(OCTET_STRING, b"x")].concat();
        assert_eq!(parse(&nested).unwrap().octets(), Err(DerError("nested too deeply")));
        let shallow = encode(0x24, &encode(0x24, &encode(OCTET_STRING, b"ok")));
        assert_eq!(parse(&shallow).unwrap().octets().unwrap(), b"ok");
        // Indefinite lengths recurse while parsing: bounded there too.
        let indefinite = [[0x30u8, 0x80].repeat(100_000), vec![0; 200_000]].concat();
        assert_eq!(parse(&indefinite).err(), Some(DerError("nested too deeply")));
        assert!(parse(&encode(0x24, &encode(INTEGER, &[1]))).unwrap().octets().is_err(), "segments are OCTET STRINGs");
    }

    #[test]
    fn nesting_is_checked_through_every_element() {
        let shallow =
            encode(SEQUENCE, &[encode(INTEGER, &[1]), encode(SEQUENCE, &encode(OCTET_STRING, b"x"))].concat());
        assert!(check_nesting(&shallow, 2).is_ok());
        assert_eq!(check_nesting(&shallow, 1), Err(DerError("nested too deeply")));
        // Deep nesting hidden after an end-of-contents-like pair inside a definite SEQUENCE.
        let mut deep = encode(OCTET_STRING, b"x");
        for _ in 0..40 {
            deep = encode(SEQUENCE, &deep);
        }
        let hidden = encode(SEQUENCE, &[vec![0, 0], deep].concat());
        assert!(check_nesting(&hidden, 32).is_err());
        assert!(check_nesting(&[0x30, 0x05, 0x02], 32).is_err(), "truncated");
    }
}
