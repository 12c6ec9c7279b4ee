//! API keys for the admin API: a visible prefix in clear, the key only as
//! its SHA-256.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::api_keys;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    /// Space-separated.
    pub scopes: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &ApiKeyRow) -> Result<(), DbError> {
    diesel::insert_into(api_keys::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<ApiKeyRow>, DbError> {
    Ok(api_keys::table.find(id).select(ApiKeyRow::as_select()).first(conn).optional()?)
}

pub fn find_by_prefix(conn: &mut DbConnection, prefix: &str) -> Result<Option<ApiKeyRow>, DbError> {
    Ok(api_keys::table.filter(api_keys::prefix.eq(prefix)).select(ApiKeyRow::as_select()).first(conn).optional()?)
}

/// Every key, newest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<ApiKeyRow>, DbError> {
    Ok(api_keys::table
        .order((api_keys::created_at.desc(), api_keys::id.asc()))
        .select(ApiKeyRow::as_select())
        .load(conn)?)
}

/// Marks the key revoked; false when there is no such key or it already was.
pub fn revoke(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(api_keys::table.find(id).filter(api_keys::revoked_at.is_null()))
        .set(api_keys::revoked_at.eq(now))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records a use.
pub fn touch(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(api_keys::table.find(id)).set(api_keys::last_used_at.eq(now)).execute(conn)?;
    Ok(())
}

/// Names a deleted account's pseudonym instead of its id as the maker of
/// its keys (`created_by` `from` → `to`); the keys themselves stay.
pub fn rename_creator(conn: &mut DbConnection, from: &str, to: &str) -> Result<usize, DbError> {
    Ok(diesel::update(api_keys::table.filter(api_keys::created_by.eq(from)))
        .set(api_keys::created_by.eq(to))
        .execute(conn)?)
}
