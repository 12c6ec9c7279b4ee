//! Rate limits of SPEC §5, counted in the store so they hold across
//! instances: windows come from the clock, so tests move time instead of
//! waiting. Account keys are hashed, so the store never lists addresses.

use std::net::IpAddr;
use std::time::Duration;

use crate::Core;
use crate::error::CoreError;
use crate::tokens::hash_secret;

/// The bucket an address is counted in: IPv4 as is, IPv6 by its /64 (one
/// home or host usually holds a whole /64).
pub fn address_bucket(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => "unknown".to_owned(),
    }
}

/// "3 minutes", "1 minute", "40 seconds".
pub fn human_wait(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    if secs < 60 {
        return format!("{secs} second{}", if secs == 1 { "" } else { "s" });
    }
    let minutes = secs.div_ceil(60);
    format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn account_key(kind: &str, email_normalized: &str) -> String {
    format!("{kind}:acct:{}", hash_secret(email_normalized))
}

fn address_key(kind: &str, ip: Option<&str>) -> String {
    format!("{kind}:ip:{}", address_bucket(ip.unwrap_or("unknown")))
}

impl Core {
    /// Time left in the current window of length `window`.
    fn window_left(&self, window: Duration) -> Duration {
        let w = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        let now = self.clock.now().timestamp_millis();
        let left = w - now.rem_euclid(w);
        Duration::from_millis(u64::try_from(left).unwrap_or(0))
    }

    /// Counts a sign-in attempt against the account and the address before
    /// the password is checked, and refuses it past the limits (the account's
    /// unless this browser recently signed in to it). Counting first, in one
    /// atomic step per counter, means guesses sent in parallel cannot all
    /// pass a check made before any of them failed; a success gives its
    /// count back with [`Core::login_succeeded`].
    pub async fn login_attempt(
        &self,
        email_normalized: &str,
        ip: Option<&str>,
        known_device: bool,
    ) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        let addr = address_key("login-fail", ip);
        let account = account_key("login-fail", email_normalized);
        // Growing delays for an address: a short window, then a long one.
        let tiers = [
            (addr.as_str(), MINUTE, l.login_failures_per_address_per_minute, true),
            (addr.as_str(), HOUR, l.login_failures_per_address_per_hour, true),
            (account.as_str(), l.login_failure_window, l.login_failures_per_account, !known_device),
        ];
        let mut refused = None;
        for (key, window, limit, applies) in tiers {
            let n = self.store.incr(key, window).await?;
            if applies && n > limit && refused.is_none() {
                refused = Some(self.window_left(window));
            }
        }
        match refused {
            Some(wait) => Err(CoreError::RateLimited(wait)),
            None => Ok(()),
        }
    }

    /// Gives back the account's count of [`Core::login_attempt`] once the
    /// password proved right. The address keeps its count: otherwise one
    /// right password of an attacker's own between guesses would reset it.
    pub async fn login_succeeded(&self, email_normalized: &str) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        self.store.decr(&account_key("login-fail", email_normalized), l.login_failure_window).await?;
        Ok(())
    }

    /// Counts an attempt of `kind` from an address and refuses it past
    /// `limit` per `window`.
    pub async fn address_attempt(
        &self,
        kind: &str,
        ip: Option<&str>,
        limit: u64,
        window: Duration,
    ) -> Result<(), CoreError> {
        // Counted first, then compared: one atomic step, so attempts made at
        // the same moment cannot all slip under the limit.
        let key = address_key(kind, ip);
        if self.store.incr(&key, window).await? > limit {
            return Err(CoreError::RateLimited(self.window_left(window)));
        }
        Ok(())
    }

    /// Whether a mail of `kind` may still go to this account this hour
    /// (counted when it may). Over the limit, callers skip the mail silently:
    /// the answer must not depend on whether the account exists.
    pub async fn account_mail_allowed(
        &self,
        kind: &str,
        email_normalized: &str,
        limit: u64,
    ) -> Result<bool, CoreError> {
        let key = account_key(kind, email_normalized);
        Ok(self.store.incr(&key, HOUR).await? <= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(address_bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_ne!(address_bucket("2001:db8:1:3::1"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("198.51.100.7"), "198.51.100.7");
        assert_eq!(address_bucket("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(address_bucket("garbage"), "unknown");
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(human_wait(Duration::from_secs(0)), "1 second");
        assert_eq!(human_wait(Duration::from_secs(40)), "40 seconds");
        assert_eq!(human_wait(Duration::from_secs(60)), "1 minute");
        assert_eq!(human_wait(Duration::from_secs(61)), "2 minutes");
        assert_eq!(human_wait(Duration::from_secs(900)), "15 minutes");
    }
}
