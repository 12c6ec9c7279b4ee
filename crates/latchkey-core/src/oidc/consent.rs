//! Consent: what a user allowed a third-party client, remembered per user,
//! client and scopes, listed as "Connected apps" and revocable. Revoking
//! also refuses the client's access tokens for that user issued until then.

use chrono::{DateTime, Utc};
use latchkey_db::consents::{self as q, ConsentRow};
use serde::Serialize;

use crate::Core;
use crate::audit::{Actor, Event};
use crate::auth::event_ctx;
use crate::clients::Client;
use crate::error::CoreError;
use crate::sessions::RequestContext;

/// A client the user allowed, as /account lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectedApp {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub granted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn split(scopes: &str) -> Vec<String> {
    scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The store key that marks when a user withdrew a client's access.
pub(crate) fn revoked_key(client_id: &str, user_id: &str) -> String {
    format!("consent-revoked:{client_id}:{user_id}")
}

impl Core {
    /// Whether the user already allowed the client every one of `scopes`.
    pub async fn consent_covers(&self, user_id: &str, client_id: &str, scopes: &[String]) -> Result<bool, CoreError> {
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let Some(row) = self.db.run(move |conn| q::find(conn, &u, &c)).await? else { return Ok(false) };
        let granted = split(&row.scopes);
        Ok(scopes.iter().all(|s| granted.contains(s)))
    }

    /// Remembers that the user allowed `scopes` (added to what they allowed
    /// before).
    pub async fn grant_consent(
        &self,
        user_id: &str,
        client: &Client,
        scopes: &[String],
        ctx: &RequestContext,
    ) -> Result<(), CoreError> {
        let (u, c) = (user_id.to_owned(), client.client_id.clone());
        let now = self.clock.now_naive();
        let wanted = scopes.to_vec();
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let before = q::find(conn, &u, &c)?;
                    let mut all = before.as_ref().map(|r| split(&r.scopes)).unwrap_or_default();
                    for s in wanted {
                        if !all.contains(&s) {
                            all.push(s);
                        }
                    }
                    q::save(
                        conn,
                        &ConsentRow {
                            user_id: u.clone(),
                            client_id: c.clone(),
                            scopes: all.join(" "),
                            granted_at: before.map_or(now, |r| r.granted_at),
                            updated_at: now,
                        },
                    )
                })
            })
            .await?;
        self.record_consent_answer(user_id, client, scopes, true, ctx).await;
        Ok(())
    }

    pub(crate) async fn record_consent_answer(
        &self,
        user_id: &str,
        client: &Client,
        scopes: &[String],
        allowed: bool,
        ctx: &RequestContext,
    ) {
        let actor = Actor::User(user_id.to_owned());
        let kind = if allowed { "consent.granted" } else { "consent.denied" };
        self.audit(event_ctx(Event::new(kind, &actor), ctx).with_user_id(user_id).detail(serde_json::json!({
            "client_id": client.client_id, "client": client.name, "scopes": scopes.join(" "),
        })))
        .await;
    }

    /// The user's connected apps, most recently allowed first.
    pub async fn connected_apps(&self, user_id: &str) -> Result<Vec<ConnectedApp>, CoreError> {
        let u = user_id.to_owned();
        let rows = self.db.run(move |conn| q::list_for_user(conn, &u)).await?;
        Ok(rows
            .into_iter()
            .map(|(r, name)| ConnectedApp {
                client_id: r.client_id,
                name,
                scopes: split(&r.scopes),
                granted_at: r.granted_at.and_utc(),
                updated_at: r.updated_at.and_utc(),
            })
            .collect())
    }

    /// Withdraws the user's consent for a client: the consent is forgotten
    /// and the client's access tokens for this user stop working. False when
    /// there was no such consent (another user's client id changes nothing).
    pub async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<bool, CoreError> {
        if client_id.is_empty() || client_id.len() > 64 {
            return Ok(false);
        }
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let removed = self.db.run(move |conn| q::delete(conn, &u, &c)).await?;
        if !removed {
            return Ok(false);
        }
        self.revoke_client_tokens(user_id, client_id).await?;
        let now = self.clock.now().timestamp();
        self.store
            .put(&revoked_key(client_id, user_id), now.to_string().as_bytes(), self.settings.lifetimes.access_token)
            .await?;
        let actor = Actor::User(user_id.to_owned());
        self.audit(
            event_ctx(Event::new("consent.revoked", &actor), ctx)
                .with_user_id(user_id)
                .detail(serde_json::json!({ "client_id": client_id })),
        )
        .await;
        Ok(true)
    }
}
