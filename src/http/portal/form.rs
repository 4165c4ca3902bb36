//! Multipart forms (a message's files, a document to share): read part by part, the files whole.
//! The body's size is bounded by the route's limit; a form that cannot be read whole says why.

use axum::extract::Multipart;

use super::mailbox::MAX_UPLOAD_BYTES;

/// One part of a form.
pub(crate) enum Part {
    Text {
        name: String,
        value: String,
    },
    /// A file picked in the files field (a picker left empty is no part).
    File {
        filename: String,
        content_type: String,
        bytes: Vec<u8>,
    },
}

/// Every part of `form` in order, the fields named `files` read as files; and why it stopped
/// early, when it did.
pub(crate) async fn parts(mut form: Multipart, files: &str) -> (Vec<Part>, Option<String>) {
    let mut out = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return (out, None),
            Err(e) => {
                let mb = MAX_UPLOAD_BYTES >> 20;
                return (out, Some(format!("the form could not be read ({e}); files may be at most {mb} MB together")));
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if name == files {
            let filename = field.file_name().unwrap_or("").to_string();
            let content_type = field.content_type().unwrap_or("application/octet-stream").to_string();
            let Ok(bytes) = field.bytes().await else { return (out, Some("a file could not be read whole".into())) };
            if !(filename.is_empty() && bytes.is_empty()) {
                out.push(Part::File { filename, content_type, bytes: bytes.to_vec() });
            }
            continue;
        }
        let Ok(value) = field.text().await else { return (out, Some("a field could not be read".into())) };
        out.push(Part::Text { name, value });
    }
}
