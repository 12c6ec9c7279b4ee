//! What browser pages share: the cookies (session, CSRF, known device), the
//! CSRF check of every state-changing form, the signed-in session, and the
//! request's context for sessions and the audit log.
//!
//! Cookies are HttpOnly and SameSite=Lax; with an https public URL they are
//! also Secure and carry the `__Host-` prefix (no Domain, Path=/), so a
//! sibling subdomain cannot plant them.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponseBuilder};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::sessions::{RequestContext, Session};
use latchkey_core::tokens::{constant_time_eq, random_token};
use latchkey_core::{Core, CoreError};

pub const SESSION: &str = "latchkey_session";
pub const CSRF: &str = "latchkey_csrf";
pub const DEVICE: &str = "latchkey_device";
/// Binds a sign-in link to the browser that asked for it.
pub const LINK: &str = "latchkey_link";
/// Binds an upstream sign-in to the browser that started it.
pub const UPSTREAM: &str = "latchkey_upstream";
/// A sign-in waiting for its second factor.
pub const MFA: &str = "latchkey_mfa";

/// The cookie's name as sent: `__Host-` prefixed over https.
pub fn cookie_name(core: &Core, base: &str) -> String {
    if core.settings.server.https { format!("__Host-{base}") } else { base.to_owned() }
}

fn build_cookie(core: &Core, base: &str, value: String, max_age: Option<std::time::Duration>) -> Cookie<'static> {
    let mut c = Cookie::build(cookie_name(core, base), value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(core.settings.server.https)
        .finish();
    if let Some(age) = max_age {
        c.set_max_age(CookieDuration::seconds(i64::try_from(age.as_secs()).unwrap_or(i64::MAX)));
    }
    c
}

/// A cookie that tells the browser to forget `base`.
pub fn removal(core: &Core, base: &str) -> Cookie<'static> {
    let mut c = build_cookie(core, base, String::new(), None);
    c.make_removal();
    c
}

pub fn session_cookie(core: &Core, id: String) -> Cookie<'static> {
    build_cookie(core, SESSION, id, Some(core.settings.lifetimes.session_absolute))
}

pub fn link_cookie(core: &Core, token: String) -> Cookie<'static> {
    build_cookie(core, LINK, token, Some(core.settings.lifetimes.magic_link))
}

pub fn upstream_cookie(core: &Core, token: String) -> Cookie<'static> {
    build_cookie(core, UPSTREAM, token, Some(latchkey_core::upstream::FLOW_TTL))
}

pub fn mfa_cookie(core: &Core, token: String) -> Cookie<'static> {
    build_cookie(core, MFA, token, Some(latchkey_core::mfa::PENDING_TTL))
}

pub fn device_cookie(core: &Core, token: String) -> Cookie<'static> {
    build_cookie(core, DEVICE, token, Some(core.settings.lifetimes.known_device))
}

pub fn cookie_value(req: &HttpRequest, core: &Core, base: &str) -> Option<String> {
    req.cookie(&cookie_name(core, base)).map(|c| c.value().to_owned())
}

/// Where the request came from.
pub fn context(req: &HttpRequest) -> RequestContext {
    RequestContext {
        ip: crate::client_addr::of_request(req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    }
}

/// The live session the request's cookie names.
pub async fn current_session(req: &HttpRequest, core: &Core) -> Result<Option<Session>, CoreError> {
    match cookie_value(req, core, SESSION) {
        Some(id) => core.session_from_cookie(&id, &context(req)).await,
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------
// CSRF: a random value in a cookie, and in each form its MAC under a key
// derived from the secret box. A form is accepted only when the two match,
// which a page on another origin can neither read nor forge.

fn mac(core: &Core, value: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &core.secrets.derive("csrf"));
    URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, value.as_bytes()).as_ref())
}

/// The token for this request's forms; sets the cookie when the browser has
/// none yet.
pub fn csrf_token(req: &HttpRequest, core: &Core, res: &mut HttpResponseBuilder) -> Result<String, CoreError> {
    let value = match cookie_value(req, core, CSRF).filter(|v| v.len() == 43) {
        Some(v) => v,
        None => {
            let v = random_token()?;
            res.cookie(build_cookie(core, CSRF, v.clone(), None));
            v
        }
    };
    Ok(mac(core, &value))
}

/// Whether a submitted form's token matches the browser's cookie.
pub fn csrf_ok(req: &HttpRequest, core: &Core, submitted: &str) -> bool {
    match cookie_value(req, core, CSRF) {
        Some(v) if !submitted.is_empty() => constant_time_eq(mac(core, &v).as_bytes(), submitted.as_bytes()),
        _ => false,
    }
}

/// A local path to continue to after sign-in; anything else (another site,
/// a scheme, `//host`, backslashes) falls back to the account page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2000
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/account")), "/account");
        assert_eq!(safe_next(Some("/consent?x=1")), "/consent?x=1");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "account",
            "/a b",
            "/a\n",
        ] {
            assert_eq!(safe_next(Some(bad)), "/account", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/account");
    }
}
