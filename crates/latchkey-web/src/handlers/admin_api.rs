//! The admin API under /admin/api/v1: JSON in and out, RFC 9457 problems
//! for every refusal, paged lists. A caller is either an API key (`Bearer
//! lk_…`, its scopes decide) or an admin's access token with the
//! `latchkey:admin` scope, the admin API as audience and a second factor
//! behind it (every area). Each key, and each admin, has its own rate limit.
//! Every change is audited with the actor: `admin:USER_ID` or
//! `apikey:PREFIX`.

// Helpers here stop a handler with the response to send (`?` on
// `Result<_, HttpResponse>`); boxing it would only add an allocation on the
// refusal path.
#![allow(clippy::result_large_err)]

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put};
use chrono::{DateTime, NaiveDate, Utc};
use latchkey_core::accounts::NewUser;
use latchkey_core::accounts::User;
use latchkey_core::admin::SessionView;
use latchkey_core::admin::UserChanges;
use latchkey_core::apikeys::{ApiKey, CreatedApiKey};
use latchkey_core::apikeys::{SCOPES, looks_like_api_key};
use latchkey_core::audit::Actor;
use latchkey_core::audit::AuditEntry;
use latchkey_core::clients::{self, ClientChanges, NewClient};
use latchkey_core::clients::{Client, CreatedClient};
use latchkey_core::groups::Group;
use latchkey_core::keys::KeyInfo;
use latchkey_core::mfa::MfaPolicy;
use latchkey_core::oidc::SCOPE_ADMIN;
use latchkey_core::privacy::UserExport;
use latchkey_core::webhooks::{CreatedWebhook, Webhook, WebhookAttempt, WebhookChange};
use latchkey_core::{Core, CoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, problem, problem_body};

/// Largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;
const DEFAULT_PER_PAGE: i64 = 50;
const MAX_PER_PAGE: i64 = 200;

/// Who is calling, and what they may do.
pub struct Principal {
    pub actor: Actor,
    pub scopes: Vec<String>,
    /// A key's own scopes: the most a key it creates may have.
    pub key_scopes: Option<Vec<String>>,
}

type Answer = Result<HttpResponse, HttpResponse>;

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn unauthorized(detail: &str, error: Option<&str>) -> HttpResponse {
    let mut res = problem(StatusCode::UNAUTHORIZED, "Unauthorized", Some(detail));
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"latchkey-admin\", error=\"{e}\""),
        None => "Bearer realm=\"latchkey-admin\"".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(res)
}

fn forbidden(detail: &str) -> HttpResponse {
    no_store(problem(StatusCode::FORBIDDEN, "Forbidden", Some(detail)))
}

fn core_error(e: CoreError) -> HttpResponse {
    no_store(actix_web::ResponseError::error_response(&ApiError(api_field(e))))
}

/// The command line's field names, as the API's JSON calls them.
fn api_field(e: CoreError) -> CoreError {
    match e {
        CoreError::Invalid { field, message } => {
            let field = match field {
                "--name" => "name",
                "--redirect-uri" => "redirect_uris",
                "--post-logout-redirect-uri" => "post_logout_redirect_uris",
                "--backchannel-logout-uri" => "backchannel_logout_uri",
                "--grant" => "grant_types",
                "--signing-alg" => "signing_alg",
                "--admin" => "admin",
                "Email" => "email",
                "Password" => "password",
                other => other,
            };
            CoreError::Invalid { field, message }
        }
        other => other,
    }
}

fn invalid(field: &str, detail: &str) -> HttpResponse {
    no_store(problem_body(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "type": "about:blank", "title": "Unprocessable Entity", "status": 422, "detail": detail, "field": field }),
    ))
}

fn bad_request(detail: &str) -> HttpResponse {
    no_store(problem(StatusCode::BAD_REQUEST, "Bad Request", Some(detail)))
}

/// The caller, checked for `scope`.
async fn principal(req: &HttpRequest, core: &Core, scope: &str) -> Result<Principal, HttpResponse> {
    let credential = match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => {
            return Err(unauthorized(
                "An API key or an admin access token is required (Authorization: Bearer …).",
                None,
            ));
        }
        Some(Ok(v)) => match v.split_once(' ') {
            Some((s, t)) if s.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim().to_owned(),
            _ => {
                return Err(unauthorized(
                    "The Authorization header must be a Bearer credential.",
                    Some("invalid_request"),
                ));
            }
        },
        Some(Err(_)) => {
            return Err(unauthorized("The Authorization header must be a Bearer credential.", Some("invalid_request")));
        }
    };
    let p = if looks_like_api_key(&credential) {
        let key = match core.authenticate_api_key(&credential).await {
            Ok(Ok(k)) => k,
            Ok(Err(refusal)) => {
                tracing::info!(reason = refusal.as_str(), "admin API key refused");
                return Err(unauthorized(
                    "The API key is not valid, has expired or was revoked.",
                    Some("invalid_token"),
                ));
            }
            Err(e) => return Err(core_error(e)),
        };
        if let Err(e) = core.admin_api_request(&format!("key:{}", key.id)).await {
            return Err(core_error(e));
        }
        Principal { actor: Actor::ApiKey(key.prefix.clone()), scopes: key.scopes.clone(), key_scopes: Some(key.scopes) }
    } else {
        let claims = match core.verify_access_token_for(&credential, &core.admin_api_audience()).await {
            Ok(Ok(c)) => c,
            Ok(Err(_)) => {
                return Err(unauthorized(
                    "The access token is not valid for the admin API (expired, revoked, or not meant for it).",
                    Some("invalid_token"),
                ));
            }
            Err(e) => return Err(core_error(e)),
        };
        if !claims.scopes.iter().any(|s| s == SCOPE_ADMIN) {
            return Err(forbidden("The access token lacks the latchkey:admin scope."));
        }
        if !claims.acr.as_deref().is_some_and(|a| latchkey_core::mfa::acr_satisfies(a, "mfa")) {
            return Err(forbidden("The admin API needs a sign-in with a second factor."));
        }
        match core.find_user(&claims.subject).await {
            Ok(Some(u)) if u.admin && !u.disabled => {}
            Ok(_) => return Err(forbidden("Only admins may use the admin API.")),
            Err(e) => return Err(core_error(e)),
        }
        if let Err(e) = core.admin_api_request(&format!("user:{}", claims.subject)).await {
            return Err(core_error(e));
        }
        Principal {
            actor: Actor::Admin(claims.subject),
            scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            key_scopes: None,
        }
    };
    if !p.scopes.iter().any(|s| s == scope) {
        return Err(forbidden(&format!("This key lacks the {scope} scope.")));
    }
    Ok(p)
}

/// A JSON body of type `T` (unknown fields refused).
fn body<T: DeserializeOwned>(req: &HttpRequest, bytes: &Bytes) -> Result<T, HttpResponse> {
    if bytes.len() > MAX_BODY {
        return Err(no_store(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            Some("The request body is larger than 64 KiB."),
        )));
    }
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(no_store(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            Some("Send the body as application/json."),
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let detail = match e.classify() {
            serde_json::error::Category::Data => format!("The body does not fit: {e}"),
            _ => "The body is not valid JSON.".to_owned(),
        };
        invalid_body(&detail)
    })
}

fn invalid_body(detail: &str) -> HttpResponse {
    no_store(problem(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable Entity", Some(detail)))
}

/// Query parameters of type `T` (unknown ones refused).
fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, HttpResponse> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        if v.chars().any(char::is_control) {
            return Err(bad_request(&format!("The query parameter {k} has control characters.")));
        }
        if map.insert(k.clone(), Value::String(v)).is_some() {
            return Err(bad_request(&format!("The query parameter {k} is given more than once.")));
        }
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| bad_request(&format!("Bad query parameters: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    per_page: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

/// (offset, limit, page, per_page) from `page` (from 1) and `per_page`.
fn paging(page: Option<&str>, per_page: Option<&str>) -> Result<(i64, i64, i64, i64), HttpResponse> {
    let number = |name: &str, v: Option<&str>, default: i64, max: i64| -> Result<i64, HttpResponse> {
        match v {
            None => Ok(default),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad_request(&format!("{name} must be a whole number from 1 to {max}."))),
            },
        }
    };
    let page = number("page", page, 1, 1_000_000)?;
    let per_page = number("per_page", per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    Ok(((page - 1) * per_page, per_page, page, per_page))
}

/// A page of a list.
fn paged<T: serde::Serialize>(items: Vec<T>, total: i64, page: i64, per_page: i64) -> HttpResponse {
    no_store(HttpResponse::Ok().json(Paged { items, page, per_page, total }))
}

#[derive(Serialize)]
struct Paged<T> {
    items: Vec<T>,
    page: i64,
    per_page: i64,
    total: i64,
}

// The shapes of answers, for the OpenAPI document; each mirrors what the
// handler sends (a paged list is `Paged` above, an unpaged one `Items`).

/// An RFC 9457 problem: every refusal.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: Option<String>,
    /// The request field at fault (422).
    pub field: Option<String>,
}

macro_rules! page_schema {
    ($name:ident, $item:ty) => {
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// From 1.
            pub page: i64,
            pub per_page: i64,
            /// How many match, on every page.
            pub total: i64,
        }
    };
}
page_schema!(UserList, User);
page_schema!(GroupList, Group);
page_schema!(ClientList, Client);
page_schema!(AuditList, AuditEntry);

#[derive(Serialize, ToSchema)]
pub struct Items<T: ToSchema> {
    pub items: Vec<T>,
}

#[derive(Serialize, ToSchema)]
pub struct FactorCounts {
    pub totp: bool,
    pub security_keys: usize,
    pub passkeys: usize,
    pub recovery_codes_left: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: User,
    pub groups: Vec<Group>,
    pub factors: FactorCounts,
}

#[derive(Serialize, ToSchema)]
pub struct GroupDetail {
    #[serde(flatten)]
    pub group: Group,
    pub members: Vec<User>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionsEnded {
    pub sessions_ended: usize,
}

#[derive(Serialize, ToSchema)]
pub struct FactorsRemoved {
    pub factors_removed: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Membership {
    pub group_id: String,
    pub user_id: String,
    pub member: bool,
    /// False when it already was so.
    pub changed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct NewSecret {
    pub client_id: String,
    /// Shown once; only its hash is kept.
    pub client_secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Policy {
    /// `optional` or `required`.
    pub mfa: String,
}

fn ok<T: serde::Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    no_store(HttpResponse::build(status).json(value))
}

fn done(r: Answer) -> HttpResponse {
    r.unwrap_or_else(|e| e)
}

/// A path id: bounded, printable.
fn id_ok(id: &str) -> Result<(), HttpResponse> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(no_store(problem(StatusCode::NOT_FOUND, "Not Found", Some("No such resource."))));
    }
    Ok(())
}

// ------------------------------------------------------------------- users

#[utoipa::path(
    get,
    path = "/admin/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(("q" = Option<String>, Query, max_length = 200, description = "Part of the email or name"), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "From 1"), ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Default 50")),
    responses((status = 200, description = "OK", body = UserList), (status = 400, description = "Bad query parameters", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/users")]
pub async fn users_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "users:read").await?;
            let q: PageQuery = query(&req)?;
            if q.q.as_ref().is_some_and(|s| s.chars().count() > 200) {
                return Err(bad_request("q is longer than 200 characters."));
            }
            let (offset, limit, page, per_page) = paging(q.page.as_deref(), q.per_page.as_deref())?;
            let (users, total) = core.search_users(q.q.as_deref(), offset, limit).await.map_err(core_error)?;
            Ok(paged(users, total, page, per_page))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    admin: bool,
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = NewUserBody,
    responses((status = 201, description = "Created", body = User), (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/users")]
pub async fn users_create(req: HttpRequest, core: Data<Core>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "users:write").await?;
            let b: NewUserBody = body(&req, &bytes)?;
            let name = latchkey_core::admin::check_name(b.name.as_deref()).map_err(core_error)?;
            let new = NewUser {
                email: b.email,
                name,
                password: b.password,
                email_verified: b.email_verified,
                admin: b.admin,
            };
            let user = latchkey_core::accounts::create_user(&core, new, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::CREATED, &user))
        }
        .await,
    )
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = UserDetail), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/users/{id}")]
pub async fn users_get(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "users:read").await?;
            id_ok(&id)?;
            let user = core
                .find_user(&id)
                .await
                .map_err(core_error)?
                .ok_or_else(|| core_error(CoreError::NotFound("user")))?;
            let groups = core.groups_of(&user.id).await.map_err(core_error)?;
            let factors = core.factors(&user.id).await.map_err(core_error)?;
            let factors = FactorCounts {
                totp: factors.totp,
                security_keys: factors.security_keys,
                passkeys: factors.passkeys,
                recovery_codes_left: factors.recovery_codes_left,
            };
            Ok(ok(StatusCode::OK, &UserDetail { user, groups, factors }))
        }
        .await,
    )
}

/// `Some(None)` for an explicit null, `None` when absent.
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// A new display name; null removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    admin: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    request_body = UserPatch,
    responses((status = 200, description = "OK", body = User), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[patch("/admin/api/v1/users/{id}")]
pub async fn users_update(req: HttpRequest, core: Data<Core>, id: Path<String>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "users:write").await?;
            id_ok(&id)?;
            let b: UserPatch = body(&req, &bytes)?;
            let changes = UserChanges { name: b.name, disabled: b.disabled, admin: b.admin };
            let user = core.update_user(&id, changes, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &user))
        }
        .await,
    )
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 204, description = "No content"), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/admin/api/v1/users/{id}")]
pub async fn users_delete(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "users:write").await?;
            id_ok(&id)?;
            core.delete_user_by_id(&id, &p.actor).await.map_err(core_error)?;
            Ok(no_store(HttpResponse::NoContent().finish()))
        }
        .await,
    )
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/sign-out",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = SessionsEnded), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/users/{id}/sign-out")]
pub async fn users_sign_out(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "users:write").await?;
            id_ok(&id)?;
            let n = core.sign_out_everywhere(&id, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &SessionsEnded { sessions_ended: n }))
        }
        .await,
    )
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/reset-mfa",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = FactorsRemoved), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/users/{id}/reset-mfa")]
pub async fn users_reset_mfa(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "users:write").await?;
            id_ok(&id)?;
            let n = core.reset_factors(&id, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &FactorsRemoved { factors_removed: n }))
        }
        .await,
    )
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/resend-verification",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 202, description = "Accepted"), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/users/{id}/resend-verification")]
pub async fn users_resend_verification(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "users:write").await?;
            id_ok(&id)?;
            core.admin_resend_verification(&id, &p.actor).await.map_err(core_error)?;
            Ok(no_store(HttpResponse::Accepted().finish()))
        }
        .await,
    )
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/users/{id}/sessions",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = Items<SessionView>), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/users/{id}/sessions")]
pub async fn users_sessions(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "users:read").await?;
            id_ok(&id)?;
            let sessions = core.sessions_of(&id).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Items { items: sessions }))
        }
        .await,
    )
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/users/{id}/export",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "Everything kept about the user, without a secret (recorded as data.exported)", body = UserExport), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/users/{id}/export")]
pub async fn users_export(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "users:read").await?;
            id_ok(&id)?;
            let ctx = crate::browser::context(&req);
            let export = core.export_user_for(&id, &p.actor, &ctx).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &export))
        }
        .await,
    )
}

// ------------------------------------------------------------------ groups

#[utoipa::path(
    get,
    path = "/admin/api/v1/groups",
    tag = "groups",
    security(("bearer" = [])),
    params(("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "From 1"), ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Default 50")),
    responses((status = 200, description = "OK", body = GroupList), (status = 400, description = "Bad query parameters", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/groups")]
pub async fn groups_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "groups:read").await?;
            let q: PageQuery = query(&req)?;
            if q.q.is_some() {
                return Err(bad_request("groups cannot be searched; page through them."));
            }
            let (offset, limit, page, per_page) = paging(q.page.as_deref(), q.per_page.as_deref())?;
            let (groups, total) = core.list_groups(offset, limit).await.map_err(core_error)?;
            Ok(paged(groups, total, page, per_page))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    name: String,
    #[serde(default)]
    require_mfa: bool,
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/groups",
    tag = "groups",
    security(("bearer" = [])),
    request_body = GroupBody,
    responses((status = 201, description = "Created", body = Group), (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/groups")]
pub async fn groups_create(req: HttpRequest, core: Data<Core>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "groups:write").await?;
            let b: GroupBody = body(&req, &bytes)?;
            let g = core.create_group(&b.name, b.require_mfa, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::CREATED, &g))
        }
        .await,
    )
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/groups/{id}",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = GroupDetail), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/groups/{id}")]
pub async fn groups_get(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "groups:read").await?;
            id_ok(&id)?;
            let g = core
                .find_group(&id)
                .await
                .map_err(core_error)?
                .ok_or_else(|| core_error(CoreError::NotFound("group")))?;
            let members = core.group_members(&g.id).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &GroupDetail { group: g, members }))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    require_mfa: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/groups/{id}",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    request_body = GroupPatch,
    responses((status = 200, description = "OK", body = Group), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[patch("/admin/api/v1/groups/{id}")]
pub async fn groups_update(req: HttpRequest, core: Data<Core>, id: Path<String>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "groups:write").await?;
            id_ok(&id)?;
            let b: GroupPatch = body(&req, &bytes)?;
            let g = core.update_group(&id, b.name.as_deref(), b.require_mfa, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &g))
        }
        .await,
    )
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/groups/{id}",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 204, description = "No content"), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/admin/api/v1/groups/{id}")]
pub async fn groups_delete(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "groups:write").await?;
            id_ok(&id)?;
            core.delete_group(&id, &p.actor).await.map_err(core_error)?;
            Ok(no_store(HttpResponse::NoContent().finish()))
        }
        .await,
    )
}

async fn membership(req: HttpRequest, core: Data<Core>, ids: Path<(String, String)>, member: bool) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "groups:write").await?;
            let (gid, uid) = ids.into_inner();
            id_ok(&gid)?;
            id_ok(&uid)?;
            let changed = core.set_group_member(&gid, &uid, member, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Membership { group_id: gid, user_id: uid, member, changed }))
        }
        .await,
    )
}

#[utoipa::path(
    put,
    path = "/admin/api/v1/groups/{id}/members/{user_id}",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id"), ("user_id" = String, Path, description = "The user's id")),
    responses((status = 200, description = "OK", body = Membership), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[put("/admin/api/v1/groups/{id}/members/{user_id}")]
pub async fn groups_add_member(req: HttpRequest, core: Data<Core>, ids: Path<(String, String)>) -> HttpResponse {
    membership(req, core, ids, true).await
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/groups/{id}/members/{user_id}",
    tag = "groups",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id"), ("user_id" = String, Path, description = "The user's id")),
    responses((status = 200, description = "OK", body = Membership), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/admin/api/v1/groups/{id}/members/{user_id}")]
pub async fn groups_remove_member(req: HttpRequest, core: Data<Core>, ids: Path<(String, String)>) -> HttpResponse {
    membership(req, core, ids, false).await
}

// ----------------------------------------------------------------- clients

#[utoipa::path(
    get,
    path = "/admin/api/v1/clients",
    tag = "clients",
    security(("bearer" = [])),
    params(("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "From 1"), ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Default 50")),
    responses((status = 200, description = "OK", body = ClientList), (status = 400, description = "Bad query parameters", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/clients")]
pub async fn clients_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "clients:read").await?;
            let q: PageQuery = query(&req)?;
            if q.q.is_some() {
                return Err(bad_request("clients cannot be searched; page through them."));
            }
            let (offset, limit, page, per_page) = paging(q.page.as_deref(), q.per_page.as_deref())?;
            let all = clients::list_clients(&core).await.map_err(core_error)?;
            let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
            let items: Vec<_> = all
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(0))
                .collect();
            Ok(paged(items, total, page, per_page))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    name: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    backchannel_logout_uri: Option<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    first_party: bool,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    signing_alg: Option<String>,
    #[serde(default)]
    require_mfa: bool,
    #[serde(default)]
    admin: bool,
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/clients",
    tag = "clients",
    security(("bearer" = [])),
    request_body = NewClientBody,
    responses((status = 201, description = "Created", body = CreatedClient), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/clients")]
pub async fn clients_create(req: HttpRequest, core: Data<Core>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "clients:write").await?;
            let b: NewClientBody = body(&req, &bytes)?;
            let new = NewClient {
                name: b.name,
                redirect_uris: b.redirect_uris,
                post_logout_redirect_uris: b.post_logout_redirect_uris,
                backchannel_logout_uri: b.backchannel_logout_uri,
                public: b.public,
                first_party: b.first_party,
                grants: b.grant_types,
                signing_alg: b.signing_alg,
                require_mfa: b.require_mfa,
                admin: b.admin,
            };
            let created = clients::create_client(&core, new, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::CREATED, &created))
        }
        .await,
    )
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/clients/{id}",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = Client), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/clients/{id}")]
pub async fn clients_get(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "clients:read").await?;
            id_ok(&id)?;
            let c = clients::find_client(&core, &id)
                .await
                .map_err(core_error)?
                .ok_or_else(|| core_error(CoreError::NotFound("client")))?;
            Ok(ok(StatusCode::OK, &c))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// null removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    backchannel_logout_uri: Option<Option<String>>,
    #[serde(default)]
    first_party: Option<bool>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    signing_alg: Option<String>,
    #[serde(default)]
    require_mfa: Option<bool>,
    #[serde(default)]
    admin: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/clients/{id}",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    request_body = ClientPatch,
    responses((status = 200, description = "OK", body = Client), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[patch("/admin/api/v1/clients/{id}")]
pub async fn clients_update(req: HttpRequest, core: Data<Core>, id: Path<String>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "clients:write").await?;
            id_ok(&id)?;
            let b: ClientPatch = body(&req, &bytes)?;
            let changes = ClientChanges {
                name: b.name,
                redirect_uris: b.redirect_uris,
                post_logout_redirect_uris: b.post_logout_redirect_uris,
                backchannel_logout_uri: b.backchannel_logout_uri,
                first_party: b.first_party,
                grants: b.grant_types,
                signing_alg: b.signing_alg,
                require_mfa: b.require_mfa,
                admin: b.admin,
            };
            let c = clients::update_client(&core, &id, changes, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &c))
        }
        .await,
    )
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/clients/{id}",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 204, description = "No content"), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/admin/api/v1/clients/{id}")]
pub async fn clients_delete(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "clients:write").await?;
            id_ok(&id)?;
            clients::delete_client(&core, &id, &p.actor).await.map_err(core_error)?;
            Ok(no_store(HttpResponse::NoContent().finish()))
        }
        .await,
    )
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/clients/{id}/rotate-secret",
    tag = "clients",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = NewSecret), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Conflict", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/clients/{id}/rotate-secret")]
pub async fn clients_rotate_secret(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "clients:write").await?;
            id_ok(&id)?;
            let secret = clients::rotate_secret(&core, &id, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &NewSecret { client_id: id.into_inner(), client_secret: secret }))
        }
        .await,
    )
}

// ------------------------------------------------------------------ policy

#[utoipa::path(
    get,
    path = "/admin/api/v1/policy",
    tag = "policy",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Policy), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/policy")]
pub async fn policy_get(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "policy:read").await?;
            let p = core.mfa_policy().await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Policy { mfa: p.as_str().to_owned() }))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    mfa: String,
}

#[utoipa::path(
    put,
    path = "/admin/api/v1/policy",
    tag = "policy",
    security(("bearer" = [])),
    request_body = PolicyBody,
    responses((status = 200, description = "OK", body = Policy), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[put("/admin/api/v1/policy")]
pub async fn policy_set(req: HttpRequest, core: Data<Core>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "policy:write").await?;
            let b: PolicyBody = body(&req, &bytes)?;
            let Some(policy) = MfaPolicy::parse(&b.mfa) else {
                return Err(invalid("mfa", "must be optional or required"));
            };
            core.set_mfa_policy(policy, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Policy { mfa: policy.as_str().to_owned() }))
        }
        .await,
    )
}

// -------------------------------------------------------------------- keys

#[utoipa::path(
    get,
    path = "/admin/api/v1/keys",
    tag = "keys",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Items<KeyInfo>), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/keys")]
pub async fn keys_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "keys:read").await?;
            let keys = core.list_keys().await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Items { items: keys }))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    #[serde(default)]
    now: bool,
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/keys/rotate",
    tag = "keys",
    security(("bearer" = [])),
    request_body = Option<RotateBody>,
    responses((status = 200, description = "OK", body = Items<KeyInfo>), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/keys/rotate")]
pub async fn keys_rotate(req: HttpRequest, core: Data<Core>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "keys:write").await?;
            let b: RotateBody = if bytes.is_empty() { RotateBody { now: false } } else { body(&req, &bytes)? };
            let keys = core.rotate_keys(b.now, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Items { items: keys }))
        }
        .await,
    )
}

// ------------------------------------------------------------------- audit

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    per_page: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

fn parse_time(name: &str, s: &str) -> Result<DateTime<Utc>, HttpResponse> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| bad_request(&format!("{name} must be an RFC 3339 time or a YYYY-MM-DD date.")))
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/audit",
    tag = "audit",
    security(("bearer" = [])),
    params(("user_id" = Option<String>, Query, max_length = 128), ("kind" = Option<String>, Query, max_length = 128, description = "An event kind, as user.disabled"), ("since" = Option<String>, Query, description = "RFC 3339 time or YYYY-MM-DD"), ("until" = Option<String>, Query, description = "RFC 3339 time or YYYY-MM-DD"), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000000, description = "From 1"), ("per_page" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Default 50")),
    responses((status = 200, description = "OK", body = AuditList), (status = 400, description = "Bad query parameters", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/audit")]
pub async fn audit_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "audit:read").await?;
            let q: AuditQuery = query(&req)?;
            let (offset, limit, page, per_page) = paging(q.page.as_deref(), q.per_page.as_deref())?;
            for (name, v) in [("user_id", &q.user_id), ("kind", &q.kind)] {
                if v.as_ref().is_some_and(|s| s.is_empty() || s.len() > 128) {
                    return Err(bad_request(&format!("{name} must be 1 to 128 characters.")));
                }
            }
            let filter = latchkey_core::audit::AuditFilter {
                user_id: q.user_id,
                user_email: None,
                kind: q.kind,
                since: q.since.as_deref().map(|s| parse_time("since", s)).transpose()?.map(|t| t.naive_utc()),
                until: q.until.as_deref().map(|s| parse_time("until", s)).transpose()?.map(|t| t.naive_utc()),
            };
            let (events, total) = latchkey_core::audit::page(&core, filter, offset, limit).await.map_err(core_error)?;
            Ok(paged(events, total, page, per_page))
        }
        .await,
    )
}

// ---------------------------------------------------------------- webhooks

#[derive(Serialize, ToSchema)]
pub struct WebhookDetail {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The latest delivery attempts, newest first (at most 100).
    pub attempts: Vec<WebhookAttempt>,
}

#[derive(Serialize, ToSchema)]
pub struct NewWebhookSecret {
    pub id: String,
    /// `whsec_…`, shown once; the old secret stops at once.
    pub secret: String,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Items<Webhook>), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/webhooks")]
pub async fn webhooks_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "webhooks:read").await?;
            let hooks = core.list_webhooks().await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Items { items: hooks }))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where events are POSTed: http(s); private, loopback and link-local
    /// addresses are refused when delivering.
    url: String,
    /// Event types, or `["*"]` for all of them.
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = WebhookBody,
    responses((status = 201, description = "Created; the secret is shown only now", body = CreatedWebhook), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/webhooks")]
pub async fn webhooks_create(req: HttpRequest, core: Data<Core>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "webhooks:write").await?;
            let b: WebhookBody = body(&req, &bytes)?;
            let created = core.create_webhook(&b.url, &b.description, &b.events, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::CREATED, &created))
        }
        .await,
    )
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = WebhookDetail), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/webhooks/{id}")]
pub async fn webhooks_get(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "webhooks:read").await?;
            id_ok(&id)?;
            let webhook = core
                .find_webhook(&id)
                .await
                .map_err(core_error)?
                .ok_or_else(|| core_error(CoreError::NotFound("webhook")))?;
            let attempts = core.webhook_attempts(&webhook.id).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &WebhookDetail { webhook, attempts }))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
    /// A disabled endpoint receives nothing; what was queued for it is
    /// dropped (and logged) when due.
    #[serde(default)]
    enabled: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    request_body = WebhookPatch,
    responses((status = 200, description = "OK", body = Webhook), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[patch("/admin/api/v1/webhooks/{id}")]
pub async fn webhooks_update(req: HttpRequest, core: Data<Core>, id: Path<String>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "webhooks:write").await?;
            id_ok(&id)?;
            let b: WebhookPatch = body(&req, &bytes)?;
            let change = WebhookChange { url: b.url, description: b.description, events: b.events, enabled: b.enabled };
            let hook = core.update_webhook(&id, change, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &hook))
        }
        .await,
    )
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 204, description = "No content"), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/admin/api/v1/webhooks/{id}")]
pub async fn webhooks_delete(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "webhooks:write").await?;
            id_ok(&id)?;
            core.delete_webhook(&id, &p.actor).await.map_err(core_error)?;
            Ok(no_store(HttpResponse::NoContent().finish()))
        }
        .await,
    )
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "OK", body = NewWebhookSecret), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/webhooks/{id}/rotate-secret")]
pub async fn webhooks_rotate_secret(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "webhooks:write").await?;
            id_ok(&id)?;
            let secret = core.rotate_webhook_secret(&id, &p.actor).await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &NewWebhookSecret { id: id.into_inner(), secret }))
        }
        .await,
    )
}

// ---------------------------------------------------------------- API keys

#[utoipa::path(
    get,
    path = "/admin/api/v1/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    responses((status = 200, description = "OK", body = Items<ApiKey>), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[get("/admin/api/v1/api-keys")]
pub async fn apikeys_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            principal(&req, &core, "apikeys:write").await?;
            let keys = core.list_api_keys().await.map_err(core_error)?;
            Ok(ok(StatusCode::OK, &Items { items: keys }))
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    request_body = NewKeyBody,
    responses((status = 201, description = "Created", body = CreatedApiKey), (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[post("/admin/api/v1/api-keys")]
pub async fn apikeys_create(req: HttpRequest, core: Data<Core>, bytes: Bytes) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "apikeys:write").await?;
            let b: NewKeyBody = body(&req, &bytes)?;
            let expires = match b.expires_at.as_deref() {
                None => None,
                Some(s) => Some(
                    DateTime::parse_from_rfc3339(s)
                        .map_err(|_| invalid("expires_at", "must be an RFC 3339 time"))?
                        .with_timezone(&Utc),
                ),
            };
            let created = core
                .create_api_key(&b.name, &b.scopes, expires, p.key_scopes.as_deref(), &p.actor)
                .await
                .map_err(core_error)?;
            Ok(ok(StatusCode::CREATED, &created))
        }
        .await,
    )
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id or prefix")),
    responses((status = 204, description = "No content"), (status = 404, description = "Not found", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No valid API key or admin token", body = Problem, content_type = "application/problem+json"), (status = 403, description = "Missing scope, or not allowed", body = Problem, content_type = "application/problem+json"), (status = 429, description = "This key's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/admin/api/v1/api-keys/{id}")]
pub async fn apikeys_revoke(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            let p = principal(&req, &core, "apikeys:write").await?;
            id_ok(&id)?;
            core.revoke_api_key(&id, &p.actor).await.map_err(core_error)?;
            Ok(no_store(HttpResponse::NoContent().finish()))
        }
        .await,
    )
}

// ----------------------------------------------------------------- OpenAPI

/// The admin API's OpenAPI document, made from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey admin API",
        version = "1",
        description = "Users, groups, clients, policy, signing keys, the audit log, API keys and webhooks. Authenticate with an API key (`Authorization: Bearer lk_…`, its scopes decide) or an admin's access token with the latchkey:admin scope. Every refusal is an RFC 9457 problem."
    ),
    paths(
        users_list,
        users_create,
        users_get,
        users_update,
        users_delete,
        users_sign_out,
        users_reset_mfa,
        users_resend_verification,
        users_sessions,
        users_export,
        groups_list,
        groups_create,
        groups_get,
        groups_update,
        groups_delete,
        groups_add_member,
        groups_remove_member,
        clients_list,
        clients_create,
        clients_get,
        clients_update,
        clients_delete,
        clients_rotate_secret,
        policy_get,
        policy_set,
        keys_list,
        keys_rotate,
        audit_list,
        apikeys_list,
        apikeys_create,
        apikeys_revoke,
        webhooks_list,
        webhooks_create,
        webhooks_get,
        webhooks_update,
        webhooks_delete,
        webhooks_rotate_secret
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (lk_…) or an admin access token (latchkey:admin)"))
                    .build(),
            ),
        );
    }
}

static OPENAPI_JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The OpenAPI document; public, like any API description.
#[get("/admin/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    let doc = OPENAPI_JSON.get_or_init(|| match ApiDoc::openapi().to_json() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document could not be written");
            String::new()
        }
    });
    if doc.is_empty() {
        return core_error(CoreError::Internal("OpenAPI document unavailable".into()));
    }
    HttpResponse::Ok().content_type("application/json").body(doc.clone())
}
