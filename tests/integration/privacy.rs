//! The user's own data: "Export my data" (everything kept, never a secret)
//! and "Delete my account" (nothing of the account left but pseudonymised
//! audit events, every session and token ended, relying apps told, a mail
//! sent), from /account, the admin console and the admin API.

use latchkey_core::Clock as _;
use latchkey_core::audit::Actor;
use latchkey_core::clients::{NewClient, create_client};
use latchkey_core::sessions::RequestContext;
use latchkey_testkit::{Browser, HttpSink, Page, REDIRECT_URI, TestApp, TestClient, TestDb};
use reqwest::cookie::CookieStore as _;
use serde_json::Value;

use crate::mfa::enrol_totp;
use crate::oidc::{EMAIL, VERIFIER, claims_of, code_for, exchange, setup, userinfo_status};
use crate::support::STRONG_PASSWORD;

/// POSTs a form to a token-family endpoint with the client's credentials.
async fn client_post(app: &TestApp, path: &str, c: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app.client.post(app.url(path));
    if let Some(s) = &c.secret {
        req = req.basic_auth(&c.client_id, Some(s));
    }
    let resp = req.form(form).send().await.expect("answer");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_owned()
}

/// The browser's cookies for the app, as one header value.
fn cookies(app: &TestApp, b: &Browser) -> String {
    let url = url::Url::parse(&app.address).expect("url");
    b.jar.cookies(&url).and_then(|v| v.to_str().ok().map(str::to_owned)).unwrap_or_default()
}

fn cookie(app: &TestApp, b: &Browser, name: &str) -> Option<String> {
    cookies(app, b)
        .split("; ")
        .find_map(|c| c.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .filter(|v| !v.is_empty())
}

/// The user's id, read from the database.
fn user_id(db: &TestDb, email: &str) -> String {
    db.texts(&format!("SELECT id AS v FROM users WHERE email_normalized = '{email}'")).pop().expect("the user's row")
}

async fn export_from_account(b: &Browser) -> Page {
    let csrf = b.get("/account").await.csrf();
    assert!(!csrf.is_empty(), "signed in at /account");
    b.post_raw("/account/export", &[("csrf", &csrf)]).await
}

fn header<'a>(p: &'a Page, name: &str) -> &'a str {
    p.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn the_export_holds_the_account_and_never_a_secret() {
    let (app, b) = setup().await;
    let uid = user_id(&app.db, EMAIL);
    // A second session, from another browser.
    let other = Browser::new(&app);
    other.sign_in(EMAIL, STRONG_PASSWORD).await;
    // A third-party app allowed, with a refresh token.
    let third = app.client("Notes", false, false).await;
    let q = code_for(&app, &b, &third, &[("scope", "openid email offline_access"), ("prompt", "consent")]).await;
    let (st, tokens) = exchange(&app, &third, &q["code"], Some(VERIFIER)).await;
    assert_eq!(st, 200, "{tokens}");
    // An authenticator app and its recovery codes.
    let (totp_secret, codes) = enrol_totp(&app, &b).await;
    assert_eq!(codes.len(), 10);
    // A security key and a linked identity, as their rows stand.
    let at = app.clock.now_naive() - chrono::Duration::days(2);
    let key = latchkey_db::mfa::CredentialRow {
        id: "cred-1".into(),
        user_id: uid.clone(),
        kind: "security_key".into(),
        credential_id: "Y3JlZC1pZA".into(),
        name: "Blue key".into(),
        credential: r#"{"cred":"PUBLIC-KEY-AND-COUNTER-9f8e7d"}"#.into(),
        sign_count: 3,
        backup_eligible: false,
        backup_state: false,
        created_at: at,
        last_used_at: Some(at),
    };
    let identity = latchkey_db::identities::IdentityRow {
        id: "ident-1".into(),
        user_id: uid.clone(),
        provider: "github".into(),
        issuer: "https://api.github.com".into(),
        subject: "4242".into(),
        email: Some("ada@github.example".into()),
        created_at: at,
        last_used_at: at,
    };
    app.core
        .db
        .run(move |conn| {
            latchkey_db::mfa::credential_insert(conn, &key)?;
            latchkey_db::identities::insert(conn, &identity)
        })
        .await
        .expect("rows");
    let group = app.core.create_group("Engineers", false, &Actor::Cli).await.expect("group");
    app.core.set_group_member(&group.id, &uid, true, &Actor::Cli).await.expect("member");

    let p = export_from_account(&b).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(header(&p, "content-type"), "application/json");
    assert!(header(&p, "content-disposition").starts_with("attachment; filename=\"latchkey-data-"), "{:?}", p.headers);
    assert_eq!(header(&p, "cache-control"), "no-store");
    let x: Value = serde_json::from_str(&p.body).expect("JSON");

    assert_eq!(x["profile"]["id"], uid.as_str());
    assert_eq!(x["profile"]["email"], EMAIL);
    assert_eq!(x["profile"]["name"], "Ada Lovelace");
    assert_eq!(x["profile"]["email_verified"], true);
    assert_eq!(x["sign_in_methods"]["password"], true);
    let ident = &x["sign_in_methods"]["linked_identities"][0];
    assert_eq!((ident["provider"].as_str(), ident["subject"].as_str()), (Some("github"), Some("4242")));
    assert_eq!(ident["email"], "ada@github.example");
    assert!(ident["linked_at"].is_string());
    assert!(x["second_factors"]["authenticator_app"]["created_at"].is_string(), "{}", x["second_factors"]);
    let key = &x["second_factors"]["security_keys"][0];
    assert_eq!((key["name"].as_str(), key["kind"].as_str()), (Some("Blue key"), Some("security_key")));
    assert!(key["created_at"].is_string() && key["last_used_at"].is_string());
    assert_eq!(x["second_factors"]["recovery_codes_left"], 10);
    let sessions = x["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(sessions.iter().all(|s| s["device"] == "Chrome on Linux" && s["created_at"].is_string()), "{sessions:?}");
    assert!(sessions.iter().all(|s| s["last_seen"].is_string() && s.get("handle").is_none()));
    let consent = &x["consents"][0];
    assert_eq!(consent["client_id"], third.client_id.as_str());
    assert_eq!(consent["client_name"], "Notes");
    assert!(consent["scopes"].as_array().is_some_and(|s| s.iter().any(|v| v == "offline_access")));
    assert_eq!(x["groups"][0]["name"], "Engineers");
    let kinds: Vec<&str> =
        x["audit_events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["user.created", "login.succeeded", "consent.granted", "mfa.added"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // No stored hash or ciphertext of the account, nor any secret the
    // browser or the app holds, appears anywhere in it.
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut from_db = |what: &str, sql: String| {
        let found = app.db.texts(&sql);
        assert!(!found.is_empty(), "{what} is stored");
        secrets.extend(found.into_iter().map(|v| (what.to_owned(), v)));
    };
    from_db("password hash", format!("SELECT password_hash AS v FROM users WHERE id = '{uid}'"));
    from_db("TOTP secret (sealed)", format!("SELECT secret AS v FROM totp_factors WHERE user_id = '{uid}'"));
    from_db("recovery-code hash", format!("SELECT code_hash AS v FROM recovery_codes WHERE user_id = '{uid}'"));
    from_db("WebAuthn record", format!("SELECT credential AS v FROM webauthn_credentials WHERE user_id = '{uid}'"));
    from_db(
        "refresh-token hash",
        format!(
            "SELECT t.token_hash AS v FROM refresh_tokens t JOIN token_families f ON f.id = t.family_id \
             WHERE f.user_id = '{uid}'"
        ),
    );
    for s in app.core.list_sessions(&uid).await.expect("sessions") {
        secrets.push(("session handle".into(), s.handle));
    }
    for (name, browser) in [("session cookie", &b), ("other session cookie", &other)] {
        secrets.push((name.into(), cookie(&app, browser, "latchkey_session").expect("a session cookie")));
    }
    secrets.push(("device cookie".into(), cookie(&app, &other, "latchkey_device").expect("a device cookie")));
    secrets.push(("TOTP secret".into(), totp_secret.replace(' ', "")));
    secrets.extend(codes.iter().map(|c| ("recovery code".to_owned(), c.clone())));
    for t in ["access_token", "refresh_token", "id_token"] {
        secrets.push((t.into(), s(&tokens, t)));
    }
    assert!(secrets.len() > 20);
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is a real value: {secret:?}");
        assert!(!p.body.contains(secret.as_str()), "the export carries the {what}");
    }

    // The export is audited.
    let (events, _) = latchkey_core::audit::page(
        &app.core,
        latchkey_core::audit::AuditFilter { kind: Some("data.exported".into()), ..Default::default() },
        0,
        10,
    )
    .await
    .expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].user_id.as_deref(), events[0].actor.as_str()), (Some(uid.as_str()), &*format!("user:{uid}")));
}

#[tokio::test]
async fn export_and_deletion_need_a_recent_sign_in_csrf_and_a_session() {
    let (app, b) = setup().await;
    let uid = user_id(&app.db, EMAIL);
    b.sign_in(EMAIL, STRONG_PASSWORD).await;
    let account = b.get("/account").await;
    assert!(account.contains(">Export my data</button>") && account.contains(">Delete my account</button>"));
    let csrf = account.csrf();

    // Without a CSRF token, or with a wrong one: refused, nothing happens.
    for fields in [vec![], vec![("csrf", "forged")]] {
        assert_eq!(b.post_raw("/account/export", &fields).await.status, 403);
        assert_eq!(b.post_raw("/account/delete", &fields).await.status, 403);
    }
    assert_eq!(app.db.texts(&format!("SELECT id AS v FROM users WHERE id = '{uid}'")).len(), 1);

    // Signed out: to the sign-in page.
    let stranger = Browser::new(&app);
    let csrf2 = stranger.get("/login").await.csrf();
    for path in ["/account/export", "/account/delete"] {
        let p = stranger.post_raw(path, &[("csrf", &csrf2)]).await;
        assert_eq!(p.status, 303, "{path}");
        assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login")), "{path}: {:?}", p.location);
    }
    assert!(stranger.get("/account/delete").await.location.as_deref().is_some_and(|l| l.starts_with("/login")));

    // Eleven minutes after signing in: sign in again first.
    app.clock.advance(chrono::Duration::minutes(11));
    let p = b.post_raw("/account/export", &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/login?notice=reauthenticate&next=%2Faccount"));
    for p in [b.get("/account/delete").await, b.post_raw("/account/delete", &[("csrf", &csrf)]).await] {
        assert_eq!(p.status, 303);
        assert_eq!(p.location.as_deref(), Some("/login?notice=reauthenticate&next=%2Faccount%2Fdelete"));
    }
    assert_eq!(app.db.texts(&format!("SELECT id AS v FROM users WHERE id = '{uid}'")).len(), 1, "nothing deleted");
    let login = b.get("/login?notice=reauthenticate&next=%2Faccount%2Fdelete").await;
    assert!(login.contains("sign in again"), "the sign-in page says why");

    // Signed in again: the export, and the confirmation page.
    let again = b
        .submit(
            "/login?notice=reauthenticate&next=%2Faccount%2Fdelete",
            "/login",
            &[("email", EMAIL), ("password", STRONG_PASSWORD), ("next", "/account/delete")],
        )
        .await;
    assert_eq!((again.status, again.location.as_deref()), (303, Some("/account/delete")), "{:?}", again.alert());
    assert_eq!(export_from_account(&b).await.status, 200);
    let confirm = b.get("/account/delete").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.contains(EMAIL) && confirm.contains(">Delete my account</button>"), "{}", confirm.body);
    assert!(confirm.contains("action=\"/account/delete\""));
}

/// Every table and column of the database, and the rows whose column names
/// one of `needles` (any case): `table.column` for each. The store's
/// revocation marker for the user's tokens is expected there.
fn rows_naming(db: &TestDb, needles: &[&str]) -> Vec<String> {
    let columns = if db.is_postgres() {
        db.texts(
            "SELECT table_name || ' ' || column_name || ' ' || data_type AS v FROM information_schema.columns \
             WHERE table_schema = 'public'",
        )
    } else {
        db.texts(
            "SELECT m.name || ' ' || p.name || ' ' || p.type AS v FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
    };
    let mut parts = Vec::new();
    for c in &columns {
        let mut it = c.splitn(3, ' ');
        let (Some(t), Some(name), ty) = (it.next(), it.next(), it.next().unwrap_or("")) else { continue };
        if t.starts_with("__diesel") {
            continue;
        }
        let text =
            if ty == "bytea" { format!("encode(\"{name}\", 'escape')") } else { format!("CAST(\"{name}\" AS TEXT)") };
        let allowed = if t == "store_entries" { " AND key NOT LIKE 'user-tokens-revoked:%'" } else { "" };
        let like: Vec<String> =
            needles.iter().map(|n| format!("LOWER({text}) LIKE '%{}%'", n.to_lowercase())).collect();
        parts.push(format!("SELECT '{t}.{name}' AS v FROM \"{t}\" WHERE ({}){allowed}", like.join(" OR ")));
    }
    assert!(columns.iter().any(|c| c.starts_with("users ")) && columns.iter().any(|c| c.starts_with("audit_events ")));
    // One query (a part per column, under SQLite's 500), so that the scan
    // is quick on every backend.
    assert!(parts.len() < 500, "{} columns", parts.len());
    db.texts(&parts.join(" UNION ALL "))
}

async fn wait_until_sent(app: &TestApp) {
    app.mail_delivered().await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.core.queued_deliveries().await.expect("count") != 0 {
        assert!(std::time::Instant::now() < until, "the deliveries went out");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn deleting_my_account_leaves_only_pseudonymised_audit_events() {
    let app = TestApp::builder().env("LATCHKEY_OUTBOUND__ALLOW_LOOPBACK", "true").spawn().await;
    app.core.ensure_signing_key().await.expect("signing key");
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    let uid = user_id(&app.db, EMAIL);
    let sink = HttpSink::start().await;
    let created = create_client(
        &app.core,
        NewClient {
            name: "Notes".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            backchannel_logout_uri: Some(sink.url.clone()),
            first_party: true,
            ..Default::default()
        },
        &Actor::Cli,
    )
    .await
    .expect("client");
    let c = TestClient {
        client_id: created.client.client_id,
        secret: created.client_secret,
        redirect_uri: REDIRECT_URI.into(),
    };
    // Signed in to the app through this browser, with a refresh token.
    let b = Browser::new(&app);
    let q = code_for(&app, &b, &c, &[("scope", "openid email offline_access")]).await;
    let (st, t) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(st, 200, "{t}");
    let sid = claims_of(&s(&t, "id_token")).1["sid"].as_str().expect("sid").to_owned();
    let (access, refresh) = (s(&t, "access_token"), s(&t, "refresh_token"));
    assert_eq!(userinfo_status(&app, &access).await, 200);
    // Another session; a reset link and a sign-in link waiting in the
    // store (the latter's event names the address alone).
    let other = Browser::new(&app);
    other.sign_in(EMAIL, STRONG_PASSWORD).await;
    let device = cookie(&app, &other, "latchkey_device").expect("a known-device cookie");
    app.core.request_password_reset(EMAIL, &RequestContext::default()).await.expect("reset");
    app.wait_for_mail(EMAIL, "Reset your password", 0).await;
    app.core.request_magic_link(EMAIL, "a-browser", "/account", &RequestContext::default()).await.expect("link");
    app.wait_for_mail(EMAIL, "Your sign-in link", 0).await;
    let by_address = app.db.texts("SELECT id AS v FROM audit_events WHERE kind = 'login.link_requested'");
    assert_eq!(by_address.len(), 1);
    let before = app.db.texts(&format!("SELECT id AS v FROM audit_events WHERE user_id = '{uid}'"));
    assert!(before.len() >= 3, "{before:?}");

    // The scan below finds what is there.
    let found = rows_naming(&app.db, &[&uid, EMAIL]);
    for place in ["users.id", "users.email_normalized", "token_families.user_id", "audit_events.user_id"] {
        assert!(found.iter().any(|f| f == place), "{place} in {found:?}");
    }

    // The confirmation page, then the deletion.
    let confirm = b.get("/account/delete").await;
    assert_eq!(confirm.status, 200);
    let done = b.post_raw("/account/delete", &[("csrf", &confirm.csrf())]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.contains("Your account is deleted"), "{}", done.body);
    assert!(cookie(&app, &b, "latchkey_session").is_none(), "this browser forgot its session");

    // Every session, old cookie and token is refused.
    for browser in [&b, &other] {
        let p = browser.get("/account").await;
        assert_eq!(p.status, 303);
        assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login")), "{:?}", p.location);
    }
    let (st, e) =
        client_post(&app, "/oauth/token", &c, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
    assert_eq!(userinfo_status(&app, &access).await, 401);
    for token in [&access, &refresh] {
        let (st, v) = client_post(&app, "/oauth/introspect", &c, &[("token", token)]).await;
        assert_eq!((st, v["active"].as_bool()), (200, Some(false)), "{v}");
    }
    assert!(
        app.core.store.get(&latchkey_core::store::hashed_key("device", &device)).await.expect("store").is_none(),
        "the known-device token is gone"
    );

    // The app was told, with a logout token for the session.
    let bodies = sink.wait_for(1).await;
    let token = url::form_urlencoded::parse(bodies[0].as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("a logout token");
    let claims = claims_of(&token).1;
    assert_eq!((claims["sid"].as_str(), claims["sub"].as_str()), (Some(sid.as_str()), Some(uid.as_str())));

    // The owner hears of it.
    let mail = app.wait_for_mail(EMAIL, "Your account was deleted", 0).await;
    assert!(mail.text.contains("was deleted, as you asked") && mail.html.contains("Your account was deleted"));

    // Once mail and logout tokens are out, no row anywhere names the
    // account, by id or address.
    wait_until_sent(&app).await;
    assert_eq!(rows_naming(&app.db, &[&uid, EMAIL]), Vec::<String>::new());

    // Its audit events stay, under one pseudonym and without the address.
    let pseudonyms = app.db.texts("SELECT DISTINCT user_id AS v FROM audit_events WHERE user_id LIKE 'deleted:%'");
    assert_eq!(pseudonyms.len(), 1, "{pseudonyms:?}");
    let p = &pseudonyms[0];
    assert!(p.len() == "deleted:".len() + 16 && p["deleted:".len()..].bytes().all(|c| c.is_ascii_hexdigit()), "{p}");
    let kept = app.db.texts(&format!("SELECT id AS v FROM audit_events WHERE user_id = '{p}'"));
    for id in &before {
        assert!(kept.contains(id), "event {id} is kept under the pseudonym");
    }
    assert!(app.db.texts(&format!("SELECT user_email AS v FROM audit_events WHERE user_id = '{p}'")).is_empty());
    let deleted = app.db.texts("SELECT actor || ' ' || user_id AS v FROM audit_events WHERE kind = 'user.deleted'");
    assert_eq!(deleted, vec![format!("user:{p} {p}")]);
    assert!(kept.contains(&by_address[0]), "the event that named the address alone is linked too");
}

#[tokio::test]
async fn admins_export_and_delete_through_the_api_and_the_console() {
    let app = TestApp::spawn().await;
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    let uid = user_id(&app.db, EMAIL);
    let reader = app.core.create_api_key("reader", &["users:read".to_owned()], None, None, &Actor::Cli).await;
    let reader = reader.expect("key").key;
    let other = app.core.create_api_key("clients", &["clients:read".to_owned()], None, None, &Actor::Cli).await;
    let other = other.expect("key").key;
    let get = |key: Option<String>, path: String| {
        let app = &app;
        async move {
            let mut req = app.client.get(app.url(&format!("/admin/api/v1{path}")));
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            let res = req.send().await.expect("answer");
            let status = res.status().as_u16();
            let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            (status, ct, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, ct, x) = get(Some(reader.clone()), format!("/users/{uid}/export")).await;
    assert_eq!((st, ct.as_str()), (200, "application/json"), "{x}");
    assert_eq!(x["profile"]["email"], EMAIL);
    assert!(x["audit_events"].as_array().is_some_and(|e| !e.is_empty()));
    let (st, ct, p) = get(Some(other), format!("/users/{uid}/export")).await;
    assert_eq!((st, ct.as_str(), p["status"].as_u64()), (403, "application/problem+json", Some(403)), "{p}");
    assert_eq!(get(None, format!("/users/{uid}/export")).await.0, 401);
    let (st, ct, p) = get(Some(reader.clone()), "/users/nobody-here/export".into()).await;
    assert_eq!((st, ct.as_str(), p["status"].as_u64()), (404, "application/problem+json", Some(404)), "{p}");
    let actors = app.db.texts("SELECT actor AS v FROM audit_events WHERE kind = 'data.exported'");
    assert_eq!(actors, vec![format!("apikey:{}", &reader[..15])]);

    // The console: an admin with a second factor, a recent sign-in.
    let boss = app.user("boss@example.com", STRONG_PASSWORD, true).await;
    let change = latchkey_core::admin::UserChanges { admin: Some(true), ..Default::default() };
    app.core.update_user(&boss.id, change, &Actor::Cli).await.expect("admin");
    let amr = vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
    let (sid, _) = app.core.create_session(&boss.id, amr, &RequestContext::default()).await.expect("session");
    let admin = Browser::new(&app);
    admin.jar.add_cookie_str(&format!("latchkey_session={sid}; Path=/"), &url::Url::parse(&app.address).expect("url"));
    let page = admin.get(&format!("/admin/users/{uid}")).await;
    assert!(page.contains(">Export data</button>"), "{}", page.body);
    let p = admin.post_raw(&format!("/admin/users/{uid}/export"), &[("csrf", &page.csrf())]).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(header(&p, "content-disposition").starts_with("attachment;"));
    let x: Value = serde_json::from_str(&p.body).expect("JSON");
    assert_eq!(x["profile"]["id"], uid.as_str());
    assert_eq!(app.db.texts("SELECT actor AS v FROM audit_events WHERE kind = 'data.exported'").len(), 2);
    app.clock.advance(chrono::Duration::minutes(11));
    let p = admin.post_raw(&format!("/admin/users/{uid}/export"), &[("csrf", &page.csrf())]).await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login?notice=reauthenticate")), "{:?}", p.location);

    // An admin's deletion goes the same way: gone, pseudonymised, mailed.
    let writer = app.core.create_api_key("writer", &["users:write".to_owned()], None, None, &Actor::Cli).await;
    let writer = writer.expect("key").key;
    let res = app
        .client
        .delete(app.url(&format!("/admin/api/v1/users/{uid}")))
        .bearer_auth(&writer)
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status().as_u16(), 204);
    let mail = app.wait_for_mail(EMAIL, "Your account was deleted", 0).await;
    assert!(mail.text.contains("An administrator deleted the account"), "{}", mail.text);
    wait_until_sent(&app).await;
    assert_eq!(rows_naming(&app.db, &[&uid, EMAIL]), Vec::<String>::new());
    let deleted = app.db.texts("SELECT actor AS v FROM audit_events WHERE kind = 'user.deleted'");
    assert_eq!(deleted, vec![format!("apikey:{}", &writer[..15])]);
    let (st, _, _) = get(Some(reader), format!("/users/{uid}/export")).await;
    assert_eq!(st, 404);
}
