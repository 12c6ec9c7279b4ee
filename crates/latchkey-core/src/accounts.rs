//! User accounts: creation with the email and password rules, listing,
//! disabling and deleting. Each change is audited in its own transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use latchkey_db::users::{self as q, UserRow};
use serde::Serialize;

use crate::Core;
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;

/// Longest address accepted (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_NAME_CHARS: usize = 200;

/// A user as the CLI and admin API show it; never the password hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub admin: bool,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            email_verified: r.email_verified,
            disabled: r.disabled,
            admin: r.admin,
            has_password: r.password_hash.is_some(),
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// Checks an address and returns it as given (trimmed) and normalised (the
/// unique key: lower case). Dots and `+tags` are kept: they are the user's.
pub fn normalize_email(input: &str) -> Result<(String, String), CoreError> {
    let email = input.trim();
    if email.is_empty() {
        return Err(CoreError::invalid("Email", "Enter an email address."));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(CoreError::invalid("Email", format!("An email address is at most {MAX_EMAIL_LEN} characters.")));
    }
    let parsed: email_address::EmailAddress = email
        .parse()
        .map_err(|_| CoreError::invalid("Email", "Enter a valid email address, such as name@example.com."))?;
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) || parsed.domain().starts_with('[') {
        return Err(CoreError::invalid("Email", "Enter a valid email address, such as name@example.com."));
    }
    Ok((email.to_owned(), email.to_lowercase()))
}

fn check_name(name: Option<String>) -> Result<Option<String>, CoreError> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(CoreError::invalid("Name", format!("A name is at most {MAX_NAME_CHARS} characters.")));
    }
    if name.chars().any(char::is_control) {
        return Err(CoreError::invalid("Name", "A name cannot contain control characters."));
    }
    Ok(Some(name))
}

/// What creating a user needs.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    /// None: the account signs in by other means until a password is set.
    pub password: Option<String>,
    pub email_verified: bool,
    pub admin: bool,
}

pub async fn create_user(core: &Core, new: NewUser, actor: &Actor) -> Result<User, CoreError> {
    create_user_from(core, new, actor, None).await
}

/// [`create_user`] for a request: its `user.created` event (and so the
/// webhook event) carries the browser's address and user agent.
pub async fn create_user_from(
    core: &Core,
    new: NewUser,
    actor: &Actor,
    ctx: Option<&crate::sessions::RequestContext>,
) -> Result<User, CoreError> {
    let (addr, agent) = match ctx {
        Some(c) => (c.ip.clone(), c.user_agent.clone()),
        None => (None, None),
    };
    let (email, normalized) = normalize_email(&new.email)?;
    let name = check_name(new.name)?;
    let password_hash = match new.password {
        Some(pw) => {
            let mut inputs = vec![email.as_str()];
            if let Some(n) = &name {
                inputs.push(n);
            }
            core.password_policy.check(&pw, &inputs)?;
            Some(core.hasher.hash(pw).await?)
        }
        None => None,
    };
    let now = core.clock.now_naive();
    let row = UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        email,
        email_normalized: normalized,
        email_verified: new.email_verified,
        name,
        password_hash,
        admin: new.admin,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let actor = actor.clone();
    let saved = row.clone();
    core.db
        .run(move |conn| {
            latchkey_db::transaction(conn, |conn| {
                q::insert(conn, &row)?;
                audit::record(
                    conn,
                    now,
                    &Event {
                        client_addr: addr.as_deref(),
                        user_agent: agent.as_deref(),
                        ..Event::new("user.created", &actor)
                            .user(&row.id, &row.email_normalized)
                            .detail(serde_json::json!({ "admin": row.admin, "email_verified": row.email_verified }))
                    },
                )
            })
        })
        .await
        .map_err(|e| match e {
            latchkey_db::DbError::Conflict(_) => CoreError::Conflict("A user with this email already exists.".into()),
            other => other.into(),
        })?;
    Ok(saved.into())
}

/// Users as the userinfo endpoint reads them, kept a few seconds in each
/// instance so that a busy resource server does not cost a database read per
/// request. Disabling or deleting an account still shows at once (every token
/// check reads the user's revocation marker in the store), changes made by
/// this instance are forgotten here at once, and changes made by another
/// instance or the CLI show within [`UserCache::TTL`].
#[derive(Default)]
pub struct UserCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Arc<CachedUser>)>>,
}

impl std::fmt::Debug for UserCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCache")
    }
}

impl UserCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(5);
    /// Beyond this many users the expired entries are dropped, and if that is
    /// not enough, all of them: memory stays bounded whatever the traffic.
    const CAPACITY: usize = 10_000;

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (std::time::Instant, Arc<CachedUser>)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Option<Arc<CachedUser>> {
        let entries = self.lock();
        entries.get(id).filter(|(at, _)| at.elapsed() < Self::TTL).map(|(_, u)| Arc::clone(u))
    }

    fn put(&self, user: Arc<CachedUser>) {
        let mut entries = self.lock();
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(user.user.id.clone(), (std::time::Instant::now(), user));
    }

    /// Forgets a user this instance just changed.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Forgets everyone (a group was renamed or deleted).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// A user and the names of their groups, as claims show them.
#[derive(Debug)]
pub struct CachedUser {
    pub user: User,
    pub groups: Vec<String>,
}

/// The user with this id and their groups, from the instance's short cache
/// when it is there.
pub async fn cached_user(core: &Core, id: &str) -> Result<Option<Arc<CachedUser>>, CoreError> {
    if let Some(user) = core.users.get(id) {
        return Ok(Some(user));
    }
    let key = id.to_owned();
    let found = core
        .db
        .run(move |conn| {
            let Some(row) = q::find_by_id(conn, &key)? else { return Ok(None) };
            let groups = latchkey_db::groups::groups_of(conn, &key)?;
            Ok(Some((row, groups.into_iter().map(|g| g.name).collect())))
        })
        .await?;
    let Some((row, groups)) = found else { return Ok(None) };
    let user = Arc::new(CachedUser { user: User::from(row), groups });
    core.users.put(Arc::clone(&user));
    Ok(Some(user))
}

pub async fn list_users(core: &Core) -> Result<Vec<User>, CoreError> {
    Ok(core.db.run(q::list).await?.into_iter().map(User::from).collect())
}

pub async fn find_by_email(core: &Core, email: &str) -> Result<Option<User>, CoreError> {
    let (_, normalized) = normalize_email(email)?;
    Ok(core.db.run(move |conn| q::find_by_email(conn, &normalized)).await?.map(User::from))
}

pub async fn count_admins(core: &Core) -> Result<i64, CoreError> {
    Ok(core.db.run(q::count_admins).await?)
}

/// Disables or enables the account with this email.
pub async fn set_disabled(core: &Core, email: &str, disabled: bool, actor: &Actor) -> Result<User, CoreError> {
    let (_, normalized) = normalize_email(email)?;
    let now = core.clock.now_naive();
    let actor = actor.clone();
    let row = core
        .db
        .run(move |conn| {
            latchkey_db::transaction(conn, |conn| {
                let Some(mut user) = q::find_by_email(conn, &normalized)? else {
                    return Err(latchkey_db::DbError::NotFound);
                };
                if user.disabled == disabled {
                    return Ok(user); // already so: nothing changes, nothing to record
                }
                q::set_disabled(conn, &user.id, disabled, now)?;
                audit::record(
                    conn,
                    now,
                    &Event::new(if disabled { "user.disabled" } else { "user.enabled" }, &actor)
                        .user(&user.id, &user.email_normalized),
                )?;
                user.disabled = disabled;
                user.updated_at = now;
                Ok(user)
            })
        })
        .await
        .map_err(not_found("user"))?;
    core.users.forget(&row.id);
    if disabled {
        // Revocation fans out: a disabled account keeps no session or token.
        core.end_other_sessions(&row.id, None).await?;
        core.revoke_all_user_tokens(&row.id).await?;
    }
    Ok(row.into())
}

/// Deletes the account with this email (the CLI's `user delete`), as
/// [`Core::delete_account`] does: sessions, tokens and data go, the audit
/// trail stays with the account pseudonymised, and a mail says so.
pub async fn delete_user(core: &Core, email: &str, actor: &Actor) -> Result<User, CoreError> {
    let (_, normalized) = normalize_email(email)?;
    let Some(row) = core.db.run(move |conn| q::find_by_email(conn, &normalized)).await? else {
        return Err(CoreError::NotFound("user"));
    };
    core.delete_account(&row.id, actor, &crate::sessions::RequestContext::default(), true).await
}

pub(crate) fn not_found(what: &'static str) -> impl Fn(latchkey_db::DbError) -> CoreError {
    move |e| match e {
        latchkey_db::DbError::NotFound => CoreError::NotFound(what),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Arc<CachedUser> {
        Arc::new(CachedUser {
            groups: vec![],
            user: User {
                id: id.into(),
                email: format!("{id}@example.com"),
                name: None,
                email_verified: false,
                disabled: false,
                admin: false,
                has_password: true,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
        })
    }

    #[test]
    fn the_user_cache_answers_until_forgotten_and_stays_bounded() {
        let cache = UserCache::default();
        assert!(cache.get("u1").is_none());
        cache.put(user("u1"));
        assert_eq!(cache.get("u1").map(|u| u.user.email.clone()).as_deref(), Some("u1@example.com"));
        cache.forget("u1");
        assert!(cache.get("u1").is_none(), "a forgotten user is read again");
        for i in 0..UserCache::CAPACITY + 5 {
            cache.put(user(&format!("n{i}")));
        }
        assert!(cache.lock().len() <= UserCache::CAPACITY, "never more than the capacity");
    }

    #[test]
    fn emails_are_normalised_to_lower_case() {
        let (shown, key) = normalize_email("  Ada.Lovelace+IdP@Example.COM ").expect("valid");
        assert_eq!(shown, "Ada.Lovelace+IdP@Example.COM");
        assert_eq!(key, "ada.lovelace+idp@example.com");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in ["", "   ", "plainaddress", "@example.com", "a@", "a b@example.com", "a@b@c", "x@[127.0.0.1]"] {
            assert!(matches!(normalize_email(bad), Err(CoreError::Invalid { field: "Email", .. })), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(matches!(normalize_email(&long), Err(CoreError::Invalid { field: "Email", .. })));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name(Some("  Ada  ".into())).ok(), Some(Some("Ada".to_owned())));
        assert_eq!(check_name(Some("   ".into())).ok(), Some(None));
        assert!(check_name(Some("a".repeat(MAX_NAME_CHARS + 1))).is_err());
        assert!(check_name(Some("Ada\u{0}".into())).is_err());
    }
}
