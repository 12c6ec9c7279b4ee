//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a
//! browser session ends — sign-out, revocation from the account page, "sign
//! out everywhere", a password reset or change, the account disabled or
//! deleted, from the CLI too — every client that received tokens in that
//! session and registered a back-channel URI is sent a signed logout token.
//!
//! The call is written to the durable `deliveries` outbox first and sent by
//! a worker with retries through the guarded outbound client, so a restart,
//! a CLI command or an unreachable relying app loses nothing. The token is
//! signed when sent (fresh `iat`/`exp` on each attempt) with the client's
//! algorithm. The same worker sends webhook events (`crate::webhooks`).

use std::time::Duration;

use latchkey_db::deliveries::{self as q, DeliveryRow};
use serde_json::{Value, json};

use super::jwt;
use crate::Core;
use crate::clients::find_client;
use crate::error::CoreError;
use crate::signing::Alg;
use crate::tokens::random_id;

pub const KIND: &str = "backchannel_logout";
/// The `typ` of a logout token (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token is valid this long after it is sent.
const TOKEN_LIFE: i64 = 120;
const MAX_ATTEMPTS: i64 = 10;
const BATCH: i64 = 20;
const LOCK_TTL: Duration = Duration::from_secs(300);
/// A round stops starting deliveries after this, well inside the lock.
const ROUND_BUDGET: Duration = Duration::from_secs(120);
/// How often the worker looks for due deliveries when nobody wakes it.
const TICK: Duration = Duration::from_secs(1);

fn session_clients_key(sid: &str) -> String {
    format!("session-clients:{sid}")
}

fn backoff(attempts: i64) -> chrono::Duration {
    chrono::Duration::seconds(10i64.saturating_mul(1i64 << attempts.clamp(0, 10)).min(3600))
}

impl Core {
    /// Remembers that `client_id` received tokens in session `sid`.
    pub(crate) async fn remember_session_client(&self, sid: &str, client_id: &str) -> Result<(), CoreError> {
        let ttl = self.settings.lifetimes.session_absolute;
        Ok(self.store.index_add(&session_clients_key(sid), client_id, ttl).await?)
    }

    /// A session ended: queue a logout token for each client of it that
    /// registered a back-channel URI.
    pub(crate) async fn session_ended(&self, user_id: &str, sid: &str) -> Result<(), CoreError> {
        let key = session_clients_key(sid);
        let clients = self.store.index_list(&key).await?;
        if clients.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_naive();
        let mut rows = Vec::new();
        for client_id in &clients {
            let Some(client) = find_client(self, client_id).await? else { continue };
            let Some(uri) = client.backchannel_logout_uri else { continue };
            rows.push(DeliveryRow {
                id: random_id()?,
                kind: KIND.to_owned(),
                client_id: client.client_id,
                target_url: uri,
                payload: json!({ "sub": user_id, "sid": sid }).to_string(),
                created_at: now,
                next_attempt_at: now,
                attempts: 0,
                last_error: None,
            });
        }
        if !rows.is_empty() {
            self.db
                .run(move |conn| {
                    latchkey_db::transaction(conn, |conn| {
                        for row in &rows {
                            q::insert(conn, row)?;
                        }
                        Ok(())
                    })
                })
                .await?;
            self.deliveries_wakeup.notify_one();
        }
        for client_id in clients {
            self.store.index_remove(&key, &client_id).await?;
        }
        Ok(())
    }

    /// The logout token for a delivery, signed now.
    async fn logout_token(&self, client_id: &str, alg: Alg, payload: &Value) -> Result<String, CoreError> {
        let key = self.signing_key(alg).await?;
        let now = self.clock.now().timestamp();
        let claims = json!({
            "iss": self.issuer(),
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_LIFE,
            "jti": random_id()?,
            "events": { EVENT: {} },
            "sub": payload.get("sub"),
            "sid": payload.get("sid"),
        });
        jwt::sign(&key, LOGOUT_TOKEN_TYP, &claims)
    }

    /// Sends what is due (one instance at a time, under a store lock);
    /// returns how many were delivered.
    pub async fn deliver_due_deliveries(&self) -> Result<usize, CoreError> {
        let Some(lock) = self.store.try_lock("deliveries", LOCK_TTL).await? else { return Ok(0) };
        let result = self.deliver_deliveries_locked().await;
        let _ = self.store.unlock(&lock).await;
        result
    }

    async fn deliver_deliveries_locked(&self) -> Result<usize, CoreError> {
        let now = self.clock.now_naive();
        let rows = self.db.run(move |conn| q::due(conn, now, BATCH)).await?;
        let mut delivered = 0;
        let started = std::time::Instant::now();
        for row in rows {
            // Slow endpoints (10 s per address) must not outlast the lock:
            // what is left waits for the next round.
            if started.elapsed() > ROUND_BUDGET {
                break;
            }
            if row.kind == crate::webhooks::KIND {
                delivered += usize::from(self.deliver_webhook(&row).await?);
                continue;
            }
            let outcome = self.deliver_one(&row).await;
            let id = row.id.clone();
            match outcome {
                Ok(()) => {
                    self.db.run(move |conn| q::delete(conn, &id)).await?;
                    delivered += 1;
                }
                // The app refused the token itself (400, Back-Channel Logout
                // §2.8): sending it again will not help.
                Err(e) if e.starts_with("the relying app answered 4") && !e.ends_with("408") && !e.ends_with("429") => {
                    tracing::warn!(error = %e, client_id = %row.client_id, "back-channel logout refused by the app");
                    self.db.run(move |conn| q::delete(conn, &id)).await?;
                }
                Err(e) if row.attempts + 1 >= MAX_ATTEMPTS => {
                    tracing::error!(error = %e, client_id = %row.client_id, "back-channel logout failed; giving up");
                    self.db.run(move |conn| q::delete(conn, &id)).await?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, client_id = %row.client_id, attempt = row.attempts + 1, "back-channel logout failed; will retry");
                    let next = self.clock.now_naive() + backoff(row.attempts);
                    let attempts = row.attempts + 1;
                    self.db.run(move |conn| q::reschedule(conn, &id, next, attempts, &e)).await?;
                }
            }
        }
        Ok(delivered)
    }

    async fn deliver_one(&self, row: &DeliveryRow) -> Result<(), String> {
        // A client deleted since has nobody to tell.
        let Some(client) = find_client(self, &row.client_id).await.map_err(|e| e.to_string())? else { return Ok(()) };
        let payload: Value = serde_json::from_str(&row.payload).map_err(|e| e.to_string())?;
        let alg = Alg::parse(&client.signing_alg).unwrap_or(Alg::Rs256);
        let token = self.logout_token(&client.client_id, alg, &payload).await.map_err(|e| e.to_string())?;
        let body = url::form_urlencoded::Serializer::new(String::new()).append_pair("logout_token", &token).finish();
        match self.outbound.post_form(&row.target_url, body).await {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            Ok(status) => Err(format!("the relying app answered {status}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Deliveries waiting in the outbox.
    pub async fn queued_deliveries(&self) -> Result<i64, CoreError> {
        Ok(self.db.run(q::count).await?)
    }
}

/// Runs the delivery worker forever (spawn it beside the server).
pub async fn run_worker(core: Core) {
    loop {
        if let Err(e) = core.deliver_due_deliveries().await {
            tracing::warn!(error = %e, "delivery round failed");
        }
        let _ = tokio::time::timeout(TICK, core.deliveries_wakeup.notified()).await;
    }
}
