//! Browser sessions: opaque 256-bit ids handed to the browser in a cookie and
//! kept in the store under their SHA-256, with a per-user index so a user can
//! list and end them. Idle and absolute expiry; a new id at every sign-in and
//! change of authentication level.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Core;
use crate::error::CoreError;
use crate::store::hashed_key;
use crate::tokens::{hash_secret, random_token};

/// How often `last_seen` is written back (idle expiry moves with it).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// What the store keeps for a session. The raw id is never stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    /// When the user last proved who they are (sign-in, step-up).
    pub auth_time: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// RFC 8176 methods used, as `pwd`.
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session's id in tokens (`sid`): random, stable across id
    /// rotation, unrelated to the cookie.
    #[serde(default)]
    pub sid: String,
}

/// A live session: its record, plus the handle that names it on the
/// account page (the SHA-256 of its id, never the id itself).
#[derive(Debug, Clone)]
pub struct Session {
    pub handle: String,
    pub record: SessionRecord,
}

/// Where a request came from, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The `sid` of a session recorded before sessions carried one.
pub fn legacy_sid(handle: &str) -> String {
    hash_secret(handle)[..22].to_owned()
}

fn key_for_handle(handle: &str) -> String {
    format!("session:{handle}")
}

fn index_for(user_id: &str) -> String {
    format!("user-sessions:{user_id}")
}

impl Core {
    /// The time left before a session must end: idle or absolute, whichever
    /// comes first.
    fn session_ttl(&self, r: &SessionRecord) -> Option<Duration> {
        let now = self.clock.now();
        let idle_end = r.last_seen + chrono::Duration::from_std(self.settings.lifetimes.session_idle).ok()?;
        let abs_end = r.created_at + chrono::Duration::from_std(self.settings.lifetimes.session_absolute).ok()?;
        let end = idle_end.min(abs_end);
        (end > now).then(|| (end - now).to_std().ok()).flatten()
    }

    /// Writes back a session that is still there (a touch): a session ended
    /// meanwhile is not brought back.
    async fn touch_session(&self, handle: &str, r: &SessionRecord) -> Result<(), CoreError> {
        let Some(ttl) = self.session_ttl(r) else { return Ok(()) };
        let json = serde_json::to_vec(r).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store.put_if_present(&key_for_handle(handle), &json, ttl).await?;
        Ok(())
    }

    async fn save_session(&self, handle: &str, r: &SessionRecord) -> Result<(), CoreError> {
        let Some(ttl) = self.session_ttl(r) else { return Ok(()) };
        let json = serde_json::to_vec(r).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store.put(&key_for_handle(handle), &json, ttl).await?;
        // The index keeps a member as long as the session could live at most.
        let abs_left = (r.created_at
            + chrono::Duration::from_std(self.settings.lifetimes.session_absolute).unwrap_or_default()
            - self.clock.now())
        .to_std()
        .unwrap_or(ttl);
        self.store.index_add(&index_for(&r.user_id), handle, abs_left).await?;
        Ok(())
    }

    /// Starts a session for `user_id`; returns the raw id for the cookie.
    pub async fn create_session(
        &self,
        user_id: &str,
        amr: Vec<String>,
        ctx: &RequestContext,
    ) -> Result<(String, Session), CoreError> {
        let id = random_token()?;
        let handle = hash_secret(&id);
        let now = self.clock.now();
        let record = SessionRecord {
            user_id: user_id.to_owned(),
            created_at: now,
            auth_time: now,
            last_seen: now,
            amr,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.as_deref().map(|u| u.chars().take(512).collect()),
            sid: crate::tokens::random_id()?,
        };
        self.save_session(&handle, &record).await?;
        Ok((id, Session { handle, record }))
    }

    /// The live session a cookie names, with `last_seen` moved forward now
    /// and then.
    pub async fn session_from_cookie(&self, id: &str, ctx: &RequestContext) -> Result<Option<Session>, CoreError> {
        if id.len() != 43 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Ok(None);
        }
        let handle = hash_secret(id);
        let Some(raw) = self.store.get(&hashed_key("session", id)).await? else { return Ok(None) };
        let mut record: SessionRecord = match serde_json::from_slice(&raw) {
            Ok(r) => r,
            Err(_) => return Ok(None),
        };
        if self.session_ttl(&record).is_none() {
            return Ok(None);
        }
        let now = self.clock.now();
        if (now - record.last_seen).to_std().unwrap_or_default() >= TOUCH_EVERY {
            record.last_seen = now;
            if ctx.ip.is_some() {
                record.ip = ctx.ip.clone();
            }
            self.touch_session(&handle, &record).await?;
        }
        Ok(Some(Session { handle, record }))
    }

    /// The user's live sessions, most recently seen first.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, CoreError> {
        let mut out = Vec::new();
        for handle in self.store.index_list(&index_for(user_id)).await? {
            match self.store.get(&key_for_handle(&handle)).await? {
                Some(raw) => {
                    if let Ok(record) = serde_json::from_slice::<SessionRecord>(&raw)
                        && record.user_id == user_id
                        && self.session_ttl(&record).is_some()
                    {
                        out.push(Session { handle, record });
                    }
                }
                None => {
                    let _ = self.store.index_remove(&index_for(user_id), &handle).await;
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.record.last_seen));
        Ok(out)
    }

    /// The `sid` of one of the user's live sessions, by its handle.
    pub async fn session_sid(&self, user_id: &str, handle: &str) -> Result<Option<String>, CoreError> {
        let Some(raw) = self.store.get(&key_for_handle(handle)).await? else { return Ok(None) };
        Ok(serde_json::from_slice::<SessionRecord>(&raw)
            .ok()
            .filter(|r| r.user_id == user_id)
            .map(|r| if r.sid.is_empty() { legacy_sid(handle) } else { r.sid }))
    }

    /// Ends one of the user's sessions by its handle; false if the handle is
    /// not one of theirs (another user's handle changes nothing).
    pub async fn end_session(&self, user_id: &str, handle: &str) -> Result<bool, CoreError> {
        if !self.store.index_list(&index_for(user_id)).await?.iter().any(|h| h == handle) {
            return Ok(false);
        }
        let record = self.store.take(&key_for_handle(handle)).await?;
        self.store.index_remove(&index_for(user_id), handle).await?;
        if let Some(r) = record.and_then(|raw| serde_json::from_slice::<SessionRecord>(&raw).ok()) {
            let sid = if r.sid.is_empty() { legacy_sid(handle) } else { r.sid };
            self.session_ended(user_id, &sid).await?;
        }
        Ok(true)
    }

    /// Ends every session of the user except `keep` (a handle); returns the
    /// `sid`s of the sessions that ended (for what they cover: tokens).
    pub async fn end_other_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<Vec<String>, CoreError> {
        let mut ended = Vec::new();
        for handle in self.store.index_list(&index_for(user_id)).await? {
            if Some(handle.as_str()) == keep {
                continue;
            }
            if let Some(raw) = self.store.take(&key_for_handle(&handle)).await?
                && let Ok(record) = serde_json::from_slice::<SessionRecord>(&raw)
            {
                let sid = if record.sid.is_empty() { legacy_sid(&handle) } else { record.sid };
                self.session_ended(user_id, &sid).await?;
                ended.push(sid);
            }
            self.store.index_remove(&index_for(user_id), &handle).await?;
        }
        // Sign-ins still waiting for a second factor end with the sessions.
        self.end_pending_sign_ins(user_id).await?;
        Ok(ended)
    }

    /// Replaces a session with a new id carrying the same record (after a
    /// change of authentication level); returns the new raw id.
    pub async fn rotate_session(&self, old: &Session, auth_time_now: bool) -> Result<(String, Session), CoreError> {
        // Taken first: a session ended meanwhile (sign-out everywhere, a
        // reset) stays ended, and two rotations cannot split one session.
        if self.store.take(&key_for_handle(&old.handle)).await?.is_none() {
            return Err(CoreError::invalid("Session", "This session has ended. Sign in again."));
        }
        let id = random_token()?;
        let handle = hash_secret(&id);
        let mut record = old.record.clone();
        if auth_time_now {
            record.auth_time = self.clock.now();
        }
        self.save_session(&handle, &record).await?;
        self.store.index_remove(&index_for(&record.user_id), &old.handle).await?;
        Ok((id, Session { handle, record }))
    }

    /// Whether the session signed in recently enough for sensitive actions.
    pub fn recently_authenticated(&self, s: &Session) -> bool {
        let window = chrono::Duration::from_std(self.settings.lifetimes.reauthentication).unwrap_or_default();
        self.clock.now() - s.record.auth_time <= window
    }
}

/// "Firefox on Windows": enough to recognise a device in a list. A coarse
/// reading of the User-Agent on purpose; the full string is kept too.
pub fn describe_user_agent(ua: Option<&str>) -> String {
    let Some(ua) = ua else { return "Unknown device".to_owned() };
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.starts_with("curl/") {
        "curl"
    } else {
        "A browser"
    };
    let os = if ua.contains("Android") {
        "Android"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        ""
    };
    if os.is_empty() { browser.to_owned() } else { format!("{browser} on {os}") }
}

#[cfg(test)]
mod tests {
    use super::describe_user_agent;

    #[test]
    fn user_agents_read_as_devices() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
                "Chrome on Linux",
            ),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0",
                "Edge on macOS",
            ),
            ("curl/8.5.0", "curl"),
        ];
        for (ua, want) in cases {
            assert_eq!(describe_user_agent(Some(ua)), want);
        }
        assert_eq!(describe_user_agent(None), "Unknown device");
    }
}
