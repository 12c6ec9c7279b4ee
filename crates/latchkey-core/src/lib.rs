//! The Latchkey identity provider without HTTP. [`Core`] is the one state
//! struct, built at start-up from [`Settings`] and passed to every handler and
//! command; nothing here is global.

pub mod accounts;
pub mod admin;
pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod background;
pub mod clients;
pub mod clock;
pub mod disposable;
pub mod error;
pub mod groups;
pub mod keys;
pub mod magic;
pub mod mail;
pub mod maintenance;
pub mod mfa;
pub mod net;
pub mod oidc;
pub mod outbound;
pub mod password;
pub mod privacy;
pub mod ratelimit;
pub mod rewrap;
pub mod secrets;
pub mod sessions;
pub mod settings;
pub mod signing;
pub mod store;
pub mod tokens;
pub mod upstream;
pub mod webauthn;
pub mod webhooks;

use std::sync::Arc;

use latchkey_db::{Db, PoolOptions};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CoreError;
pub use settings::{ConfigError, Settings};

use password::{Hasher, PasswordPolicy};
use secrets::SecretBox;
use store::Store;

/// Everything a request or command needs, built once.
#[derive(Clone)]
pub struct Core {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub store: Store,
    pub secrets: Arc<SecretBox>,
    pub password_policy: PasswordPolicy,
    pub hasher: Arc<Hasher>,
    pub mailer: mail::Mailer,
    pub key_cache: Arc<signing::KeyCache>,
    /// The JWKS as served, serialized.
    pub jwks_cache: Arc<keys::JwksCache>,
    /// The discovery document, serialized once (it follows the settings).
    pub discovery_json: Arc<std::sync::OnceLock<Arc<str>>>,
    /// The published keys, for verifying tokens that come back.
    pub verify_keys: Arc<oidc::jwt::VerifyKeys>,
    /// Origins of registered redirect URIs (CORS), refreshed every few seconds.
    pub client_origins: Arc<clients::OriginCache>,
    /// The guarded client for calls to other parties.
    pub outbound: outbound::Outbound,
    /// Wakes the delivery worker when something was queued.
    pub deliveries_wakeup: Arc<tokio::sync::Notify>,
    /// Upstream providers' discovery documents and keys.
    pub upstream_metadata: Arc<upstream::MetadataCache>,
    /// Users as userinfo reads them, kept a few seconds.
    pub users: Arc<accounts::UserCache>,
    /// Tokens whose signature was checked lately (`oidc::jwt`).
    pub verified_tokens: Arc<oidc::jwt::VerifiedCache>,
    /// The global MFA policy, read again every few seconds.
    pub policy: Arc<mfa::PolicyCache>,
    /// The WebAuthn relying party (none when the public URL is an IP).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Work finishing after its answer went out.
    pub background: Arc<background::Background>,
    /// What this instance's maintenance rounds removed (for `/metrics`).
    pub purged: Arc<maintenance::PurgeTotals>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("db", &self.db)
            .field("store", &self.store)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// Why the core could not be built; shown as one line and the process stops.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("data_dir: cannot create {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("database.url: {0}")]
    Database(String),
    #[error("sessions.url: {0}")]
    Store(String),
    #[error("secrets: {0}")]
    Secrets(String),
    #[error("{0}")]
    Mail(String),
    #[error("cannot prepare the outbound HTTP client: {0}")]
    Outbound(String),
    #[error("cannot start the password hashing threads: {0}")]
    Hasher(String),
}

impl Core {
    /// Builds the core: creates `data_dir` where embedded mode needs it,
    /// prepares the database pool (without connecting) and loads the keys.
    pub fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Core, StartError> {
        // One TLS provider for everything in the process that uses rustls
        // (Redis, SMTP, outbound HTTP): aws-lc-rs. Already set is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let needs_data_dir = settings.is_embedded() || matches!(settings.secrets, settings::SecretsSettings::DataDir);
        if needs_data_dir {
            create_private_dir(&settings.data_dir).map_err(|e| StartError::DataDir {
                path: settings.data_dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let db = Db::connect(
            &settings.database.url,
            &PoolOptions {
                max_size: settings.database.pool_size,
                acquire_timeout: settings.database.acquire_timeout,
                min_idle: settings.database.idle_connections,
            },
        )
        .map_err(|e| StartError::Database(e.to_string()))?;
        let store = match &settings.sessions.url {
            Some(url) => Store::redis(url, &settings.sessions.prefix, clock.clone())
                .map_err(|e| StartError::Store(e.to_string()))?,
            None => Store::database(db.clone(), clock.clone()),
        };
        let secrets = SecretBox::from_settings(&settings).map_err(|e| StartError::Secrets(e.to_string()))?;
        let hasher = Hasher::from_settings(&settings.passwords).map_err(|e| StartError::Hasher(e.to_string()))?;
        let mailer = mail::Mailer::from_settings(&settings).map_err(|e| StartError::Mail(e.to_string()))?;
        let outbound = outbound::Outbound::new(
            Arc::new(outbound::SystemResolver),
            Arc::new(outbound::HttpTransport::new().map_err(StartError::Outbound)?),
            settings.outbound.allow_loopback,
        );
        let webauthn = match webauthn::relying_party(&settings.server.public_url) {
            Ok(w) => Some(Arc::new(w)),
            Err(e) => {
                tracing::warn!(reason = %e, "security keys and passkeys are off");
                None
            }
        };
        Ok(Core {
            policy: Arc::new(mfa::PolicyCache::default()),
            users: Arc::new(accounts::UserCache::default()),
            verified_tokens: Arc::new(oidc::jwt::VerifiedCache::default()),
            webauthn,
            password_policy: PasswordPolicy::from_settings(&settings.passwords),
            settings: Arc::new(settings),
            db,
            store,
            secrets: Arc::new(secrets),
            hasher: Arc::new(hasher),
            mailer,
            key_cache: Arc::new(signing::KeyCache::default()),
            verify_keys: Arc::new(oidc::jwt::VerifyKeys::default()),
            jwks_cache: Arc::new(keys::JwksCache::default()),
            discovery_json: Arc::new(std::sync::OnceLock::new()),
            client_origins: Arc::new(clients::OriginCache::default()),
            outbound,
            deliveries_wakeup: Arc::new(tokio::sync::Notify::new()),
            upstream_metadata: Arc::new(upstream::MetadataCache::default()),
            background: Arc::new(background::Background::default()),
            purged: Arc::new(maintenance::PurgeTotals::default()),
            clock,
        })
    }
}

/// Creates `dir` (and its parents) if missing; a folder created here is
/// readable by its owner only, since it holds the database and keys.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
