use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::signing_keys;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// Sealed PKCS#8.
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    pub active_from: NaiveDateTime,
    pub published_until: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> Result<(), DbError> {
    diesel::insert_into(signing_keys::table).values(row).execute(conn)?;
    Ok(())
}

/// Every key, newest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<SigningKeyRow>, DbError> {
    Ok(signing_keys::table
        .order((signing_keys::created_at.desc(), signing_keys::kid.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)?)
}

/// Stops publishing a key after `until`.
pub fn set_published_until(conn: &mut DbConnection, kid: &str, until: NaiveDateTime) -> Result<bool, DbError> {
    Ok(diesel::update(signing_keys::table.find(kid)).set(signing_keys::published_until.eq(until)).execute(conn)? == 1)
}

/// Every (kid, sealed private key), for `secrets rewrap`.
pub fn sealed(conn: &mut DbConnection) -> Result<Vec<(String, String)>, DbError> {
    Ok(signing_keys::table.select((signing_keys::kid, signing_keys::private_key)).load(conn)?)
}

pub fn set_sealed(conn: &mut DbConnection, kid: &str, sealed: &str) -> Result<(), DbError> {
    diesel::update(signing_keys::table.find(kid)).set(signing_keys::private_key.eq(sealed)).execute(conn)?;
    Ok(())
}

/// Removes keys no longer published before `before`.
pub fn delete_unpublished_before(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(signing_keys::table.filter(signing_keys::published_until.lt(before))).execute(conn)?)
}
