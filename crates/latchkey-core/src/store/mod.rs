//! The store: what is short-lived or per-request — browser sessions,
//! authorization codes, flow and ceremony state, one-time-token lookups,
//! rate-limit counters, per-user indexes, locks for scheduled work.
//!
//! Redis in production (shared by every instance), a table in the SQL
//! database in embedded mode; both behave the same, and one test suite runs
//! against both. Expiry is an `expires_at` inside each value, checked against
//! the injected clock; Redis TTLs and the SQL sweep only clean up. Counters
//! are keyed by the clock's window (`rl:KEY:{now/window}`), so a moved clock
//! resets them exactly. Callers key secrets by their SHA-256
//! ([`hashed_key`]), so a dump of the store gives nothing usable.

mod redis_store;
mod sql_store;

use std::sync::Arc;
use std::time::Duration;

use latchkey_db::Db;

use crate::clock::Clock;
use crate::error::CoreError;
use crate::tokens::{hash_secret, random_token};

pub use redis_store::RedisStore;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (or did not answer in time).
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer in time.
    #[error("session store did not answer within {0} ms")]
    Timeout(u128),
    /// A value in the store is not what we wrote.
    #[error("session store: {0}")]
    Corrupt(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Timeout(_) => {
                let detail = e.to_string();
                tracing::warn!(%detail, "session store unavailable");
                CoreError::Unavailable("session store")
            }
            StoreError::Corrupt(detail) => CoreError::Internal(detail),
        }
    }
}

impl From<latchkey_db::DbError> for StoreError {
    fn from(e: latchkey_db::DbError) -> Self {
        match e {
            latchkey_db::DbError::Unavailable(d) => StoreError::Unavailable(d),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// `namespace:` + SHA-256 of `secret`, the key under which a secret's
/// record is kept.
pub fn hashed_key(namespace: &str, secret: &str) -> String {
    format!("{namespace}:{}", hash_secret(secret))
}

#[derive(Clone)]
enum Backend {
    Redis(RedisStore),
    Database(Db),
}

/// A held lock; release it with [`Store::unlock`], or let it expire.
#[derive(Debug, Clone)]
pub struct Lock {
    name: String,
    token: String,
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind()).finish()
    }
}

/// Values carry their expiry: 8 bytes of big-endian milliseconds, then the
/// payload.
fn wrap(expires_at: i64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expires_at.to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn unwrap_live(raw: Vec<u8>, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
    if raw.len() < 8 {
        return Err(StoreError::Corrupt("a stored value is too short".into()));
    }
    let mut head = [0u8; 8];
    head.copy_from_slice(&raw[..8]);
    if i64::from_be_bytes(head) <= now { Ok(None) } else { Ok(Some(raw[8..].to_vec())) }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// The SQL store (embedded mode).
    pub fn database(db: Db, clock: Arc<dyn Clock>) -> Store {
        Store { backend: Backend::Database(db), clock }
    }

    /// Redis at `url` with every key under `prefix`. Connects lazily, so a
    /// start with Redis down still serves and reports it in /readyz.
    pub fn redis(url: &str, prefix: &str, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        Ok(Store { backend: Backend::Redis(RedisStore::new(url, prefix)?), clock })
    }

    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Redis(_) => "redis",
            Backend::Database(_) => "database",
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    pub async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let expires_at = self.now().saturating_add(millis(ttl));
        let raw = wrap(expires_at, value);
        match &self.backend {
            Backend::Redis(r) => r.set(key, raw, ttl).await,
            Backend::Database(db) => sql_store::put(db, key, raw, expires_at).await,
        }
    }

    /// Replaces the value under `key` only if one is there (a value taken
    /// or deleted meanwhile stays gone); true when replaced.
    pub async fn put_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let expires_at = now.saturating_add(millis(ttl));
        let raw = wrap(expires_at, value);
        match &self.backend {
            Backend::Redis(r) => r.set_if_present(key, raw, ttl).await,
            Backend::Database(db) => sql_store::replace(db, key, raw, expires_at, now).await,
        }
    }

    /// Stores `value` only if `key` holds nothing live; true when stored.
    pub async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let expires_at = now.saturating_add(millis(ttl));
        let raw = wrap(expires_at, value);
        match &self.backend {
            // A value still in Redis but expired by our clock counts as absent.
            Backend::Redis(r) => r.set_if_absent(key, raw, ttl, now).await,
            Backend::Database(db) => sql_store::put_if_absent(db, key, raw, expires_at, now).await,
        }
    }

    /// The live value under `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let raw = match &self.backend {
            Backend::Redis(r) => r.get(key).await?,
            Backend::Database(db) => sql_store::get(db, key).await?,
        };
        match raw {
            Some(raw) => unwrap_live(raw, self.now()),
            None => Ok(None),
        }
    }

    /// The live values of several keys in one round trip, in their order.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let raws = match &self.backend {
            Backend::Redis(r) => r.mget(keys).await?,
            Backend::Database(db) => sql_store::get_many(db, keys).await?,
        };
        let now = self.now();
        raws.into_iter()
            .map(|raw| match raw {
                Some(raw) => unwrap_live(raw, now),
                None => Ok(None),
            })
            .collect()
    }

    /// Removes `key` and returns its live value, atomically: of any number of
    /// concurrent takes, across instances, exactly one gets it.
    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let raw = match &self.backend {
            Backend::Redis(r) => r.getdel(key).await?,
            Backend::Database(db) => sql_store::take(db, key).await?,
        };
        match raw {
            Some(raw) => unwrap_live(raw, self.now()),
            None => Ok(None),
        }
    }

    /// Removes `key`; true if something (live or not) was there.
    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Redis(r) => r.delete(key).await,
            Backend::Database(db) => sql_store::delete(db, key).await,
        }
    }

    /// Counts one more event for `key` in the current window of length
    /// `window` (by the clock) and returns the count so far in that window.
    pub async fn incr(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let w = millis(window).max(1);
        let slot = self.now().div_euclid(w);
        let full = format!("rl:{key}:{slot}");
        let n = match &self.backend {
            Backend::Redis(r) => r.incr(&full, window).await?,
            Backend::Database(db) => sql_store::incr(db, &full, (slot + 1).saturating_mul(w)).await?,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Takes back one event counted by [`Store::incr`] in the current window.
    pub async fn decr(&self, key: &str, window: Duration) -> Result<(), StoreError> {
        let w = millis(window).max(1);
        let full = format!("rl:{key}:{}", self.now().div_euclid(w));
        match &self.backend {
            Backend::Redis(r) => r.decr(&full).await,
            Backend::Database(db) => sql_store::decr(db, &full).await,
        }
    }

    /// The count so far for `key` in the current window.
    pub async fn count(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let w = millis(window).max(1);
        let full = format!("rl:{key}:{}", self.now().div_euclid(w));
        let n = match &self.backend {
            Backend::Redis(r) => r.counter(&full).await?,
            Backend::Database(db) => sql_store::counter(db, &full).await?,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Adds `member` to the index `index` (say, a user's sessions) until `ttl`.
    pub async fn index_add(&self, index: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let expires_at = self.now().saturating_add(millis(ttl));
        match &self.backend {
            Backend::Redis(r) => r.index_add(index, member, expires_at, ttl, self.now()).await,
            Backend::Database(db) => sql_store::index_add(db, index, member, expires_at).await,
        }
    }

    /// The live members of `index`, soonest expiry first.
    pub async fn index_list(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let now = self.now();
        match &self.backend {
            Backend::Redis(r) => r.index_list(index, now).await,
            Backend::Database(db) => sql_store::index_list(db, index, now).await,
        }
    }

    pub async fn index_remove(&self, index: &str, member: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Redis(r) => r.index_remove(index, member).await,
            Backend::Database(db) => sql_store::index_remove(db, index, member).await,
        }
    }

    /// Takes the lock `name` for `ttl` if nobody holds it (scheduled work that
    /// one instance should run).
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>, StoreError> {
        let token = random_token().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let key = format!("lock:{name}");
        if self.put_if_absent(&key, token.as_bytes(), ttl).await? {
            Ok(Some(Lock { name: name.to_owned(), token }))
        } else {
            Ok(None)
        }
    }

    /// Releases a lock this holder still has; false if it had expired and
    /// someone else took it.
    pub async fn unlock(&self, lock: &Lock) -> Result<bool, StoreError> {
        let key = format!("lock:{}", lock.name);
        match &self.backend {
            Backend::Redis(r) => r.delete_if_payload(&key, lock.token.as_bytes()).await,
            Backend::Database(db) => sql_store::delete_if_payload(db, &key, lock.token.as_bytes()).await,
        }
    }

    /// Whether the store answers within `within`.
    pub async fn ping(&self, within: Duration) -> Result<(), StoreError> {
        let probe = async {
            match &self.backend {
                Backend::Redis(r) => r.ping().await,
                Backend::Database(db) => db.ping(within).await.map_err(StoreError::from),
            }
        };
        tokio::time::timeout(within, probe).await.map_err(|_| StoreError::Timeout(within.as_millis()))?
    }

    /// Removes what has expired (SQL store; Redis expires keys itself).
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Redis(_) => Ok(0),
            Backend::Database(db) => sql_store::sweep(db, self.now()).await,
        }
    }
}
