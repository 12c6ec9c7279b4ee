//! The outbox of calls to other parties.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::deliveries;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub kind: String,
    pub client_id: String,
    pub target_url: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub attempts: i64,
    pub last_error: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &DeliveryRow) -> Result<(), DbError> {
    diesel::insert_into(deliveries::table).values(row).execute(conn)?;
    Ok(())
}

/// Deliveries due by `now`, oldest first.
pub fn due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(deliveries::table
        .filter(deliveries::next_attempt_at.le(now))
        .order((deliveries::next_attempt_at.asc(), deliveries::id.asc()))
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)?)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(deliveries::table.find(id)).execute(conn)? == 1)
}

pub fn reschedule(
    conn: &mut DbConnection,
    id: &str,
    next: NaiveDateTime,
    attempts: i64,
    error: &str,
) -> Result<(), DbError> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::next_attempt_at.eq(next),
            deliveries::attempts.eq(attempts),
            deliveries::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(deliveries::table.count().get_result(conn)?)
}

/// Drops what waits for one recipient (a deleted webhook endpoint, say).
pub fn delete_for(conn: &mut DbConnection, kind: &str, client_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(deliveries::table.filter(deliveries::kind.eq(kind)).filter(deliveries::client_id.eq(client_id)))
        .execute(conn)?)
}
