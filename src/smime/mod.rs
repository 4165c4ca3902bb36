//! The security agent: seal (wrap, sign, encrypt) and open (decrypt, verify, unwrap) Direct
//! messages, with the algorithm policy of DESIGN.md §2.

mod base64_line;
mod cms_ffi;
mod decrypt;
mod encoded_words;
mod envelope;
mod error;
pub mod inspect;
pub mod mime;
pub(crate) mod oids;
pub mod open;
pub(crate) mod policy;
pub mod seal;
mod signed_data;
pub mod structure;
pub(crate) mod verify;

pub use error::SmimeError;
pub use policy::{ContentCipher, KeyTransport};
