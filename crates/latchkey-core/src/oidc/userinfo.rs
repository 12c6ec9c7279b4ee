//! Access tokens coming back (RFC 9068 §4, RFC 6750) and the userinfo
//! endpoint (OIDC Core §5.3). Only our access tokens pass: the type, issuer,
//! audience and expiry are checked, so an ID token is never accepted; so is
//! what may have revoked one since (a replayed code, withdrawn consent, a
//! disabled or deleted user).

use serde_json::Value;

use super::jwt::ACCESS_TOKEN_TYP;
use super::refresh::{jti_revoked_key, sid_revoked_key, user_revoked_key};
use super::token::grant_revoked_key;
use super::{SCOPE_OPENID, user_claims};
use crate::Core;
use crate::error::CoreError;

/// Why a bearer token was refused (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerRefusal {
    /// `invalid_token`, with a description.
    InvalidToken(&'static str),
    /// `insufficient_scope`: the token lacks `openid`.
    InsufficientScope,
}

/// A verified access token's claims that resource endpoints use.
#[derive(Debug, Clone)]
pub struct AccessClaims {
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub grant_id: Option<String>,
    pub jti: Option<String>,
    /// The sign-in's level (`1fa`, `mfa`, `phr`); none for client_credentials.
    pub acr: Option<String>,
}

impl Core {
    /// Checks an access token as every resource endpoint must.
    pub async fn verify_access_token(&self, token: &str) -> Result<Result<AccessClaims, BearerRefusal>, CoreError> {
        self.verify_access_token_for(token, self.issuer()).await
    }

    /// Checks an access token meant for `audience` (the provider itself, or
    /// the admin API).
    pub async fn verify_access_token_for(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<Result<AccessClaims, BearerRefusal>, CoreError> {
        use BearerRefusal::InvalidToken;
        let Some(v) = self.verify_jws(token).await? else {
            return Ok(Err(InvalidToken("the token is malformed or its signature is not ours")));
        };
        let typ_ok = v
            .typ()
            .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt"));
        if !typ_ok {
            return Ok(Err(InvalidToken("not an access token")));
        }
        if v.claim_str("iss") != Some(self.issuer()) || !v.audience_has(audience) {
            return Ok(Err(InvalidToken("the token is not for this provider")));
        }
        let now = self.clock.now().timestamp();
        let (Some(exp), Some(iat), Some(sub), Some(client_id)) =
            (v.claim_i64("exp"), v.claim_i64("iat"), v.claim_str("sub"), v.claim_str("client_id"))
        else {
            return Ok(Err(InvalidToken("the token lacks required claims")));
        };
        if exp <= now {
            return Ok(Err(InvalidToken("the token has expired")));
        }
        let claims = AccessClaims {
            subject: sub.to_owned(),
            client_id: client_id.to_owned(),
            scopes: v
                .claim_str("scope")
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            issued_at: iat,
            expires_at: exp,
            grant_id: v.claim_str("grant_id").map(str::to_owned),
            jti: v.claim_str("jti").map(str::to_owned),
            acr: v.claim_str("acr").map(str::to_owned),
        };
        if !self.client_registered(&claims.client_id).await? {
            return Ok(Err(InvalidToken("the token's client is no longer registered")));
        }
        // Every revocation marker that could name this token, read in one
        // round trip: its grant, itself, its session (any value revokes), the
        // consent and its user (a time: tokens issued up to it are revoked).
        let sid = v.claim_str("sid");
        let markers: Vec<(String, bool)> = [
            claims.grant_id.as_deref().map(|g| (grant_revoked_key(g), false)),
            claims.jti.as_deref().map(|j| (jti_revoked_key(j), false)),
            sid.map(|s| (sid_revoked_key(s), false)),
            Some((crate::oidc::consent::revoked_key(&claims.client_id, &claims.subject), true)),
            Some((user_revoked_key(&claims.subject), true)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let keys: Vec<String> = markers.iter().map(|(k, _)| k.clone()).collect();
        let found = self.store.get_many(&keys).await?;
        let revoked = markers.iter().zip(&found).any(|((_, timed), value)| match value {
            None => false,
            Some(_) if !timed => true,
            Some(v) => std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()).is_some_and(|t| iat <= t),
        });
        if revoked {
            return Ok(Err(InvalidToken("the token has been revoked")));
        }
        Ok(Ok(claims))
    }

    /// The userinfo response for a bearer token.
    pub async fn userinfo(&self, token: &str) -> Result<Result<Value, BearerRefusal>, CoreError> {
        let claims = match self.verify_access_token(token).await? {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        if !claims.scopes.iter().any(|s| s == SCOPE_OPENID) {
            return Ok(Err(BearerRefusal::InsufficientScope));
        }
        let user = crate::accounts::cached_user(self, &claims.subject).await?;
        let Some(user) = user.filter(|u| !u.user.disabled) else {
            return Ok(Err(BearerRefusal::InvalidToken("the user's account is no longer active")));
        };
        let mut out = user_claims(&user.user, &claims.scopes);
        if claims.scopes.iter().any(|s| s == super::SCOPE_GROUPS) {
            out.insert("groups".into(), serde_json::json!(user.groups));
        }
        Ok(Ok(Value::Object(out)))
    }
}
