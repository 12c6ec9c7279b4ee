//! The admin console at /admin: server-rendered pages for admins only. An
//! admin's session must carry a second factor (admins always need one), and
//! destructive actions need a sign-in within the last 10 minutes. Every form
//! carries a CSRF token; every change is audited as `admin:USER_ID` by the
//! same core functions the admin API and the CLI use.

// Helpers here stop a handler with the response to send (`?` on
// `Result<_, HttpResponse>`); boxing it would only add an allocation on the
// refusal path.
#![allow(clippy::result_large_err)]

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use latchkey_core::accounts::{NewUser, User};
use latchkey_core::admin::UserChanges;
use latchkey_core::audit::{Actor, AuditEntry, AuditFilter};
use latchkey_core::clients::{self, Client, ClientChanges, NewClient};
use latchkey_core::groups::Group;
use latchkey_core::keys::KeyInfo;
use latchkey_core::mfa::MfaPolicy;
use latchkey_core::sessions::{Session, describe_user_agent};
use latchkey_core::{Core, CoreError};
use serde::Deserialize;

use super::account::ago;
use crate::browser;
use crate::pages::{self, see_other};

const PER_PAGE: i64 = 50;

#[path = "admin_webhooks.rs"]
pub mod webhooks;

/// The signed-in admin, or the response to send instead.
struct Admin {
    session: Session,
    user: User,
}

impl Admin {
    fn actor(&self) -> Actor {
        Actor::Admin(self.user.id.clone())
    }
}

fn forbidden() -> HttpResponse {
    pages::message(
        StatusCode::FORBIDDEN,
        "Admins only",
        "This part of Latchkey is for administrators. If you need access, ask one of them.",
        true,
        Some(("/account", "Back to your account")),
    )
}

/// Only admins, with a session that showed a second factor.
async fn admin(req: &HttpRequest, core: &Core, here: &str) -> Result<Admin, HttpResponse> {
    let next = url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>();
    let session = match browser::current_session(req, core).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(see_other(HttpResponse::build(StatusCode::SEE_OTHER), &format!("/login?next={next}"))),
        Err(e) => return Err(pages::error_page(&e)),
    };
    let user = match core.session_user(&session).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login")),
        Err(e) => return Err(pages::error_page(&e)),
    };
    if !user.admin {
        return Err(forbidden());
    }
    if !latchkey_core::mfa::acr_satisfies(latchkey_core::mfa::acr_for(&session.record.amr), "mfa") {
        return Err(see_other(HttpResponse::build(StatusCode::SEE_OTHER), &format!("/login/mfa?next={next}")));
    }
    Ok(Admin { session, user })
}

/// For a state-changing form: an admin, a valid CSRF token, and (for
/// destructive actions) a recent sign-in.
async fn admin_form(
    req: &HttpRequest,
    core: &Core,
    csrf: &str,
    here: &str,
    destructive: bool,
) -> Result<Admin, HttpResponse> {
    if !browser::csrf_ok(req, core, csrf) {
        return Err(pages::csrf_refused());
    }
    let a = admin(req, core, here).await?;
    if destructive && !core.recently_authenticated(&a.session) {
        let next = url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>();
        return Err(see_other(
            HttpResponse::build(StatusCode::SEE_OTHER),
            &format!("/login?notice=reauthenticate&next={next}"),
        ));
    }
    Ok(a)
}

fn done(r: Result<HttpResponse, HttpResponse>) -> HttpResponse {
    r.unwrap_or_else(|e| e)
}

/// What a finished action says. The URL carries only the code, so nobody
/// can put words of their own on an admin's page with a crafted link.
const NOTICES: &[(&str, &str)] = &[
    ("user-created", "User created."),
    ("user-disabled", "User disabled: their sessions and tokens have ended."),
    ("user-enabled", "User enabled."),
    ("admin-changed", "Admin rights changed."),
    ("signed-out", "Every session of this user has ended."),
    ("mfa-reset", "Second factors removed; the user sets one up again where MFA is required."),
    ("verification-sent", "Verification mail sent."),
    ("user-deleted", "User deleted."),
    ("client-created", "Client created."),
    ("saved", "Changes saved."),
    ("client-deleted", "Client deleted."),
    ("group-created", "Group created."),
    ("member-added", "Member added."),
    ("member-removed", "Member removed."),
    ("already-member", "Already a member."),
    ("not-member", "Not a member."),
    ("group-deleted", "Group deleted."),
    ("policy-saved", "Policy saved."),
    ("keys-now", "New keys sign now; the old ones are withdrawn."),
    ("keys-rotated", "New keys published; they sign after the lead time."),
    ("key-revoked", "API key revoked."),
    ("key-created", "API key created."),
    ("client-secret-rotated", "New secret: the old one no longer works."),
    ("webhook-deleted", "Webhook deleted."),
    ("webhook-created", "Webhook created. Receivers verify its deliveries with the secret below."),
    ("webhook-secret-rotated", "New secret: the old one no longer signs."),
];

/// How long a new secret waits for the page that shows it.
const REVEAL_TTL: std::time::Duration = std::time::Duration::from_secs(300);

fn reveal_key(a: &Admin, what: &str, id: &str) -> String {
    format!("console-reveal:{}:{what}:{id}", a.session.handle)
}

/// Keeps a new secret, sealed, for the next page of this admin's session
/// that shows it: a form that makes a secret answers with a redirect, so a
/// reload neither repeats the action nor shows the secret again, and the
/// secret is never put in a URL.
async fn keep_for_reveal(core: &Core, a: &Admin, what: &str, id: &str, secret: &str) -> Result<(), HttpResponse> {
    let key = reveal_key(a, what, id);
    let sealed = core
        .secrets
        .seal(&key, secret.as_bytes())
        .map_err(|e| pages::error_page(&CoreError::Internal(e.to_string())))?;
    core.store.put(&key, sealed.as_bytes(), REVEAL_TTL).await.map_err(|e| pages::error_page(&CoreError::from(e)))
}

/// The secret kept for this session, once.
async fn reveal(core: &Core, a: &Admin, what: &str, id: &str) -> Option<String> {
    let key = reveal_key(a, what, id);
    let sealed = core.store.take(&key).await.ok()??;
    let sealed = String::from_utf8(sealed).ok()?;
    String::from_utf8(core.secrets.open(&key, &sealed).ok()?).ok()
}

/// Back to `to` with the notice `code`.
fn back(to: &str, code: &'static str) -> HttpResponse {
    let sep = if to.contains('?') { '&' } else { '?' };
    see_other(HttpResponse::build(StatusCode::SEE_OTHER), &format!("{to}{sep}notice={code}"))
}

/// A path id: bounded and plain, else the page does not exist.
fn id_ok(id: &str) -> Result<(), HttpResponse> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(not_found());
    }
    Ok(())
}

fn not_found() -> HttpResponse {
    pages::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here.",
        true,
        Some(("/admin", "Back to the console")),
    )
}

/// Form fields (repeated names kept), from a urlencoded body of at most 64 KiB.
fn fields(body: &Bytes) -> Result<Vec<(String, String)>, HttpResponse> {
    if body.len() > 64 * 1024 {
        return Err(pages::message(StatusCode::PAYLOAD_TOO_LARGE, "Too much", "The form is too large.", true, None));
    }
    Ok(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

fn checked(f: &[(String, String)], name: &str) -> bool {
    !field(f, name).is_empty()
}

fn notice_of(req: &HttpRequest) -> Option<String> {
    let code = url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == "notice")?.1;
    NOTICES.iter().find(|(c, _)| *c == code).map(|(_, text)| (*text).to_owned())
}

fn page_of(req: &HttpRequest) -> i64 {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1)
}

fn qs(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    s.finish()
}

// --------------------------------------------------------------- templates

#[derive(askama::Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    q: String,
    users: Vec<User>,
    page: i64,
    per_page: i64,
    total: i64,
    base: String,
}

struct SessionRow {
    device: String,
    address: String,
    acr: &'static str,
    created: String,
    last_seen: String,
}

#[derive(askama::Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    user: User,
    groups: Vec<Group>,
    factors: String,
    sessions: Vec<SessionRow>,
}

/// A client's settings as the form shows them.
#[derive(Default)]
struct ClientForm {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
    authorization_code: bool,
    refresh_token: bool,
    client_credentials: bool,
    signing_alg: String,
    first_party: bool,
    require_mfa: bool,
    admin: bool,
    /// Only on the new-client form: public clients stay public.
    public: bool,
}

impl ClientForm {
    fn of(c: &Client) -> Self {
        let has = |g: &str| c.grant_types.iter().any(|x| x == g);
        ClientForm {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            authorization_code: has(clients::GRANT_AUTHORIZATION_CODE),
            refresh_token: has(clients::GRANT_REFRESH_TOKEN),
            client_credentials: has(clients::GRANT_CLIENT_CREDENTIALS),
            signing_alg: c.signing_alg.clone(),
            first_party: c.first_party,
            require_mfa: c.require_mfa,
            admin: c.admin,
            public: c.public,
        }
    }

    fn new_default() -> Self {
        ClientForm { authorization_code: true, refresh_token: true, signing_alg: "RS256".into(), ..Default::default() }
    }

    fn from_fields(f: &[(String, String)]) -> Self {
        ClientForm {
            name: field(f, "name").to_owned(),
            redirect_uris: field(f, "redirect_uris").to_owned(),
            post_logout_redirect_uris: field(f, "post_logout_redirect_uris").to_owned(),
            backchannel_logout_uri: field(f, "backchannel_logout_uri").to_owned(),
            authorization_code: checked(f, "grant_authorization_code"),
            refresh_token: checked(f, "grant_refresh_token"),
            client_credentials: checked(f, "grant_client_credentials"),
            signing_alg: field(f, "signing_alg").to_owned(),
            first_party: checked(f, "first_party"),
            require_mfa: checked(f, "require_mfa"),
            admin: checked(f, "admin"),
            public: checked(f, "public"),
        }
    }

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
    }

    fn grants(&self) -> Vec<String> {
        [
            (self.authorization_code, clients::GRANT_AUTHORIZATION_CODE),
            (self.refresh_token, clients::GRANT_REFRESH_TOKEN),
            (self.client_credentials, clients::GRANT_CLIENT_CREDENTIALS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, g)| (*g).to_owned())
        .collect()
    }

    fn backchannel(&self) -> Option<String> {
        Some(self.backchannel_logout_uri.trim().to_owned()).filter(|s| !s.is_empty())
    }
}

#[derive(askama::Template)]
#[template(path = "admin_clients.html")]
struct ClientsPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    clients: Vec<Client>,
    form: ClientForm,
    /// (name, client_id, secret) of a client just created.
    secret: Option<(String, String, String)>,
}

#[derive(askama::Template)]
#[template(path = "admin_client.html")]
struct ClientPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    client: Client,
    form: ClientForm,
    secret: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin_groups.html")]
struct GroupsPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    groups: Vec<Group>,
    page: i64,
    per_page: i64,
    total: i64,
    base: String,
}

#[derive(askama::Template)]
#[template(path = "admin_group.html")]
struct GroupPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    group: Group,
    members: Vec<User>,
}

struct ApiKeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    last_used: String,
    state: &'static str,
}

#[derive(askama::Template)]
#[template(path = "admin_settings.html")]
struct SettingsPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    mfa_required: bool,
    keys: Vec<KeyInfo>,
    api_keys: Vec<ApiKeyRow>,
    all_scopes: &'static [&'static str],
    new_key: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    me: String,
    nav: &'static str,
    error: Option<String>,
    notice: Option<String>,
    user: String,
    kind: String,
    since: String,
    until: String,
    events: Vec<AuditEntry>,
    page: i64,
    per_page: i64,
    total: i64,
    base: String,
}

/// What went wrong, for the page's alert; internals are logged, never shown.
fn say(e: &CoreError) -> String {
    match e {
        CoreError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            "Something went wrong on our side. Try again later.".to_owned()
        }
        CoreError::Invalid { field, message } => {
            // The form's labels, not the command line's flags.
            let label = match *field {
                "--name" | "name" => "Name",
                "--redirect-uri" => "Redirect URIs",
                "--post-logout-redirect-uri" => "Post-logout redirect URIs",
                "--backchannel-logout-uri" => "Back-channel logout URI",
                "--grant" => "Grants",
                "--signing-alg" => "Signing algorithm",
                "--admin" => "Admin client",
                "scopes" => "Scopes",
                "expires_at" => "Expires",
                "url" => "URL",
                "events" => "Events",
                "description" => "Description",
                other => other,
            };
            format!("{label}: {message}")
        }
        other => other.to_string(),
    }
}

fn status_of(e: &CoreError) -> StatusCode {
    match e {
        CoreError::Invalid { .. } | CoreError::WeakPassword(_) => StatusCode::UNPROCESSABLE_ENTITY,
        CoreError::NotFound(_) => StatusCode::NOT_FOUND,
        CoreError::Conflict(_) => StatusCode::CONFLICT,
        CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
        CoreError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        CoreError::Busy | CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

// -------------------------------------------------------------------- users

#[get("/admin")]
pub async fn console_home(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            admin(&req, &core, "/admin").await?;
            Ok(see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/admin/users"))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct UsersQuery {
    #[serde(default)]
    q: String,
}

async fn users_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let q = Query::<UsersQuery>::from_query(req.query_string()).map(|q| q.into_inner().q).unwrap_or_default();
    let q: String = q.chars().take(200).collect();
    let page = page_of(req);
    let (users, total) = match core.search_users(Some(&q), (page - 1) * PER_PAGE, PER_PAGE).await {
        Ok(r) => r,
        Err(e) => return pages::error_page(&e),
    };
    let base = format!("/admin/users?{}", qs(&[("q", &q)]));
    let base = if base.ends_with('?') { base } else { format!("{base}&") };
    pages::form_page(req, core, status, |csrf| UsersPage {
        me: a.user.email.clone(),
        nav: "users",
        csrf,
        error,
        notice: notice_of(req),
        q,
        users,
        page,
        per_page: PER_PAGE,
        total,
        base,
    })
}

#[get("/admin/users")]
pub async fn users_index(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            let a = admin(&req, &core, "/admin/users").await?;
            Ok(users_page(&req, &core, &a, StatusCode::OK, None).await)
        }
        .await,
    )
}

#[post("/admin/users")]
pub async fn users_create(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/users", false).await?;
            let name = match latchkey_core::admin::check_name(Some(field(&f, "name"))) {
                Ok(n) => n,
                Err(e) => return Ok(users_page(&req, &core, &a, status_of(&e), Some(say(&e))).await),
            };
            let new = NewUser {
                email: field(&f, "email").to_owned(),
                name,
                password: None,
                email_verified: checked(&f, "verified"),
                admin: checked(&f, "admin"),
            };
            match latchkey_core::accounts::create_user(&core, new, &a.actor()).await {
                Ok(u) => Ok(back(&format!("/admin/users/{}", u.id), "user-created")),
                Err(e) => Ok(users_page(&req, &core, &a, status_of(&e), Some(say(&e))).await),
            }
        }
        .await,
    )
}

async fn user_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let user = match core.find_user(id).await {
        Ok(Some(u)) => u,
        Ok(None) => return not_found(),
        Err(e) => return pages::error_page(&e),
    };
    let (groups, factors, sessions) =
        match (core.groups_of(&user.id).await, core.factors(&user.id).await, core.sessions_of(&user.id).await) {
            (Ok(g), Ok(f), Ok(s)) => (g, f, s),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return pages::error_page(&e),
        };
    let mut kinds = Vec::new();
    if factors.totp {
        kinds.push("authenticator app".to_owned());
    }
    if factors.security_keys > 0 {
        kinds.push(format!("{} security key(s)", factors.security_keys));
    }
    if factors.passkeys > 0 {
        kinds.push(format!("{} passkey(s)", factors.passkeys));
    }
    if factors.recovery_codes_left > 0 {
        kinds.push(format!("{} recovery code(s) left", factors.recovery_codes_left));
    }
    let factors = if kinds.is_empty() { "none".to_owned() } else { kinds.join(", ") };
    let now = core.clock.now();
    let sessions = sessions
        .into_iter()
        .map(|s| SessionRow {
            device: describe_user_agent(s.user_agent.as_deref()),
            address: s.ip.unwrap_or_else(|| "unknown address".into()),
            acr: s.acr,
            created: ago(now, s.created_at),
            last_seen: ago(now, s.last_seen),
        })
        .collect();
    pages::form_page(req, core, status, |csrf| UserPage {
        me: a.user.email.clone(),
        nav: "users",
        csrf,
        error,
        notice: notice_of(req),
        user,
        groups,
        factors,
        sessions,
    })
}

#[get("/admin/users/{id}")]
pub async fn user_show(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let a = admin(&req, &core, &format!("/admin/users/{id}")).await?;
            Ok(user_page(&req, &core, &a, &id, StatusCode::OK, None).await)
        }
        .await,
    )
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

#[post("/admin/users/{id}/{action}")]
pub async fn user_action(
    req: HttpRequest,
    core: Data<Core>,
    path: Path<(String, String)>,
    form: actix_web::web::Form<CsrfOnly>,
) -> HttpResponse {
    done(
        async {
            let (id, action) = path.into_inner();
            id_ok(&id)?;
            const ACTIONS: &[&str] = &[
                "disable",
                "enable",
                "make-admin",
                "remove-admin",
                "sign-out",
                "reset-mfa",
                "resend-verification",
                "export",
                "delete",
            ];
            if !ACTIONS.contains(&action.as_str()) {
                return Err(not_found());
            }
            let here = format!("/admin/users/{id}");
            let destructive = !matches!(action.as_str(), "enable" | "resend-verification");
            let a = admin_form(&req, &core, &form.csrf, &here, destructive).await?;
            let actor = a.actor();
            let result = match action.as_str() {
                "disable" | "enable" => core
                    .update_user(&id, UserChanges { disabled: Some(action == "disable"), ..Default::default() }, &actor)
                    .await
                    .map(|_| if action == "disable" { "user-disabled" } else { "user-enabled" }),
                "make-admin" | "remove-admin" => core
                    .update_user(&id, UserChanges { admin: Some(action == "make-admin"), ..Default::default() }, &actor)
                    .await
                    .map(|_| "admin-changed"),
                "sign-out" => core.sign_out_everywhere(&id, &actor).await.map(|_| "signed-out"),
                "reset-mfa" => core.reset_factors(&id, &actor).await.map(|_| "mfa-reset"),
                "resend-verification" => core.admin_resend_verification(&id, &actor).await.map(|_| "verification-sent"),
                // The user's data as a file, like their own "Export my data".
                "export" => {
                    return match core.export_user_for(&id, &actor, &browser::context(&req)).await {
                        Ok(data) => Ok(super::privacy::download(&data)),
                        Err(CoreError::NotFound(_)) => Err(not_found()),
                        Err(e) => Ok(user_page(&req, &core, &a, &id, status_of(&e), Some(say(&e))).await),
                    };
                }
                "delete" => {
                    return match core.delete_user_by_id(&id, &actor).await {
                        Ok(()) => Ok(back("/admin/users", "user-deleted")),
                        Err(e) => Ok(user_page(&req, &core, &a, &id, status_of(&e), Some(say(&e))).await),
                    };
                }
                _ => return Err(not_found()),
            };
            match result {
                Ok(notice) => Ok(back(&here, notice)),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(user_page(&req, &core, &a, &id, status_of(&e), Some(say(&e))).await),
            }
        }
        .await,
    )
}

// ------------------------------------------------------------------ clients

async fn clients_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    status: StatusCode,
    error: Option<String>,
    form: ClientForm,
    secret: Option<(String, String, String)>,
) -> HttpResponse {
    let list = match clients::list_clients(core).await {
        Ok(l) => l,
        Err(e) => return pages::error_page(&e),
    };
    pages::form_page(req, core, status, |csrf| ClientsPage {
        me: a.user.email.clone(),
        nav: "clients",
        csrf,
        error,
        notice: notice_of(req),
        clients: list,
        form,
        secret,
    })
}

#[get("/admin/clients")]
pub async fn clients_list(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            let a = admin(&req, &core, "/admin/clients").await?;
            // A client just made: name, client_id and secret, as JSON.
            let secret = reveal(&core, &a, "client", "new")
                .await
                .and_then(|s| serde_json::from_str::<(String, String, String)>(&s).ok());
            Ok(clients_page(&req, &core, &a, StatusCode::OK, None, ClientForm::new_default(), secret).await)
        }
        .await,
    )
}

#[post("/admin/clients")]
pub async fn clients_create(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/clients", false).await?;
            let form = ClientForm::from_fields(&f);
            let new = NewClient {
                name: form.name.clone(),
                redirect_uris: ClientForm::lines(&form.redirect_uris),
                post_logout_redirect_uris: ClientForm::lines(&form.post_logout_redirect_uris),
                backchannel_logout_uri: form.backchannel(),
                public: form.public,
                first_party: form.first_party,
                grants: form.grants(),
                signing_alg: Some(form.signing_alg.clone()).filter(|s| !s.is_empty()),
                require_mfa: form.require_mfa,
                admin: form.admin,
            };
            if new.grants.is_empty() {
                let e = CoreError::invalid("Grants", "choose at least one");
                return Ok(clients_page(&req, &core, &a, status_of(&e), Some(say(&e)), form, None).await);
            }
            match clients::create_client(&core, new, &a.actor()).await {
                Ok(c) => {
                    let secret =
                        c.client_secret.clone().map(|s| (c.client.name.clone(), c.client.client_id.clone(), s));
                    match secret {
                        // Shown once by the list the browser is sent to.
                        Some(s) => {
                            let json = serde_json::to_string(&s)
                                .map_err(|e| pages::error_page(&CoreError::Internal(e.to_string())))?;
                            keep_for_reveal(&core, &a, "client", "new", &json).await?;
                            Ok(back("/admin/clients", "client-created"))
                        }
                        None => Ok(back(&format!("/admin/clients/{}", c.client.client_id), "client-created")),
                    }
                }
                Err(e) => Ok(clients_page(&req, &core, &a, status_of(&e), Some(say(&e)), form, None).await),
            }
        }
        .await,
    )
}

#[allow(clippy::too_many_arguments)]
async fn client_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    form: Option<ClientForm>,
    secret: Option<String>,
) -> HttpResponse {
    let client = match clients::find_client(core, id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(),
        Err(e) => return pages::error_page(&e),
    };
    let form = form.unwrap_or_else(|| ClientForm::of(&client));
    pages::form_page(req, core, status, |csrf| ClientPage {
        me: a.user.email.clone(),
        nav: "clients",
        csrf,
        error,
        notice: notice_of(req),
        client,
        form,
        secret,
    })
}

#[get("/admin/clients/{id}")]
pub async fn client_show(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let a = admin(&req, &core, &format!("/admin/clients/{id}")).await?;
            let secret = reveal(&core, &a, "client", &id).await;
            Ok(client_page(&req, &core, &a, &id, StatusCode::OK, None, None, secret).await)
        }
        .await,
    )
}

#[post("/admin/clients/{id}")]
pub async fn client_update(req: HttpRequest, core: Data<Core>, id: Path<String>, body: Bytes) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let f = fields(&body)?;
            let here = format!("/admin/clients/{id}");
            let a = admin_form(&req, &core, field(&f, "csrf"), &here, false).await?;
            let form = ClientForm::from_fields(&f);
            let changes = ClientChanges {
                name: Some(form.name.clone()),
                redirect_uris: Some(ClientForm::lines(&form.redirect_uris)),
                post_logout_redirect_uris: Some(ClientForm::lines(&form.post_logout_redirect_uris)),
                backchannel_logout_uri: Some(form.backchannel()),
                first_party: Some(form.first_party),
                grants: Some(form.grants()),
                signing_alg: Some(form.signing_alg.clone()),
                require_mfa: Some(form.require_mfa),
                admin: Some(form.admin),
            };
            if form.grants().is_empty() {
                let e = CoreError::invalid("Grants", "choose at least one");
                return Ok(client_page(&req, &core, &a, &id, status_of(&e), Some(say(&e)), Some(form), None).await);
            }
            match clients::update_client(&core, &id, changes, &a.actor()).await {
                Ok(_) => Ok(back(&here, "saved")),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(client_page(&req, &core, &a, &id, status_of(&e), Some(say(&e)), Some(form), None).await),
            }
        }
        .await,
    )
}

#[post("/admin/clients/{id}/rotate-secret")]
pub async fn client_rotate(
    req: HttpRequest,
    core: Data<Core>,
    id: Path<String>,
    form: actix_web::web::Form<CsrfOnly>,
) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let here = format!("/admin/clients/{id}");
            let a = admin_form(&req, &core, &form.csrf, &here, true).await?;
            match clients::rotate_secret(&core, &id, &a.actor()).await {
                Ok(secret) => {
                    keep_for_reveal(&core, &a, "client", &id, &secret).await?;
                    Ok(back(&here, "client-secret-rotated"))
                }
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(client_page(&req, &core, &a, &id, status_of(&e), Some(say(&e)), None, None).await),
            }
        }
        .await,
    )
}

#[post("/admin/clients/{id}/delete")]
pub async fn client_delete(
    req: HttpRequest,
    core: Data<Core>,
    id: Path<String>,
    form: actix_web::web::Form<CsrfOnly>,
) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let a = admin_form(&req, &core, &form.csrf, &format!("/admin/clients/{id}"), true).await?;
            match clients::delete_client(&core, &id, &a.actor()).await {
                Ok(()) => Ok(back("/admin/clients", "client-deleted")),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(pages::error_page(&e)),
            }
        }
        .await,
    )
}

// ------------------------------------------------------------------- groups

async fn groups_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let page = page_of(req);
    let (groups, total) = match core.list_groups((page - 1) * PER_PAGE, PER_PAGE).await {
        Ok(r) => r,
        Err(e) => return pages::error_page(&e),
    };
    pages::form_page(req, core, status, |csrf| GroupsPage {
        me: a.user.email.clone(),
        nav: "groups",
        csrf,
        error,
        notice: notice_of(req),
        groups,
        page,
        per_page: PER_PAGE,
        total,
        base: "/admin/groups?".into(),
    })
}

#[get("/admin/groups")]
pub async fn groups_index(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            let a = admin(&req, &core, "/admin/groups").await?;
            Ok(groups_page(&req, &core, &a, StatusCode::OK, None).await)
        }
        .await,
    )
}

#[post("/admin/groups")]
pub async fn groups_create(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/groups", false).await?;
            match core.create_group(field(&f, "name"), checked(&f, "require_mfa"), &a.actor()).await {
                Ok(g) => Ok(back(&format!("/admin/groups/{}", g.id), "group-created")),
                Err(e) => Ok(groups_page(&req, &core, &a, status_of(&e), Some(say(&e))).await),
            }
        }
        .await,
    )
}

async fn group_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let group = match core.find_group(id).await {
        Ok(Some(g)) => g,
        Ok(None) => return not_found(),
        Err(e) => return pages::error_page(&e),
    };
    let members = match core.group_members(&group.id).await {
        Ok(m) => m,
        Err(e) => return pages::error_page(&e),
    };
    pages::form_page(req, core, status, |csrf| GroupPage {
        me: a.user.email.clone(),
        nav: "groups",
        csrf,
        error,
        notice: notice_of(req),
        group,
        members,
    })
}

#[get("/admin/groups/{id}")]
pub async fn group_show(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let a = admin(&req, &core, &format!("/admin/groups/{id}")).await?;
            Ok(group_page(&req, &core, &a, &id, StatusCode::OK, None).await)
        }
        .await,
    )
}

#[post("/admin/groups/{id}")]
pub async fn group_update(req: HttpRequest, core: Data<Core>, id: Path<String>, body: Bytes) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let f = fields(&body)?;
            let here = format!("/admin/groups/{id}");
            let a = admin_form(&req, &core, field(&f, "csrf"), &here, false).await?;
            match core.update_group(&id, Some(field(&f, "name")), Some(checked(&f, "require_mfa")), &a.actor()).await {
                Ok(_) => Ok(back(&here, "saved")),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(group_page(&req, &core, &a, &id, status_of(&e), Some(say(&e))).await),
            }
        }
        .await,
    )
}

#[post("/admin/groups/{id}/members/{op}")]
pub async fn group_members(
    req: HttpRequest,
    core: Data<Core>,
    path: Path<(String, String)>,
    body: Bytes,
) -> HttpResponse {
    done(
        async {
            let (id, op) = path.into_inner();
            id_ok(&id)?;
            let f = fields(&body)?;
            let here = format!("/admin/groups/{id}");
            let a = admin_form(&req, &core, field(&f, "csrf"), &here, op == "remove").await?;
            let user_id = match op.as_str() {
                "add" => match latchkey_core::accounts::find_by_email(&core, field(&f, "email")).await {
                    Ok(Some(u)) => u.id,
                    Ok(None) => {
                        let e = CoreError::invalid("Email", "no account has this address");
                        return Ok(group_page(&req, &core, &a, &id, status_of(&e), Some(say(&e))).await);
                    }
                    Err(e) => return Ok(group_page(&req, &core, &a, &id, status_of(&e), Some(say(&e))).await),
                },
                "remove" => field(&f, "user_id").to_owned(),
                _ => return Err(not_found()),
            };
            match core.set_group_member(&id, &user_id, op == "add", &a.actor()).await {
                Ok(true) => Ok(back(&here, if op == "add" { "member-added" } else { "member-removed" })),
                Ok(false) => Ok(back(&here, if op == "add" { "already-member" } else { "not-member" })),
                Err(e) => Ok(group_page(&req, &core, &a, &id, status_of(&e), Some(say(&e))).await),
            }
        }
        .await,
    )
}

#[post("/admin/groups/{id}/delete")]
pub async fn group_delete(
    req: HttpRequest,
    core: Data<Core>,
    id: Path<String>,
    form: actix_web::web::Form<CsrfOnly>,
) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let a = admin_form(&req, &core, &form.csrf, &format!("/admin/groups/{id}"), true).await?;
            match core.delete_group(&id, &a.actor()).await {
                Ok(()) => Ok(back("/admin/groups", "group-deleted")),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(pages::error_page(&e)),
            }
        }
        .await,
    )
}

// ---------------------------------------------------- policy, keys, API keys

async fn settings_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    status: StatusCode,
    error: Option<String>,
    new_key: Option<String>,
) -> HttpResponse {
    let (policy, keys, api_keys) = match (core.mfa_policy().await, core.list_keys().await, core.list_api_keys().await) {
        (Ok(p), Ok(k), Ok(a)) => (p, k, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return pages::error_page(&e),
    };
    let now = core.clock.now();
    let api_keys = api_keys
        .into_iter()
        .map(|k| ApiKeyRow {
            state: if k.revoked_at.is_some() {
                "revoked"
            } else if k.expires_at.is_some_and(|t| t <= now) {
                "expired"
            } else {
                "active"
            },
            last_used: k.last_used_at.map(|t| ago(now, t)).unwrap_or_else(|| "never".into()),
            scopes: k.scopes.join(" "),
            id: k.id,
            name: k.name,
            prefix: k.prefix,
        })
        .collect();
    pages::form_page(req, core, status, |csrf| SettingsPage {
        me: a.user.email.clone(),
        nav: "settings",
        csrf,
        error,
        notice: notice_of(req),
        mfa_required: policy == MfaPolicy::Required,
        keys,
        api_keys,
        all_scopes: latchkey_core::apikeys::SCOPES,
        new_key,
    })
}

#[get("/admin/settings")]
pub async fn settings_show(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            let a = admin(&req, &core, "/admin/settings").await?;
            let new_key = reveal(&core, &a, "apikey", "new").await;
            Ok(settings_page(&req, &core, &a, StatusCode::OK, None, new_key).await)
        }
        .await,
    )
}

#[post("/admin/policy")]
pub async fn policy_set(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/settings", true).await?;
            let Some(p) = MfaPolicy::parse(field(&f, "mfa")) else {
                let e = CoreError::invalid("MFA", "choose optional or required");
                return Ok(settings_page(&req, &core, &a, status_of(&e), Some(say(&e)), None).await);
            };
            match core.set_mfa_policy(p, &a.actor()).await {
                Ok(()) => Ok(back("/admin/settings", "policy-saved")),
                Err(e) => Ok(settings_page(&req, &core, &a, status_of(&e), Some(say(&e)), None).await),
            }
        }
        .await,
    )
}

#[post("/admin/keys/rotate")]
pub async fn keys_rotate(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/settings", true).await?;
            let now = checked(&f, "now");
            match core.rotate_keys(now, &a.actor()).await {
                Ok(_) if now => Ok(back("/admin/settings", "keys-now")),
                Ok(_) => Ok(back("/admin/settings", "keys-rotated")),
                Err(e) => Ok(settings_page(&req, &core, &a, status_of(&e), Some(say(&e)), None).await),
            }
        }
        .await,
    )
}

#[post("/admin/api-keys")]
pub async fn api_key_create(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/settings", false).await?;
            let scopes: Vec<String> = f.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
            let expires = match field(&f, "expires") {
                "" => None,
                d => match chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)) {
                    Some(t) => Some(t.and_utc()),
                    None => {
                        let e = CoreError::invalid("Expires", "is not a date");
                        return Ok(settings_page(&req, &core, &a, status_of(&e), Some(say(&e)), None).await);
                    }
                },
            };
            match core.create_api_key(field(&f, "name"), &scopes, expires, None, &a.actor()).await {
                // Shown once by the page the browser is sent to.
                Ok(k) => {
                    keep_for_reveal(&core, &a, "apikey", "new", &k.key).await?;
                    Ok(back("/admin/settings", "key-created"))
                }
                Err(e) => Ok(settings_page(&req, &core, &a, status_of(&e), Some(say(&e)), None).await),
            }
        }
        .await,
    )
}

#[post("/admin/api-keys/revoke")]
pub async fn api_key_revoke(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/settings", true).await?;
            let id = field(&f, "id");
            id_ok(id)?;
            match core.revoke_api_key(id, &a.actor()).await {
                Ok(_) => Ok(back("/admin/settings", "key-revoked")),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(settings_page(&req, &core, &a, status_of(&e), Some(say(&e)), None).await),
            }
        }
        .await,
    )
}

// -------------------------------------------------------------------- audit

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

#[get("/admin/audit")]
pub async fn audit_index(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            let a = admin(&req, &core, "/admin/audit").await?;
            let q = Query::<AuditQuery>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default();
            let date =
                |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0));
            let mut error = None;
            let since = if q.since.is_empty() { None } else { date(&q.since) };
            let until = if q.until.is_empty() { None } else { date(&q.until).map(|t| t + chrono::Duration::days(1)) };
            if (!q.since.is_empty() && since.is_none()) || (!q.until.is_empty() && until.is_none()) {
                error = Some("Dates are written YYYY-MM-DD.".to_owned());
            }
            let user_email = if q.user.trim().is_empty() {
                None
            } else {
                match latchkey_core::accounts::normalize_email(q.user.trim()) {
                    Ok((_, n)) => Some(n),
                    Err(_) => {
                        error = Some("That is not an email address.".to_owned());
                        None
                    }
                }
            };
            let short = |s: &str| Some(s.chars().take(128).collect::<String>()).filter(|s: &String| !s.is_empty());
            let filter = AuditFilter { user_id: short(&q.user_id), user_email, kind: short(&q.kind), since, until };
            let page = page_of(&req);
            let (events, total) = latchkey_core::audit::page(&core, filter, (page - 1) * PER_PAGE, PER_PAGE)
                .await
                .map_err(|e| pages::error_page(&e))?;
            let base = format!(
                "/admin/audit?{}",
                qs(&[
                    ("user", &q.user),
                    ("user_id", &q.user_id),
                    ("kind", &q.kind),
                    ("since", &q.since),
                    ("until", &q.until)
                ])
            );
            let base = if base.ends_with('?') { base } else { format!("{base}&") };
            let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            let page = AuditPage {
                me: a.user.email.clone(),
                nav: "audit",
                error,
                notice: None,
                user: q.user.chars().take(254).collect(),
                kind: q.kind.chars().take(128).collect(),
                since: q.since.chars().take(10).collect(),
                until: q.until.chars().take(10).collect(),
                events,
                page,
                per_page: PER_PAGE,
                total,
                base,
            };
            Ok(pages::render(HttpResponse::build(status), status, &page))
        }
        .await,
    )
}
