//! Password accounts: sign-up, email verification, sign-in, password reset
//! and change. Every first factor ends in [`Core::first_factor_complete`], the
//! one place where later MFA and policy checks go.
//!
//! No answer reveals whether an email has an account: unknown emails cost a
//! dummy hash, a taken email at sign-up gets a mail instead of an error, and
//! forgot-password always says the same thing.

use serde::{Deserialize, Serialize};

use crate::Core;
use crate::accounts::{User, normalize_email};
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;
use crate::sessions::{RequestContext, Session};
use crate::store::hashed_key;
use crate::tokens::random_token;
use latchkey_db::users as q;

/// A successful sign-in: the new session's raw id for the cookie, and (after
/// a password) a known-device token for this browser and account.
#[derive(Debug)]
pub struct SignedIn {
    pub session_id: String,
    pub session: Session,
    pub user: User,
    pub device_token: Option<String>,
}

pub use crate::mfa::AfterFirstFactor;

impl AfterFirstFactor {
    pub fn user(&self) -> &User {
        match self {
            AfterFirstFactor::SignedIn(s) => &s.user,
            AfterFirstFactor::SecondFactor { user, .. } => user,
        }
    }
}

/// Why a sign-in did not succeed, as the page tells it.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Wrong email or password — the same for an unknown email.
    BadCredentials,
    /// The right password for a disabled account.
    Disabled,
}

/// What using a verification link did.
#[derive(Debug)]
pub enum VerifyOutcome {
    /// The address is confirmed.
    Verified(User),
    /// Confirmed, and the password given signed this browser in.
    SignedIn(Box<AfterFirstFactor>),
    /// Confirmed by the mailbox alone: the old password is gone; choose one
    /// with this reset token.
    ChoosePassword(String),
    /// The password given does not match; nothing changed.
    WrongPassword,
    /// Unknown, used, expired, or the account changed.
    Invalid,
}

/// What a one-time link in the store points to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinkRecord {
    user_id: String,
    email: String,
}

const VERIFY: &str = "verify";
const RESET: &str = "reset";
const DEVICE: &str = "device";

/// The session's `sid` (the one tokens carry).
pub fn session_sid(session: &Session) -> String {
    if session.record.sid.is_empty() {
        crate::sessions::legacy_sid(&session.handle)
    } else {
        session.record.sid.clone()
    }
}

pub(crate) fn event_ctx<'a>(e: Event<'a>, ctx: &'a RequestContext) -> Event<'a> {
    let mut e = e;
    e.client_addr = ctx.ip.as_deref();
    e.user_agent = ctx.user_agent.as_deref();
    e
}

impl Core {
    pub(crate) async fn audit(&self, e: Event<'_>) {
        let owned = OwnedEvent::from(&e);
        let now = self.clock.now_naive();
        let result = self
            .db
            .run(move |conn| {
                let mut owned = owned;
                // Events name the account's address too, so they are
                // findable by it (until the account is deleted: a pseudonym
                // then stands for both).
                if owned.user_email.is_none()
                    && let Some(id) = &owned.user_id
                {
                    owned.user_email = q::find_by_id(conn, id)?.map(|r| r.email_normalized);
                }
                let actor = owned.actor();
                audit::record(conn, now, &owned.event(&actor))
            })
            .await;
        if let Err(err) = result {
            tracing::error!(error = %err, kind = e.kind, "could not write an audit event");
        }
    }

    /// The one step every first factor ends in: a new session, or — when
    /// the user has a second factor or policy demands one — a sign-in that
    /// waits for it (SPEC §5: MFA applies to every first factor).
    pub async fn first_factor_complete(
        &self,
        user: User,
        method: &str,
        ctx: &RequestContext,
    ) -> Result<AfterFirstFactor, CoreError> {
        let factors = self.factors(&user.id).await?;
        if factors.any() || self.mfa_required_for(&user.id).await? {
            let token = self.start_pending(&user.id, vec![method.to_owned()], !factors.any()).await?;
            self.audit(
                event_ctx(Event::new("login.first_factor", &Actor::User(user.id.clone())), ctx)
                    .user(&user.id, &user.email.to_lowercase())
                    .detail(serde_json::json!({ "method": method })),
            )
            .await;
            return Ok(AfterFirstFactor::SecondFactor { token, user });
        }
        let device_token = self.new_device_token(&user.id, &user.email).await?;
        let mut signed_in = self.signed_in_now(user, vec![method.to_owned()], method, ctx).await?;
        signed_in.device_token = Some(device_token);
        Ok(AfterFirstFactor::SignedIn(Box::new(signed_in)))
    }

    /// A known-device token for this browser and account (stored hashed),
    /// given once the sign-in is complete.
    pub(crate) async fn new_device_token(&self, user_id: &str, email: &str) -> Result<String, CoreError> {
        let device_token = random_token()?;
        let key = hashed_key(DEVICE, &device_token);
        let ttl = self.settings.lifetimes.known_device;
        self.store.put(&key, crate::tokens::hash_secret(&email.to_lowercase()).as_bytes(), ttl).await?;
        self.remember_user_key(user_id, &key, ttl).await?;
        Ok(device_token)
    }

    /// Whether `device_token` is a known-device cookie for this address.
    async fn known_device(&self, device_token: Option<&str>, email_normalized: &str) -> Result<bool, CoreError> {
        let Some(t) = device_token.filter(|t| t.len() == 43) else { return Ok(false) };
        let want = crate::tokens::hash_secret(email_normalized);
        Ok(match self.store.get(&hashed_key(DEVICE, t)).await? {
            Some(v) => crate::tokens::constant_time_eq(&v, want.as_bytes()),
            None => false,
        })
    }

    /// Email and password sign-in.
    pub async fn password_login(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
        device_token: Option<&str>,
    ) -> Result<Result<AfterFirstFactor, LoginRefusal>, CoreError> {
        let normalized = match normalize_email(email) {
            Ok((_, n)) => n,
            Err(_) => {
                // Not an address at all: the same limits, work and answer as
                // a miss, so it is no way around them.
                let key: String = email.trim().to_lowercase().chars().take(320).collect();
                self.login_attempt(&key, ctx.ip.as_deref(), false).await?;
                self.hasher.verify_dummy(password.to_owned()).await?;
                return Ok(Err(LoginRefusal::BadCredentials));
            }
        };
        let known = self.known_device(device_token, &normalized).await?;
        self.login_attempt(&normalized, ctx.ip.as_deref(), known).await?;

        let n = normalized.clone();
        let row = self.db.run(move |conn| q::find_by_email(conn, &n)).await?;
        let verified = match row.as_ref().and_then(|r| r.password_hash.clone()) {
            Some(hash) => self.hasher.verify(password.to_owned(), hash).await?,
            None => self.hasher.verify_dummy(password.to_owned()).await?,
        };
        let Some(row) = row.filter(|_| verified) else {
            self.audit(
                event_ctx(
                    Event {
                        outcome: "failed",
                        user_email: Some(&normalized),
                        ..Event::new("login.failed", &Actor::Anonymous)
                    },
                    ctx,
                )
                .detail(serde_json::json!({ "method": "pwd" })),
            )
            .await;
            return Ok(Err(LoginRefusal::BadCredentials));
        };
        self.login_succeeded(&normalized).await?;
        if row.disabled {
            self.audit(
                event_ctx(
                    Event { outcome: "refused", ..Event::new("login.failed", &Actor::Anonymous) }
                        .user(&row.id, &row.email_normalized),
                    ctx,
                )
                .detail(serde_json::json!({ "method": "pwd", "reason": "disabled" })),
            )
            .await;
            return Ok(Err(LoginRefusal::Disabled));
        }
        self.first_factor_complete(row.into(), "pwd", ctx).await.map(Ok)
    }

    /// Sign-up. The answer is the same whether or not the address has an
    /// account: a new account gets a verification mail, an existing one a
    /// note that it already exists.
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        name: Option<String>,
        ctx: &RequestContext,
    ) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        self.address_attempt("signup", ctx.ip.as_deref(), l.signup_per_minute, std::time::Duration::from_secs(60))
            .await?;
        let (shown, normalized) = normalize_email(email)?;
        // The same refusal whether or not the address has an account.
        crate::disposable::check_self_signup(&self.settings.signup, &normalized)?;
        let mut inputs = vec![shown.as_str()];
        if let Some(n) = &name {
            inputs.push(n);
        }
        self.password_policy.check(password, &inputs)?;
        let created = crate::accounts::create_user_from(
            self,
            crate::accounts::NewUser {
                email: shown.clone(),
                name,
                password: Some(password.to_owned()),
                email_verified: false,
                admin: false,
            },
            &Actor::Anonymous,
            Some(ctx),
        )
        .await;
        match created {
            Ok(user) => {
                self.audit(event_ctx(
                    Event::new("signup", &Actor::User(user.id.clone())).user(&user.id, &normalized),
                    ctx,
                ))
                .await;
                self.send_verification(&user).await?;
            }
            Err(CoreError::Conflict(_)) => {
                self.audit(event_ctx(
                    Event {
                        outcome: "duplicate",
                        user_email: Some(&normalized),
                        ..Event::new("signup", &Actor::Anonymous)
                    },
                    ctx,
                ))
                .await;
                if self.account_mail_allowed("exists", &normalized, l.account_mails_per_hour).await? {
                    let base = &self.settings.server.public_url;
                    let mail = crate::mail::account_exists(
                        &shown,
                        &format!("{base}/login"),
                        &format!("{base}/password/forgot"),
                    )
                    .map_err(|e| CoreError::Internal(e.to_string()))?;
                    self.queue_mail(mail).await;
                }
            }
            Err(other) => return Err(other),
        }
        Ok(())
    }

    /// Sends (again) a verification link for the user's address.
    pub async fn send_verification(&self, user: &User) -> Result<(), CoreError> {
        let token = random_token()?;
        let record = LinkRecord { user_id: user.id.clone(), email: user.email.clone() };
        let ttl = self.settings.lifetimes.verification_link;
        let key = hashed_key(VERIFY, &token);
        self.store
            .put(&key, &serde_json::to_vec(&record).map_err(|e| CoreError::Internal(e.to_string()))?, ttl)
            .await?;
        self.remember_user_key(&user.id, &key, ttl).await?;
        let link = format!("{}/email/verify?token={token}", self.settings.server.public_url);
        let mail =
            crate::mail::verify_email(&user.email, &link, ttl).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.queue_mail(mail).await;
        Ok(())
    }

    async fn peek_link(&self, kind: &str, token: &str) -> Result<Option<LinkRecord>, CoreError> {
        if token.len() != 43 {
            return Ok(None);
        }
        Ok(self.store.get(&hashed_key(kind, token)).await?.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// The account (id, address) a verification link is for, while it is valid.
    pub async fn verification_target(&self, token: &str) -> Result<Option<(String, String)>, CoreError> {
        Ok(self.peek_link(VERIFY, token).await?.map(|r| (r.user_id, r.email)))
    }

    /// Uses a verification link (once). The page shows the address and asks
    /// for one click (SPEC §5), in any browser. Who clicks decides what else
    /// happens, so that an account someone else created with this address
    /// cannot become "verified" with their password:
    /// - the account's owner, signed in here, or anyone giving its password:
    ///   the address is confirmed (and, with the password, they are signed in);
    /// - a reader of the mailbox alone, while the address was never verified:
    ///   the address is confirmed, the account's password and sessions are
    ///   dropped (SPEC §5: no pre-registered account survives its real
    ///   owner), and they choose a password through a fresh reset link.
    pub async fn use_verification_link(
        &self,
        token: &str,
        signed_in_user: Option<&str>,
        password: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<VerifyOutcome, CoreError> {
        let Some(record) = self.peek_link(VERIFY, token).await? else { return Ok(VerifyOutcome::Invalid) };
        let owner_here = signed_in_user == Some(record.user_id.as_str());
        let mut proved_password = false;
        if !owner_here && let Some(pw) = password.filter(|p| !p.is_empty()) {
            let normalized = record.email.to_lowercase();
            self.login_attempt(&normalized, ctx.ip.as_deref(), false).await?;
            let id = record.user_id.clone();
            let row = self.db.run(move |conn| q::find_by_id(conn, &id)).await?;
            let ok = match row.and_then(|r| r.password_hash) {
                Some(h) => self.hasher.verify(pw.to_owned(), h).await?,
                None => self.hasher.verify_dummy(pw.to_owned()).await?,
            };
            if !ok {
                return Ok(VerifyOutcome::WrongPassword);
            }
            self.login_succeeded(&normalized).await?;
            proved_password = true;
        }
        if self.store.take(&hashed_key(VERIFY, token)).await?.is_none() {
            return Ok(VerifyOutcome::Invalid); // used in the meantime
        }
        let drop_password = !owner_here && !proved_password;
        let now = self.clock.now_naive();
        let (id, email) = (record.user_id.clone(), record.email.clone());
        let row = self
            .db
            .run(move |conn| {
                let Some(mut row) = q::find_by_id(conn, &id)? else { return Ok(None) };
                if row.disabled || !row.email.eq_ignore_ascii_case(&email) {
                    return Ok(None);
                }
                let first_proof = !row.email_verified;
                if drop_password && first_proof {
                    q::clear_password_and_verify(conn, &row.id, now)?;
                    // Whatever the pre-registrant allowed apps or linked goes too.
                    latchkey_db::consents::delete_for_user(conn, &row.id)?;
                    latchkey_db::identities::delete_for_user(conn, &row.id)?;
                    latchkey_db::mfa::delete_all_for_user(conn, &row.id)?;
                    row.password_hash = None;
                } else {
                    q::set_email_verified(conn, &row.id, now)?;
                }
                row.email_verified = true;
                Ok(Some((row, first_proof)))
            })
            .await?;
        let Some((row, first_proof)) = row else { return Ok(VerifyOutcome::Invalid) };
        self.users.forget(&row.id);
        let dropped = drop_password && first_proof;
        let ended = if dropped {
            // No pre-registered account survives its real owner: its
            // sessions and tokens go with the password.
            let ended = self.end_other_sessions(&row.id, None).await?.len();
            self.revoke_all_user_tokens(&row.id).await?;
            ended
        } else {
            0
        };
        self.audit(
            event_ctx(
                Event::new("email.verified", &Actor::User(row.id.clone())).user(&row.id, &row.email_normalized),
                ctx,
            )
            .detail(serde_json::json!({ "password_dropped": dropped, "sessions_ended": ended })),
        )
        .await;
        let user = User::from(row);
        if dropped {
            return Ok(VerifyOutcome::ChoosePassword(self.mint_reset_link(&user).await?));
        }
        if proved_password {
            return Ok(VerifyOutcome::SignedIn(Box::new(self.first_factor_complete(user, "pwd", ctx).await?)));
        }
        Ok(VerifyOutcome::Verified(user))
    }

    /// A reset link for `user`, kept in the store like a mailed one.
    async fn mint_reset_link(&self, user: &User) -> Result<String, CoreError> {
        let token = random_token()?;
        let record = LinkRecord { user_id: user.id.clone(), email: user.email.clone() };
        let (key, ttl) = (hashed_key(RESET, &token), self.settings.lifetimes.reset_link);
        self.store
            .put(&key, &serde_json::to_vec(&record).map_err(|e| CoreError::Internal(e.to_string()))?, ttl)
            .await?;
        self.remember_user_key(&user.id, &key, ttl).await?;
        Ok(token)
    }

    /// Forgot-password: always the same answer; a link goes out only when the
    /// account exists, is enabled, and has not had too many this hour.
    pub async fn request_password_reset(&self, email: &str, ctx: &RequestContext) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        self.address_attempt(
            "reset",
            ctx.ip.as_deref(),
            l.reset_requests_per_address_per_hour,
            std::time::Duration::from_secs(3600),
        )
        .await?;
        let (_, normalized) = normalize_email(email)?;
        // Whether the address has an account decides what happens next:
        // after the answer, so the answer takes as long either way.
        let core = self.clone();
        let ctx = ctx.clone();
        self.in_background("password reset mail", async move { core.send_reset_link(normalized, &ctx).await });
        Ok(())
    }

    async fn send_reset_link(&self, normalized: String, ctx: &RequestContext) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        let n = normalized.clone();
        let row = self.db.run(move |conn| q::find_by_email(conn, &n)).await?;
        let Some(row) = row.filter(|r| !r.disabled) else { return Ok(()) };
        if !self.account_mail_allowed(RESET, &normalized, l.reset_mails_per_account_per_hour).await? {
            return Ok(());
        }
        let token = random_token()?;
        let ttl = self.settings.lifetimes.reset_link;
        let record = LinkRecord { user_id: row.id.clone(), email: row.email.clone() };
        let key = hashed_key(RESET, &token);
        self.store
            .put(&key, &serde_json::to_vec(&record).map_err(|e| CoreError::Internal(e.to_string()))?, ttl)
            .await?;
        self.remember_user_key(&row.id, &key, ttl).await?;
        let link = format!("{}/password/reset?token={token}", self.settings.server.public_url);
        let mail =
            crate::mail::reset_password(&row.email, &link, ttl).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.queue_mail(mail).await;
        self.audit(event_ctx(
            Event::new("password.reset_requested", &Actor::Anonymous).user(&row.id, &row.email_normalized),
            ctx,
        ))
        .await;
        Ok(())
    }

    /// The address a reset link is for, while it is valid.
    pub async fn reset_email(&self, token: &str) -> Result<Option<String>, CoreError> {
        Ok(self.peek_link(RESET, token).await?.map(|r| r.email))
    }

    /// Sets a new password through a reset link (once). Ends every session
    /// of the account; signs nobody in. None when the link is not valid.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<Option<User>, CoreError> {
        let Some(record) = self.peek_link(RESET, token).await? else { return Ok(None) };
        // Check the new password before using up the link, so a weak one can
        // be corrected.
        self.password_policy.check(new_password, &[&record.email])?;
        let hash = self.hasher.hash(new_password.to_owned()).await?;
        if self.store.take(&hashed_key(RESET, token)).await?.is_none() {
            return Ok(None); // used in the meantime
        }
        let now = self.clock.now_naive();
        let id = record.user_id.clone();
        let row = self
            .db
            .run(move |conn| {
                let Some(mut row) = q::find_by_id(conn, &id)? else { return Ok(None) };
                if row.disabled || !row.email.eq_ignore_ascii_case(&record.email) {
                    return Ok(None);
                }
                // Opening the link proved the address; if it never was, what
                // someone else may have set up on the account goes.
                if !row.email_verified {
                    latchkey_db::consents::delete_for_user(conn, &row.id)?;
                    latchkey_db::identities::delete_for_user(conn, &row.id)?;
                    latchkey_db::mfa::delete_all_for_user(conn, &row.id)?;
                }
                q::set_password(conn, &row.id, &hash, true, now)?;
                row.email_verified = true;
                row.password_hash = Some(hash);
                Ok(Some(row))
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let ended = self.end_other_sessions(&row.id, None).await?.len();
        self.revoke_all_user_tokens(&row.id).await?;
        self.audit(
            event_ctx(
                Event::new("password.reset", &Actor::User(row.id.clone())).user(&row.id, &row.email_normalized),
                ctx,
            )
            .detail(serde_json::json!({ "sessions_ended": ended })),
        )
        .await;
        self.notify_password_changed(&row.email).await;
        Ok(Some(row.into()))
    }

    async fn notify_password_changed(&self, email: &str) {
        let forgot = format!("{}/password/forgot", self.settings.server.public_url);
        match crate::mail::password_changed(email, &forgot) {
            Ok(m) => self.queue_mail(m).await,
            Err(e) => tracing::error!(error = %e, "could not build the password-changed mail"),
        }
    }

    /// Changes the password of the signed-in user: needs the current one and
    /// a recent sign-in. The session gets a new id; every other session ends.
    pub async fn change_password(
        &self,
        session: &Session,
        current: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(String, Session), CoreError> {
        if !self.recently_authenticated(session) {
            return Err(CoreError::ReauthenticationRequired);
        }
        let id = session.record.user_id.clone();
        let row = self.db.run(move |conn| q::find_by_id(conn, &id)).await?.ok_or(CoreError::NotFound("user"))?;
        // Guessing the current password from a stolen session counts like any
        // other failed sign-in, per account too.
        self.login_attempt(&row.email_normalized, ctx.ip.as_deref(), false).await?;
        // An account without a password (links, upstream sign-in) sets its
        // first one on the strength of the recent sign-in alone.
        let ok = match row.password_hash.clone() {
            Some(h) => self.hasher.verify(current.to_owned(), h).await?,
            None => true,
        };
        if !ok {
            self.audit(event_ctx(
                Event { outcome: "failed", ..Event::new("password.changed", &Actor::User(row.id.clone())) }
                    .user(&row.id, &row.email_normalized),
                ctx,
            ))
            .await;
            return Err(CoreError::invalid("Current password", "The current password is not correct."));
        }
        self.login_succeeded(&row.email_normalized).await?;
        let mut inputs = vec![row.email.as_str()];
        if let Some(n) = &row.name {
            inputs.push(n);
        }
        self.password_policy.check(new_password, &inputs)?;
        let hash = self.hasher.hash(new_password.to_owned()).await?;
        let now = self.clock.now_naive();
        let uid = row.id.clone();
        self.db.run(move |conn| q::set_password(conn, &uid, &hash, false, now)).await?;
        let (new_id, new_session) = self.rotate_session(session, true).await?;
        let sids = self.end_other_sessions(&row.id, Some(&new_session.handle)).await?;
        self.revoke_session_tokens(&row.id, &sids).await?;
        let ended = sids.len();
        self.audit(
            event_ctx(
                Event::new("password.changed", &Actor::User(row.id.clone())).user(&row.id, &row.email_normalized),
                ctx,
            )
            .detail(serde_json::json!({ "sessions_ended": ended })),
        )
        .await;
        self.notify_password_changed(&row.email).await;
        Ok((new_id, new_session))
    }

    /// The user a session belongs to, if the account is still usable.
    pub async fn session_user(&self, session: &Session) -> Result<Option<User>, CoreError> {
        let id = session.record.user_id.clone();
        Ok(self.db.run(move |conn| q::find_by_id(conn, &id)).await?.filter(|r| !r.disabled).map(User::from))
    }

    /// Signs out: ends this session (and, when `everywhere`, the others).
    pub async fn sign_out(
        &self,
        session: &Session,
        everywhere: bool,
        ctx: &RequestContext,
    ) -> Result<usize, CoreError> {
        let user_id = session.record.user_id.clone();
        let ended = if everywhere {
            let sids = self.end_other_sessions(&user_id, Some(&session.handle)).await?;
            self.revoke_session_tokens(&user_id, &sids).await?;
            sids.len()
        } else {
            // What this session was given ends with it.
            let ended = self.end_session(&user_id, &session.handle).await?;
            self.revoke_session_tokens(&user_id, &[session_sid(session)]).await?;
            usize::from(ended)
        };
        let kind = if everywhere { "logout.everywhere" } else { "logout" };
        self.audit(
            event_ctx(Event::new(kind, &Actor::User(user_id.clone())), ctx)
                .detail(serde_json::json!({ "sessions_ended": ended }))
                .with_user_id(&user_id),
        )
        .await;
        Ok(ended)
    }

    /// Ends another of the user's sessions from the account page.
    pub async fn revoke_session(
        &self,
        session: &Session,
        handle: &str,
        ctx: &RequestContext,
    ) -> Result<bool, CoreError> {
        let user_id = session.record.user_id.clone();
        if handle == session.handle {
            return Ok(false);
        }
        let sid = self.session_sid(&user_id, handle).await?;
        let ended = self.end_session(&user_id, handle).await?;
        if let Some(sid) = sid.filter(|_| ended) {
            self.revoke_session_tokens(&user_id, &[sid]).await?;
        }
        if ended {
            self.audit(
                event_ctx(Event::new("session.revoked", &Actor::User(user_id.clone())), ctx).with_user_id(&user_id),
            )
            .await;
        }
        Ok(ended)
    }
}

/// An audit event detached from borrowed data, to move into a blocking task.
struct OwnedEvent {
    kind: String,
    outcome: String,
    actor: String,
    user_id: Option<String>,
    user_email: Option<String>,
    client_addr: Option<String>,
    user_agent: Option<String>,
    detail: serde_json::Value,
}

impl OwnedEvent {
    fn from(e: &Event<'_>) -> Self {
        OwnedEvent {
            kind: e.kind.to_owned(),
            outcome: e.outcome.to_owned(),
            actor: e.actor.as_text(),
            user_id: e.user_id.map(str::to_owned),
            user_email: e.user_email.map(str::to_owned),
            client_addr: e.client_addr.map(str::to_owned),
            user_agent: e.user_agent.map(str::to_owned),
            detail: e.detail.clone(),
        }
    }

    fn actor(&self) -> Actor {
        match self.actor.split_once(':') {
            Some(("user", id)) => Actor::User(id.to_owned()),
            Some(("admin", id)) => Actor::Admin(id.to_owned()),
            Some(("apikey", prefix)) => Actor::ApiKey(prefix.to_owned()),
            Some(("system", task)) => Actor::System(task.to_owned()),
            _ if self.actor == "cli" => Actor::Cli,
            _ => Actor::Anonymous,
        }
    }

    fn event<'a>(&'a self, actor: &'a Actor) -> Event<'a> {
        Event {
            kind: &self.kind,
            outcome: &self.outcome,
            actor,
            user_id: self.user_id.as_deref(),
            user_email: self.user_email.as_deref(),
            client_addr: self.client_addr.as_deref(),
            user_agent: self.user_agent.as_deref(),
            detail: self.detail.clone(),
        }
    }
}
