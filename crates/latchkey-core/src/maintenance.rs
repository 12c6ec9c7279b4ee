//! Scheduled work: sweeping expired store entries (SQL store), purging
//! audit events past their retention, withdrawn keys and spent refresh
//! tokens. Each round takes a lock in the store,
//! so with several instances only one does the work.

use std::time::Duration;

use crate::Core;
use crate::error::CoreError;

/// How often the server runs a round.
pub const INTERVAL: Duration = Duration::from_secs(60);
const LOCK_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub swept: usize,
    pub audit_purged: usize,
    pub keys_purged: usize,
    pub refresh_purged: usize,
    pub keys_rotated: usize,
}

/// One round; `None` when another instance holds the lock.
pub async fn run_once(core: &Core) -> Result<Option<Round>, CoreError> {
    let Some(lock) = core.store.try_lock("maintenance", LOCK_TTL).await? else {
        return Ok(None);
    };
    let result = async {
        let swept = core.store.sweep().await?;
        let audit_purged = crate::audit::purge_expired(core).await?;
        let keys_purged = core.purge_withdrawn_keys().await?;
        let refresh_purged = core.purge_refresh_tokens().await?;
        let keys_rotated = core.rotate_due_keys().await?;
        Ok::<_, CoreError>(Round { swept, audit_purged, keys_purged, refresh_purged, keys_rotated })
    }
    .await;
    if let Err(e) = core.store.unlock(&lock).await {
        tracing::warn!(error = %e, "could not release the maintenance lock; it expires by itself");
    }
    result.map(Some)
}

/// Runs rounds forever (spawn it); errors are logged and the next round
/// tries again.
pub async fn run_forever(core: Core) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match run_once(&core).await {
            Ok(Some(r)) if r.swept + r.audit_purged + r.keys_purged + r.refresh_purged + r.keys_rotated > 0 => {
                tracing::info!(
                    swept = r.swept,
                    audit_purged = r.audit_purged,
                    keys_purged = r.keys_purged,
                    refresh_purged = r.refresh_purged,
                    keys_rotated = r.keys_rotated,
                    "maintenance"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "maintenance round failed"),
        }
    }
}
