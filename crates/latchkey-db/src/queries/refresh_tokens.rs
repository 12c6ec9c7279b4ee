//! Refresh-token families and the tokens of each, stored by SHA-256.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{refresh_tokens, token_families};
use crate::{DbConnection, DbError};

/// One original grant and everything refreshed from it.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = token_families)]
pub struct FamilyRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    /// Space-separated, as granted.
    pub scopes: String,
    pub sid: String,
    pub auth_time: NaiveDateTime,
    /// JSON array of RFC 8176 methods.
    pub amr: String,
    pub created_at: NaiveDateTime,
    /// The absolute end of the family.
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct TokenRow {
    pub token_hash: String,
    pub family_id: String,
    pub created_at: NaiveDateTime,
    pub idle_expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

pub fn insert_family(conn: &mut DbConnection, row: &FamilyRow) -> Result<(), DbError> {
    diesel::insert_into(token_families::table).values(row).execute(conn)?;
    Ok(())
}

/// Inserts a token unless one with the same hash exists (a successor that a
/// concurrent refresh already wrote).
pub fn insert_token(conn: &mut DbConnection, row: &TokenRow) -> Result<(), DbError> {
    on_backend!(conn, |c| diesel::insert_into(refresh_tokens::table)
        .values(row)
        .on_conflict(refresh_tokens::token_hash)
        .do_nothing()
        .execute(c))?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, token_hash: &str) -> Result<Option<(TokenRow, FamilyRow)>, DbError> {
    Ok(refresh_tokens::table
        .inner_join(token_families::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((TokenRow::as_select(), FamilyRow::as_select()))
        .first(conn)
        .optional()?)
}

/// Marks a token used; false when it already was (someone else used it).
pub fn mark_used(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes one family; false when it already was.
pub fn revoke_family(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(
        token_families::table.filter(token_families::id.eq(id)).filter(token_families::revoked_at.is_null()),
    )
    .set(token_families::revoked_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}

/// The user's live families (optionally of one client).
pub fn live_families(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: Option<&str>,
    now: NaiveDateTime,
) -> Result<Vec<FamilyRow>, DbError> {
    let mut q = token_families::table
        .filter(token_families::user_id.eq(user_id))
        .filter(token_families::revoked_at.is_null())
        .filter(token_families::expires_at.gt(now))
        .select(FamilyRow::as_select())
        .into_boxed();
    if let Some(c) = client_id {
        q = q.filter(token_families::client_id.eq(c));
    }
    Ok(q.load(conn)?)
}

/// What [`purge`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub tokens: usize,
    pub families: usize,
}

/// Removes tokens past their idle expiry (spent or not: a token is kept
/// until then so that its reuse is recognised), then the families that
/// ended or were revoked before `families_before` (with any token still
/// theirs), and the families created before it that have no token left
/// (every one idled out: nothing can refresh them any more).
pub fn purge(conn: &mut DbConnection, now: NaiveDateTime, families_before: NaiveDateTime) -> Result<Purged, DbError> {
    let mut tokens =
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::idle_expires_at.lt(now))).execute(conn)?;
    let ended = || {
        token_families::table
            .filter(token_families::expires_at.lt(families_before).or(token_families::revoked_at.lt(families_before)))
            .select(token_families::id)
    };
    tokens += diesel::delete(refresh_tokens::table.filter(refresh_tokens::family_id.eq_any(ended()))).execute(conn)?;
    let families = diesel::delete(
        token_families::table.filter(
            token_families::expires_at.lt(families_before).or(token_families::revoked_at.lt(families_before)).or(
                token_families::created_at
                    .lt(families_before)
                    .and(token_families::id.ne_all(refresh_tokens::table.select(refresh_tokens::family_id))),
            ),
        ),
    )
    .execute(conn)?;
    Ok(Purged { tokens, families })
}
