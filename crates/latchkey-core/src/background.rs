//! Work done after the answer has gone: what would otherwise make a response
//! slower for an address that has an account than for one that has not
//! (SPEC §5: no enumeration by timing). Counted, so tests (and a graceful
//! stop) can wait until nothing is left running.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::Core;

#[derive(Default)]
pub struct Background {
    running: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background").field("running", &self.running.load(Ordering::SeqCst)).finish()
    }
}

impl Core {
    /// Runs `work` after the caller answers; a failure is logged as `what`.
    pub(crate) fn in_background<F>(&self, what: &'static str, work: F)
    where
        F: Future<Output = Result<(), crate::CoreError>> + Send + 'static,
    {
        let tracker = self.background.clone();
        tracker.running.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Err(e) = work.await {
                tracing::warn!(error = %e, "{what} failed");
            }
            if tracker.running.fetch_sub(1, Ordering::SeqCst) == 1 {
                tracker.idle.notify_waiters();
            }
        });
    }

    /// Waits until no background work is running.
    pub async fn background_idle(&self) {
        while self.background.running.load(Ordering::SeqCst) > 0 {
            let _ = tokio::time::timeout(Duration::from_millis(20), self.background.idle.notified()).await;
        }
    }
}
