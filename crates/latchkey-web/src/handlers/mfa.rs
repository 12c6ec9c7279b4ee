//! Second factors in the browser: /login/mfa after a first factor (or to
//! step a session up), setting up a first factor there when one is
//! required, the factors on /account, and "Sign in with a passkey".
//!
//! WebAuthn ceremonies start with a small JSON call (`…/options`, CSRF
//! checked) and end with an ordinary form post carrying the browser's
//! answer; everything else works without JavaScript.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, get, post};
use base64::Engine as _;
use latchkey_core::accounts::User;
use latchkey_core::auth::AfterFirstFactor;
use latchkey_core::mfa::{Completed, Subject};
use latchkey_core::sessions::Session;
use latchkey_core::tokens::hash_secret;
use latchkey_core::webauthn::Kind;
use latchkey_core::{Core, CoreError};
use serde::Deserialize;

use crate::browser::{self, MFA};
use crate::handlers::account::{account_page, signed_in};
use crate::handlers::auth::{login_page, signed_in_response};
use crate::pages::{self, see_other};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MfaQuery {
    next: Option<String>,
    level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    csrf: String,
    next: String,
    code: String,
    setup: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CeremonyForm {
    csrf: String,
    next: String,
    kind: String,
    ceremony: String,
    credential: String,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OptionsForm {
    csrf: String,
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyForm {
    csrf: String,
    id: String,
    name: String,
}

fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    json(status, &serde_json::json!({ "message": message }))
}

/// A ceremony's options, or a refusal the page's script can show.
fn started(result: Result<latchkey_core::webauthn::Started, CoreError>) -> HttpResponse {
    match result {
        Ok(s) => json(StatusCode::OK, &serde_json::json!({ "ceremony": s.ceremony, "options": s.options })),
        Err(CoreError::Invalid { message, .. }) => json_error(StatusCode::UNPROCESSABLE_ENTITY, &message),
        Err(CoreError::NotBuilt(m)) => json_error(StatusCode::NOT_IMPLEMENTED, &m),
        Err(CoreError::ReauthenticationRequired) => {
            json_error(StatusCode::FORBIDDEN, "For your security, sign in again before changing how you sign in.")
        }
        Err(e @ (CoreError::Unavailable(_) | CoreError::Busy)) => {
            tracing::warn!(error = %e, "webauthn options unavailable");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.")
        }
        Err(e) => {
            tracing::error!(error = %e, "webauthn options failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side. Try again later.")
        }
    }
}

fn kind_of(s: &str) -> Option<Kind> {
    match s {
        "passkey" => Some(Kind::Passkey),
        "security_key" => Some(Kind::SecurityKey),
        _ => None,
    }
}

fn reauthenticate(next: &str) -> HttpResponse {
    let url = format!(
        "/login?notice=reauthenticate&next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    see_other(HttpResponse::build(StatusCode::SEE_OTHER), &url)
}

// --- Who is at /login/mfa ----------------------------------------------------

/// The sign-in waiting for a second factor in this browser, else the
/// signed-in session (stepping up), with its user.
async fn subject(req: &HttpRequest, core: &Core) -> Result<Option<(Subject, User)>, CoreError> {
    if let Some(token) = browser::cookie_value(req, core, MFA)
        && let Some(record) = core.pending_sign_in(&token).await?
    {
        return Ok(core.pending_user(&record).await?.map(|u| (Subject::Pending { token, record }, u)));
    }
    match browser::current_session(req, core).await? {
        Some(s) => Ok(core.session_user(&s).await?.map(|u| (Subject::Session(s), u))),
        None => Ok(None),
    }
}

/// The subject, or the page to show instead (sign in first).
async fn subject_or_login(req: &HttpRequest, core: &Core, next: &str) -> Result<(Subject, User), HttpResponse> {
    match subject(req, core).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => {
            let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/login?"), 7);
            url.append_pair("next", next);
            Err(see_other(HttpResponse::build(StatusCode::SEE_OTHER), &url.finish()))
        }
        Err(e) => Err(pages::error_page(&e)),
    }
}

/// The MFA page: the user's factors, or setting one up when they have none.
async fn mfa_page(
    req: &HttpRequest,
    core: &Core,
    user: &User,
    next: &str,
    phr: bool,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let f = match core.factors(&user.id).await {
        Ok(f) => f,
        Err(e) => return pages::error_page(&e),
    };
    let enrol = !f.any();
    let flow = crate::handlers::oidc::flow_in_next(core, next).await;
    let mut res = pages::form_page(req, core, status, |csrf| pages::Mfa {
        csrf,
        next: next.to_owned(),
        email: user.email.clone(),
        enrol,
        phr,
        totp: f.totp,
        webauthn: f.webauthn(),
        recovery: f.recovery_codes_left > 0,
        error,
        notice: None,
    });
    // The answer may redirect on to the app waiting for this sign-in.
    if let Some((_, redirect_uri)) = &flow {
        crate::middleware::allow_form_redirect_to(&mut res, redirect_uri);
    }
    res
}

#[get("/login/mfa")]
pub async fn mfa_form(req: HttpRequest, core: Data<Core>, q: Query<MfaQuery>) -> HttpResponse {
    let next = browser::safe_next(q.next.as_deref());
    let (_, user) = match subject_or_login(&req, &core, &next).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    mfa_page(&req, &core, &user, &next, q.level.as_deref() == Some("phr"), StatusCode::OK, None).await
}

/// After a second factor: the session's cookie, the waiting sign-in's gone,
/// and on to `next` — through the recovery codes when there are new ones.
async fn completed_response(
    req: &HttpRequest,
    core: &Core,
    done: Completed,
    next: &str,
    codes: Option<Vec<String>>,
) -> HttpResponse {
    // A waiting sign-in replaces whatever session this browser had before.
    if done.device_token.is_some()
        && let Ok(Some(old)) = browser::current_session(req, core).await
        && old.handle != done.session.handle
    {
        let sid = latchkey_core::auth::session_sid(&old);
        let _ = core.end_session(&old.record.user_id, &old.handle).await;
        let _ = core.revoke_session_tokens(&old.record.user_id, &[sid]).await;
    }
    let mut builder = HttpResponse::build(StatusCode::SEE_OTHER);
    builder.cookie(browser::session_cookie(core, done.session_id));
    builder.cookie(browser::removal(core, MFA));
    if let Some(device) = done.device_token {
        builder.cookie(browser::device_cookie(core, device));
    }
    match codes {
        Some(codes) => recovery_codes_page(builder, codes, next),
        None => see_other(builder, next),
    }
}

fn recovery_codes_page(builder: HttpResponseBuilder, codes: Vec<String>, next: &str) -> HttpResponse {
    pages::render(
        builder,
        StatusCode::OK,
        &pages::RecoveryCodes { codes, next: next.to_owned(), error: None, notice: None },
    )
}

/// What a refused second factor shows: the same page with the reason.
async fn refused(req: &HttpRequest, core: &Core, user: &User, next: &str, phr: bool, e: CoreError) -> HttpResponse {
    match e {
        CoreError::Invalid { message, .. } => {
            mfa_page(req, core, user, next, phr, StatusCode::UNPROCESSABLE_ENTITY, Some(message)).await
        }
        e @ CoreError::RateLimited(_) => {
            mfa_page(req, core, user, next, phr, StatusCode::TOO_MANY_REQUESTS, Some(e.to_string())).await
        }
        e => pages::error_page(&e),
    }
}

async fn finish_second_factor(
    req: &HttpRequest,
    core: &Core,
    subject: &Subject,
    user: &User,
    next: &str,
    methods: &[&str],
    codes: Option<Vec<String>>,
) -> HttpResponse {
    match core.complete_second_factor(subject, methods, &browser::context(req)).await {
        Ok(done) => completed_response(req, core, done, next, codes).await,
        Err(e) => refused(req, core, user, next, false, e).await,
    }
}

#[post("/login/mfa/code")]
pub async fn mfa_code(req: HttpRequest, core: Data<Core>, form: Form<CodeForm>) -> HttpResponse {
    code_step(&req, &core, &form, false).await
}

#[post("/login/mfa/recovery")]
pub async fn mfa_recovery(req: HttpRequest, core: Data<Core>, form: Form<CodeForm>) -> HttpResponse {
    code_step(&req, &core, &form, true).await
}

/// A code typed at /login/mfa: one from the authenticator app, or a
/// recovery code.
async fn code_step(req: &HttpRequest, core: &Core, form: &CodeForm, recovery: bool) -> HttpResponse {
    if !browser::csrf_ok(req, core, &form.csrf) {
        return pages::csrf_refused();
    }
    let next = browser::safe_next(Some(&form.next));
    let (subject, user) = match subject_or_login(req, core, &next).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let ctx = browser::context(req);
    let checked = if recovery {
        core.recovery_code_use(&user, &form.code, &ctx).await
    } else {
        core.totp_verify(&user.id, &form.code, &ctx).await
    };
    match checked {
        Ok(true) => finish_second_factor(req, core, &subject, &user, &next, &[latchkey_core::mfa::AMR_OTP], None).await,
        Ok(false) if recovery => {
            let msg = "That recovery code is not right, or was used already.";
            refused(req, core, &user, &next, false, CoreError::invalid("Recovery code", msg)).await
        }
        Ok(false) => {
            let msg = "That code is not right, or was used already. Wait for the next one and try again.";
            refused(req, core, &user, &next, false, CoreError::invalid("Code", msg)).await
        }
        Err(e) => refused(req, core, &user, &next, false, e).await,
    }
}

#[post("/login/mfa/key/options")]
pub async fn mfa_key_options(req: HttpRequest, core: Data<Core>, form: Form<OptionsForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return json_error(StatusCode::FORBIDDEN, "This page has expired. Reload it and try again.");
    }
    match subject(&req, &core).await {
        Ok(Some((s, user))) => started(core.webauthn_second_factor_start(&user.id, &s.binding()).await),
        Ok(None) => json_error(StatusCode::UNAUTHORIZED, "Sign in first."),
        Err(e) => started(Err(e)),
    }
}

#[post("/login/mfa/key")]
pub async fn mfa_key(req: HttpRequest, core: Data<Core>, form: Form<CeremonyForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let next = browser::safe_next(Some(&form.next));
    let (subject, user) = match subject_or_login(&req, &core, &next).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.webauthn_second_factor_finish(&user.id, &form.ceremony, &subject.binding(), &form.credential).await {
        Ok(methods) => finish_second_factor(&req, &core, &subject, &user, &next, &methods, None).await,
        Err(e) => {
            if matches!(e, CoreError::Invalid { .. }) {
                core.second_factor_failed(Some(&user.id), "hwk", &browser::context(&req)).await;
            }
            refused(&req, &core, &user, &next, false, e).await
        }
    }
}

/// Whether `subject` may set up a first factor here: a sign-in that found
/// the user without any (and still does), or a session signed in within the
/// last 10 minutes whose user has none. Otherwise a password alone, or an
/// old session, could add a factor of its own and pass MFA with it.
async fn may_enrol(core: &Core, subject: &Subject, user: &User) -> Result<Result<(), &'static str>, CoreError> {
    if core.factors(&user.id).await?.any() {
        return Ok(Err("You already have a second step. Use it to sign in; add more on your account page afterwards."));
    }
    Ok(match subject {
        Subject::Pending { record, .. } if record.may_enrol => Ok(()),
        Subject::Pending { .. } => Err("This sign-in cannot set up a second step. Sign in again."),
        Subject::Session(s) if core.recently_authenticated(s) => Ok(()),
        Subject::Session(_) => Err(REAUTHENTICATE),
    })
}

const REAUTHENTICATE: &str = "reauthenticate";

async fn enrolling(req: &HttpRequest, core: &Core, next: &str) -> Result<(Subject, User), HttpResponse> {
    let (subject, user) = subject_or_login(req, core, next).await?;
    match may_enrol(core, &subject, &user).await {
        Ok(Ok(())) => Ok((subject, user)),
        Ok(Err(REAUTHENTICATE)) => Err(reauthenticate(next)),
        Ok(Err(why)) => Err(mfa_page(req, core, &user, next, false, StatusCode::FORBIDDEN, Some(why.to_owned())).await),
        Err(e) => Err(pages::error_page(&e)),
    }
}

fn qr_data_url(svg: &str) -> String {
    format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg))
}

/// Where a set-up page posts, continues and cancels to.
struct SetupTarget {
    action: &'static str,
    next: String,
    back: String,
}

impl SetupTarget {
    /// During sign-in: back to /login/mfa, then on to `next`.
    fn sign_in(next: &str) -> SetupTarget {
        let back =
            format!("/login/mfa?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
        SetupTarget { action: "/login/mfa/totp", next: next.to_owned(), back }
    }
    fn account() -> SetupTarget {
        SetupTarget { action: "/account/totp", next: "/account".to_owned(), back: "/account".to_owned() }
    }
}

fn setup_page(
    req: &HttpRequest,
    core: &Core,
    setup: latchkey_core::mfa::TotpSetup,
    to: &SetupTarget,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    pages::form_page(req, core, status, |csrf| pages::TotpSetup {
        csrf,
        next: to.next.clone(),
        action: to.action.to_owned(),
        back: to.back.clone(),
        // In groups of four, easier to type by hand (apps ignore the spaces).
        secret: setup.secret.as_bytes().chunks(4).map(String::from_utf8_lossy).collect::<Vec<_>>().join(" "),
        qr: qr_data_url(&setup.qr_svg),
        setup: setup.sealed.clone(),
        error,
        notice: None,
    })
}

/// A wrong code on a set-up page: the same QR code again, with the reason;
/// an expired set-up starts over.
fn setup_refused(
    req: &HttpRequest,
    core: &Core,
    user: &User,
    binding: &str,
    sealed: &str,
    to: &SetupTarget,
    e: CoreError,
) -> HttpResponse {
    let status = match &e {
        CoreError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        CoreError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => return pages::error_page(&e),
    };
    let message = match &e {
        CoreError::Invalid { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let setup = match core.totp_setup_again(user, binding, sealed) {
        Ok(Some(s)) => s,
        Ok(None) => match core.totp_setup(user, binding) {
            Ok(s) => s,
            Err(e) => return pages::error_page(&e),
        },
        Err(e) => return pages::error_page(&e),
    };
    setup_page(req, core, setup, to, status, Some(message))
}

#[get("/login/mfa/totp")]
pub async fn mfa_totp_form(req: HttpRequest, core: Data<Core>, q: Query<MfaQuery>) -> HttpResponse {
    let next = browser::safe_next(q.next.as_deref());
    let (subject, user) = match enrolling(&req, &core, &next).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.totp_setup(&user, &subject.binding()) {
        Ok(setup) => setup_page(&req, &core, setup, &SetupTarget::sign_in(&next), StatusCode::OK, None),
        Err(e) => pages::error_page(&e),
    }
}

#[post("/login/mfa/totp")]
pub async fn mfa_totp(req: HttpRequest, core: Data<Core>, form: Form<CodeForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let next = browser::safe_next(Some(&form.next));
    let (subject, user) = match enrolling(&req, &core, &next).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let ctx = browser::context(&req);
    match core.totp_confirm(&user, &subject.binding(), &form.setup, &form.code, &ctx).await {
        Ok(codes) => {
            finish_second_factor(&req, &core, &subject, &user, &next, &[latchkey_core::mfa::AMR_OTP], codes).await
        }
        Err(e) => setup_refused(&req, &core, &user, &subject.binding(), &form.setup, &SetupTarget::sign_in(&next), e),
    }
}

#[post("/login/mfa/register/options")]
pub async fn mfa_register_options(req: HttpRequest, core: Data<Core>, form: Form<OptionsForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return json_error(StatusCode::FORBIDDEN, "This page has expired. Reload it and try again.");
    }
    let Some(kind) = kind_of(&form.kind) else { return json_error(StatusCode::BAD_REQUEST, "Unknown kind of key.") };
    let (subject, user) = match subject(&req, &core).await {
        Ok(Some(v)) => v,
        Ok(None) => return json_error(StatusCode::UNAUTHORIZED, "Sign in first."),
        Err(e) => return started(Err(e)),
    };
    match may_enrol(&core, &subject, &user).await {
        Ok(Ok(())) => started(core.webauthn_register_start(&user, kind, &subject.binding()).await),
        Ok(Err(REAUTHENTICATE)) => started(Err(CoreError::ReauthenticationRequired)),
        Ok(Err(why)) => json_error(StatusCode::FORBIDDEN, why),
        Err(e) => started(Err(e)),
    }
}

#[post("/login/mfa/register")]
pub async fn mfa_register(req: HttpRequest, core: Data<Core>, form: Form<CeremonyForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let next = browser::safe_next(Some(&form.next));
    let (subject, user) = match enrolling(&req, &core, &next).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let ctx = browser::context(&req);
    let binding = subject.binding();
    match core.webauthn_register_finish(&user, &form.ceremony, &binding, &form.name, &form.credential, &ctx).await {
        // A key set up just now proves no phishing resistance yet (only the
        // first factor stood behind adding it): `mfa`, never `phr`.
        Ok((_, codes)) => finish_second_factor(&req, &core, &subject, &user, &next, &[], codes).await,
        Err(e) => refused(&req, &core, &user, &next, false, e).await,
    }
}

#[post("/login/mfa/cancel")]
pub async fn mfa_cancel(req: HttpRequest, core: Data<Core>, form: Form<OptionsForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    match browser::cookie_value(&req, &core, MFA) {
        Some(token) => {
            if let Err(e) = core.drop_pending(&token).await {
                return pages::error_page(&e);
            }
            let mut b = HttpResponse::build(StatusCode::SEE_OTHER);
            b.cookie(browser::removal(&core, MFA));
            see_other(b, "/login")
        }
        // Stepping a session up: cancelling is signing out, which asks first.
        None => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/logout"),
    }
}

// --- /account ------------------------------------------------------------------

/// The signed-in user for a change to their factors: signed in within the
/// last 10 minutes, else sign in again and come back to `back`.
async fn recent(req: &HttpRequest, core: &Core, back: &str) -> Result<(Session, User), HttpResponse> {
    let (session, user) = signed_in(req, core).await?;
    if !core.recently_authenticated(&session) {
        return Err(reauthenticate(back));
    }
    Ok((session, user))
}

/// A refused change on /account: the page with the reason.
async fn account_refused(req: &HttpRequest, core: &Core, session: &Session, user: &User, e: CoreError) -> HttpResponse {
    let (status, message) = match e {
        CoreError::Invalid { message, .. } => (StatusCode::UNPROCESSABLE_ENTITY, message),
        CoreError::Conflict(message) => (StatusCode::CONFLICT, message),
        e @ CoreError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        CoreError::ReauthenticationRequired => return reauthenticate("/account"),
        e => return pages::error_page(&e),
    };
    account_page(req, core, session, user, status, Some(message), None).await
}

#[get("/account/totp")]
pub async fn account_totp_form(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    let (session, user) = match recent(&req, &core, "/account/totp").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.totp_setup(&user, &Subject::Session(session).binding()) {
        Ok(setup) => setup_page(&req, &core, setup, &SetupTarget::account(), StatusCode::OK, None),
        Err(e) => pages::error_page(&e),
    }
}

#[post("/account/totp")]
pub async fn account_totp(req: HttpRequest, core: Data<Core>, form: Form<CodeForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, user) = match recent(&req, &core, "/account/totp").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let binding = Subject::Session(session).binding();
    match core.totp_confirm(&user, &binding, &form.setup, &form.code, &browser::context(&req)).await {
        Ok(Some(codes)) => {
            recovery_codes_page(HttpResponse::build(StatusCode::OK), codes, "/account?notice=totp-added")
        }
        Ok(None) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=totp-added"),
        Err(e) => setup_refused(&req, &core, &user, &binding, &form.setup, &SetupTarget::account(), e),
    }
}

#[post("/account/totp/remove")]
pub async fn account_totp_remove(req: HttpRequest, core: Data<Core>, form: Form<OptionsForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.totp_remove(&user, &session, &browser::context(&req)).await {
        Ok(_) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=totp-removed"),
        Err(e) => account_refused(&req, &core, &session, &user, e).await,
    }
}

#[post("/account/recovery-codes")]
pub async fn account_recovery_codes(req: HttpRequest, core: Data<Core>, form: Form<OptionsForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, user) = match recent(&req, &core, "/account").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.factors(&user.id).await {
        Ok(f) if f.any() => {}
        Ok(_) => {
            let e = CoreError::invalid("Recovery codes", "Recovery codes back up a second step: add one first.");
            return account_refused(&req, &core, &session, &user, e).await;
        }
        Err(e) => return pages::error_page(&e),
    }
    match core.new_recovery_codes(&user, &browser::context(&req)).await {
        Ok(codes) => recovery_codes_page(HttpResponse::build(StatusCode::OK), codes, "/account"),
        Err(e) => pages::error_page(&e),
    }
}

#[post("/account/keys/options")]
pub async fn account_key_options(req: HttpRequest, core: Data<Core>, form: Form<OptionsForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return json_error(StatusCode::FORBIDDEN, "This page has expired. Reload it and try again.");
    }
    let Some(kind) = kind_of(&form.kind) else { return json_error(StatusCode::BAD_REQUEST, "Unknown kind of key.") };
    let (session, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(_) => return json_error(StatusCode::UNAUTHORIZED, "Sign in first."),
    };
    if !core.recently_authenticated(&session) {
        return started(Err(CoreError::ReauthenticationRequired));
    }
    let binding = Subject::Session(session).binding();
    started(core.webauthn_register_start(&user, kind, &binding).await)
}

#[post("/account/keys")]
pub async fn account_key_add(req: HttpRequest, core: Data<Core>, form: Form<CeremonyForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, user) = match recent(&req, &core, "/account").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let binding = Subject::Session(session.clone()).binding();
    let ctx = browser::context(&req);
    match core.webauthn_register_finish(&user, &form.ceremony, &binding, &form.name, &form.credential, &ctx).await {
        Ok((_, Some(codes))) => {
            recovery_codes_page(HttpResponse::build(StatusCode::OK), codes, "/account?notice=key-added")
        }
        Ok((_, None)) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=key-added"),
        Err(e) => account_refused(&req, &core, &session, &user, e).await,
    }
}

#[post("/account/keys/rename")]
pub async fn account_key_rename(req: HttpRequest, core: Data<Core>, form: Form<KeyForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.rename_key(&user, &session, &form.id, &form.name).await {
        Ok(true) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=key-renamed"),
        Ok(false) => key_not_found(),
        Err(e) => account_refused(&req, &core, &session, &user, e).await,
    }
}

#[post("/account/keys/remove")]
pub async fn account_key_remove(req: HttpRequest, core: Data<Core>, form: Form<KeyForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.remove_key(&user, &session, &form.id, &browser::context(&req)).await {
        Ok(true) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=key-removed"),
        Ok(false) => key_not_found(),
        Err(e) => account_refused(&req, &core, &session, &user, e).await,
    }
}

fn key_not_found() -> HttpResponse {
    pages::message(
        StatusCode::NOT_FOUND,
        "Key not found",
        "That key was already removed, or is not one of yours.",
        true,
        Some(("/account", "Back to your account")),
    )
}

// --- Passkey sign-in -------------------------------------------------------------

/// Binds a passkey sign-in to this browser (its CSRF cookie).
fn browser_binding(req: &HttpRequest, core: &Core) -> Option<String> {
    browser::cookie_value(req, core, browser::CSRF).map(|v| format!("browser:{}", hash_secret(&v)))
}

#[post("/login/passkey/options")]
pub async fn passkey_options(req: HttpRequest, core: Data<Core>, form: Form<OptionsForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return json_error(StatusCode::FORBIDDEN, "This page has expired. Reload it and try again.");
    }
    let Some(binding) = browser_binding(&req, &core) else {
        return json_error(StatusCode::FORBIDDEN, "This page has expired. Reload it and try again.");
    };
    started(core.passkey_sign_in_start(&binding).await)
}

#[post("/login/passkey")]
pub async fn passkey_sign_in(req: HttpRequest, core: Data<Core>, form: Form<CeremonyForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let next = browser::safe_next(Some(&form.next));
    let Some(binding) = browser_binding(&req, &core) else { return pages::csrf_refused() };
    match core.passkey_sign_in_finish(&form.ceremony, &binding, &form.credential, &browser::context(&req)).await {
        Ok(signed_in) => signed_in_response(&req, &core, AfterFirstFactor::SignedIn(Box::new(signed_in)), &next).await,
        Err(CoreError::Invalid { .. }) => {
            core.second_factor_failed(None, "passkey", &browser::context(&req)).await;
            let msg = "That passkey did not sign you in. Try again, or sign in with your email.".to_owned();
            login_page(&req, &core, StatusCode::UNAUTHORIZED, &next, "", Some(msg), None).await
        }
        Err(e) => pages::error_page(&e),
    }
}
