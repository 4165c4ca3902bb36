//! The address book in the portal: the organizations one is connected with (a connected
//! practice's profile: its details and the members it lists), one's own contacts among those
//! members (added from a profile, searched, removed), and a way to write to each.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::page::{render, Frame, PageError};
use super::see_other;
use super::session::{Ctx, Visit};
use crate::store::accounts::ConnectionRecord;
use crate::store::address_book::{ListingRecord, Profile, Viewer};
use crate::store::{AccountRole, StoreError};

/// Where writing to a listed member starts: the compose page with them chosen.
fn write_link(l: &ListingRecord) -> Option<String> {
    match (&l.account_id, &l.address) {
        (Some(id), _) => Some(format!("/messages/new?to={id}")),
        (None, Some(address)) => Some(format!("/messages/new?address={address}")),
        _ => None,
    }
}

struct Entry {
    listing: ListingRecord,
    write: Option<String>,
    /// Already among the account's contacts.
    kept: bool,
}

#[derive(Template)]
#[template(path = "portal/contacts.html")]
struct ContactsPage {
    f: Frame,
    orgs: Vec<ConnectionRecord>,
    contacts: Vec<Entry>,
    q: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Who is looking: the account's practice, or the patient.
fn viewer(ctx: &Ctx) -> Result<Viewer, PageError> {
    let (_, account) = ctx.signed_in()?;
    if account.role == AccountRole::Patient {
        return Ok(Viewer::Patient(account.id));
    }
    match account.practice_id {
        Some(id) => Ok(Viewer::Practice(id)),
        None => Err(PageError::Forbidden("This account belongs to no practice.".into())),
    }
}

pub(crate) async fn list(visit: Visit, Query(query): Query<SearchQuery>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let orgs = match viewer(ctx)? {
                Viewer::Practice(id) => ctx.store.connections(id),
                Viewer::Patient(id) => ctx.store.patient_connections(id),
            }
            .map_err(PageError::internal)?
            .into_iter()
            .filter(|c| c.kind == "practice")
            .collect();
            let all = ctx.store.contacts(account.id).map_err(PageError::internal)?;
            let contacts = crate::network::address_book::search(all, &query.q)
                .into_iter()
                .map(|l| Entry { write: write_link(&l), kept: true, listing: l })
                .collect();
            let page = ContactsPage {
                f: Frame::of("Address book", account, &session.csrf),
                orgs,
                contacts,
                q: query.q.trim().to_string(),
            };
            render(StatusCode::OK, &page)
        })
        .await
}

#[derive(Template)]
#[template(path = "portal/organization.html")]
struct OrganizationPage {
    f: Frame,
    profile_id: i64,
    profile: Profile,
    details: Vec<(&'static str, String)>,
    members: Vec<Entry>,
}

/// A registered practice's details, as the page lists them.
fn details(profile: &Profile) -> Vec<(&'static str, String)> {
    let Some(d) = &profile.details else { return Vec::new() };
    let text = |key: &str| d.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let place = format!("{}, {}, {} {}", text("address"), text("city"), text("state"), text("zip"));
    let mut out = vec![("Address", place), ("Phone", text("phone"))];
    for (label, key) in [("Fax", "fax"), ("EHR", "ehr"), ("NPI", "npi")] {
        let value = text(key);
        if !value.is_empty() {
            out.push((label, value));
        }
    }
    out
}

pub(crate) async fn organization(visit: Visit, Path(id): Path<i64>) -> Response {
    visit
        .run(move |ctx| {
            let (session, account) = ctx.signed_in()?;
            let profile = match ctx.store.profile(viewer(ctx)?, id) {
                Ok(profile) => profile,
                Err(StoreError::NotFound(_)) => return Err(PageError::NotFound),
                Err(e) => return Err(PageError::internal(e)),
            };
            let kept: Vec<i64> =
                ctx.store.contacts(account.id).map_err(PageError::internal)?.iter().map(|l| l.id).collect();
            let members = profile
                .members
                .iter()
                .cloned()
                .map(|l| Entry { write: write_link(&l), kept: kept.contains(&l.id), listing: l })
                .collect();
            let page = OrganizationPage {
                f: Frame::of(&profile.name, account, &session.csrf),
                profile_id: id,
                details: details(&profile),
                members,
                profile,
            };
            render(StatusCode::OK, &page)
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ContactForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    listing: i64,
    /// Where to go back to (the organization's page, or the address book).
    #[serde(default)]
    back: String,
}

fn back_to(form: &ContactForm) -> Response {
    // Only pages of the address book: never an address from the form as it came.
    match form.back.strip_prefix("/contacts/orgs/").and_then(|id| id.parse::<i64>().ok()) {
        Some(id) => see_other(&format!("/contacts/orgs/{id}")),
        None => see_other("/contacts"),
    }
}

pub(crate) async fn add(visit: Visit, Form(form): Form<ContactForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, account) = ctx.signed_in()?;
            match ctx.store.add_contact(account.id, form.listing) {
                Ok(_) => Ok(back_to(&form)),
                Err(StoreError::NotFound(_)) => Err(PageError::NotFound),
                Err(e) => Err(PageError::internal(e)),
            }
        })
        .await
}

pub(crate) async fn remove(visit: Visit, Form(form): Form<ContactForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, account) = ctx.signed_in()?;
            match ctx.store.remove_contact(account.id, form.listing) {
                Ok(()) => Ok(back_to(&form)),
                Err(StoreError::NotFound(_)) => Err(PageError::NotFound),
                Err(e) => Err(PageError::internal(e)),
            }
        })
        .await
}
