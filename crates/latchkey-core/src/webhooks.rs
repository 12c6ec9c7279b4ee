//! Webhooks: other systems hear about sign-ups, sign-ins, deletions and the
//! like as they happen.
//!
//! Admins register endpoints for event types. An event is born with the
//! audit event that records it ([`enqueue`] runs inside `audit::record`, in
//! the same transaction as the change), as one row per subscribed endpoint
//! in the durable `deliveries` outbox; the delivery worker sends it through
//! the guarded outbound client, signed in the Standard Webhooks form
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 of
//! HMAC-SHA256 over "id.timestamp.body">` with the endpoint's `whsec_`
//! secret), and retries with backoff until it is accepted or given up. The
//! event id stays the same on every retry, so receivers can drop duplicates.
//! Every attempt is logged for the console.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, Utc};
use latchkey_db::deliveries::{self as dq, DeliveryRow};
use latchkey_db::webhooks::{self as q, AttemptRow, WebhookRow};
use latchkey_db::{DbConnection, DbError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Core;
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;
use crate::tokens::{random_bytes, random_id};

/// The `deliveries.kind` of a webhook event.
pub const KIND: &str = "webhook";

/// The event types an endpoint can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "signin.succeeded",
    "signin.failed",
    "mfa.added",
    "mfa.removed",
    "session.revoked",
    "consent.revoked",
];

pub const MAX_DESCRIPTION_CHARS: usize = 200;
const MAX_URL: usize = 2000;
/// How long to wait before each retry; one more attempt than entries.
const RETRY_AFTER: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// Attempts before an event is marked failed.
pub const MAX_ATTEMPTS: i64 = RETRY_AFTER.len() as i64 + 1;
const SECRET_PREFIX: &str = "whsec_";
/// How many attempts the console shows.
pub const LOG_LIMIT: i64 = 100;
/// The delivery log keeps attempts this many days (maintenance purges the
/// rest).
pub const ATTEMPT_LOG_DAYS: i64 = 30;

/// The webhook event type an audit event is, if any.
pub fn event_type(kind: &str, outcome: &str) -> Option<&'static str> {
    let ok = outcome == "ok";
    Some(match kind {
        // Every way an account is made records `user.created` (a sign-up
        // adds a `signup` event of its own, which is not sent again).
        "user.created" if ok => "user.created",
        "user.updated" | "user.disabled" | "user.enabled" | "user.admin_granted" | "user.admin_revoked"
        | "email.verified" | "password.changed" | "password.reset"
            if ok =>
        {
            "user.updated"
        }
        "user.deleted" if ok => "user.deleted",
        "login.succeeded" if ok => "signin.succeeded",
        "login.failed" => "signin.failed",
        "mfa.added" if ok => "mfa.added",
        "mfa.removed" | "mfa.reset" if ok => "mfa.removed",
        "session.revoked" if ok => "session.revoked",
        "consent.revoked" if ok => "consent.revoked",
        _ => return None,
    })
}

/// Queues the webhook event an audit event causes, one delivery per enabled
/// endpoint that subscribed to its type. Runs inside the audit event's
/// transaction.
pub(crate) fn enqueue(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    audit_id: &str,
    e: &Event<'_>,
) -> Result<(), DbError> {
    let Some(kind) = event_type(e.kind, e.outcome) else { return Ok(()) };
    let endpoints: Vec<_> =
        q::enabled(conn)?.into_iter().filter(|(_, _, events)| events.split(' ').any(|t| t == kind)).collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let id = format!("msg_{}", random_id().map_err(|err| DbError::Query(err.to_string()))?);
    let payload = json!({
        "type": kind,
        "timestamp": at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "event_id": id,
            "audit_id": audit_id,
            "action": e.kind,
            "outcome": e.outcome,
            "actor": e.actor.as_text(),
            "user_id": e.user_id,
            "email": e.user_email,
            "client_addr": e.client_addr,
            "user_agent": e.user_agent.map(|s| s.chars().take(512).collect::<String>()),
            "detail": e.detail,
        },
    })
    .to_string();
    for (webhook_id, url, _) in endpoints {
        dq::insert(
            conn,
            &DeliveryRow {
                id: random_id().map_err(|err| DbError::Query(err.to_string()))?,
                kind: KIND.to_owned(),
                client_id: webhook_id,
                target_url: url,
                // The event id leads, so the worker need not parse the body
                // to name it: "msg_…\n{json}".
                payload: format!("{id}\n{payload}"),
                created_at: at,
                next_attempt_at: at,
                attempts: 0,
                last_error: None,
            },
        )?;
    }
    Ok(())
}

/// The Standard Webhooks signature header value for one message.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Result<String, CoreError> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|_| CoreError::Internal("a webhook secret is not base64".into()))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let tag = hmac::sign(&key, format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(tag.as_ref())))
}

fn new_secret() -> Result<String, CoreError> {
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(random_bytes::<32>()?)))
}

fn secret_context(id: &str) -> String {
    format!("webhook-secret:{id}")
}

pub fn sealed_column() -> crate::rewrap::SealedColumn {
    crate::rewrap::SealedColumn {
        name: "webhooks.secret",
        context: secret_context,
        load: q::sealed,
        store: q::set_secret,
    }
}

/// An endpoint as admins see it (never its secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Self {
        Webhook {
            id: r.id,
            url: r.url,
            description: r.description,
            events: r.events.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            enabled: r.enabled,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// One delivery attempt, for the log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WebhookAttempt {
    pub event_id: String,
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub attempt: i64,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<i64>,
    /// `delivered`, `retrying`, `failed` (given up) or `dropped` (the
    /// endpoint was disabled).
    pub outcome: String,
    pub error: Option<String>,
}

impl From<AttemptRow> for WebhookAttempt {
    fn from(r: AttemptRow) -> Self {
        WebhookAttempt {
            event_id: r.event_id,
            event_type: r.event_type,
            at: r.at.and_utc(),
            attempt: r.attempt,
            status: r.status,
            outcome: r.outcome,
            error: r.error,
        }
    }
}

/// What a new endpoint answers once: the secret is never shown again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: receivers verify signatures with it.
    pub secret: String,
}

/// An endpoint URL: http(s), no credentials, no fragment, a host. Whether
/// its addresses may be called is decided on each delivery, on the address
/// actually connected to.
pub fn check_url(url: &str) -> Result<String, CoreError> {
    let url = url.trim();
    let bad = |m: &str| CoreError::invalid("url", m.to_owned());
    if url.is_empty() {
        return Err(bad("the endpoint needs a URL"));
    }
    if url.len() > MAX_URL {
        return Err(bad("the URL is too long"));
    }
    let parsed = url::Url::parse(url).map_err(|_| bad("not a valid URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the URL must start with https:// (or http://)"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("the URL must not carry a user name or password"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("the URL must not have a fragment"));
    }
    if parsed.host().is_none() {
        return Err(bad("the URL needs a host"));
    }
    Ok(parsed.to_string())
}

/// Event types as given (comma- or space-separated, or a list), checked and
/// without repeats; `*` means all.
pub fn check_events<S: AsRef<str>>(given: &[S]) -> Result<Vec<String>, CoreError> {
    let mut out: Vec<String> = Vec::new();
    for t in given.iter().flat_map(|s| s.as_ref().split([',', ' '])).map(str::trim).filter(|s| !s.is_empty()) {
        if t == "*" {
            return Ok(EVENT_TYPES.iter().map(|s| (*s).to_owned()).collect());
        }
        if !EVENT_TYPES.contains(&t) {
            return Err(CoreError::invalid(
                "events",
                format!(
                    "{:?} is not an event type (one of {})",
                    t.chars().take(60).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    if out.is_empty() {
        return Err(CoreError::invalid("events", "choose at least one event type"));
    }
    // The order of the list above, whatever the order given.
    out.sort_by_key(|t| EVENT_TYPES.iter().position(|e| e == t));
    Ok(out)
}

fn check_description(d: &str) -> Result<String, CoreError> {
    let d = d.trim();
    if d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters, no control characters"),
        ));
    }
    Ok(d.to_owned())
}

/// A change to an endpoint; `None` keeps what it was.
#[derive(Debug, Default, Clone)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl Core {
    pub async fn create_webhook(
        &self,
        url: &str,
        description: &str,
        events: &[String],
        actor: &Actor,
    ) -> Result<CreatedWebhook, CoreError> {
        let url = check_url(url)?;
        let description = check_description(description)?;
        let events = check_events(events)?;
        let id = random_id()?;
        let secret = new_secret()?;
        let sealed = self
            .secrets
            .seal(&secret_context(&id), secret.as_bytes())
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let now = self.clock.now_naive();
        let row = WebhookRow {
            id,
            url,
            description,
            events: events.join(" "),
            secret: sealed,
            enabled: true,
            created_at: now,
            updated_at: now,
        };
        let (actor, saved) = (actor.clone(), row.clone());
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    q::insert(conn, &row)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("webhook.created", &actor)
                            .detail(json!({ "webhook_id": row.id, "url": row.url, "events": row.events })),
                    )
                })
            })
            .await?;
        Ok(CreatedWebhook { webhook: saved.into(), secret })
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, CoreError> {
        Ok(self.db.run(q::list).await?.into_iter().map(Webhook::from).collect())
    }

    pub async fn find_webhook(&self, id: &str) -> Result<Option<Webhook>, CoreError> {
        let id = id.to_owned();
        Ok(self.db.run(move |conn| q::find(conn, &id)).await?.map(Webhook::from))
    }

    pub async fn update_webhook(&self, id: &str, change: WebhookChange, actor: &Actor) -> Result<Webhook, CoreError> {
        let url = change.url.as_deref().map(check_url).transpose()?;
        let description = change.description.as_deref().map(check_description).transpose()?;
        let events = change.events.as_deref().map(check_events).transpose()?.map(|e| e.join(" "));
        let (id, actor, now) = (id.to_owned(), actor.clone(), self.clock.now_naive());
        let row = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let Some(old) = q::find(conn, &id)? else { return Err(DbError::NotFound) };
                    let url = url.unwrap_or(old.url);
                    let description = description.unwrap_or(old.description);
                    let events = events.unwrap_or(old.events);
                    let enabled = change.enabled.unwrap_or(old.enabled);
                    q::update(conn, &id, &url, &description, &events, enabled, now)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("webhook.updated", &actor)
                            .detail(json!({ "webhook_id": id, "url": url, "events": events, "enabled": enabled })),
                    )?;
                    q::find(conn, &id)?.ok_or(DbError::NotFound)
                })
            })
            .await
            .map_err(crate::accounts::not_found("webhook"))?;
        Ok(row.into())
    }

    /// A new secret for the endpoint, shown once; the old one stops at once.
    pub async fn rotate_webhook_secret(&self, id: &str, actor: &Actor) -> Result<String, CoreError> {
        let secret = new_secret()?;
        let sealed = self
            .secrets
            .seal(&secret_context(id), secret.as_bytes())
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let (id, actor, now) = (id.to_owned(), actor.clone(), self.clock.now_naive());
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    if q::find(conn, &id)?.is_none() {
                        return Err(DbError::NotFound);
                    }
                    q::set_secret(conn, &id, &sealed)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("webhook.secret_rotated", &actor).detail(json!({ "webhook_id": id })),
                    )
                })
            })
            .await
            .map_err(crate::accounts::not_found("webhook"))?;
        Ok(secret)
    }

    /// Deletes the endpoint, its log and what waits for it.
    pub async fn delete_webhook(&self, id: &str, actor: &Actor) -> Result<(), CoreError> {
        let (id, actor, now) = (id.to_owned(), actor.clone(), self.clock.now_naive());
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let Some(old) = q::find(conn, &id)? else { return Err(DbError::NotFound) };
                    q::delete(conn, &id)?;
                    dq::delete_for(conn, KIND, &id)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("webhook.deleted", &actor).detail(json!({ "webhook_id": id, "url": old.url })),
                    )
                })
            })
            .await
            .map_err(crate::accounts::not_found("webhook"))
    }

    /// Forgets delivery-log lines older than [`ATTEMPT_LOG_DAYS`]; how many.
    pub async fn purge_webhook_attempts(&self) -> Result<usize, CoreError> {
        let before = self.clock.now_naive() - chrono::Duration::days(ATTEMPT_LOG_DAYS);
        Ok(self.db.run(move |conn| q::purge_attempts(conn, before)).await?)
    }

    /// The endpoint's latest delivery attempts, newest first.
    pub async fn webhook_attempts(&self, id: &str) -> Result<Vec<WebhookAttempt>, CoreError> {
        let id = id.to_owned();
        Ok(self
            .db
            .run(move |conn| q::attempts(conn, &id, LOG_LIMIT))
            .await?
            .into_iter()
            .map(WebhookAttempt::from)
            .collect())
    }

    /// Sends one queued webhook event (the delivery worker calls this for
    /// rows of [`KIND`]); true when the endpoint accepted it.
    pub(crate) async fn deliver_webhook(&self, row: &DeliveryRow) -> Result<bool, CoreError> {
        let (msg_id, body) = row.payload.split_once('\n').unwrap_or(("", row.payload.as_str()));
        let event_type = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let attempt = row.attempts + 1;
        let webhook_id = row.client_id.clone();
        let hook = {
            let id = webhook_id.clone();
            self.db.run(move |conn| q::find(conn, &id)).await?
        };
        let log = |outcome: &str, status: Option<u16>, error: Option<String>| AttemptRow {
            id: String::new(),
            webhook_id: webhook_id.clone(),
            event_id: msg_id.to_owned(),
            event_type: event_type.clone(),
            at: self.clock.now_naive(),
            attempt,
            status: status.map(i64::from),
            outcome: outcome.to_owned(),
            error: error.map(|e| e.chars().take(500).collect()),
        };
        let delivery_id = row.id.clone();
        // A deleted endpoint took its log with it: nothing to tell, nobody
        // to tell it to.
        let Some(hook) = hook else {
            self.db.run(move |conn| dq::delete(conn, &delivery_id)).await?;
            return Ok(false);
        };
        if !hook.enabled {
            let entry = log("dropped", None, Some("the endpoint is disabled".into()));
            self.finish_attempt(entry, delivery_id, None).await?;
            return Ok(false);
        }
        let outcome = self.post_webhook(&hook, msg_id, body).await;
        let (status, error) = match outcome {
            Ok(status) if (200..300).contains(&status) => {
                self.finish_attempt(log("delivered", Some(status), None), delivery_id, None).await?;
                return Ok(true);
            }
            Ok(status) => (Some(status), format!("the endpoint answered {status}")),
            Err(e) => (None, e),
        };
        if attempt >= MAX_ATTEMPTS {
            tracing::warn!(webhook_id = %hook.id, error = %error, "webhook event failed; giving up");
            self.finish_attempt(log("failed", status, Some(error)), delivery_id, None).await?;
        } else {
            let wait = RETRY_AFTER.get(row.attempts.max(0) as usize).copied().unwrap_or(Duration::from_secs(36_000));
            let next = self.clock.now_naive() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(10));
            tracing::info!(webhook_id = %hook.id, attempt, error = %error, "webhook event not accepted; will retry");
            self.finish_attempt(
                log("retrying", status, Some(error.clone())),
                delivery_id,
                Some((next, attempt, error)),
            )
            .await?;
        }
        Ok(false)
    }

    /// Logs an attempt and then either drops the delivery or schedules the
    /// next try, in one transaction.
    async fn finish_attempt(
        &self,
        mut entry: AttemptRow,
        delivery_id: String,
        retry: Option<(NaiveDateTime, i64, String)>,
    ) -> Result<(), CoreError> {
        entry.id = random_id()?;
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    q::log_attempt(conn, &entry)?;
                    match &retry {
                        Some((next, attempts, error)) => dq::reschedule(conn, &delivery_id, *next, *attempts, error),
                        None => dq::delete(conn, &delivery_id).map(|_| ()),
                    }
                })
            })
            .await?;
        Ok(())
    }

    async fn post_webhook(&self, hook: &WebhookRow, msg_id: &str, body: &str) -> Result<u16, String> {
        let secret = self.secrets.open(&secret_context(&hook.id), &hook.secret).map_err(|e| e.to_string())?;
        let secret = String::from_utf8(secret).map_err(|_| "the stored secret is not text".to_owned())?;
        let timestamp = self.clock.now().timestamp();
        let signature = sign(&secret, msg_id, timestamp, body).map_err(|e| e.to_string())?;
        let request = openidconnect::http::Request::builder()
            .method("POST")
            .uri(hook.url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.as_bytes().to_vec())
            .map_err(|_| "not a valid URL".to_owned())?;
        self.outbound.send(request).await.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signature_matches() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).expect("signs");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn audit_kinds_map_to_event_types() {
        assert_eq!(event_type("user.created", "ok"), Some("user.created"));
        assert_eq!(event_type("signup", "ok"), None, "a sign-up is told once, by its user.created");
        assert_eq!(event_type("login.failed", "wrong_password"), Some("signin.failed"));
        assert_eq!(event_type("login.succeeded", "ok"), Some("signin.succeeded"));
        assert_eq!(event_type("mfa.reset", "ok"), Some("mfa.removed"));
        assert_eq!(event_type("webhook.created", "ok"), None);
        for t in EVENT_TYPES {
            assert!(
                [
                    "user.created",
                    "user.updated",
                    "user.deleted",
                    "login.succeeded",
                    "login.failed",
                    "mfa.added",
                    "mfa.removed",
                    "session.revoked",
                    "consent.revoked"
                ]
                .iter()
                .any(|k| event_type(k, "ok") == Some(t)),
                "{t} is produced by some audit event"
            );
        }
    }

    #[test]
    fn event_lists_are_checked() {
        assert_eq!(
            check_events(&["signin.failed, user.created"]).ok(),
            Some(vec!["user.created".into(), "signin.failed".into()])
        );
        assert_eq!(check_events(&["*"]).map(|v| v.len()).ok(), Some(EVENT_TYPES.len()));
        assert_eq!(check_events(&["user.created", "user.created"]).map(|v| v.len()).ok(), Some(1));
        assert!(matches!(check_events::<&str>(&[]), Err(CoreError::Invalid { field: "events", .. })));
        assert!(matches!(check_events(&["user.exploded"]), Err(CoreError::Invalid { field: "events", .. })));
        assert!(matches!(check_events(&[" , "]), Err(CoreError::Invalid { field: "events", .. })));
    }

    #[test]
    fn endpoint_urls_are_checked() {
        assert_eq!(check_url(" https://hooks.example.com/in ").ok().as_deref(), Some("https://hooks.example.com/in"));
        for bad in [
            "",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#x",
            "not a url",
            "mailto:a@b",
        ] {
            assert!(matches!(check_url(bad), Err(CoreError::Invalid { field: "url", .. })), "{bad:?}");
        }
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(MAX_URL))).is_err());
    }
}
