//! Sign-in, sign-up, sign-out, email verification and password reset pages.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use latchkey_core::auth::{AfterFirstFactor, LoginRefusal};
use latchkey_core::{Core, CoreError};
use serde::Deserialize;

use crate::browser::{self, DEVICE, SESSION};
use crate::pages::{self, see_other};

fn field_error(e: &CoreError) -> Option<String> {
    match e {
        CoreError::Invalid { message, .. } => Some(message.clone()),
        CoreError::WeakPassword(p) => Some(p.to_string()),
        CoreError::RateLimited(_) => Some(e.to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------- sign in

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    next: Option<String>,
    notice: Option<String>,
    /// From an app's authorization request: the address to fill in.
    login_hint: Option<String>,
}

fn notice_text(code: Option<&str>) -> Option<String> {
    Some(
        match code? {
            "signed-out" => "You are signed out.",
            "password-set" => "Your new password is set. Sign in with it.",
            "reauthenticate" => "For your security, sign in again to continue.",
            "choose-account" => "Sign in with the account you want to use.",
            _ => return None,
        }
        .to_owned(),
    )
}

pub(crate) async fn login_page(
    req: &HttpRequest,
    core: &Core,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<String>,
    notice: Option<String>,
) -> HttpResponse {
    let flow = crate::handlers::oidc::flow_in_next(core, next).await;
    let mut res = pages::form_page(req, core, status, |csrf| pages::Login {
        csrf,
        next: next.to_owned(),
        app: flow.as_ref().map(|(app, _)| app.clone()),
        providers: core.settings.providers.iter().map(|p| (p.key.clone(), p.display_name.clone())).collect(),
        passkeys: core.webauthn.is_some(),
        email: email.to_owned(),
        error,
        notice,
    });
    // The form's answer may redirect on to the app waiting for it.
    if let Some((_, redirect_uri)) = &flow {
        crate::middleware::allow_form_redirect_to(&mut res, redirect_uri);
    }
    res
}

#[get("/login")]
pub async fn login_form(req: HttpRequest, core: Data<Core>, q: Query<LoginQuery>) -> HttpResponse {
    let next = browser::safe_next(q.next.as_deref());
    // An app asking for a fresh sign-in (or another account) gets the form
    // even when this browser is signed in.
    if !matches!(q.notice.as_deref(), Some("reauthenticate" | "choose-account")) {
        match browser::current_session(&req, &core).await {
            Ok(Some(_)) => return see_other(HttpResponse::build(StatusCode::SEE_OTHER), &next),
            Ok(None) => {}
            Err(e) => return pages::error_page(&e),
        }
    }
    let hint = q.login_hint.as_deref().filter(|h| h.len() <= 254 && h.contains('@')).unwrap_or_default();
    login_page(&req, &core, StatusCode::OK, &next, hint, None, notice_text(q.notice.as_deref())).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    csrf: String,
    email: String,
    password: String,
    next: String,
}

/// The end of every first factor: the new session's cookies, and on to
/// `next`. Whatever session this browser had ends (a new id at sign-in).
pub async fn signed_in_response(
    req: &HttpRequest,
    core: &Core,
    after: latchkey_core::auth::AfterFirstFactor,
    next: &str,
) -> HttpResponse {
    let signed_in = match after {
        AfterFirstFactor::SignedIn(s) => *s,
        // A second factor first: the waiting sign-in's cookie, then /login/mfa.
        AfterFirstFactor::SecondFactor { token, .. } => {
            let mut builder = HttpResponse::build(StatusCode::SEE_OTHER);
            builder.cookie(browser::mfa_cookie(core, token));
            let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/login/mfa?"), 11);
            url.append_pair("next", next);
            return see_other(builder, &url.finish());
        }
    };
    if let Ok(Some(old)) = browser::current_session(req, core).await
        && old.handle != signed_in.session.handle
    {
        // The old session ends with what it was given, as at sign-out.
        let sid = latchkey_core::auth::session_sid(&old);
        let _ = core.end_session(&old.record.user_id, &old.handle).await;
        let _ = core.revoke_session_tokens(&old.record.user_id, &[sid]).await;
    }
    let mut builder = HttpResponse::build(StatusCode::SEE_OTHER);
    builder.cookie(browser::session_cookie(core, signed_in.session_id));
    if let Some(device) = signed_in.device_token {
        builder.cookie(browser::device_cookie(core, device));
    }
    see_other(builder, next)
}

/// The same words for a wrong password and an unknown email.
pub const BAD_CREDENTIALS: &str = "That email and password don’t match an account. Check them and try again.";

#[post("/login")]
pub async fn login(req: HttpRequest, core: Data<Core>, form: Form<LoginForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let next = browser::safe_next(Some(&form.next));
    let email = form.email.trim().to_owned();
    if email.is_empty() || form.password.is_empty() {
        let msg = "Enter your email and password.".to_owned();
        return login_page(&req, &core, StatusCode::BAD_REQUEST, &next, &email, Some(msg), None).await;
    }
    let ctx = browser::context(&req);
    let device = browser::cookie_value(&req, &core, DEVICE);
    match core.password_login(&email, &form.password, &ctx, device.as_deref()).await {
        Ok(Ok(signed_in)) => signed_in_response(&req, &core, signed_in, &next).await,
        // 200: the page itself is the answer (a 401 would need a
        // WWW-Authenticate challenge that forms do not have).
        Ok(Err(LoginRefusal::BadCredentials)) => {
            login_page(&req, &core, StatusCode::OK, &next, &email, Some(BAD_CREDENTIALS.to_owned()), None).await
        }
        Ok(Err(LoginRefusal::Disabled)) => {
            login_page(
                &req,
                &core,
                StatusCode::FORBIDDEN,
                &next,
                &email,
                Some("This account is disabled. Contact your administrator.".to_owned()),
                None,
            )
            .await
        }
        Err(e @ CoreError::RateLimited(_)) => {
            login_page(&req, &core, StatusCode::TOO_MANY_REQUESTS, &next, &email, Some(e.to_string()), None).await
        }
        Err(e) => pages::error_page(&e),
    }
}

// ---------------------------------------------------------------- sign-in links

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkRequestForm {
    csrf: String,
    email: String,
    next: String,
}

/// "Email me a sign-in link": the same answer whether or not the address
/// has an account.
#[post("/login/link")]
pub async fn request_link(req: HttpRequest, core: Data<Core>, form: Form<LinkRequestForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let next = browser::safe_next(Some(&form.next));
    let email = form.email.trim().to_owned();
    if email.is_empty() {
        let msg = "Enter your email, and we’ll send you a link to sign in.".to_owned();
        return login_page(&req, &core, StatusCode::BAD_REQUEST, &next, &email, Some(msg), None).await;
    }
    // This browser's claim to the link: only here may it continue an app.
    // Kept when it has one, so an earlier link (a slow mail) still works here.
    let browser_token = match browser::cookie_value(&req, &core, browser::LINK).filter(|v| v.len() == 43) {
        Some(t) => t,
        None => match latchkey_core::tokens::random_token() {
            Ok(t) => t,
            Err(e) => return pages::error_page(&e.into()),
        },
    };
    match core.request_magic_link(&email, &browser_token, &next, &browser::context(&req)).await {
        Ok(()) => {
            let mut builder = HttpResponse::build(StatusCode::OK);
            builder.cookie(browser::link_cookie(&core, browser_token));
            let minutes = core.settings.lifetimes.magic_link.as_secs().div_ceil(60);
            pages::render(
                builder,
                StatusCode::OK,
                &pages::Message {
                    title: "Check your email".into(),
                    message: "If".into(),
                    email: Some(email),
                    after: format!(
                        " can sign in here, we sent it a link. Open it on this device to continue; it works once, for {minutes} minutes."
                    ),
                    alert: false,
                    link: Some(("/login".into(), "Back to sign in".into())),
                },
            )
        }
        Err(CoreError::Invalid { message, .. }) => {
            login_page(&req, &core, StatusCode::UNPROCESSABLE_ENTITY, &next, &email, Some(message), None).await
        }
        Err(e @ CoreError::RateLimited(_)) => {
            login_page(&req, &core, StatusCode::TOO_MANY_REQUESTS, &next, &email, Some(e.to_string()), None).await
        }
        Err(e) => pages::error_page(&e),
    }
}

fn link_invalid() -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This sign-in link can’t be used",
        "It has expired or was already used. Ask for a new one on the sign-in page.",
        true,
        Some(("/login", "Back to sign in")),
    )
}

async fn use_link(req: &HttpRequest, core: &Core, token: &str) -> HttpResponse {
    let browser_token = browser::cookie_value(req, core, browser::LINK);
    match core.use_magic_link(token, browser_token.as_deref(), &browser::context(req)).await {
        Ok(Some(used)) => {
            let next = browser::safe_next(used.next.as_deref());
            let mut res = signed_in_response(req, core, used.signed_in, &next).await;
            // The link is used: this browser's claim to it goes too.
            let _ = res.add_cookie(&browser::removal(core, browser::LINK));
            res
        }
        Ok(None) => link_invalid(),
        Err(e) => pages::error_page(&e),
    }
}

/// The link from the mail. In the browser that asked: signed in at once.
/// Anywhere else: the address is shown and one click is needed.
#[get("/login/link")]
pub async fn open_link(req: HttpRequest, core: Data<Core>, q: Query<TokenQuery>) -> HttpResponse {
    let browser_token = browser::cookie_value(&req, &core, browser::LINK);
    match core.magic_link_target(&q.token, browser_token.as_deref()).await {
        Ok(Some(t)) if t.same_browser => use_link(&req, &core, &q.token).await,
        Ok(Some(t)) => pages::form_page(&req, &core, StatusCode::OK, |csrf| pages::MagicLink {
            csrf,
            token: q.token.clone(),
            email: t.email,
        }),
        Ok(None) => link_invalid(),
        Err(e) => pages::error_page(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkConfirmForm {
    csrf: String,
    token: String,
}

#[post("/login/link/confirm")]
pub async fn confirm_link(req: HttpRequest, core: Data<Core>, form: Form<LinkConfirmForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    use_link(&req, &core, &form.token).await
}

// ---------------------------------------------------------------- sign up

#[allow(clippy::too_many_arguments)]
fn signup_page(
    req: &HttpRequest,
    core: &Core,
    status: StatusCode,
    next: &str,
    name: &str,
    email: &str,
    error: Option<String>,
) -> HttpResponse {
    pages::form_page(req, core, status, |csrf| pages::Signup {
        csrf,
        next: next.to_owned(),
        name: name.to_owned(),
        email: email.to_owned(),
        min_length: core.password_policy.min_length,
        error,
        notice: None,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupQuery {
    next: Option<String>,
}

#[get("/signup")]
pub async fn signup_form(req: HttpRequest, core: Data<Core>, q: Query<SignupQuery>) -> HttpResponse {
    let next = browser::safe_next(q.next.as_deref());
    signup_page(&req, &core, StatusCode::OK, &next, "", "", None)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupForm {
    csrf: String,
    name: String,
    email: String,
    password: String,
    next: String,
}

#[post("/signup")]
pub async fn signup(req: HttpRequest, core: Data<Core>, form: Form<SignupForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let name = form.name.trim();
    let next = browser::safe_next(Some(&form.next));
    let ctx = browser::context(&req);
    let result = core.signup(&form.email, &form.password, (!name.is_empty()).then(|| name.to_owned()), &ctx).await;
    match result {
        Ok(()) => {
            // Back to the app that was waiting, through sign-in.
            let sign_in = if next == "/account" {
                "/login".to_owned()
            } else {
                url::form_urlencoded::Serializer::for_suffix("/login?".to_owned(), 7)
                    .append_pair("next", &next)
                    .finish()
            };
            pages::message_with_email(
                StatusCode::OK,
                "Check your email",
                "We sent a message to",
                form.email.trim(),
                " to finish setting up your account. You can sign in now; confirming your address lets apps trust it.",
                Some((&sign_in, "Sign in")),
            )
        }
        Err(e) => match field_error(&e) {
            Some(msg) => {
                let status = if matches!(e, CoreError::RateLimited(_)) {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                signup_page(&req, &core, status, &next, name, form.email.trim(), Some(msg))
            }
            None => pages::error_page(&e),
        },
    }
}

// ---------------------------------------------------------------- sign out

/// GET /logout: our own sign-out link, and the end-session endpoint of
/// RP-initiated logout (`id_token_hint`, `post_logout_redirect_uri`,
/// `state`, `client_id`, `logout_hint`). With a valid hint of the signed-in
/// user the session ends at once; otherwise the user confirms.
#[get("/logout")]
pub async fn logout_form(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let end = match core.end_session_request(pairs).await {
        Ok(e) => e,
        Err(e) => return pages::error_page(&e),
    };
    let session = match browser::current_session(&req, &core).await {
        Ok(s) => s,
        Err(e) => return pages::error_page(&e),
    };
    let Some(session) = session else {
        return match end.redirect() {
            Some(url) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), &url),
            None => pages::message(
                StatusCode::OK,
                "You are signed out",
                "You are not signed in on this device.",
                false,
                Some(("/login", "Sign in")),
            ),
        };
    };
    if end.hint_subject.as_deref() == Some(session.record.user_id.as_str()) {
        return sign_out_and_leave(&req, &core, &session, &end).await;
    }
    let email = match core.session_user(&session).await {
        Ok(Some(u)) => u.email,
        Ok(None) => String::new(),
        Err(e) => return pages::error_page(&e),
    };
    let mut res = pages::form_page(&req, &core, StatusCode::OK, |csrf| pages::Logout {
        csrf,
        email,
        app: end.client_name.clone(),
        client_id: end.client_id.clone().unwrap_or_default(),
        post_logout_redirect_uri: end.post_logout_redirect_uri.clone().unwrap_or_default(),
        state: end.state.clone().unwrap_or_default(),
    });
    if let Some(uri) = &end.post_logout_redirect_uri {
        crate::middleware::allow_form_redirect_to(&mut res, uri);
    }
    res
}

async fn sign_out_and_leave(
    req: &HttpRequest,
    core: &Core,
    session: &latchkey_core::sessions::Session,
    end: &latchkey_core::oidc::logout::EndSession,
) -> HttpResponse {
    if let Err(e) = core.sign_out(session, false, &browser::context(req)).await {
        return pages::error_page(&e);
    }
    let mut builder = HttpResponse::build(StatusCode::SEE_OTHER);
    builder.cookie(browser::removal(core, SESSION));
    see_other(builder, &end.redirect().unwrap_or_else(|| "/login?notice=signed-out".to_owned()))
}

/// POST /logout: our confirmation form (with CSRF), or an RP posting an
/// end-session request, which arrives without our SameSite cookie and so
/// continues as a GET.
#[post("/logout")]
pub async fn logout(req: HttpRequest, core: Data<Core>, body: actix_web::web::Bytes) -> HttpResponse {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(csrf) = field("csrf") else {
        let mut query = url::form_urlencoded::Serializer::for_suffix(String::from("/logout?"), 8);
        for (k, v) in pairs.iter().filter(|(k, _)| {
            ["id_token_hint", "post_logout_redirect_uri", "state", "client_id", "logout_hint", "ui_locales"]
                .contains(&k.as_str())
        }) {
            query.append_pair(k, v);
        }
        let target = query.finish();
        return see_other(HttpResponse::build(StatusCode::SEE_OTHER), target.trim_end_matches('?'));
    };
    if !browser::csrf_ok(&req, &core, csrf) {
        return pages::csrf_refused();
    }
    // The confirmation form carries the client's request on; check it again.
    let carried: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, v)| ["post_logout_redirect_uri", "state", "client_id"].contains(&k.as_str()) && !v.is_empty())
        .cloned()
        .collect();
    let end = match core.end_session_request(carried).await {
        Ok(e) => e,
        Err(e) => return pages::error_page(&e),
    };
    match browser::current_session(&req, &core).await {
        Ok(Some(session)) => sign_out_and_leave(&req, &core, &session, &end).await,
        Ok(None) => {
            let mut builder = HttpResponse::build(StatusCode::SEE_OTHER);
            builder.cookie(browser::removal(&core, SESSION));
            see_other(builder, &end.redirect().unwrap_or_else(|| "/login?notice=signed-out".to_owned()))
        }
        Err(e) => pages::error_page(&e),
    }
}

// ---------------------------------------------------------------- email verification

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
}

fn invalid_link(what: &str, again: (&str, &str)) -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This link can't be used",
        &format!("The {what} link is not valid: it may have been used already, expired, or been copied incompletely."),
        true,
        Some(again),
    )
}

fn verify_page(
    req: &HttpRequest,
    core: &Core,
    token: &str,
    email: String,
    ask_password: bool,
    error: Option<String>,
) -> HttpResponse {
    pages::form_page(req, core, StatusCode::OK, |csrf| pages::Verify {
        csrf,
        token: token.to_owned(),
        email,
        ask_password,
        error,
    })
}

/// The link shows the address and asks for one click, in any browser; see
/// `Core::use_verification_link` for what the click does.
#[get("/email/verify")]
pub async fn verify_form(req: HttpRequest, core: Data<Core>, q: Query<TokenQuery>) -> HttpResponse {
    let (user_id, email) = match core.verification_target(&q.token).await {
        Ok(Some(t)) => t,
        Ok(None) => return invalid_link("verification", ("/account", "Go to your account")),
        Err(e) => return pages::error_page(&e),
    };
    let owner_here = match browser::current_session(&req, &core).await {
        Ok(s) => s.is_some_and(|s| s.record.user_id == user_id),
        Err(e) => return pages::error_page(&e),
    };
    verify_page(&req, &core, &q.token, email, !owner_here, None)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VerifyForm {
    csrf: String,
    token: String,
    password: String,
}

#[post("/email/verify")]
pub async fn verify(req: HttpRequest, core: Data<Core>, form: Form<VerifyForm>) -> HttpResponse {
    use latchkey_core::auth::VerifyOutcome;
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let session = match browser::current_session(&req, &core).await {
        Ok(s) => s,
        Err(e) => return pages::error_page(&e),
    };
    let signed_in = session.as_ref().map(|s| s.record.user_id.clone());
    let ctx = browser::context(&req);
    let password = (!form.password.is_empty()).then_some(form.password.as_str());
    match core.use_verification_link(&form.token, signed_in.as_deref(), password, &ctx).await {
        Ok(VerifyOutcome::Verified(user)) => pages::message_with_email(
            StatusCode::OK,
            "Email address confirmed",
            "Thank you:",
            &user.email,
            " is confirmed.",
            Some(if signed_in.is_some() { ("/account", "Go to your account") } else { ("/login", "Sign in") }),
        ),
        Ok(VerifyOutcome::SignedIn(done)) => signed_in_response(&req, &core, *done, "/account?notice=verified").await,
        Ok(VerifyOutcome::ChoosePassword(reset_token)) => see_other(
            HttpResponse::build(StatusCode::SEE_OTHER),
            &format!("/password/reset?token={reset_token}&notice=verified"),
        ),
        Ok(VerifyOutcome::WrongPassword) => match core.verification_target(&form.token).await {
            Ok(Some((_, email))) => verify_page(
                &req,
                &core,
                &form.token,
                email,
                true,
                Some(
                    "That password doesn’t match this account. Try again, or leave it empty to choose a new one."
                        .into(),
                ),
            ),
            Ok(None) => invalid_link("verification", ("/account", "Go to your account")),
            Err(e) => pages::error_page(&e),
        },
        Ok(VerifyOutcome::Invalid) => invalid_link("verification", ("/account", "Go to your account")),
        Err(e) => pages::error_page(&e),
    }
}

// ---------------------------------------------------------------- password reset

fn forgot_page(req: &HttpRequest, core: &Core, status: StatusCode, email: &str, error: Option<String>) -> HttpResponse {
    pages::form_page(req, core, status, |csrf| pages::Forgot { csrf, email: email.to_owned(), error, notice: None })
}

#[get("/password/forgot")]
pub async fn forgot_form(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    forgot_page(&req, &core, StatusCode::OK, "", None)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ForgotForm {
    csrf: String,
    email: String,
}

#[post("/password/forgot")]
pub async fn forgot(req: HttpRequest, core: Data<Core>, form: Form<ForgotForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    match core.request_password_reset(&form.email, &browser::context(&req)).await {
        Ok(()) => pages::message_with_email(
            StatusCode::OK,
            "Check your email",
            "If this address has an account, we sent it a link to choose a new password:",
            form.email.trim(),
            &format!(
                ". The link works once and expires in {}.",
                latchkey_core::ratelimit::human_wait(core.settings.lifetimes.reset_link)
            ),
            Some(("/login", "Back to sign in")),
        ),
        Err(e) => match field_error(&e) {
            Some(msg) => {
                let status = if matches!(e, CoreError::RateLimited(_)) {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                forgot_page(&req, &core, status, form.email.trim(), Some(msg))
            }
            None => pages::error_page(&e),
        },
    }
}

fn reset_page(
    req: &HttpRequest,
    core: &Core,
    status: StatusCode,
    token: &str,
    email: String,
    error: Option<String>,
    notice: Option<String>,
) -> HttpResponse {
    pages::form_page(req, core, status, |csrf| pages::Reset {
        csrf,
        token: token.to_owned(),
        email,
        min_length: core.password_policy.min_length,
        error,
        notice,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetQuery {
    token: String,
    notice: Option<String>,
}

#[get("/password/reset")]
pub async fn reset_form(req: HttpRequest, core: Data<Core>, q: Query<ResetQuery>) -> HttpResponse {
    match core.reset_email(&q.token).await {
        Ok(Some(email)) => {
            let notice = (q.notice.as_deref() == Some("verified"))
                .then(|| "Your address is confirmed. Choose a password to finish.".to_owned());
            reset_page(&req, &core, StatusCode::OK, &q.token, email, None, notice)
        }
        Ok(None) => invalid_link("reset", ("/password/forgot", "Get a new link")),
        Err(e) => pages::error_page(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    csrf: String,
    token: String,
    new_password: String,
}

#[post("/password/reset")]
pub async fn reset(req: HttpRequest, core: Data<Core>, form: Form<ResetForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    match core.complete_password_reset(&form.token, &form.new_password, &browser::context(&req)).await {
        Ok(Some(_)) => {
            // Every session ended, this browser's too.
            let mut builder = HttpResponse::build(StatusCode::SEE_OTHER);
            builder.cookie(browser::removal(&core, SESSION));
            see_other(builder, "/login?notice=password-set")
        }
        Ok(None) => invalid_link("reset", ("/password/forgot", "Get a new link")),
        Err(e) => match field_error(&e) {
            Some(msg) => {
                let email = core.reset_email(&form.token).await.ok().flatten().unwrap_or_default();
                reset_page(&req, &core, StatusCode::UNPROCESSABLE_ENTITY, &form.token, email, Some(msg), None)
            }
            None => pages::error_page(&e),
        },
    }
}
