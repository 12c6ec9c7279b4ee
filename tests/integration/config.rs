//! A bad configuration stops the start with one line naming the key.

use crate::support::run_with_env;

fn refused(vars: &[(&str, &str)], args: &[&str], key: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let r = run_with_env(&env, dir.path(), args, None);
    assert_ne!(r.code, 0, "{vars:?} should be refused");
    let line = r.stderr.trim_end();
    assert!(!line.contains('\n'), "one line: {line:?}");
    assert!(line.contains(key), "{line:?} names {key}");
    assert!(r.stdout.is_empty(), "no banner for a refused start: {:?}", r.stdout);
    // Nothing was created for a configuration that was refused.
    assert!(!dir.path().join("data").exists(), "{vars:?} created ./data");
}

#[test]
fn each_bad_setting_names_its_key() {
    let serve = ["serve"];
    refused(&[("LATCHKEY_DATABASE__URL", "mysql://localhost/latchkey")], &serve, "database.url");
    refused(&[("LATCHKEY_DATABASE__URL", "latchkey.db")], &serve, "database.url");
    refused(&[("LATCHKEY_SERVER__BIND", "localhost:abc")], &serve, "server.bind");
    refused(&[("LATCHKEY_SERVER__BIND", "300.1.1.1:80")], &serve, "server.bind");
    refused(&[("LATCHKEY_SERVER__PUBLIC_URL", "http://127.0.0.1:8080")], &serve, "server.public_url");
    refused(&[("LATCHKEY_SERVER__PUBLIC_URL", "localhost:8080")], &serve, "server.public_url");
    refused(&[("LATCHKEY_DATABASE__URL_FILE", "/nonexistent/latchkey/db-url")], &serve, "database.url_file");
    refused(
        &[("LATCHKEY_SECRETS__ENCRYPTION_KEYS_FILE", "/nonexistent/latchkey/keys")],
        &serve,
        "secrets.encryption_keys_file",
    );
    refused(&[("LATCHKEY_DATABASE__URL", "postgres://nobody@127.0.0.1:1/x")], &serve, "secrets.encryption_keys");
    refused(&[("LATCHKEY_SECRETS__ENCRYPTION_KEYS", "too-short")], &serve, "secrets.encryption_keys[0]");
    refused(&[("LATCHKEY_SERVER__TRUSTED_PROXIES", "10.0.0.0/99")], &serve, "server.trusted_proxies");
    refused(&[("LATCHKEY_PASSWORDS__BCRYPT_COST", "4")], &serve, "passwords.bcrypt_cost");
    refused(&[("LATCHKEY_SERVER__BINDD", "127.0.0.1:1")], &serve, "bindd");
    refused(&[("LATCHKEY_PROVIDERS__GOOGLE__CLIENT_ID", "x")], &serve, "providers");
    // The same checks guard every command, not just serve.
    refused(&[("LATCHKEY_SERVER__BIND", "nope")], &["user", "list"], "server.bind");
}

#[test]
fn config_file_problems_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "[server]\nbind = \"127.0.0.1:notaport\"\n").expect("write");
    let cfg = file.display().to_string();
    refused(&[], &["--config", &cfg, "serve"], "server.bind");
    refused(&[("LATCHKEY_CONFIG", cfg.as_str())], &["serve"], "server.bind");
    refused(&[], &["--config", "/nonexistent/latchkey.toml", "serve"], "--config");
    std::fs::write(&file, "[server\n").expect("write");
    refused(&[], &["--config", &cfg, "serve"], "config file");
}

#[test]
fn test_variables_and_the_config_variable_are_not_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        ("LATCHKEY_TEST_WHATEVER".to_owned(), "1".to_owned()),
        ("LATCHKEY_PASSWORDS__BCRYPT_COST".to_owned(), "10".to_owned()),
    ];
    let r = run_with_env(&env, dir.path(), &["user", "list", "--json"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "[]");
}
