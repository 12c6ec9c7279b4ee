//! Groups of users, and which of them require MFA.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{group_members, user_groups, users};
use crate::users::UserRow;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_groups)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    /// The name in lower case: names are unique regardless of case.
    pub name_normalized: String,
    pub require_mfa: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &GroupRow) -> Result<(), DbError> {
    diesel::insert_into(user_groups::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<GroupRow>, DbError> {
    Ok(user_groups::table.find(id).select(GroupRow::as_select()).first(conn).optional()?)
}

pub fn find_by_name(conn: &mut DbConnection, name_normalized: &str) -> Result<Option<GroupRow>, DbError> {
    Ok(user_groups::table
        .filter(user_groups::name_normalized.eq(name_normalized))
        .select(GroupRow::as_select())
        .first(conn)
        .optional()?)
}

/// Groups by name, `limit` of them from `offset`, and how many there are.
pub fn list(conn: &mut DbConnection, offset: i64, limit: i64) -> Result<(Vec<GroupRow>, i64), DbError> {
    let total = user_groups::table.count().get_result(conn)?;
    let rows = user_groups::table
        .order((user_groups::name_normalized.asc(), user_groups::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(GroupRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Writes the name and MFA requirement; false when no such group exists.
pub fn update(conn: &mut DbConnection, row: &GroupRow) -> Result<bool, DbError> {
    let n = diesel::update(user_groups::table.find(&row.id))
        .set((
            user_groups::name.eq(&row.name),
            user_groups::name_normalized.eq(&row.name_normalized),
            user_groups::require_mfa.eq(row.require_mfa),
            user_groups::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Deletes the group (its memberships go with it); false when none.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    diesel::delete(group_members::table.filter(group_members::group_id.eq(id))).execute(conn)?;
    Ok(diesel::delete(user_groups::table.find(id)).execute(conn)? == 1)
}

/// Adds the user to the group; false when already a member.
pub fn add_member(conn: &mut DbConnection, group_id: &str, user_id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let exists: i64 = group_members::table
        .filter(group_members::group_id.eq(group_id).and(group_members::user_id.eq(user_id)))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    diesel::insert_into(group_members::table)
        .values((
            group_members::group_id.eq(group_id),
            group_members::user_id.eq(user_id),
            group_members::added_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Removes the user from the group; false when not a member.
pub fn remove_member(conn: &mut DbConnection, group_id: &str, user_id: &str) -> Result<bool, DbError> {
    let n = diesel::delete(
        group_members::table.filter(group_members::group_id.eq(group_id).and(group_members::user_id.eq(user_id))),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// The group's members by email.
pub fn members(conn: &mut DbConnection, group_id: &str) -> Result<Vec<UserRow>, DbError> {
    Ok(group_members::table
        .inner_join(users::table)
        .filter(group_members::group_id.eq(group_id))
        .order(users::email_normalized.asc())
        .select(UserRow::as_select())
        .load(conn)?)
}

/// The groups a user belongs to, by name.
pub fn groups_of(conn: &mut DbConnection, user_id: &str) -> Result<Vec<GroupRow>, DbError> {
    Ok(group_members::table
        .inner_join(user_groups::table)
        .filter(group_members::user_id.eq(user_id))
        .order(user_groups::name_normalized.asc())
        .select(GroupRow::as_select())
        .load(conn)?)
}
