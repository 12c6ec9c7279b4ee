//! The authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636,
//! RFC 9207) and the flow behind it.
//!
//! A request is checked once, in the order the specs set: the client and the
//! redirect URI first (a failure there is shown on our own page, never
//! redirected), then everything else (a failure goes to the client with
//! `state` and `iss`). A valid request becomes a *flow* in the store, named
//! by a random id; the browser then moves between sign-in, consent and
//! [`Core::authorization_step`] until the flow ends in a code or an error,
//! both sent to the client's redirect URI.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::{Host, Url};

use super::{OAuthError, SCOPE_OFFLINE_ACCESS, SCOPE_OPENID, SUPPORTED_SCOPES, param, single_params};
use crate::Core;
use crate::clients::{Client, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, find_client};
use crate::error::CoreError;
use crate::sessions::Session;
use crate::store::hashed_key;
use crate::tokens::{random_id, random_token};

/// How long a started flow waits for the user (sign-in, sign-up, consent).
pub const FLOW_TTL: Duration = Duration::from_secs(30 * 60);
const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const MAX_HINT: usize = 254;

/// A checked authorization request, kept while the user signs in and
/// consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub client_id: String,
    pub redirect_uri: String,
    /// Granted-able scopes, in the order asked, unknown ones left out.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 challenge.
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint`.
    pub hint_subject: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The user who allowed this request on the consent page.
    pub consented_by: Option<String>,
    /// The weakest `acr` the app accepts (`mfa` or `phr`), from
    /// `acr_values`; none when it named only `1fa` or nothing we know.
    #[serde(default)]
    pub acr: Option<String>,
}

impl Flow {
    fn prompts(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }
}

/// Why an authorization request cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client or its redirect URI cannot be trusted: say so on our own
    /// page (400), never redirect.
    Page(String),
    /// Sent to the client: the redirect URL carrying the error.
    Redirect(String),
}

/// What the browser does next in a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The flow is unknown, used or expired.
    Expired,
    /// Sign in first; `again`: even though a session exists (prompt=login,
    /// max_age, select_account, another account hinted).
    Login { again: bool, login_hint: Option<String>, select_account: bool },
    /// Ask the user on the consent page.
    Consent,
    /// The session must show a second factor first (`phr`: a security key
    /// or passkey).
    SecondFactor { phr: bool },
    /// Send the browser to the client: a code or an error.
    Redirect(String),
}

/// What an authorization code stands for; kept in the store under the
/// code's SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub sid: String,
    /// Every token issued from this code carries it; a replayed code
    /// revokes the lot.
    pub grant_id: String,
    /// When the code was issued (revocations after it refuse it).
    #[serde(default)]
    pub issued_at: Option<DateTime<Utc>>,
}

/// The weakest level `acr_values` accepts, of those we offer (OIDC Core
/// §3.1.2.1: values in order of preference, any of them acceptable).
fn wanted_acr(acr_values: Option<&str>) -> Option<String> {
    let known: Vec<&str> =
        acr_values.unwrap_or_default().split(' ').filter(|v| matches!(*v, "1fa" | "mfa" | "phr")).collect();
    if known.is_empty() || known.contains(&"1fa") {
        return None;
    }
    Some(if known.contains(&"mfa") { "mfa" } else { "phr" }.to_owned())
}

pub(crate) fn flow_key(flow_id: &str) -> String {
    hashed_key("authz-flow", flow_id)
}

pub(crate) fn code_key(code: &str) -> String {
    hashed_key("code", code)
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `given` is one of the client's redirect URIs: exactly, or for an
/// http loopback URI with any port (RFC 8252 §7.3; the rest must match).
pub fn redirect_uri_registered(client: &Client, given: &str) -> bool {
    if client.redirect_uris.iter().any(|r| r == given) {
        return true;
    }
    let Ok(g) = Url::parse(given) else { return false };
    if g.scheme() != "http" || !is_loopback_host(&g) || given.contains('#') {
        return false;
    }
    client.redirect_uris.iter().filter_map(|r| Url::parse(r).ok()).any(|mut r| {
        if r.scheme() != "http" || !is_loopback_host(&r) || r.host() != g.host() {
            return false;
        }
        let mut g = g.clone();
        // Compare everything but the port.
        if r.set_port(None).is_err() || g.set_port(None).is_err() {
            return false;
        }
        r == g && r.path() == g.path() && r.query() == g.query()
    })
}

/// The client's redirect URI with `pairs` added to its query.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        // Registered URIs were parsed at registration; this cannot happen.
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The error redirect for a request: `error`, `error_description`, `state`
/// when the client sent one, and `iss` (RFC 9207).
pub fn error_redirect(issuer: &str, redirect_uri: &str, state: Option<&str>, e: &OAuthError) -> String {
    let mut pairs = vec![("error", e.error), ("error_description", e.description.as_str())];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", issuer));
    redirect_with(redirect_uri, &pairs)
}

fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn printable(v: &str) -> bool {
    !v.chars().any(char::is_control)
}

impl Core {
    /// Checks an authorization request (GET query or POST form, as pairs)
    /// and starts its flow; returns the flow id.
    pub async fn start_authorization(
        &self,
        pairs: Vec<(String, String)>,
        ip: Option<&str>,
    ) -> Result<Result<String, Refusal>, CoreError> {
        // Which parameters came more than once; the client and redirect URI
        // must be unambiguous before anything can be redirected.
        let repeated = single_params(pairs.clone()).err();
        let first =
            |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        if let Some(name) = repeated.as_deref().filter(|n| *n == "client_id" || *n == "redirect_uri") {
            return Ok(Err(Refusal::Page(format!("The request gives {name} more than once."))));
        }
        let Some(client_id) = first("client_id") else {
            return Ok(Err(Refusal::Page(
                "The request does not say which app is asking (client_id is missing).".into(),
            )));
        };
        let client = if client_id.len() <= 64 { find_client(self, client_id).await? } else { None };
        let Some(client) = client else {
            return Ok(Err(Refusal::Page("The app that sent you here is not registered with this provider.".into())));
        };
        let Some(redirect_uri) = first("redirect_uri") else {
            return Ok(Err(Refusal::Page(
                "The request does not say where to return (redirect_uri is missing).".into(),
            )));
        };
        if !redirect_uri_registered(&client, redirect_uri) {
            return Ok(Err(Refusal::Page(
                "The app asked to return to an address it has not registered, so we stopped here.".into(),
            )));
        }
        let state = first("state").filter(|s| s.len() <= MAX_STATE);
        let refuse = |e: OAuthError| Ok(Err(Refusal::Redirect(error_redirect(self.issuer(), redirect_uri, state, &e))));
        if let Some(name) = repeated {
            return refuse(OAuthError::invalid_request(format!("{name} is given more than once")));
        }
        let params = single_params(pairs.clone()).unwrap_or_default();
        match self.check_request(&client, redirect_uri, &params).await? {
            Ok(flow) => {
                // Each flow is kept a while: a flood from one address waits.
                let limit = self.settings.limits.authorization_requests_per_address_per_minute;
                self.address_attempt("authorize", ip, limit, std::time::Duration::from_secs(60)).await?;
                let id = random_token()?;
                let json = serde_json::to_vec(&flow).map_err(|e| CoreError::Internal(e.to_string()))?;
                self.store.put(&flow_key(&id), &json, FLOW_TTL).await?;
                Ok(Ok(id))
            }
            Err(e) => refuse(e),
        }
    }

    /// Everything after the client and redirect URI, in the order of the
    /// specs; the first problem is the answer.
    async fn check_request(
        &self,
        client: &Client,
        redirect_uri: &str,
        params: &Map<String, Value>,
    ) -> Result<Result<Flow, OAuthError>, CoreError> {
        let p = |name: &str| param(params, name);
        for (name, error) in [
            ("request", "request_not_supported"),
            ("request_uri", "request_uri_not_supported"),
            ("registration", "registration_not_supported"),
        ] {
            if p(name).is_some() {
                return Ok(Err(OAuthError::new(error, format!("the {name} parameter is not supported"))));
            }
        }
        match p("response_type") {
            None => return Ok(Err(OAuthError::invalid_request("response_type is missing"))),
            Some("code") => {}
            Some(_) => {
                return Ok(Err(OAuthError::new("unsupported_response_type", "only response_type=code is supported")));
            }
        }
        if !client.grant_types.iter().any(|g| g == GRANT_AUTHORIZATION_CODE) {
            return Ok(Err(OAuthError::new(
                "unauthorized_client",
                "this client may not use the authorization_code grant",
            )));
        }
        if p("response_mode").is_some_and(|m| m != "query") {
            return Ok(Err(OAuthError::invalid_request("only response_mode=query is supported")));
        }
        let asked: Vec<&str> = p("scope").unwrap_or_default().split(' ').filter(|s| !s.is_empty()).collect();
        if !asked.contains(&SCOPE_OPENID) {
            return Ok(Err(OAuthError::new("invalid_scope", "the scope must include openid")));
        }
        let mut scopes: Vec<String> = Vec::new();
        for s in &asked {
            if SUPPORTED_SCOPES.contains(s) && !scopes.iter().any(|x| x == s) {
                scopes.push((*s).to_owned());
            }
        }
        // The admin API's scope: admin-flagged clients only; its tokens are
        // short-lived, never refreshed, and need a second factor.
        if asked.contains(&super::SCOPE_ADMIN) {
            if !client.admin {
                return Ok(Err(OAuthError::new("invalid_scope", "only admin clients may ask for latchkey:admin")));
            }
            scopes.retain(|s| s != SCOPE_OFFLINE_ACCESS);
            scopes.push(super::SCOPE_ADMIN.to_owned());
        }

        let challenge = p("code_challenge");
        match (challenge, p("code_challenge_method")) {
            (Some(c), Some("S256")) if is_pkce_value(c) => {}
            (Some(_), Some("S256")) => {
                return Ok(Err(OAuthError::invalid_request("code_challenge must be 43 to 128 unreserved characters")));
            }
            (Some(_), None | Some("plain")) => {
                return Ok(Err(OAuthError::invalid_request("code_challenge_method must be S256 (plain is refused)")));
            }
            (_, Some(m)) if m != "S256" => {
                return Ok(Err(OAuthError::invalid_request("code_challenge_method must be S256")));
            }
            (None, Some(_)) => return Ok(Err(OAuthError::invalid_request("code_challenge is missing"))),
            (None, None) if client.public => {
                return Ok(Err(OAuthError::invalid_request("this client must use PKCE with S256 (code_challenge)")));
            }
            _ => {}
        }

        let prompt: Vec<String> =
            p("prompt").unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if prompt.iter().any(|x| x == "none") && prompt.len() > 1 {
            return Ok(Err(OAuthError::invalid_request("prompt=none cannot be combined with other values")));
        }
        // offline_access (OIDC Core §11) only where a refresh token can be
        // given and the user is asked (prompt=consent) or the client is ours.
        let may_go_offline = client.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN)
            && (client.first_party || prompt.iter().any(|x| x == "consent"));
        if !may_go_offline {
            scopes.retain(|s| s != SCOPE_OFFLINE_ACCESS);
        }
        let max_age = match p("max_age") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => return Ok(Err(OAuthError::invalid_request("max_age must be a whole number of seconds"))),
            },
        };
        let nonce = p("nonce");
        if nonce.is_some_and(|n| n.len() > MAX_NONCE || !printable(n)) {
            return Ok(Err(OAuthError::invalid_request(format!("nonce must be at most {MAX_NONCE} characters"))));
        }
        if p("state").is_some_and(|s| s.len() > MAX_STATE) {
            return Ok(Err(OAuthError::invalid_request(format!("state must be at most {MAX_STATE} characters"))));
        }
        let login_hint = p("login_hint").filter(|h| h.len() <= MAX_HINT && printable(h)).map(str::to_owned);
        let hint_subject = match p("id_token_hint") {
            None => None,
            Some(hint) => match self.id_token_hint_subject(hint, &client.client_id).await? {
                Some(sub) => Some(sub),
                None => {
                    return Ok(Err(OAuthError::invalid_request(
                        "id_token_hint is not an ID token this provider issued to this client",
                    )));
                }
            },
        };
        Ok(Ok(Flow {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state: p("state").map(str::to_owned),
            nonce: nonce.map(str::to_owned),
            code_challenge: challenge.map(str::to_owned),
            prompt,
            max_age,
            login_hint,
            hint_subject,
            created_at: self.clock.now(),
            consented_by: None,
            acr: wanted_acr(p("acr_values")),
        }))
    }

    /// The subject of an ID token we issued to `client_id` (expired ones
    /// too, as OIDC Core §3.1.2.1 allows).
    async fn id_token_hint_subject(&self, token: &str, client_id: &str) -> Result<Option<String>, CoreError> {
        let Some(v) = self.verify_jws(token).await? else { return Ok(None) };
        let is_id_token = v.typ().is_none_or(|t| t.eq_ignore_ascii_case("JWT"));
        if !is_id_token || v.claim_str("iss") != Some(self.issuer()) || !v.audience_has(client_id) {
            return Ok(None);
        }
        Ok(v.claim_str("sub").map(str::to_owned))
    }

    /// The flow a browser carries, if it is still waiting.
    pub async fn authorization_flow(&self, flow_id: &str) -> Result<Option<(Flow, Client)>, CoreError> {
        if flow_id.len() != 43 {
            return Ok(None);
        }
        let Some(raw) = self.store.get(&flow_key(flow_id)).await? else { return Ok(None) };
        let Ok(flow) = serde_json::from_slice::<Flow>(&raw) else { return Ok(None) };
        Ok(find_client(self, &flow.client_id).await?.map(|c| (flow, c)))
    }

    async fn save_flow(&self, flow_id: &str, flow: &Flow) -> Result<(), CoreError> {
        let left = (flow.created_at + chrono::Duration::from_std(FLOW_TTL).unwrap_or_default() - self.clock.now())
            .to_std()
            .unwrap_or_default();
        if left.is_zero() {
            return Ok(());
        }
        let json = serde_json::to_vec(flow).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(self.store.put(&flow_key(flow_id), &json, left).await?)
    }

    /// Where the flow goes next for the browser's session (already checked
    /// to belong to an enabled user, or `None`).
    pub async fn authorization_step(&self, flow_id: &str, session: Option<&Session>) -> Result<Step, CoreError> {
        let Some((flow, client)) = self.authorization_flow(flow_id).await? else { return Ok(Step::Expired) };
        let issuer = self.issuer().to_owned();
        let to_client =
            |e: OAuthError| Step::Redirect(error_redirect(&issuer, &flow.redirect_uri, flow.state.as_deref(), &e));
        let passive = flow.prompts("none");
        let Some(session) = session else {
            if passive {
                self.store.delete(&flow_key(flow_id)).await?;
                return Ok(to_client(OAuthError::new("login_required", "the user is not signed in")));
            }
            return Ok(Step::Login { again: false, login_hint: flow.login_hint.clone(), select_account: false });
        };
        let r = &session.record;
        // A sign-in during this flow satisfies every freshness demand.
        let fresh = r.auth_time >= flow.created_at;
        let too_old = flow
            .max_age
            .is_some_and(|m| (self.clock.now() - r.auth_time).num_seconds() > i64::try_from(m).unwrap_or(i64::MAX));
        let other_user = flow.hint_subject.as_ref().is_some_and(|s| *s != r.user_id);
        let must_login = !fresh && (flow.prompts("login") || flow.prompts("select_account") || too_old || other_user);
        if must_login {
            if passive {
                self.store.delete(&flow_key(flow_id)).await?;
                return Ok(to_client(OAuthError::new("login_required", "the user must sign in again")));
            }
            return Ok(Step::Login {
                again: true,
                login_hint: flow.login_hint.clone(),
                select_account: flow.prompts("select_account"),
            });
        }
        // The level the app, its registration or the policy asks for.
        let mut wanted = flow.acr.clone().unwrap_or_else(|| "1fa".to_owned());
        let admin_scope = flow.scopes.iter().any(|s| s == super::SCOPE_ADMIN);
        if wanted == "1fa" && (client.require_mfa || admin_scope || self.mfa_required_for(&r.user_id).await?) {
            wanted = "mfa".to_owned();
        }
        if !crate::mfa::acr_satisfies(crate::mfa::acr_for(&r.amr), &wanted) {
            if passive {
                self.store.delete(&flow_key(flow_id)).await?;
                return Ok(to_client(OAuthError::new("interaction_required", "the user must show a second factor")));
            }
            return Ok(Step::SecondFactor { phr: wanted == "phr" });
        }
        let consented_here = flow.consented_by.as_deref() == Some(r.user_id.as_str());
        // prompt=consent asks even a first-party client's user; otherwise
        // first-party clients need none, and third parties need a remembered
        // consent covering the scopes.
        let needs_consent = !consented_here
            && (flow.prompts("consent")
                || (!client.first_party && !self.consent_covers(&r.user_id, &client.client_id, &flow.scopes).await?));
        if needs_consent {
            if passive {
                self.store.delete(&flow_key(flow_id)).await?;
                return Ok(to_client(OAuthError::new("consent_required", "the user has not allowed this app")));
            }
            return Ok(Step::Consent);
        }
        // One flow, one code: whoever takes the flow issues it.
        if self.store.take(&flow_key(flow_id)).await?.is_none() {
            return Ok(Step::Expired);
        }
        let code = random_token()?;
        let grant = CodeGrant {
            client_id: client.client_id.clone(),
            redirect_uri: flow.redirect_uri.clone(),
            user_id: r.user_id.clone(),
            scopes: flow.scopes.clone(),
            nonce: flow.nonce.clone(),
            code_challenge: flow.code_challenge.clone(),
            auth_time: r.auth_time,
            amr: r.amr.clone(),
            sid: crate::auth::session_sid(session),
            grant_id: random_id()?,
            issued_at: Some(self.clock.now()),
        };
        let json = serde_json::to_vec(&grant).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store.put(&code_key(&code), &json, self.settings.lifetimes.authorization_code).await?;
        // Told when this session ends, if it registered for back-channel logout.
        if client.backchannel_logout_uri.is_some() {
            self.remember_session_client(&grant.sid, &client.client_id).await?;
        }
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = flow.state.as_deref() {
            pairs.push(("state", s));
        }
        pairs.push(("iss", self.issuer()));
        Ok(Step::Redirect(redirect_with(&flow.redirect_uri, &pairs)))
    }

    /// The user's answer on the consent page. Allow: remember it and go on;
    /// deny: the client hears `access_denied`.
    pub async fn answer_consent(
        &self,
        flow_id: &str,
        session: &Session,
        allow: bool,
        ctx: &crate::sessions::RequestContext,
    ) -> Result<Step, CoreError> {
        let Some((mut flow, client)) = self.authorization_flow(flow_id).await? else { return Ok(Step::Expired) };
        let user_id = session.record.user_id.clone();
        if !allow {
            if self.store.take(&flow_key(flow_id)).await?.is_none() {
                return Ok(Step::Expired);
            }
            self.record_consent_answer(&user_id, &client, &flow.scopes, false, ctx).await;
            let e = OAuthError::new("access_denied", "the user did not allow the request");
            return Ok(Step::Redirect(error_redirect(self.issuer(), &flow.redirect_uri, flow.state.as_deref(), &e)));
        }
        self.grant_consent(&user_id, &client, &flow.scopes, ctx).await?;
        flow.consented_by = Some(user_id);
        self.save_flow(flow_id, &flow).await?;
        self.authorization_step(flow_id, Some(session)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        let now = Utc::now();
        Client {
            client_id: "c".into(),
            name: "App".into(),
            public: false,
            first_party: false,
            redirect_uris: uris.iter().map(|s| (*s).to_owned()).collect(),
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            grant_types: vec!["authorization_code".into()],
            signing_alg: "RS256".into(),
            require_mfa: false,
            admin: false,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn redirect_uris_match_exactly_or_by_loopback_port() {
        let c = client(&["https://app.example/cb", "http://127.0.0.1/cb", "http://localhost:3000/cb?x=1"]);
        assert!(redirect_uri_registered(&c, "https://app.example/cb"));
        assert!(redirect_uri_registered(&c, "http://127.0.0.1:53121/cb"));
        assert!(redirect_uri_registered(&c, "http://localhost:4000/cb?x=1"));
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example.evil/cb",
            "https://app.example:444/cb",
            "http://app.example/cb",
            "http://127.0.0.1:5000/cb2",
            "http://127.0.0.2/cb",
            "http://localhost:4000/cb",
            "http://localhost:4000/cb?x=1#f",
            "http://[::1]/cb",
            "not a url",
        ] {
            assert!(!redirect_uri_registered(&c, bad), "{bad}");
        }
    }

    #[test]
    fn errors_carry_state_and_issuer() {
        let url = error_redirect(
            "https://id.example",
            "https://app.example/cb?keep=1",
            Some("s 1"),
            &OAuthError::invalid_request("x is missing"),
        );
        let u = Url::parse(&url).expect("url");
        let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(
            q,
            vec![
                ("keep".into(), "1".into()),
                ("error".into(), "invalid_request".into()),
                ("error_description".into(), "x is missing".into()),
                ("state".into(), "s 1".into()),
                ("iss".into(), "https://id.example".into()),
            ]
        );
    }

    #[test]
    fn pkce_values_are_checked() {
        assert!(is_pkce_value(&"a".repeat(43)));
        assert!(is_pkce_value(&"A-._~9".repeat(20)));
        assert!(!is_pkce_value(&"a".repeat(42)));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
    }
}
