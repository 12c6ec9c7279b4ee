//! Configuration: a TOML file (`--config FILE` or `LATCHKEY_CONFIG`) with every
//! key overridable by `LATCHKEY_` + the key path in upper case, `__` between
//! sections (SPEC §3). Loading validates everything once and names the key in
//! every refusal, so a bad configuration stops the start with one clear line.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use ipnet::IpNet;
use serde::Deserialize;
use url::{Host, Url};

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { key: key.into(), message: message.into() }
    }
}

// ---------------------------------------------------------------------------
// What the file and environment may say (raw, before validation).

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    server: RawServer,
    data_dir: Option<String>,
    database: RawDatabase,
    secrets: RawSecrets,
    passwords: RawPasswords,
    log: RawLog,
    sessions: RawSessions,
    mail: RawMail,
    lifetimes: RawLifetimes,
    providers: providers::RawProviders,
    limits: RawLimits,
    keys: RawKeys,
    outbound: RawOutbound,
    magic_links: RawMagicLinks,
    retention: RawRetention,
    signup: RawSignup,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetention {
    audit_days: Option<u64>,
    unverified_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSignup {
    allow_disposable: Option<bool>,
    #[serde(deserialize_with = "string_or_list")]
    disposable_domains: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMagicLinks {
    create_accounts: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOutbound {
    allow_loopback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    bind: Option<String>,
    public_url: Option<String>,
    #[serde(deserialize_with = "string_or_list")]
    trusted_proxies: Option<Vec<String>>,
    #[serde(deserialize_with = "string_or_list")]
    metrics_allow: Option<Vec<String>>,
    max_body_bytes: Option<u64>,
    workers: Option<u32>,
    shutdown_timeout_secs: Option<u64>,
    #[serde(deserialize_with = "string_or_list")]
    security_contact: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: Option<String>,
    url_file: Option<String>,
    pool_size: Option<u32>,
    acquire_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawKeys {
    rsa_bits: Option<u32>,
    rotation_lead_secs: Option<u64>,
    rotate_after_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMail {
    smtp_url: Option<String>,
    smtp_url_file: Option<String>,
    from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLifetimes {
    session_idle_secs: Option<u64>,
    session_absolute_secs: Option<u64>,
    reauthentication_secs: Option<u64>,
    verification_link_secs: Option<u64>,
    reset_link_secs: Option<u64>,
    known_device_secs: Option<u64>,
    authorization_code_secs: Option<u64>,
    access_token_secs: Option<u64>,
    id_token_secs: Option<u64>,
    refresh_idle_secs: Option<u64>,
    refresh_absolute_secs: Option<u64>,
    refresh_reuse_grace_secs: Option<u64>,
    magic_link_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    login_failures_per_account: Option<u64>,
    login_failure_window_secs: Option<u64>,
    login_failures_per_address_per_minute: Option<u64>,
    login_failures_per_address_per_hour: Option<u64>,
    signup_per_minute: Option<u64>,
    reset_mails_per_account_per_hour: Option<u64>,
    reset_requests_per_address_per_hour: Option<u64>,
    account_mails_per_hour: Option<u64>,
    magic_link_mails_per_account_per_hour: Option<u64>,
    magic_link_requests_per_address_per_hour: Option<u64>,
    authorization_requests_per_address_per_minute: Option<u64>,
    admin_api_requests_per_key_per_minute: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSessions {
    url: Option<String>,
    url_file: Option<String>,
    prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSecrets {
    #[serde(deserialize_with = "string_or_list")]
    encryption_keys: Option<Vec<String>>,
    encryption_keys_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPasswords {
    bcrypt_cost: Option<u32>,
    min_length: Option<u32>,
    min_strength: Option<u8>,
    hash_threads: Option<u32>,
    hash_queue: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

/// A list given either as a TOML array or as one comma-separated string (the
/// only form an environment variable has).
fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::Many(v)) => Some(v),
        Some(OneOrMany::One(s)) => {
            Some(s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect())
        }
    })
}

// ---------------------------------------------------------------------------
// The validated settings everything else reads.

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub sessions: SessionSettings,
    pub secrets: SecretsSettings,
    pub passwords: PasswordSettings,
    pub log: LogSettings,
    pub mail: MailSettings,
    pub lifetimes: Lifetimes,
    pub limits: Limits,
    pub keys: KeySettings,
    pub outbound: OutboundSettings,
    pub magic_links: MagicLinkSettings,
    pub retention: RetentionSettings,
    pub signup: SignupSettings,
    /// Upstream OpenID providers, in the order of the sign-in buttons.
    pub providers: Vec<providers::UpstreamProvider>,
}

/// Sign-in links by mail.
#[derive(Debug, Clone, Default)]
pub struct MagicLinkSettings {
    /// Whether a link may be sent to an address with no account, creating
    /// the account (with that address verified) when it is used.
    pub create_accounts: bool,
}

/// What the maintenance round deletes, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Audit events older than this many days are deleted.
    pub audit_days: u64,
    /// Accounts whose address was never verified are deleted this many days
    /// after they were created; `None`: never.
    pub unverified_days: Option<u64>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings { audit_days: 730, unverified_days: Some(30) }
    }
}

/// Self sign-up rules (the sign-up form, sign-in links that create
/// accounts, an upstream provider's first sign-in).
#[derive(Debug, Clone, Default)]
pub struct SignupSettings {
    /// Let addresses at disposable-mail domains sign up.
    pub allow_disposable: bool,
    /// Domains refused besides the built-in list (lower case, each also
    /// covering its subdomains).
    pub disposable_domains: std::collections::HashSet<String>,
}

/// Calls made on others' behalf (back-channel logout).
#[derive(Debug, Clone, Default)]
pub struct OutboundSettings {
    /// Allow loopback targets: for tests and local development only.
    pub allow_loopback: bool,
}

/// Token signing keys.
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// Size of new RSA keys: 2048, 3072 (default, 128-bit strength) or 4096.
    pub rsa_bits: u32,
    /// How long a new key is published before it signs (longer than
    /// relying parties may cache the JWKS).
    pub rotation_lead: Duration,
    /// Scheduled rotation: a key this old is replaced; `None`: never.
    pub rotate_after: Option<Duration>,
}

/// Outgoing mail: SMTP when `smtp_url` is set, else `.eml` files in
/// `data_dir/outbox`.
#[derive(Clone)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub from: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_deref().map(latchkey_db::redact_url))
            .field("from", &self.from)
            .finish()
    }
}

/// How long things live (SPEC §5 defaults).
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// A sign-in this recent allows sensitive account actions.
    pub reauthentication: Duration,
    pub verification_link: Duration,
    pub reset_link: Duration,
    /// How long a browser that signed in successfully stays exempt from the
    /// per-account failure limit.
    pub known_device: Duration,
    /// An authorization code must be redeemed within this (single use).
    pub authorization_code: Duration,
    /// Access tokens (RFC 9068 JWTs) and ID tokens.
    pub access_token: Duration,
    pub id_token: Duration,
    /// A refresh token unused this long expires; a family ends this long
    /// after its first grant whatever happens.
    pub refresh_idle: Duration,
    pub refresh_absolute: Duration,
    /// A rotated refresh token presented again within this gets the same
    /// successor; after it, the family is revoked.
    pub refresh_reuse_grace: Duration,
    /// A sign-in link by mail works once, this long.
    pub magic_link: Duration,
}

/// Rate limits (SPEC §5 defaults), counted in the store.
#[derive(Debug, Clone)]
pub struct Limits {
    pub login_failures_per_account: u64,
    pub login_failure_window: Duration,
    pub login_failures_per_address_per_minute: u64,
    pub login_failures_per_address_per_hour: u64,
    pub signup_per_minute: u64,
    pub reset_mails_per_account_per_hour: u64,
    pub reset_requests_per_address_per_hour: u64,
    pub account_mails_per_hour: u64,
    pub magic_link_mails_per_account_per_hour: u64,
    pub magic_link_requests_per_address_per_hour: u64,
    /// New authorization requests (each kept a while in the store).
    pub authorization_requests_per_address_per_minute: u64,
    /// Admin API requests per API key (or admin token) per minute.
    pub admin_api_requests_per_key_per_minute: u64,
}

/// Where short-lived state lives: Redis when `url` is set, else the SQL
/// database.
#[derive(Clone)]
pub struct SessionSettings {
    pub url: Option<String>,
    /// Every Redis key begins with this.
    pub prefix: String,
}

impl std::fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSettings")
            .field("url", &self.url.as_deref().map(latchkey_db::redact_url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// The issuer, without a trailing slash: `http://localhost:8080`.
    pub public_url: String,
    pub https: bool,
    pub trusted_proxies: Vec<IpNet>,
    pub metrics_allow: Vec<IpNet>,
    pub max_body_bytes: usize,
    pub workers: Option<usize>,
    pub shutdown_timeout: Duration,
    pub security_contact: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    /// True when the URL is the default SQLite file under `data_dir`.
    pub embedded: bool,
    pub pool_size: u32,
    pub acquire_timeout: Duration,
    /// Connections kept open while idle: 1 for the server, 0 for one-shot
    /// commands (set by the binary, not a configuration key).
    pub idle_connections: u32,
}

/// Where the secret box gets its keys.
#[derive(Clone)]
pub enum SecretsSettings {
    /// Keys from configuration: the first encrypts, all decrypt.
    Configured(Vec<[u8; 32]>),
    /// Embedded mode: one key generated once into `data_dir`.
    DataDir,
}

impl std::fmt::Debug for SecretsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretsSettings::Configured(k) => write!(f, "Configured({} keys)", k.len()),
            SecretsSettings::DataDir => f.write_str("DataDir"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PasswordSettings {
    pub bcrypt_cost: u32,
    pub min_length: usize,
    /// Lowest acceptable zxcvbn score (0–4).
    pub min_strength: u8,
    pub hash_threads: usize,
    pub hash_queue: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:8080";
pub const MIN_BCRYPT_COST: u32 = 10;

/// Environment variables that begin with the prefix but are not keys.
fn is_reserved_env(name: &str) -> bool {
    name == "LATCHKEY_CONFIG" || name.starts_with("LATCHKEY_TEST_")
}

impl Settings {
    /// Loads the file (if any) and the `LATCHKEY_*` variables among `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Settings, ConfigError> {
        let text = match file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("--config", format!("cannot read {}: {}", path.display(), io_reason(&e)))
            })?),
            None => None,
        };
        Self::from_sources(text.as_deref(), env)
    }

    /// The same from a TOML text (tests build settings this way).
    pub fn from_sources(
        toml_text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let vars: config::Map<String, String> =
            env.into_iter().filter(|(k, _)| k.starts_with("LATCHKEY_") && !is_reserved_env(k)).collect();
        for key in vars.keys() {
            let rest = &key["LATCHKEY_".len()..];
            if rest.split("__").any(|part| part.is_empty() || part.starts_with('_') || part.ends_with('_')) {
                return Err(ConfigError::new(key.as_str(), "malformed variable name"));
            }
        }
        let mut builder = config::Config::builder();
        if let Some(text) = toml_text {
            builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("LATCHKEY").prefix_separator("_").separator("__").source(Some(vars)),
        );
        let cfg = builder.build().map_err(|e| ConfigError::new("config file", one_line(&e.to_string())))?;
        let raw: RawSettings = serde_path_to_error::deserialize(cfg).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::new(if key == "." { "config".to_owned() } else { key }, one_line(&e.into_inner().to_string()))
        })?;
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Settings, ConfigError> {
        let server = validate_server(raw.server)?;
        let data_dir = PathBuf::from(raw.data_dir.unwrap_or_else(|| "./data".to_owned()));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }

        let db_url = secret_or_file("database.url", raw.database.url, raw.database.url_file)?;
        let (url, embedded) = match db_url {
            Some(u) => (u, false),
            None => (format!("sqlite://{}", data_dir.join("latchkey.db").display()), true),
        };
        let target = latchkey_db::DbTarget::parse(&url).map_err(|e| ConfigError::new("database.url", e.to_string()))?;
        let pool_size = raw.database.pool_size.unwrap_or(10);
        if !(1..=500).contains(&pool_size) {
            return Err(ConfigError::new("database.pool_size", "must be between 1 and 500"));
        }
        let acquire_ms = raw.database.acquire_timeout_ms.unwrap_or(2000);
        if !(50..=60_000).contains(&acquire_ms) {
            return Err(ConfigError::new("database.acquire_timeout_ms", "must be between 50 and 60000"));
        }
        let database = DatabaseSettings {
            url,
            embedded,
            pool_size,
            acquire_timeout: Duration::from_millis(acquire_ms),
            idle_connections: 1,
        };

        let sessions = validate_sessions(raw.sessions)?;
        let secrets = validate_secrets(raw.secrets, target.backend)?;
        let passwords = validate_passwords(raw.passwords)?;
        let log = LogSettings {
            format: match raw.log.format.as_deref().unwrap_or("text") {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::new("log.format", format!("{other:?} is not one of text, json")));
                }
            },
            level: {
                let level = raw.log.level.unwrap_or_else(|| "info".to_owned());
                if level.parse::<tracing::Level>().is_err() && !level.eq_ignore_ascii_case("off") {
                    return Err(ConfigError::new(
                        "log.level",
                        format!("{level:?} is not one of off, error, warn, info, debug, trace"),
                    ));
                }
                level.to_ascii_lowercase()
            },
        };
        let mail = validate_mail(raw.mail, &server.public_url)?;
        let lifetimes = validate_lifetimes(raw.lifetimes)?;
        let limits = validate_limits(raw.limits)?;
        let keys = KeySettings {
            rsa_bits: match raw.keys.rsa_bits.unwrap_or(3072) {
                b @ (2048 | 3072 | 4096) => b,
                other => {
                    return Err(ConfigError::new("keys.rsa_bits", format!("{other} is not one of 2048, 3072, 4096")));
                }
            },
            rotation_lead: secs(
                "keys.rotation_lead_secs",
                raw.keys.rotation_lead_secs,
                900,
                crate::keys::JWKS_MAX_AGE.as_secs() + 60,
                7 * 86_400,
            )?,
            rotate_after: match raw.keys.rotate_after_days.unwrap_or(90) {
                0 => None,
                d @ 1..=3650 => Some(Duration::from_secs(d * 86_400)),
                _ => {
                    return Err(ConfigError::new(
                        "keys.rotate_after_days",
                        "must be between 1 and 3650 days, or 0 for no scheduled rotation",
                    ));
                }
            },
        };
        let outbound = OutboundSettings { allow_loopback: raw.outbound.allow_loopback.unwrap_or(false) };
        let providers = providers::validate(raw.providers, outbound.allow_loopback)?;
        let magic_links = MagicLinkSettings { create_accounts: raw.magic_links.create_accounts.unwrap_or(false) };
        let retention = validate_retention(raw.retention)?;
        let signup = validate_signup(raw.signup)?;
        Ok(Settings {
            server,
            data_dir,
            database,
            sessions,
            secrets,
            passwords,
            log,
            mail,
            lifetimes,
            limits,
            keys,
            outbound,
            magic_links,
            retention,
            signup,
            providers,
        })
    }

    /// Embedded mode: the database is the SQLite file under `data_dir`.
    pub fn is_embedded(&self) -> bool {
        self.database.embedded
    }
}

fn validate_server(raw: RawServer) -> Result<ServerSettings, ConfigError> {
    let bind_text = raw.bind.unwrap_or_else(|| DEFAULT_BIND.to_owned());
    let bind: SocketAddr = bind_text.trim().parse().map_err(|_| {
        ConfigError::new("server.bind", format!("{bind_text:?} is not an address and port such as 127.0.0.1:8080"))
    })?;

    let public_text = raw.public_url.unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned());
    let public_url = validate_public_url(&public_text)?;
    let https = public_url.starts_with("https://");

    let trusted_proxies = parse_nets("server.trusted_proxies", raw.trusted_proxies.unwrap_or_default())?;
    let metrics_allow = match raw.metrics_allow {
        Some(list) => parse_nets("server.metrics_allow", list)?,
        None => parse_nets("server.metrics_allow", vec!["127.0.0.0/8".into(), "::1/128".into()])?,
    };
    let max_body_bytes = raw.max_body_bytes.unwrap_or(64 * 1024);
    if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
        return Err(ConfigError::new("server.max_body_bytes", "must be between 1024 and 16777216"));
    }
    let workers = match raw.workers {
        None => None,
        Some(n) if (1..=256).contains(&n) => Some(n as usize),
        Some(_) => {
            return Err(ConfigError::new("server.workers", "must be between 1 and 256"));
        }
    };
    let shutdown = raw.shutdown_timeout_secs.unwrap_or(30);
    if shutdown > 3600 {
        return Err(ConfigError::new("server.shutdown_timeout_secs", "must be at most 3600"));
    }
    let security_contact = match raw.security_contact {
        Some(list) if !list.is_empty() => {
            for c in &list {
                let ok = Url::parse(c).map(|u| matches!(u.scheme(), "mailto" | "https" | "tel")).unwrap_or(false);
                if !ok {
                    return Err(ConfigError::new(
                        "server.security_contact",
                        format!("{c:?} is not a mailto:, https: or tel: URI"),
                    ));
                }
            }
            list
        }
        _ => {
            let host = Url::parse(&public_url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
            vec![format!("mailto:security@{host}")]
        }
    };
    Ok(ServerSettings {
        bind,
        public_url,
        https,
        trusted_proxies,
        metrics_allow,
        max_body_bytes: max_body_bytes as usize,
        workers,
        shutdown_timeout: Duration::from_secs(shutdown),
        security_contact,
    })
}

/// The issuer: http(s), a host name (WebAuthn needs one, never an IP), no
/// path, query, fragment or credentials. Returned without a trailing slash.
pub fn validate_public_url(text: &str) -> Result<String, ConfigError> {
    const KEY: &str = "server.public_url";
    let url = Url::parse(text.trim()).map_err(|e| ConfigError::new(KEY, format!("{text:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(KEY, format!("scheme {:?} is not http or https", url.scheme())));
    }
    match url.host() {
        Some(Host::Domain(_)) => {}
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
            return Err(ConfigError::new(
                KEY,
                "must use a host name, not an IP address (WebAuthn needs one; use localhost for local use)",
            ));
        }
        None => return Err(ConfigError::new(KEY, "has no host")),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(KEY, "must not have a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(KEY, "must not carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn parse_nets(key: &str, list: Vec<String>) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .map(|item| {
            let item = item.trim();
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ConfigError::new(key, format!("{item:?} is not an IP address or CIDR range")))
        })
        .collect()
}

fn validate_secrets(raw: RawSecrets, backend: latchkey_db::Backend) -> Result<SecretsSettings, ConfigError> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let inline = raw.encryption_keys.unwrap_or_default();
    if !inline.is_empty() && raw.encryption_keys_file.is_some() {
        return Err(ConfigError::new(
            "secrets.encryption_keys_file",
            "give either encryption_keys or encryption_keys_file, not both",
        ));
    }
    for (i, k) in inline.into_iter().enumerate() {
        entries.push((format!("secrets.encryption_keys[{i}]"), k));
    }
    if let Some(path) = raw.encryption_keys_file {
        let text = read_secret_file("secrets.encryption_keys_file", &path)?;
        for (i, line) in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).enumerate() {
            entries.push((format!("secrets.encryption_keys_file (key {})", i + 1), line.to_owned()));
        }
        if entries.is_empty() {
            return Err(ConfigError::new("secrets.encryption_keys_file", format!("{path} holds no key")));
        }
    }
    if entries.is_empty() {
        return match backend {
            latchkey_db::Backend::Sqlite => Ok(SecretsSettings::DataDir),
            latchkey_db::Backend::Postgres => Err(ConfigError::new(
                "secrets.encryption_keys",
                "required with a PostgreSQL database: one or more base64 32-byte keys (make one with: openssl rand -base64 32)",
            )),
        };
    }
    let mut keys = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        keys.push(decode_key(&value).map_err(|m| ConfigError::new(key, m))?);
    }
    Ok(SecretsSettings::Configured(keys))
}

/// A base64 (standard or URL-safe, padded or not) 32-byte key.
pub fn decode_key(text: &str) -> Result<[u8; 32], String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = text.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
        .ok_or_else(|| "not valid base64".to_owned())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("must decode to 32 bytes, not {}", bytes.len()))
}

fn validate_mail(raw: RawMail, public_url: &str) -> Result<MailSettings, ConfigError> {
    let smtp_url = secret_or_file("mail.smtp_url", raw.smtp_url, raw.smtp_url_file)?;
    if let Some(u) = &smtp_url {
        let parsed = Url::parse(u).map_err(|e| ConfigError::new("mail.smtp_url", format!("not a valid URL ({e})")))?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err(ConfigError::new(
                "mail.smtp_url",
                format!("unsupported scheme {:?}; expected smtp:// or smtps://", parsed.scheme()),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::new("mail.smtp_url", "has no host"));
        }
        if let Some((_, tls)) = parsed.query_pairs().find(|(k, _)| k == "tls")
            && !matches!(tls.as_ref(), "required" | "opportunistic")
        {
            return Err(ConfigError::new(
                "mail.smtp_url",
                format!("tls={tls:?} is not one of required, opportunistic"),
            ));
        }
    }
    let from = match raw.from {
        Some(f) => f,
        None => {
            let host = Url::parse(public_url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
            format!("Latchkey <no-reply@{host}>")
        }
    };
    from.parse::<lettre::message::Mailbox>().map_err(|_| {
        ConfigError::new("mail.from", format!("{from:?} is not an address such as \"Latchkey <id@example.com>\""))
    })?;
    Ok(MailSettings { smtp_url, from })
}

fn secs(key: &str, value: Option<u64>, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
    let v = value.unwrap_or(default);
    if !(min..=max).contains(&v) {
        return Err(ConfigError::new(key, format!("must be between {min} and {max} seconds")));
    }
    Ok(Duration::from_secs(v))
}

fn validate_lifetimes(raw: RawLifetimes) -> Result<Lifetimes, ConfigError> {
    const DAY: u64 = 86_400;
    let session_idle = secs("lifetimes.session_idle_secs", raw.session_idle_secs, DAY, 60, 90 * DAY)?;
    let session_absolute = secs("lifetimes.session_absolute_secs", raw.session_absolute_secs, 14 * DAY, 60, 365 * DAY)?;
    if session_idle > session_absolute {
        return Err(ConfigError::new("lifetimes.session_idle_secs", "must not exceed lifetimes.session_absolute_secs"));
    }
    let refresh_idle = secs("lifetimes.refresh_idle_secs", raw.refresh_idle_secs, 30 * DAY, 3600, 365 * DAY)?;
    let refresh_absolute =
        secs("lifetimes.refresh_absolute_secs", raw.refresh_absolute_secs, 90 * DAY, 3600, 2 * 365 * DAY)?;
    if refresh_idle > refresh_absolute {
        return Err(ConfigError::new("lifetimes.refresh_idle_secs", "must not exceed lifetimes.refresh_absolute_secs"));
    }
    Ok(Lifetimes {
        session_idle,
        session_absolute,
        reauthentication: secs("lifetimes.reauthentication_secs", raw.reauthentication_secs, 600, 60, DAY)?,
        verification_link: secs("lifetimes.verification_link_secs", raw.verification_link_secs, DAY, 300, 14 * DAY)?,
        reset_link: secs("lifetimes.reset_link_secs", raw.reset_link_secs, 3600, 300, DAY)?,
        known_device: secs("lifetimes.known_device_secs", raw.known_device_secs, 30 * DAY, 3600, 365 * DAY)?,
        authorization_code: secs("lifetimes.authorization_code_secs", raw.authorization_code_secs, 60, 10, 600)?,
        access_token: secs("lifetimes.access_token_secs", raw.access_token_secs, 600, 60, DAY)?,
        id_token: secs("lifetimes.id_token_secs", raw.id_token_secs, 600, 60, DAY)?,
        refresh_idle,
        refresh_absolute,
        refresh_reuse_grace: secs("lifetimes.refresh_reuse_grace_secs", raw.refresh_reuse_grace_secs, 10, 0, 60)?,
        magic_link: secs("lifetimes.magic_link_secs", raw.magic_link_secs, 600, 60, 3600)?,
    })
}

fn limit(key: &str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    let v = value.unwrap_or(default);
    if !(1..=1_000_000).contains(&v) {
        return Err(ConfigError::new(key, "must be between 1 and 1000000"));
    }
    Ok(v)
}

fn validate_limits(raw: RawLimits) -> Result<Limits, ConfigError> {
    Ok(Limits {
        login_failures_per_account: limit("limits.login_failures_per_account", raw.login_failures_per_account, 5)?,
        login_failure_window: secs("limits.login_failure_window_secs", raw.login_failure_window_secs, 900, 60, 86_400)?,
        login_failures_per_address_per_minute: limit(
            "limits.login_failures_per_address_per_minute",
            raw.login_failures_per_address_per_minute,
            20,
        )?,
        login_failures_per_address_per_hour: limit(
            "limits.login_failures_per_address_per_hour",
            raw.login_failures_per_address_per_hour,
            100,
        )?,
        signup_per_minute: limit("limits.signup_per_minute", raw.signup_per_minute, 5)?,
        reset_mails_per_account_per_hour: limit(
            "limits.reset_mails_per_account_per_hour",
            raw.reset_mails_per_account_per_hour,
            3,
        )?,
        reset_requests_per_address_per_hour: limit(
            "limits.reset_requests_per_address_per_hour",
            raw.reset_requests_per_address_per_hour,
            20,
        )?,
        account_mails_per_hour: limit("limits.account_mails_per_hour", raw.account_mails_per_hour, 5)?,
        magic_link_mails_per_account_per_hour: limit(
            "limits.magic_link_mails_per_account_per_hour",
            raw.magic_link_mails_per_account_per_hour,
            5,
        )?,
        magic_link_requests_per_address_per_hour: limit(
            "limits.magic_link_requests_per_address_per_hour",
            raw.magic_link_requests_per_address_per_hour,
            20,
        )?,
        authorization_requests_per_address_per_minute: limit(
            "limits.authorization_requests_per_address_per_minute",
            raw.authorization_requests_per_address_per_minute,
            300,
        )?,
        admin_api_requests_per_key_per_minute: limit(
            "limits.admin_api_requests_per_key_per_minute",
            raw.admin_api_requests_per_key_per_minute,
            600,
        )?,
    })
}

fn validate_retention(raw: RawRetention) -> Result<RetentionSettings, ConfigError> {
    let audit_days = raw.audit_days.unwrap_or(730);
    if !(1..=36_500).contains(&audit_days) {
        return Err(ConfigError::new(
            "retention.audit_days",
            "must be between 1 and 36500 days (audit events cannot be kept for less than a day)",
        ));
    }
    let unverified_days = match raw.unverified_days.unwrap_or(30) {
        0 => None,
        d @ 1..=3650 => Some(d),
        _ => {
            return Err(ConfigError::new(
                "retention.unverified_days",
                "must be between 1 and 3650 days, or 0 to keep accounts whose address was never verified",
            ));
        }
    };
    Ok(RetentionSettings { audit_days, unverified_days })
}

fn validate_signup(raw: RawSignup) -> Result<SignupSettings, ConfigError> {
    let mut disposable_domains = std::collections::HashSet::new();
    for (i, entry) in raw.disposable_domains.unwrap_or_default().iter().enumerate() {
        let domain = crate::disposable::normalize_domain(entry).ok_or_else(|| {
            ConfigError::new(
                format!("signup.disposable_domains[{i}]"),
                format!("{entry:?} is not a domain name such as mailinator.com"),
            )
        })?;
        disposable_domains.insert(domain);
    }
    Ok(SignupSettings { allow_disposable: raw.allow_disposable.unwrap_or(false), disposable_domains })
}

fn validate_sessions(raw: RawSessions) -> Result<SessionSettings, ConfigError> {
    let url = secret_or_file("sessions.url", raw.url, raw.url_file)?;
    if let Some(u) = &url {
        let scheme = u.split_once("://").map(|(s, _)| s).unwrap_or("");
        if !matches!(scheme, "redis" | "rediss") {
            let key = "sessions.url";
            return Err(ConfigError::new(
                key,
                if scheme.is_empty() {
                    "not a URL; expected redis://… or rediss://…".to_owned()
                } else {
                    format!("unsupported scheme {scheme:?}; expected redis:// or rediss://")
                },
            ));
        }
        Url::parse(u).map_err(|e| ConfigError::new("sessions.url", format!("not a valid URL ({e})")))?;
    }
    let prefix = raw.prefix.unwrap_or_else(|| "latchkey:".to_owned());
    if prefix.is_empty() || prefix.len() > 64 || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new("sessions.prefix", "1 to 64 characters, no spaces"));
    }
    Ok(SessionSettings { url, prefix })
}

fn validate_passwords(raw: RawPasswords) -> Result<PasswordSettings, ConfigError> {
    let cost = raw.bcrypt_cost.unwrap_or(12);
    if !(MIN_BCRYPT_COST..=16).contains(&cost) {
        return Err(ConfigError::new("passwords.bcrypt_cost", format!("must be between {MIN_BCRYPT_COST} and 16")));
    }
    let min_length = raw.min_length.unwrap_or(8);
    if !(8..=64).contains(&min_length) {
        return Err(ConfigError::new("passwords.min_length", "must be between 8 and 64"));
    }
    let min_strength = raw.min_strength.unwrap_or(3);
    if min_strength > 4 {
        return Err(ConfigError::new("passwords.min_strength", "must be a zxcvbn score between 0 and 4"));
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let hash_threads = raw.hash_threads.map(|n| n as usize).unwrap_or(cores);
    if !(1..=256).contains(&hash_threads) {
        return Err(ConfigError::new("passwords.hash_threads", "must be between 1 and 256"));
    }
    let hash_queue = raw.hash_queue.map(|n| n as usize).unwrap_or(64);
    if !(1..=100_000).contains(&hash_queue) {
        return Err(ConfigError::new("passwords.hash_queue", "must be between 1 and 100000"));
    }
    Ok(PasswordSettings { bcrypt_cost: cost, min_length: min_length as usize, min_strength, hash_threads, hash_queue })
}

/// A secret given inline or as `…_file` naming a file; not both.
fn secret_or_file(key: &str, inline: Option<String>, file: Option<String>) -> Result<Option<String>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            Err(ConfigError::new(format!("{key}_file"), format!("give either {key} or {key}_file, not both")))
        }
        (Some(v), None) => {
            if v.trim().is_empty() {
                Err(ConfigError::new(key, "must not be empty"))
            } else {
                Ok(Some(v))
            }
        }
        (None, Some(path)) => {
            let key_file = format!("{key}_file");
            let v = read_secret_file(&key_file, &path)?;
            let v = v.trim_end_matches(['\n', '\r']).to_owned();
            if v.trim().is_empty() {
                return Err(ConfigError::new(key_file, format!("{path} is empty")));
            }
            Ok(Some(v))
        }
        (None, None) => Ok(None),
    }
}

fn read_secret_file(key: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::new(key, format!("cannot read {path}: {}", io_reason(&e))))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub mod providers;

#[cfg(test)]
mod tests;
