//! Random tokens and hashed secrets. Every secret we hand out (client secrets,
//! later API keys, sign-in links) is 256 bits from the system RNG and kept only
//! as its SHA-256; presented secrets are compared in constant time.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The system RNG gave no bytes (never weak ones: it fails instead).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system random number generator is unavailable")]
pub struct RngError;

/// `N` bytes from the system RNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RngError> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| RngError)?;
    Ok(out)
}

/// A 256-bit random token, base64url without padding (43 characters).
pub fn random_token() -> Result<String, RngError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A 128-bit random identifier, base64url without padding (22 characters).
pub fn random_id() -> Result<String, RngError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex(&sha256(secret.as_bytes()))
}

/// Whether `presented` hashes to `stored_hash`, compared in constant time.
pub fn verify_secret(presented: &str, stored_hash: &str) -> bool {
    constant_time_eq(hash_secret(presented).as_bytes(), stored_hash.as_bytes())
}

/// Constant-time equality (the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = random_token().expect("rng");
        let b = random_token().expect("rng");
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).map(|v| v.len()).ok(), Some(32));
        assert_eq!(random_id().expect("rng").len(), 22);
    }

    #[test]
    fn secrets_verify_only_against_their_hash() {
        let s = random_token().expect("rng");
        let h = hash_secret(&s);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&s));
        assert!(verify_secret(&s, &h));
        assert!(!verify_secret(&random_token().expect("rng"), &h));
        assert!(!verify_secret("", &h));
        assert!(!verify_secret(&s, ""));
        assert!(!verify_secret(&s, &h[..63]));
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn constant_time_eq_cases() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
