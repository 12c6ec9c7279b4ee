//! The HTML pages (askama templates under templates/), and how a page or an
//! error page becomes a response. Pages are never cached: they carry CSRF
//! tokens and personal data.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;
use latchkey_core::CoreError;

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub csrf: String,
    pub next: String,
    /// The app waiting for this sign-in, if any.
    pub app: Option<String>,
    /// Upstream providers: (key, display name).
    pub providers: Vec<(String, String)>,
    /// "Sign in with a passkey" (WebAuthn is available).
    pub passkeys: bool,
    pub email: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct Signup {
    pub csrf: String,
    pub next: String,
    pub name: String,
    pub email: String,
    pub min_length: usize,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub title: String,
    pub message: String,
    /// An address shown in bold after `message`, then `after`.
    pub email: Option<String>,
    pub after: String,
    pub alert: bool,
    pub link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "magic_link.html")]
pub struct MagicLink {
    pub csrf: String,
    pub token: String,
    pub email: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct Logout {
    pub csrf: String,
    pub email: String,
    /// The app that asked to sign the user out, if known.
    pub app: Option<String>,
    /// Carried to the POST when the app's request is valid (else empty).
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "forgot.html")]
pub struct Forgot {
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "reset.html")]
pub struct Reset {
    pub csrf: String,
    pub token: String,
    pub email: String,
    pub min_length: usize,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct Verify {
    pub csrf: String,
    pub token: String,
    pub email: String,
    /// Not signed in as the account here: offer to keep the password.
    pub ask_password: bool,
    pub error: Option<String>,
}

pub struct SessionRow {
    pub handle: String,
    pub device: String,
    pub address: String,
    pub last_seen: String,
    pub created: String,
    pub current: bool,
}

pub struct IdentityView {
    pub id: String,
    pub provider: String,
    pub email: String,
}

pub struct AppRow {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub granted: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent {
    pub csrf: String,
    pub flow: String,
    pub app: String,
    /// The host the app will receive the answer at.
    pub host: String,
    pub email: String,
    /// What the app asks for, in the user's words.
    pub scopes: Vec<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct Account {
    pub csrf: String,
    pub name: Option<String>,
    pub email: String,
    pub email_verified: bool,
    pub has_password: bool,
    pub sessions: Vec<SessionRow>,
    pub apps: Vec<AppRow>,
    pub identities: Vec<IdentityView>,
    /// Providers that can still be linked: (key, display name).
    pub linkable: Vec<(String, String)>,
    pub min_length: usize,
    pub totp: bool,
    pub keys: Vec<KeyRow>,
    pub has_factor: bool,
    pub recovery_left: i64,
    pub mfa_required: bool,
    pub error: Option<String>,
    pub notice: Option<String>,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    /// "Passkey" or "Security key", and whether it syncs.
    pub kind: String,
    pub added: String,
    pub last_used: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa.html")]
pub struct Mfa {
    pub csrf: String,
    pub next: String,
    pub email: String,
    /// No factor yet: set one up.
    pub enrol: bool,
    /// Only a security key or passkey will do.
    pub phr: bool,
    pub totp: bool,
    pub webauthn: bool,
    pub recovery: bool,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetup {
    pub csrf: String,
    pub next: String,
    pub action: String,
    pub back: String,
    pub secret: String,
    /// The QR code as a data: URL.
    pub qr: String,
    pub setup: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
    pub next: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// A page with a form: its CSRF token comes from the browser's cookie (set
/// here when the browser has none yet).
pub fn form_page<T: Template>(
    req: &actix_web::HttpRequest,
    core: &latchkey_core::Core,
    status: StatusCode,
    page: impl FnOnce(String) -> T,
) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    match crate::browser::csrf_token(req, core, &mut builder) {
        Ok(csrf) => render(builder, status, &page(csrf)),
        Err(e) => error_page(&e),
    }
}

/// Renders `page` with `status` into `builder` (which may carry cookies).
pub fn render(mut builder: HttpResponseBuilder, status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => builder
            .status(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("Something went wrong on our side. Try again later.")
        }
    }
}

pub fn message(status: StatusCode, title: &str, text: &str, alert: bool, link: Option<(&str, &str)>) -> HttpResponse {
    render(
        HttpResponse::build(status),
        status,
        &Message {
            title: title.to_owned(),
            message: text.to_owned(),
            email: None,
            after: String::new(),
            alert,
            link: link.map(|(h, t)| (h.to_owned(), t.to_owned())),
        },
    )
}

/// An information page that names an address: `before` EMAIL `after`.
pub fn message_with_email(
    status: StatusCode,
    title: &str,
    before: &str,
    email: &str,
    after: &str,
    link: Option<(&str, &str)>,
) -> HttpResponse {
    render(
        HttpResponse::build(status),
        status,
        &Message {
            title: title.to_owned(),
            message: before.to_owned(),
            email: Some(email.to_owned()),
            after: after.to_owned(),
            alert: false,
            link: link.map(|(h, t)| (h.to_owned(), t.to_owned())),
        },
    )
}

/// A failed CSRF check: nothing was done.
pub fn csrf_refused() -> HttpResponse {
    message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "For your security, the form could not be accepted. Go back, reload the page and try again.",
        true,
        Some(("/login", "Back to sign in")),
    )
}

/// A `CoreError` on a browser page.
pub fn error_page(e: &CoreError) -> HttpResponse {
    match e {
        CoreError::Unavailable(_) | CoreError::Busy => {
            let mut res = message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "We can't complete this right now. Wait a moment and try again.",
                true,
                None,
            );
            res.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from_static("5"));
            res
        }
        CoreError::RateLimited(_) => {
            message(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", &e.to_string(), true, None)
        }
        CoreError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side. Try again later.",
                true,
                None,
            )
        }
        other => message(StatusCode::BAD_REQUEST, "That didn't work", &other.to_string(), true, None),
    }
}

/// A 303 to `location` (after a form).
pub fn see_other(mut builder: HttpResponseBuilder, location: &str) -> HttpResponse {
    builder
        .status(StatusCode::SEE_OTHER)
        .insert_header((actix_web::http::header::LOCATION, location.to_owned()))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}
