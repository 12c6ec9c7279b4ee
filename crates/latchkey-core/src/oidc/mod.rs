//! The OpenID Connect provider: discovery, the authorization endpoint and
//! its flow (sign-in, consent, code), the token endpoint, userinfo, and the
//! JWTs they hand out. Errors that the specs send to clients are
//! [`OAuthError`]s; the web layer turns them into RFC 6749 JSON or a
//! redirect, and nothing else.

pub mod authorize;
pub mod backchannel;
pub mod consent;
pub mod discovery;
pub mod introspect;
pub mod jwt;
pub mod logout;
pub mod refresh;
pub mod token;
pub mod userinfo;

use serde_json::{Map, Value, json};

use crate::Core;
use crate::accounts::User;
use crate::error::CoreError;

/// Where the endpoints live (discovery names them; relying apps read it).
pub const AUTHORIZE_PATH: &str = "/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const INTROSPECTION_PATH: &str = "/oauth/introspect";
pub const REVOCATION_PATH: &str = "/oauth/revoke";
pub const USERINFO_PATH: &str = "/userinfo";
/// RP-initiated logout lands on the sign-out page (SPEC §4).
pub const END_SESSION_PATH: &str = "/logout";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

pub const SCOPE_OPENID: &str = "openid";
pub const SCOPE_PROFILE: &str = "profile";
pub const SCOPE_EMAIL: &str = "email";
pub const SCOPE_OFFLINE_ACCESS: &str = "offline_access";
pub const SCOPE_GROUPS: &str = "groups";
/// Where the admin API lives; also the audience of its access tokens.
pub const ADMIN_API_PATH: &str = "/admin/api/v1";
/// The admin API's scope: only admin-flagged clients may ask for it.
pub const SCOPE_ADMIN: &str = "latchkey:admin";
/// The scopes this build grants; others in a request are left out of the
/// grant (RFC 6749 §3.3), and the token response says what was granted.
pub const SUPPORTED_SCOPES: &[&str] = &[SCOPE_OPENID, SCOPE_PROFILE, SCOPE_EMAIL, SCOPE_OFFLINE_ACCESS, SCOPE_GROUPS];
/// The claims a token or userinfo may carry.
pub const SUPPORTED_CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "azp",
    "at_hash",
    "name",
    "updated_at",
    "email",
    "email_verified",
    "groups",
];
/// Authentication context classes (SPEC §5) this build can issue.
pub const ACR_VALUES: &[&str] = &["1fa", "mfa", "phr"];

/// An error the specs send back to the client: `error` is the registered
/// code, `description` a sentence for its developers (never internals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError { error, description: description.into() }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new("invalid_client", description)
    }
}

/// Why a protocol request failed: the client's mistake (answered in the
/// protocol's form), or ours (an outage, answered as such).
#[derive(Debug)]
pub enum OAuthFailure {
    Protocol(OAuthError),
    Core(CoreError),
}

impl From<CoreError> for OAuthFailure {
    fn from(e: CoreError) -> Self {
        OAuthFailure::Core(e)
    }
}

impl From<OAuthError> for OAuthFailure {
    fn from(e: OAuthError) -> Self {
        OAuthFailure::Protocol(e)
    }
}

impl From<crate::store::StoreError> for OAuthFailure {
    fn from(e: crate::store::StoreError) -> Self {
        OAuthFailure::Core(e.into())
    }
}

impl Core {
    /// The issuer: `server.public_url`, never a Host header.
    pub fn issuer(&self) -> &str {
        &self.settings.server.public_url
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// The `aud` of access tokens for the admin API (`latchkey:admin`).
    pub fn admin_api_audience(&self) -> String {
        self.endpoint(ADMIN_API_PATH)
    }
}

/// Request parameters as sent, each name once: RFC 6749 §3.1 forbids
/// repeating one. Returns the repeated name when there is one.
pub fn single_params(pairs: Vec<(String, String)>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, v) in pairs {
        if out.contains_key(&k) {
            return Err(k);
        }
        out.insert(k, Value::String(v));
    }
    Ok(out)
}

/// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
pub fn param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str).filter(|v| !v.is_empty())
}

/// The user's claims that `scopes` release (OIDC Core §5.4).
pub fn user_claims(user: &User, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    if scopes.iter().any(|s| s == SCOPE_PROFILE) {
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
        claims.insert("updated_at".into(), json!(user.updated_at.timestamp()));
    }
    if scopes.iter().any(|s| s == SCOPE_EMAIL) {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    claims
}

pub use crate::mfa::acr_for;

/// Human words for a scope, as the consent page shows them.
pub fn describe_scope(scope: &str) -> Option<&'static str> {
    Some(match scope {
        SCOPE_OPENID => "Know who you are when you sign in",
        SCOPE_PROFILE => "See your name",
        SCOPE_EMAIL => "See your email address and whether it is confirmed",
        SCOPE_OFFLINE_ACCESS => "Stay connected to your account when you are not using it",
        SCOPE_GROUPS => "See which groups you belong to",
        SCOPE_ADMIN => "Administer this sign-in service with your admin rights",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_named() {
        let ok = single_params(vec![("a".into(), "1".into()), ("b".into(), "".into())]).expect("single");
        assert_eq!(param(&ok, "a"), Some("1"));
        assert_eq!(param(&ok, "b"), None);
        assert_eq!(param(&ok, "c"), None);
        assert_eq!(single_params(vec![("a".into(), "1".into()), ("a".into(), "2".into())]), Err("a".to_owned()));
    }
}
