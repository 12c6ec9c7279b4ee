//! `[providers]` (SPEC §3): upstream sign-in. `google` and any number of
//! `oidc.NAME` are OpenID providers (discovery is read from the issuer);
//! `github` is GitHub's OAuth app flow and REST API (URLs overridable, so a
//! GitHub Enterprise host or a test fake can stand in).

use std::collections::BTreeMap;

use serde::Deserialize;
use url::{Host, Url};

use super::{ConfigError, secret_or_file, string_or_list};

pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawProviders {
    google: Option<RawUpstreamProvider>,
    github: Option<RawGitHub>,
    oidc: Option<BTreeMap<String, RawUpstreamProvider>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawUpstreamProvider {
    display_name: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<String>,
    #[serde(deserialize_with = "string_or_list")]
    scopes: Option<Vec<String>>,
    trust_email: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawGitHub {
    display_name: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    api_url: Option<String>,
    trust_email: Option<bool>,
}

pub const GITHUB_AUTHORIZE_URL: &str = "https://github.com/login/oauth/authorize";
pub const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
pub const GITHUB_API_URL: &str = "https://api.github.com";

/// How a provider is spoken to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// OpenID Connect with discovery at `issuer`.
    Oidc,
    /// GitHub's OAuth flow; the user from its REST API.
    GitHub { authorize_url: String, token_url: String, api_url: String },
}

/// When an upstream's email may link to an existing account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustEmail {
    Always,
    Never,
    /// Google's rule (SPEC §3): only for the real issuer, and only for
    /// @gmail.com addresses or tokens carrying `hd` (a managed domain).
    Google,
}

/// One configured OpenID provider.
#[derive(Debug, Clone)]
pub struct UpstreamProvider {
    /// `google`, `github` or the NAME of `oidc.NAME`: the path segment of
    /// its URLs.
    pub key: String,
    pub kind: Kind,
    pub display_name: String,
    /// The issuer identities are keyed by (for GitHub: its API URL).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub trust_email: TrustEmail,
}

fn check_issuer(key: &str, issuer: &str, allow_loopback_http: bool) -> Result<String, ConfigError> {
    let url = Url::parse(issuer).map_err(|_| ConfigError::new(key, format!("{issuer:?} is not a URL")))?;
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(ConfigError::new(key, "has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback && allow_loopback_http => {}
        "http" if loopback => {
            return Err(ConfigError::new(key, "http is allowed only on loopback with outbound.allow_loopback = true"));
        }
        _ => return Err(ConfigError::new(key, "must use https")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(key, "must not have a query, fragment or credentials"));
    }
    // Kept exactly as given: the discovery document must name the same
    // issuer, character for character (OpenID Connect Discovery §4.3).
    Ok(issuer.to_owned())
}

fn one(
    key: &str,
    prefix: &str,
    raw: RawUpstreamProvider,
    default_issuer: Option<&str>,
    default_name: &str,
    allow_loopback_http: bool,
) -> Result<UpstreamProvider, ConfigError> {
    let issuer = match raw.issuer.or_else(|| default_issuer.map(str::to_owned)) {
        Some(i) => check_issuer(&format!("{prefix}.issuer"), &i, allow_loopback_http)?,
        None => return Err(ConfigError::new(format!("{prefix}.issuer"), "is required")),
    };
    let client_id = raw
        .client_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ConfigError::new(format!("{prefix}.client_id"), "is required"))?;
    let client_secret = secret_or_file(&format!("{prefix}.client_secret"), raw.client_secret, raw.client_secret_file)?
        .ok_or_else(|| ConfigError::new(format!("{prefix}.client_secret"), "is required"))?;
    let display_name = raw.display_name.unwrap_or_else(|| default_name.to_owned()).trim().to_owned();
    if display_name.is_empty() || display_name.chars().count() > 60 || display_name.chars().any(char::is_control) {
        return Err(ConfigError::new(format!("{prefix}.display_name"), "1 to 60 characters, no control characters"));
    }
    let mut scopes = raw.scopes.unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let trust_email = match raw.trust_email {
        Some(true) => TrustEmail::Always,
        Some(false) => TrustEmail::Never,
        None if key == "google" && issuer == GOOGLE_ISSUER => TrustEmail::Google,
        None => TrustEmail::Never,
    };
    Ok(UpstreamProvider {
        key: key.to_owned(),
        kind: Kind::Oidc,
        display_name,
        issuer,
        client_id,
        client_secret,
        scopes,
        trust_email,
    })
}

pub(super) fn validate(raw: RawProviders, allow_loopback_http: bool) -> Result<Vec<UpstreamProvider>, ConfigError> {
    let mut out = Vec::new();
    if let Some(g) = raw.google {
        out.push(one("google", "providers.google", g, Some(GOOGLE_ISSUER), "Google", allow_loopback_http)?);
    }
    if let Some(gh) = raw.github {
        out.push(github(gh, allow_loopback_http)?);
    }
    for (name, p) in raw.oidc.unwrap_or_default() {
        let prefix = format!("providers.oidc.{name}");
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && name != "google"
            && name != "github";
        if !valid {
            return Err(ConfigError::new(
                prefix,
                "the name must be 1 to 32 lower-case letters, digits or '-', and not google or github",
            ));
        }
        let default_name = name.clone();
        out.push(one(&name, &prefix, p, None, &default_name, allow_loopback_http)?);
    }
    Ok(out)
}

fn github(raw: RawGitHub, allow_loopback_http: bool) -> Result<UpstreamProvider, ConfigError> {
    let url = |key: &str, v: Option<String>, default: &str| {
        check_issuer(&format!("providers.github.{key}"), &v.unwrap_or_else(|| default.to_owned()), allow_loopback_http)
    };
    let authorize_url = url("authorize_url", raw.authorize_url, GITHUB_AUTHORIZE_URL)?;
    let token_url = url("token_url", raw.token_url, GITHUB_TOKEN_URL)?;
    let api_url = url("api_url", raw.api_url, GITHUB_API_URL)?;
    let client_id = raw
        .client_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ConfigError::new("providers.github.client_id", "is required"))?;
    let client_secret = secret_or_file("providers.github.client_secret", raw.client_secret, raw.client_secret_file)?
        .ok_or_else(|| ConfigError::new("providers.github.client_secret", "is required"))?;
    let display_name = raw.display_name.unwrap_or_else(|| "GitHub".to_owned()).trim().to_owned();
    if display_name.is_empty() || display_name.chars().count() > 60 || display_name.chars().any(char::is_control) {
        return Err(ConfigError::new("providers.github.display_name", "1 to 60 characters, no control characters"));
    }
    Ok(UpstreamProvider {
        key: "github".into(),
        kind: Kind::GitHub { authorize_url, token_url, api_url: api_url.clone() },
        display_name,
        issuer: api_url,
        client_id,
        client_secret,
        scopes: vec!["read:user".into(), "user:email".into()],
        // GitHub's verified primary address is trusted unless turned off.
        trust_email: if raw.trust_email == Some(false) { TrustEmail::Never } else { TrustEmail::Always },
    })
}
