//! The admin API: API keys (scopes, expiry, revocation, per-key limits),
//! admin access tokens, every area's endpoints with good and bad input, and
//! RFC 9457 problems for every refusal.

use latchkey_core::audit::Actor;
use latchkey_testkit::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::STRONG_PASSWORD;

pub(crate) async fn key(app: &TestApp, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    app.core.create_api_key("test", &scopes, None, None, &Actor::Cli).await.expect("key").key
}

pub(crate) struct Call {
    pub status: StatusCode,
    content_type: String,
    pub body: Value,
}

pub(crate) async fn call(app: &TestApp, key: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Call {
    let mut req = app.client.request(method, app.url(&format!("/admin/api/v1{path}")));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
    Call { status, content_type, body }
}

impl Call {
    /// A problem+json refusal with this status.
    pub(crate) fn refused(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "{}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["type"] == "about:blank");
        self
    }
    pub(crate) fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        &self.body
    }
}

#[tokio::test]
async fn missing_malformed_unknown_revoked_and_expired_keys_get_401() {
    let app = TestApp::spawn().await;
    let c = call(&app, None, Method::GET, "/users", None).await;
    c.refused(401);
    for bad in ["lk_nothing", "lk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not-a-token"] {
        call(&app, Some(bad), Method::GET, "/users", None).await.refused(401);
    }
    let k = key(&app, &["users:read"]).await;
    call(&app, Some(&k), Method::GET, "/users", None).await.ok(200);
    // The right prefix with another secret is refused.
    let forged = format!("{}{}", &k[..16], "B".repeat(43));
    call(&app, Some(&forged), Method::GET, "/users", None).await.refused(401);

    let prefix = k[..15].to_owned();
    app.core.revoke_api_key(&prefix, &Actor::Cli).await.expect("revoke");
    call(&app, Some(&k), Method::GET, "/users", None).await.refused(401);

    let soon = app.core.clock.now() + chrono::Duration::minutes(5);
    let scopes = vec!["users:read".to_owned()];
    let expiring = app.core.create_api_key("exp", &scopes, Some(soon), None, &Actor::Cli).await.expect("key").key;
    call(&app, Some(&expiring), Method::GET, "/users", None).await.ok(200);
    app.clock.advance(chrono::Duration::seconds(301));
    call(&app, Some(&expiring), Method::GET, "/users", None).await.refused(401);
}

#[tokio::test]
async fn every_endpoint_checks_its_scope() {
    let app = TestApp::spawn().await;
    let none_of_them = key(&app, &["keys:read"]).await;
    let cases: &[(Method, &str, &str)] = &[
        (Method::GET, "/users", "users:read"),
        (Method::POST, "/users", "users:write"),
        (Method::GET, "/users/x", "users:read"),
        (Method::PATCH, "/users/x", "users:write"),
        (Method::DELETE, "/users/x", "users:write"),
        (Method::POST, "/users/x/sign-out", "users:write"),
        (Method::POST, "/users/x/reset-mfa", "users:write"),
        (Method::POST, "/users/x/resend-verification", "users:write"),
        (Method::GET, "/users/x/sessions", "users:read"),
        (Method::GET, "/groups", "groups:read"),
        (Method::POST, "/groups", "groups:write"),
        (Method::GET, "/groups/x", "groups:read"),
        (Method::PATCH, "/groups/x", "groups:write"),
        (Method::DELETE, "/groups/x", "groups:write"),
        (Method::PUT, "/groups/x/members/y", "groups:write"),
        (Method::DELETE, "/groups/x/members/y", "groups:write"),
        (Method::GET, "/clients", "clients:read"),
        (Method::POST, "/clients", "clients:write"),
        (Method::GET, "/clients/x", "clients:read"),
        (Method::PATCH, "/clients/x", "clients:write"),
        (Method::DELETE, "/clients/x", "clients:write"),
        (Method::POST, "/clients/x/rotate-secret", "clients:write"),
        (Method::GET, "/policy", "policy:read"),
        (Method::PUT, "/policy", "policy:write"),
        (Method::POST, "/keys/rotate", "keys:write"),
        (Method::GET, "/audit", "audit:read"),
        (Method::GET, "/api-keys", "apikeys:write"),
        (Method::POST, "/api-keys", "apikeys:write"),
        (Method::DELETE, "/api-keys/x", "apikeys:write"),
    ];
    for (m, path, scope) in cases {
        let c = call(&app, Some(&none_of_them), m.clone(), path, Some(json!({}))).await;
        c.refused(403);
        assert!(c.body["detail"].as_str().is_some_and(|d| d.contains(scope)), "{m} {path}: {}", c.body);
        call(&app, None, m.clone(), path, None).await.refused(401);
    }
    call(&app, Some(&none_of_them), Method::GET, "/keys", None).await.ok(200);
}

#[tokio::test]
async fn users_can_be_listed_created_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let k = key(&app, &["users:read", "users:write", "audit:read"]).await;
    let created = call(
        &app,
        Some(&k),
        Method::POST,
        "/users",
        Some(json!({ "email": "Grace@Example.com", "name": " Grace Hopper ", "email_verified": true })),
    )
    .await;
    let user = created.ok(201).clone();
    assert_eq!((user["email"].as_str(), user["name"].as_str()), (Some("Grace@Example.com"), Some("Grace Hopper")));
    assert!(user.get("password_hash").is_none());
    let id = user["id"].as_str().expect("id").to_owned();

    // Bad input, field by field; nothing is created.
    let bad: &[(Value, u16, Option<&str>)] = &[
        (json!({ "email": "not-an-email" }), 422, Some("email")),
        (json!({ "email": "grace@example.com" }), 409, None),
        (json!({ "email": "x@example.com", "password": "short" }), 422, None),
        (json!({ "email": "x@example.com", "name": "a\u{0}b" }), 422, Some("name")),
        (json!({ "email": "x@example.com", "admin": "yes" }), 422, None),
        (json!({ "email": "x@example.com", "role": "root" }), 422, None),
        (json!({}), 422, None),
        (json!([1, 2]), 422, None),
    ];
    for (b, status, field) in bad {
        let c = call(&app, Some(&k), Method::POST, "/users", Some(b.clone())).await;
        c.refused(*status);
        if let Some(f) = field {
            assert_eq!(c.body["field"], *f, "{b}");
        }
    }
    let raw = app
        .client
        .post(app.url("/admin/api/v1/users"))
        .bearer_auth(&k)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), 422);
    let as_form = app.client.post(app.url("/admin/api/v1/users")).bearer_auth(&k).form(&[("email", "f@example.com")]);
    assert_eq!(as_form.send().await.expect("send").status(), 415);
    let big = json!({ "email": "b@example.com", "name": "x".repeat(70 * 1024) });
    assert!(matches!(call(&app, Some(&k), Method::POST, "/users", Some(big)).await.status.as_u16(), 413 | 422));

    let list = call(&app, Some(&k), Method::GET, "/users?q=grace&per_page=10", None).await;
    let list = list.ok(200);
    assert_eq!(
        (list["total"].as_i64(), list["page"].as_i64(), list["per_page"].as_i64()),
        (Some(1), Some(1), Some(10))
    );
    for bad in ["?page=0", "?per_page=1000", "?page=x", "?nope=1", "?page=1&page=2"] {
        call(&app, Some(&k), Method::GET, &format!("/users{bad}"), None).await.refused(400);
    }
    let none = call(&app, Some(&k), Method::GET, "/users?q=%25", None).await;
    assert_eq!(none.ok(200)["total"], 0, "LIKE wildcards are matched literally");

    let got = call(&app, Some(&k), Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(got.ok(200)["factors"]["totp"], false);
    call(&app, Some(&k), Method::GET, "/users/no-such-user", None).await.refused(404);
    call(&app, Some(&k), Method::GET, "/users/..%2F..", None).await.refused(404);

    let patched =
        call(&app, Some(&k), Method::PATCH, &format!("/users/{id}"), Some(json!({ "name": null, "admin": true })))
            .await;
    let patched = patched.ok(200);
    assert_eq!((patched["name"].clone(), patched["admin"].clone()), (Value::Null, json!(true)));
    for bad in [json!({ "disabled": "yes" }), json!({ "email": "new@example.com" }), json!({ "name": 5 })] {
        call(&app, Some(&k), Method::PATCH, &format!("/users/{id}"), Some(bad)).await.refused(422);
    }
    call(&app, Some(&k), Method::PATCH, "/users/nobody", Some(json!({ "disabled": true }))).await.refused(404);

    call(&app, Some(&k), Method::POST, &format!("/users/{id}/resend-verification"), None).await.refused(409);
    assert_eq!(
        call(&app, Some(&k), Method::GET, &format!("/users/{id}/sessions"), None).await.ok(200)["items"],
        json!([])
    );
    assert_eq!(call(&app, Some(&k), Method::DELETE, &format!("/users/{id}"), None).await.status, 204);
    call(&app, Some(&k), Method::DELETE, &format!("/users/{id}"), None).await.refused(404);

    // Every change is audited with the key's prefix as the actor; once the
    // account is deleted its events carry a pseudonym instead of its id.
    let deleted = call(&app, Some(&k), Method::GET, "/audit?kind=user.deleted", None).await;
    let deleted = deleted.ok(200)["items"][0].clone();
    let pseudonym = deleted["user_id"].as_str().expect("a pseudonym").to_owned();
    assert!(pseudonym.starts_with("deleted:") && deleted["user_email"].is_null(), "{deleted}");
    let events = call(&app, Some(&k), Method::GET, &format!("/audit?user_id={pseudonym}"), None).await;
    let events = events.ok(200)["items"].as_array().expect("items").clone();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["user.created", "user.admin_granted", "user.updated", "user.deleted"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(events.iter().all(|e| e["actor"] == format!("apikey:{}", &k[..15])));
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_tokens() {
    let app = TestApp::spawn().await;
    let k = key(&app, &["users:read", "users:write"]).await;
    let user = app.user("ada@example.com", STRONG_PASSWORD, true).await;
    let b = latchkey_testkit::Browser::new(&app);
    b.sign_in("ada@example.com", STRONG_PASSWORD).await;
    assert_eq!(b.get("/account").await.status, 200);
    let sessions = call(&app, Some(&k), Method::GET, &format!("/users/{}/sessions", user.id), None).await;
    assert_eq!(sessions.ok(200)["items"].as_array().map(Vec::len), Some(1));
    assert!(sessions.body["items"][0].get("id").is_none(), "never the session id");

    let c =
        call(&app, Some(&k), Method::PATCH, &format!("/users/{}", user.id), Some(json!({ "disabled": true }))).await;
    assert_eq!(c.ok(200)["disabled"], true);
    assert_eq!(b.get("/account").await.status, 303, "the session is over");
    let c =
        call(&app, Some(&k), Method::PATCH, &format!("/users/{}", user.id), Some(json!({ "disabled": false }))).await;
    assert_eq!(c.ok(200)["disabled"], false);
    b.sign_in("ada@example.com", STRONG_PASSWORD).await;
    let ended = call(&app, Some(&k), Method::POST, &format!("/users/{}/sign-out", user.id), None).await;
    assert_eq!(ended.ok(200)["sessions_ended"], 1);
    assert_eq!(b.get("/account").await.status, 303);
}

#[tokio::test]
async fn groups_and_members() {
    let app = TestApp::spawn().await;
    let k = key(&app, &["groups:read", "groups:write"]).await;
    let user = app.user("ada@example.com", STRONG_PASSWORD, true).await;
    let g = call(&app, Some(&k), Method::POST, "/groups", Some(json!({ "name": "Ops", "require_mfa": true }))).await;
    let g = g.ok(201).clone();
    let gid = g["id"].as_str().expect("id").to_owned();
    call(&app, Some(&k), Method::POST, "/groups", Some(json!({ "name": "OPS" }))).await.refused(409);
    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x".repeat(101) }),
        json!({ "require_mfa": true }),
        json!({ "name": 1 }),
    ] {
        call(&app, Some(&k), Method::POST, "/groups", Some(bad)).await.refused(422);
    }
    let added = call(&app, Some(&k), Method::PUT, &format!("/groups/{gid}/members/{}", user.id), None).await;
    assert_eq!(added.ok(200)["changed"], true);
    let again = call(&app, Some(&k), Method::PUT, &format!("/groups/{gid}/members/{}", user.id), None).await;
    assert_eq!(again.ok(200)["changed"], false);
    call(&app, Some(&k), Method::PUT, &format!("/groups/{gid}/members/nobody"), None).await.refused(404);
    call(&app, Some(&k), Method::PUT, &format!("/groups/nogroup/members/{}", user.id), None).await.refused(404);
    let got = call(&app, Some(&k), Method::GET, &format!("/groups/{gid}"), None).await;
    assert_eq!(got.ok(200)["members"][0]["email"], "ada@example.com");
    let renamed =
        call(&app, Some(&k), Method::PATCH, &format!("/groups/{gid}"), Some(json!({ "name": "Operations" }))).await;
    assert_eq!(
        (renamed.ok(200)["name"].as_str(), renamed.body["require_mfa"].as_bool()),
        (Some("Operations"), Some(true))
    );
    let list = call(&app, Some(&k), Method::GET, "/groups", None).await;
    assert_eq!(list.ok(200)["total"], 1);
    call(&app, Some(&k), Method::DELETE, &format!("/groups/{gid}/members/{}", user.id), None).await.ok(200);
    assert_eq!(call(&app, Some(&k), Method::DELETE, &format!("/groups/{gid}"), None).await.status, 204);
    call(&app, Some(&k), Method::GET, &format!("/groups/{gid}"), None).await.refused(404);
}

#[tokio::test]
async fn clients_policy_and_keys() {
    let app = TestApp::spawn().await;
    let k =
        key(&app, &["clients:read", "clients:write", "policy:read", "policy:write", "keys:read", "keys:write"]).await;
    let c = call(
        &app,
        Some(&k),
        Method::POST,
        "/clients",
        Some(json!({ "name": "Wiki", "redirect_uris": ["https://wiki.example.com/cb"], "signing_alg": "ES256" })),
    )
    .await;
    let c = c.ok(201).clone();
    assert!(c["client_secret"].as_str().is_some_and(|s| s.len() == 43));
    let id = c["client_id"].as_str().expect("id").to_owned();
    let bad: &[(Value, &str)] = &[
        (json!({ "name": "x", "redirect_uris": ["http://evil.example.com/cb"] }), "redirect_uris"),
        (json!({ "name": "x", "redirect_uris": ["https://a.example.com/*"] }), "redirect_uris"),
        (json!({ "name": "", "redirect_uris": ["https://a.example.com/cb"] }), "name"),
        (json!({ "name": "x", "grant_types": ["password"] }), "grant_types"),
        (json!({ "name": "x", "redirect_uris": ["https://a.example.com/cb"], "signing_alg": "HS256" }), "signing_alg"),
        (json!({ "name": "x", "redirect_uris": ["https://a.example.com/cb"], "public": true, "admin": true }), "admin"),
    ];
    for (b, field) in bad {
        let r = call(&app, Some(&k), Method::POST, "/clients", Some(b.clone())).await;
        r.refused(422);
        assert_eq!(r.body["field"], *field, "{b}");
    }
    let edited = call(
        &app,
        Some(&k),
        Method::PATCH,
        &format!("/clients/{id}"),
        Some(json!({ "redirect_uris": ["https://wiki.example.com/cb2"], "require_mfa": true, "admin": true })),
    )
    .await;
    let edited = edited.ok(200);
    assert_eq!(edited["redirect_uris"], json!(["https://wiki.example.com/cb2"]));
    assert_eq!((edited["require_mfa"].clone(), edited["admin"].clone()), (json!(true), json!(true)));
    call(&app, Some(&k), Method::PATCH, &format!("/clients/{id}"), Some(json!({ "redirect_uris": ["ftp://x"] })))
        .await
        .refused(422);
    call(&app, Some(&k), Method::PATCH, &format!("/clients/{id}"), Some(json!({ "public": true }))).await.refused(422);
    let rotated = call(&app, Some(&k), Method::POST, &format!("/clients/{id}/rotate-secret"), None).await;
    assert_ne!(rotated.ok(200)["client_secret"], c["client_secret"]);
    assert_eq!(call(&app, Some(&k), Method::GET, "/clients", None).await.ok(200)["total"], 1);
    assert_eq!(call(&app, Some(&k), Method::DELETE, &format!("/clients/{id}"), None).await.status, 204);
    call(&app, Some(&k), Method::GET, &format!("/clients/{id}"), None).await.refused(404);

    assert_eq!(call(&app, Some(&k), Method::GET, "/policy", None).await.ok(200)["mfa"], "optional");
    call(&app, Some(&k), Method::PUT, "/policy", Some(json!({ "mfa": "always" }))).await.refused(422);
    call(&app, Some(&k), Method::PUT, "/policy", Some(json!({ "mfa": "required" }))).await.ok(200);
    assert_eq!(call(&app, Some(&k), Method::GET, "/policy", None).await.ok(200)["mfa"], "required");

    let before = call(&app, Some(&k), Method::GET, "/keys", None).await.ok(200)["items"].as_array().map(Vec::len);
    let rotated = call(&app, Some(&k), Method::POST, "/keys/rotate", Some(json!({ "now": false }))).await;
    assert!(rotated.ok(200)["items"].as_array().map(Vec::len) > before);
    call(&app, Some(&k), Method::POST, "/keys/rotate", Some(json!({ "now": "yes" }))).await.refused(422);
}

#[tokio::test]
async fn keys_make_keys_only_within_their_scopes() {
    let app = TestApp::spawn().await;
    let k = key(&app, &["apikeys:write", "users:read"]).await;
    let made =
        call(&app, Some(&k), Method::POST, "/api-keys", Some(json!({ "name": "ro", "scopes": ["users:read"] }))).await;
    let made = made.ok(201).clone();
    let child = made["key"].as_str().expect("key").to_owned();
    call(&app, Some(&child), Method::GET, "/users", None).await.ok(200);
    let wider =
        call(&app, Some(&k), Method::POST, "/api-keys", Some(json!({ "name": "w", "scopes": ["users:write"] }))).await;
    wider.refused(403);
    for bad in [
        json!({ "name": "x", "scopes": [] }),
        json!({ "name": "x", "scopes": ["root"] }),
        json!({ "name": "", "scopes": ["users:read"] }),
        json!({ "name": "x", "scopes": ["users:read"], "expires_at": "tomorrow" }),
        json!({ "name": "x", "scopes": ["users:read"], "expires_at": "2001-01-01T00:00:00Z" }),
    ] {
        call(&app, Some(&k), Method::POST, "/api-keys", Some(bad)).await.refused(422);
    }
    let list = call(&app, Some(&k), Method::GET, "/api-keys", None).await;
    let text = list.ok(200).to_string();
    assert!(!text.contains(&child[16..]) && !text.contains("key_hash"), "keys are never listed");
    let id = made["id"].as_str().expect("id");
    assert_eq!(call(&app, Some(&k), Method::DELETE, &format!("/api-keys/{id}"), None).await.status, 204);
    call(&app, Some(&child), Method::GET, "/users", None).await.refused(401);
}

#[tokio::test]
async fn one_key_over_its_limit_leaves_the_others_alone() {
    let app = TestApp::builder().env("LATCHKEY_LIMITS__ADMIN_API_REQUESTS_PER_KEY_PER_MINUTE", "3").spawn().await;
    let a = key(&app, &["users:read"]).await;
    let b = key(&app, &["users:read"]).await;
    for _ in 0..3 {
        call(&app, Some(&a), Method::GET, "/users", None).await.ok(200);
    }
    let limited = app.client.get(app.url("/admin/api/v1/users")).bearer_auth(&a).send().await.expect("send");
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    call(&app, Some(&b), Method::GET, "/users", None).await.ok(200);
}

#[tokio::test]
async fn admins_may_not_lock_themselves_out() {
    let app = TestApp::spawn().await;
    let admin = app.user("root@example.com", STRONG_PASSWORD, true).await;
    let me = Actor::Admin(admin.id.clone());
    let c = latchkey_core::admin::UserChanges { disabled: Some(true), ..Default::default() };
    assert!(matches!(app.core.update_user(&admin.id, c, &me).await, Err(latchkey_core::CoreError::Conflict(_))));
    assert!(matches!(app.core.delete_user_by_id(&admin.id, &me).await, Err(latchkey_core::CoreError::Conflict(_))));
    assert!(!app.core.find_user(&admin.id).await.expect("find").expect("user").disabled);
}
