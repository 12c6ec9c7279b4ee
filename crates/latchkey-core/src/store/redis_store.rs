//! The store on Redis: GETDEL for atomic takes, INCR with expiry for
//! counters, sorted sets for indexes, SET NX PX for locks. Every key carries
//! the configured prefix, so several deployments (or test runs) can share
//! one Redis.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::StoreError;

/// How long one Redis command may take before the store counts as down.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct RedisStore {
    manager: ConnectionManager,
    prefix: String,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Adds a member with its expiry (by our clock) as the score, drops members
/// that expired, and keeps the set's own TTL at least as long as the newest
/// member needs (relative, so a moved test clock cannot expire it early).
const INDEX_ADD: &str = r"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
";

/// Sets a key unless it holds a value whose expiry (the first 8 bytes,
/// big-endian milliseconds by our clock) is still ahead of ARGV[2]: one
/// atomic step, so two instances cannot both take an expired lock.
const SET_IF_ABSENT: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.len(v) >= 8 and struct.unpack('>i8', v) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
";

/// Takes one back from a counter that still exists (never below zero).
const DECR_IF_PRESENT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
";

/// Deletes a key only while its payload (after the 8-byte expiry) is ours.
const DELETE_IF_PAYLOAD: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 9) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

impl RedisStore {
    pub fn new(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        // rustls needs a process-wide crypto provider for rediss://.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = redis::Client::open(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(RedisStore { manager, prefix: prefix.to_owned() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn set(&self, key: &str, raw: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.manager.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(raw)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    /// SET … XX: replaces only an existing key.
    pub async fn set_if_present(&self, key: &str, raw: Vec<u8>, ttl: Duration) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let done: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(raw)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .arg("XX")
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(done.is_some())
    }

    pub async fn set_if_absent(&self, key: &str, raw: Vec<u8>, ttl: Duration, now: i64) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let n: i64 = redis::Script::new(SET_IF_ABSENT)
            .key(self.key(key))
            .arg(raw)
            .arg(now)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(n == 1)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.manager.clone();
        c.get(self.key(key)).await.map_err(unavailable)
    }

    pub async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut c = self.manager.clone();
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        redis::cmd("MGET").arg(&full).query_async(&mut c).await.map_err(unavailable)
    }

    pub async fn getdel(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.manager.clone();
        c.get_del(self.key(key)).await.map_err(unavailable)
    }

    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let n: i64 = c.del(self.key(key)).await.map_err(unavailable)?;
        Ok(n > 0)
    }

    pub async fn delete_if_payload(&self, key: &str, payload: &[u8]) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let n: i64 = redis::Script::new(DELETE_IF_PAYLOAD)
            .key(self.key(key))
            .arg(payload)
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    /// INCR and a TTL of two windows in one transaction.
    pub async fn incr(&self, key: &str, window: Duration) -> Result<i64, StoreError> {
        let mut c = self.manager.clone();
        let k = self.key(key);
        let (n,): (i64,) = redis::pipe()
            .atomic()
            .incr(&k, 1)
            .pexpire(&k, i64::try_from(ttl_ms(window).saturating_mul(2)).unwrap_or(i64::MAX))
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(n)
    }

    pub async fn decr(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.manager.clone();
        let _: i64 =
            redis::Script::new(DECR_IF_PRESENT).key(self.key(key)).invoke_async(&mut c).await.map_err(unavailable)?;
        Ok(())
    }

    pub async fn counter(&self, key: &str) -> Result<i64, StoreError> {
        let mut c = self.manager.clone();
        let n: Option<i64> = c.get(self.key(key)).await.map_err(unavailable)?;
        Ok(n.unwrap_or(0))
    }

    pub async fn index_add(
        &self,
        index: &str,
        member: &str,
        expires_at: i64,
        ttl: Duration,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.manager.clone();
        redis::Script::new(INDEX_ADD)
            .key(self.key(&format!("idx:{index}")))
            .arg(expires_at)
            .arg(member)
            .arg(now)
            .arg(ttl_ms(ttl))
            .invoke_async::<i64>(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn index_list(&self, index: &str, now: i64) -> Result<Vec<String>, StoreError> {
        let mut c = self.manager.clone();
        let key = self.key(&format!("idx:{index}"));
        // Strictly after now: "(" makes the bound exclusive.
        redis::cmd("ZRANGE")
            .arg(&key)
            .arg(format!("({now}"))
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut c)
            .await
            .map_err(unavailable)
    }

    pub async fn index_remove(&self, index: &str, member: &str) -> Result<bool, StoreError> {
        let mut c = self.manager.clone();
        let n: i64 = c.zrem(self.key(&format!("idx:{index}")), member).await.map_err(unavailable)?;
        Ok(n > 0)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.manager.clone();
        redis::cmd("PING").query_async::<String>(&mut c).await.map(|_| ()).map_err(unavailable)
    }
}
