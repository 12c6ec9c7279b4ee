//! Token signing keys: RSA (RS256) generated with aws-lc-rs, the private half
//! sealed by the secret box, the public half published as a JWK.
//!
//! A key is published before any instance signs with it: a rotation adds a
//! key that becomes active only after `keys.rotation_lead`, longer than relying
//! parties may cache the JWKS ([`JWKS_MAX_AGE`]). The key it replaces stays
//! published for [`RETIRED_GRACE`] so tokens it signed still verify;
//! `rotate --now` (a compromise) withdraws it at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, Utc};
use latchkey_db::signing_keys::{self as q, SigningKeyRow};
use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet};
use serde::Serialize;

use crate::Core;
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;
use crate::signing::Alg;
use crate::tokens::sha256;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};

pub const JWKS_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// How long this instance serves the JWKS from its own copy.
const JWKS_FRESH: Duration = Duration::from_secs(1);

/// This instance's serialized JWKS.
#[derive(Default)]
pub struct JwksCache {
    #[allow(clippy::type_complexity)]
    current: tokio::sync::RwLock<Option<(Instant, chrono::DateTime<chrono::Utc>, Arc<str>)>>,
}

impl JwksCache {
    pub async fn forget(&self) {
        *self.current.write().await = None;
    }
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksCache")
    }
}
pub const RETIRED_GRACE: Duration = Duration::from_secs(24 * 3600);
/// How long a withdrawn key's row is kept (for the record) before deletion.
const KEEP_WITHDRAWN: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signs new tokens.
    Active,
    /// Replaced; still published so its tokens verify.
    Retiring,
    /// No longer published.
    Withdrawn,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Withdrawn => "withdrawn",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    pub active_from: DateTime<Utc>,
    pub published_until: Option<DateTime<Utc>>,
}

fn sealed_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

fn std_to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}

/// States of every key at `now`: for each algorithm, the newest key already
/// active signs.
fn classify(rows: &[SigningKeyRow], now: NaiveDateTime) -> Vec<(KeyState, &SigningKeyRow)> {
    let mut signing: std::collections::HashMap<&str, &SigningKeyRow> = std::collections::HashMap::new();
    for r in rows.iter().filter(|r| r.active_from <= now && r.published_until.is_none_or(|u| u > now)) {
        let newer = signing
            .get(r.alg.as_str())
            .is_none_or(|cur| (r.active_from, r.created_at) > (cur.active_from, cur.created_at));
        if newer {
            signing.insert(r.alg.as_str(), r);
        }
    }
    rows.iter()
        .map(|r| {
            let state = if r.published_until.is_some_and(|u| u <= now) {
                KeyState::Withdrawn
            } else if r.active_from > now {
                KeyState::Next
            } else if signing.get(r.alg.as_str()).is_some_and(|s| s.kid == r.kid) {
                KeyState::Active
            } else {
                KeyState::Retiring
            };
            (state, r)
        })
        .collect()
}

/// The RFC 7638 thumbprint of a public JWK's required members (given in
/// lexicographic order), as its kid.
fn thumbprint(required: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(required.as_bytes()))
}

/// A new key of `alg`: (kid, PKCS#8 DER, public JWK).
fn generate(alg: Alg, rsa_bits: u32) -> Result<(String, Vec<u8>, serde_json::Value), CoreError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let failed = || CoreError::Internal(format!("{} key generation failed", alg.as_str()));
    match alg {
        Alg::Rs256 => generate_rsa(rsa_bits),
        Alg::Es256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| failed())?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).map_err(|_| failed())?;
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(failed());
            }
            let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..]));
            let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
            let jwk = serde_json::json!({ "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid, "x": x, "y": y });
            Ok((kid, pkcs8.as_ref().to_vec(), jwk))
        }
        Alg::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| failed())?;
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.as_ref()).map_err(|_| failed())?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
            let jwk =
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid, "x": x });
            Ok((kid, pkcs8.as_ref().to_vec(), jwk))
        }
    }
}

/// A new RSA key: (kid, PKCS#8 DER, public JWK). The kid is the key's
/// RFC 7638 thumbprint.
fn generate_rsa(bits: u32) -> Result<(String, Vec<u8>, serde_json::Value), CoreError> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        4096 => KeySize::Rsa4096,
        _ => KeySize::Rsa3072,
    };
    let pair = KeyPair::generate(size).map_err(|_| CoreError::Internal("RSA key generation failed".into()))?;
    let pkcs8 = pair.as_der().map_err(|_| CoreError::Internal("cannot encode the key".into()))?.as_ref().to_vec();
    let parts = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let n = URL_SAFE_NO_PAD.encode(&parts.n);
    let e = URL_SAFE_NO_PAD.encode(&parts.e);
    // RFC 7638: the required members, in lexicographic order, no spaces.
    let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = thumbprint(&thumbprint_input);
    let jwk = serde_json::json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e });
    Ok((kid, pkcs8, jwk))
}

impl Core {
    async fn key_rows(&self) -> Result<Vec<SigningKeyRow>, CoreError> {
        Ok(self.db.run(q::list).await?)
    }

    /// Every key and its state, newest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, CoreError> {
        let rows = self.key_rows().await?;
        let now = self.clock.now_naive();
        Ok(classify(&rows, now)
            .into_iter()
            .map(|(state, r)| KeyInfo {
                kid: r.kid.clone(),
                alg: r.alg.clone(),
                state,
                created_at: r.created_at.and_utc(),
                active_from: r.active_from.and_utc(),
                published_until: r.published_until.map(|t| t.and_utc()),
            })
            .collect())
    }

    async fn new_key(
        &self,
        alg: Alg,
        created_at: NaiveDateTime,
        active_from: NaiveDateTime,
    ) -> Result<SigningKeyRow, CoreError> {
        let bits = self.settings.keys.rsa_bits;
        // Key generation takes a while at 3072 bits: off the async threads.
        let (kid, pkcs8, jwk) = tokio::task::spawn_blocking(move || generate(alg, bits))
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))??;
        let sealed =
            self.secrets.seal(&sealed_context(&kid), &pkcs8).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(SigningKeyRow {
            kid,
            alg: alg.as_str().into(),
            private_key: sealed,
            public_jwk: jwk.to_string(),
            created_at,
            active_from,
            published_until: None,
        })
    }

    /// Makes sure keys can sign: on first start (or after every key was
    /// withdrawn) an RS256 key is created and active at once, and so is a
    /// key for any other algorithm a registered client uses. Several
    /// instances starting together agree through a lock in the store.
    pub async fn ensure_signing_key(&self) -> Result<(), CoreError> {
        let mut algs = vec![Alg::Rs256];
        for c in crate::clients::list_clients(self).await? {
            if let Some(a) = Alg::parse(&c.signing_alg)
                && !algs.contains(&a)
            {
                algs.push(a);
            }
        }
        for alg in algs {
            self.ensure_key_for(alg).await?;
        }
        Ok(())
    }

    /// Makes sure a key of `alg` is active or about to be. A key made here
    /// signs at once: nothing of this algorithm was signed before, so there
    /// is no cached key set a relying party could be relying on.
    pub async fn ensure_key_for(&self, alg: Alg) -> Result<(), CoreError> {
        let now = self.clock.now_naive();
        let usable = |rows: &[SigningKeyRow]| {
            classify(rows, now)
                .iter()
                .any(|(s, r)| r.alg == alg.as_str() && matches!(s, KeyState::Active | KeyState::Next))
        };
        if usable(&self.key_rows().await?) {
            return Ok(());
        }
        let Some(lock) = self.store.try_lock("keys", Duration::from_secs(60)).await? else {
            return Ok(()); // another instance is creating it
        };
        let result = async {
            if !usable(&self.key_rows().await?) {
                let row = self.new_key(alg, now, now).await?;
                self.db.run(move |conn| q::insert(conn, &row)).await?;
                // It signs at once: publish it at once too.
                self.jwks_cache.forget().await;
            }
            Ok::<(), CoreError>(())
        }
        .await;
        let _ = self.store.unlock(&lock).await;
        result
    }

    /// Adds a new key. Normally it signs after the lead time and the current
    /// key stays published for the grace period; with `now` the new key signs
    /// at once and every other key is withdrawn.
    pub async fn rotate_keys(&self, now_: bool, actor: &Actor) -> Result<Vec<KeyInfo>, CoreError> {
        // One rotation at a time across instances and commands.
        let Some(lock) = self.store.try_lock("keys", Duration::from_secs(60)).await? else {
            return Err(CoreError::Conflict("Another key rotation is in progress; try again in a minute.".into()));
        };
        let result = self.rotate_keys_locked(now_, actor).await;
        let _ = self.store.unlock(&lock).await;
        self.forget_signing_key().await;
        result
    }

    /// Rotates every algorithm that has keys (RS256 at least).
    async fn rotate_keys_locked(&self, now_: bool, actor: &Actor) -> Result<Vec<KeyInfo>, CoreError> {
        let rows = self.key_rows().await?;
        let mut algs = vec![Alg::Rs256];
        for r in &rows {
            if let Some(a) = Alg::parse(&r.alg)
                && !algs.contains(&a)
            {
                algs.push(a);
            }
        }
        let mut made = Vec::new();
        for alg in algs {
            made.push(self.rotate_alg(alg, now_, actor).await?);
        }
        let all = self.list_keys().await?;
        Ok(made.into_iter().filter_map(|kid| all.iter().find(|k| k.kid == kid).cloned()).collect())
    }

    async fn rotate_alg(&self, alg: Alg, now_: bool, actor: &Actor) -> Result<String, CoreError> {
        let now = self.clock.now_naive();
        let rows = self.key_rows().await?;
        // With no key signing yet there is nothing to wait for.
        let signing = classify(&rows, now).iter().any(|(s, r)| *s == KeyState::Active && r.alg == alg.as_str());
        let active_from = if now_ || !signing { now } else { now + std_to_chrono(self.settings.keys.rotation_lead) };
        let row = self.new_key(alg, now, active_from).await?;
        let others_until = if now_ { now } else { active_from + std_to_chrono(RETIRED_GRACE) };
        let actor = actor.clone();
        let kid = row.kid.clone();
        self.db
            .run(move |conn| {
                latchkey_db::transaction(conn, |conn| {
                    for other in q::list(conn)?.into_iter().filter(|o| o.alg == row.alg) {
                        let current = other.published_until.is_none_or(|u| u > now);
                        if current && other.published_until.is_none_or(|u| u > others_until) {
                            q::set_published_until(conn, &other.kid, others_until)?;
                        }
                    }
                    q::insert(conn, &row)?;
                    audit::record(
                        conn,
                        now,
                        &Event::new("keys.rotated", &actor)
                            .detail(serde_json::json!({ "kid": row.kid, "alg": row.alg, "immediate": now_ })),
                    )
                })
            })
            .await?;
        Ok(kid)
    }

    /// Scheduled rotation (run by maintenance under its lock): when an
    /// algorithm's active key is older than `keys.rotate_after` and no
    /// successor is waiting, a new key is published to sign after the lead
    /// time. Returns how many keys were added.
    pub async fn rotate_due_keys(&self) -> Result<usize, CoreError> {
        let Some(after) = self.settings.keys.rotate_after else { return Ok(0) };
        let now = self.clock.now_naive();
        let rows = self.key_rows().await?;
        let states = classify(&rows, now);
        let mut due = Vec::new();
        for (state, r) in &states {
            let Some(alg) = Alg::parse(&r.alg) else { continue };
            let waiting = states.iter().any(|(s, o)| *s == KeyState::Next && o.alg == r.alg);
            if *state == KeyState::Active && !waiting && now - r.active_from >= std_to_chrono(after) {
                due.push(alg);
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        // The same lock as `keys rotate`, so the two never both add a successor.
        let Some(lock) = self.store.try_lock("keys", Duration::from_secs(60)).await? else { return Ok(0) };
        let actor = Actor::Cli;
        let mut result = Ok(due.len());
        for alg in &due {
            if let Err(e) = self.rotate_alg(*alg, false, &actor).await {
                result = Err(e);
                break;
            }
        }
        let _ = self.store.unlock(&lock).await;
        self.forget_signing_key().await;
        result
    }

    /// The JWK Set as served: serialized once and kept for a second (and
    /// while the clock stands), so a flood of requests costs one read a
    /// second. Keys are published long before they sign, so a second of lag
    /// changes nothing a relying party sees.
    pub async fn jwks_json(&self) -> Result<Arc<str>, CoreError> {
        let now = self.clock.now();
        if let Some((at, clock_at, body)) = self.jwks_cache.current.read().await.as_ref()
            && at.elapsed() < JWKS_FRESH
            && (now - *clock_at).to_std().is_ok_and(|d| d < JWKS_FRESH)
        {
            return Ok(Arc::clone(body));
        }
        let set = self.jwks().await?;
        let body: Arc<str> = Arc::from(set.to_string());
        // No key yet (a new deployment, the first one being made): read
        // again next time rather than serve an empty set for a second.
        if set["keys"].as_array().is_some_and(|k| !k.is_empty()) {
            *self.jwks_cache.current.write().await = Some((Instant::now(), now, Arc::clone(&body)));
        }
        Ok(body)
    }

    /// The published keys as a JWK Set (openidconnect's types: each key
    /// with `kid`, `alg` and `use`).
    pub async fn jwks(&self) -> Result<serde_json::Value, CoreError> {
        let rows = self.key_rows().await?;
        let now = self.clock.now_naive();
        let keys: Vec<CoreJsonWebKey> = classify(&rows, now)
            .into_iter()
            .filter(|(s, _)| *s != KeyState::Withdrawn)
            .filter_map(|(_, r)| serde_json::from_str(&r.public_jwk).ok())
            .collect();
        serde_json::to_value(CoreJsonWebKeySet::new(keys)).map_err(|e| CoreError::Internal(format!("JWKS: {e}")))
    }

    /// The private key of `alg` that signs now: (kid, PKCS#8), opened from
    /// the box.
    pub async fn active_signing_key(&self, alg: Alg) -> Result<(String, Vec<u8>), CoreError> {
        let rows = self.key_rows().await?;
        let now = self.clock.now_naive();
        let (_, row) = classify(&rows, now)
            .into_iter()
            .find(|(s, r)| *s == KeyState::Active && r.alg == alg.as_str())
            .ok_or_else(|| CoreError::Internal(format!("no active {} signing key", alg.as_str())))?;
        let pkcs8 = self
            .secrets
            .open(&sealed_context(&row.kid), &row.private_key)
            .map_err(|e| CoreError::Internal(format!("signing key {}: {e}", row.kid)))?;
        Ok((row.kid.clone(), pkcs8))
    }

    /// Deletes keys withdrawn long ago; returns how many.
    pub async fn purge_withdrawn_keys(&self) -> Result<usize, CoreError> {
        let before = self.clock.now_naive() - std_to_chrono(KEEP_WITHDRAWN);
        Ok(self.db.run(move |conn| q::delete_unpublished_before(conn, before)).await?)
    }
}

/// For `secrets rewrap`: the sealed private keys.
pub fn sealed_column() -> crate::rewrap::SealedColumn {
    crate::rewrap::SealedColumn {
        name: "signing_keys.private_key",
        context: sealed_context,
        load: q::sealed,
        store: q::set_sealed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_and_have_thumbprint_kids() {
        let (kid, pkcs8, jwk) = generate_rsa(2048).expect("key");
        assert_eq!(jwk["kid"], kid.as_str());
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(kid.len(), 43);
        let pair = KeyPair::from_pkcs8(&pkcs8).expect("pkcs8 round-trips");
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, b"payload", &mut sig).expect("sign");
        let public = pair.public_key().as_der().expect("der");
        let verifier = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            public.as_ref(),
        );
        assert!(verifier.verify(b"payload", &sig).is_ok());
        assert!(verifier.verify(b"tampered", &sig).is_err());
    }
}
