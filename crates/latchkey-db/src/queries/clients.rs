use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::clients;
use crate::{DbConnection, DbError};

/// A registered relying party. List-valued columns are JSON arrays as text.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: Option<String>,
    pub public: bool,
    pub first_party: bool,
    pub grant_types: String,
    pub signing_alg: String,
    pub require_mfa: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// May ask for the `latchkey:admin` scope.
    pub admin: bool,
}

pub fn insert(conn: &mut DbConnection, row: &ClientRow) -> Result<(), DbError> {
    diesel::insert_into(clients::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<ClientRow>, DbError> {
    Ok(clients::table.find(id).select(ClientRow::as_select()).first(conn).optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<ClientRow>, DbError> {
    Ok(clients::table
        .order((clients::created_at.asc(), clients::id.asc()))
        .select(ClientRow::as_select())
        .load(conn)?)
}

/// Deletes the client; returns false when no such client exists.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(clients::table.find(id)).execute(conn)? == 1)
}

/// Replaces the stored secret hash; returns false when no such client exists.
pub fn set_secret_hash(conn: &mut DbConnection, id: &str, hash: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(clients::table.find(id))
        .set((clients::secret_hash.eq(hash), clients::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Writes every editable column of the client (not its id, secret or
/// creation time); returns false when no such client exists.
pub fn update(conn: &mut DbConnection, row: &ClientRow) -> Result<bool, DbError> {
    let n = diesel::update(clients::table.find(&row.id))
        .set((
            clients::name.eq(&row.name),
            clients::redirect_uris.eq(&row.redirect_uris),
            clients::post_logout_redirect_uris.eq(&row.post_logout_redirect_uris),
            clients::backchannel_logout_uri.eq(&row.backchannel_logout_uri),
            clients::first_party.eq(row.first_party),
            clients::grant_types.eq(&row.grant_types),
            clients::signing_alg.eq(&row.signing_alg),
            clients::require_mfa.eq(row.require_mfa),
            clients::admin.eq(row.admin),
            clients::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    Ok(n == 1)
}
