//! A practice's settings, for its admins: its members and their roles (clinician, staff, admin;
//! a new member gets a one-time link to set a password), whether two factors are required,
//! whether members may send invitations and whether Direct mail to someone without a Direct
//! address invites them instead of bouncing; and what connected parties see of it.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::page::{render, Frame, PageError};
use super::session::{Ctx, Visit};
use super::signin::{sentence, TokenOnly};
use crate::address::DirectAddress;
use crate::network::password_mail::{send_later, LinkMail, LinkPurpose};
use crate::network::signin::SignIn;
use crate::store::accounts::AccountRecord;
use crate::store::address_book::{ListingRecord, Member};
use crate::store::portal::SessionRecord;
use crate::store::{AccountRole, PracticeRecord, ShareCheck, StoreError};

/// The signed-in admin and their practice; anyone else is refused.
fn admin<'c>(ctx: &'c Ctx) -> Result<(&'c SessionRecord, &'c AccountRecord, PracticeRecord), PageError> {
    let (session, account) = ctx.signed_in()?;
    let (AccountRole::Admin, Some(name)) = (account.role, &account.practice) else {
        return Err(PageError::Forbidden("A practice's settings are for its admins.".into()));
    };
    let practice = ctx.store.practice(name).map_err(PageError::internal)?;
    Ok((session, account, practice))
}

/// A member's role as the forms name it (a member is never a patient).
fn member_role(text: &str) -> Option<AccountRole> {
    AccountRole::parse(text).filter(|r| *r != AccountRole::Patient)
}

const CHOOSE_ROLE: &str = "Choose a role: clinician, staff or admin.";

struct MemberLine {
    account: AccountRecord,
    two_factor: bool,
    locked: bool,
    password_set: bool,
    me: bool,
}

#[derive(Template)]
#[template(path = "portal/practice.html")]
struct PracticePage {
    f: Frame,
    practice: PracticeRecord,
    members: Vec<MemberLine>,
    listings: Vec<ListingRecord>,
    addresses: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
    /// The roles that may share documents by link.
    share_clinician: bool,
    share_staff: bool,
    share_admin: bool,
}

fn page(ctx: &Ctx, notice: Option<String>, error: Option<String>, status: StatusCode) -> Result<Response, PageError> {
    let (session, account, practice) = admin(ctx)?;
    let mut members = Vec::new();
    for m in ctx.store.members(practice.id).map_err(PageError::internal)? {
        let state = ctx.store.sign_in_state(m.id).map_err(PageError::internal)?;
        members.push(MemberLine {
            two_factor: state.totp_enabled,
            locked: state.locked_until.is_some_and(|until| until > ctx.now),
            password_set: state.password_hash.is_some(),
            me: m.id == account.id,
            account: m,
        });
    }
    let shares = |role| practice.share_roles.contains(&role);
    let (share_clinician, share_staff, share_admin) =
        (shares(AccountRole::Clinician), shares(AccountRole::Staff), shares(AccountRole::Admin));
    let page = PracticePage {
        f: Frame::of("Practice settings", account, &session.csrf),
        share_clinician,
        share_staff,
        share_admin,
        listings: ctx.store.listings(practice.id).map_err(PageError::internal)?,
        addresses: practice
            .addresses(&*ctx.store)
            .map_err(PageError::internal)?
            .iter()
            .map(ToString::to_string)
            .collect(),
        practice,
        members,
        notice,
        error,
    };
    render(status, &page)
}

/// The settings page after a change: what was done, or why not (a conflict said on the page; a
/// member or listing that is not the practice's, not found).
fn answer(ctx: &Ctx, done: Result<String, StoreError>) -> Result<Response, PageError> {
    match done {
        Ok(notice) => page(ctx, Some(notice), None, StatusCode::OK),
        Err(StoreError::NotFound(_)) => Err(PageError::NotFound),
        Err(e @ (StoreError::Conflict(_) | StoreError::Duplicate(_))) => {
            page(ctx, None, Some(sentence(&e)), StatusCode::CONFLICT)
        }
        Err(e) => Err(PageError::internal(e)),
    }
}

pub(crate) async fn show(visit: Visit) -> Response {
    visit.run(|ctx| page(ctx, None, None, StatusCode::OK)).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    two_factor: String,
    #[serde(default)]
    invitations: String,
    #[serde(default)]
    invite_unreachable: String,
}

pub(crate) async fn settings(visit: Visit, Form(form): Form<SettingsForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, _, practice) = admin(ctx)?;
            let store = &ctx.store;
            let on = |v: &str| v == "on";
            if on(&form.two_factor) != practice.two_factor_required {
                store.set_two_factor_required(practice.id, on(&form.two_factor)).map_err(PageError::internal)?;
            }
            if on(&form.invitations) != practice.invitations_allowed {
                store.set_invitations_allowed(practice.id, on(&form.invitations)).map_err(PageError::internal)?;
            }
            if on(&form.invite_unreachable) != practice.invite_unreachable {
                store.set_invite_unreachable(practice.id, on(&form.invite_unreachable)).map_err(PageError::internal)?;
            }
            page(ctx, Some("The settings are saved.".into()), None, StatusCode::OK)
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct SharingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    check: String,
    #[serde(default)]
    clinician: String,
    #[serde(default)]
    staff: String,
    #[serde(default)]
    admin: String,
    #[serde(default)]
    auto_renew: String,
}

/// POST /practice/sharing: how the practice shares documents by link.
pub(crate) async fn sharing(visit: Visit, Form(form): Form<SharingForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, _, practice) = admin(ctx)?;
            let Some(check) = ShareCheck::parse(&form.check) else {
                let why = "Choose how a contact proves who they are, or no sharing.";
                return page(ctx, None, Some(why.into()), StatusCode::BAD_REQUEST);
            };
            let roles: Vec<AccountRole> = [
                (AccountRole::Clinician, &form.clinician),
                (AccountRole::Staff, &form.staff),
                (AccountRole::Admin, &form.admin),
            ]
            .into_iter()
            .filter(|(_, on)| on.as_str() == "on")
            .map(|(role, _)| role)
            .collect();
            answer(
                ctx,
                ctx.store
                    .set_sharing(practice.id, check, &roles, form.auto_renew == "on")
                    .map(|()| "Sharing is saved.".to_string()),
            )
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewMemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub(crate) async fn add_member(visit: Visit, Form(form): Form<NewMemberForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, _, practice) = admin(ctx)?;
            let Some(role) = member_role(&form.role) else {
                return page(ctx, None, Some(CHOOSE_ROLE.into()), StatusCode::BAD_REQUEST);
            };
            let signing = SignIn { store: &*ctx.store, now: ctx.now };
            let account = match signing.add_member(practice.id, role, &form.name, &form.email) {
                Ok(account) => account,
                Err(errors) => {
                    let why = errors.iter().map(|e| sentence(&e.message)).collect::<Vec<_>>().join(" ");
                    return page(ctx, None, Some(why), StatusCode::BAD_REQUEST);
                }
            };
            let notice = match send_welcome(ctx, &signing, &account)? {
                true => format!(
                    "{} is added; a link to set their password was e-mailed to {}.",
                    account.name, account.email
                ),
                false => format!(
                    "{} is added, but no e-mail can be sent from here: ask the operator for their link \
                     (hisp account link {}).",
                    account.name, account.email
                ),
            };
            page(ctx, Some(notice), None, StatusCode::OK)
        })
        .await
}

/// E-mails a new member their link (after this answer); false when no e-mail is configured.
fn send_welcome(ctx: &Ctx, signing: &SignIn, account: &AccountRecord) -> Result<bool, PageError> {
    let Some(mailer) = ctx.portal.mailer.clone() else { return Ok(false) };
    let mail = LinkMail::issue(signing, &ctx.portal.shared.config, account, LinkPurpose::Welcome)
        .map_err(PageError::internal)?;
    send_later(mailer, mail, account, ctx.now);
    Ok(true)
}

#[derive(Debug, Deserialize)]
pub(crate) struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

pub(crate) async fn set_role(visit: Visit, Path(id): Path<i64>, Form(form): Form<RoleForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, _, practice) = admin(ctx)?;
            let Some(role) = member_role(&form.role) else {
                return page(ctx, None, Some(CHOOSE_ROLE.into()), StatusCode::BAD_REQUEST);
            };
            answer(ctx, ctx.store.set_role(practice.id, id, role).map(|()| format!("The role is now {role}.")))
        })
        .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListForm {
    #[serde(default)]
    csrf: String,
    /// "account:ID" or "address:ADDRESS".
    #[serde(default)]
    member: String,
    #[serde(default)]
    label: String,
}

pub(crate) async fn list_member(visit: Visit, Form(form): Form<ListForm>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(&form.csrf)?;
            let (_, _, practice) = admin(ctx)?;
            let label = Some(form.label.trim()).filter(|l| !l.is_empty());
            let address;
            let member = match form.member.split_once(':') {
                Some(("account", id)) => Member::Account(id.parse().map_err(|_| PageError::NotFound)?),
                Some(("address", text)) => {
                    address = DirectAddress::parse(text).map_err(|_| PageError::NotFound)?;
                    Member::Address(&address)
                }
                _ => {
                    return page(
                        ctx,
                        None,
                        Some("Choose a member or an address to list.".into()),
                        StatusCode::BAD_REQUEST,
                    )
                }
            };
            let listed = ctx.store.list_member(practice.id, member, label);
            answer(ctx, listed.map(|l| format!("{} is listed for connected parties.", l.name)))
        })
        .await
}

pub(crate) async fn unlist(visit: Visit, Path(id): Path<i64>, Form(form): Form<TokenOnly>) -> Response {
    visit
        .run(move |ctx| {
            ctx.check_form(form.csrf())?;
            let (_, _, practice) = admin(ctx)?;
            answer(ctx, ctx.store.unlist_member(practice.id, id).map(|()| "No longer listed.".to_string()))
        })
        .await
}
