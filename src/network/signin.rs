//! Signing in to the portal: the password (argon2id; an unknown e-mail costs as long as a known
//! one), then the second factor (a TOTP code, RFC 6238, or one of ten recovery codes) when the
//! account has one or its practice requires one. Five failures in a row lock the account for
//! 15 minutes, each further one doubles the lock (at most a day); a password set by a one-time
//! link lifts it. Passwords are never sent anywhere: a new account, or one whose password is
//! forgotten, gets a one-time link to set one.

use super::code::InvitationCode;
use super::invitee::{self, FieldError};
use crate::password::{self, PasswordError};
use crate::store::accounts::AccountRecord;
use crate::store::portal::{LinkState, NewSession, SignInState};
use crate::store::{AccountRole, NodeStore, SessionStage, StoreError};

/// Failures in a row before the account locks.
pub(crate) const LOCK_AFTER: u32 = 5;
const FIRST_LOCK_SECS: i64 = 15 * 60;
const LONGEST_LOCK_SECS: i64 = 24 * 3600;
/// Recovery codes given at enrolment (each works once).
pub(crate) const RECOVERY_CODES: usize = 10;

/// How long the account locks after `failures` in a row.
pub(crate) fn lock_for(failures: u32) -> Option<i64> {
    let past = failures.checked_sub(LOCK_AFTER)?;
    Some(LONGEST_LOCK_SECS.min(FIRST_LOCK_SECS << past.min(16)))
}

/// A secret handed to a browser (a session cookie, a link): 256 random bits, base64url; the
/// store keeps only its digest.
pub(crate) struct Token {
    pub text: String,
    pub digest: String,
}

impl Token {
    pub(crate) fn generate() -> Result<Token, StoreError> {
        let mut bytes = [0u8; 32];
        openssl::rand::rand_bytes(&mut bytes).map_err(|e| StoreError::Conflict(format!("no random bytes: {e}")))?;
        use base64::Engine;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Ok(Token { digest: digest(&text), text })
    }
}

/// What the store finds a token by.
pub(crate) fn digest(text: &str) -> String {
    let hash = openssl::sha::sha256(text.as_bytes());
    hex::encode(hash)
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SignInError {
    /// Unknown e-mail, wrong password, no password yet, wrong code: one answer for all.
    #[error("the e-mail address or password is not right")]
    Wrong,
    #[error("that code is not right")]
    WrongCode,
    #[error(
        "too many failed sign-ins: this account is locked until {} UTC. To unlock it now, set a new password \
         with \"Forgot your password?\"",
        crate::clock::iso8601(*.0).replace('T', " ").trim_end_matches('Z')
    )]
    Locked(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a new password or a link did not work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PasswordLinkError {
    #[error("this link is not valid: ask for a new one")]
    Unknown,
    #[error("this link was already used: each link works once. Ask for a new one if you need it")]
    Used,
    #[error("this link has expired: ask for a new one")]
    Expired,
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A second factor being enrolled: what the authenticator app takes.
pub(crate) struct Enrolment {
    /// Base 32, for typing in.
    pub secret: String,
    /// otpauth:// for a QR code.
    pub uri: String,
}

/// Signing in and what goes with it, for one request.
pub(crate) struct SignIn<'a> {
    pub store: &'a dyn NodeStore,
    pub now: i64,
}

impl SignIn<'_> {
    /// Checks `email` and `password`; the stage the new session starts at.
    pub(crate) fn password(&self, email: &str, password: &str) -> Result<(AccountRecord, SessionStage), SignInError> {
        let email = email.trim().to_lowercase();
        let Some(account) = self.store.account_by_email(&email)? else {
            // As long as a wrong password takes.
            password::verify(password, password::decoy());
            return Err(SignInError::Wrong);
        };
        let state = self.store.sign_in_state(account.id)?;
        if let Some(until) = state.locked_until.filter(|until| *until > self.now) {
            return Err(SignInError::Locked(until));
        }
        let stored = state.password_hash.as_deref().unwrap_or(password::decoy());
        if !password::verify(password, stored) || state.password_hash.is_none() {
            return Err(self.failed(account.id));
        }
        let stage = if state.totp_enabled {
            SessionStage::SecondFactor
        } else if state.two_factor_required {
            SessionStage::Enrol
        } else {
            SessionStage::SignedIn
        };
        Ok((state.account, stage))
    }

    /// Counts a failure (and locks, at the limit): the error to show.
    fn failed(&self, account: i64) -> SignInError {
        match self.store.sign_in_failed(account, &lock_for, self.now) {
            Ok((_, Some(until))) => SignInError::Locked(until),
            Ok(_) => SignInError::Wrong,
            Err(e) => SignInError::Store(e),
        }
    }

    /// Checks a second factor: a TOTP code (each works once) or an unused recovery code.
    pub(crate) fn second_factor(&self, account: i64, typed: &str) -> Result<(), SignInError> {
        let state = self.store.sign_in_state(account)?;
        if let Some(until) = state.locked_until.filter(|until| *until > self.now) {
            return Err(SignInError::Locked(until));
        }
        if self.matches(&state, typed)? {
            return Ok(());
        }
        match self.failed(account) {
            SignInError::Wrong => Err(SignInError::WrongCode),
            other => Err(other),
        }
    }

    fn matches(&self, state: &SignInState, typed: &str) -> Result<bool, SignInError> {
        let (Some(secret), true) = (&state.totp_secret, state.totp_enabled) else { return Ok(false) };
        let digits = typed.chars().filter(|c| !c.is_whitespace()).count();
        if digits == 6 {
            let Ok(secret) = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()) else { return Ok(false) };
            return match crate::totp::matching_step(&secret, typed, self.now, state.totp_last_step) {
                Some(step) => Ok(self.store.use_totp_step(state.account.id, step)?),
                None => Ok(false),
            };
        }
        match InvitationCode::parse(typed) {
            Ok(code) => Ok(self.store.use_recovery_code(state.account.id, code.as_str(), self.now)?),
            Err(_) => Ok(false),
        }
    }

    /// A new secret for the account's authenticator app (replacing one not yet confirmed).
    pub(crate) fn begin_enrolment(&self, account: &AccountRecord, issuer: &str) -> Result<Enrolment, StoreError> {
        let secret = crate::totp::new_secret().map_err(|e| StoreError::Conflict(format!("no random bytes: {e}")))?;
        let text = crate::totp::secret_text(&secret);
        self.store.begin_totp(account.id, &text)?;
        Ok(Enrolment { uri: crate::totp::key_uri(&secret, issuer, &account.email), secret: text })
    }

    /// The secret being enrolled, for showing again (a reload of the page).
    pub(crate) fn pending_enrolment(
        &self,
        account: &AccountRecord,
        issuer: &str,
    ) -> Result<Option<Enrolment>, StoreError> {
        let state = self.store.sign_in_state(account.id)?;
        let Some(text) = state.totp_secret.filter(|_| !state.totp_enabled) else { return Ok(None) };
        let Ok(secret) = data_encoding::BASE32_NOPAD.decode(text.as_bytes()) else { return Ok(None) };
        Ok(Some(Enrolment { uri: crate::totp::key_uri(&secret, issuer, &account.email), secret: text }))
    }

    /// Confirms the enrolment with a code the app shows; the recovery codes, to be shown once.
    pub(crate) fn confirm_enrolment(&self, account: i64, typed: &str) -> Result<Vec<String>, SignInError> {
        let state = self.store.sign_in_state(account)?;
        let step = match (&state.totp_secret, state.totp_enabled) {
            (Some(text), false) => data_encoding::BASE32_NOPAD
                .decode(text.as_bytes())
                .ok()
                .and_then(|secret| crate::totp::matching_step(&secret, typed, self.now, None)),
            _ => None,
        };
        let Some(step) = step else { return Err(SignInError::WrongCode) };
        let codes = recovery_codes()?;
        let plain: Vec<String> = codes.iter().map(|c| c.as_str().to_string()).collect();
        self.store.enable_totp(account, step, &plain, self.now)?;
        Ok(codes.iter().map(|c| c.to_string()).collect())
    }

    /// New recovery codes (the old ones stop working), to be shown once.
    pub(crate) fn new_recovery_codes(&self, account: i64) -> Result<Vec<String>, StoreError> {
        let codes = recovery_codes()?;
        let plain: Vec<String> = codes.iter().map(|c| c.as_str().to_string()).collect();
        self.store.replace_recovery_codes(account, &plain, self.now)?;
        Ok(codes.iter().map(|c| c.to_string()).collect())
    }

    /// A one-time link's token for setting the account's password, working for `valid_secs`.
    pub(crate) fn issue_link(&self, account: i64, valid_secs: i64) -> Result<Token, StoreError> {
        let token = Token::generate()?;
        self.store.add_link(account, &token.digest, self.now + valid_secs, self.now)?;
        Ok(token)
    }

    /// The account a link is for, while it works.
    pub(crate) fn link_account(&self, token: &str) -> Result<AccountRecord, PasswordLinkError> {
        match self.store.link(&digest(token), self.now)? {
            None => Err(PasswordLinkError::Unknown),
            Some((_, LinkState::Used)) => Err(PasswordLinkError::Used),
            Some((_, LinkState::Expired)) => Err(PasswordLinkError::Expired),
            Some((account, LinkState::Valid)) => Ok(account),
        }
    }

    /// Sets the password through a link (checked against common and guessable passwords, the
    /// person's name and e-mail among them).
    pub(crate) fn set_password(&self, token: &str, new: &str) -> Result<AccountRecord, PasswordLinkError> {
        let account = self.link_account(token)?;
        let practice = account.practice.clone().unwrap_or_default();
        password::check_new(new, &[&account.name, &account.email, &practice])?;
        let hash = password::hash(new)?;
        Ok(self.store.set_password_by_link(&digest(token), &hash, self.now)?)
    }

    /// A new member of a practice (by its admin or the operator), without a password yet.
    pub(crate) fn add_member(
        &self,
        practice_id: i64,
        role: AccountRole,
        name: &str,
        email: &str,
    ) -> Result<AccountRecord, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = name.trim();
        if let Err(e) = invitee::check_name(name) {
            errors.push(FieldError { field: "name", message: e.replace("the invitee's", "the") });
        }
        let email =
            invitee::email_address(email).map_err(|message| errors.push(FieldError { field: "email", message }));
        if role == AccountRole::Patient {
            let message = "a patient joins by a practice's invitation, not as a member".into();
            errors.push(FieldError { field: "role", message });
        }
        let (Ok(email), true) = (email, errors.is_empty()) else { return Err(errors) };
        self.store
            .add_account(practice_id, role, name, &email, self.now)
            .map_err(|e| vec![FieldError { field: "email", message: e.to_string() }])
    }

    /// Starts a session at `stage` for `account`, ending `previous` (the one that came this
    /// far): its cookie's token and its form token.
    pub(crate) fn start_session(
        &self,
        account: i64,
        stage: SessionStage,
        previous: Option<i64>,
    ) -> Result<(Token, String), StoreError> {
        let token = Token::generate()?;
        let csrf = Token::generate()?.text;
        let action = if previous.is_some() { "account.second-factor" } else { "account.sign-in" };
        let session = NewSession { token_hash: &token.digest, account_id: account, stage, csrf: &csrf };
        self.store.start_session(&session, previous, action, self.now)?;
        Ok((token, csrf))
    }
}

fn recovery_codes() -> Result<Vec<InvitationCode>, StoreError> {
    (0..RECOVERY_CODES)
        .map(|_| InvitationCode::generate().map_err(|e| StoreError::Conflict(format!("no random bytes: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests;
