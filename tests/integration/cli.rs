//! The `latchkey` command line against a database of the test's own.

use latchkey_db::{clients as client_rows, users as user_rows};
use latchkey_testkit::TestDb;

use crate::support::{STRONG_PASSWORD, latchkey};

fn user_count(db: &TestDb) -> usize {
    latchkey(db, &["user", "list", "--json"], None).ok().json().as_array().map(Vec::len).unwrap_or(0)
}

fn client_count(db: &TestDb) -> usize {
    latchkey(db, &["client", "list", "--json"], None).ok().json().as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn user_create_prints_id_and_email() {
    let db = TestDb::new();
    let out = latchkey(
        &db,
        &["user", "create", "--email", "Ada@Example.com", "--name", "Ada Lovelace", "--verified", "--admin", "--json"],
        None,
    )
    .ok()
    .json();
    assert_eq!(out["email"], "Ada@Example.com");
    assert!(out["id"].as_str().is_some_and(|id| id.len() >= 16));
    assert_eq!(out["name"], "Ada Lovelace");
    assert_eq!(out["email_verified"], true);
    assert_eq!(out["admin"], true);
    assert_eq!(out["has_password"], false);
    assert!(out.get("password_hash").is_none());

    let list = latchkey(&db, &["user", "list", "--json"], None).ok().json();
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 1);
    for key in ["id", "email", "name", "email_verified", "disabled", "admin"] {
        assert!(list[0].get(key).is_some(), "user list has {key}");
    }
    assert_eq!(list[0]["disabled"], false);
    // The human form too.
    let text = latchkey(&db, &["user", "list"], None).ok().stdout;
    assert!(text.contains("Ada@Example.com") && text.contains("admin"), "{text}");
}

#[test]
fn password_comes_from_stdin_without_its_newline() {
    let db = TestDb::new();
    let out = latchkey(
        &db,
        &["user", "create", "--email", "grace@example.com", "--password-stdin", "--json"],
        Some(&format!("{STRONG_PASSWORD}\n")),
    )
    .ok()
    .json();
    assert_eq!(out["has_password"], true);
    let mut conn = db.connect();
    let row = user_rows::find_by_email(&mut conn, "grace@example.com").expect("query").expect("stored");
    let hash = row.password_hash.expect("a hash is stored");
    assert!(!hash.contains(STRONG_PASSWORD));
    assert!(hash.starts_with("$2b$10$"), "bcrypt at the configured cost: {hash}");
    assert!(latchkey_core::password::verify_blocking(STRONG_PASSWORD, &hash));
    assert!(!latchkey_core::password::verify_blocking(&format!("{STRONG_PASSWORD}\n"), &hash));

    // Windows line endings too.
    latchkey(
        &db,
        &["user", "create", "--email", "crlf@example.com", "--password-stdin"],
        Some(&format!("{STRONG_PASSWORD}\r\n")),
    )
    .ok();
    let row = user_rows::find_by_email(&mut conn, "crlf@example.com").expect("query").expect("stored");
    assert!(latchkey_core::password::verify_blocking(STRONG_PASSWORD, &row.password_hash.expect("hash")));
}

#[test]
fn bad_user_input_is_refused_and_nothing_is_created() {
    let db = TestDb::new();
    for (args, stdin, needle) in [
        (vec!["--email", "not-an-email"], None, "Email"),
        (vec!["--email", ""], None, "Email"),
        (vec!["--email", "a b@example.com"], None, "Email"),
        (vec!["--email", "weak@example.com", "--password-stdin"], Some("short\n"), "at least 8"),
        (vec!["--email", "weak@example.com", "--password-stdin"], Some("password123\n"), "common"),
        (vec!["--email", "weak@example.com", "--password-stdin"], Some("Password123\n"), "common"),
        (vec!["--email", "weak@example.com", "--password-stdin"], Some("aaaaaaaaaaaa\n"), "too easy to guess"),
        (vec!["--email", "weak@example.com", "--password-stdin"], Some(""), "no password"),
        (vec!["--email", "weak@example.com", "--password-stdin"], Some("\n"), "no password"),
    ] {
        let mut full = vec!["user", "create"];
        full.extend(args.iter().copied());
        latchkey(&db, &full, stdin).fails_with(needle);
    }
    let long = "x".repeat(1025);
    latchkey(&db, &["user", "create", "--email", "long@example.com", "--password-stdin"], Some(&long))
        .fails_with("at most 1024 bytes");
    assert_eq!(user_count(&db), 0);
}

#[test]
fn duplicate_email_in_another_case_is_refused() {
    let db = TestDb::new();
    latchkey(&db, &["user", "create", "--email", "ada@example.com"], None).ok();
    latchkey(&db, &["user", "create", "--email", "ADA@Example.COM"], None).fails_with("already exists");
    latchkey(&db, &["user", "create", "--email", "  ada@example.com "], None).fails_with("already exists");
    let list = latchkey(&db, &["user", "list", "--json"], None).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["email"], "ada@example.com");
}

#[test]
fn disable_enable_delete() {
    let db = TestDb::new();
    latchkey(&db, &["user", "create", "--email", "Lin@example.com"], None).ok();
    let out = latchkey(&db, &["user", "disable", "lin@EXAMPLE.com", "--json"], None).ok().json();
    assert_eq!(out["disabled"], true);
    assert_eq!(latchkey(&db, &["user", "list", "--json"], None).ok().json()[0]["disabled"], true);
    latchkey(&db, &["user", "enable", "lin@example.com"], None).ok();
    assert_eq!(latchkey(&db, &["user", "list", "--json"], None).ok().json()[0]["disabled"], false);

    for cmd in ["disable", "enable", "delete"] {
        latchkey(&db, &["user", cmd, "nobody@example.com"], None).fails_with("no such user");
        latchkey(&db, &["user", cmd, "not an email"], None).fails_with("Email");
    }
    assert_eq!(user_count(&db), 1);

    latchkey(&db, &["user", "delete", "lin@example.com"], None).ok();
    assert_eq!(user_count(&db), 0);
    latchkey(&db, &["user", "delete", "lin@example.com"], None).fails_with("no such user");
}

#[test]
fn confidential_client_secret_is_shown_once_and_stored_hashed() {
    let db = TestDb::new();
    let out = latchkey(
        &db,
        &[
            "client",
            "create",
            "--name",
            "Demo app",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--redirect-uri",
            "http://127.0.0.1:9999/cb",
            "--first-party",
            "--json",
        ],
        None,
    )
    .ok()
    .json();
    let id = out["client_id"].as_str().expect("client_id").to_owned();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let secret = out["client_secret"].as_str().expect("client_secret").to_owned();
    assert!(secret.len() >= 43, "256-bit secret");
    assert_eq!(out["first_party"], true);
    assert_eq!(out["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));

    let mut conn = db.connect();
    let row = client_rows::find(&mut conn, &id).expect("query").expect("stored");
    let stored = row.secret_hash.expect("hash stored");
    assert_ne!(stored, secret);
    assert_eq!(stored, latchkey_core::tokens::hash_secret(&secret));

    // Listing never shows the secret.
    let list = latchkey(&db, &["client", "list", "--json"], None).ok();
    assert!(!list.stdout.contains(&secret));
    assert!(!list.stdout.contains(&stored));
    assert_eq!(list.json()[0]["client_id"], id.as_str());

    // Rotation: a new secret, the old one no longer verifies.
    let rotated = latchkey(&db, &["client", "rotate-secret", &id, "--json"], None).ok().json();
    let new_secret = rotated["client_secret"].as_str().expect("new secret");
    assert_ne!(new_secret, secret);
    let row = client_rows::find(&mut conn, &id).expect("query").expect("stored");
    let stored = row.secret_hash.expect("hash");
    assert!(latchkey_core::tokens::verify_secret(new_secret, &stored));
    assert!(!latchkey_core::tokens::verify_secret(&secret, &stored));

    latchkey(&db, &["client", "delete", &id], None).ok();
    assert_eq!(client_count(&db), 0);
}

#[test]
fn public_client_has_no_secret() {
    let db = TestDb::new();
    let out = latchkey(
        &db,
        &["client", "create", "--name", "SPA", "--public", "--redirect-uri", "http://localhost:5173/cb", "--json"],
        None,
    )
    .ok()
    .json();
    assert!(out.get("client_secret").is_none_or(|v| v.is_null()));
    assert_eq!(out["public"], true);
    let id = out["client_id"].as_str().expect("id").to_owned();
    latchkey(&db, &["client", "rotate-secret", &id], None).fails_with("public client");
}

#[test]
fn bad_client_input_is_refused_and_nothing_is_stored() {
    let db = TestDb::new();
    for (extra, needle) in [
        (vec![], "required with the authorization_code grant"),
        (vec!["--redirect-uri", "http://app.example.com/cb"], "must use https"),
        (vec!["--redirect-uri", "https://app.example.com/cb#x"], "fragment"),
        (vec!["--redirect-uri", "https://*.example.com/cb"], "wildcard"),
        (vec!["--redirect-uri", "/relative"], "absolute"),
        (vec!["--redirect-uri", "javascript:alert(1)"], "must use https"),
        (vec!["--redirect-uri", "com.example.app:/cb"], "must use https"),
        (vec!["--redirect-uri", "https://a.example/cb", "--grant", "password"], "--grant"),
        (vec!["--redirect-uri", "https://a.example/cb", "--signing-alg", "HS256"], "--signing-alg"),
        (vec!["--public", "--grant", "client_credentials"], "a public client cannot use client_credentials"),
        (
            vec!["--redirect-uri", "https://a.example/cb", "--backchannel-logout-uri", "http://a.example/bc"],
            "--backchannel-logout-uri",
        ),
        (
            vec!["--redirect-uri", "https://a.example/cb", "--post-logout-redirect-uri", "http://a.example/out"],
            "--post-logout-redirect-uri",
        ),
    ] {
        let mut args = vec!["client", "create", "--name", "x"];
        args.extend(extra.iter().copied());
        latchkey(&db, &args, None).fails_with(needle);
    }
    latchkey(&db, &["client", "create", "--name", "  ", "--redirect-uri", "https://a.example/cb"], None)
        .fails_with("--name");
    assert_eq!(client_count(&db), 0);
}

#[test]
fn unknown_client_ids_are_refused() {
    let db = TestDb::new();
    latchkey(&db, &["client", "delete", "no-such-client"], None).fails_with("no such client");
    latchkey(&db, &["client", "rotate-secret", "no-such-client"], None).fails_with("no such client");
}

#[test]
fn apikey_create_list_revoke() {
    let db = TestDb::new();
    let out = latchkey(
        &db,
        &[
            "apikey",
            "create",
            "--name",
            "Deploy bot",
            "--scope",
            "users:read",
            "--scope",
            "audit:read users:read",
            "--json",
        ],
        None,
    )
    .ok()
    .json();
    let key = out["key"].as_str().expect("key").to_owned();
    let prefix = out["prefix"].as_str().expect("prefix").to_owned();
    assert!(key.starts_with(&format!("{prefix}_")) && key.len() == 59, "{key}");
    assert_eq!(out["scopes"], serde_json::json!(["users:read", "audit:read"]));
    assert!(out.get("key_hash").is_none());

    let list = latchkey(&db, &["apikey", "list", "--json"], None).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let text = serde_json::to_string(&list).expect("json");
    assert!(!text.contains(&key[16..]), "the list never shows the key");
    assert!(list[0]["revoked_at"].is_null());

    latchkey(&db, &["apikey", "revoke", &prefix], None).ok();
    let list = latchkey(&db, &["apikey", "list", "--json"], None).ok().json();
    assert!(list[0]["revoked_at"].is_string());
    latchkey(&db, &["apikey", "revoke", "lk_000000000000"], None).fails_with("no such API key");
}

#[test]
fn apikey_create_refuses_bad_input() {
    let db = TestDb::new();
    latchkey(&db, &["apikey", "create", "--name", "x", "--scope", "root"], None)
        .fails_with("scopes: \"root\" is not one of");
    latchkey(&db, &["apikey", "create", "--name", "  ", "--scope", "users:read"], None)
        .fails_with("name: the key needs a name");
    latchkey(&db, &["apikey", "create", "--name", "x", "--scope", "users:read", "--expires", "2001-01-01"], None)
        .fails_with("expires_at: must be in the future");
    latchkey(&db, &["apikey", "create", "--name", "x", "--scope", "users:read", "--expires", "soon"], None)
        .fails_with("--expires:");
    let list = latchkey(&db, &["apikey", "list", "--json"], None).ok().json();
    assert_eq!(list, serde_json::json!([]), "nothing was created");
}

#[test]
fn groups_from_the_command_line() {
    let db = TestDb::new();
    latchkey(&db, &["user", "create", "--email", "ada@example.com"], None).ok();
    let g = latchkey(&db, &["group", "create", "--name", "Ops", "--require-mfa", "--json"], None).ok().json();
    assert_eq!(g["name"], "Ops");
    assert_eq!(g["require_mfa"], true);
    latchkey(&db, &["group", "create", "--name", "ops"], None).fails_with("a group named \"ops\" already exists");
    latchkey(&db, &["group", "create", "--name", ""], None).fails_with("name: the group needs a name");

    let m = latchkey(&db, &["group", "add-member", "Ops", "Ada@Example.com", "--json"], None).ok().json();
    assert_eq!(m["changed"], true);
    let m = latchkey(&db, &["group", "add-member", "ops", "ada@example.com", "--json"], None).ok().json();
    assert_eq!(m["changed"], false, "already a member");
    latchkey(&db, &["group", "add-member", "Ops", "nobody@example.com"], None).fails_with("no such user");
    latchkey(&db, &["group", "add-member", "Nope", "ada@example.com"], None).fails_with("no such group: Nope");
    let members = latchkey(&db, &["group", "members", "Ops", "--json"], None).ok().json();
    assert_eq!(members[0]["email"], "ada@example.com");

    let g =
        latchkey(&db, &["group", "update", "Ops", "--name", "Operations", "--require-mfa", "false", "--json"], None)
            .ok()
            .json();
    assert_eq!((g["name"].as_str(), g["require_mfa"].as_bool()), (Some("Operations"), Some(false)));
    latchkey(&db, &["group", "update", "Operations"], None).fails_with("nothing to change");

    latchkey(&db, &["group", "remove-member", "Operations", "ada@example.com"], None).ok();
    let members = latchkey(&db, &["group", "members", "Operations", "--json"], None).ok().json();
    assert_eq!(members, serde_json::json!([]));
    latchkey(&db, &["group", "delete", "Operations"], None).ok();
    assert_eq!(latchkey(&db, &["group", "list", "--json"], None).ok().json(), serde_json::json!([]));
    let events = latchkey(&db, &["audit", "list", "--json"], None).ok().json();
    let kinds: Vec<&str> = events.as_array().expect("list").iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["group.created", "group.member_added", "group.updated", "group.member_removed", "group.deleted"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
}

#[test]
fn policy_set_takes_optional_or_required_only() {
    let db = TestDb::new();
    for bad in ["", "REQUIRED", "always", "required "] {
        latchkey(&db, &["policy", "set", "--mfa", bad], None).fails_with("--mfa: expected optional or required");
    }
    let out = latchkey(&db, &["policy", "set", "--mfa", "required", "--json"], None).ok();
    assert_eq!(out.json(), serde_json::json!({ "mfa": "required" }));
    latchkey(&db, &["policy", "set", "--mfa", "optional"], None).ok();
    let audit = latchkey(&db, &["audit", "list", "--json"], None).ok().json();
    let changes = audit.as_array().map(|a| a.iter().filter(|e| e["kind"] == "policy.changed").count());
    assert_eq!(changes, Some(2), "only the two accepted changes are audited");
}

#[test]
fn usage_errors_exit_non_zero() {
    let db = TestDb::new();
    let r = latchkey(&db, &["user", "create"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--email"));
    let r = latchkey(&db, &["frobnicate"], None);
    assert_eq!(r.code, 2);
}

#[test]
fn secrets_rewrap_reports() {
    let db = TestDb::new();
    let out = latchkey(&db, &["secrets", "rewrap", "--json"], None).ok().json();
    assert_eq!(out["rewrapped"], 0);
    assert!(out["primary_key_id"].as_str().is_some_and(|k| k.len() == 8));
}

#[test]
fn audit_list_records_cli_actions() {
    let db = TestDb::new();
    latchkey(&db, &["user", "create", "--email", "ada@example.com"], None).ok();
    latchkey(&db, &["user", "create", "--email", "bob@example.com"], None).ok();
    latchkey(&db, &["user", "disable", "bob@example.com"], None).ok();
    latchkey(&db, &["user", "delete", "bob@example.com"], None).ok();

    let all = latchkey(&db, &["audit", "list", "--json"], None).ok().json();
    let kinds: Vec<&str> = all.as_array().expect("array").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["user.created", "user.created", "user.disabled", "user.deleted"]);
    assert!(all.as_array().expect("array").iter().all(|e| e["actor"] == "cli" && e["outcome"] == "ok"));

    // Events about a deleted account stay, but no longer name its address.
    let bob = latchkey(&db, &["audit", "list", "--user", "BOB@example.com", "--json"], None).ok().json();
    assert_eq!(bob.as_array().map(Vec::len), Some(0));
    let events = all.as_array().expect("array");
    assert!(events[1..].iter().all(|e| e["user_email"].is_null() && e["user_id"] == events[3]["user_id"]), "{all}");
    assert!(events[3]["user_id"].as_str().is_some_and(|p| p.starts_with("deleted:")), "{all}");
    let later = latchkey(&db, &["audit", "list", "--since", "2999-01-01", "--json"], None).ok().json();
    assert_eq!(later.as_array().map(Vec::len), Some(0));
    latchkey(&db, &["audit", "list", "--since", "yesterday"], None).fails_with("--since");
    latchkey(&db, &["audit", "list", "--user", "not an email"], None).fails_with("Email");
}

#[test]
fn migrate_reports_what_it_applied() {
    let db = TestDb::new();
    let first = latchkey(&db, &["migrate", "--json"], None).ok().json();
    if db.is_postgres() {
        // The test database is a copy of a migrated template.
        assert_eq!(first["applied"], serde_json::json!([]));
    } else {
        assert!(first["applied"].as_array().is_some_and(|a| !a.is_empty()));
    }
    let again = latchkey(&db, &["migrate", "--json"], None).ok().json();
    assert_eq!(again["applied"], serde_json::json!([]));
}
