//! /account: the user's own page — sessions (end one, sign out everywhere
//! else), password change, email verification.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use chrono::{DateTime, Utc};
use latchkey_core::accounts::User;
use latchkey_core::sessions::{Session, describe_user_agent};
use latchkey_core::{Core, CoreError};
use serde::Deserialize;

use crate::browser::{self, SESSION};
use crate::pages::{self, AppRow, IdentityView, KeyRow, SessionRow, see_other};

/// A scope in a word, for the list of connected apps.
fn scope_word(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "openid" => "your identity",
        "profile" => "your name",
        "email" => "your email address",
        _ => return None,
    })
}

/// The signed-in session and its user, or the response to send instead (a
/// redirect to sign in, or an error page).
pub(crate) async fn signed_in(req: &HttpRequest, core: &Core) -> Result<(Session, User), HttpResponse> {
    let to_login = || see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login?next=/account");
    let session = match browser::current_session(req, core).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(to_login()),
        Err(e) => return Err(pages::error_page(&e)),
    };
    match core.session_user(&session).await {
        Ok(Some(user)) => {
            // Policy requires MFA and this session never showed a second
            // factor (it began before the policy did): that comes first.
            let required = matches!(core.mfa_required_for(&user.id).await, Ok(true));
            if required && latchkey_core::mfa::acr_for(&session.record.amr) == "1fa" {
                return Err(see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login/mfa?next=/account"));
            }
            Ok((session, user))
        }
        // Disabled or deleted since: this session is over.
        Ok(None) => {
            let _ = core.end_session(&session.record.user_id, &session.handle).await;
            let mut b = HttpResponse::build(StatusCode::SEE_OTHER);
            b.cookie(browser::removal(core, SESSION));
            Err(see_other(b, "/login"))
        }
        Err(e) => Err(pages::error_page(&e)),
    }
}

pub(crate) fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let mins = (now - t).num_minutes();
    match mins {
        i64::MIN..=0 => "just now".to_owned(),
        1 => "1 minute ago".to_owned(),
        2..=59 => format!("{mins} minutes ago"),
        60..=1439 => {
            let h = mins / 60;
            format!("{h} hour{} ago", if h == 1 { "" } else { "s" })
        }
        _ => t.format("%-d %b %Y").to_string(),
    }
}

pub(crate) async fn account_page(
    req: &HttpRequest,
    core: &Core,
    session: &Session,
    user: &User,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> HttpResponse {
    let sessions = match core.list_sessions(&user.id).await {
        Ok(s) => s,
        Err(e) => return pages::error_page(&e),
    };
    let apps = match core.connected_apps(&user.id).await {
        Ok(a) => a,
        Err(e) => return pages::error_page(&e),
    };
    let linked = match core.identities(&user.id).await {
        Ok(i) => i,
        Err(e) => return pages::error_page(&e),
    };
    let factors = match core.factors(&user.id).await {
        Ok(f) => f,
        Err(e) => return pages::error_page(&e),
    };
    let keys = match core.keys(&user.id).await {
        Ok(k) => k,
        Err(e) => return pages::error_page(&e),
    };
    let mfa_required = matches!(core.mfa_required_for(&user.id).await, Ok(true));
    let display = |key: &str| core.provider(key).map(|p| p.display_name.clone()).unwrap_or_else(|| key.to_owned());
    let identities: Vec<IdentityView> = linked
        .iter()
        .map(|i| IdentityView {
            id: i.id.clone(),
            provider: display(&i.provider),
            email: i.email.clone().unwrap_or_default(),
        })
        .collect();
    let linkable = core
        .settings
        .providers
        .iter()
        .filter(|p| !linked.iter().any(|i| i.provider == p.key))
        .map(|p| (p.key.clone(), p.display_name.clone()))
        .collect();
    let now = core.clock.now();
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            kind: match (k.kind.as_str(), k.synced) {
                (latchkey_core::webauthn::KIND_PASSKEY, true) => "Passkey, synced".to_owned(),
                (latchkey_core::webauthn::KIND_PASSKEY, false) => "Passkey".to_owned(),
                _ => "Security key".to_owned(),
            },
            added: ago(now, k.created_at),
            last_used: k.last_used_at.map(|t| ago(now, t)),
            id: k.id,
            name: k.name,
        })
        .collect();
    let apps = apps
        .into_iter()
        .map(|a| AppRow {
            scopes: a.scopes.iter().filter_map(|s| scope_word(s)).map(str::to_owned).collect(),
            granted: ago(now, a.updated_at),
            client_id: a.client_id,
            name: a.name,
        })
        .collect();
    let rows = sessions
        .iter()
        .map(|s| SessionRow {
            handle: s.handle.clone(),
            device: describe_user_agent(s.record.user_agent.as_deref()),
            address: s.record.ip.clone().unwrap_or_else(|| "unknown address".to_owned()),
            last_seen: ago(now, s.record.last_seen),
            created: ago(now, s.record.created_at),
            current: s.handle == session.handle,
        })
        .collect();
    pages::form_page(req, core, status, |csrf| pages::Account {
        csrf,
        name: user.name.clone(),
        email: user.email.clone(),
        email_verified: user.email_verified,
        has_password: user.has_password,
        sessions: rows,
        apps,
        identities,
        linkable,
        min_length: core.password_policy.min_length,
        totp: factors.totp,
        keys,
        has_factor: factors.any(),
        recovery_left: factors.recovery_codes_left,
        mfa_required,
        error,
        notice,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccountQuery {
    notice: Option<String>,
}

#[get("/account")]
pub async fn account(req: HttpRequest, core: Data<Core>, q: Query<AccountQuery>) -> HttpResponse {
    let (session, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let notice = match q.notice.as_deref() {
        Some("password-changed") => Some("Your password is saved. Every other session was signed out.".to_owned()),
        Some("sessions-ended") => Some("Every other session was signed out.".to_owned()),
        Some("session-ended") => Some("That session was signed out.".to_owned()),
        Some("verified") => Some(format!("Thank you: {} is confirmed.", user.email)),
        Some("linked") => Some("Linked. You can now sign in with it.".to_owned()),
        Some("unlinked") => Some("Unlinked. It no longer signs you in here.".to_owned()),
        Some("app-removed") => Some("That app no longer has access to your account.".to_owned()),
        Some("verification-sent") => Some(format!("We sent a new confirmation link to {}.", user.email)),
        Some("totp-added") => Some("Your authenticator app is set up.".to_owned()),
        Some("totp-removed") => Some("The authenticator app was removed.".to_owned()),
        Some("key-added") => Some("Added. You can use it the next time you sign in.".to_owned()),
        Some("key-renamed") => Some("Renamed.".to_owned()),
        Some("key-removed") => Some("Removed. It no longer signs you in here.".to_owned()),
        _ => None,
    };
    account_page(&req, &core, &session, &user, StatusCode::OK, None, notice).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

#[post("/account/password")]
pub async fn change_password(req: HttpRequest, core: Data<Core>, form: Form<PasswordForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let ctx = browser::context(&req);
    match core.change_password(&session, &form.current_password, &form.new_password, &ctx).await {
        Ok((new_id, _)) => {
            let mut b = HttpResponse::build(StatusCode::SEE_OTHER);
            b.cookie(browser::session_cookie(&core, new_id));
            see_other(b, "/account?notice=password-changed")
        }
        Err(CoreError::ReauthenticationRequired) => {
            see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/login?notice=reauthenticate&next=/account")
        }
        Err(e @ (CoreError::Invalid { .. } | CoreError::WeakPassword(_) | CoreError::RateLimited(_))) => {
            let status = if matches!(e, CoreError::RateLimited(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let msg = match &e {
                CoreError::Invalid { message, .. } => message.clone(),
                other => other.to_string(),
            };
            account_page(&req, &core, &session, &user, status, Some(msg), None).await
        }
        Err(e) => pages::error_page(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndForm {
    csrf: String,
    session: String,
}

#[post("/account/sessions/end")]
pub async fn end_session(req: HttpRequest, core: Data<Core>, form: Form<EndForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, _) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.revoke_session(&session, &form.session, &browser::context(&req)).await {
        Ok(true) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=session-ended"),
        // Not one of this user's other sessions: nothing changes.
        Ok(false) => pages::message(
            StatusCode::NOT_FOUND,
            "Session not found",
            "That session has already ended, or is not one of yours.",
            true,
            Some(("/account", "Back to your account")),
        ),
        Err(e) => pages::error_page(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    csrf: String,
}

#[post("/account/sessions/end-others")]
pub async fn end_other_sessions(req: HttpRequest, core: Data<Core>, form: Form<CsrfForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (session, _) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.sign_out(&session, true, &browser::context(&req)).await {
        Ok(_) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=sessions-ended"),
        Err(e) => pages::error_page(&e),
    }
}

#[post("/account/verification")]
pub async fn resend_verification(req: HttpRequest, core: Data<Core>, form: Form<CsrfForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (_, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    if user.email_verified {
        return see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account");
    }
    let limit = core.settings.limits.account_mails_per_hour;
    match core.account_mail_allowed("verify", &user.email.to_lowercase(), limit).await {
        Ok(true) => {}
        Ok(false) => {
            return pages::message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many messages",
                "We already sent several links this hour. Check your inbox (and spam folder), or try again later.",
                true,
                Some(("/account", "Back to your account")),
            );
        }
        Err(e) => return pages::error_page(&e),
    }
    match core.send_verification(&user).await {
        Ok(()) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=verification-sent"),
        Err(e) => pages::error_page(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevokeAppForm {
    csrf: String,
    client_id: String,
}

#[post("/account/apps/revoke")]
pub async fn revoke_app(req: HttpRequest, core: Data<Core>, form: Form<RevokeAppForm>) -> HttpResponse {
    if !browser::csrf_ok(&req, &core, &form.csrf) {
        return pages::csrf_refused();
    }
    let (_, user) = match signed_in(&req, &core).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match core.revoke_consent(&user.id, &form.client_id, &browser::context(&req)).await {
        Ok(true) => see_other(HttpResponse::build(StatusCode::SEE_OTHER), "/account?notice=app-removed"),
        // Not one of this user's connected apps: nothing changes.
        Ok(false) => pages::message(
            StatusCode::NOT_FOUND,
            "App not found",
            "That app has no access to your account.",
            true,
            Some(("/account", "Back to your account")),
        ),
        Err(e) => pages::error_page(&e),
    }
}
