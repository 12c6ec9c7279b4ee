//! Sign-in with upstream OpenID providers (Google, any issuer with
//! discovery), through the openidconnect crate: discovery, PKCE (S256),
//! `state` bound to a cookie of the browser that started, `nonce`, ID-token
//! validation. Every call goes through the guarded outbound client.
//!
//! Identities are keyed by issuer + subject, never by email (SPEC §5). A new
//! identity links to an existing account by email only when the provider's
//! `trust_email` allows it and the provider says the address is verified;
//! if that account's address was never verified, what someone else set on
//! it is dropped first. Otherwise an address already taken is not linked:
//! the user signs in another way and links the provider from /account.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_db::identities::{self as q, IdentityRow};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::accounts::{NewUser, User, normalize_email};
use crate::audit::{Actor, Event};
use crate::auth::{AfterFirstFactor, event_ctx};
use crate::error::CoreError;
use crate::sessions::RequestContext;
use crate::settings::providers::{Kind, TrustEmail, UpstreamProvider};
use crate::store::hashed_key;
use crate::tokens::{hash_secret, random_id, random_token, verify_secret};

const FLOW: &str = "upstream";
/// How long a started upstream sign-in waits (SPEC §5: 10 minutes).
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// How long discovery (and the provider's keys) are trusted.
const METADATA_FRESH: Duration = Duration::from_secs(600);
/// The RFC 8176 value for a sign-in at another provider has none; this one
/// says "federated".
pub const AMR: &str = "fed";

/// Why the upstream sign-in started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Intent {
    Login,
    /// Link the identity to this signed-in user.
    Link {
        user_id: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UpstreamFlow {
    provider: String,
    pkce_verifier: String,
    nonce: String,
    intent: Intent,
    /// SHA-256 of the starting browser's cookie.
    browser: String,
    next: String,
}

/// How an upstream sign-in ended.
#[derive(Debug)]
pub enum Outcome {
    SignedIn {
        signed_in: Box<AfterFirstFactor>,
        next: String,
    },
    Linked {
        provider: String,
    },
    /// The user turned it down at the provider, or the provider said no.
    Refused(String),
    /// The address is an account here, but this provider may not link to it.
    AddressTaken {
        provider: String,
    },
    /// The identity belongs to another account (when linking).
    LinkedElsewhere {
        provider: String,
    },
    Disabled,
    /// The flow is unknown, expired, or was started in another browser.
    Expired,
    /// The provider could not be reached or answered wrongly.
    Failed(String),
}

/// What this instance knows of each provider's discovery document.
#[derive(Default)]
pub struct MetadataCache {
    current: tokio::sync::RwLock<HashMap<String, (Instant, Arc<CoreProviderMetadata>)>>,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetadataCache")
    }
}

/// The verified facts an upstream gave about the user.
#[derive(Debug, Clone)]
struct Claims {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    hosted_domain: Option<String>,
}

fn trusted(p: &UpstreamProvider, c: &Claims) -> bool {
    match p.trust_email {
        TrustEmail::Always => true,
        TrustEmail::Never => false,
        TrustEmail::Google => {
            c.hosted_domain.is_some()
                || c.email.as_deref().is_some_and(|e| e.to_ascii_lowercase().ends_with("@gmail.com"))
        }
    }
}

impl Core {
    pub fn provider(&self, key: &str) -> Option<&UpstreamProvider> {
        self.settings.providers.iter().find(|p| p.key == key)
    }

    fn callback_url(&self, key: &str) -> String {
        format!("{}/login/with/{key}/callback", self.issuer())
    }

    async fn metadata(&self, p: &UpstreamProvider, fresh: bool) -> Result<Arc<CoreProviderMetadata>, String> {
        if !fresh
            && let Some((at, m)) = self.upstream_metadata.current.read().await.get(&p.key)
            && at.elapsed() < METADATA_FRESH
        {
            return Ok(Arc::clone(m));
        }
        let issuer = IssuerUrl::new(p.issuer.clone()).map_err(|e| e.to_string())?;
        let out = self.outbound.clone();
        let http = move |req: openidconnect::HttpRequest| {
            let out = out.clone();
            async move { out.send(req).await }
        };
        let m = Arc::new(CoreProviderMetadata::discover_async(issuer, &http).await.map_err(|e| e.to_string())?);
        self.upstream_metadata.current.write().await.insert(p.key.clone(), (Instant::now(), Arc::clone(&m)));
        Ok(m)
    }

    fn oidc_client(&self, p: &UpstreamProvider, m: &CoreProviderMetadata) -> Result<OidcClient, String> {
        let redirect = RedirectUrl::new(self.callback_url(&p.key)).map_err(|e| e.to_string())?;
        Ok(CoreClient::from_provider_metadata(
            m.clone(),
            ClientId::new(p.client_id.clone()),
            Some(ClientSecret::new(p.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in at the provider; returns where to send the browser.
    /// `browser` is the starting browser's cookie value.
    pub async fn start_upstream(
        &self,
        key: &str,
        intent: Intent,
        next: &str,
        browser: &str,
    ) -> Result<Result<String, String>, CoreError> {
        let Some(p) = self.provider(key) else { return Ok(Err("unknown provider".into())) };
        let state = random_token()?;
        let nonce = random_token()?;
        let (url, verifier) = match &p.kind {
            Kind::GitHub { authorize_url, token_url, .. } => {
                let client = github_client(p, authorize_url, token_url, &self.callback_url(&p.key))
                    .map_err(CoreError::Internal)?;
                let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
                let s = state.clone();
                let mut req = client.authorize_url(move || oauth2::CsrfToken::new(s));
                for scope in &p.scopes {
                    req = req.add_scope(oauth2::Scope::new(scope.clone()));
                }
                let (url, _) = req.set_pkce_challenge(challenge).url();
                (url.to_string(), verifier.secret().clone())
            }
            Kind::Oidc => match self.oidc_authorize_url(p, &state, &nonce).await? {
                Ok(v) => v,
                Err(msg) => return Ok(Err(msg)),
            },
        };
        let flow = UpstreamFlow {
            provider: p.key.clone(),
            pkce_verifier: verifier,
            nonce,
            intent,
            browser: hash_secret(browser),
            next: next.to_owned(),
        };
        let json = serde_json::to_vec(&flow).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store.put(&hashed_key(FLOW, &state), &json, FLOW_TTL).await?;
        Ok(Ok(url))
    }

    /// The authorization URL at an OpenID provider, and the PKCE verifier.
    async fn oidc_authorize_url(
        &self,
        p: &UpstreamProvider,
        state: &str,
        nonce: &str,
    ) -> Result<Result<(String, String), String>, CoreError> {
        let m = match self.metadata(p, false).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(provider = %p.key, error = %e, "upstream discovery failed");
                return Ok(Err(format!("We couldn’t reach {}. Try again in a moment.", p.display_name)));
            }
        };
        let client = match self.oidc_client(p, &m) {
            Ok(c) => c,
            Err(e) => return Err(CoreError::Internal(e)),
        };
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            {
                let s = state.to_owned();
                move || CsrfToken::new(s)
            },
            {
                let n = nonce.to_owned();
                move || Nonce::new(n)
            },
        );
        for s in p.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, _, _) = req.set_pkce_challenge(challenge).url();
        Ok(Ok((url.to_string(), verifier.secret().clone())))
    }

    /// The provider's answer at the callback.
    pub async fn finish_upstream(
        &self,
        key: &str,
        pairs: &[(String, String)],
        browser: Option<&str>,
        signed_in_user: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Outcome, CoreError> {
        let get = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let Some(state) = get("state").filter(|s| s.len() == 43) else { return Ok(Outcome::Expired) };
        let Some(raw) = self.store.take(&hashed_key(FLOW, state)).await? else { return Ok(Outcome::Expired) };
        let flow: UpstreamFlow = serde_json::from_slice(&raw).map_err(|e| CoreError::Internal(e.to_string()))?;
        if flow.provider != key || !browser.is_some_and(|b| verify_secret(b, &flow.browser)) {
            return Ok(Outcome::Expired);
        }
        // Linking continues only for the user still signed in here.
        if let Intent::Link { user_id } = &flow.intent
            && signed_in_user != Some(user_id.as_str())
        {
            return Ok(Outcome::Expired);
        }
        let Some(p) = self.provider(key).cloned() else { return Ok(Outcome::Expired) };
        if let Some(error) = get("error") {
            let what = if error == "access_denied" {
                format!("You didn’t allow {} to sign you in here.", p.display_name)
            } else {
                format!("{} could not sign you in ({}).", p.display_name, error.chars().take(60).collect::<String>())
            };
            return Ok(Outcome::Refused(what));
        }
        let Some(code) = get("code") else { return Ok(Outcome::Failed(format!("{} sent no code.", p.display_name))) };
        let exchanged = match &p.kind {
            Kind::Oidc => self.exchange_upstream(&p, code, &flow).await,
            Kind::GitHub { .. } => self.exchange_github(&p, code, &flow).await,
        };
        let claims = match exchanged {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(provider = %p.key, error = %e, "upstream sign-in failed");
                return Ok(Outcome::Failed(format!(
                    "Signing in with {} didn’t work. Try again in a moment.",
                    p.display_name
                )));
            }
        };
        self.resolve_identity(&p, claims, flow, ctx).await
    }

    async fn exchange_upstream(&self, p: &UpstreamProvider, code: &str, flow: &UpstreamFlow) -> Result<Claims, String> {
        let m = self.metadata(p, false).await?;
        let client = self.oidc_client(p, &m)?;
        let out = self.outbound.clone();
        let http = move |req: openidconnect::HttpRequest| {
            let out = out.clone();
            async move { out.send(req).await }
        };
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| e.to_string())?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let id_token = tokens.id_token().ok_or("no ID token in the answer")?;
        let nonce = Nonce::new(flow.nonce.clone());
        let verify = |client: &OidcClient| {
            let clock = self.clock.clone();
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(vec![
                    openidconnect::core::CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                    openidconnect::core::CoreJwsSigningAlgorithm::RsaSsaPssSha256,
                    openidconnect::core::CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                    openidconnect::core::CoreJwsSigningAlgorithm::EdDsa,
                ])
                .set_time_fn(move || clock.now());
            id_token.claims(&verifier, &nonce).cloned().map_err(|e| format!("ID token: {e}"))
        };
        let claims = match verify(&client) {
            Ok(c) => c,
            // The provider may have published a new key since we read its
            // keys: read them again, once.
            Err(_) => {
                let fresh = self.metadata(p, true).await?;
                verify(&self.oidc_client(p, &fresh)?)?
            }
        };
        // `hd` is not one of openidconnect's claims: read it from the token
        // whose signature was just checked.
        let hosted_domain = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("hd").and_then(|h| h.as_str()).map(str::to_owned));
        Ok(Claims {
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
            hosted_domain,
        })
    }

    /// GitHub: the code for a token, then the user and their verified
    /// primary address from the REST API.
    async fn exchange_github(&self, p: &UpstreamProvider, code: &str, flow: &UpstreamFlow) -> Result<Claims, String> {
        let Kind::GitHub { authorize_url, token_url, api_url } = &p.kind else { return Err("not GitHub".into()) };
        let client = github_client(p, authorize_url, token_url, &self.callback_url(&p.key))?;
        let out = self.outbound.clone();
        let http = move |req: oauth2::HttpRequest| {
            let out = out.clone();
            async move { out.send(req).await }
        };
        let token = client
            .exchange_code(oauth2::AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(oauth2::PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let access = oauth2::TokenResponse::access_token(&token).secret().clone();
        let user = self.github_get(&format!("{api_url}/user"), &access).await?;
        let id = user.get("id").and_then(serde_json::Value::as_u64).ok_or("the user has no numeric id")?;
        let emails = self.github_get(&format!("{api_url}/user/emails"), &access).await?;
        let primary = emails.as_array().into_iter().flatten().find(|e| {
            e.get("primary").and_then(serde_json::Value::as_bool) == Some(true)
                && e.get("verified").and_then(serde_json::Value::as_bool) == Some(true)
        });
        Ok(Claims {
            subject: id.to_string(),
            email: primary.and_then(|e| e.get("email")).and_then(serde_json::Value::as_str).map(str::to_owned),
            email_verified: primary.is_some(),
            name: user.get("name").and_then(serde_json::Value::as_str).map(str::to_owned),
            hosted_domain: None,
        })
    }

    async fn github_get(&self, url: &str, token: &str) -> Result<serde_json::Value, String> {
        let request = openidconnect::http::Request::builder()
            .method("GET")
            .uri(url)
            .header("accept", "application/vnd.github+json")
            .header("authorization", format!("Bearer {token}"))
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let resp = self.outbound.send(request).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status()));
        }
        serde_json::from_slice(resp.body()).map_err(|e| format!("{url}: {e}"))
    }

    async fn resolve_identity(
        &self,
        p: &UpstreamProvider,
        claims: Claims,
        flow: UpstreamFlow,
        ctx: &RequestContext,
    ) -> Result<Outcome, CoreError> {
        let (issuer, subject) = (p.issuer.clone(), claims.subject.clone());
        let existing = self.db.run(move |conn| q::find(conn, &issuer, &subject)).await?;
        let now = self.clock.now_naive();
        if let Intent::Link { user_id } = &flow.intent {
            if let Some(row) = existing {
                if &row.user_id != user_id {
                    return Ok(Outcome::LinkedElsewhere { provider: p.display_name.clone() });
                }
                return Ok(Outcome::Linked { provider: p.display_name.clone() });
            }
            if self.identities(user_id).await?.iter().any(|i| i.provider == p.key) {
                return Ok(Outcome::Refused(format!(
                    "Another {} account is already linked to yours. Unlink it first.",
                    p.display_name
                )));
            }
            self.link_identity(p, user_id, &claims, ctx).await?;
            return Ok(Outcome::Linked { provider: p.display_name.clone() });
        }
        let user = if let Some(row) = existing {
            let (id, email) = (row.id.clone(), claims.email.clone());
            self.db.run(move |conn| q::touch(conn, &id, email.as_deref(), now)).await?;
            let uid = row.user_id.clone();
            match self.db.run(move |conn| latchkey_db::users::find_by_id(conn, &uid)).await? {
                Some(u) if u.disabled => return Ok(Outcome::Disabled),
                Some(u) => User::from(u),
                None => return Ok(Outcome::Expired),
            }
        } else {
            let Some(email) = claims.email.clone() else {
                return Ok(Outcome::Refused(format!(
                    "{} did not share an email address, which an account here needs.",
                    p.display_name
                )));
            };
            let Ok((shown, normalized)) = normalize_email(&email) else {
                return Ok(Outcome::Refused(format!("{} gave an email address we can’t use.", p.display_name)));
            };
            let n = normalized.clone();
            let taken = self.db.run(move |conn| latchkey_db::users::find_by_email(conn, &n)).await?;
            let may_link = trusted(p, &claims) && claims.email_verified;
            let mut created = false;
            let user = match (taken, may_link) {
                (Some(_), true) => match self.prove_address(&shown, &normalized, ctx).await? {
                    Some(u) => u,
                    None => return Ok(Outcome::Disabled),
                },
                (Some(_), false) => return Ok(Outcome::AddressTaken { provider: p.display_name.clone() }),
                (None, _) => {
                    // A first sign-in here is a self sign-up.
                    if crate::disposable::check_self_signup(&self.settings.signup, &normalized).is_err() {
                        return Ok(Outcome::Refused(crate::disposable::REFUSAL.to_owned()));
                    }
                    let new = NewUser {
                        email: shown,
                        name: claims
                            .name
                            .clone()
                            .filter(|n| !n.trim().is_empty())
                            .map(|n| n.chars().take(200).collect()),
                        email_verified: may_link,
                        ..Default::default()
                    };
                    match crate::accounts::create_user_from(self, new, &Actor::Anonymous, Some(ctx)).await {
                        Ok(u) => {
                            created = true;
                            u
                        }
                        Err(CoreError::Conflict(_)) => {
                            return Ok(Outcome::AddressTaken { provider: p.display_name.clone() });
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            if let Err(e) = self.link_identity(p, &user.id, &claims, ctx).await {
                // Never a half-made account: one made here goes again.
                if created {
                    let _ = self.delete_account(&user.id, &Actor::Anonymous, ctx, false).await;
                }
                return match e {
                    // A concurrent sign-in linked it first: start again.
                    CoreError::Conflict(_) => Ok(Outcome::Expired),
                    other => Err(other),
                };
            }
            user
        };
        let signed_in = self.first_factor_complete(user, AMR, ctx).await?;
        let actor = Actor::User(signed_in.user().id.clone());
        self.audit(
            event_ctx(Event::new("login.upstream", &actor), ctx)
                .with_user_id(&signed_in.user().id)
                .detail(serde_json::json!({ "provider": p.key })),
        )
        .await;
        Ok(Outcome::SignedIn { signed_in: Box::new(signed_in), next: flow.next })
    }

    async fn link_identity(
        &self,
        p: &UpstreamProvider,
        user_id: &str,
        claims: &Claims,
        ctx: &RequestContext,
    ) -> Result<(), CoreError> {
        let now = self.clock.now_naive();
        let row = IdentityRow {
            id: random_id()?,
            user_id: user_id.to_owned(),
            provider: p.key.clone(),
            issuer: p.issuer.clone(),
            subject: claims.subject.clone(),
            email: claims.email.clone(),
            created_at: now,
            last_used_at: now,
        };
        self.db.run(move |conn| q::insert(conn, &row)).await.map_err(|e| match e {
            // Linked by a concurrent sign-in with the same identity.
            latchkey_db::DbError::Conflict(_) => CoreError::Conflict("identity already linked".into()),
            other => other.into(),
        })?;
        self.audit(
            event_ctx(Event::new("identity.linked", &Actor::User(user_id.to_owned())), ctx)
                .with_user_id(user_id)
                .detail(serde_json::json!({ "provider": p.key })),
        )
        .await;
        Ok(())
    }

    /// The user's linked identities.
    pub async fn identities(&self, user_id: &str) -> Result<Vec<IdentityRow>, CoreError> {
        let u = user_id.to_owned();
        Ok(self.db.run(move |conn| q::for_user(conn, &u)).await?)
    }

    /// Unlinks one of the user's identities, if another first factor
    /// remains (a password or another identity). `Ok(false)`: not theirs.
    pub async fn unlink_identity(&self, user: &User, id: &str, ctx: &RequestContext) -> Result<bool, CoreError> {
        let mine = self.identities(&user.id).await?;
        let Some(target) = mine.iter().find(|i| i.id == id) else { return Ok(false) };
        if !user.has_password && mine.len() < 2 {
            return Err(CoreError::Conflict(
                "This is your only way to sign in. Set a password or link another account first.".into(),
            ));
        }
        let (u, i) = (user.id.clone(), id.to_owned());
        let removed = self.db.run(move |conn| q::delete(conn, &u, &i)).await?;
        if removed {
            self.audit(
                event_ctx(Event::new("identity.unlinked", &Actor::User(user.id.clone())), ctx)
                    .with_user_id(&user.id)
                    .detail(serde_json::json!({ "provider": target.provider })),
            )
            .await;
        }
        Ok(removed)
    }
}

type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

type GitHubClient = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn github_client(
    p: &UpstreamProvider,
    authorize_url: &str,
    token_url: &str,
    callback: &str,
) -> Result<GitHubClient, String> {
    Ok(oauth2::basic::BasicClient::new(oauth2::ClientId::new(p.client_id.clone()))
        .set_client_secret(oauth2::ClientSecret::new(p.client_secret.clone()))
        .set_auth_uri(oauth2::AuthUrl::new(authorize_url.to_owned()).map_err(|e| e.to_string())?)
        .set_token_uri(oauth2::TokenUrl::new(token_url.to_owned()).map_err(|e| e.to_string())?)
        .set_redirect_uri(oauth2::RedirectUrl::new(callback.to_owned()).map_err(|e| e.to_string())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(trust: TrustEmail) -> UpstreamProvider {
        UpstreamProvider {
            key: "google".into(),
            kind: Kind::Oidc,
            display_name: "Google".into(),
            issuer: "https://accounts.google.com".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            scopes: vec![],
            trust_email: trust,
        }
    }

    fn claims(email: &str, hd: Option<&str>) -> Claims {
        Claims {
            subject: "1".into(),
            email: Some(email.into()),
            email_verified: true,
            name: None,
            hosted_domain: hd.map(str::to_owned),
        }
    }

    #[test]
    fn google_is_trusted_for_gmail_or_a_managed_domain_only() {
        let g = provider(TrustEmail::Google);
        assert!(trusted(&g, &claims("ada@gmail.com", None)));
        assert!(trusted(&g, &claims("ada@Gmail.COM", None)));
        assert!(trusted(&g, &claims("ada@example.com", Some("example.com"))));
        assert!(!trusted(&g, &claims("ada@example.com", None)));
        assert!(!trusted(&provider(TrustEmail::Never), &claims("ada@gmail.com", None)));
        assert!(trusted(&provider(TrustEmail::Always), &claims("ada@example.com", None)));
    }
}
