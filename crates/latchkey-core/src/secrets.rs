//! The secret box: AES-256-GCM over secrets kept at rest (TOTP seeds, upstream
//! tokens, signing keys). Every ciphertext names the key that sealed it, so keys
//! rotate without downtime: the first configured key seals, every key opens,
//! and `latchkey secrets rewrap` moves old ciphertexts to the first key.
//!
//! Format: `lk1.<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>`, where `kid` is
//! 8 hex digits derived from the key. The caller's context string (say
//! `totp:<user id>`) and the header are authenticated as associated data, so a
//! ciphertext moved to another row or another key id does not open.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::settings::{SecretsSettings, Settings, decode_key};
use crate::tokens::{hex, random_bytes, sha256};

const VERSION: &str = "lk1";
const TAG_LEN: usize = 16;
/// The key file embedded mode generates once into `data_dir`.
pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("not a sealed secret")]
    Malformed,
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the ciphertext does not authenticate (tampered, or another context)")]
    Tampered,
    #[error("no encryption key configured")]
    NoKeys,
    #[error("two configured keys are the same")]
    DuplicateKey,
    #[error("encryption failed")]
    Crypto,
    #[error("{0}")]
    KeyFile(String),
}

struct Key {
    kid: String,
    key: LessSafeKey,
}

pub struct SecretBox {
    keys: Vec<Key>,
    derive_key: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SecretBox").field("kids", &kids).finish()
    }
}

/// The public id of a key: never reveals the key itself.
pub fn key_id(key: &[u8; 32]) -> String {
    let mut input = b"latchkey key id\0".to_vec();
    input.extend_from_slice(key);
    hex(&sha256(&input)[..4])
}

impl SecretBox {
    /// The first key seals; all open.
    pub fn new(keys: &[[u8; 32]]) -> Result<SecretBox, SecretError> {
        if keys.is_empty() {
            return Err(SecretError::NoKeys);
        }
        let mut out: Vec<Key> = Vec::with_capacity(keys.len());
        for k in keys {
            let kid = key_id(k);
            if out.iter().any(|o| o.kid == kid) {
                return Err(SecretError::DuplicateKey);
            }
            let unbound = UnboundKey::new(&AES_256_GCM, k).map_err(|_| SecretError::Crypto)?;
            out.push(Key { kid, key: LessSafeKey::new(unbound) });
        }
        Ok(SecretBox { keys: out, derive_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &keys[0]) })
    }

    /// The keys the settings name, or in embedded mode the one kept in
    /// `data_dir/secret.key`, generated on first use with mode 0600.
    pub fn from_settings(settings: &Settings) -> Result<SecretBox, SecretError> {
        match &settings.secrets {
            SecretsSettings::Configured(keys) => SecretBox::new(keys),
            SecretsSettings::DataDir => SecretBox::new(&[load_or_create_key_file(&settings.data_dir)?]),
        }
    }

    /// A 256-bit key for `purpose` (CSRF tokens, cookie MACs), derived from
    /// the first key with HMAC-SHA256: every instance derives the same one,
    /// and rotating the first key rotates it.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(
            aws_lc_rs::hmac::sign(&self.derive_key, format!("latchkey derive\0{purpose}").as_bytes()).as_ref(),
        );
        out
    }

    /// The id of the key that seals.
    pub fn primary_kid(&self) -> &str {
        &self.keys[0].kid
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, SecretError> {
        let key = &self.keys[0];
        let nonce_bytes = random_bytes::<NONCE_LEN>().map_err(|_| SecretError::Crypto)?;
        let mut buf = plaintext.to_vec();
        let aad = associated_data(&key.kid, context);
        key.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad.as_slice()), &mut buf)
            .map_err(|_| SecretError::Crypto)?;
        let mut body = Vec::with_capacity(NONCE_LEN + buf.len());
        body.extend_from_slice(&nonce_bytes);
        body.extend_from_slice(&buf);
        Ok(format!("{VERSION}.{}.{}", key.kid, URL_SAFE_NO_PAD.encode(body)))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let (kid, body) = parse(sealed)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or_else(|| SecretError::UnknownKey(kid.to_owned()))?;
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Malformed)?;
        let mut buf = ct.to_vec();
        let aad = associated_data(kid, context);
        let plain =
            key.key.open_in_place(nonce, Aad::from(aad.as_slice()), &mut buf).map_err(|_| SecretError::Tampered)?;
        Ok(plain.to_vec())
    }

    /// Re-seals with the first key; `None` when it already is.
    pub fn rewrap(&self, context: &str, sealed: &str) -> Result<Option<String>, SecretError> {
        let (kid, _) = parse(sealed)?;
        if kid == self.primary_kid() {
            return Ok(None);
        }
        let plain = self.open(context, sealed)?;
        self.seal(context, &plain).map(Some)
    }
}

fn associated_data(kid: &str, context: &str) -> Vec<u8> {
    format!("{VERSION}.{kid}\0{context}").into_bytes()
}

fn parse(sealed: &str) -> Result<(&str, Vec<u8>), SecretError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(VERSION), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SecretError::Malformed);
    };
    if kid.len() != 8 || !kid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SecretError::Malformed);
    }
    let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| SecretError::Malformed)?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(SecretError::Malformed);
    }
    Ok((kid, body))
}

/// Reads `dir/secret.key`, or creates it (mode 0600) with a fresh key.
pub fn load_or_create_key_file(dir: &Path) -> Result<[u8; 32], SecretError> {
    let path = dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode_key(&text).map_err(|m| SecretError::KeyFile(format!("{}: {m}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| SecretError::KeyFile(format!("cannot create {}: {e}", dir.display())))?;
            let key = random_bytes::<32>().map_err(|_| SecretError::Crypto)?;
            write_private(&path, format!("{}\n", STANDARD.encode(key)).as_bytes())
                .map_err(|e| SecretError::KeyFile(format!("cannot write {}: {e}", path.display())))?;
            Ok(key)
        }
        Err(e) => Err(SecretError::KeyFile(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Creates a file only its owner can read; fails if it exists.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(keys: &[[u8; 32]]) -> SecretBox {
        SecretBox::new(keys).expect("keys")
    }

    #[test]
    fn seal_and_open() {
        let b = sb(&[[1; 32]]);
        let c = b.seal("totp:u1", b"JBSWY3DPEHPK3PXP").expect("seal");
        assert!(c.starts_with(&format!("lk1.{}.", b.primary_kid())));
        assert!(!c.contains("JBSWY3DP"));
        assert_eq!(b.open("totp:u1", &c).expect("open"), b"JBSWY3DPEHPK3PXP");
        assert_ne!(c, b.seal("totp:u1", b"JBSWY3DPEHPK3PXP").expect("seal"), "nonces differ");
    }

    #[test]
    fn another_context_does_not_open() {
        let b = sb(&[[1; 32]]);
        let c = b.seal("totp:u1", b"x").expect("seal");
        assert_eq!(b.open("totp:u2", &c), Err(SecretError::Tampered));
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let b = sb(&[[1; 32]]);
        let c = b.seal("ctx", b"secret value").expect("seal");
        let (head, body) = c.rsplit_once('.').expect("format");
        let mut raw = URL_SAFE_NO_PAD.decode(body).expect("b64");
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let t = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw));
            assert_eq!(b.open("ctx", &t), Err(SecretError::Tampered), "byte {i}");
            raw[i] ^= 1;
        }
        let truncated = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw[..NONCE_LEN + TAG_LEN - 1]));
        assert_eq!(b.open("ctx", &truncated), Err(SecretError::Malformed));
    }

    #[test]
    fn malformed_input_is_refused() {
        let b = sb(&[[1; 32]]);
        for bad in
            ["", "lk1", "lk1.abc", "lk2.00000000.AAAA", "lk1.zzzzzzzz.AAAA", "lk1.0000000.AAAA", "lk1.00000000.!!!"]
        {
            assert_eq!(b.open("ctx", bad), Err(SecretError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn key_id_swapped_in_header_is_refused() {
        let b = sb(&[[1; 32], [2; 32]]);
        let c = b.seal("ctx", b"v").expect("seal");
        let other = key_id(&[2; 32]);
        let swapped = c.replacen(b.primary_kid(), &other, 1);
        assert_eq!(b.open("ctx", &swapped), Err(SecretError::Tampered));
    }

    #[test]
    fn unknown_key_id() {
        let old = sb(&[[9; 32]]);
        let c = old.seal("ctx", b"v").expect("seal");
        let b = sb(&[[1; 32]]);
        assert_eq!(b.open("ctx", &c), Err(SecretError::UnknownKey(key_id(&[9; 32]))));
    }

    #[test]
    fn rotation_and_rewrap() {
        let old = sb(&[[1; 32]]);
        let c_old = old.seal("ctx", b"value").expect("seal");
        // New key first, old key still listed: old ciphertexts open.
        let rotated = sb(&[[2; 32], [1; 32]]);
        assert_eq!(rotated.open("ctx", &c_old).expect("open"), b"value");
        let c_new = rotated.rewrap("ctx", &c_old).expect("rewrap").expect("changed");
        assert!(c_new.starts_with(&format!("lk1.{}.", key_id(&[2; 32]))));
        assert_eq!(rotated.rewrap("ctx", &c_new).expect("rewrap"), None, "already under the first key");
        // Once rewrapped, the old key can be dropped.
        let only_new = sb(&[[2; 32]]);
        assert_eq!(only_new.open("ctx", &c_new).expect("open"), b"value");
        assert!(matches!(only_new.open("ctx", &c_old), Err(SecretError::UnknownKey(_))));
    }

    #[test]
    fn derived_keys_depend_on_purpose_and_first_key() {
        let a = sb(&[[1; 32], [2; 32]]);
        let b = sb(&[[1; 32]]);
        let c = sb(&[[2; 32], [1; 32]]);
        assert_eq!(a.derive("csrf"), b.derive("csrf"), "only the first key matters");
        assert_ne!(a.derive("csrf"), a.derive("device"));
        assert_ne!(a.derive("csrf"), c.derive("csrf"));
        assert_ne!(a.derive("csrf"), [1; 32]);
    }

    #[test]
    fn key_lists_are_checked() {
        assert_eq!(SecretBox::new(&[]).err(), Some(SecretError::NoKeys));
        assert_eq!(SecretBox::new(&[[1; 32], [1; 32]]).err(), Some(SecretError::DuplicateKey));
    }

    #[test]
    fn key_file_is_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("data");
        let k1 = load_or_create_key_file(&sub).expect("create");
        let k2 = load_or_create_key_file(&sub).expect("read back");
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(sub.join(KEY_FILE)).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(sub.join(KEY_FILE), "garbage").expect("write");
        assert!(matches!(load_or_create_key_file(&sub), Err(SecretError::KeyFile(_))));
    }
}
