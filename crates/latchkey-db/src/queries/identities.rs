//! Upstream identities linked to accounts.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::identities;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = identities)]
pub struct IdentityRow {
    pub id: String,
    pub user_id: String,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &IdentityRow) -> Result<(), DbError> {
    diesel::insert_into(identities::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, issuer: &str, subject: &str) -> Result<Option<IdentityRow>, DbError> {
    Ok(identities::table
        .filter(identities::issuer.eq(issuer))
        .filter(identities::subject.eq(subject))
        .select(IdentityRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<IdentityRow>, DbError> {
    Ok(identities::table
        .filter(identities::user_id.eq(user_id))
        .order(identities::created_at.asc())
        .select(IdentityRow::as_select())
        .load(conn)?)
}

/// Records a sign-in through the identity (and the email the provider gave).
pub fn touch(conn: &mut DbConnection, id: &str, email: Option<&str>, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(identities::table.find(id))
        .set((identities::email.eq(email), identities::last_used_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Removes one of the user's identities; false when it is not theirs.
pub fn delete(conn: &mut DbConnection, user_id: &str, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(identities::table.filter(identities::id.eq(id)).filter(identities::user_id.eq(user_id)))
        .execute(conn)?
        == 1)
}

/// Removes every identity of the user; returns how many.
pub fn delete_for_user(conn: &mut DbConnection, user_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(identities::table.filter(identities::user_id.eq(user_id))).execute(conn)?)
}
