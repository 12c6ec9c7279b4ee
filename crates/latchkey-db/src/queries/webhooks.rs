//! Webhook endpoints and the log of their delivery attempts.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{webhook_attempts, webhooks};
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Space-separated event types.
    pub events: String,
    /// The signing secret, sealed.
    pub secret: String,
    pub enabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub at: NaiveDateTime,
    pub attempt: i64,
    pub status: Option<i64>,
    pub outcome: String,
    pub error: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &WebhookRow) -> Result<(), DbError> {
    diesel::insert_into(webhooks::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<WebhookRow>, DbError> {
    Ok(webhooks::table.find(id).select(WebhookRow::as_select()).first(conn).optional()?)
}

/// Every endpoint, oldest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<WebhookRow>, DbError> {
    Ok(webhooks::table
        .order((webhooks::created_at.asc(), webhooks::id.asc()))
        .select(WebhookRow::as_select())
        .load(conn)?)
}

/// The enabled endpoints (id, url, events): read for every audit event, so
/// without the sealed secret.
pub fn enabled(conn: &mut DbConnection) -> Result<Vec<(String, String, String)>, DbError> {
    Ok(webhooks::table
        .filter(webhooks::enabled.eq(true))
        .order(webhooks::id.asc())
        .select((webhooks::id, webhooks::url, webhooks::events))
        .load(conn)?)
}

/// Changes what an endpoint receives; false when there is no such endpoint.
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    url: &str,
    description: &str,
    events: &str,
    enabled: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(webhooks::table.find(id))
        .set((
            webhooks::url.eq(url),
            webhooks::description.eq(description),
            webhooks::events.eq(events),
            webhooks::enabled.eq(enabled),
            webhooks::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn set_secret(conn: &mut DbConnection, id: &str, sealed: &str) -> Result<(), DbError> {
    diesel::update(webhooks::table.find(id)).set(webhooks::secret.eq(sealed)).execute(conn)?;
    Ok(())
}

/// Every (id, sealed secret), for `secrets rewrap`.
pub fn sealed(conn: &mut DbConnection) -> Result<Vec<(String, String)>, DbError> {
    Ok(webhooks::table.select((webhooks::id, webhooks::secret)).load(conn)?)
}

/// Deletes an endpoint (its log goes with it); false when there was none.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(webhooks::table.find(id)).execute(conn)? == 1)
}

pub fn log_attempt(conn: &mut DbConnection, row: &AttemptRow) -> Result<(), DbError> {
    diesel::insert_into(webhook_attempts::table).values(row).execute(conn)?;
    Ok(())
}

/// An endpoint's latest attempts, newest first.
pub fn attempts(conn: &mut DbConnection, webhook_id: &str, limit: i64) -> Result<Vec<AttemptRow>, DbError> {
    Ok(webhook_attempts::table
        .filter(webhook_attempts::webhook_id.eq(webhook_id))
        .order((webhook_attempts::at.desc(), webhook_attempts::attempt.desc(), webhook_attempts::id.asc()))
        .limit(limit)
        .select(AttemptRow::as_select())
        .load(conn)?)
}

/// Forgets attempts logged before `before`; how many went.
pub fn purge_attempts(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(webhook_attempts::table.filter(webhook_attempts::at.lt(before))).execute(conn)?)
}
