//! The contacts a practice shares documents with, in the portal (issue 24): its members list,
//! add, change and remove them. A document is shared only with one of them.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::page::{render, Frame, PageError};
use super::see_other;
use super::session::{Ctx, Visit};
use super::signin::{sentence, TokenOnly};
use crate::network::share_contacts::{self, ContactError, ContactRequest};
use crate::store::accounts::AccountRecord;
use crate::store::portal::SessionRecord;
use crate::store::sharing::ShareContactRecord;
use crate::store::{AccountRole, ShareCheck, StoreError};

/// A signed-in member of a practice, and its id.
fn member<'c>(ctx: &'c Ctx) -> Result<(&'c SessionRecord, &'c AccountRecord, i64), PageError> {
    let (session, account) = ctx.signed_in()?;
    match (account.role, account.practice_id) {
        (AccountRole::Patient, _) | (_, None) => {
            Err(PageError::Forbidden("A practice's contacts are kept by its members.".into()))
        }
        (_, Some(practice)) => Ok((session, account, practice)),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ContactForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    date_of_birth: String,
}

impl ContactForm {
    fn request(&self) -> ContactRequest {
        let given = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
        ContactRequest {
            name: self.name.clone(),
            organization: given(&self.organization),
            email: self.email.clone(),
            mobile: given(&self.mobile),
            date_of_birth: given(&self.date_of_birth),
        }
    }

    fn of(c: &ShareContactRecord) -> ContactForm {
        ContactForm {
            csrf: String::new(),
            name: c.name.clone(),
            organization: c.organization.clone().unwrap_or_default(),
            email: c.email.clone(),
            mobile: c.mobile.clone().unwrap_or_default(),
            date_of_birth: c.date_of_birth.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "portal/share_contacts.html")]
struct ListPage<'a> {
    f: Frame,
    /// Whether this member may share, and if not, why.
    policy: Result<String, String>,
    contacts: Vec<ShareContactRecord>,
    form: &'a ContactForm,
    problems: Vec<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/share_contact.html")]
struct EditPage<'a> {
    f: Frame,
    id: i64,
    form: &'a ContactForm,
    problems: Vec<String>,
}

fn problems(e: ContactError) -> Result<Vec<String>, PageError> {
    match e {
        ContactError::Invalid(errors) => {
            Ok(errors.iter().map(|e| format!("{}: {}", label(e.field), sentence(&e.message))).collect())
        }
        ContactError::Store(e @ StoreError::Duplicate(_)) => Ok(vec![sentence(&e)]),
        ContactError::Store(StoreError::NotFound(_)) => Err(PageError::NotFound),
        ContactError::Store(e) => Err(PageError::internal(e)),
    }
}

fn label(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "organization" => "Organization",
        "email" => "E-mail address",
        "mobile" => "Mobile",
        "date_of_birth" => "Date of birth",
        _ => "The contact",
    }
}

fn list_page(
    ctx: &Ctx,
    form: &ContactForm,
    problems: Vec<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (session, account, practice) = member(ctx)?;
    let contacts = ctx.store.share_contacts(practice).map_err(PageError::internal)?;
    let record = ctx.store.practice(account.practice.as_deref().unwrap_or("")).map_err(PageError::internal)?;
    let policy = share_contacts::may_share(&record, account).map(|()| match record.share_check {
        ShareCheck::Sms => "a code texted to their mobile".to_string(),
        ShareCheck::DateOfBirth => "their date of birth".to_string(),
        _ => "the link alone".to_string(),
    });
    let page = ListPage {
        f: Frame::of("Sharing contacts", account, &session.csrf),
        policy: policy.map_err(|why| sentence(&why)),
        contacts,
        form,
        problems,
        notice,
    };
    render(status, &page)
}

pub(crate) async fn list(visit: Visit) -> Response {
    visit.run(|ctx| list_page(ctx, &ContactForm::default(), Vec::new(), None, StatusCode::OK)).await
}

pub(crate) async fn add(visit: Visit, Form(form): Form<ContactForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, _, practice) = member(ctx)?;
            match share_contacts::add(&*ctx.store, practice, &form.request(), ctx.now) {
                Ok(c) => {
                    let notice = Some(format!("{} is added.", c.name));
                    list_page(ctx, &ContactForm::default(), Vec::new(), notice, StatusCode::OK)
                }
                Err(e) => list_page(ctx, &form, problems(e)?, None, StatusCode::BAD_REQUEST),
            }
        })
        .await
}

pub(crate) async fn edit_form(visit: Visit, Path(id): Path<i64>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account, practice) = member(ctx)?;
            let contact = ctx.store.share_contact(practice, id).map_err(|_| PageError::NotFound)?;
            let form = ContactForm::of(&contact);
            let page =
                EditPage { f: Frame::of(&contact.name, account, &session.csrf), id, form: &form, problems: Vec::new() };
            render(StatusCode::OK, &page)
        })
        .await
}

pub(crate) async fn edit(visit: Visit, Path(id): Path<i64>, Form(form): Form<ContactForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (session, account, practice) = member(ctx)?;
            match share_contacts::update(&*ctx.store, practice, id, &form.request(), ctx.now) {
                Ok(_) => Ok(see_other("/shares/contacts")),
                Err(e) => {
                    let problems = problems(e)?;
                    let page = EditPage { f: Frame::of(&form.name, account, &session.csrf), id, form: &form, problems };
                    render(StatusCode::BAD_REQUEST, &page)
                }
            }
        })
        .await
}

pub(crate) async fn remove(visit: Visit, Path(id): Path<i64>, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(form.csrf())?;
            let (_, _, practice) = member(ctx)?;
            match ctx.store.remove_share_contact(practice, id) {
                Ok(()) => list_page(
                    ctx,
                    &ContactForm::default(),
                    Vec::new(),
                    Some("The contact is removed.".into()),
                    StatusCode::OK,
                ),
                Err(StoreError::NotFound(_)) => Err(PageError::NotFound),
                Err(e) => Err(PageError::internal(e)),
            }
        })
        .await
}
