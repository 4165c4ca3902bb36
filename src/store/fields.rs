//! Columns that may hold PHI (subjects, patient identifiers, recipients, filenames, document
//! hashes) are sealed under the KEK. SQL reaches the crypto through three functions every
//! connection has:
//!
//! - `field_seal(text)`: the sealed bytes (a BLOB), NULL for NULL;
//! - `field_open(value)`: the text of a sealed BLOB (or a TEXT written before sealing existed);
//! - `field_index(scope, text)`: a keyed blind index (an HMAC under a key derived from the KEK),
//!   for lookups (a patient's referrals) and uniqueness (a document kept once) on sealed values.
//!
//! A connection without the KEK attached opens nothing: `field_open` answers "(sealed)" and the
//! other two fail with an error that says what is missing.

use std::sync::Arc;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;

/// What seals and opens field values: the KEK (kek.rs), or a fake in tests.
pub(crate) trait FieldCipher: Send + Sync {
    fn seal(&self, text: &str) -> Result<Vec<u8>, String>;
    fn open(&self, sealed: &[u8]) -> Result<String, String>;
    /// The same text in the same scope gives the same index; nothing else is learnt from it.
    fn index(&self, scope: &str, text: &str) -> String;
}

/// What `field_open` shows without the KEK.
pub(crate) const SEALED: &str = "(sealed)";

const NO_KEY: &str = "this needs the key-encryption key (HISP_KEK): the field is sealed under it";

fn failure(message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(message.into().into())
}

fn text_arg(ctx: &Context, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Blob(_) => return Err(failure("a sealed value cannot be sealed or indexed again")),
    })
}

/// Gives `conn` the three functions, with `cipher` (None: nothing can be opened).
pub(crate) fn register(conn: &Connection, cipher: Option<Arc<dyn FieldCipher>>) -> rusqlite::Result<()> {
    let utf8 = FunctionFlags::SQLITE_UTF8;
    let seal_with = cipher.clone();
    conn.create_scalar_function("field_seal", 1, utf8, move |ctx| {
        let Some(text) = text_arg(ctx, 0)? else { return Ok(Value::Null) };
        let cipher = seal_with.as_ref().ok_or_else(|| failure(NO_KEY))?;
        cipher.seal(&text).map(Value::Blob).map_err(failure)
    })?;
    let open_with = cipher.clone();
    conn.create_scalar_function("field_open", 1, utf8 | FunctionFlags::SQLITE_DETERMINISTIC, move |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Blob(sealed) => match &open_with {
                Some(cipher) => Value::Text(cipher.open(sealed).map_err(failure)?),
                None => Value::Text(SEALED.into()),
            },
            ValueRef::Null => Value::Null,
            // Written before sealing existed (the upgrade seals it with the KEK at hand).
            other => Value::Text(String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned()),
        })
    })?;
    let index_with = cipher;
    conn.create_scalar_function("field_index", 2, utf8 | FunctionFlags::SQLITE_DETERMINISTIC, move |ctx| {
        let (Some(scope), Some(text)) = (text_arg(ctx, 0)?, text_arg(ctx, 1)?) else { return Ok(Value::Null) };
        let cipher = index_with.as_ref().ok_or_else(|| failure(NO_KEY))?;
        Ok(Value::Text(cipher.index(&scope, &text)))
    })
}

/// The upgrade: what was written in the clear before (migration 13) is sealed and indexed, in one
/// transaction; rows already sealed are left alone, so running it again does nothing. Needs the
/// KEK attached. Returns how many rows changed.
pub(crate) fn seal_plaintext(conn: &Connection) -> rusqlite::Result<usize> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let mut changed = 0;
    for sql in [
        // Indexes first, from the clear text.
        "UPDATE referrals SET patient_index = field_index('patient', practice_id || ':' || patient_id)
           WHERE typeof(patient_id) = 'text'",
        "UPDATE documents SET patient_index = field_index('patient', practice_id || ':' || patient_id)
           WHERE typeof(patient_id) = 'text'",
        "UPDATE documents SET doc_key = field_index('document', filename || char(0) || sha256)
           WHERE typeof(filename) = 'text' AND typeof(sha256) = 'text'",
        "UPDATE received_attachments SET att_key = field_index('attachment', filename || char(0) || sha256)
           WHERE typeof(filename) = 'text' AND typeof(sha256) = 'text'",
        // Then the values.
        "UPDATE referrals SET patient_id = field_seal(patient_id) WHERE typeof(patient_id) = 'text'",
        "UPDATE referrals SET subject = field_seal(subject) WHERE typeof(subject) = 'text'",
        "UPDATE referrals SET recipients = field_seal(recipients) WHERE typeof(recipients) = 'text'",
        "UPDATE documents SET patient_id = field_seal(patient_id) WHERE typeof(patient_id) = 'text'",
        "UPDATE documents SET filename = field_seal(filename) WHERE typeof(filename) = 'text'",
        "UPDATE documents SET sha256 = field_seal(sha256) WHERE typeof(sha256) = 'text'",
        "UPDATE received_attachments SET filename = field_seal(filename) WHERE typeof(filename) = 'text'",
        "UPDATE received_attachments SET sha256 = field_seal(sha256) WHERE typeof(sha256) = 'text'",
        "UPDATE tracked SET subject = field_seal(subject) WHERE typeof(subject) = 'text'",
        "UPDATE receipts SET subject = field_seal(subject) WHERE typeof(subject) = 'text'",
        "UPDATE mailbox_deliveries SET subject = field_seal(subject) WHERE typeof(subject) = 'text'",
    ] {
        changed += tx.execute(sql, [])?;
    }
    tx.commit()?;
    Ok(changed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A cipher for tests: "sealed" is the text reversed behind a marker; the index a fixed hash.
    pub(crate) struct Reversing;

    impl FieldCipher for Reversing {
        fn seal(&self, text: &str) -> Result<Vec<u8>, String> {
            Ok([b"sealed:".as_slice(), text.chars().rev().collect::<String>().as_bytes()].concat())
        }
        fn open(&self, sealed: &[u8]) -> Result<String, String> {
            let text = sealed.strip_prefix(b"sealed:").ok_or("not sealed by this cipher")?;
            Ok(String::from_utf8_lossy(text).chars().rev().collect())
        }
        fn index(&self, scope: &str, text: &str) -> String {
            crate::pki::sha256_hex(format!("{scope}\0{text}").as_bytes())
        }
    }

    #[test]
    fn fields_are_sealed_opened_and_indexed_only_with_the_cipher() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn, None).unwrap();
        let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, Option<String>>(0));
        assert!(one("SELECT field_seal('MRN-1')").unwrap_err().to_string().contains("key-encryption key"));
        assert_eq!(one("SELECT field_open(x'01')").unwrap().as_deref(), Some(SEALED));
        assert_eq!(one("SELECT field_open('legacy text')").unwrap().as_deref(), Some("legacy text"));
        assert_eq!(one("SELECT field_open(NULL)").unwrap(), None);

        register(&conn, Some(Arc::new(Reversing))).unwrap();
        let sealed: Vec<u8> = conn.query_row("SELECT field_seal('MRN-1')", [], |r| r.get(0)).unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"MRN-1"));
        let opened: String = conn.query_row("SELECT field_open(?1)", [&sealed], |r| r.get(0)).unwrap();
        assert_eq!(opened, "MRN-1");
        assert_eq!(
            one("SELECT field_index('patient', '1:MRN-1')").unwrap(),
            one("SELECT field_index('patient', '1:MRN-1')").unwrap()
        );
        assert_ne!(
            one("SELECT field_index('patient', '1:MRN-1')").unwrap(),
            one("SELECT field_index('patient', '2:MRN-1')").unwrap()
        );
        assert!(conn.query_row("SELECT field_seal(?1)", [&sealed], |r| r.get::<_, Vec<u8>>(0)).is_err());
    }
}
