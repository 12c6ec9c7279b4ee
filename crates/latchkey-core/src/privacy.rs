//! The user's own data (SPEC §4 "export my data", "delete my account"):
//! everything kept about an account as one JSON document, and the one way an
//! account is deleted — by its owner on /account, by an admin in the console
//! or the admin API, or by the CLI.
//!
//! An export carries what the account is, how it signs in, its factors,
//! sessions, consents, groups and its audit events, and never a secret: no
//! password hash, TOTP secret, recovery-code hash, WebAuthn public key or
//! credential record, session id or handle, refresh-token hash or upstream
//! token.
//!
//! Deleting ends every session through the same path as signing out (so
//! relying apps with a back-channel URI are told), revokes every token,
//! deletes the account (its other rows cascade from `users`), forgets what
//! the store keeps for it, and keeps the audit trail with the account
//! pseudonymised — all in one transaction with the `user.deleted` event and
//! the mail that confirms it.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use latchkey_db::users::UserRow;
use latchkey_db::{DbConnection, DbError};
use serde::Serialize;

use crate::Core;
use crate::audit::{self, Actor, AuditEntry, AuditFilter, Event};
use crate::error::CoreError;
use crate::sessions::{RequestContext, describe_user_agent};

/// Events read per database call while an export pages through the log.
const AUDIT_PAGE: i64 = 500;

/// Everything Latchkey keeps about one account, as its owner or an admin
/// downloads it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserExport {
    /// When this document was made.
    pub exported_at: DateTime<Utc>,
    /// The service it comes from (the issuer).
    pub service: String,
    pub profile: ExportProfile,
    pub sign_in_methods: ExportSignInMethods,
    pub second_factors: ExportSecondFactors,
    /// The live browser sessions.
    pub sessions: Vec<ExportSession>,
    /// The apps the user allowed.
    pub consents: Vec<ExportConsent>,
    pub groups: Vec<ExportGroup>,
    /// Every audit event about the account, newest first.
    pub audit_events: Vec<AuditEntry>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportProfile {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportSignInMethods {
    /// Whether a password is set (never the password or its hash).
    pub password: bool,
    /// Accounts at upstream providers linked to this one.
    pub linked_identities: Vec<ExportIdentity>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportIdentity {
    /// The provider's key: `google`, `github` or a configured name.
    pub provider: String,
    pub issuer: String,
    /// The account's id at the provider.
    pub subject: String,
    /// The address the provider gave last.
    pub email: Option<String>,
    pub linked_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportSecondFactors {
    /// The authenticator app, if one is set up (never its secret).
    pub authenticator_app: Option<ExportAuthenticatorApp>,
    /// Security keys and passkeys (never their public keys or records).
    pub security_keys: Vec<ExportSecurityKey>,
    /// Unused recovery codes (never the codes or their hashes).
    pub recovery_codes_left: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportAuthenticatorApp {
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportSecurityKey {
    pub name: String,
    /// `passkey` or `security_key`.
    pub kind: String,
    pub synced: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportSession {
    /// The device in a few words ("Firefox on Windows").
    pub device: String,
    pub user_agent: Option<String>,
    /// The client address last seen.
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// When the user last proved who they are in this session.
    pub signed_in_at: DateTime<Utc>,
    /// How (RFC 8176 values).
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportConsent {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub granted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportGroup {
    pub id: String,
    pub name: String,
}

/// The store index of the keys kept for a user outside their sessions
/// (one-time links, known devices), so deleting the account finds them.
fn user_keys_index(user_id: &str) -> String {
    format!("user-keys:{user_id}")
}

/// `text` as JSON writes it inside a string (what to look for in a detail).
fn json_inner(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// What a deleted account is called in the audit log from then on.
pub(crate) fn new_pseudonym() -> Result<String, CoreError> {
    Ok(format!("deleted:{}", crate::tokens::hex(&crate::tokens::random_bytes::<8>()?)))
}

/// The database part of deleting an account, inside the caller's
/// transaction: drops mail still queued to it, deletes the row (its
/// factors, identities, consents, refresh tokens and memberships cascade),
/// records `event` (`user.deleted`, as it happened: a webhook subscriber
/// learns which account went), then pseudonymises every audit event about
/// or by the account, that one included, and the API keys it made. Follow
/// it with [`Core::account_erased`] once committed.
pub(crate) fn erase_account(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    row: &UserRow,
    event: Event<'_>,
    pseudonym: &str,
) -> Result<(), DbError> {
    // What the audit details may name: the id (as a token's `sub`), the
    // address (as written and normalised) and what upstream providers gave.
    let mut scrub: Vec<(String, String)> = vec![(json_inner(&row.id), pseudonym.to_owned())];
    for e in [&row.email, &row.email_normalized] {
        scrub.push((json_inner(e), "[deleted]".to_owned()));
    }
    for i in latchkey_db::identities::for_user(conn, &row.id)? {
        if let Some(e) = i.email {
            scrub.push((json_inner(&e), "[deleted]".to_owned()));
        }
    }
    latchkey_db::mail_outbox::delete_for_recipient(conn, &row.email_normalized)?;
    latchkey_db::users::delete(conn, &row.id)?;
    audit::record(conn, now, &event.user(&row.id, &row.email_normalized))?;
    latchkey_db::audit::pseudonymise(conn, &row.id, &row.email_normalized, pseudonym, &scrub)?;
    for role in ["user", "admin"] {
        let (from, to) = (format!("{role}:{}", row.id), format!("{role}:{pseudonym}"));
        latchkey_db::api_keys::rename_creator(conn, &from, &to)?;
    }
    Ok(())
}

impl Core {
    /// Everything kept about the account, without a secret.
    pub async fn export_user(&self, user_id: &str) -> Result<UserExport, CoreError> {
        let uid = user_id.to_owned();
        let found = self
            .db
            .run(move |conn| {
                let Some(user) = latchkey_db::users::find_by_id(conn, &uid)? else { return Ok(None) };
                let identities = latchkey_db::identities::for_user(conn, &uid)?;
                let totp = latchkey_db::mfa::totp_for(conn, &uid)?.map(|t| t.created_at);
                let recovery_left = latchkey_db::mfa::recovery_left(conn, &uid)?;
                Ok(Some((user, identities, totp, recovery_left)))
            })
            .await?;
        let Some((user, identities, totp, recovery_left)) = found else { return Err(CoreError::NotFound("user")) };
        let keys = self.keys(&user.id).await?;
        let sessions = self.list_sessions(&user.id).await?;
        let consents = self.connected_apps(&user.id).await?;
        let groups = self.groups_of(&user.id).await?;
        let audit_events = self.audit_of(&user.id, &user.email_normalized).await?;
        Ok(UserExport {
            exported_at: self.clock.now(),
            service: self.settings.server.public_url.clone(),
            profile: ExportProfile {
                id: user.id.clone(),
                email: user.email.clone(),
                email_verified: user.email_verified,
                name: user.name.clone(),
                admin: user.admin,
                disabled: user.disabled,
                created_at: user.created_at.and_utc(),
                updated_at: user.updated_at.and_utc(),
            },
            sign_in_methods: ExportSignInMethods {
                password: user.password_hash.is_some(),
                linked_identities: identities
                    .into_iter()
                    .map(|i| ExportIdentity {
                        provider: i.provider,
                        issuer: i.issuer,
                        subject: i.subject,
                        email: i.email,
                        linked_at: i.created_at.and_utc(),
                        last_used_at: i.last_used_at.and_utc(),
                    })
                    .collect(),
            },
            second_factors: ExportSecondFactors {
                authenticator_app: totp.map(|t| ExportAuthenticatorApp { created_at: t.and_utc() }),
                security_keys: keys
                    .into_iter()
                    .map(|k| ExportSecurityKey {
                        name: k.name,
                        kind: k.kind,
                        synced: k.synced,
                        created_at: k.created_at,
                        last_used_at: k.last_used_at,
                    })
                    .collect(),
                recovery_codes_left: recovery_left,
            },
            sessions: sessions
                .into_iter()
                .map(|s| ExportSession {
                    device: describe_user_agent(s.record.user_agent.as_deref()),
                    user_agent: s.record.user_agent,
                    address: s.record.ip,
                    created_at: s.record.created_at,
                    last_seen: s.record.last_seen,
                    signed_in_at: s.record.auth_time,
                    methods: s.record.amr,
                })
                .collect(),
            consents: consents
                .into_iter()
                .map(|c| ExportConsent {
                    client_id: c.client_id,
                    client_name: c.name,
                    scopes: c.scopes,
                    granted_at: c.granted_at,
                    updated_at: c.updated_at,
                })
                .collect(),
            groups: groups.into_iter().map(|g| ExportGroup { id: g.id, name: g.name }).collect(),
            audit_events,
        })
    }

    /// [`Core::export_user`], recorded as `data.exported` with who asked.
    pub async fn export_user_for(
        &self,
        user_id: &str,
        actor: &Actor,
        ctx: &RequestContext,
    ) -> Result<UserExport, CoreError> {
        let export = self.export_user(user_id).await?;
        self.audit(
            crate::auth::event_ctx(Event::new("data.exported", actor), ctx)
                .user(&export.profile.id, &export.profile.email.to_lowercase()),
        )
        .await;
        Ok(export)
    }

    /// Every audit event about the account — by its id, or by its address
    /// (a sign-in link asked for it, a failed sign-in) — newest first.
    async fn audit_of(&self, user_id: &str, email_normalized: &str) -> Result<Vec<AuditEntry>, CoreError> {
        let mut events: Vec<AuditEntry> = Vec::new();
        let filters = [
            AuditFilter { user_id: Some(user_id.to_owned()), ..Default::default() },
            AuditFilter { user_email: Some(email_normalized.to_owned()), ..Default::default() },
        ];
        for filter in filters {
            let mut offset = 0;
            loop {
                let (page, total) = audit::page(self, filter.clone(), offset, AUDIT_PAGE).await?;
                let got = i64::try_from(page.len()).unwrap_or(i64::MAX);
                for e in page {
                    if !events.iter().any(|seen| seen.id == e.id) {
                        events.push(e);
                    }
                }
                offset += got;
                if got == 0 || offset >= total {
                    break;
                }
            }
        }
        events.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
        Ok(events)
    }

    /// Remembers a store key kept for `user_id` (a one-time link, a known
    /// device) so that deleting the account can remove it.
    pub(crate) async fn remember_user_key(&self, user_id: &str, key: &str, ttl: Duration) -> Result<(), CoreError> {
        Ok(self.store.index_add(&user_keys_index(user_id), key, ttl).await?)
    }

    /// Removes every key [`Core::remember_user_key`] recorded for the user.
    async fn forget_user_keys(&self, user_id: &str) -> Result<(), CoreError> {
        let index = user_keys_index(user_id);
        for key in self.store.index_list(&index).await? {
            self.store.delete(&key).await?;
            self.store.index_remove(&index, &key).await?;
        }
        Ok(())
    }

    /// What follows [`erase_account`] once it is committed: the account's
    /// sessions end (with back-channel logout tokens), its tokens are
    /// refused, and what the store keeps for it is removed.
    pub(crate) async fn account_erased(&self, user_id: &str) -> Result<(), CoreError> {
        self.users.forget(user_id);
        self.end_other_sessions(user_id, None).await?;
        self.revoke_all_user_tokens(user_id).await?;
        self.forget_user_keys(user_id).await
    }

    /// Deletes the account: CLI, admin console, admin API and the owner on
    /// /account all come here. Ends every session (with back-channel logout
    /// tokens for the apps signed in through them) and token, deletes the
    /// account's rows and store keys, pseudonymises its audit events, and
    /// records `user.deleted` and queues the mail that says so (unless
    /// `notify` is false: an account that was never finished) in the same
    /// transaction as the deletion. The owner of the only admin account
    /// cannot delete it (nobody could use the console afterwards).
    pub async fn delete_account(
        &self,
        user_id: &str,
        actor: &Actor,
        ctx: &RequestContext,
        notify: bool,
    ) -> Result<crate::accounts::User, CoreError> {
        let user = self.find_user(user_id).await?.ok_or(CoreError::NotFound("user"))?;
        let by_owner = matches!(actor, Actor::User(id) if *id == user.id);
        if by_owner && user.admin && crate::accounts::count_admins(self).await? <= 1 {
            return Err(CoreError::Conflict(
                "You are the only admin. Make someone else an admin before deleting your account.".into(),
            ));
        }
        // Sessions and tokens first: with the store unreachable nothing is
        // deleted, and the relying apps are told through the same path as
        // at sign-out.
        self.end_other_sessions(&user.id, None).await?;
        self.revoke_all_user_tokens(&user.id).await?;

        let pseudonym = new_pseudonym()?;
        let mail = if notify {
            let m = crate::mail::account_deleted(&user.email, !by_owner, &self.settings.server.public_url)
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            Some(self.outbox_row(m)?)
        } else {
            None
        };
        let (uid, now, actor2, ctx2) = (user.id.clone(), self.clock.now_naive(), actor.clone(), ctx.clone());
        let mail_queued = mail.is_some();
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let Some(row) = latchkey_db::users::find_by_id(conn, &uid)? else {
                        return Err(latchkey_db::DbError::NotFound);
                    };
                    let mut event = Event::new("user.deleted", &actor2);
                    event.client_addr = ctx2.ip.as_deref();
                    event.user_agent = ctx2.user_agent.as_deref();
                    erase_account(conn, now, &row, event, &pseudonym)?;
                    if let Some(m) = &mail {
                        latchkey_db::mail_outbox::insert(conn, m)?;
                    }
                    Ok(())
                })
            })
            .await
            .map_err(crate::accounts::not_found("user"))?;
        if mail_queued {
            self.mail_queued();
        }
        // Again, for a sign-in that finished while the account was going:
        // its session and tokens end too.
        self.account_erased(&user.id).await?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_looked_for_as_json_writes_them() {
        assert_eq!(json_inner("ada@example.com"), "ada@example.com");
        assert_eq!(json_inner("a\"b\\c"), "a\\\"b\\\\c");
    }

    #[test]
    fn pseudonyms_are_random_and_shaped_alike() {
        let a = new_pseudonym().expect("rng");
        let b = new_pseudonym().expect("rng");
        assert_ne!(a, b);
        assert!(a.starts_with("deleted:") && a.len() == "deleted:".len() + 16, "{a}");
        assert!(a["deleted:".len()..].bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
