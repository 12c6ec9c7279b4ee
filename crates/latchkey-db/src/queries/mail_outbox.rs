use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::mail_outbox;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct MailRow {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub attempts: i64,
    pub recipient: String,
    /// Sealed RFC 5322 message.
    pub message: String,
    pub last_error: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &MailRow) -> Result<(), DbError> {
    diesel::insert_into(mail_outbox::table).values(row).execute(conn)?;
    Ok(())
}

/// Messages due by `now`, oldest first.
pub fn due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> Result<Vec<MailRow>, DbError> {
    Ok(mail_outbox::table
        .filter(mail_outbox::next_attempt_at.le(now))
        .order((mail_outbox::next_attempt_at.asc(), mail_outbox::id.asc()))
        .limit(limit)
        .select(MailRow::as_select())
        .load(conn)?)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(mail_outbox::table.find(id)).execute(conn)? == 1)
}

pub fn reschedule(
    conn: &mut DbConnection,
    id: &str,
    next: NaiveDateTime,
    attempts: i64,
    error: &str,
) -> Result<(), DbError> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::next_attempt_at.eq(next),
            mail_outbox::attempts.eq(attempts),
            mail_outbox::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Every (id, sealed message), for `secrets rewrap`.
pub fn sealed(conn: &mut DbConnection) -> Result<Vec<(String, String)>, DbError> {
    Ok(mail_outbox::table.select((mail_outbox::id, mail_outbox::message)).load(conn)?)
}

pub fn set_sealed(conn: &mut DbConnection, id: &str, sealed: &str) -> Result<(), DbError> {
    diesel::update(mail_outbox::table.find(id)).set(mail_outbox::message.eq(sealed)).execute(conn)?;
    Ok(())
}

pub fn count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(mail_outbox::table.count().get_result(conn)?)
}

/// Drops the queued messages to an address (any case); returns how many.
/// An account being deleted gets no more mail but the one that says so.
pub fn delete_for_recipient(conn: &mut DbConnection, email_normalized: &str) -> Result<usize, DbError> {
    // The outbox is short (it empties as mail goes out), and recipients are
    // stored as written: compared here rather than with a per-backend
    // case-insensitive query.
    let queued: Vec<(String, String)> =
        mail_outbox::table.select((mail_outbox::id, mail_outbox::recipient)).load(conn)?;
    let mut n = 0;
    for (id, recipient) in queued {
        if recipient.trim().to_lowercase() == email_normalized {
            n += diesel::delete(mail_outbox::table.find(id)).execute(conn)?;
        }
    }
    Ok(n)
}
