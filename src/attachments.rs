//! The files a message carries, read with mail-parser: where the exact bytes of the MIME
//! structure do not matter (what was received is listed and kept, not verified), a well-kept
//! parser reads it. mail-parser walks nested parts with a stack of its own, not recursion; the
//! nesting a peer may use is still bounded here, as for every parser of ours.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// A file carried by a message: a part with a file name (Content-Disposition filename, or the
/// Content-Type name parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// How deep multiparts may nest before a message is refused as malformed: a Direct message has
/// three or four levels.
pub(crate) const MAX_NESTING: usize = 16;

/// Every attachment of `message`, in the order they come, walking nested multiparts; an error
/// when they nest deeper than `MAX_NESTING` or the message cannot be read at all.
pub(crate) fn of(message: &[u8]) -> Result<Vec<Attachment>, String> {
    let parsed = MessageParser::new().parse(message).ok_or("the message cannot be read as MIME")?;
    let mut out = Vec::new();
    // (part, depth), depth first so attachments keep their order.
    let mut pending = vec![(0u32, 0usize)];
    while let Some((id, depth)) = pending.pop() {
        let Some(part) = parsed.part(id) else { continue };
        if let PartType::Multipart(children) = &part.body {
            if depth >= MAX_NESTING {
                return Err(format!("multiparts nested more than {MAX_NESTING} levels deep"));
            }
            pending.extend(children.iter().rev().map(|child| (*child, depth + 1)));
            continue;
        }
        let Some(filename) = part.attachment_name().filter(|f| !f.is_empty()) else { continue };
        let content_type = part.content_type().map_or_else(
            || "text/plain".to_string(),
            |ct| match ct.subtype() {
                Some(sub) => format!("{}/{sub}", ct.ctype()),
                None => ct.ctype().to_string(),
            },
        );
        out.push(Attachment {
            filename: filename.to_string(),
            content_type: content_type.to_ascii_lowercase(),
            content: part.contents().to_vec(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_found_in_nested_multiparts() {
        let msg = b"Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n\
Content-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nhi\r\n--i--\r\n\
--o\r\nContent-Type: application/xml; name=ccd.xml\r\nContent-Transfer-Encoding: base64\r\n\r\nPGE+PC9hPg==\r\n\
--o\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n%PDF\r\n--o--\r\n";
        let found = of(msg).unwrap();
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
                assert_eq!(of(&message).unwrap().len(), 1, "{MAX_NESTING} levels are read");
            }
        }
        assert!(of(&message).unwrap_err().contains("nested"));
    }
}
