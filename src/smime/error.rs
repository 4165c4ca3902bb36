use crate::der::DerError;

/// Why a message could not be sealed or opened. Each refusal has its own variant and a stable
/// `code()` for scripts and JSON output.
#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    #[error("not encrypted: {0}")]
    NotEncrypted(String),
    #[error("not signed: {0}")]
    NotSigned(String),
    #[error("signature does not verify: the message was altered or the signature is corrupt")]
    Tampered,
    #[error("signer not bound to the sender: certificate '{subject}' is bound to [{bound}], not to {from}")]
    NotBound { subject: String, bound: String, from: String },
    #[error("From mismatch: the signed message is from '{inner}' but the envelope says {outer}")]
    FromMismatch { outer: String, inner: String },
    #[error("untrusted signer: certificate '{subject}' does not chain to a trust anchor of {domain}: {reason}")]
    Untrusted { subject: String, domain: String, reason: String },
    #[error("expired signer: certificate '{subject}' was valid until {not_after}")]
    Expired { subject: String, not_after: String },
    #[error("signer not yet valid: certificate '{subject}' is valid from {not_before}")]
    NotYetValid { subject: String, not_before: String },
    #[error("signer certificate not for Direct mail: certificate '{subject}' may not sign messages: {reason}")]
    WrongPurpose { subject: String, reason: String },
    #[error("revoked signer: certificate '{subject}' was revoked on {on}")]
    Revoked { subject: String, on: String },
    #[error("signer revocation unknown: the revocation of certificate '{subject}' could not be checked ({reason}); refused because revocation checking is hard-fail")]
    RevocationUnknown { subject: String, reason: String },
    #[error("no key for any recipient: the message is encrypted to {recipients}, none of which is ours")]
    NoKey { recipients: String },
    #[error("refused weak digest algorithm {0}: Direct requires SHA-256 or stronger")]
    WeakDigest(String),
    #[error("refused weak content encryption {0}: Direct requires AES")]
    WeakCipher(String),
    #[error("refused RSA key of {bits} bits ({whose}): Direct requires at least 2048 bits")]
    KeyTooShort { whose: String, bits: u32 },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("decryption failed with the matching recipient key (corrupt message or wrong key)")]
    DecryptFailed,
    #[error("cannot seal: {0}")]
    BadInput(String),
    #[error("crypto error: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

impl From<DerError> for SmimeError {
    fn from(e: DerError) -> Self {
        SmimeError::Malformed(e.to_string())
    }
}

impl SmimeError {
    /// Why a peer's message is refused: permanent, except a revocation that could not be
    /// checked yet (a CRL that cannot be had now may be had later).
    pub fn refusal(&self) -> crate::failure::Failure {
        use crate::failure::{Code, Failure};
        match self {
            SmimeError::RevocationUnknown { .. } => Failure::temporary(Code::SECURITY, self.to_string()),
            _ => Failure::permanent(Code::REFUSED, format!("refused ({}): {self}", self.code())),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SmimeError::NotEncrypted(_) => "not-encrypted",
            SmimeError::NotSigned(_) => "not-signed",
            SmimeError::Tampered => "tampered",
            SmimeError::NotBound { .. } => "not-bound",
            SmimeError::FromMismatch { .. } => "from-mismatch",
            SmimeError::Untrusted { .. } => "untrusted",
            SmimeError::Expired { .. } => "expired",
            SmimeError::NotYetValid { .. } => "not-yet-valid",
            SmimeError::WrongPurpose { .. } => "wrong-purpose",
            SmimeError::Revoked { .. } => "revoked",
            SmimeError::RevocationUnknown { .. } => "revocation-unknown",
            SmimeError::NoKey { .. } => "no-key",
            SmimeError::WeakDigest(_) => "weak-digest",
            SmimeError::WeakCipher(_) => "weak-cipher",
            SmimeError::KeyTooShort { .. } => "short-key",
            SmimeError::Unsupported(_) => "unsupported",
            SmimeError::Malformed(_) => "malformed",
            SmimeError::DecryptFailed => "decrypt-failed",
            SmimeError::BadInput(_) => "bad-input",
            SmimeError::Crypto(_) => "crypto",
        }
    }
}
