//! Sign-in with upstream providers: "Continue with …" on /login, the
//! callback, and linking or unlinking from /account.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use latchkey_core::Core;
use latchkey_core::upstream::{Intent, Outcome};
use serde::Deserialize;

use crate::browser::{self, UPSTREAM};
use crate::handlers::auth::signed_in_response;
use crate::pages::{self, see_other};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NextQuery {
    next: Option<String>,
}

fn back_to_login(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    pages::message(status, title, text, true, Some(("/login", "Back to sign in")))
}

/// Sends the browser to the provider, bound to this browser by a cookie.
async fn start(core: &Core, provider: &str, intent: Intent, next: &str) -> HttpResponse {
    let token = match latchkey_core::tokens::random_token() {
        Ok(t) => t,
        Err(e) => return pages::error_page(&e.into()),
    };
    match core.start_upstream(provider, intent, next, &token).await {
        Ok(Ok(url)) => {
            let mut b = HttpResponse::build(StatusCode::FOUND);
            b.cookie(browser::upstream_cookie(core, token));
            b.insert_header((actix_web::http::header::LOCATION, url))
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Ok(Err(msg)) if msg == "unknown provider" => {
            back_to_login(StatusCode::NOT_FOUND, "Unknown sign-in provider", "There is no such way to sign in here.")
        }
        Ok(Err(msg)) => back_to_login(StatusCode::BAD_GATEWAY, "Sign-in is unavailable", &msg),
        Err(e) => pages::error_page(&e),
    }
}

#[get("/login/with/{provider}")]
pub async fn begin(core: Data<Core>, provider: Path<String>, q: Query<NextQuery>) -> HttpResponse {
    let next = browser::safe_next(q.next.as_deref());
    start(&core, &provider, Intent::Login, &next).await
}

#[get("/login/with/{provider}/callback")]
pub async fn callback(req: HttpRequest, core: Data<Core>, provider: Path<String>) -> HttpResponse {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let cookie = browser::cookie_value(&req, &core, UPSTREAM);
    let signed_in = match browser::current_session(&req, &core).await {
        Ok(s) => s,
        Err(e) => return pages::error_page(&e),
    };
    let user = signed_in.as_ref().map(|s| s.record.user_id.as_str());
    let outcome = match core.finish_upstream(&provider, &pairs, cookie.as_deref(), user, &browser::context(&req)).await
    {
        Ok(o) => o,
        Err(e) => return pages::error_page(&e),
    };
    let mut res = match outcome {
        Outcome::SignedIn { signed_in, next } => {
            let next = browser::safe_next(Some(&next));
            signed_in_response(&req, &core, *signed_in, &next).await
        }
        Outcome::Linked { .. } => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=linked"),
        Outcome::Refused(msg) => back_to_login(StatusCode::BAD_REQUEST, "Sign-in didn’t complete", &msg),
        Outcome::AddressTaken { provider } => back_to_login(
            StatusCode::CONFLICT,
            "This address already has an account",
            &format!(
                "Sign in with your password or a sign-in link, then link {provider} from your account page to use it next time."
            ),
        ),
        Outcome::LinkedElsewhere { provider } => pages::message(
            StatusCode::CONFLICT,
            "Already linked elsewhere",
            &format!("That {provider} account is linked to another account here. Unlink it there first."),
            true,
            Some(("/account", "Back to your account")),
        ),
        Outcome::Disabled => back_to_login(
            StatusCode::FORBIDDEN,
            "This account is disabled",
            "This account is disabled. Contact your administrator.",
        ),
        Outcome::Expired => back_to_login(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "It took too long, or it was started in another browser. Start again from the sign-in page.",
        ),
        Outcome::Failed(msg) => back_to_login(StatusCode::BAD_GATEWAY, "Sign-in didn’t work", &msg),
    };
    // The flow is over: its cookie goes.
    let _ = res.add_cookie(&browser::removal(&core, UPSTREAM));
    res
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkForm {
    csrf: String,
    provider: String,
}

/// Links a provider to the signed-in account (after a recent sign-in).
#[post("/account/identities/link")]
pub async fn link(req: HttpRequest, core: Data<Core>, form: Form<LinkForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let session = match browser::current_session(&req, &core).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login?next=/account"),
        Err(e) => return pages::error_page(&e),
    };
    if !core.recently_authenticated(&session) {
        return see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login?notice=reauthenticate&next=/account");
    }
    start(&core, &form.provider, Intent::Link { user_id: session.record.user_id.clone() }, "/account").await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UnlinkForm {
    csrf: String,
    identity: String,
}

#[post("/account/identities/unlink")]
pub async fn unlink(req: HttpRequest, core: Data<Core>, form: Form<UnlinkForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let session = match browser::current_session(&req, &core).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login?next=/account"),
        Err(e) => return pages::error_page(&e),
    };
    if !core.recently_authenticated(&session) {
        return see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login?notice=reauthenticate&next=/account");
    }
    let user = match core.session_user(&session).await {
        Ok(Some(u)) => u,
        Ok(None) => return see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login"),
        Err(e) => return pages::error_page(&e),
    };
    match core.unlink_identity(&user, &form.identity, &browser::context(&req)).await {
        Ok(true) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=unlinked"),
        Ok(false) => pages::message(
            StatusCode::NOT_FOUND,
            "Not found",
            "That sign-in method is not linked to your account.",
            true,
            Some(("/account", "Back to your account")),
        ),
        Err(latchkey_core::CoreError::Conflict(msg)) => pages::message(
            StatusCode::CONFLICT,
            "Can’t unlink this one",
            &msg,
            true,
            Some(("/account", "Back to your account")),
        ),
        Err(e) => pages::error_page(&e),
    }
}
