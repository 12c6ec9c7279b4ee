//! Compact JWS for the tokens openidconnect's ID-token type does not cover:
//! RFC 9068 access tokens (`typ: at+jwt`) are signed here, and every token we
//! receive back (access tokens at userinfo, ID tokens as `id_token_hint`) is
//! verified here against the keys we publish. Written by hand because it is
//! small and exact: our three algorithms (RS256, ES256, EdDSA), each only
//! with a key of its own type, our own keys only, no `none`, no key from the
//! token's header.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::PrivateSigningKey;
use serde_json::{Value, json};

use crate::Core;
use crate::error::CoreError;
use crate::signing::{Alg, SigningKey};

/// The `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Tokens longer than this are refused before any work.
pub const MAX_TOKEN_LEN: usize = 8192;
/// How long this instance trusts its copy of the published keys. An unknown
/// `kid` re-reads them, at most this often.
const KEYS_FRESH: Duration = Duration::from_secs(5);
const KEYS_MIN_REREAD: Duration = Duration::from_secs(1);

/// Signs `claims` as a compact JWS with header `typ`.
pub fn sign(key: &SigningKey, typ: &str, claims: &Value) -> Result<String, CoreError> {
    let header = json!({ "alg": key.alg().as_str(), "typ": typ, "kid": key.kid() });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = key
        .sign(&key.alg().jws(), input.as_bytes())
        .map_err(|e| CoreError::Internal(format!("signing failed: {e}")))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Tokens whose signature was checked lately, by the SHA-256 of the whole
/// token: an RSA verification is a sixth of an introspection's or a userinfo
/// request's CPU (by profile), and the same access token comes back many
/// times. Only the signature check is skipped on a hit: the key must still
/// be published, and expiry, audience, client and revocation are checked
/// every time by the caller. Bounded; emptied when full.
#[derive(Default)]
pub struct VerifiedCache {
    map: std::sync::Mutex<HashMap<[u8; 32], (String, Verified)>>,
}

impl VerifiedCache {
    pub const CAPACITY: usize = 1024;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (String, Verified)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, hash: &[u8; 32]) -> Option<(String, Verified)> {
        self.lock().get(hash).cloned()
    }

    fn put(&self, hash: [u8; 32], kid: String, v: Verified) {
        let mut map = self.lock();
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(hash, (kid, v));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Forgets every token (benchmarks measure the first check with it).
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A token whose signature one of our published keys made.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: Value,
    pub claims: Value,
}

impl Verified {
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// Whether `aud` (a string or a list) names `who`.
    pub fn audience_has(&self, who: &str) -> bool {
        match self.claims.get("aud") {
            Some(Value::String(a)) => a == who,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(who)),
            _ => false,
        }
    }
}

/// A published public key, by algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    /// (n, e)
    Rsa(Vec<u8>, Vec<u8>),
    /// The uncompressed P-256 point.
    Ec(Vec<u8>),
    Ed(Vec<u8>),
}

impl PublicKey {
    fn alg(&self) -> Alg {
        match self {
            PublicKey::Rsa(..) => Alg::Rs256,
            PublicKey::Ec(_) => Alg::Es256,
            PublicKey::Ed(_) => Alg::EdDsa,
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Rsa(n, e) => aws_lc_rs::rsa::PublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            PublicKey::Ec(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
            }
            PublicKey::Ed(x) => UnparsedPublicKey::new(&ED25519, x).verify(message, sig).is_ok(),
        }
    }
}

type PublicKeys = HashMap<String, PublicKey>;

/// This instance's copy of the published keys.
#[derive(Default)]
pub struct VerifyKeys {
    current: tokio::sync::RwLock<Option<(Instant, Arc<PublicKeys>)>>,
}

impl std::fmt::Debug for VerifyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyKeys")
    }
}

fn parse_keys(jwks: &Value) -> PublicKeys {
    let mut out = HashMap::new();
    for k in jwks.get("keys").and_then(Value::as_array).into_iter().flatten() {
        let field = |name: &str| k.get(name).and_then(Value::as_str).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        let text = |name: &str| k.get(name).and_then(Value::as_str);
        let key = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => field("n").zip(field("e")).map(|(n, e)| PublicKey::Rsa(n, e)),
            (Some("EC"), Some("P-256")) => {
                field("x").zip(field("y")).filter(|(x, y)| x.len() == 32 && y.len() == 32).map(|(x, y)| {
                    let mut point = vec![4u8];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    PublicKey::Ec(point)
                })
            }
            (Some("OKP"), Some("Ed25519")) => field("x").filter(|x| x.len() == 32).map(PublicKey::Ed),
            _ => None,
        };
        if let (Some(kid), Some(key)) = (text("kid"), key) {
            out.insert(kid.to_owned(), key);
        }
    }
    out
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        v @ Value::Object(_) => Some(v),
        _ => None,
    }
}

impl Core {
    async fn published_keys(&self, want_kid: &str) -> Result<Arc<PublicKeys>, CoreError> {
        if let Some((read_at, keys)) = self.verify_keys.current.read().await.as_ref() {
            let age = read_at.elapsed();
            if age < KEYS_FRESH && (keys.contains_key(want_kid) || age < KEYS_MIN_REREAD) {
                return Ok(Arc::clone(keys));
            }
        }
        let keys = Arc::new(parse_keys(&self.jwks().await?));
        *self.verify_keys.current.write().await = Some((Instant::now(), Arc::clone(&keys)));
        Ok(keys)
    }

    /// Verifies a compact JWS against the keys we publish. `None` for
    /// anything malformed, any other algorithm, an unknown key or a bad
    /// signature; the claims are not checked here.
    pub async fn verify_jws(&self, token: &str) -> Result<Option<Verified>, CoreError> {
        if token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let hash = crate::tokens::sha256(token.as_bytes());
        if let Some((kid, v)) = self.verified_tokens.get(&hash) {
            // Still only while the key that signed it is published.
            if self.published_keys(&kid).await?.contains_key(&kid) {
                return Ok(Some(v));
            }
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Ok(None);
        };
        let (Some(header), Some(claims), Ok(sig)) = (decode_part(h), decode_part(c), URL_SAFE_NO_PAD.decode(s)) else {
            return Ok(None);
        };
        let Some(alg) = header.get("alg").and_then(Value::as_str).and_then(Alg::parse) else { return Ok(None) };
        if header.get("crit").is_some() {
            return Ok(None);
        }
        let Some(kid) = header.get("kid").and_then(Value::as_str) else { return Ok(None) };
        let keys = self.published_keys(kid).await?;
        // The key decides the algorithm; a header naming another is refused.
        let Some(key) = keys.get(kid).filter(|k| k.alg() == alg) else { return Ok(None) };
        let signed = &token[..h.len() + 1 + c.len()];
        if !key.verify(signed.as_bytes(), &sig) {
            return Ok(None);
        }
        let kid = kid.to_owned();
        let v = Verified { header, claims };
        self.verified_tokens.put(hash, kid, v.clone());
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verified_cache_answers_what_it_was_given_and_stays_bounded() {
        let cache = VerifiedCache::default();
        let v = Verified { header: json!({"kid": "k1"}), claims: json!({"sub": "s"}) };
        assert!(cache.get(&[1; 32]).is_none());
        cache.put([1; 32], "k1".into(), v);
        let (kid, got) = cache.get(&[1; 32]).expect("cached");
        assert_eq!((kid.as_str(), got.claims["sub"].as_str()), ("k1", Some("s")));
        assert!(cache.get(&[2; 32]).is_none(), "another token is not a hit");
        for i in 0..VerifiedCache::CAPACITY + 3 {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.put(h, "k".into(), Verified { header: json!({}), claims: json!({}) });
        }
        assert!(cache.len() <= VerifiedCache::CAPACITY);
    }

    #[test]
    fn keys_parse_from_a_jwks() {
        let b32 = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "b", "x": "AQAB"},
            {"kty": "RSA", "kid": "c", "n": "not base64!"},
            {"kty": "EC", "crv": "P-256", "kid": "d", "x": b32, "y": b32},
            {"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": b32},
            {"kty": "OKP", "crv": "X25519", "kid": "f", "x": b32},
        ]});
        let keys = parse_keys(&jwks);
        assert_eq!(keys.len(), 3);
        assert_eq!(keys.get("a").map(PublicKey::alg), Some(Alg::Rs256));
        assert_eq!(keys.get("d").map(PublicKey::alg), Some(Alg::Es256));
        assert_eq!(keys.get("e").map(PublicKey::alg), Some(Alg::EdDsa));
    }

    #[test]
    fn only_objects_decode() {
        assert!(decode_part(&URL_SAFE_NO_PAD.encode("{\"a\":1}")).is_some());
        assert!(decode_part(&URL_SAFE_NO_PAD.encode("[1]")).is_none());
        assert!(decode_part("%%%").is_none());
    }
}
