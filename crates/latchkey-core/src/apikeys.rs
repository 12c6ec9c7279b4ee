//! API keys for the admin API. A key is `lk_` + 12 hex characters (the
//! prefix, stored in clear so that admins can tell keys apart and audit
//! entries name them) + `_` + 256 random bits. Only the SHA-256 of the whole
//! key is stored, and it is compared in constant time. Each key has scopes,
//! an optional expiry, a last-used time and its own rate limit; it can be
//! revoked, and a key can never make a key with scopes it lacks.

use std::time::Duration;

use chrono::{DateTime, Utc};
use latchkey_db::api_keys::{self as q, ApiKeyRow};
use serde::Serialize;

use crate::Core;
use crate::accounts::not_found;
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;
use crate::tokens::{constant_time_eq, hash_secret, hex, random_bytes, random_id, random_token};

/// Every scope a key (or an admin access token) can carry.
pub const SCOPES: &[&str] = &[
    "users:read",
    "users:write",
    "clients:read",
    "clients:write",
    "groups:read",
    "groups:write",
    "policy:read",
    "policy:write",
    "audit:read",
    "keys:read",
    "keys:write",
    "apikeys:write",
    "webhooks:read",
    "webhooks:write",
];
pub const MAX_NAME_CHARS: usize = 100;
const KEY_START: &str = "lk_";
/// `lk_` + 12 hex characters.
const PREFIX_LEN: usize = 15;
/// The prefix, `_` and a 43-character secret.
const KEY_LEN: usize = PREFIX_LEN + 1 + 43;
/// A use is written down at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// Shown in clear: how admins and the audit log tell keys apart.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
            created_by: r.created_by,
            created_at: r.created_at.and_utc(),
            expires_at: r.expires_at.map(|t| t.and_utc()),
            last_used_at: r.last_used_at.map(|t| t.and_utc()),
            revoked_at: r.revoked_at.map(|t| t.and_utc()),
        }
    }
}

impl ApiKey {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A new key and the key itself, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    pub key: String,
}

/// Checks a list of scopes: known, at least one, without repeats.
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, CoreError> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split([' ', ','])).filter(|s| !s.is_empty()) {
        if !SCOPES.contains(&s) {
            return Err(CoreError::invalid("scopes", format!("{s:?} is not one of {}", SCOPES.join(", "))));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.is_empty() {
        return Err(CoreError::invalid("scopes", "a key needs at least one scope"));
    }
    Ok(out)
}

/// Why a presented key was not accepted. Callers answer 401 with one message
/// for all of them; the reason goes to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

impl KeyRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRefusal::Malformed => "malformed",
            KeyRefusal::Unknown => "unknown",
            KeyRefusal::Revoked => "revoked",
            KeyRefusal::Expired => "expired",
        }
    }
}

/// Whether a bearer credential looks like one of our API keys (rather than
/// an access token).
pub fn looks_like_api_key(credential: &str) -> bool {
    credential.starts_with(KEY_START)
}

impl Core {
    /// Makes a key. `limit` is the creating key's scopes when a key makes
    /// it: a key never hands out more than it has.
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
        limit: Option<&[String]>,
        actor: &Actor,
    ) -> Result<CreatedApiKey, CoreError> {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(CoreError::invalid("name", "the key needs a name"));
        }
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "name",
                format!("at most {MAX_NAME_CHARS} characters, no control characters"),
            ));
        }
        let scopes = check_scopes(scopes)?;
        if let Some(have) = limit
            && let Some(missing) = scopes.iter().find(|s| !have.contains(s))
        {
            return Err(CoreError::Forbidden(format!("a key cannot give a scope it does not have: {missing}")));
        }
        let now = self.clock.now();
        if let Some(t) = expires_at
            && t <= now
        {
            return Err(CoreError::invalid("expires_at", "must be in the future"));
        }
        let prefix = format!("{KEY_START}{}", hex(&random_bytes::<6>()?));
        let key = format!("{prefix}_{}", random_token()?);
        let row = ApiKeyRow {
            id: random_id()?,
            name,
            prefix,
            key_hash: hash_secret(&key),
            scopes: scopes.join(" "),
            created_by: actor.as_text(),
            created_at: now.naive_utc(),
            expires_at: expires_at.map(|t| t.naive_utc()),
            last_used_at: None,
            revoked_at: None,
        };
        let (saved, actor, at) = (row.clone(), actor.clone(), now.naive_utc());
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    q::insert(conn, &row)?;
                    audit::record(
                        conn,
                        at,
                        &Event::new("apikey.created", &actor).detail(serde_json::json!({
                            "apikey_id": row.id, "prefix": row.prefix, "name": row.name, "scopes": row.scopes,
                        })),
                    )
                })
            })
            .await?;
        Ok(CreatedApiKey { api_key: saved.into(), key })
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, CoreError> {
        Ok(self.db.run(q::list).await?.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes the key with this id (or prefix); it stops working at once.
    pub async fn revoke_api_key(&self, id_or_prefix: &str, actor: &Actor) -> Result<ApiKey, CoreError> {
        let (key, actor, now) = (id_or_prefix.to_owned(), actor.clone(), self.clock.now_naive());
        let row = self
            .db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    let found = match q::find(conn, &key)? {
                        Some(r) => Some(r),
                        None => q::find_by_prefix(conn, &key)?,
                    };
                    let Some(mut row) = found else { return Err(latchkey_db::DbError::NotFound) };
                    if q::revoke(conn, &row.id, now)? {
                        row.revoked_at = Some(now);
                        audit::record(
                            conn,
                            now,
                            &Event::new("apikey.revoked", &actor)
                                .detail(serde_json::json!({ "apikey_id": row.id, "prefix": row.prefix })),
                        )?;
                    }
                    Ok(row)
                })
            })
            .await
            .map_err(not_found("API key"))?;
        Ok(row.into())
    }

    /// The key a request presents, if it is one we issued and it still
    /// works. The whole key's hash is compared in constant time; the prefix
    /// only finds the row.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<Result<ApiKey, KeyRefusal>, CoreError> {
        if presented.len() != KEY_LEN
            || !presented.starts_with(KEY_START)
            || presented.as_bytes().get(PREFIX_LEN) != Some(&b'_')
        {
            return Ok(Err(KeyRefusal::Malformed));
        }
        let prefix = presented[..PREFIX_LEN].to_owned();
        let Some(row) = self.db.run(move |conn| q::find_by_prefix(conn, &prefix)).await? else {
            return Ok(Err(KeyRefusal::Unknown));
        };
        if !constant_time_eq(hash_secret(presented).as_bytes(), row.key_hash.as_bytes()) {
            return Ok(Err(KeyRefusal::Unknown));
        }
        let now = self.clock.now_naive();
        if row.revoked_at.is_some() {
            return Ok(Err(KeyRefusal::Revoked));
        }
        if row.expires_at.is_some_and(|t| t <= now) {
            return Ok(Err(KeyRefusal::Expired));
        }
        let stale = row.last_used_at.is_none_or(|t| (now - t).to_std().is_ok_and(|d| d >= TOUCH_EVERY));
        if stale {
            let id = row.id.clone();
            self.db.run(move |conn| q::touch(conn, &id, now)).await?;
        }
        Ok(Ok(row.into()))
    }

    /// Counts one admin API request against `who` (a key id, or an admin's
    /// user id) and refuses it past the per-minute limit; every key has its
    /// own count.
    pub async fn admin_api_request(&self, who: &str) -> Result<(), CoreError> {
        let limit = self.settings.limits.admin_api_requests_per_key_per_minute;
        let window = Duration::from_secs(60);
        if self.store.incr(&format!("admin-api:{who}"), window).await? > limit {
            return Err(CoreError::RateLimited(window));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_and_deduplicated() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            check_scopes(&s(&["users:read", "users:read audit:read"])).expect("ok"),
            s(&["users:read", "audit:read"])
        );
        for bad in [&[][..], &[""][..], &["users:admin"][..], &["users:read", "root"][..]] {
            assert!(matches!(check_scopes(&s(bad)), Err(CoreError::Invalid { field: "scopes", .. })), "{bad:?}");
        }
    }

    #[test]
    fn key_shape() {
        assert_eq!(KEY_LEN, 59);
        assert!(looks_like_api_key("lk_0123456789ab_x"));
        assert!(!looks_like_api_key("eyJhbGciOi"));
    }
}
