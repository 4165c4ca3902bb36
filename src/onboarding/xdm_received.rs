//! The XDM packages among what a practice received: each package's documents, checked against
//! its metadata, become practice documents carrying that metadata; a package that breaks a rule
//! is recorded as refused with its reason and nothing of it is filed (the message itself was
//! delivered as it came).

use crate::kek::{Kek, KekError};
use crate::smime::mime::Attachment;
use crate::store::api::{NewDocument, NewPackage};
use crate::xdm::package::{self, Limits};
use crate::xdm::Refused;

/// What the packages among `attachments` give: documents to file, a record per package, and
/// what their C-CDA documents say of the patient (`ccda_view::patient_key`).
#[derive(Default)]
pub(crate) struct Unpacked {
    pub documents: Vec<NewDocument>,
    pub packages: Vec<NewPackage>,
    pub patient_key: Option<String>,
}

pub(crate) fn unpack(kek: &Kek, attachments: &[Attachment]) -> Result<Unpacked, KekError> {
    let mut out = Unpacked::default();
    for attachment in attachments.iter().filter(|a| crate::xdm::is_zip(&a.content)) {
        let mut record = NewPackage {
            filename: attachment.filename.clone(),
            sha256: crate::pki::sha256_hex(&attachment.content),
            refused: None,
            documents: 0,
            warnings: Vec::new(),
        };
        let package = match package::read(&attachment.content, Limits::default()) {
            Ok(package) => package,
            Err(Refused::NotXdm) => continue,
            Err(refused) => {
                // The reason may quote the package's names: it is kept sealed, not logged.
                tracing::warn!("an XDM package was refused; its reason is recorded with the message");
                record.refused = Some(refused.to_string());
                out.packages.push(record);
                continue;
            }
        };
        for subset in &package.subsets {
            for doc in &subset.documents {
                let metadata = crate::xdm::filed_metadata(
                    &attachment.filename,
                    &subset.name,
                    &doc.path,
                    &subset.submission_set,
                    &doc.entry,
                );
                let filename = doc.path.rsplit('/').next().unwrap_or(&doc.path).to_string();
                if out.patient_key.is_none() && crate::ccda_view::is_xml(&doc.entry.mime_type, &filename) {
                    out.patient_key = crate::ccda_view::patient_key(&doc.content);
                }
                out.documents.push(NewDocument {
                    filename,
                    content_type: doc.entry.mime_type.clone(),
                    size: doc.content.len(),
                    sha256: crate::pki::sha256_hex(&doc.content),
                    sealed: kek.seal_document(&doc.content)?,
                    xdm: Some(metadata),
                });
                record.documents += 1;
            }
        }
        record.warnings = package.warnings;
        out.packages.push(record);
    }
    Ok(out)
}
