//! Signing tokens through aws-lc-rs behind openidconnect's
//! `PrivateSigningKey` trait, so ID tokens built with openidconnect's types
//! are signed by aws-lc (several times faster than RustCrypto here): RS256,
//! ES256 (the fixed-size r‖s form JWS requires) and EdDSA (Ed25519). The
//! active key of each algorithm is cached per instance and re-read at most
//! every few seconds, so a rotation reaches every instance quickly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use openidconnect::core::{CoreJsonCurveType, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKeyId, PrivateSigningKey, SigningError};

use crate::Core;
use crate::error::CoreError;

/// How long an instance keeps using the key it read before looking again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// The signing algorithms clients may choose (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Rs256, Alg::Es256, Alg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn jws(self) -> CoreJwsSigningAlgorithm {
        match self {
            Alg::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            Alg::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            Alg::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
        }
    }
}

enum Pair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key of one of the algorithms.
pub struct SigningKey {
    kid: String,
    alg: Alg,
    pair: Pair,
    jwk: CoreJsonWebKey,
}

/// The name the RS256-only first version had.
pub type AwsLcRsaKey = SigningKey;

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

fn bad_key(kid: &str, e: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(format!("signing key {kid}: {e}"))
}

impl SigningKey {
    /// An RSA key (the first version's only kind).
    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<SigningKey, CoreError> {
        SigningKey::open(Alg::Rs256, kid, pkcs8)
    }

    pub fn open(alg: Alg, kid: &str, pkcs8: &[u8]) -> Result<SigningKey, CoreError> {
        let id = Some(JsonWebKeyId::new(kid.to_owned()));
        let (pair, jwk) = match alg {
            Alg::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(|e| bad_key(kid, e))?;
                let parts = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                (Pair::Rsa(pair), CoreJsonWebKey::new_rsa(parts.n, parts.e, id))
            }
            Alg::Es256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(|e| bad_key(kid, e))?;
                let point = pair.public_key().as_ref().to_vec();
                if point.len() != 65 {
                    return Err(bad_key(kid, "not an uncompressed P-256 point"));
                }
                let jwk =
                    CoreJsonWebKey::new_ec(point[1..33].to_vec(), point[33..].to_vec(), CoreJsonCurveType::P256, id);
                (Pair::Ec(pair), jwk)
            }
            Alg::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|e| bad_key(kid, e))?;
                let jwk = CoreJsonWebKey::new_okp(pair.public_key().as_ref().to_vec(), CoreJsonCurveType::Ed25519, id);
                (Pair::Ed(pair), jwk)
            }
        };
        Ok(SigningKey { kid: kid.to_owned(), alg, pair, jwk })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }
}

impl PrivateSigningKey for SigningKey {
    type VerificationKey = CoreJsonWebKey;

    fn sign(&self, alg: &CoreJwsSigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        if *alg != self.alg.jws() {
            return Err(SigningError::UnsupportedAlg(format!("{alg:?}")));
        }
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature).map_err(|_| SigningError::CryptoError)?;
                Ok(signature)
            }
            Pair::Ec(pair) => Ok(pair.sign(&rng, message).map_err(|_| SigningError::CryptoError)?.as_ref().to_vec()),
            Pair::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        self.jwk.clone()
    }
}

/// The key of each algorithm this instance signs with, and when it was read.
#[derive(Default)]
pub struct KeyCache {
    current: tokio::sync::RwLock<HashMap<Alg, (Instant, Arc<SigningKey>)>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

impl Core {
    /// The active signing key of `alg`, from this instance's cache when fresh.
    pub async fn signing_key(&self, alg: Alg) -> Result<Arc<SigningKey>, CoreError> {
        if let Some((read_at, key)) = self.key_cache.current.read().await.get(&alg)
            && read_at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(Arc::clone(key));
        }
        let (kid, pkcs8) = match self.active_signing_key(alg).await {
            Ok(k) => k,
            // A client chose an algorithm that has no key yet: make one (or
            // wait a moment for the instance that is making it).
            Err(_) => {
                let mut tries = 0;
                loop {
                    self.ensure_key_for(alg).await?;
                    match self.active_signing_key(alg).await {
                        Ok(k) => break k,
                        Err(e) if tries >= 20 => return Err(e),
                        Err(_) => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        };
        let key = tokio::task::spawn_blocking(move || SigningKey::open(alg, &kid, &pkcs8))
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))??;
        let key = Arc::new(key);
        self.key_cache.current.write().await.insert(alg, (Instant::now(), Arc::clone(&key)));
        Ok(key)
    }

    /// Forgets the cached keys (after a rotation on this instance).
    pub async fn forget_signing_key(&self) {
        self.key_cache.current.write().await.clear();
        self.jwks_cache.forget().await;
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet};
    use openidconnect::{
        Audience, ClientId, EmptyAdditionalClaims, IssuerUrl, Nonce, StandardClaims, SubjectIdentifier,
    };

    use super::*;

    fn key(alg: Alg) -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8: Vec<u8> = match alg {
            Alg::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).expect("generate");
                pair.as_der().expect("der").as_ref().to_vec()
            }
            Alg::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("ec").as_ref().to_vec()
            }
            Alg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng).expect("ed").as_ref().to_vec(),
        };
        SigningKey::open(alg, "test-kid", &pkcs8).expect("key")
    }

    #[test]
    fn openidconnect_verifies_what_aws_lc_signs() {
        for alg in Alg::ALL {
            let key = key(alg);
            let issuer = IssuerUrl::new("https://id.example.test".into()).expect("issuer");
            let now = chrono::Utc::now();
            let claims = CoreIdTokenClaims::new(
                issuer.clone(),
                vec![Audience::new("client-1".into())],
                now + chrono::Duration::minutes(10),
                now,
                StandardClaims::new(SubjectIdentifier::new("user-1".into())),
                EmptyAdditionalClaims {},
            )
            .set_nonce(Some(Nonce::new("n-0S6_WzA2Mj".into())));
            let at = openidconnect::AccessToken::new("an access token".into());
            let token = CoreIdToken::new(claims, &key, alg.jws(), Some(&at), None).expect("signed");
            let jwks = CoreJsonWebKeySet::new(vec![key.as_verification_key()]);
            let verifier =
                CoreIdTokenVerifier::new_public_client(ClientId::new("client-1".into()), issuer.clone(), jwks)
                    .set_allowed_algs(vec![alg.jws()]);
            let verified = token.claims(&verifier, &Nonce::new("n-0S6_WzA2Mj".into())).expect("verifies");
            assert_eq!(verified.subject().as_str(), "user-1", "{alg:?}");

            // Another key's JWKS does not verify it; nor does a wrong nonce.
            let other = CoreJsonWebKeySet::new(vec![self::key(alg).as_verification_key()]);
            let wrong_keys =
                CoreIdTokenVerifier::new_public_client(ClientId::new("client-1".into()), issuer.clone(), other)
                    .set_allowed_algs(vec![alg.jws()]);
            assert!(token.claims(&wrong_keys, &Nonce::new("n-0S6_WzA2Mj".into())).is_err());
            assert!(token.claims(&verifier, &Nonce::new("another".into())).is_err());
        }
    }

    #[test]
    fn a_key_signs_only_its_own_algorithm() {
        let rsa = key(Alg::Rs256);
        assert!(matches!(rsa.sign(&Alg::Es256.jws(), b"x"), Err(SigningError::UnsupportedAlg(_))));
        assert_eq!(rsa.sign(&Alg::Rs256.jws(), b"x").map(|s| s.len()).ok(), Some(256));
        assert_eq!(key(Alg::Es256).sign(&Alg::Es256.jws(), b"x").map(|s| s.len()).ok(), Some(64), "r‖s");
        assert_eq!(key(Alg::EdDsa).sign(&Alg::EdDsa.jws(), b"x").map(|s| s.len()).ok(), Some(64));
        assert_eq!(Alg::parse("EdDSA"), Some(Alg::EdDsa));
        assert_eq!(Alg::parse("HS256"), None);
    }
}
