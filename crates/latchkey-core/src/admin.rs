//! What admins do to accounts, by account id: the admin API and console
//! share these, and every one is audited with the acting admin or key.

use chrono::{DateTime, Utc};
use latchkey_db::users as q;
use serde::Serialize;

use crate::Core;
use crate::accounts::{self, User};
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;

/// A session as admins see it: never its id, only its public handle.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub handle: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub acr: &'static str,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The changes an admin may make to an account in one request.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub admin: Option<bool>,
}

pub const MAX_NAME_CHARS: usize = 200;

/// A display name as given: trimmed, bounded, no control characters; empty
/// means none.
pub fn check_name(name: Option<&str>) -> Result<Option<String>, CoreError> {
    let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
        return Err(CoreError::invalid("name", format!("at most {MAX_NAME_CHARS} characters, no control characters")));
    }
    Ok(Some(n.to_owned()))
}

impl Core {
    pub async fn find_user(&self, id: &str) -> Result<Option<User>, CoreError> {
        let id = id.to_owned();
        Ok(self.db.run(move |conn| q::find_by_id(conn, &id)).await?.map(User::from))
    }

    async fn user_or_404(&self, id: &str) -> Result<User, CoreError> {
        self.find_user(id).await?.ok_or(CoreError::NotFound("user"))
    }

    /// Users matching `query` (email or name), a page of them, and the count.
    pub async fn search_users(
        &self,
        query: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<User>, i64), CoreError> {
        let query = query.map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned);
        let (rows, total) = self.db.run(move |conn| q::search(conn, query.as_deref(), offset, limit)).await?;
        Ok((rows.into_iter().map(User::from).collect(), total))
    }

    /// Applies an admin's changes to an account. Disabling ends its sessions
    /// and tokens at once; an admin cannot disable or demote themselves, so
    /// the console cannot lock out the last person able to use it by mistake.
    pub async fn update_user(&self, id: &str, changes: UserChanges, actor: &Actor) -> Result<User, CoreError> {
        let name = match &changes.name {
            Some(n) => Some(check_name(n.as_deref())?),
            None => None,
        };
        if let Actor::Admin(me) = actor
            && me == id
            && (changes.disabled == Some(true) || changes.admin == Some(false))
        {
            return Err(CoreError::Conflict(
                "You cannot disable your own account or remove your own admin rights.".into(),
            ));
        }
        let user = self.user_or_404(id).await?;
        if let Some(d) = changes.disabled {
            accounts::set_disabled(self, &user.email, d, actor).await?;
        }
        let (uid, email, actor2, now) =
            (user.id.clone(), user.email.to_lowercase(), actor.clone(), self.clock.now_naive());
        let admin = changes.admin.filter(|a| *a != user.admin);
        let name = name.filter(|n| *n != user.name);
        if admin.is_some() || name.is_some() {
            self.db
                .run(move |conn| {
                    latchkey_db::transaction(conn, |conn| {
                        if let Some(a) = admin {
                            q::set_admin(conn, &uid, a, now)?;
                            audit::record(
                                conn,
                                now,
                                &Event::new(if a { "user.admin_granted" } else { "user.admin_revoked" }, &actor2)
                                    .user(&uid, &email),
                            )?;
                        }
                        if let Some(n) = &name {
                            q::set_name(conn, &uid, n.as_deref(), now)?;
                            audit::record(conn, now, &Event::new("user.updated", &actor2).user(&uid, &email))?;
                        }
                        Ok(())
                    })
                })
                .await?;
        }
        self.users.forget(&user.id);
        self.user_or_404(id).await
    }

    pub async fn delete_user_by_id(&self, id: &str, actor: &Actor) -> Result<(), CoreError> {
        if matches!(actor, Actor::Admin(me) if me == id) {
            return Err(CoreError::Conflict("You cannot delete your own account here.".into()));
        }
        let user = self.user_or_404(id).await?;
        self.delete_account(&user.id, actor, &crate::sessions::RequestContext::default(), true).await?;
        Ok(())
    }

    /// Ends every session of the account and what they were given.
    pub async fn sign_out_everywhere(&self, id: &str, actor: &Actor) -> Result<usize, CoreError> {
        let user = self.user_or_404(id).await?;
        let ended = self.end_other_sessions(&user.id, None).await?;
        // What those sessions were given ends with them, as when the user
        // signs out everywhere themselves.
        self.revoke_session_tokens(&user.id, &ended).await?;
        self.audit(
            Event::new("session.revoked", actor)
                .user(&user.id, &user.email.to_lowercase())
                .detail(serde_json::json!({ "sessions_ended": ended.len(), "everywhere": true })),
        )
        .await;
        Ok(ended.len())
    }

    /// Removes every second factor, passkey and recovery code of the account
    /// (its owner lost them) and ends its sessions; the owner signs in with
    /// their first factor and, where MFA is required, sets one up again.
    pub async fn reset_factors(&self, id: &str, actor: &Actor) -> Result<usize, CoreError> {
        let user = self.user_or_404(id).await?;
        let (uid, email, actor2, now) =
            (user.id.clone(), user.email.to_lowercase(), actor.clone(), self.clock.now_naive());
        let removed = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let n = latchkey_db::mfa::delete_all_for_user(conn, &uid)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("mfa.reset", &actor2)
                            .user(&uid, &email)
                            .detail(serde_json::json!({ "removed": n })),
                    )?;
                    Ok(n)
                })
            })
            .await?;
        let ended = self.end_other_sessions(&user.id, None).await?;
        self.revoke_session_tokens(&user.id, &ended).await?;
        Ok(removed)
    }

    /// The account's live sessions.
    pub async fn sessions_of(&self, id: &str) -> Result<Vec<SessionView>, CoreError> {
        let user = self.user_or_404(id).await?;
        let mut out: Vec<SessionView> = self
            .list_sessions(&user.id)
            .await?
            .into_iter()
            .map(|s| SessionView {
                acr: crate::mfa::acr_for(&s.record.amr),
                handle: s.handle,
                created_at: s.record.created_at,
                last_seen: s.record.last_seen,
                auth_time: s.record.auth_time,
                amr: s.record.amr,
                ip: s.record.ip,
                user_agent: s.record.user_agent,
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        Ok(out)
    }

    /// Sends the verification mail again; a verified address has nothing to
    /// verify (409).
    pub async fn admin_resend_verification(&self, id: &str, actor: &Actor) -> Result<(), CoreError> {
        let user = self.user_or_404(id).await?;
        if user.email_verified {
            return Err(CoreError::Conflict("This address is already verified.".into()));
        }
        self.send_verification(&user).await?;
        self.audit(Event::new("email.verification_sent", actor).user(&user.id, &user.email.to_lowercase())).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name(Some("  Ada ")).expect("ok"), Some("Ada".into()));
        assert_eq!(check_name(Some("   ")).expect("ok"), None);
        assert_eq!(check_name(None).expect("ok"), None);
        assert!(check_name(Some("a\nb")).is_err());
        assert!(check_name(Some(&"x".repeat(MAX_NAME_CHARS + 1))).is_err());
    }
}
