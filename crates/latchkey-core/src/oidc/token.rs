//! The token endpoint (RFC 6749 §3.2, §4.1.3; OIDC Core §3.1.3; RFC 7636
//! §4.6): client authentication, then the `authorization_code` grant.
//!
//! A code is single use across every instance: the first redemption sets a
//! tombstone in the store (atomically, set-if-absent) holding the code's
//! grant id; any later redemption finds it, fails, and revokes every token
//! issued from the code (RFC 6749 §4.1.2, RFC 9700 §4.5).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{CoreGenderClaim, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, AuthenticationContextClass, AuthenticationMethodReference, ClientId,
    EndUserEmail, EndUserName, IdToken, IdTokenClaims, IssuerUrl, LocalizedClaim, Nonce, StandardClaims,
    SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::authorize::{CodeGrant, code_key};
use super::refresh::NewFamily;
use super::{
    OAuthError, OAuthFailure, SCOPE_EMAIL, SCOPE_OFFLINE_ACCESS, SCOPE_OPENID, SCOPE_PROFILE, acr_for, jwt, param,
    single_params,
};
use crate::Core;
use crate::accounts::User;
use crate::audit::{Actor, Event};
use crate::auth::event_ctx;
use crate::clients::{Client, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN};
use crate::error::CoreError;
use crate::sessions::RequestContext;
use crate::signing::Alg;
use crate::tokens::{constant_time_eq, random_id, sha256};

/// The `sid` claim, which openidconnect's standard claims do not have.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's groups, for clients granted the `groups` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}
impl AdditionalClaims for SessionClaims {}

pub type LatchkeyIdToken = IdToken<
    SessionClaims,
    CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// What a token response is made of.
pub(crate) struct Issue<'a> {
    pub client: &'a Client,
    /// The user's id, or the client's for client_credentials.
    pub subject: &'a str,
    pub user: Option<&'a User>,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: Option<chrono::DateTime<chrono::Utc>>,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub grant_id: &'a str,
    pub refresh_token: Option<String>,
}

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    None,
}

pub(crate) fn tombstone_key(code: &str) -> String {
    crate::store::hashed_key("code-used", code)
}

pub(crate) fn grant_revoked_key(grant_id: &str) -> String {
    format!("grant-revoked:{grant_id}")
}

/// `client_id:client_secret` from an HTTP Basic header, each form-decoded
/// (RFC 6749 §2.3.1).
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let dec = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((dec(id)?, dec(secret)?))
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()))
}

impl Core {
    /// Identifies and authenticates the client of a token request.
    pub async fn authenticate_client(
        &self,
        params: &Map<String, Value>,
        authorization: Option<&str>,
    ) -> Result<(Client, AuthMethod), OAuthFailure> {
        let body_id = param(params, "client_id");
        let body_secret = param(params, "client_secret");
        let (id, secret, method) = match authorization {
            Some(h) => {
                let Some((id, secret)) = parse_basic(h) else {
                    return Err(OAuthError::invalid_client("the Authorization header is not valid HTTP Basic").into());
                };
                if body_secret.is_some() {
                    return Err(OAuthError::invalid_request("use one client authentication method, not two").into());
                }
                if body_id.is_some_and(|b| b != id) {
                    return Err(OAuthError::invalid_request("client_id differs from the authenticated client").into());
                }
                (id, Some(secret).filter(|s| !s.is_empty()), AuthMethod::Basic)
            }
            None => match (body_id, body_secret) {
                (Some(id), Some(s)) => (id.to_owned(), Some(s.to_owned()), AuthMethod::Post),
                (Some(id), None) => (id.to_owned(), None, AuthMethod::None),
                (None, _) => return Err(OAuthError::invalid_client("client authentication is missing").into()),
            },
        };
        let unknown = || OAuthFailure::Protocol(OAuthError::invalid_client("client authentication failed"));
        if id.len() > 64 {
            return Err(unknown());
        }
        let Some((client, hash)) = self.client_with_secret(&id).await? else { return Err(unknown()) };
        let (row_id, presented) = (client.client_id.clone(), secret.clone());
        match (client.public, presented) {
            (true, None) => Ok((client, AuthMethod::None)),
            (true, Some(_)) => Err(OAuthError::invalid_client("a public client has no secret").into()),
            (false, None) => Err(unknown()),
            (false, Some(s)) => {
                // The registry's hash first; a miss is read again from the
                // database, where a secret rotated since already is.
                let cached = hash.is_some_and(|h| crate::tokens::verify_secret(&s, &h));
                if cached || crate::clients::verify_secret(self, &row_id, &s).await? {
                    Ok((client, method))
                } else {
                    Err(unknown())
                }
            }
        }
    }

    /// A token request: the form's pairs and the Authorization header.
    pub async fn token_request(
        &self,
        pairs: Vec<(String, String)>,
        authorization: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Value, OAuthFailure> {
        let params = match single_params(pairs) {
            Ok(p) => p,
            Err(name) => return Err(OAuthError::invalid_request(format!("{name} is given more than once")).into()),
        };
        let (client, _) = self.authenticate_client(&params, authorization).await?;
        let allowed = |g: &str| client.grant_types.iter().any(|x| x == g);
        let grant_type = param(&params, "grant_type");
        match grant_type {
            None => Err(OAuthError::invalid_request("grant_type is missing").into()),
            Some(g @ (GRANT_AUTHORIZATION_CODE | GRANT_REFRESH_TOKEN | GRANT_CLIENT_CREDENTIALS)) if !allowed(g) => {
                Err(OAuthError::new("unauthorized_client", format!("this client may not use the {g} grant")).into())
            }
            Some(GRANT_AUTHORIZATION_CODE) => self.redeem_code(&client, &params, ctx).await,
            Some(GRANT_REFRESH_TOKEN) => self.refresh_grant(&client, &params, ctx).await,
            Some(GRANT_CLIENT_CREDENTIALS) => self.client_credentials_grant(&client, &params).await,
            Some(other) => Err(OAuthError::new("unsupported_grant_type", format!("{other} is not supported")).into()),
        }
    }

    /// The `client_credentials` grant (RFC 6749 §4.4): a token for the
    /// client itself. No scope is defined for clients yet, so any asked for
    /// is refused.
    async fn client_credentials_grant(
        &self,
        client: &Client,
        params: &Map<String, Value>,
    ) -> Result<Value, OAuthFailure> {
        if client.public {
            return Err(OAuthError::new("unauthorized_client", "a public client cannot use client_credentials").into());
        }
        if let Some(scope) = param(params, "scope").and_then(|s| s.split(' ').find(|x| !x.is_empty())) {
            return Err(OAuthError::new("invalid_scope", format!("{scope} is not available to this client")).into());
        }
        let grant_id = random_id().map_err(CoreError::from)?;
        Ok(self
            .issue_tokens(Issue {
                client,
                subject: &client.client_id,
                user: None,
                scopes: &[],
                nonce: None,
                auth_time: None,
                amr: &[],
                sid: None,
                grant_id: &grant_id,
                refresh_token: None,
            })
            .await?)
    }

    async fn redeem_code(
        &self,
        client: &Client,
        params: &Map<String, Value>,
        ctx: &RequestContext,
    ) -> Result<Value, OAuthFailure> {
        let Some(code) = param(params, "code") else {
            return Err(OAuthError::invalid_request("code is missing").into());
        };
        let bad = || OAuthFailure::Protocol(OAuthError::invalid_grant("the code is invalid, expired or already used"));
        if code.len() != 43 {
            return Err(bad());
        }
        let Some(raw) = self.store.get(&code_key(code)).await? else {
            // Used before? Then whatever it gave is revoked.
            // The tombstone names the code's client: only that client's
            // replay revokes what the code gave.
            if let Some(stone) = self.store.get(&tombstone_key(code)).await?
                && let Some((owner, grant_id)) = String::from_utf8_lossy(&stone).split_once(' ')
                && owner == client.client_id
            {
                self.revoke_replayed(grant_id, &client.client_id, ctx).await?;
            }
            return Err(bad());
        };
        let grant: CodeGrant = serde_json::from_slice(&raw).map_err(|e| CoreError::Internal(e.to_string()))?;
        // Another client's code: refused without spending it.
        if grant.client_id != client.client_id {
            return Err(bad());
        }
        let tombstone_ttl = self.settings.lifetimes.authorization_code + std::time::Duration::from_secs(60);
        let stone = format!("{} {}", grant.client_id, grant.grant_id);
        if !self.store.put_if_absent(&tombstone_key(code), stone.as_bytes(), tombstone_ttl).await? {
            self.revoke_replayed(&grant.grant_id, &client.client_id, ctx).await?;
            return Err(bad());
        }
        self.store.delete(&code_key(code)).await?;

        if param(params, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request").into());
        }
        match (grant.code_challenge.as_deref(), param(params, "code_verifier")) {
            (Some(challenge), Some(verifier)) => {
                let well_formed = (43..=128).contains(&verifier.len())
                    && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
                if !well_formed || !constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes()) {
                    return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge").into());
                }
            }
            (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is missing").into()),
            (None, Some(_)) => {
                return Err(
                    OAuthError::invalid_grant("code_verifier given, but the request had no code_challenge").into()
                );
            }
            (None, None) => {}
        }
        let uid = grant.user_id.clone();
        let user =
            self.db.run(move |conn| latchkey_db::users::find_by_id(conn, &uid)).await.map_err(CoreError::from)?;
        let Some(user) = user.filter(|u| !u.disabled).map(User::from) else {
            return Err(OAuthError::invalid_grant("the user's account is no longer active").into());
        };
        // Revoked since the code was issued (its session ended, the user's
        // tokens were revoked): nothing is issued.
        if self.session_revoked_since(&grant).await? {
            return Err(OAuthError::invalid_grant("the sign-in behind this code has ended").into());
        }
        let refresh_token = if grant.scopes.iter().any(|s| s == SCOPE_OFFLINE_ACCESS)
            && !grant.scopes.iter().any(|s| s == super::SCOPE_ADMIN)
            && client.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN)
        {
            Some(
                self.start_family(NewFamily {
                    id: &grant.grant_id,
                    client_id: &client.client_id,
                    user_id: &user.id,
                    scopes: &grant.scopes,
                    sid: &grant.sid,
                    auth_time: grant.auth_time,
                    amr: &grant.amr,
                })
                .await?,
            )
        } else {
            None
        };
        // A revocation that ran while the family was being written did not
        // see it: look again now that it exists. A concurrent replay of the
        // code leaves this redemption its answer, with every token revoked.
        if refresh_token.is_some() {
            if self.session_revoked_since(&grant).await? {
                self.revoke_family(&grant.grant_id).await?;
                return Err(OAuthError::invalid_grant("the sign-in behind this code has ended").into());
            }
            if self.store.get(&grant_revoked_key(&grant.grant_id)).await?.is_some() {
                self.revoke_family(&grant.grant_id).await?;
            }
        }
        Ok(self
            .issue_tokens(Issue {
                client,
                subject: &user.id,
                user: Some(&user),
                scopes: &grant.scopes,
                nonce: grant.nonce.as_deref(),
                auth_time: Some(grant.auth_time),
                amr: &grant.amr,
                sid: Some(&grant.sid),
                grant_id: &grant.grant_id,
                refresh_token,
            })
            .await?)
    }

    /// Whether the sign-in a code stands for was revoked after the code was
    /// issued: its session (`sid`) ended, or all of the user's tokens were.
    async fn session_revoked_since(&self, grant: &CodeGrant) -> Result<bool, CoreError> {
        use super::refresh::{sid_revoked_key, user_revoked_key};
        if self.store.get(&sid_revoked_key(&grant.sid)).await?.is_some() {
            return Ok(true);
        }
        let issued = grant.issued_at.unwrap_or(grant.auth_time).timestamp();
        let user_revoked = self.store.get(&user_revoked_key(&grant.user_id)).await?;
        Ok(user_revoked
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|at| issued <= at))
    }

    /// A code came back a second time: refuse every token it gave.
    async fn revoke_replayed(&self, grant_id: &str, client_id: &str, ctx: &RequestContext) -> Result<(), CoreError> {
        // Its refresh tokens (if it gave any) and its access tokens.
        self.revoke_family(grant_id).await?;
        let actor = Actor::Anonymous;
        let mut event = event_ctx(Event::new("token.code_replayed", &actor), ctx)
            .detail(json!({ "client_id": client_id, "grant_id": grant_id }));
        event.outcome = "refused";
        self.audit(event).await;
        Ok(())
    }

    /// The access token (RFC 9068), for `openid` the ID token, and the
    /// refresh token when there is one.
    pub(crate) async fn issue_tokens(&self, i: Issue<'_>) -> Result<Value, CoreError> {
        let alg = Alg::parse(&i.client.signing_alg).unwrap_or(Alg::Rs256);
        let key = self.signing_key(alg).await?;
        let now = self.clock.now();
        let at_life = self.settings.lifetimes.access_token;
        let scope = i.scopes.join(" ");
        let mut access_claims = json!({
            "iss": self.issuer(),
            "sub": i.subject,
            "aud": if i.scopes.iter().any(|s| s == super::SCOPE_ADMIN) {
                self.admin_api_audience()
            } else {
                self.issuer().to_owned()
            },
            "client_id": i.client.client_id,
            "iat": now.timestamp(),
            "exp": now.timestamp() + i64::try_from(at_life.as_secs()).unwrap_or(600),
            "jti": random_id()?,
            "grant_id": i.grant_id,
        });
        if !scope.is_empty() {
            access_claims["scope"] = json!(scope);
        }
        if let Some(t) = i.auth_time {
            access_claims["auth_time"] = json!(t.timestamp());
            access_claims["acr"] = json!(acr_for(i.amr));
            access_claims["amr"] = json!(i.amr);
        }
        if let Some(sid) = i.sid {
            access_claims["sid"] = json!(sid);
        }
        let access_token = jwt::sign(&key, jwt::ACCESS_TOKEN_TYP, &access_claims)?;
        let mut body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": at_life.as_secs(),
        });
        if !scope.is_empty() {
            body["scope"] = json!(scope);
        }
        if let (Some(user), true) = (i.user, i.scopes.iter().any(|s| s == SCOPE_OPENID)) {
            let groups = match i.scopes.iter().any(|s| s == super::SCOPE_GROUPS) {
                true => Some(self.groups_of(&user.id).await?.into_iter().map(|g| g.name).collect()),
                false => None,
            };
            let id_token = self.id_token(&i, user, groups, &key, &AccessToken::new(access_token))?;
            body["id_token"] = json!(id_token);
        }
        if let Some(r) = i.refresh_token {
            body["refresh_token"] = json!(r);
        }
        Ok(body)
    }

    fn id_token(
        &self,
        i: &Issue<'_>,
        user: &User,
        groups: Option<Vec<String>>,
        key: &crate::signing::SigningKey,
        access_token: &AccessToken,
    ) -> Result<String, CoreError> {
        let now = self.clock.now();
        let internal = |e: String| CoreError::Internal(format!("ID token: {e}"));
        let issuer = IssuerUrl::new(self.issuer().to_owned()).map_err(|e| internal(e.to_string()))?;
        let mut standard = StandardClaims::new(SubjectIdentifier::new(user.id.clone()));
        if i.scopes.iter().any(|s| s == SCOPE_PROFILE)
            && let Some(name) = &user.name
        {
            standard = standard.set_name(Some(LocalizedClaim::from(EndUserName::new(name.clone()))));
        }
        if i.scopes.iter().any(|s| s == SCOPE_PROFILE) {
            standard = standard.set_updated_at(Some(user.updated_at));
        }
        if i.scopes.iter().any(|s| s == SCOPE_EMAIL) {
            standard = standard
                .set_email(Some(EndUserEmail::new(user.email.clone())))
                .set_email_verified(Some(user.email_verified));
        }
        let exp = now + chrono::Duration::from_std(self.settings.lifetimes.id_token).unwrap_or_default();
        let claims = IdTokenClaims::new(
            issuer,
            vec![Audience::new(i.client.client_id.clone())],
            exp,
            now,
            standard,
            SessionClaims { sid: i.sid.map(str::to_owned), groups },
        )
        .set_auth_time(i.auth_time)
        .set_nonce(i.nonce.map(|n| Nonce::new(n.to_owned())))
        .set_auth_context_ref(Some(AuthenticationContextClass::new(acr_for(i.amr).to_owned())))
        .set_auth_method_refs(Some(i.amr.iter().cloned().map(AuthenticationMethodReference::new).collect()))
        .set_authorized_party(Some(ClientId::new(i.client.client_id.clone())));
        let token = LatchkeyIdToken::new(claims, key, key.alg().jws(), Some(access_token), None)
            .map_err(|e| internal(e.to_string()))?;
        Ok(token.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret+x"));
        assert_eq!(parse_basic(&h), Some(("my id".into(), "s:cret x".into())));
        assert_eq!(parse_basic(&format!("basic {}", STANDARD.encode("a:"))), Some(("a".into(), String::new())));
        for bad in ["Bearer abc", "Basic !!!", "Basic", &format!("Basic {}", STANDARD.encode("no-colon"))] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
