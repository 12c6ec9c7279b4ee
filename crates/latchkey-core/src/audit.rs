//! The audit log: who did what to which account, when, from where, and how it
//! ended. Written in the same transaction as the change it records.

use chrono::{DateTime, NaiveDateTime, Utc};
use latchkey_db::DbConnection;
use latchkey_db::audit::{self as q, AuditRow};
use serde::Serialize;

pub use latchkey_db::audit::AuditFilter;

use crate::error::CoreError;
use crate::tokens::random_id;

/// Who acted.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The operator, through the `latchkey` command line.
    Cli,
    /// A signed-in user acting on their own account.
    User(String),
    /// Nobody signed in yet (sign-up, failed sign-in).
    Anonymous,
    /// An admin, in the console or with an admin access token.
    Admin(String),
    /// An admin API key, by its visible prefix.
    ApiKey(String),
    /// Latchkey itself, in scheduled work (`retention`: the maintenance
    /// round's purges).
    System(String),
}

impl Actor {
    pub fn as_text(&self) -> String {
        match self {
            Actor::Cli => "cli".to_owned(),
            Actor::User(id) => format!("user:{id}"),
            Actor::Anonymous => "anonymous".to_owned(),
            Actor::Admin(id) => format!("admin:{id}"),
            Actor::ApiKey(prefix) => format!("apikey:{prefix}"),
            Actor::System(task) => format!("system:{task}"),
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub kind: &'a str,
    pub outcome: &'a str,
    pub actor: &'a Actor,
    pub user_id: Option<&'a str>,
    /// Normalised.
    pub user_email: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(kind: &'a str, actor: &'a Actor) -> Self {
        Event {
            kind,
            outcome: "ok",
            actor,
            user_id: None,
            user_email: None,
            client_addr: None,
            user_agent: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn user(mut self, id: &'a str, email: &'a str) -> Self {
        self.user_id = Some(id);
        self.user_email = Some(email);
        self
    }

    /// The user by id alone (the address is filled in from the account).
    pub fn with_user_id(mut self, id: &'a str) -> Self {
        self.user_id = Some(id);
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

pub fn record(conn: &mut DbConnection, at: NaiveDateTime, e: &Event<'_>) -> Result<(), latchkey_db::DbError> {
    let id = random_id().map_err(|err| latchkey_db::DbError::Query(err.to_string()))?;
    q::insert(
        conn,
        &AuditRow {
            id: id.clone(),
            at,
            kind: e.kind.to_owned(),
            outcome: e.outcome.to_owned(),
            actor: e.actor.as_text(),
            user_id: e.user_id.map(str::to_owned),
            user_email: e.user_email.map(str::to_owned),
            client_addr: e.client_addr.map(str::to_owned),
            user_agent: e.user_agent.map(|s| s.chars().take(512).collect()),
            detail: e.detail.to_string(),
        },
    )?;
    // Webhook events are born with the audit event, in its transaction.
    crate::webhooks::enqueue(conn, at, &id, e)
}

/// An event as `latchkey audit list` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub outcome: String,
    pub actor: String,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at.and_utc(),
            kind: r.kind,
            outcome: r.outcome,
            actor: r.actor,
            user_id: r.user_id,
            user_email: r.user_email,
            client_addr: r.client_addr,
            user_agent: r.user_agent,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Deletes events older than `retention.audit_days` (730 by default);
/// returns how many.
pub async fn purge_expired(core: &crate::Core) -> Result<usize, CoreError> {
    let days = i64::try_from(core.settings.retention.audit_days).unwrap_or(36_500);
    let before = (core.clock.now() - chrono::Duration::days(days)).naive_utc();
    Ok(core.db.run(move |conn| q::purge_before(conn, before)).await?)
}

/// Events, oldest first, at most `limit`.
pub async fn list(
    core: &crate::Core,
    user_email: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<AuditEntry>, CoreError> {
    let normalized = match user_email {
        Some(e) => Some(crate::accounts::normalize_email(e)?.1),
        None => None,
    };
    let rows =
        core.db.run(move |conn| q::list(conn, normalized.as_deref(), since.map(|t| t.naive_utc()), limit)).await?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}

/// A page of events, newest first, and how many match the filter.
pub async fn page(
    core: &crate::Core,
    filter: latchkey_db::audit::AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditEntry>, i64), CoreError> {
    let (rows, total) = core.db.run(move |conn| q::page(conn, &filter, offset, limit)).await?;
    Ok((rows.into_iter().map(AuditEntry::from).collect(), total))
}
