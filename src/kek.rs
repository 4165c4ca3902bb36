//! The key-encryption key: private keys are sealed with AES-256-GCM under a key derived (argon2id)
//! from the operator's secret and a per-database salt, so the database alone reveals no key.

use openssl::pkey::{PKey, Private};
use openssl::symm::{decrypt_aead, Cipher, Crypter, Mode};

use crate::store::{Store, StoreError};
use crate::wiped::Wiped;

const SALT_KEY: &str = "kek.salt";
const CHECK_KEY: &str = "kek.check";
const CHECK_PLAINTEXT: &[u8] = b"hisp key-encryption key check v1";
const FORMAT_V1: u8 = 1;
const AAD: &[u8] = b"hisp sealed private key";
/// Binds a sealed queued message to its purpose: a key blob can never be opened as a message.
const MESSAGE_AAD: &[u8] = b"hisp queued message";
/// Binds a sealed identity-proofing record to its purpose.
const PROOFING_AAD: &[u8] = b"hisp identity proofing";
/// Binds a sealed copy of a practice's document to its purpose.
const DOCUMENT_AAD: &[u8] = b"hisp practice document";
/// A field of a row that may hold PHI (`store::fields`).
const FIELD_AAD: &[u8] = b"hisp sealed field";
/// What the blind-index key is derived with (HMAC-SHA256 of this under the KEK).
const INDEX_LABEL: &[u8] = b"hisp blind index v1";
pub(crate) const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub(crate) enum KekError {
    #[error(
        "no key-encryption key: set HISP_KEK, or keys.kek_file in the config (a random secret of {MIN_SECRET_LEN}+ characters, \
         e.g. `openssl rand -base64 32`)"
    )]
    Missing,
    #[error("the key-encryption key is shorter than {MIN_SECRET_LEN} characters")]
    TooShort,
    #[error("cannot read the key-encryption key file {0}: {1}")]
    File(String, std::io::Error),
    #[error("wrong key-encryption key: it does not open the keys of this database")]
    Wrong,
    #[error("a sealed private key is damaged or was sealed under another key-encryption key")]
    Damaged,
    #[error("key derivation failed: {0}")]
    Derive(String),
    #[error("crypto error: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the secret comes from, in order of precedence.
/// Takes the secret in the environment variable `name` out of the environment: the bytes of the
/// original block (what /proc/PID/environ shows, and what child processes would inherit) are
/// overwritten, and the variable removed. Call before any thread starts.
pub(crate) fn take_from_environment(name: &str) -> Option<String> {
    let value = std::env::var(name).ok()?;
    let c_name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getenv returns a pointer to the value's bytes in the environment, NUL-terminated,
    // which stay valid until the environment changes; we overwrite exactly those bytes (not the
    // terminator) before removing the variable, on the only thread running.
    unsafe {
        let original = libc::getenv(c_name.as_ptr());
        if !original.is_null() {
            let len = libc::strlen(original);
            std::ptr::write_bytes(original, b'x', len);
        }
    }
    std::env::remove_var(name);
    Some(value)
}

pub(crate) fn secret_from(
    env: Option<String>,
    inline: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<String, KekError> {
    let secret = if let Some(s) = env.filter(|s| !s.is_empty()) {
        s
    } else if let Some(s) = inline {
        s.to_string()
    } else if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| KekError::File(path.display().to_string(), e))?;
        text.lines().next().unwrap_or("").to_string()
    } else {
        return Err(KekError::Missing);
    };
    let secret = secret.trim().to_string();
    if secret.len() < MIN_SECRET_LEN {
        return Err(KekError::TooShort);
    }
    Ok(secret)
}

/// Clone gives each worker its own copy; every copy is wiped when dropped.
#[derive(Clone)]
pub(crate) struct Kek {
    key: [u8; 32],
    /// For blind indexes (`store::fields`): derived from the KEK, never used to encrypt.
    index_key: [u8; 32],
}

impl Drop for Kek {
    fn drop(&mut self) {
        crate::wiped::wipe(&mut self.key);
        crate::wiped::wipe(&mut self.index_key);
    }
}

impl Kek {
    /// Derives the KEK for this database and checks it against the stored check value
    /// (recording one on first use).
    pub(crate) fn unlock(store: &dyn Store, secret: &str) -> Result<Kek, KekError> {
        let mut salt = [0u8; 16];
        openssl::rand::rand_bytes(&mut salt)?;
        let salt = store.meta_init(SALT_KEY, &salt)?;
        let kek = Kek::derive(secret, &salt)?;
        match store.meta(CHECK_KEY)? {
            Some(check) => {
                if kek.open_bytes(&check).map_err(|_| KekError::Wrong)? != CHECK_PLAINTEXT {
                    return Err(KekError::Wrong);
                }
            }
            None => {
                let check = kek.seal_bytes(CHECK_PLAINTEXT)?;
                if kek.open_bytes(&store.meta_init(CHECK_KEY, &check)?).map_err(|_| KekError::Wrong)? != CHECK_PLAINTEXT
                {
                    return Err(KekError::Wrong);
                }
            }
        }
        Ok(kek)
    }

    pub(crate) fn derive(secret: &str, salt: &[u8]) -> Result<Kek, KekError> {
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| KekError::Derive(e.to_string()))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = [0u8; 32];
        argon.hash_password_into(secret.as_bytes(), salt, &mut key).map_err(|e| KekError::Derive(e.to_string()))?;
        let mut index_key = [0u8; 32];
        index_key.copy_from_slice(&hmac_sha256(&key, INDEX_LABEL)?);
        Ok(Kek { key, index_key })
    }

    pub(crate) fn seal_key(&self, key: &openssl::pkey::PKeyRef<Private>) -> Result<Vec<u8>, KekError> {
        let der = Wiped(key.private_key_to_pkcs8()?);
        self.seal_bytes(&der.0)
    }

    pub(crate) fn open_key(&self, sealed: &[u8]) -> Result<PKey<Private>, KekError> {
        let der = Wiped(self.open_bytes(sealed)?);
        PKey::private_key_from_pkcs8(&der.0).map_err(|_| KekError::Damaged)
    }

    /// Encrypts a queued message at rest (AES-256-GCM under the KEK).
    pub(crate) fn seal_message(&self, message: &[u8]) -> Result<Vec<u8>, KekError> {
        self.seal_with(MESSAGE_AAD, message)
    }

    pub(crate) fn open_message(&self, sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        self.open_with(MESSAGE_AAD, sealed)
    }

    /// Encrypts a practice's identity-proofing record (SSN, card number, knowledge answers).
    pub(crate) fn seal_proofing(&self, record: &[u8]) -> Result<Vec<u8>, KekError> {
        self.seal_with(PROOFING_AAD, record)
    }

    pub(crate) fn open_proofing(&self, sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        self.open_with(PROOFING_AAD, sealed)
    }

    /// Encrypts a copy of a document kept for a practice and its patient.
    pub(crate) fn seal_document(&self, content: &[u8]) -> Result<Vec<u8>, KekError> {
        self.seal_with(DOCUMENT_AAD, content)
    }

    pub(crate) fn open_document(&self, sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        self.open_with(DOCUMENT_AAD, sealed)
    }

    fn seal_bytes(&self, plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
        self.seal_with(AAD, plaintext)
    }

    fn open_bytes(&self, sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        self.open_with(AAD, sealed)
    }

    fn seal_with(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
        let mut sealing = self.sealing(aad, plaintext.len())?;
        sealing.update(plaintext)?;
        sealing.finish()
    }

    /// Seals what comes in pieces (`Sealing::update`) into the same format as `seal_with`.
    fn sealing(&self, aad: &[u8], size_hint: usize) -> Result<Sealing, KekError> {
        let mut nonce = [0u8; 12];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut out = Vec::with_capacity(1 + nonce.len() + size_hint + 32);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        let mut crypter = Crypter::new(Cipher::aes_256_gcm(), Mode::Encrypt, &self.key, Some(&nonce))?;
        crypter.aad_update(aad)?;
        Ok(Sealing { crypter, out })
    }

    /// Seals a queued message that arrives in pieces (from the spool of an SMTP session), so it is
    /// never held in clear and sealed at once: the same format as `seal_message`.
    pub(crate) fn message_sealing(&self, size_hint: usize) -> Result<Sealing, KekError> {
        self.sealing(MESSAGE_AAD, size_hint)
    }

    /// Encrypts one field of a row that may hold PHI (a subject, a patient identifier).
    pub(crate) fn seal_field(&self, text: &str) -> Result<Vec<u8>, KekError> {
        self.seal_with(FIELD_AAD, text.as_bytes())
    }

    pub(crate) fn open_field(&self, sealed: &[u8]) -> Result<String, KekError> {
        String::from_utf8(self.open_with(FIELD_AAD, sealed)?).map_err(|_| KekError::Damaged)
    }

    /// A keyed blind index of `text` in `scope` (hex HMAC-SHA256 under the index key).
    pub(crate) fn blind_index(&self, scope: &str, text: &str) -> Result<String, KekError> {
        let mac = hmac_sha256(&self.index_key, format!("{scope}\0{text}").as_bytes())?;
        Ok(hex::encode(&mac))
    }

    fn open_with(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KekError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != FORMAT_V1 {
            return Err(KekError::Damaged);
        }
        let (nonce, rest) = sealed[1..].split_at(12);
        let (ciphertext, tag) = rest.split_at(rest.len() - 16);
        decrypt_aead(Cipher::aes_256_gcm(), &self.key, Some(nonce), aad, ciphertext, tag).map_err(|_| KekError::Damaged)
    }
}

/// A sealing in progress (AES-256-GCM): pieces of plaintext in, the sealed bytes at the end.
pub(crate) struct Sealing {
    crypter: Crypter,
    out: Vec<u8>,
}

impl Sealing {
    pub(crate) fn update(&mut self, plaintext: &[u8]) -> Result<(), KekError> {
        // Encrypted straight into the output (a queued message is sealed on every intake; a
        // separate ciphertext buffer cost a zero-fill and a copy of the whole message). Room for
        // the ciphertext plus one cipher block, as `Crypter::update` requires.
        let at = self.out.len();
        self.out.resize(at + plaintext.len() + 16, 0);
        let n = self.crypter.update(plaintext, &mut self.out[at..])?;
        self.out.truncate(at + n);
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<Vec<u8>, KekError> {
        let at = self.out.len();
        self.out.resize(at + 16, 0);
        let n = self.crypter.finalize(&mut self.out[at..])?; // GCM holds nothing back: adds 0
        self.out.truncate(at + n);
        let mut tag = [0u8; 16];
        self.crypter.get_tag(&mut tag)?;
        self.out.extend_from_slice(&tag);
        Ok(self.out)
    }
}

/// HMAC-SHA256 (OpenSSL's).
fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<Vec<u8>, KekError> {
    let key = PKey::hmac(key)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(data)?;
    Ok(signer.sign_to_vec()?)
}

impl crate::store::FieldCipher for Kek {
    fn seal(&self, text: &str) -> Result<Vec<u8>, String> {
        self.seal_field(text).map_err(|e| e.to_string())
    }
    fn open(&self, sealed: &[u8]) -> Result<String, String> {
        self.open_field(sealed).map_err(|e| e.to_string())
    }
    fn index(&self, scope: &str, text: &str) -> String {
        // HMAC cannot fail on a valid key; an empty index would match nothing anyway.
        self.blind_index(scope, text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use openssl::rsa::Rsa;

    #[test]
    fn a_sealed_key_opens_only_with_the_same_secret() {
        let store = crate::store::in_memory("test").unwrap();
        let kek = Kek::unlock(&*store, "correct horse battery staple").unwrap();
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let sealed = kek.seal_key(&key).unwrap();
        // The sealed form must not contain the key in the clear.
        let der = key.private_key_to_pkcs8().unwrap();
        assert!(!sealed.windows(32).any(|w| w == &der[40..72]));
        assert!(kek.open_key(&sealed).unwrap().public_eq(&key));

        assert!(matches!(Kek::unlock(&*store, "not the right secret at all"), Err(KekError::Wrong)));
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(matches!(kek.open_key(&tampered), Err(KekError::Damaged)));
    }

    #[test]
    fn messages_of_any_length_round_trip_in_the_stored_format() {
        let kek = Kek::derive("correct horse battery staple", b"0123456789abcdef").unwrap();
        for len in [0usize, 1, 15, 16, 17, 4096, 100_003] {
            let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = kek.seal_message(&message).unwrap();
            assert_eq!(sealed.len(), 1 + 12 + len + 16, "version, nonce, ciphertext, tag");
            assert_eq!(kek.open_message(&sealed).unwrap(), message, "{len} bytes");
            if len > 0 {
                let mut tampered = sealed.clone();
                tampered[13 + len / 2] ^= 1;
                assert!(matches!(kek.open_message(&tampered), Err(KekError::Damaged)));
            }
        }
        // What the one-shot encrypt of earlier versions stored still opens.
        let (nonce, mut tag) = ([7u8; 12], [0u8; 16]);
        let ciphertext = openssl::symm::encrypt_aead(
            Cipher::aes_256_gcm(),
            &kek.key,
            Some(&nonce),
            MESSAGE_AAD,
            b"earlier",
            &mut tag,
        )
        .unwrap();
        let stored = [&[FORMAT_V1][..], &nonce, &ciphertext, &tag].concat();
        assert_eq!(kek.open_message(&stored).unwrap(), b"earlier");
    }

    #[test]
    fn a_message_sealed_in_pieces_opens_as_one_sealed_whole() {
        let kek = Kek::derive("correct horse battery staple", b"0123456789abcdef").unwrap();
        let message: Vec<u8> = (0..200_003).map(|i| (i % 251) as u8).collect();
        let mut sealing = kek.message_sealing(10).unwrap();
        for piece in message.chunks(65_537) {
            sealing.update(piece).unwrap();
        }
        let sealed = sealing.finish().unwrap();
        assert_eq!(sealed.len(), 1 + 12 + message.len() + 16);
        assert_eq!(kek.open_message(&sealed).unwrap(), message);
        // Sealed for messages: not a proofing record, whatever the bytes.
        assert!(kek.open_proofing(&sealed).is_err());
    }

    #[test]
    fn secrets_come_from_env_then_inline_then_file_and_must_be_long() {
        assert!(matches!(secret_from(None, None, None), Err(KekError::Missing)));
        assert!(matches!(secret_from(Some("short".into()), None, None), Err(KekError::TooShort)));
        assert_eq!(
            secret_from(Some("0123456789abcdefX".into()), Some("inline-secret-value"), None).unwrap(),
            "0123456789abcdefX"
        );
        assert_eq!(secret_from(None, Some("inline-secret-value"), None).unwrap(), "inline-secret-value");
    }
}
