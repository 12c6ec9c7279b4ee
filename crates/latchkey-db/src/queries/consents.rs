use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{clients, consents};
use crate::{DbConnection, DbError};

/// What a user allowed a client; `scopes` is space-separated.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub user_id: String,
    pub client_id: String,
    pub scopes: String,
    pub granted_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConnection, user_id: &str, client_id: &str) -> Result<Option<ConsentRow>, DbError> {
    Ok(consents::table.find((user_id, client_id)).select(ConsentRow::as_select()).first(conn).optional()?)
}

/// Records the consent, replacing the scopes of an earlier one (the caller
/// passes the union it wants kept) and keeping its first grant time.
pub fn save(conn: &mut DbConnection, row: &ConsentRow) -> Result<(), DbError> {
    on_backend!(conn, |c| diesel::insert_into(consents::table)
        .values(row)
        .on_conflict((consents::user_id, consents::client_id))
        .do_update()
        .set((consents::scopes.eq(&row.scopes), consents::updated_at.eq(row.updated_at)))
        .execute(c))?;
    Ok(())
}

/// The user's consents with each client's name, newest first.
pub fn list_for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<(ConsentRow, String)>, DbError> {
    Ok(consents::table
        .inner_join(clients::table)
        .filter(consents::user_id.eq(user_id))
        .order((consents::updated_at.desc(), consents::client_id.asc()))
        .select((ConsentRow::as_select(), clients::name))
        .load(conn)?)
}

/// Removes the consent; false when there was none.
pub fn delete(conn: &mut DbConnection, user_id: &str, client_id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(consents::table.find((user_id, client_id))).execute(conn)? == 1)
}

/// Forgets every consent the user gave; returns how many.
pub fn delete_for_user(conn: &mut DbConnection, user_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(consents::table.filter(consents::user_id.eq(user_id))).execute(conn)?)
}
