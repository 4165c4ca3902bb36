//! One error type for the command line: a stable code and a message for a person.

use crate::address::AddressError;
use crate::config::ConfigError;
use crate::kek::KekError;
use crate::password::PasswordError;
use crate::pki::PkiError;
use crate::smime::SmimeError;
use crate::store::StoreError;

#[derive(Debug)]
pub(crate) struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::new("usage", message)
    }

    pub(crate) fn report(&self, json: bool) {
        if json {
            let value = serde_json::json!({ "ok": false, "error": { "code": self.code, "message": self.message } });
            println!("{value}");
        }
        eprintln!("error: {}", self.message);
    }
}

macro_rules! failure_from {
    ($($ty:ty => $code:expr),* $(,)?) => {
        $(impl From<$ty> for Failure {
            fn from(e: $ty) -> Failure {
                Failure::new($code, e.to_string())
            }
        })*
    };
}

failure_from! {
    AddressError => "bad-address",
    ConfigError => "config",
    KekError => "kek",
    PasswordError => "password",
    PkiError => "certificate",
    std::io::Error => "io",
    openssl::error::ErrorStack => "crypto",
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        let code = match &e {
            StoreError::NotFound(_) => "not-found",
            StoreError::Duplicate(_) => "duplicate",
            StoreError::Conflict(_) => "conflict",
            StoreError::TooMany(_) => "too-many",
            StoreError::NotHisp(..) => "not-a-hisp-database",
            StoreError::Outdated { .. } => "schema-outdated",
            StoreError::Access(..) => "permission",
            StoreError::Missing(_) => "no-database",
            _ => "store",
        };
        Failure::new(code, e.to_string())
    }
}

impl From<crate::identities::IdentityError> for Failure {
    fn from(e: crate::identities::IdentityError) -> Failure {
        use crate::identities::IdentityError as E;
        let code = match &e {
            E::NoCertificate(_) => "no-certificate",
            E::Kek(_) | E::Locked(_) => "kek",
            E::Store(_) => "store",
            E::Crypto(_) => "crypto",
            E::Address(_) => "bad-address",
            E::Pki(_) => "certificate",
        };
        Failure::new(code, e.to_string())
    }
}

impl From<crate::dev_ca::DevCaError> for Failure {
    fn from(e: crate::dev_ca::DevCaError) -> Failure {
        let code = match &e {
            crate::dev_ca::DevCaError::NotVerified(_) => "not-verified",
            _ => "ca",
        };
        Failure::new(code, e.to_string())
    }
}

impl From<SmimeError> for Failure {
    fn from(e: SmimeError) -> Failure {
        Failure::new(e.code(), e.to_string())
    }
}
