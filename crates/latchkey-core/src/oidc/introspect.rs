//! Token introspection (RFC 7662) and revocation (RFC 7009). Both need the
//! client to authenticate (introspection a confidential client's secret), and both act only on the client's own tokens:
//! another client's token is `active: false` to introspection and left alone
//! by revocation (which answers 200 either way, so neither reveals whether a
//! token exists).

use serde_json::{Map, Value, json};

use super::refresh::jti_revoked_key;
use super::token::AuthMethod;
use super::{OAuthError, OAuthFailure, param, single_params};
use crate::Core;
use crate::audit::{Actor, Event};
use crate::auth::event_ctx;
use crate::clients::Client;
use crate::sessions::RequestContext;

fn inactive() -> Value {
    json!({ "active": false })
}

/// Which kind of token to try first (RFC 7009 §2.1 `token_type_hint`).
fn refresh_first(params: &Map<String, Value>) -> bool {
    param(params, "token_type_hint") == Some("refresh_token")
}

impl Core {
    async fn authenticated(
        &self,
        pairs: Vec<(String, String)>,
        authorization: Option<&str>,
        secret_required: bool,
    ) -> Result<(Client, Map<String, Value>, String), OAuthFailure> {
        let params = match single_params(pairs) {
            Ok(p) => p,
            Err(name) => return Err(OAuthError::invalid_request(format!("{name} is given more than once")).into()),
        };
        let (client, method) = self.authenticate_client(&params, authorization).await?;
        if secret_required && method == AuthMethod::None {
            return Err(OAuthError::invalid_client("introspection needs a confidential client's credentials").into());
        }
        let Some(token) = param(&params, "token").map(str::to_owned) else {
            return Err(OAuthError::invalid_request("token is missing").into());
        };
        Ok((client, params, token))
    }

    /// Introspection: what the token is, if it is live and the caller's.
    pub async fn introspect(
        &self,
        pairs: Vec<(String, String)>,
        authorization: Option<&str>,
    ) -> Result<Value, OAuthFailure> {
        let (client, params, token) = self.authenticated(pairs, authorization, true).await?;
        if (refresh_first(&params) || token.len() == 43)
            && let Some(v) = self.introspect_refresh(&client, &token).await?
        {
            return Ok(v);
        }
        Ok(self.introspect_access(&client, &token).await?.unwrap_or_else(inactive))
    }

    async fn introspect_access(&self, client: &Client, token: &str) -> Result<Option<Value>, OAuthFailure> {
        let Ok(claims) = self.verify_access_token(token).await? else { return Ok(None) };
        if claims.client_id != client.client_id {
            return Ok(None);
        }
        let mut out = json!({
            "active": true,
            "token_type": "Bearer",
            "client_id": claims.client_id,
            "sub": claims.subject,
            "iss": self.issuer(),
            "aud": self.issuer(),
            "exp": claims.expires_at,
            "iat": claims.issued_at,
        });
        if !claims.scopes.is_empty() {
            out["scope"] = json!(claims.scopes.join(" "));
        }
        if let Some(jti) = claims.jti {
            out["jti"] = json!(jti);
        }
        Ok(Some(out))
    }

    async fn introspect_refresh(&self, client: &Client, token: &str) -> Result<Option<Value>, OAuthFailure> {
        let Some((row, family)) = self.live_refresh_token(token, &client.client_id).await? else { return Ok(None) };
        let mut out = json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": family.client_id,
            "sub": family.user_id,
            "iss": self.issuer(),
            "exp": row.idle_expires_at.and_utc().timestamp(),
            "iat": row.created_at.and_utc().timestamp(),
        });
        if !family.scopes.is_empty() {
            out["scope"] = json!(family.scopes);
        }
        Ok(Some(out))
    }

    /// Revocation: a refresh token ends its family; an access token is
    /// refused from now until it expires. Unknown tokens and other clients'
    /// tokens change nothing.
    pub async fn revoke_token(
        &self,
        pairs: Vec<(String, String)>,
        authorization: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(), OAuthFailure> {
        let (client, _, token) = self.authenticated(pairs, authorization, false).await?;
        let revoked = if let Some(family) = self.own_refresh_family(&token, &client.client_id).await? {
            self.revoke_family(&family.id).await?;
            Some(("refresh_token", family.user_id))
        } else if let Ok(claims) = self.verify_access_token(&token).await? {
            if claims.client_id == client.client_id
                && let Some(jti) = &claims.jti
            {
                let left = (claims.expires_at - self.clock.now().timestamp()).max(1);
                let ttl = std::time::Duration::from_secs(u64::try_from(left).unwrap_or(1));
                self.store.put(&jti_revoked_key(jti), b"1", ttl).await?;
                Some(("access_token", claims.subject))
            } else {
                None
            }
        } else {
            None
        };
        if let Some((kind, subject)) = revoked {
            let actor = Actor::Anonymous;
            self.audit(
                event_ctx(Event::new("token.revoked", &actor), ctx)
                    .detail(json!({ "client_id": client.client_id, "token_type": kind, "sub": subject })),
            )
            .await;
        }
        Ok(())
    }
}
