//! Sign-in links by mail ("magic links", SPEC §4–5): a 256-bit single-use
//! token stored only as its hash, valid `lifetimes.magic_link` (10 min),
//! rate limited per address and per client address, and the same answer
//! whether or not the address has an account.
//!
//! The link is bound to the browser that asked (a cookie whose hash is in
//! the record): opened there it signs in at once, and an app waiting for the
//! sign-in continues; opened anywhere else, a page shows the address and
//! asks for one click (so a mail scanner's GET never uses it), and a pending
//! authorization request never continues there. Using a link proves the
//! address: it is marked verified, and if it never was, the account's
//! password, sessions and tokens are dropped first (no pre-registered
//! account survives its real owner).

use serde::{Deserialize, Serialize};

use crate::Core;
use crate::accounts::{NewUser, User, normalize_email};
use crate::audit::{Actor, Event};
use crate::auth::{AfterFirstFactor, event_ctx};
use crate::error::CoreError;
use crate::sessions::RequestContext;
use crate::store::hashed_key;
use crate::tokens::{hash_secret, random_token};

const MAGIC: &str = "magic";
/// The RFC 8176 method of a link sign-in: a one-time secret sent out of band.
pub const AMR: &str = "otp";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MagicRecord {
    email: String,
    email_normalized: String,
    /// SHA-256 of the asking browser's link cookie.
    browser: String,
    /// Where that browser continues (a local path).
    next: String,
}

/// What a link is, before it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    pub email: String,
    /// Opened in the browser that asked for it.
    pub same_browser: bool,
}

/// A used link: the sign-in, and where the browser goes.
#[derive(Debug)]
pub struct LinkSignIn {
    pub signed_in: AfterFirstFactor,
    /// The asking browser's `next`, only when this is that browser.
    pub next: Option<String>,
}

impl Core {
    /// Sends a sign-in link to `email` if it may have one; answers the same
    /// either way. `browser` is the asking browser's link cookie.
    pub async fn request_magic_link(
        &self,
        email: &str,
        browser: &str,
        next: &str,
        ctx: &RequestContext,
    ) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        self.address_attempt(MAGIC, ctx.ip.as_deref(), l.magic_link_requests_per_address_per_hour, HOUR).await?;
        let (shown, normalized) = normalize_email(email)?;
        // Where a link may create an account it is a self sign-up: an address
        // at a disposable-mail domain is refused, with or without an account
        // (the same answer either way).
        if self.settings.magic_links.create_accounts {
            crate::disposable::check_self_signup(&self.settings.signup, &normalized)?;
        }
        // Whether the address has an account decides what happens next:
        // after the answer, so the answer takes as long either way.
        let core = self.clone();
        let (browser, next, ctx) = (browser.to_owned(), next.to_owned(), ctx.clone());
        self.in_background("sign-in link", async move {
            core.send_magic_link(shown, normalized, &browser, &next, &ctx).await
        });
        Ok(())
    }

    async fn send_magic_link(
        &self,
        shown: String,
        normalized: String,
        browser: &str,
        next: &str,
        ctx: &RequestContext,
    ) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        let n = normalized.clone();
        let row = self.db.run(move |conn| latchkey_db::users::find_by_email(conn, &n)).await?;
        let (to, user_id) = match row {
            Some(r) if r.disabled => return Ok(()),
            Some(r) => (r.email, Some(r.id)),
            None if self.settings.magic_links.create_accounts => (shown, None),
            None => return Ok(()),
        };
        if !self.account_mail_allowed(MAGIC, &normalized, l.magic_link_mails_per_account_per_hour).await? {
            return Ok(());
        }
        let token = random_token()?;
        let ttl = self.settings.lifetimes.magic_link;
        let record = MagicRecord {
            email: to.clone(),
            email_normalized: normalized.clone(),
            browser: hash_secret(browser),
            next: next.to_owned(),
        };
        let json = serde_json::to_vec(&record).map_err(|e| CoreError::Internal(e.to_string()))?;
        let key = hashed_key(MAGIC, &token);
        self.store.put(&key, &json, ttl).await?;
        if let Some(id) = &user_id {
            self.remember_user_key(id, &key, ttl).await?;
        }
        let link = format!("{}/login/link?token={token}", self.settings.server.public_url);
        let mail = crate::mail::magic_link(&to, &link, ttl).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.queue_mail(mail).await;
        let mut event = event_ctx(Event::new("login.link_requested", &Actor::Anonymous), ctx);
        event.user_email = Some(&normalized);
        self.audit(event).await;
        Ok(())
    }

    async fn magic_record(&self, token: &str) -> Result<Option<MagicRecord>, CoreError> {
        if token.len() != 43 {
            return Ok(None);
        }
        Ok(self
            .store
            .get(&hashed_key(MAGIC, token))
            .await?
            .and_then(|raw| serde_json::from_slice::<MagicRecord>(&raw).ok()))
    }

    /// What a link is for, while it is valid (nothing is used).
    pub async fn magic_link_target(&self, token: &str, browser: Option<&str>) -> Result<Option<LinkTarget>, CoreError> {
        Ok(self.magic_record(token).await?.map(|r| LinkTarget {
            same_browser: browser.is_some_and(|b| crate::tokens::verify_secret(b, &r.browser)),
            email: r.email,
        }))
    }

    /// Uses a link (once): proves the address and signs in.
    pub async fn use_magic_link(
        &self,
        token: &str,
        browser: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Option<LinkSignIn>, CoreError> {
        if token.len() != 43 {
            return Ok(None);
        }
        let Some(raw) = self.store.take(&hashed_key(MAGIC, token)).await? else { return Ok(None) };
        let record: MagicRecord = serde_json::from_slice(&raw).map_err(|e| CoreError::Internal(e.to_string()))?;
        let same_browser = browser.is_some_and(|b| crate::tokens::verify_secret(b, &record.browser));
        let Some(user) = self.prove_address(&record.email, &record.email_normalized, ctx).await? else {
            return Ok(None);
        };
        let signed_in = self.first_factor_complete(user, AMR, ctx).await?;
        Ok(Some(LinkSignIn { signed_in, next: same_browser.then_some(record.next) }))
    }

    /// The account for an address just proven by its owner: confirmed, and
    /// cleared of what someone else may have set if it never was; created
    /// when links may create accounts. `None` for a disabled account.
    pub(crate) async fn prove_address(
        &self,
        email: &str,
        normalized: &str,
        ctx: &RequestContext,
    ) -> Result<Option<User>, CoreError> {
        let n = normalized.to_owned();
        let now = self.clock.now_naive();
        let found = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let Some(mut row) = latchkey_db::users::find_by_email(conn, &n)? else { return Ok(None) };
                    let first_proof = !row.email_verified;
                    if row.disabled {
                        return Ok(Some((row, false)));
                    }
                    if first_proof {
                        latchkey_db::users::clear_password_and_verify(conn, &row.id, now)?;
                        // Whatever the pre-registrant allowed apps or linked goes too.
                        latchkey_db::consents::delete_for_user(conn, &row.id)?;
                        latchkey_db::identities::delete_for_user(conn, &row.id)?;
                        latchkey_db::mfa::delete_all_for_user(conn, &row.id)?;
                        row.password_hash = None;
                        row.email_verified = true;
                    }
                    Ok(Some((row, first_proof)))
                })
            })
            .await?;
        match found {
            Some((row, _)) if row.disabled => Ok(None),
            Some((row, first_proof)) => {
                if first_proof {
                    self.users.forget(&row.id);
                    // No pre-registered account survives its real owner.
                    let ended = self.end_other_sessions(&row.id, None).await?.len();
                    self.revoke_all_user_tokens(&row.id).await?;
                    self.audit(
                        event_ctx(
                            Event::new("email.verified", &Actor::User(row.id.clone()))
                                .user(&row.id, &row.email_normalized),
                            ctx,
                        )
                        .detail(serde_json::json!({ "password_dropped": true, "sessions_ended": ended })),
                    )
                    .await;
                }
                Ok(Some(User::from(row)))
            }
            None if self.settings.magic_links.create_accounts => {
                // A link sent before the domain was listed creates nothing.
                if crate::disposable::check_self_signup(&self.settings.signup, normalized).is_err() {
                    return Ok(None);
                }
                let new = NewUser { email: email.to_owned(), email_verified: true, ..Default::default() };
                match crate::accounts::create_user_from(self, new, &Actor::Anonymous, Some(ctx)).await {
                    Ok(user) => Ok(Some(user)),
                    // Created by a concurrent request: use that one.
                    Err(CoreError::Conflict(_)) => Box::pin(self.prove_address(email, normalized, ctx)).await,
                    Err(e) => Err(e),
                }
            }
            None => Ok(None),
        }
    }
}

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
