//! Scheduled work: retention (what is kept how long) and key rotation. The
//! server runs a round every minute; each round takes a lock in the store,
//! so with several instances only one does the work.
//!
//! What a round removes, by the `what` label of
//! `latchkey_retention_purged_total` (see [`Purge`]):
//!
//! - `store`: expired entries of the SQL store (`Store::sweep`). Every
//!   one-time token and short-lived flow lives in the store with its
//!   lifetime: verification, reset and sign-in links, authorization codes
//!   and their tombstones, authorization requests, upstream sign-in flows,
//!   WebAuthn ceremonies, sign-ins waiting for a second factor, sessions,
//!   rate-limit counters, revocation markers and locks. A used one is
//!   deleted as it is used (`take`); an unused one waits here for its
//!   expiry. With Redis, entries expire by themselves and nothing is swept.
//! - `audit`: audit events older than `retention.audit_days` (730).
//! - `refresh_tokens`, `token_families`: refresh tokens past their idle
//!   expiry, spent or not; families that ended or were revoked more than a
//!   day ago, and families older than a day with no token left
//!   (`Core::purge_refresh_tokens`).
//! - `signing_keys`: keys withdrawn more than 30 days ago.
//! - `unverified_accounts`: accounts whose address was never verified,
//!   created more than `retention.unverified_days` (30) days ago, deleted
//!   like any account (see [`purge_unverified`]).
//! - `webhook_attempts`: lines of the webhook delivery log older than 30
//!   days (`webhooks::ATTEMPT_LOG_DAYS`).
//!
//! Not here, because nothing in them outlives its use: mail in
//! `mail_outbox` and calls in `deliveries` are deleted by their workers once
//! sent or given up (`MAX_ATTEMPTS`); upstream identities, second factors,
//! recovery codes, consents and group memberships last as long as their
//! account and go with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDateTime;
use latchkey_db::users::{self as users_q, UserRow};

use crate::Core;
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;

/// How often the server runs a round.
pub const INTERVAL: Duration = Duration::from_secs(60);
const LOCK_TTL: Duration = Duration::from_secs(300);
/// At most this many never-verified accounts are deleted in one round (each
/// ends sessions and writes to the store); the rest wait for the next.
pub const UNVERIFIED_BATCH: i64 = 100;
/// The actor of what retention deletes, in the audit log: `system:retention`.
pub const RETENTION_ACTOR: &str = "retention";

/// What retention removes: the `what` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    Store,
    Audit,
    RefreshTokens,
    TokenFamilies,
    SigningKeys,
    UnverifiedAccounts,
    WebhookAttempts,
}

impl Purge {
    pub const ALL: [Purge; 7] = [
        Purge::Store,
        Purge::Audit,
        Purge::RefreshTokens,
        Purge::TokenFamilies,
        Purge::SigningKeys,
        Purge::UnverifiedAccounts,
        Purge::WebhookAttempts,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Purge::Store => "store",
            Purge::Audit => "audit",
            Purge::RefreshTokens => "refresh_tokens",
            Purge::TokenFamilies => "token_families",
            Purge::SigningKeys => "signing_keys",
            Purge::UnverifiedAccounts => "unverified_accounts",
            Purge::WebhookAttempts => "webhook_attempts",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many of each this instance's rounds removed since it started (what
/// `/metrics` reports as `latchkey_retention_purged_total`).
#[derive(Debug, Default)]
pub struct PurgeTotals {
    counts: [AtomicU64; Purge::ALL.len()],
}

impl PurgeTotals {
    pub fn get(&self, what: Purge) -> u64 {
        self.counts[what.index()].load(Ordering::Relaxed)
    }

    fn add(&self, what: Purge, n: usize) {
        self.counts[what.index()].fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Expired store entries (SQL store only).
    pub swept: usize,
    pub audit_purged: usize,
    pub keys_purged: usize,
    /// Refresh tokens.
    pub refresh_purged: usize,
    /// Refresh-token families.
    pub families_purged: usize,
    /// Accounts whose address was never verified.
    pub unverified_purged: usize,
    /// Lines of the webhook delivery log.
    pub webhook_attempts_purged: usize,
    pub keys_rotated: usize,
}

impl Round {
    pub fn purged(&self, what: Purge) -> usize {
        match what {
            Purge::Store => self.swept,
            Purge::Audit => self.audit_purged,
            Purge::RefreshTokens => self.refresh_purged,
            Purge::TokenFamilies => self.families_purged,
            Purge::SigningKeys => self.keys_purged,
            Purge::UnverifiedAccounts => self.unverified_purged,
            Purge::WebhookAttempts => self.webhook_attempts_purged,
        }
    }

    fn anything(&self) -> bool {
        self.keys_rotated > 0 || Purge::ALL.iter().any(|w| self.purged(*w) > 0)
    }
}

/// One round; `None` when another instance holds the lock.
pub async fn run_once(core: &Core) -> Result<Option<Round>, CoreError> {
    let Some(lock) = core.store.try_lock("maintenance", LOCK_TTL).await? else {
        return Ok(None);
    };
    let mut round = Round::default();
    let result = steps(core, &mut round).await;
    if let Err(e) = core.store.unlock(&lock).await {
        tracing::warn!(error = %e, "could not release the maintenance lock; it expires by itself");
    }
    result.map(|()| Some(round))
}

/// The steps of a round, each counted as soon as it is done (so a later
/// step's failure does not hide what the earlier ones removed).
async fn steps(core: &Core, round: &mut Round) -> Result<(), CoreError> {
    let totals = &core.purged;
    round.swept = core.store.sweep().await?;
    totals.add(Purge::Store, round.swept);
    round.audit_purged = audit::purge_expired(core).await?;
    totals.add(Purge::Audit, round.audit_purged);
    round.keys_purged = core.purge_withdrawn_keys().await?;
    totals.add(Purge::SigningKeys, round.keys_purged);
    let refresh = core.purge_refresh_tokens().await?;
    (round.refresh_purged, round.families_purged) = (refresh.tokens, refresh.families);
    totals.add(Purge::RefreshTokens, refresh.tokens);
    totals.add(Purge::TokenFamilies, refresh.families);
    round.unverified_purged = purge_unverified(core, totals).await?;
    round.webhook_attempts_purged = core.purge_webhook_attempts().await?;
    totals.add(Purge::WebhookAttempts, round.webhook_attempts_purged);
    round.keys_rotated = core.rotate_due_keys().await?;
    Ok(())
}

/// Deletes accounts whose address was never verified, created more than
/// `retention.unverified_days` ago (none when it is 0), at most
/// [`UNVERIFIED_BATCH`] a round, oldest first. Kept whatever their age:
/// admins, disabled accounts (an admin's decision) and accounts with a way
/// in that does not depend on the address — a linked upstream identity or a
/// passkey. Returns how many went.
pub async fn purge_unverified(core: &Core, totals: &PurgeTotals) -> Result<usize, CoreError> {
    let Some(days) = core.settings.retention.unverified_days else { return Ok(0) };
    let before = core.clock.now_naive() - chrono::Duration::days(i64::try_from(days).unwrap_or(3650));
    let candidates = core
        .db
        .run(move |conn| users_q::unverified_before(conn, before, crate::webauthn::KIND_PASSKEY, UNVERIFIED_BATCH))
        .await?;
    let mut deleted = 0;
    for row in candidates {
        if delete_unverified(core, row, before).await? {
            deleted += 1;
            totals.add(Purge::UnverifiedAccounts, 1);
        }
    }
    Ok(deleted)
}

/// Deletes one account through the path of every account deletion
/// (`privacy::erase_account`, then `Core::account_erased`): the row (its
/// factors, identities, consents, refresh tokens and memberships go with
/// it), mail still queued to it, `user.deleted` and the pseudonymisation of
/// its audit events in one transaction, then its sessions end, its access
/// tokens are refused and its store keys go. Inside the transaction it is
/// first checked again that it still qualifies (its owner may just have
/// verified the address). No mail: the address was never shown to be
/// anyone's.
async fn delete_unverified(core: &Core, row: UserRow, before: NaiveDateTime) -> Result<bool, CoreError> {
    let now = core.clock.now_naive();
    let id = row.id.clone();
    let pseudonym = crate::privacy::new_pseudonym()?;
    let deleted = core
        .db
        .run(move |conn| {
            latchkey_db::transaction(conn, |conn| {
                let Some(user) = users_q::find_by_id(conn, &row.id)? else { return Ok(false) };
                let qualifies = !user.email_verified && !user.admin && !user.disabled && user.created_at < before;
                if !qualifies
                    || !latchkey_db::identities::for_user(conn, &user.id)?.is_empty()
                    || latchkey_db::mfa::credentials_for(conn, &user.id)?
                        .iter()
                        .any(|c| c.kind == crate::webauthn::KIND_PASSKEY)
                {
                    return Ok(false);
                }
                let actor = Actor::System(RETENTION_ACTOR.to_owned());
                let event = Event::new("user.deleted", &actor).detail(serde_json::json!({ "reason": "unverified" }));
                crate::privacy::erase_account(conn, now, &user, event, &pseudonym)?;
                Ok(true)
            })
        })
        .await?;
    if deleted {
        core.account_erased(&id).await?;
    }
    Ok(deleted)
}

/// Runs rounds forever (spawn it); errors are logged and the next round
/// tries again.
pub async fn run_forever(core: Core) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match run_once(&core).await {
            Ok(Some(r)) if r.anything() => {
                tracing::info!(
                    swept = r.swept,
                    audit_purged = r.audit_purged,
                    keys_purged = r.keys_purged,
                    refresh_purged = r.refresh_purged,
                    families_purged = r.families_purged,
                    unverified_purged = r.unverified_purged,
                    webhook_attempts_purged = r.webhook_attempts_purged,
                    keys_rotated = r.keys_rotated,
                    "maintenance"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "maintenance round failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_totals_count_per_label() {
        let labels: std::collections::HashSet<&str> = Purge::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(labels.len(), Purge::ALL.len());
        for (i, p) in Purge::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
        let totals = PurgeTotals::default();
        totals.add(Purge::Audit, 3);
        totals.add(Purge::Audit, 2);
        totals.add(Purge::UnverifiedAccounts, 1);
        assert_eq!(totals.get(Purge::Audit), 5);
        assert_eq!(totals.get(Purge::UnverifiedAccounts), 1);
        assert_eq!(totals.get(Purge::Store), 0);
    }

    #[test]
    fn a_round_reports_each_purge() {
        let r = Round { swept: 1, audit_purged: 2, refresh_purged: 3, families_purged: 4, ..Round::default() };
        assert_eq!(r.purged(Purge::Store), 1);
        assert_eq!(r.purged(Purge::TokenFamilies), 4);
        assert!(r.anything());
        assert!(!Round::default().anything());
    }
}
