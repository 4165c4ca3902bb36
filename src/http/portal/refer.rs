//! Refer & Share in the portal, for a practice's members: invite a patient or a colleague by
//! e-mail or fax, the practice's invitations with their states (a warning on those still waiting
//! for the invitee, and on a failed notification), remind, cancel.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::mailbox::when;
use super::page::{render, Frame, PageError};
use super::session::{Ctx, Visit};
use super::signin::sentence;
use crate::network::invitations::{InvitationError, Invitations, Status, Summary};
use crate::network::invitee::InviteeRequest;
use crate::store::accounts::AccountRecord;
use crate::store::portal::SessionRecord;
use crate::store::PracticeRecord;

/// Invitations a page lists, newest first.
const LISTED: usize = 200;

/// A signed-in member of a practice (patients invite no one).
fn member<'c>(ctx: &'c Ctx) -> Result<(&'c SessionRecord, &'c AccountRecord, PracticeRecord), PageError> {
    let (session, account) = ctx.signed_in()?;
    let Some(name) = &account.practice else {
        return Err(PageError::Forbidden("Invitations are sent by a practice's members.".into()));
    };
    let practice = ctx.store.practice(name).map_err(PageError::internal)?;
    Ok((session, account, practice))
}

fn invitations<'c>(ctx: &'c Ctx) -> Invitations<'c> {
    Invitations { store: &*ctx.store, config: &ctx.portal.shared.config.invitations, now: ctx.now }
}

struct Row {
    id: i64,
    name: String,
    contact: String,
    relationship: String,
    status: &'static str,
    /// Waiting on the invitee, or its notice failed: the warning sign.
    warning: Option<&'static str>,
    sent: String,
    expires: String,
    open: bool,
}

fn row(s: &Summary) -> Row {
    let r = &s.record;
    let warning = match s.status {
        Status::NotificationFailed => Some("The invitation could not be delivered: check the address or number."),
        Status::Locked => {
            Some("Locked after three wrong dates of birth: check it with the patient, then invite again.")
        }
        _ if s.pending => Some("Waiting for the invitee to accept."),
        _ => None,
    };
    Row {
        id: r.id,
        name: r.name.clone(),
        contact: r.contact.clone(),
        relationship: match r.relationship.as_str() {
            "patient" => "Patient".into(),
            "colleague-here" => format!("Joins the practice ({})", r.role.map(|x| x.as_str()).unwrap_or("clinician")),
            _ => "Colleague at another practice".into(),
        },
        status: s.status.as_str(),
        warning,
        sent: when(r.created_at),
        expires: crate::clock::iso8601(s.expires_at)[..10].to_string(),
        open: s.pending,
    }
}

#[derive(Template)]
#[template(path = "portal/invitations.html")]
struct ListPage {
    f: Frame,
    rows: Vec<Row>,
    allowed: bool,
    notice: Option<String>,
}

fn list_page(ctx: &Ctx, notice: Option<String>) -> Result<Response, PageError> {
    let (session, account, practice) = member(ctx)?;
    let list = invitations(ctx).list(&practice.name, None, LISTED).map_err(PageError::internal)?;
    let page = ListPage {
        f: Frame::of("Refer & Share", account, &session.csrf),
        rows: list.iter().map(row).collect(),
        allowed: practice.invitations_allowed,
        notice,
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn list(visit: Visit) -> Response {
    visit.run(|ctx| list_page(ctx, None)).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// "email" or "fax".
    #[serde(default)]
    by: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    fax: String,
    #[serde(default)]
    relationship: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    date_of_birth: String,
}

#[derive(Template)]
#[template(path = "portal/invite.html")]
struct InvitePage<'a> {
    f: Frame,
    form: &'a InviteForm,
    practice: &'a str,
    problems: Vec<String>,
}

fn invite_page(ctx: &Ctx, form: &InviteForm, problems: Vec<String>, status: StatusCode) -> Result<Response, PageError> {
    let (session, account, practice) = member(ctx)?;
    let page =
        InvitePage { f: Frame::of("Invite someone", account, &session.csrf), form, practice: &practice.name, problems };
    render(status, &page)
}

pub(crate) async fn new(visit: Visit) -> Response {
    visit
        .run(|ctx| {
            let form = InviteForm { by: "email".into(), relationship: "patient".into(), ..Default::default() };
            invite_page(ctx, &form, Vec::new(), StatusCode::OK)
        })
        .await
}

pub(crate) async fn send(visit: Visit, Form(form): Form<InviteForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, account, practice) = member(ctx)?;
            let given = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
            let request = InviteeRequest {
                name: form.name.trim().to_string(),
                email: given(&form.email).filter(|_| form.by != "fax"),
                fax: given(&form.fax).filter(|_| form.by == "fax"),
                relationship: form.relationship.clone(),
                role: given(&form.role).filter(|_| form.relationship == "colleague-here"),
                date_of_birth: given(&form.date_of_birth).filter(|_| form.relationship == "patient"),
            };
            // The sender as the schedule and the audit know it; never an address a notice could go to.
            let inviter = format!("account:{}", account.id);
            match invitations(ctx).send(&practice.name, &inviter, &request) {
                Ok(sent) => {
                    let how = if sent.record.contact_kind.as_str() == "fax" { "faxed" } else { "e-mailed" };
                    let notice = format!("Invitation #{} to {} is being {how}.", sent.record.id, sent.record.name);
                    list_page(ctx, Some(notice))
                }
                Err(InvitationError::Invalid(errors)) => {
                    let problems =
                        errors.iter().map(|e| format!("{}: {}", label(e.field), sentence(&e.message))).collect();
                    invite_page(ctx, &form, problems, StatusCode::BAD_REQUEST)
                }
                Err(InvitationError::State(why)) => invite_page(ctx, &form, vec![sentence(&why)], StatusCode::CONFLICT),
                Err(InvitationError::Store(crate::store::StoreError::TooMany(why))) => {
                    invite_page(ctx, &form, vec![sentence(&why)], StatusCode::TOO_MANY_REQUESTS)
                }
                Err(e) => Err(PageError::internal(e)),
            }
        })
        .await
}

/// What the form calls a field the checks name.
fn label(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "email" => "E-mail address",
        "fax" => "Fax number",
        "relationship" => "Who is it",
        "role" => "Role",
        "date_of_birth" => "Date of birth",
        _ => "The invitation",
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
}

/// POST /invitations/{id}/remind and /cancel.
async fn act(visit: Visit, id: i64, form: ActionForm, remind: bool) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, _, practice) = member(ctx)?;
            let done = if remind {
                invitations(ctx).remind(&practice.name, id)
            } else {
                invitations(ctx).cancel(&practice.name, id)
            };
            match done {
                Ok(s) => {
                    let what =
                        if remind { "A reminder is on its way" } else { "It is cancelled: its code no longer works" };
                    list_page(ctx, Some(format!("Invitation #{} to {}: {what}.", s.record.id, s.record.name)))
                }
                Err(InvitationError::Store(crate::store::StoreError::NotFound(_))) => Err(PageError::NotFound),
                Err(InvitationError::State(why)) => list_page(ctx, Some(sentence(&why))),
                Err(e) => Err(PageError::internal(e)),
            }
        })
        .await
}

pub(crate) async fn remind(visit: Visit, Path(id): Path<i64>, Form(form): Form<ActionForm>) -> Response {
    act(visit, id, form, true).await
}

pub(crate) async fn cancel(visit: Visit, Path(id): Path<i64>, Form(form): Form<ActionForm>) -> Response {
    act(visit, id, form, false).await
}
