use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load(toml: Option<&str>, pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_sources(toml, env(pairs))
}

fn key_of(r: Result<Settings, ConfigError>) -> String {
    match r {
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => e.key,
    }
}

#[test]
fn defaults_are_embedded_mode() {
    let s = load(None, &[]).expect("defaults load");
    assert_eq!(s.server.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(s.server.public_url, "http://localhost:8080");
    assert!(!s.server.https);
    assert_eq!(s.data_dir, PathBuf::from("./data"));
    assert!(s.is_embedded());
    assert_eq!(s.database.url, "sqlite://./data/latchkey.db");
    assert!(matches!(s.secrets, SecretsSettings::DataDir));
    assert_eq!(s.passwords.bcrypt_cost, 12);
    assert_eq!(s.passwords.min_length, 8);
    assert_eq!(s.server.metrics_allow.len(), 2);
    assert!(s.server.trusted_proxies.is_empty());
    assert_eq!(s.server.security_contact, vec!["mailto:security@localhost".to_owned()]);
}

#[test]
fn file_then_environment() {
    let toml = r#"
        data_dir = "/var/lib/latchkey"
        [server]
        bind = "0.0.0.0:9000"
        public_url = "https://id.example.com/"
        trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
        [passwords]
        bcrypt_cost = 11
    "#;
    let s = load(
        Some(toml),
        &[
            ("LATCHKEY_SERVER__BIND", "127.0.0.1:7000"),
            ("LATCHKEY_PASSWORDS__MIN_LENGTH", "10"),
            ("LATCHKEY_CONFIG", "/somewhere.toml"),
            ("LATCHKEY_TEST_DATABASE_URL", "postgres://x"),
            ("LATCHKEY_TEST_ANYTHING__ELSE", "1"),
            ("PATH", "/usr/bin"),
        ],
    )
    .expect("loads");
    assert_eq!(s.server.bind.to_string(), "127.0.0.1:7000");
    assert_eq!(s.server.public_url, "https://id.example.com");
    assert!(s.server.https);
    assert_eq!(s.server.trusted_proxies.len(), 2);
    assert_eq!(s.passwords.bcrypt_cost, 11);
    assert_eq!(s.passwords.min_length, 10);
    assert_eq!(s.database.url, "sqlite:///var/lib/latchkey/latchkey.db");
}

#[test]
fn lists_from_environment_are_comma_separated() {
    let s = load(None, &[("LATCHKEY_SERVER__TRUSTED_PROXIES", "10.1.2.3, 192.0.2.0/24,2001:db8::/32")]).expect("loads");
    let nets: Vec<String> = s.server.trusted_proxies.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, vec!["10.1.2.3/32", "192.0.2.0/24", "2001:db8::/32"]);
}

#[test]
fn string_values_stay_exact() {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    // A digits-only value must stay a string where a string is expected.
    let s = load(
        None,
        &[
            ("LATCHKEY_DATA_DIR", "0123"),
            ("LATCHKEY_DATABASE__URL", "postgres://u:0123@h/db"),
            ("LATCHKEY_SECRETS__ENCRYPTION_KEYS", &key),
        ],
    )
    .expect("loads");
    assert_eq!(s.data_dir, PathBuf::from("0123"));
    assert!(!s.is_embedded());
    assert!(matches!(s.secrets, SecretsSettings::Configured(ref k) if k == &vec![[7u8; 32]]));
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__BIND", "not-an-address")])), "server.bind");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__BIND", "127.0.0.1")])), "server.bind");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__PUBLIC_URL", "http://127.0.0.1:8080")])), "server.public_url");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__PUBLIC_URL", "http://[::1]:8080")])), "server.public_url");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__PUBLIC_URL", "ftp://id.example.com")])), "server.public_url");
    assert_eq!(
        key_of(load(None, &[("LATCHKEY_SERVER__PUBLIC_URL", "https://id.example.com/sub")])),
        "server.public_url"
    );
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__PUBLIC_URL", "nonsense")])), "server.public_url");
    assert_eq!(key_of(load(None, &[("LATCHKEY_DATABASE__URL", "mysql://h/db")])), "database.url");
    assert_eq!(key_of(load(None, &[("LATCHKEY_DATABASE__URL", "")])), "database.url");
    assert_eq!(
        key_of(load(None, &[("LATCHKEY_DATABASE__URL_FILE", "/nonexistent/latchkey-db-url")])),
        "database.url_file"
    );
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__TRUSTED_PROXIES", "10.0.0.0/33")])), "server.trusted_proxies");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SERVER__METRICS_ALLOW", "everyone")])), "server.metrics_allow");
    assert_eq!(key_of(load(None, &[("LATCHKEY_PASSWORDS__BCRYPT_COST", "9")])), "passwords.bcrypt_cost");
    assert_eq!(key_of(load(None, &[("LATCHKEY_PASSWORDS__BCRYPT_COST", "twelve")])), "passwords.bcrypt_cost");
    assert_eq!(key_of(load(None, &[("LATCHKEY_LOG__FORMAT", "xml")])), "log.format");
    assert_eq!(
        key_of(load(None, &[("LATCHKEY_SERVER__SECURITY_CONTACT", "security@example.com")])),
        "server.security_contact"
    );
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    let e = load(None, &[("LATCHKEY_SERVER__BND", "127.0.0.1:1")]).expect_err("refused");
    assert_eq!(e.key, "server.bnd");
    assert!(e.message.contains("unknown field"), "{}", e.message);
    let e = load(Some("[databse]\nurl = \"x\""), &[]).expect_err("refused");
    assert!(e.message.contains("databse"), "{}", e.message);
    assert_eq!(key_of(load(None, &[("LATCHKEY__SERVER", "x")])), "LATCHKEY__SERVER");
}

#[test]
fn malformed_toml_is_refused() {
    let e = load(Some("[server\nbind = "), &[]).expect_err("refused");
    assert_eq!(e.key, "config file");
}

#[test]
fn incomplete_providers_are_refused_naming_the_key() {
    let e = load(None, &[("LATCHKEY_PROVIDERS__GITHUB__CLIENT_ID", "1")]).expect_err("refused");
    assert_eq!(e.key, "providers.github.client_secret");
    for (vars, key) in [
        (vec![("LATCHKEY_PROVIDERS__GOOGLE__CLIENT_ID", "1")], "providers.google.client_secret"),
        (vec![("LATCHKEY_PROVIDERS__OIDC__OKTA__ISSUER", "https://okta.example")], "providers.oidc.okta.client_id"),
        (vec![("LATCHKEY_PROVIDERS__OIDC__OKTA__CLIENT_ID", "1")], "providers.oidc.okta.issuer"),
        (
            vec![
                ("LATCHKEY_PROVIDERS__OIDC__OKTA__ISSUER", "http://okta.example"),
                ("LATCHKEY_PROVIDERS__OIDC__OKTA__CLIENT_ID", "1"),
                ("LATCHKEY_PROVIDERS__OIDC__OKTA__CLIENT_SECRET", "s"),
            ],
            "providers.oidc.okta.issuer",
        ),
        (
            vec![
                ("LATCHKEY_PROVIDERS__OIDC__OKTA__ISSUER", "http://localhost:9"),
                ("LATCHKEY_PROVIDERS__OIDC__OKTA__CLIENT_ID", "1"),
                ("LATCHKEY_PROVIDERS__OIDC__OKTA__CLIENT_SECRET", "s"),
            ],
            "providers.oidc.okta.issuer",
        ),
    ] {
        assert_eq!(key_of(load(None, &vars)), key, "{vars:?}");
    }
    let ok = load(
        None,
        &[
            ("LATCHKEY_PROVIDERS__GOOGLE__CLIENT_ID", "g"),
            ("LATCHKEY_PROVIDERS__GOOGLE__CLIENT_SECRET", "s"),
            ("LATCHKEY_PROVIDERS__OIDC__OKTA__ISSUER", "https://okta.example/"),
            ("LATCHKEY_PROVIDERS__OIDC__OKTA__CLIENT_ID", "o"),
            ("LATCHKEY_PROVIDERS__OIDC__OKTA__CLIENT_SECRET", "s"),
            ("LATCHKEY_PROVIDERS__OIDC__OKTA__DISPLAY_NAME", "Okta"),
        ],
    )
    .expect("valid");
    let keys: Vec<&str> = ok.providers.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["google", "okta"]);
    assert_eq!(ok.providers[0].issuer, "https://accounts.google.com");
    assert_eq!(ok.providers[0].trust_email, super::providers::TrustEmail::Google);
    assert_eq!(ok.providers[1].trust_email, super::providers::TrustEmail::Never);
    assert_eq!(ok.providers[1].issuer, "https://okta.example/", "kept as given");
}

#[test]
fn postgres_needs_encryption_keys() {
    assert_eq!(key_of(load(None, &[("LATCHKEY_DATABASE__URL", "postgres://u@h/db")])), "secrets.encryption_keys");
    assert_eq!(
        key_of(load(
            None,
            &[("LATCHKEY_DATABASE__URL", "postgres://u@h/db"), ("LATCHKEY_SECRETS__ENCRYPTION_KEYS", "c2hvcnQ=")]
        )),
        "secrets.encryption_keys[0]"
    );
    assert_eq!(key_of(load(None, &[("LATCHKEY_SECRETS__ENCRYPTION_KEYS", "!!!")])), "secrets.encryption_keys[0]");
}

#[test]
fn secrets_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let k1 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    let k2 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([2u8; 32]);
    std::fs::write(&keys, format!("# newest first\n{k1}\n\n{k2}\n")).expect("write");
    let url_file = dir.path().join("db-url");
    std::fs::write(&url_file, "postgres://app:pw@db/latchkey\n").expect("write");
    let s = load(
        None,
        &[
            ("LATCHKEY_SECRETS__ENCRYPTION_KEYS_FILE", keys.to_str().expect("utf-8")),
            ("LATCHKEY_DATABASE__URL_FILE", url_file.to_str().expect("utf-8")),
        ],
    )
    .expect("loads");
    assert_eq!(s.database.url, "postgres://app:pw@db/latchkey");
    assert!(matches!(s.secrets, SecretsSettings::Configured(ref k) if k == &vec![[1u8; 32], [2u8; 32]]));

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    assert_eq!(
        key_of(load(None, &[("LATCHKEY_DATABASE__URL_FILE", empty.to_str().expect("utf-8"))])),
        "database.url_file"
    );
    assert_eq!(
        key_of(load(None, &[("LATCHKEY_SECRETS__ENCRYPTION_KEYS_FILE", empty.to_str().expect("utf-8"))])),
        "secrets.encryption_keys_file"
    );
    assert_eq!(
        key_of(load(None, &[("LATCHKEY_DATABASE__URL", "sqlite://x"), ("LATCHKEY_DATABASE__URL_FILE", "/x")])),
        "database.url_file"
    );
}

#[test]
fn missing_config_file_is_named() {
    let e = Settings::load(Some(Path::new("/nonexistent/latchkey.toml")), Vec::new()).expect_err("refused");
    assert_eq!(e.key, "--config");
    assert!(e.message.contains("no such file"));
}

#[test]
fn sessions_url_selects_redis() {
    let s = load(None, &[]).expect("loads");
    assert!(s.sessions.url.is_none());
    assert_eq!(s.sessions.prefix, "latchkey:");
    let s = load(
        None,
        &[("LATCHKEY_SESSIONS__URL", "rediss://:pw@cache.example.com:6380/0"), ("LATCHKEY_SESSIONS__PREFIX", "idp:")],
    )
    .expect("loads");
    assert_eq!(s.sessions.url.as_deref(), Some("rediss://:pw@cache.example.com:6380/0"));
    assert_eq!(s.sessions.prefix, "idp:");
    assert!(!format!("{s:?}").contains(":pw@"), "the password stays out of debug output");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SESSIONS__URL", "memcached://h")])), "sessions.url");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SESSIONS__URL", "localhost:6379")])), "sessions.url");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SESSIONS__PREFIX", "has space")])), "sessions.prefix");
    assert_eq!(key_of(load(None, &[("LATCHKEY_SESSIONS__URL_FILE", "/nonexistent/redis-url")])), "sessions.url_file");
}

#[test]
fn rsa_key_size() {
    assert_eq!(load(None, &[]).expect("loads").keys.rsa_bits, 3072);
    assert_eq!(load(None, &[("LATCHKEY_KEYS__RSA_BITS", "4096")]).expect("loads").keys.rsa_bits, 4096);
    assert_eq!(key_of(load(None, &[("LATCHKEY_KEYS__RSA_BITS", "1024")])), "keys.rsa_bits");
    assert_eq!(key_of(load(None, &[("LATCHKEY_KEYS__RSA_BITS", "lots")])), "keys.rsa_bits");
}

#[test]
fn mail_lifetimes_and_limits() {
    let s = load(None, &[]).expect("loads");
    assert_eq!(s.mail.from, "Latchkey <no-reply@localhost>");
    assert!(s.mail.smtp_url.is_none());
    assert_eq!(s.lifetimes.session_idle, Duration::from_secs(86_400));
    assert_eq!(s.lifetimes.session_absolute, Duration::from_secs(14 * 86_400));
    assert_eq!(s.lifetimes.reset_link, Duration::from_secs(3600));
    assert_eq!(s.lifetimes.verification_link, Duration::from_secs(86_400));
    assert_eq!(s.limits.login_failures_per_account, 5);
    assert_eq!(s.limits.login_failure_window, Duration::from_secs(900));
    assert_eq!(s.limits.signup_per_minute, 5);
    let s = load(
        None,
        &[
            ("LATCHKEY_MAIL__SMTP_URL", "smtp://127.0.0.1:2525"),
            ("LATCHKEY_MAIL__FROM", "Ops <ops@example.com>"),
            ("LATCHKEY_LIMITS__SIGNUP_PER_MINUTE", "50"),
        ],
    )
    .expect("loads");
    assert_eq!(s.mail.smtp_url.as_deref(), Some("smtp://127.0.0.1:2525"));
    assert_eq!(s.limits.signup_per_minute, 50);
    assert_eq!(key_of(load(None, &[("LATCHKEY_MAIL__SMTP_URL", "http://mail")])), "mail.smtp_url");
    assert_eq!(key_of(load(None, &[("LATCHKEY_MAIL__SMTP_URL", "smtp://mail:25?tls=maybe")])), "mail.smtp_url");
    assert!(load(None, &[("LATCHKEY_MAIL__SMTP_URL", "smtp://mail:587?tls=required")]).is_ok());
    assert_eq!(key_of(load(None, &[("LATCHKEY_MAIL__FROM", "not an address")])), "mail.from");
    assert_eq!(key_of(load(None, &[("LATCHKEY_LIMITS__SIGNUP_PER_MINUTE", "0")])), "limits.signup_per_minute");
    assert_eq!(key_of(load(None, &[("LATCHKEY_LIMITS__NOPE", "1")])), "limits.nope");
    assert_eq!(
        key_of(load(None, &[("LATCHKEY_LIFETIMES__SESSION_IDLE_SECS", "999999999")])),
        "lifetimes.session_idle_secs"
    );
}

#[test]
fn retention_defaults_bounds_and_errors() {
    let s = load(None, &[]).expect("loads");
    assert_eq!(s.retention, RetentionSettings { audit_days: 730, unverified_days: Some(30) });
    let s = load(None, &[("LATCHKEY_RETENTION__AUDIT_DAYS", "1"), ("LATCHKEY_RETENTION__UNVERIFIED_DAYS", "0")])
        .expect("loads");
    assert_eq!(s.retention, RetentionSettings { audit_days: 1, unverified_days: None });
    let s = load(Some("[retention]\naudit_days = 3650\nunverified_days = 7\n"), &[]).expect("loads");
    assert_eq!(s.retention, RetentionSettings { audit_days: 3650, unverified_days: Some(7) });
    for bad in ["0", "36501"] {
        let e = load(None, &[("LATCHKEY_RETENTION__AUDIT_DAYS", bad)]).expect_err("refused");
        assert_eq!(e.key, "retention.audit_days", "{bad}");
        assert_eq!(
            e.to_string(),
            "configuration: retention.audit_days: must be between 1 and 36500 days (audit events cannot be kept for less than a day)"
        );
    }
    assert_eq!(key_of(load(None, &[("LATCHKEY_RETENTION__AUDIT_DAYS", "-5")])), "retention.audit_days");
    assert_eq!(key_of(load(None, &[("LATCHKEY_RETENTION__UNVERIFIED_DAYS", "3651")])), "retention.unverified_days");
    assert_eq!(key_of(load(None, &[("LATCHKEY_RETENTION__KEEP_FOREVER", "1")])), "retention.keep_forever");
}

#[test]
fn signup_disposable_domains_are_normalised_and_checked() {
    let s = load(None, &[]).expect("loads");
    assert!(!s.signup.allow_disposable);
    assert!(s.signup.disposable_domains.is_empty());
    let s = load(
        None,
        &[
            ("LATCHKEY_SIGNUP__DISPOSABLE_DOMAINS", "Throwaway.Example, mail.example.net."),
            ("LATCHKEY_SIGNUP__ALLOW_DISPOSABLE", "true"),
        ],
    )
    .expect("loads");
    assert!(s.signup.allow_disposable);
    let mut domains: Vec<&str> = s.signup.disposable_domains.iter().map(String::as_str).collect();
    domains.sort_unstable();
    assert_eq!(domains, vec!["mail.example.net", "throwaway.example"]);
    let s = load(Some("[signup]\ndisposable_domains = [\"a.example\"]\n"), &[]).expect("loads");
    assert!(s.signup.disposable_domains.contains("a.example"));
    let e =
        load(Some("[signup]\ndisposable_domains = [\"ok.example\", \"@bad.example\"]\n"), &[]).expect_err("refused");
    assert_eq!(e.key, "signup.disposable_domains[1]");
    assert!(e.message.contains("\"@bad.example\" is not a domain name"), "{}", e.message);
    assert_eq!(key_of(load(None, &[("LATCHKEY_SIGNUP__ALLOW_DISPOSABLE", "maybe")])), "signup.allow_disposable");
}

#[test]
fn the_embedded_example_is_the_defaults() {
    let s = load(Some(include_str!("../../../../config/embedded.toml")), &[]).expect("the example loads");
    let d = load(None, &[]).expect("defaults");
    assert_eq!(s.retention, d.retention);
    assert_eq!(s.signup.allow_disposable, d.signup.allow_disposable);
    assert_eq!(s.signup.disposable_domains, d.signup.disposable_domains);
}
