//! Registering from an invitation's link (`/invitations/accept?code=`): the three paths (a
//! patient, who enters the date of birth the practice gave, locked after the third wrong one; a
//! colleague joining the inviting practice, who confirms its name; a colleague at another
//! practice, who describes it), and accepting with the account one is signed in with. Wrong codes
//! count against the client's address.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::page::{render, Frame, PageError};
use super::session::{with_cookie, Ctx, Visit};
use super::signin::sentence;
use crate::network::accept::{AcceptError, Accepted, Accepting, PracticeDetails, Preview, Registration};
use crate::network::invitee::FieldError;
use crate::store::Relationship;

/// What the visitor typed, kept to fill the form again (never the passwords).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    confirm_practice: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    practice_name: String,
    #[serde(default)]
    practice_address: String,
    #[serde(default)]
    practice_city: String,
    #[serde(default)]
    practice_state: String,
    #[serde(default)]
    practice_zip: String,
    #[serde(default)]
    practice_phone: String,
    #[serde(default)]
    practice_fax: String,
    #[serde(default)]
    practice_ehr: String,
    #[serde(default)]
    practice_npi: String,
}

/// A problem, linked to its field.
struct Problem {
    id: String,
    message: String,
}

/// What the form calls a field the checks name.
fn label(field: &str) -> &'static str {
    match field {
        "name" => "Your name",
        "email" => "E-mail address",
        "date_of_birth" => "Date of birth",
        "confirm_practice" => "Your practice",
        "role" => "Your role",
        "password" => "Password",
        "confirm" => "The password again",
        "practice" | "practice.name" => "Practice name",
        "practice.address" => "Street address",
        "practice.city" => "City",
        "practice.state" => "State",
        "practice.zip" => "ZIP code",
        "practice.phone" => "Phone",
        "practice.fax" => "Fax",
        "practice.ehr" => "EHR",
        "practice.npi" => "NPI",
        _ => "This form",
    }
}

fn problems(errors: &[FieldError]) -> Vec<Problem> {
    errors
        .iter()
        .map(|e| Problem {
            id: if e.field == "practice" { "practice_name".into() } else { e.field.replace('.', "_") },
            message: format!("{}: {}", label(e.field), sentence(&e.message)),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "portal/register.html")]
struct RegisterPage<'a> {
    f: Frame,
    preview: &'a Preview,
    form: &'a RegisterForm,
    code: &'a str,
    patient: bool,
    colleague_here: bool,
    elsewhere: bool,
    needs_email: bool,
    expires: String,
    error: Option<String>,
    problems: Vec<Problem>,
}

#[derive(Template)]
#[template(path = "portal/code.html")]
struct CodePage<'a> {
    f: Frame,
    code: &'a str,
    error: Option<String>,
    /// Signed in: accepting with this account (a patient's needs the date of birth).
    signed_in: bool,
}

#[derive(Template)]
#[template(path = "portal/registered.html")]
struct RegisteredPage<'a> {
    f: Frame,
    accepted: &'a Accepted,
    new_account: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CodeQuery {
    #[serde(default)]
    code: String,
}

fn code_page(ctx: &Ctx, code: &str, error: Option<String>, status: StatusCode) -> Result<Response, PageError> {
    let (csrf, cookie) = ctx.form_token()?;
    let signed_in = ctx.signed_in().ok();
    let f = match signed_in {
        Some((_, account)) => Frame::of("Accept an invitation", account, &csrf),
        None => Frame::visitor("Accept an invitation", &csrf),
    };
    let page = CodePage { f, code, error, signed_in: signed_in.is_some() };
    Ok(with_cookie(render(status, &page)?, cookie.as_deref()))
}

/// The status and sentence of a code that opens nothing; counted against the client.
fn refused(ctx: &Ctx, e: &AcceptError) -> (StatusCode, String) {
    let status = match e {
        AcceptError::BadCode(_) | AcceptError::UnknownCode => {
            ctx.portal.failures.failed(&ctx.client());
            StatusCode::NOT_FOUND
        }
        AcceptError::Closed(_) => StatusCode::GONE,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, sentence(e))
}

fn too_many(ctx: &Ctx) -> Option<String> {
    let wait = ctx.portal.failures.wait(&ctx.client())?;
    Some(format!("Too many wrong codes from your network. Try again in {} minute(s).", wait.as_secs().div_ceil(60)))
}

fn register_page(
    ctx: &Ctx,
    preview: &Preview,
    form: &RegisterForm,
    error: Option<String>,
    problems: Vec<Problem>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (csrf, cookie) = ctx.form_token()?;
    let page = RegisterPage {
        f: Frame::visitor(&format!("{} invites you", preview.practice), &csrf),
        preview,
        form,
        code: &form.code,
        patient: preview.relationship == Relationship::Patient,
        colleague_here: preview.relationship == Relationship::ColleagueHere,
        elsewhere: preview.relationship == Relationship::ColleagueElsewhere,
        needs_email: preview.needs.contains(&"email"),
        expires: crate::clock::iso8601(preview.expires_at)[..10].to_string(),
        error,
        problems,
    };
    Ok(with_cookie(render(status, &page)?, cookie.as_deref()))
}

/// The invitation's page: the code asked for, or the registration its invitation needs (or,
/// signed in, accepting with the account).
pub(crate) async fn form(visit: Visit, Query(query): Query<CodeQuery>) -> Response {
    visit
        .run(move |ctx| {
            let code = query.code.trim();
            if code.is_empty() || ctx.signed_in().is_ok() {
                return code_page(ctx, code, None, StatusCode::OK);
            }
            if let Some(wait) = too_many(ctx) {
                return code_page(ctx, code, Some(wait), StatusCode::TOO_MANY_REQUESTS);
            }
            match (Accepting { store: &*ctx.store, now: ctx.now }).preview(code) {
                Ok(preview) => {
                    let form = RegisterForm { code: code.to_string(), ..Default::default() };
                    register_page(ctx, &preview, &form, None, Vec::new(), StatusCode::OK)
                }
                Err(AcceptError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => {
                    let (status, why) = refused(ctx, &e);
                    code_page(ctx, code, Some(why), status)
                }
            }
        })
        .await
}

fn registration(form: &RegisterForm, preview: &Preview) -> Registration {
    let given = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
    let practice = (preview.relationship == Relationship::ColleagueElsewhere).then(|| PracticeDetails {
        name: form.practice_name.clone(),
        address: form.practice_address.clone(),
        city: form.practice_city.clone(),
        state: form.practice_state.clone(),
        zip: form.practice_zip.clone(),
        phone: form.practice_phone.clone(),
        fax: given(&form.practice_fax),
        ehr: form.practice_ehr.clone(),
        npi: given(&form.practice_npi),
    });
    Registration {
        code: form.code.clone(),
        password: form.password.clone(),
        email: given(&form.email),
        name: given(&form.name),
        date_of_birth: given(&form.date_of_birth).filter(|_| preview.relationship == Relationship::Patient),
        // The box says "this is my practice": it confirms the practice by its name.
        confirm_practice: (form.confirm_practice == "yes").then(|| preview.practice.clone()),
        practice,
        role: given(&form.role).filter(|_| preview.relationship == Relationship::ColleagueElsewhere),
    }
}

pub(crate) async fn register(visit: Visit, Form(form): Form<RegisterForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            if let Some(wait) = too_many(ctx) {
                return code_page(ctx, &form.code, Some(wait), StatusCode::TOO_MANY_REQUESTS);
            }
            let accepting = Accepting { store: &*ctx.store, now: ctx.now };
            let preview = match accepting.preview(&form.code) {
                Ok(preview) => preview,
                Err(AcceptError::Store(e)) => return Err(PageError::internal(e)),
                Err(e) => {
                    let (status, why) = refused(ctx, &e);
                    return code_page(ctx, &form.code, Some(why), status);
                }
            };
            let mut errors = Vec::new();
            if form.password != form.confirm {
                errors.push(FieldError { field: "confirm", message: "the two passwords are not the same".into() });
            }
            let outcome = if errors.is_empty() {
                accepting.register(&registration(&form, &preview))
            } else {
                Err(AcceptError::Invalid(errors))
            };
            match outcome {
                Ok(accepted) => {
                    let (csrf, cookie) = ctx.form_token()?;
                    let page = RegisteredPage {
                        f: Frame::visitor("You are registered", &csrf),
                        accepted: &accepted,
                        new_account: true,
                    };
                    Ok(with_cookie(render(StatusCode::OK, &page)?, cookie.as_deref()))
                }
                Err(AcceptError::Store(e)) => Err(PageError::internal(e)),
                Err(AcceptError::Invalid(list)) => {
                    register_page(ctx, &preview, &form, None, problems(&list), StatusCode::BAD_REQUEST)
                }
                Err(e @ AcceptError::Closed(_)) => code_page(ctx, &form.code, Some(sentence(&e)), StatusCode::GONE),
                Err(e) => register_page(ctx, &preview, &form, Some(sentence(&e)), Vec::new(), StatusCode::BAD_REQUEST),
            }
        })
        .await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignedInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    date_of_birth: String,
}

/// Accepting with the account signed in.
pub(crate) async fn accept(visit: Visit, Form(form): Form<SignedInForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (session, account) = ctx.signed_in()?;
            if let Some(wait) = too_many(ctx) {
                return code_page(ctx, &form.code, Some(wait), StatusCode::TOO_MANY_REQUESTS);
            }
            let date = Some(form.date_of_birth.trim()).filter(|d| !d.is_empty());
            match (Accepting { store: &*ctx.store, now: ctx.now }).accept_signed_in(&form.code, account, date) {
                Ok(accepted) => {
                    let page = RegisteredPage {
                        f: Frame::of("Invitation accepted", account, &session.csrf),
                        accepted: &accepted,
                        new_account: false,
                    };
                    render(StatusCode::OK, &page)
                }
                Err(AcceptError::Store(e)) => Err(PageError::internal(e)),
                Err(e) => {
                    let (status, why) = refused(ctx, &e);
                    code_page(ctx, &form.code, Some(why), status)
                }
            }
        })
        .await
}
