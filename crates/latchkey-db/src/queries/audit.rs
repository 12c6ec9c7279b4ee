use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::audit_events;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub outcome: String,
    pub actor: String,
    pub user_id: Option<String>,
    /// The account's normalised email at the time, so events stay findable
    /// after the account is deleted.
    pub user_email: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// JSON object as text.
    pub detail: String,
}

pub fn insert(conn: &mut DbConnection, row: &AuditRow) -> Result<(), DbError> {
    diesel::insert_into(audit_events::table).values(row).execute(conn)?;
    Ok(())
}

/// Events oldest first, optionally for one (normalised) email address and
/// from a time on.
pub fn list(
    conn: &mut DbConnection,
    user_email: Option<&str>,
    since: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    let mut q = audit_events::table.select(AuditRow::as_select()).into_boxed();
    if let Some(e) = user_email {
        q = q.filter(audit_events::user_email.eq(e.to_owned()));
    }
    if let Some(t) = since {
        q = q.filter(audit_events::at.ge(t));
    }
    Ok(q.order((audit_events::at.asc(), audit_events::id.asc())).limit(limit).load(conn)?)
}

/// Removes events older than `before` (retention); returns how many.
pub fn purge_before(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(audit_events::table.filter(audit_events::at.lt(before))).execute(conn)?)
}

/// What the admin console and API filter the audit log by.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    /// Normalised: finds events of deleted accounts too.
    pub user_email: Option<String>,
    pub kind: Option<String>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// Events newest first, `limit` of them from `offset`, and how many match.
pub fn page(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditRow>, i64), DbError> {
    let filtered = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(u) = &filter.user_id {
            q = q.filter(audit_events::user_id.eq(u.clone()));
        }
        if let Some(e) = &filter.user_email {
            q = q.filter(audit_events::user_email.eq(e.clone()));
        }
        if let Some(k) = &filter.kind {
            q = q.filter(audit_events::kind.eq(k.clone()));
        }
        if let Some(t) = filter.since {
            q = q.filter(audit_events::at.ge(t));
        }
        if let Some(t) = filter.until {
            q = q.filter(audit_events::at.lt(t));
        }
        q
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered()
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}
