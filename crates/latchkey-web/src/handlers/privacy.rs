//! The user's own data on /account: "Export my data" (a JSON download) and
//! "Delete my account" (a confirmation page, then the deletion). Both need a
//! sign-in within the last 10 minutes, like the other sensitive actions,
//! and are POSTed forms with a CSRF token, so no other site can start them.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::web::{Data, Form};
use actix_web::{HttpRequest, HttpResponse, get, post};
use latchkey_core::accounts::User;
use latchkey_core::audit::Actor;
use latchkey_core::privacy::UserExport;
use latchkey_core::sessions::Session;
use latchkey_core::{Core, CoreError};
use serde::Deserialize;

use super::account::signed_in;
use crate::browser::{self, DEVICE, MFA, SESSION};
use crate::pages::{self, see_other};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    csrf: String,
}

/// Sign in again, then back to `back`.
fn reauthenticate(back: &str) -> HttpResponse {
    let next = url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>();
    see_other(HttpResponse::build(StatusCode::SEE_OTHER), &format!("/login?notice=reauthenticate&next={next}"))
}

/// The signed-in user for a sensitive action: signed in within the last 10
/// minutes, else sign in again and come back to `back`.
async fn recent(req: &HttpRequest, core: &Core, back: &str) -> Result<(Session, User), HttpResponse> {
    let (session, user) = signed_in(req, core).await?;
    if !core.recently_authenticated(&session) {
        return Err(reauthenticate(back));
    }
    Ok((session, user))
}

/// An export as a file to save: JSON, never cached.
pub(crate) fn download(data: &UserExport) -> HttpResponse {
    let body = match serde_json::to_vec_pretty(data) {
        Ok(b) => b,
        Err(e) => return pages::error_page(&CoreError::Internal(e.to_string())),
    };
    let name = format!("latchkey-data-{}.json", data.exported_at.format("%Y-%m-%d"));
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

#[post("/account/export")]
pub async fn export(req: HttpRequest, core: Data<Core>, form: Form<CsrfForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (_, user) = match recent(&req, &core, "/account").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.export_user_for(&user.id, &Actor::User(user.id.clone()), &browser::context(&req)).await {
        Ok(data) => download(&data),
        Err(e) => pages::error_page(&e),
    }
}

#[derive(askama::Template)]
#[template(path = "account_delete.html")]
struct DeletePage {
    csrf: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

fn delete_page(req: &HttpRequest, core: &Core, user: &User, status: StatusCode, error: Option<String>) -> HttpResponse {
    pages::form_page(req, core, status, |csrf| DeletePage { csrf, email: user.email.clone(), error, notice: None })
}

#[get("/account/delete")]
pub async fn delete_form(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    match recent(&req, &core, "/account/delete").await {
        Ok((_, user)) => delete_page(&req, &core, &user, StatusCode::OK, None),
        Err(res) => res,
    }
}

#[post("/account/delete")]
pub async fn delete(req: HttpRequest, core: Data<Core>, form: Form<CsrfForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (_, user) = match recent(&req, &core, "/account/delete").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.delete_account(&user.id, &Actor::User(user.id.clone()), &browser::context(&req), true).await {
        Ok(_) => {
            // Every session ended with the account; this browser forgets it.
            let mut b = HttpResponse::build(StatusCode::OK);
            b.cookie(browser::removal(&core, SESSION));
            b.cookie(browser::removal(&core, DEVICE));
            b.cookie(browser::removal(&core, MFA));
            pages::render(
                b,
                StatusCode::OK,
                &pages::Message {
                    title: "Your account is deleted".to_owned(),
                    message: "Your account and everything it held are gone, and every session was signed out. We sent a last message to".to_owned(),
                    email: Some(user.email.clone()),
                    after: " to confirm.".to_owned(),
                    alert: false,
                    link: None,
                },
            )
        }
        Err(CoreError::Conflict(message)) => delete_page(&req, &core, &user, StatusCode::CONFLICT, Some(message)),
        Err(CoreError::NotFound(_)) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login"),
        Err(e) => pages::error_page(&e),
    }
}
