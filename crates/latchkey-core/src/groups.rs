//! Groups of users. A group can require MFA of its members: with the global
//! policy, a client's requirement and step-up (`acr_values`) that makes four
//! ways to ask for a second factor, and the strictest that applies wins.
//! Clients that ask for the `groups` scope get the names in a `groups` claim.

use chrono::{DateTime, Utc};
use latchkey_db::groups::{self as q, GroupRow};
use serde::Serialize;

use crate::Core;
use crate::accounts::{User, not_found};
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;

pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub require_mfa: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<GroupRow> for Group {
    fn from(r: GroupRow) -> Self {
        Group {
            id: r.id,
            name: r.name,
            require_mfa: r.require_mfa,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// A group name as given, trimmed, and its case-folded key.
pub fn check_name(name: &str) -> Result<(String, String), CoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(CoreError::invalid("name", "the group needs a name"));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(CoreError::invalid("name", format!("at most {MAX_NAME_CHARS} characters, no control characters")));
    }
    Ok((name.to_owned(), name.to_lowercase()))
}

fn conflict(name: &str) -> CoreError {
    CoreError::Conflict(format!("a group named {name:?} already exists"))
}

impl Core {
    pub async fn create_group(&self, name: &str, require_mfa: bool, actor: &Actor) -> Result<Group, CoreError> {
        let (name, normalized) = check_name(name)?;
        let now = self.clock.now_naive();
        let row = GroupRow {
            id: crate::tokens::random_id()?,
            name,
            name_normalized: normalized,
            require_mfa,
            created_at: now,
            updated_at: now,
        };
        let (actor, saved) = (actor.clone(), row.clone());
        let created = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    if q::find_by_name(conn, &row.name_normalized)?.is_some() {
                        return Ok(false);
                    }
                    q::insert(conn, &row)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("group.created", &actor).detail(
                            serde_json::json!({ "group_id": row.id, "name": row.name, "require_mfa": require_mfa }),
                        ),
                    )?;
                    Ok(true)
                })
            })
            .await?;
        if !created {
            return Err(conflict(&saved.name));
        }
        Ok(saved.into())
    }

    pub async fn find_group(&self, id: &str) -> Result<Option<Group>, CoreError> {
        let id = id.to_owned();
        Ok(self.db.run(move |conn| q::find(conn, &id)).await?.map(Group::from))
    }

    /// A group by id or, failing that, by name (the CLI takes either).
    pub async fn find_group_by_id_or_name(&self, key: &str) -> Result<Option<Group>, CoreError> {
        let (id, name) = (key.to_owned(), key.trim().to_lowercase());
        Ok(self
            .db
            .run(move |conn| match q::find(conn, &id)? {
                Some(g) => Ok(Some(g)),
                None => q::find_by_name(conn, &name),
            })
            .await?
            .map(Group::from))
    }

    /// Groups by name, a page of them, and how many there are.
    pub async fn list_groups(&self, offset: i64, limit: i64) -> Result<(Vec<Group>, i64), CoreError> {
        let (rows, total) = self.db.run(move |conn| q::list(conn, offset, limit)).await?;
        Ok((rows.into_iter().map(Group::from).collect(), total))
    }

    /// Renames the group and/or changes its MFA requirement.
    pub async fn update_group(
        &self,
        id: &str,
        name: Option<&str>,
        require_mfa: Option<bool>,
        actor: &Actor,
    ) -> Result<Group, CoreError> {
        let name = name.map(check_name).transpose()?;
        let (id, actor, now) = (id.to_owned(), actor.clone(), self.clock.now_naive());
        let outcome = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let Some(mut row) = q::find(conn, &id)? else { return Err(latchkey_db::DbError::NotFound) };
                    if let Some((name, normalized)) = name {
                        if normalized != row.name_normalized && q::find_by_name(conn, &normalized)?.is_some() {
                            return Ok(Err(name));
                        }
                        row.name = name;
                        row.name_normalized = normalized;
                    }
                    if let Some(r) = require_mfa {
                        row.require_mfa = r;
                    }
                    row.updated_at = now;
                    q::update(conn, &row)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("group.updated", &actor).detail(
                            serde_json::json!({ "group_id": row.id, "name": row.name, "require_mfa": row.require_mfa }),
                        ),
                    )?;
                    Ok(Ok(row))
                })
            })
            .await
            .map_err(not_found("group"))?;
        let row = outcome.map_err(|name| conflict(&name))?;
        self.users.clear();
        Ok(row.into())
    }

    pub async fn delete_group(&self, id: &str, actor: &Actor) -> Result<(), CoreError> {
        let (id, actor, now) = (id.to_owned(), actor.clone(), self.clock.now_naive());
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let Some(row) = q::find(conn, &id)? else { return Err(latchkey_db::DbError::NotFound) };
                    q::delete(conn, &id)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("group.deleted", &actor)
                            .detail(serde_json::json!({ "group_id": row.id, "name": row.name })),
                    )
                })
            })
            .await
            .map_err(not_found("group"))?;
        self.users.clear();
        Ok(())
    }

    /// Adds or removes a member; Ok(false) when nothing changed (already a
    /// member, or not one).
    pub async fn set_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        member: bool,
        actor: &Actor,
    ) -> Result<bool, CoreError> {
        let (gid, uid, actor, now) = (group_id.to_owned(), user_id.to_owned(), actor.clone(), self.clock.now_naive());
        let changed = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let Some(group) = q::find(conn, &gid)? else { return Ok(Err("group")) };
                    let Some(user) = latchkey_db::users::find_by_id(conn, &uid)? else { return Ok(Err("user")) };
                    let changed = if member {
                        q::add_member(conn, &gid, &uid, now)?
                    } else {
                        q::remove_member(conn, &gid, &uid)?
                    };
                    if changed {
                        audit::record(
                            conn,
                            now,
                            &Event::new(if member { "group.member_added" } else { "group.member_removed" }, &actor)
                                .user(&user.id, &user.email_normalized)
                                .detail(serde_json::json!({ "group_id": group.id, "name": group.name })),
                        )?;
                    }
                    Ok(Ok(changed))
                })
            })
            .await?
            .map_err(CoreError::NotFound)?;
        self.users.forget(user_id);
        Ok(changed)
    }

    pub async fn group_members(&self, group_id: &str) -> Result<Vec<User>, CoreError> {
        let id = group_id.to_owned();
        Ok(self.db.run(move |conn| q::members(conn, &id)).await?.into_iter().map(User::from).collect())
    }

    pub async fn groups_of(&self, user_id: &str) -> Result<Vec<Group>, CoreError> {
        let id = user_id.to_owned();
        Ok(self.db.run(move |conn| q::groups_of(conn, &id)).await?.into_iter().map(Group::from).collect())
    }

    /// Whether this user must use a second factor: the global policy says
    /// so, or a group of theirs does, or they are an admin (admins always
    /// need MFA).
    pub async fn mfa_required_for(&self, user_id: &str) -> Result<bool, CoreError> {
        if self.mfa_policy().await? == crate::mfa::MfaPolicy::Required {
            return Ok(true);
        }
        let id = user_id.to_owned();
        Ok(self
            .db
            .run(move |conn| {
                let admin = latchkey_db::users::find_by_id(conn, &id)?.is_some_and(|u| u.admin);
                Ok(admin || q::groups_of(conn, &id)?.iter().any(|g| g.require_mfa))
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_trimmed_bounded_and_case_folded() {
        assert_eq!(check_name("  Ops Team ").expect("valid"), ("Ops Team".into(), "ops team".into()));
        for bad in ["", "   ", "a\u{0}b", "tab\there"] {
            assert!(matches!(check_name(bad), Err(CoreError::Invalid { field: "name", .. })), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
