//! The OpenID Connect endpoints: discovery, authorization (and the flow's
//! continuation after sign-in), the consent page, token and userinfo. The
//! protocol endpoints answer RFC 6749 JSON errors or redirect to the client
//! where the specs say so; the consent page is one of our forms (CSRF).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, get, options, post};
use latchkey_core::Core;
use latchkey_core::oidc::authorize::{Refusal, Step};
use latchkey_core::oidc::userinfo::BearerRefusal;
use latchkey_core::oidc::{OAuthError, OAuthFailure, describe_scope};
use latchkey_core::sessions::Session;
use serde::Deserialize;
use serde_json::json;

use crate::browser;
use crate::pages::{self, see_other};

/// Where a flow continues after sign-in or consent.
pub fn continue_path(flow_id: &str) -> String {
    format!("/authorize/continue?flow={flow_id}")
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn query_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

// ---------------------------------------------------------------- discovery

#[get("/.well-known/openid-configuration")]
pub async fn discovery(core: Data<Core>) -> HttpResponse {
    match core.discovery_json() {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(body.to_string()),
        Err(e) => actix_web::ResponseError::error_response(&crate::error::ApiError(e)),
    }
}

// ---------------------------------------------------------------- authorize

fn refusal_page(message: &str) -> HttpResponse {
    pages::message(StatusCode::BAD_REQUEST, "We can’t continue to that app", message, true, None)
}

#[get("/authorize")]
pub async fn authorize_get(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    let ip = browser::context(&req).ip;
    match core.start_authorization(query_pairs(req.query_string().as_bytes()), ip.as_deref()).await {
        Ok(Ok(flow_id)) => continue_flow(&req, &core, &flow_id).await,
        Ok(Err(Refusal::Page(m))) => refusal_page(&m),
        Ok(Err(Refusal::Redirect(url))) => redirect(&url),
        Err(e) => pages::error_page(&e),
    }
}

/// A POSTed request (a form on the client's site) arrives without our
/// SameSite session cookie: keep it as a flow and continue with a GET, which
/// carries the cookie.
#[post("/authorize")]
pub async fn authorize_post(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    if !is_form(&req) {
        return refusal_page("The request could not be read: it must be a form (application/x-www-form-urlencoded).");
    }
    let ip = browser::context(&req).ip;
    match core.start_authorization(query_pairs(&body), ip.as_deref()).await {
        Ok(Ok(flow_id)) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), &continue_path(&flow_id)),
        Ok(Err(Refusal::Page(m))) => refusal_page(&m),
        Ok(Err(Refusal::Redirect(url))) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), &url),
        Err(e) => pages::error_page(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FlowQuery {
    flow: String,
}

#[get("/authorize/continue")]
pub async fn authorize_continue(req: HttpRequest, core: Data<Core>, q: Query<FlowQuery>) -> HttpResponse {
    continue_flow(&req, &core, &q.flow).await
}

/// The browser's session, if it belongs to an enabled user.
async fn live_session(req: &HttpRequest, core: &Core) -> Result<Option<Session>, latchkey_core::CoreError> {
    let Some(session) = browser::current_session(req, core).await? else { return Ok(None) };
    match core.session_user(&session).await? {
        Some(_) => Ok(Some(session)),
        None => {
            core.end_session(&session.record.user_id, &session.handle).await?;
            Ok(None)
        }
    }
}

async fn continue_flow(req: &HttpRequest, core: &Core, flow_id: &str) -> HttpResponse {
    let session = match live_session(req, core).await {
        Ok(s) => s,
        Err(e) => return pages::error_page(&e),
    };
    match core.authorization_step(flow_id, session.as_ref()).await {
        Ok(step) => step_response(flow_id, step),
        Err(e) => pages::error_page(&e),
    }
}

pub fn expired_page() -> HttpResponse {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This sign-in request has ended",
        "It was already used, or it waited too long. Go back to the app and start again.",
        true,
        None,
    )
}

fn step_response(flow_id: &str, step: Step) -> HttpResponse {
    match step {
        Step::Expired => expired_page(),
        Step::Redirect(url) => redirect(&url),
        Step::Consent => redirect(&format!("/consent?flow={flow_id}")),
        Step::SecondFactor { phr } => {
            let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/login/mfa?"), 11);
            url.append_pair("next", &continue_path(flow_id));
            if phr {
                url.append_pair("level", "phr");
            }
            redirect(&url.finish())
        }
        Step::Login { again, login_hint, select_account } => {
            let mut url = url::form_urlencoded::Serializer::for_suffix(String::from("/login?"), 7);
            url.append_pair("next", &continue_path(flow_id));
            if select_account {
                url.append_pair("notice", "choose-account");
            } else if again {
                url.append_pair("notice", "reauthenticate");
            }
            if let Some(h) = login_hint {
                url.append_pair("login_hint", &h);
            }
            redirect(&url.finish())
        }
    }
}

/// The flow named by a local `next` path, for the sign-in page to say which
/// app is asking (and allow the form to end at the app's redirect URI).
pub async fn flow_in_next(core: &Core, next: &str) -> Option<(String, String)> {
    let flow_id = next.strip_prefix("/authorize/continue?flow=")?;
    let (flow, client) = core.authorization_flow(flow_id).await.ok()??;
    Some((client.name, flow.redirect_uri))
}

// ---------------------------------------------------------------- consent

async fn consent_page(req: &HttpRequest, core: &Core, flow_id: &str) -> HttpResponse {
    let session = match live_session(req, core).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return step_response(flow_id, Step::Login { again: false, login_hint: None, select_account: false });
        }
        Err(e) => return pages::error_page(&e),
    };
    let (flow, client) = match core.authorization_flow(flow_id).await {
        Ok(Some(v)) => v,
        Ok(None) => return expired_page(),
        Err(e) => return pages::error_page(&e),
    };
    let user = match core.session_user(&session).await {
        Ok(Some(u)) => u,
        Ok(None) => return expired_page(),
        Err(e) => return pages::error_page(&e),
    };
    let scopes = flow.scopes.iter().filter_map(|s| describe_scope(s)).map(str::to_owned).collect();
    let host =
        url::Url::parse(&flow.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let mut res = pages::form_page(req, core, StatusCode::OK, |csrf| pages::Consent {
        csrf,
        flow: flow_id.to_owned(),
        app: client.name.clone(),
        host,
        email: user.email.clone(),
        scopes,
    });
    crate::middleware::allow_form_redirect_to(&mut res, &flow.redirect_uri);
    res
}

#[get("/consent")]
pub async fn consent_form(req: HttpRequest, core: Data<Core>, q: Query<FlowQuery>) -> HttpResponse {
    consent_page(&req, &core, &q.flow).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConsentForm {
    csrf: String,
    flow: String,
    decision: String,
}

#[post("/consent")]
pub async fn consent(req: HttpRequest, core: Data<Core>, form: Form<ConsentForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let allow = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return pages::message(StatusCode::BAD_REQUEST, "That didn't work", "Choose Allow or Deny.", true, None),
    };
    let session = match live_session(&req, &core).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return step_response(&form.flow, Step::Login { again: false, login_hint: None, select_account: false });
        }
        Err(e) => return pages::error_page(&e),
    };
    match core.answer_consent(&form.flow, &session, allow, &browser::context(&req)).await {
        Ok(Step::Redirect(url)) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), &url),
        Ok(step) => step_response(&form.flow, step),
        Err(e) => pages::error_page(&e),
    }
}

// ---------------------------------------------------------------- CORS

/// Adds CORS headers when the request's origin is a registered redirect
/// URI's origin (SPEC §5). Credentials (cookies) are never allowed.
async fn cors(req: &HttpRequest, core: &Core, res: &mut HttpResponse) {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return };
    res.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    if let Ok(true) = core.cors_origin_allowed(origin).await
        && let Ok(v) = HeaderValue::from_str(origin)
    {
        res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        res.headers_mut().insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate"));
    }
}

async fn preflight(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    let mut res = HttpResponse::NoContent().finish();
    cors(&req, &core, &mut res).await;
    if res.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    res
}

#[options("/oauth/token")]
pub async fn token_preflight(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    preflight(req, core).await
}

#[options("/userinfo")]
pub async fn userinfo_preflight(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    preflight(req, core).await
}

// ---------------------------------------------------------------- token

fn no_store(mut b: HttpResponseBuilder) -> HttpResponseBuilder {
    b.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"));
    b
}

/// An RFC 6749 §5.2 error; `invalid_client` is 401 with a challenge.
pub fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = if e.error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
    let mut b = no_store(HttpResponse::build(status));
    if status == StatusCode::UNAUTHORIZED {
        b.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"latchkey\", charset=\"UTF-8\""));
    }
    b.json(json!({ "error": e.error, "error_description": e.description }))
}

/// Our own failure on a protocol endpoint, in the same JSON form.
fn server_error(e: &latchkey_core::CoreError) -> HttpResponse {
    use latchkey_core::CoreError;
    let (status, error, description) = match e {
        CoreError::Unavailable(_) | CoreError::Busy => {
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again shortly")
        }
        CoreError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "something went wrong on our side")
        }
        _ => (StatusCode::BAD_REQUEST, "invalid_request", "the request could not be processed"),
    };
    let mut b = no_store(HttpResponse::build(status));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        b.insert_header((header::RETRY_AFTER, "5"));
    }
    b.json(json!({ "error": error, "error_description": description }))
}

#[post("/oauth/token")]
pub async fn token(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    let mut res = if !is_form(&req) {
        oauth_error(&OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"))
    } else {
        let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match core.token_request(query_pairs(&body), authorization, &browser::context(&req)).await {
            Ok(body) => no_store(HttpResponse::Ok()).json(body),
            Err(OAuthFailure::Protocol(e)) => oauth_error(&e),
            Err(OAuthFailure::Core(e)) => server_error(&e),
        }
    };
    cors(&req, &core, &mut res).await;
    res
}

// ---------------------------------------------------------------- userinfo

fn bearer_error(status: StatusCode, challenge: String, error: &str, description: &str) -> HttpResponse {
    let mut b = no_store(HttpResponse::build(status));
    b.insert_header((header::WWW_AUTHENTICATE, challenge));
    b.json(json!({ "error": error, "error_description": description }))
}

/// The bearer token from the header or (POST) the form body, never both
/// (RFC 6750 §2).
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, &'static str> {
    let from_header = match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match v.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Some(t.trim().to_owned())
            }
            _ => return Err("the Authorization header must be a Bearer token"),
        },
        Some(Err(_)) => return Err("the Authorization header must be a Bearer token"),
    };
    if query_pairs(req.query_string().as_bytes()).iter().any(|(k, _)| k == "access_token") {
        return Err("send the access token in the Authorization header or the form body, not the URL");
    }
    let in_body: Vec<String> = if req.method() == actix_web::http::Method::POST && is_form(req) {
        query_pairs(body).into_iter().filter(|(k, _)| k == "access_token").map(|(_, v)| v).collect()
    } else {
        Vec::new()
    };
    match (from_header, in_body.as_slice()) {
        (Some(_), [_, ..]) => Err("send the access token one way only"),
        (Some(t), []) => Ok(Some(t)),
        (None, [t]) => Ok(Some(t.clone())),
        (None, []) => Ok(None),
        (None, _) => Err("access_token is given more than once"),
    }
}

async fn userinfo(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    let mut res = match bearer_token(&req, &body) {
        Err(msg) => bearer_error(
            StatusCode::BAD_REQUEST,
            "Bearer realm=\"latchkey\", error=\"invalid_request\"".into(),
            "invalid_request",
            msg,
        ),
        Ok(None) => bearer_error(
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"latchkey\"".into(),
            "invalid_request",
            "an access token is required",
        ),
        Ok(Some(bearer)) => match core.userinfo(&bearer).await {
            Ok(Ok(claims)) => no_store(HttpResponse::Ok()).json(claims),
            Ok(Err(BearerRefusal::InvalidToken(why))) => bearer_error(
                StatusCode::UNAUTHORIZED,
                format!("Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{why}\""),
                "invalid_token",
                why,
            ),
            Ok(Err(BearerRefusal::InsufficientScope)) => bearer_error(
                StatusCode::FORBIDDEN,
                "Bearer realm=\"latchkey\", error=\"insufficient_scope\", scope=\"openid\"".into(),
                "insufficient_scope",
                "the token's scope does not include openid",
            ),
            Err(e) => server_error(&e),
        },
    };
    cors(&req, &core, &mut res).await;
    res
}

#[get("/userinfo")]
pub async fn userinfo_get(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    userinfo(req, core, Bytes::new()).await
}

#[post("/userinfo")]
pub async fn userinfo_post(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    userinfo(req, core, body).await
}

// ---------------------------------------------------------------- introspection, revocation

fn authorization_header(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// RFC 7662: for resource servers (confidential clients), never browsers,
/// so no CORS.
#[post("/oauth/introspect")]
pub async fn introspect(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    if !is_form(&req) {
        return oauth_error(&OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    match core.introspect(query_pairs(&body), authorization_header(&req)).await {
        Ok(answer) => no_store(HttpResponse::Ok()).json(answer),
        Err(OAuthFailure::Protocol(e)) => oauth_error(&e),
        Err(OAuthFailure::Core(e)) => server_error(&e),
    }
}

/// RFC 7009: 200 whether or not the token was known.
#[post("/oauth/revoke")]
pub async fn revoke(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    let mut res = if !is_form(&req) {
        oauth_error(&OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"))
    } else {
        match core.revoke_token(query_pairs(&body), authorization_header(&req), &browser::context(&req)).await {
            Ok(()) => no_store(HttpResponse::Ok()).finish(),
            Err(OAuthFailure::Protocol(e)) => oauth_error(&e),
            Err(OAuthFailure::Core(e)) => server_error(&e),
        }
    };
    cors(&req, &core, &mut res).await;
    res
}

#[options("/oauth/revoke")]
pub async fn revoke_preflight(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    preflight(req, core).await
}
