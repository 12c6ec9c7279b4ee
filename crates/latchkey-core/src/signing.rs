//! Signing tokens through aws-lc-rs behind openidconnect's
//! `PrivateSigningKey` trait, so ID tokens built with openidconnect's types
//! are signed by aws-lc (several times faster than RustCrypto's RSA here).
//! The active key is cached per instance and re-read at most every few
//! seconds, so a rotation reaches every instance quickly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKeyId, PrivateSigningKey, SigningError};

use crate::Core;
use crate::error::CoreError;

/// How long an instance keeps using the key it read before looking again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// An RSA private key that signs RS256.
pub struct AwsLcRsaKey {
    kid: String,
    pair: KeyPair,
    jwk: CoreJsonWebKey,
}

impl std::fmt::Debug for AwsLcRsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsLcRsaKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl AwsLcRsaKey {
    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<AwsLcRsaKey, CoreError> {
        let pair = KeyPair::from_pkcs8(pkcs8).map_err(|e| CoreError::Internal(format!("signing key {kid}: {e}")))?;
        let parts = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = CoreJsonWebKey::new_rsa(parts.n, parts.e, Some(JsonWebKeyId::new(kid.to_owned())));
        Ok(AwsLcRsaKey { kid: kid.to_owned(), pair, jwk })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

impl PrivateSigningKey for AwsLcRsaKey {
    type VerificationKey = CoreJsonWebKey;

    fn sign(&self, alg: &CoreJwsSigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        match alg {
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => {
                let mut signature = vec![0u8; self.pair.public_modulus_len()];
                self.pair
                    .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| SigningError::CryptoError)?;
                Ok(signature)
            }
            other => Err(SigningError::UnsupportedAlg(format!("{other:?}"))),
        }
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        self.jwk.clone()
    }
}

/// The key this instance signs with, and when it was read.
#[derive(Default)]
pub struct KeyCache {
    current: tokio::sync::RwLock<Option<(Instant, Arc<AwsLcRsaKey>)>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

impl Core {
    /// The active signing key, from this instance's cache when fresh.
    pub async fn signing_key(&self) -> Result<Arc<AwsLcRsaKey>, CoreError> {
        if let Some((read_at, key)) = self.key_cache.current.read().await.as_ref()
            && read_at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(Arc::clone(key));
        }
        let (kid, pkcs8) = self.active_signing_key().await?;
        let key = tokio::task::spawn_blocking(move || AwsLcRsaKey::from_pkcs8(&kid, &pkcs8))
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))??;
        let key = Arc::new(key);
        *self.key_cache.current.write().await = Some((Instant::now(), Arc::clone(&key)));
        Ok(key)
    }

    /// Forgets the cached key (after a rotation on this instance).
    pub async fn forget_signing_key(&self) {
        *self.key_cache.current.write().await = None;
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

    fn key() -> AwsLcRsaKey {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate");
        let pkcs8 = pair.as_der().expect("der");
        AwsLcRsaKey::from_pkcs8("test-kid", pkcs8.as_ref()).expect("key")
    }

    #[test]
    fn openidconnect_verifies_what_aws_lc_signs() {
        let key = key();
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
        let token =
            CoreIdToken::new(claims, &key, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, None, None).expect("signed");
        let jwks = CoreJsonWebKeySet::new(vec![key.as_verification_key()]);
        let verifier = CoreIdTokenVerifier::new_public_client(ClientId::new("client-1".into()), issuer.clone(), jwks);
        let verified = token.claims(&verifier, &Nonce::new("n-0S6_WzA2Mj".into())).expect("verifies");
        assert_eq!(verified.subject().as_str(), "user-1");

        // Another key's JWKS does not verify it; nor does a wrong nonce.
        let other = CoreJsonWebKeySet::new(vec![self::key().as_verification_key()]);
        let wrong_keys =
            CoreIdTokenVerifier::new_public_client(ClientId::new("client-1".into()), issuer.clone(), other);
        assert!(token.claims(&wrong_keys, &Nonce::new("n-0S6_WzA2Mj".into())).is_err());
        assert!(token.claims(&verifier, &Nonce::new("another".into())).is_err());
    }

    #[test]
    fn only_rs256_is_signed() {
        let key = key();
        assert!(matches!(
            key.sign(&CoreJwsSigningAlgorithm::EcdsaP256Sha256, b"x"),
            Err(SigningError::UnsupportedAlg(_))
        ));
        assert_eq!(key.sign(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, b"x").map(|s| s.len()).ok(), Some(256));
    }
}
