use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::users;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub email_normalized: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &UserRow) -> Result<(), DbError> {
    diesel::insert_into(users::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<UserRow>, DbError> {
    Ok(users::table.find(id).select(UserRow::as_select()).first(conn).optional()?)
}

pub fn find_by_email(conn: &mut DbConnection, email_normalized: &str) -> Result<Option<UserRow>, DbError> {
    Ok(users::table
        .filter(users::email_normalized.eq(email_normalized))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<UserRow>, DbError> {
    Ok(users::table.order((users::created_at.asc(), users::id.asc())).select(UserRow::as_select()).load(conn)?)
}

pub fn count_admins(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(users::table.filter(users::admin.eq(true)).count().get_result(conn)?)
}

/// Sets `disabled`; returns false when no such user exists.
pub fn set_disabled(conn: &mut DbConnection, id: &str, disabled: bool, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id))
        .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Replaces the password hash (and, when `verified`, marks the address
/// verified: a reset link proves it).
pub fn set_password(
    conn: &mut DbConnection,
    id: &str,
    hash: &str,
    verified: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = if verified {
        diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::email_verified.eq(true), users::updated_at.eq(now)))
            .execute(conn)?
    } else {
        diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
            .execute(conn)?
    };
    Ok(n == 1)
}

/// Marks the address verified and removes the password (the address was
/// proven by someone who may not be who chose that password).
pub fn clear_password_and_verify(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id))
        .set((users::password_hash.eq(None::<String>), users::email_verified.eq(true), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Marks the address verified.
pub fn set_email_verified(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(users::table.find(id))
        .set((users::email_verified.eq(true), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Deletes the user; returns false when no such user exists.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(users::table.find(id)).execute(conn)? == 1)
}

/// Users whose email or name contains `query` (any case), by email, `limit`
/// of them from `offset`, and how many match.
pub fn search(
    conn: &mut DbConnection,
    query: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<UserRow>, i64), DbError> {
    let pattern = query.map(|q| {
        let escaped = q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    let filtered = || {
        let mut q = users::table.into_boxed();
        if let Some(p) = &pattern {
            q = q.filter(
                users::email_normalized.like(p.clone()).escape('\\').or(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "LOWER(COALESCE(name, '')) LIKE ",
                )
                .bind::<diesel::sql_types::Text, _>(p.clone())
                .sql(" ESCAPE '\\'")),
            );
        }
        q
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered()
        .order((users::email_normalized.asc(), users::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Sets the admin flag; false when no such user exists.
pub fn set_admin(conn: &mut DbConnection, id: &str, admin: bool, now: NaiveDateTime) -> Result<bool, DbError> {
    let n =
        diesel::update(users::table.find(id)).set((users::admin.eq(admin), users::updated_at.eq(now))).execute(conn)?;
    Ok(n == 1)
}

/// Sets the display name; false when no such user exists.
pub fn set_name(conn: &mut DbConnection, id: &str, name: Option<&str>, now: NaiveDateTime) -> Result<bool, DbError> {
    let n =
        diesel::update(users::table.find(id)).set((users::name.eq(name), users::updated_at.eq(now))).execute(conn)?;
    Ok(n == 1)
}

/// Accounts the retention purge may delete: the address never verified,
/// created before `before`, neither admin nor disabled, and no way in that
/// does not depend on the address (a linked upstream identity, or a
/// credential of kind `passkey_kind`). Oldest first, at most `limit`.
pub fn unverified_before(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    passkey_kind: &str,
    limit: i64,
) -> Result<Vec<UserRow>, DbError> {
    Ok(users::table
        .filter(users::email_verified.eq(false))
        .filter(users::admin.eq(false))
        .filter(users::disabled.eq(false))
        .filter(users::created_at.lt(before))
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "NOT EXISTS (SELECT 1 FROM identities WHERE identities.user_id = users.id) \
                 AND NOT EXISTS (SELECT 1 FROM webauthn_credentials \
                 WHERE webauthn_credentials.user_id = users.id AND webauthn_credentials.kind = ",
            )
            .bind::<diesel::sql_types::Text, _>(passkey_kind.to_owned())
            .sql(")"),
        )
        .order((users::created_at.asc(), users::id.asc()))
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?)
}
