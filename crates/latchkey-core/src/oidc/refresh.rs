//! Refresh tokens (RFC 6749 §6, RFC 9700 §4.14, SPEC §5) and what revokes
//! tokens.
//!
//! A family is one original grant; its id is the `grant_id` every access
//! token of the grant carries. Each refresh token is used once: the first
//! use marks it and stores its successor, derived as HMAC(server key, token)
//! so that a retry within the grace window can be answered with the same
//! successor although only hashes are kept. A use after the window is a
//! replay: the whole family and its access tokens are revoked.
//!
//! Access tokens are JWTs that cannot be recalled, so revocation leaves
//! markers in the store for as long as an access token lives: per grant,
//! per token (`jti`), per session (`sid`), per user and per consent. Every
//! resource endpoint checks them (store reads, no SQL).

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use latchkey_db::refresh_tokens::{self as q, FamilyRow, TokenRow};
use serde_json::{Map, Value};

use super::token::{Issue, grant_revoked_key};
use super::{OAuthError, OAuthFailure, param};
use crate::Core;
use crate::accounts::User;
use crate::audit::{Actor, Event};
use crate::auth::event_ctx;
use crate::clients::Client;
use crate::error::CoreError;
use crate::sessions::RequestContext;
use crate::tokens::{hash_secret, random_token};

pub(crate) fn jti_revoked_key(jti: &str) -> String {
    format!("jti-revoked:{jti}")
}

pub(crate) fn user_revoked_key(user_id: &str) -> String {
    format!("user-tokens-revoked:{user_id}")
}

pub(crate) fn sid_revoked_key(sid: &str) -> String {
    format!("sid-revoked:{sid}")
}

/// What a new family starts from.
pub(crate) struct NewFamily<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scopes: &'a [String],
    pub sid: &'a str,
    pub auth_time: DateTime<Utc>,
    pub amr: &'a [String],
}

fn split(scopes: &str) -> Vec<String> {
    scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl Core {
    /// The successor of a refresh token: the same for the same token, and
    /// unguessable without the server's key.
    fn successor_of(&self, token: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.secrets.derive("refresh-successor"));
        URL_SAFE_NO_PAD.encode(hmac::sign(&key, token.as_bytes()).as_ref())
    }

    fn idle_end(&self, family_end: chrono::NaiveDateTime) -> chrono::NaiveDateTime {
        let idle = chrono::Duration::from_std(self.settings.lifetimes.refresh_idle).unwrap_or_default();
        (self.clock.now_naive() + idle).min(family_end)
    }

    /// Starts a family and returns its first refresh token.
    pub(crate) async fn start_family(&self, f: NewFamily<'_>) -> Result<String, CoreError> {
        let token = random_token()?;
        let now = self.clock.now_naive();
        let absolute = chrono::Duration::from_std(self.settings.lifetimes.refresh_absolute).unwrap_or_default();
        let family = FamilyRow {
            id: f.id.to_owned(),
            client_id: f.client_id.to_owned(),
            user_id: f.user_id.to_owned(),
            scopes: f.scopes.join(" "),
            sid: f.sid.to_owned(),
            auth_time: f.auth_time.naive_utc(),
            amr: serde_json::Value::from(f.amr.to_vec()).to_string(),
            created_at: now,
            expires_at: now + absolute,
            revoked_at: None,
        };
        let row = TokenRow {
            token_hash: hash_secret(&token),
            family_id: family.id.clone(),
            created_at: now,
            idle_expires_at: self.idle_end(family.expires_at),
            used_at: None,
        };
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    q::insert_family(conn, &family)?;
                    q::insert_token(conn, &row)
                })
            })
            .await?;
        Ok(token)
    }

    /// The `refresh_token` grant.
    pub(crate) async fn refresh_grant(
        &self,
        client: &Client,
        params: &Map<String, Value>,
        ctx: &RequestContext,
    ) -> Result<Value, OAuthFailure> {
        let Some(token) = param(params, "refresh_token") else {
            return Err(OAuthError::invalid_request("refresh_token is missing").into());
        };
        let bad =
            || OAuthFailure::Protocol(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked"));
        if token.len() != 43 {
            return Err(bad());
        }
        let hash = hash_secret(token);
        let h = hash.clone();
        let Some((row, family)) = self.db.run(move |conn| q::find(conn, &h)).await.map_err(CoreError::from)? else {
            return Err(bad());
        };
        // Another client's token: refused, and nothing changes.
        if family.client_id != client.client_id {
            return Err(bad());
        }
        let now = self.clock.now_naive();
        if family.revoked_at.is_some() || family.expires_at <= now || row.idle_expires_at <= now {
            return Err(bad());
        }
        let granted = split(&family.scopes);
        let scopes = match param(params, "scope") {
            None => granted.clone(),
            Some(asked) => {
                let asked = split(asked);
                if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                    return Err(OAuthError::new("invalid_scope", format!("{extra} was not granted")).into());
                }
                asked
            }
        };
        let uid = family.user_id.clone();
        let user =
            self.db.run(move |conn| latchkey_db::users::find_by_id(conn, &uid)).await.map_err(CoreError::from)?;
        let Some(user) = user.filter(|u| !u.disabled).map(User::from) else {
            return Err(OAuthError::invalid_grant("the user's account is no longer active").into());
        };

        let successor = self.successor_of(token);
        let next = TokenRow {
            token_hash: hash_secret(&successor),
            family_id: family.id.clone(),
            created_at: now,
            idle_expires_at: self.idle_end(family.expires_at),
            used_at: None,
        };
        let (h, n) = (hash.clone(), next.clone());
        let first_use = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let first = q::mark_used(conn, &h, now)?;
                    if first {
                        q::insert_token(conn, &n)?;
                    }
                    Ok(first)
                })
            })
            .await
            .map_err(CoreError::from)?;
        if !first_use {
            let grace = chrono::Duration::from_std(self.settings.lifetimes.refresh_reuse_grace).unwrap_or_default();
            // Read again: the concurrent first use may have committed since.
            let h = hash.clone();
            let used_at =
                self.db.run(move |conn| q::find(conn, &h)).await.map_err(CoreError::from)?.and_then(|(r, _)| r.used_at);
            let within_grace = used_at.is_some_and(|u| now - u <= grace);
            if !within_grace {
                self.revoke_family(&family.id).await?;
                let actor = Actor::Anonymous;
                let mut event = event_ctx(Event::new("token.refresh_replayed", &actor), ctx)
                    .with_user_id(&family.user_id)
                    .detail(serde_json::json!({ "client_id": client.client_id, "family": family.id }));
                event.outcome = "refused";
                self.audit(event).await;
                return Err(bad());
            }
            // A retry within the window: the same successor again.
            self.db.run(move |conn| q::insert_token(conn, &next)).await.map_err(CoreError::from)?;
        }
        let amr: Vec<String> = serde_json::from_str(&family.amr).unwrap_or_default();
        Ok(self
            .issue_tokens(Issue {
                client,
                subject: &user.id,
                user: Some(&user),
                scopes: &scopes,
                nonce: None,
                auth_time: Some(family.auth_time.and_utc()),
                amr: &amr,
                sid: Some(&family.sid),
                grant_id: &family.id,
                refresh_token: Some(successor),
            })
            .await?)
    }

    /// Revokes one family: its refresh tokens stop working at once, its
    /// access tokens at their next check.
    pub async fn revoke_family(&self, family_id: &str) -> Result<(), CoreError> {
        let (id, now) = (family_id.to_owned(), self.clock.now_naive());
        self.db.run(move |conn| q::revoke_family(conn, &id, now)).await?;
        self.store.put(&grant_revoked_key(family_id), b"1", self.settings.lifetimes.access_token).await?;
        Ok(())
    }

    async fn revoke_families(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        sids: Option<&[String]>,
    ) -> Result<usize, CoreError> {
        let (u, c, now) = (user_id.to_owned(), client_id.map(str::to_owned), self.clock.now_naive());
        let families = self.db.run(move |conn| q::live_families(conn, &u, c.as_deref(), now)).await?;
        let mut n = 0;
        for f in families.iter().filter(|f| sids.is_none_or(|s| s.contains(&f.sid))) {
            self.revoke_family(&f.id).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Everything the user was given ends: password reset, account disabled
    /// or deleted, an unverified account taken over by its address's owner.
    pub async fn revoke_all_user_tokens(&self, user_id: &str) -> Result<(), CoreError> {
        self.revoke_families(user_id, None, None).await?;
        let now = self.clock.now().timestamp().to_string();
        self.store.put(&user_revoked_key(user_id), now.as_bytes(), self.settings.lifetimes.access_token).await?;
        Ok(())
    }

    /// What the ended sessions (by `sid`) were given ends with them.
    pub async fn revoke_session_tokens(&self, user_id: &str, sids: &[String]) -> Result<(), CoreError> {
        if sids.is_empty() {
            return Ok(());
        }
        self.revoke_families(user_id, None, Some(sids)).await?;
        for sid in sids {
            self.store.put(&sid_revoked_key(sid), b"1", self.settings.lifetimes.access_token).await?;
        }
        Ok(())
    }

    /// Consent withdrawn: the client's families for this user end.
    pub(crate) async fn revoke_client_tokens(&self, user_id: &str, client_id: &str) -> Result<(), CoreError> {
        self.revoke_families(user_id, Some(client_id), None).await?;
        Ok(())
    }

    /// A refresh token as introspection sees it: its family when live and
    /// the caller's, else `None`.
    pub(crate) async fn live_refresh_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<Option<(TokenRow, FamilyRow)>, CoreError> {
        if token.len() != 43 {
            return Ok(None);
        }
        let h = hash_secret(token);
        let Some((row, family)) = self.db.run(move |conn| q::find(conn, &h)).await? else { return Ok(None) };
        let now = self.clock.now_naive();
        let live = family.client_id == client_id
            && family.revoked_at.is_none()
            && row.used_at.is_none()
            && family.expires_at > now
            && row.idle_expires_at > now;
        if !live {
            return Ok(None);
        }
        // The user must still be active.
        let uid = family.user_id.clone();
        let active =
            self.db.run(move |conn| latchkey_db::users::find_by_id(conn, &uid)).await?.is_some_and(|u| !u.disabled);
        Ok(active.then_some((row, family)))
    }

    /// The family of a refresh token the client owns, used or not (for
    /// revocation: an old token of the family still names it).
    pub(crate) async fn own_refresh_family(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<Option<FamilyRow>, CoreError> {
        if token.len() != 43 {
            return Ok(None);
        }
        let h = hash_secret(token);
        let found = self.db.run(move |conn| q::find(conn, &h)).await?;
        Ok(found.map(|(_, f)| f).filter(|f| f.client_id == client_id && f.revoked_at.is_none()))
    }

    /// Removes refresh tokens past their idle expiry (spent or not),
    /// families ended or revoked more than a day ago, and families older
    /// than a day with no token left (see [`q::purge`]).
    pub async fn purge_refresh_tokens(&self) -> Result<q::Purged, CoreError> {
        let now = self.clock.now_naive();
        let before = now - chrono::Duration::days(1);
        Ok(self.db.run(move |conn| latchkey_db::transaction(conn, |conn| q::purge(conn, now, before))).await?)
    }
}
