//! Disposable-mail domains, refused at self sign-up: the sign-up form, a
//! sign-in link that would create an account (`magic_links.create_accounts`)
//! and an upstream provider's first sign-in. Admins and the CLI may still
//! create such accounts, and existing ones keep working.
//!
//! The built-in list is `data/disposable-domains.txt`, read once into a set;
//! `signup.disposable_domains` adds to it and `signup.allow_disposable`
//! turns the check off. A listed domain covers its subdomains too. The
//! refusal is the same for every address at such a domain, whether or not it
//! has an account here, so it tells nothing about accounts.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::error::CoreError;
use crate::settings::SignupSettings;

static LIST: &str = include_str!("../data/disposable-domains.txt");

static BUILT_IN: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| LIST.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect());

/// What the form says to an address at a disposable-mail domain.
pub const REFUSAL: &str = "Addresses from disposable-mail services can’t be used. Please use another email address.";

/// How many domains the built-in list holds.
pub fn built_in_count() -> usize {
    BUILT_IN.len()
}

/// A configured domain as the check compares it: trimmed, lower case,
/// without a trailing dot; `None` when it is not a domain name (empty
/// labels, spaces, `@`, `/`, control characters).
pub fn normalize_domain(text: &str) -> Option<String> {
    let d = text.trim().trim_end_matches('.').to_lowercase();
    let valid = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    valid.then_some(d)
}

/// Whether the address's domain, or a parent of it, is a disposable-mail
/// domain (built in or configured). `email` is normalised (lower case).
pub fn is_disposable(settings: &SignupSettings, email: &str) -> bool {
    let Some((_, domain)) = email.rsplit_once('@') else { return false };
    let mut d = domain.trim_end_matches('.');
    loop {
        if BUILT_IN.contains(d) || settings.disposable_domains.contains(d) {
            return true;
        }
        match d.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => d = parent,
            _ => return false,
        }
    }
}

/// Refuses a self sign-up with an address at a disposable-mail domain,
/// unless `signup.allow_disposable` is on.
pub fn check_self_signup(settings: &SignupSettings, email: &str) -> Result<(), CoreError> {
    if !settings.allow_disposable && is_disposable(settings, email) {
        return Err(CoreError::invalid("Email", REFUSAL));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &[&str], allow: bool) -> SignupSettings {
        SignupSettings { allow_disposable: allow, disposable_domains: extra.iter().map(|d| (*d).to_owned()).collect() }
    }

    #[test]
    fn the_built_in_list_is_sorted_lower_case_and_unique() {
        let entries: Vec<&str> = LIST.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        assert!(entries.len() >= 300, "{} domains", entries.len());
        assert_eq!(built_in_count(), entries.len(), "no duplicates");
        for e in &entries {
            assert_eq!(normalize_domain(e).as_deref(), Some(*e), "{e:?} is a lower-case domain");
        }
        let mut sorted = entries.clone();
        sorted.sort_unstable();
        assert_eq!(entries, sorted, "kept sorted");
        for d in ["mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com", "temp-mail.org"] {
            assert!(BUILT_IN.contains(d), "{d}");
        }
        for d in ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "example.com", "icloud.com"] {
            assert!(!BUILT_IN.contains(d), "{d}");
        }
    }

    #[test]
    fn a_domain_and_its_subdomains_match_in_any_case() {
        let s = settings(&[], false);
        for email in
            ["a@mailinator.com", "a@sub.mailinator.com", "a@deep.sub.sharklasers.com", "a@yopmail.fr", "a@maildrop.cc."]
        {
            assert!(is_disposable(&s, email), "{email}");
        }
        for email in ["a@example.com", "a@notmailinator.co", "a@mailinator.com.example.org", "no-at-sign", "a@com"] {
            assert!(!is_disposable(&s, email), "{email}");
        }
        // The check runs on the normalised (lower-case) address.
        let (_, normalized) = crate::accounts::normalize_email("Ada@Sub.MAILINATOR.com").expect("valid");
        assert!(is_disposable(&s, &normalized));
    }

    #[test]
    fn configured_domains_add_and_the_switch_allows() {
        let s = settings(&["throwaway.example"], false);
        assert!(is_disposable(&s, "a@throwaway.example"));
        assert!(is_disposable(&s, "a@x.throwaway.example"));
        assert!(!is_disposable(&s, "a@example"));
        match check_self_signup(&s, "a@x.throwaway.example") {
            Err(CoreError::Invalid { field: "Email", message }) => assert_eq!(message, REFUSAL),
            other => panic!("expected the refusal, got {other:?}"),
        }
        assert!(check_self_signup(&s, "a@example.com").is_ok());
        assert!(check_self_signup(&settings(&[], true), "a@mailinator.com").is_ok());
    }

    #[test]
    fn configured_domains_are_checked() {
        assert_eq!(normalize_domain(" Throwaway.Example. ").as_deref(), Some("throwaway.example"));
        assert_eq!(normalize_domain("tk").as_deref(), Some("tk"));
        for bad in
            ["", " ", "a..b", "@mailinator.com", "user@x.com", "x.com/path", "-x.com", "x .com", ".x.com", "*.x.com"]
        {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
    }
}
