//! Second factors and passkeys: TOTP, WebAuthn credentials, recovery codes,
//! and the policies an admin sets while servers run.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{policies, recovery_codes, totp_factors, webauthn_credentials};
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = totp_factors)]
pub struct TotpRow {
    pub user_id: String,
    pub secret: String,
    pub last_step: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = webauthn_credentials)]
pub struct CredentialRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub credential_id: String,
    pub name: String,
    pub credential: String,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = recovery_codes)]
pub struct RecoveryRow {
    pub id: String,
    pub user_id: String,
    pub code_hash: String,
    pub created_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

// --- TOTP -------------------------------------------------------------------

pub fn totp_for(conn: &mut DbConnection, user_id: &str) -> Result<Option<TotpRow>, DbError> {
    Ok(totp_factors::table.find(user_id).select(TotpRow::as_select()).first(conn).optional()?)
}

/// Sets (or replaces) the user's authenticator app.
pub fn totp_save(conn: &mut DbConnection, row: &TotpRow) -> Result<(), DbError> {
    diesel::delete(totp_factors::table.find(&row.user_id)).execute(conn)?;
    diesel::insert_into(totp_factors::table).values(row).execute(conn)?;
    Ok(())
}

/// Takes `step` for the user: true only when it moves the last used step
/// forward, in one conditional update (so two instances cannot both take it).
pub fn totp_take_step(conn: &mut DbConnection, user_id: &str, step: i64) -> Result<bool, DbError> {
    Ok(diesel::update(totp_factors::table.find(user_id).filter(totp_factors::last_step.lt(step)))
        .set(totp_factors::last_step.eq(step))
        .execute(conn)?
        == 1)
}

pub fn totp_delete(conn: &mut DbConnection, user_id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(totp_factors::table.find(user_id)).execute(conn)? == 1)
}

/// Every (user id, sealed secret), for `secrets rewrap`.
pub fn totp_sealed(conn: &mut DbConnection) -> Result<Vec<(String, String)>, DbError> {
    Ok(totp_factors::table.select((totp_factors::user_id, totp_factors::secret)).load(conn)?)
}

pub fn totp_set_secret(conn: &mut DbConnection, user_id: &str, secret: &str) -> Result<(), DbError> {
    diesel::update(totp_factors::table.find(user_id)).set(totp_factors::secret.eq(secret)).execute(conn)?;
    Ok(())
}

// --- WebAuthn ---------------------------------------------------------------

pub fn credential_insert(conn: &mut DbConnection, row: &CredentialRow) -> Result<(), DbError> {
    diesel::insert_into(webauthn_credentials::table).values(row).execute(conn)?;
    Ok(())
}

/// The user's credentials, oldest first.
pub fn credentials_for(conn: &mut DbConnection, user_id: &str) -> Result<Vec<CredentialRow>, DbError> {
    Ok(webauthn_credentials::table
        .filter(webauthn_credentials::user_id.eq(user_id))
        .order((webauthn_credentials::created_at.asc(), webauthn_credentials::id.asc()))
        .select(CredentialRow::as_select())
        .load(conn)?)
}

pub fn credential_by_credential_id(conn: &mut DbConnection, cred_id: &str) -> Result<Option<CredentialRow>, DbError> {
    Ok(webauthn_credentials::table
        .filter(webauthn_credentials::credential_id.eq(cred_id))
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()?)
}

/// Stores what a sign-in taught about the credential (counter, backup state).
pub fn credential_used(
    conn: &mut DbConnection,
    id: &str,
    credential: &str,
    sign_count: i64,
    backup_state: bool,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(webauthn_credentials::table.find(id))
        .set((
            webauthn_credentials::credential.eq(credential),
            webauthn_credentials::sign_count.eq(sign_count),
            webauthn_credentials::backup_state.eq(backup_state),
            webauthn_credentials::last_used_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Renames one of the user's credentials; false when it is not theirs.
pub fn credential_rename(conn: &mut DbConnection, user_id: &str, id: &str, name: &str) -> Result<bool, DbError> {
    Ok(diesel::update(
        webauthn_credentials::table
            .filter(webauthn_credentials::id.eq(id))
            .filter(webauthn_credentials::user_id.eq(user_id)),
    )
    .set(webauthn_credentials::name.eq(name))
    .execute(conn)?
        == 1)
}

/// Removes one of the user's credentials; false when it is not theirs.
pub fn credential_delete(conn: &mut DbConnection, user_id: &str, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(
        webauthn_credentials::table
            .filter(webauthn_credentials::id.eq(id))
            .filter(webauthn_credentials::user_id.eq(user_id)),
    )
    .execute(conn)?
        == 1)
}

// --- Recovery codes ---------------------------------------------------------

/// Replaces the user's recovery codes with `rows`.
pub fn recovery_replace(conn: &mut DbConnection, user_id: &str, rows: &[RecoveryRow]) -> Result<(), DbError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn)?;
    for row in rows {
        diesel::insert_into(recovery_codes::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// Uses one unused code: true once, in one conditional update.
pub fn recovery_use(
    conn: &mut DbConnection,
    user_id: &str,
    code_hash: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(code_hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Some(now)))
    .execute(conn)?
        == 1)
}

/// How many unused codes the user has left.
pub fn recovery_left(conn: &mut DbConnection, user_id: &str) -> Result<i64, DbError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

pub fn recovery_delete(conn: &mut DbConnection, user_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn)?)
}

/// Drops every factor of the user (TOTP, WebAuthn, recovery codes).
pub fn delete_all_for_user(conn: &mut DbConnection, user_id: &str) -> Result<usize, DbError> {
    let mut n = usize::from(totp_delete(conn, user_id)?);
    n += diesel::delete(webauthn_credentials::table.filter(webauthn_credentials::user_id.eq(user_id))).execute(conn)?;
    n += recovery_delete(conn, user_id)?;
    Ok(n)
}

// --- Policies ---------------------------------------------------------------

pub fn policy_get(conn: &mut DbConnection, name: &str) -> Result<Option<String>, DbError> {
    Ok(policies::table.find(name).select(policies::value).first(conn).optional()?)
}

pub fn policy_set(conn: &mut DbConnection, name: &str, value: &str, now: NaiveDateTime) -> Result<(), DbError> {
    let row = (policies::name.eq(name), policies::value.eq(value), policies::updated_at.eq(now));
    on_backend!(conn, |c| diesel::insert_into(policies::table)
        .values(row)
        .on_conflict(policies::name)
        .do_update()
        .set((policies::value.eq(value), policies::updated_at.eq(now)))
        .execute(c))?;
    Ok(())
}
