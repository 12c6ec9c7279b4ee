//! RP-initiated logout: /logout as the end-session endpoint.

use latchkey_core::audit::Actor;
use latchkey_core::clients::{NewClient, create_client};
use latchkey_testkit::{Browser, REDIRECT_URI, TestApp, TestClient, query_of};
use serde_json::Value;

use crate::oidc::{EMAIL, VERIFIER, auth_url, code_for, exchange, setup, userinfo_status};
use crate::support::STRONG_PASSWORD;

const LOGGED_OUT: &str = "http://localhost:9/logged-out";

async fn client_with_logout(app: &TestApp) -> TestClient {
    let created = create_client(
        &app.core,
        NewClient {
            name: "Notes".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            post_logout_redirect_uris: vec![LOGGED_OUT.into()],
            first_party: true,
            ..Default::default()
        },
        &Actor::Cli,
    )
    .await
    .expect("client");
    TestClient { client_id: created.client.client_id, secret: created.client_secret, redirect_uri: REDIRECT_URI.into() }
}

async fn signed_in_tokens(app: &TestApp, b: &Browser, c: &TestClient) -> Value {
    let q = code_for(app, b, c, &[]).await;
    let (s, t) = exchange(app, c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    t
}

fn logout_url(params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::for_suffix(String::from("/logout?"), 8);
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn signed_in(b: &Browser) -> bool {
    b.get("/account").await.status == 200
}

#[tokio::test]
async fn a_valid_hint_signs_out_at_once_and_returns_to_the_registered_uri() {
    let (app, b) = setup().await;
    let c = client_with_logout(&app).await;
    let t = signed_in_tokens(&app, &b, &c).await;
    let hint = t["id_token"].as_str().expect("id token");
    let access = t["access_token"].as_str().expect("access token");

    let p = b
        .get(&logout_url(&[("id_token_hint", hint), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "bye")]))
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("http://localhost:9/logged-out?state=bye"));
    assert!(!signed_in(&b).await, "the session ended");
    assert_eq!(userinfo_status(&app, access).await, 401, "what the session was given ends with it");
    // prompt=none now says login_required.
    let none = auth_url(
        &app,
        &[
            ("response_type", "code"),
            ("client_id", &c.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("prompt", "none"),
        ],
    );
    let p = b.follow(&app, &none).await;
    assert_eq!(query_of(p.location.as_deref().expect("redirect"))["error"], "login_required");
    // Logging out again (no session) still returns to the registered URI.
    let p = b.get(&logout_url(&[("id_token_hint", hint), ("post_logout_redirect_uri", LOGGED_OUT)])).await;
    assert_eq!(p.location.as_deref(), Some(LOGGED_OUT));
}

#[tokio::test]
async fn an_unregistered_uri_is_never_followed() {
    let (app, b) = setup().await;
    let c = client_with_logout(&app).await;
    let t = signed_in_tokens(&app, &b, &c).await;
    let hint = t["id_token"].as_str().expect("id token");
    for bad in
        ["https://evil.example/", "http://localhost:9/logged-out/x", "http://localhost:9/logged-out?x=1", REDIRECT_URI]
    {
        let p = b.get(&logout_url(&[("id_token_hint", hint), ("post_logout_redirect_uri", bad), ("state", "s")])).await;
        assert_eq!(p.location.as_deref(), Some("/login?notice=signed-out"), "{bad} is not followed");
        b.sign_in(EMAIL, STRONG_PASSWORD).await;
    }
    // Without a hint or client, the URI cannot be checked: not followed.
    let p = b.get(&logout_url(&[("post_logout_redirect_uri", LOGGED_OUT)])).await;
    assert_eq!(p.status, 200, "asks for confirmation");
    assert!(!p.contains(LOGGED_OUT));
}

#[tokio::test]
async fn a_bad_or_foreign_hint_asks_for_confirmation() {
    let (app, b) = setup().await;
    app.user("grace@example.com", STRONG_PASSWORD, true).await;
    let c = client_with_logout(&app).await;
    let other_browser = Browser::new(&app);
    other_browser.sign_in("grace@example.com", STRONG_PASSWORD).await;
    let grace_tokens = {
        let q = code_for(&app, &other_browser, &c, &[]).await;
        exchange(&app, &c, &q["code"], Some(VERIFIER)).await.1
    };
    b.sign_in(EMAIL, STRONG_PASSWORD).await;
    let foreign = grace_tokens["id_token"].as_str().expect("id token");
    for hint in ["garbage", "a.b.c", foreign] {
        let p = b
            .get(&logout_url(&[("id_token_hint", hint), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "s")]))
            .await;
        assert_eq!(p.status, 200, "{hint}: a confirmation page");
        assert!(p.contains("Sign out?"));
        assert!(signed_in(&b).await, "nothing ended before the user confirms");
    }
    // The foreign hint named the client: confirming returns to its URI.
    let p = b
        .get(&logout_url(&[("id_token_hint", foreign), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "s")]))
        .await;
    assert!(p.contains("Notes"), "the app that asked is named");
    let csp = p.headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("form-action 'self' http://localhost:9"), "{csp}");
    let fields = [
        ("csrf", p.csrf()),
        ("client_id", latchkey_testkit::hidden(&p.body, "client_id").expect("client_id")),
        ("post_logout_redirect_uri", latchkey_testkit::hidden(&p.body, "post_logout_redirect_uri").expect("uri")),
        ("state", latchkey_testkit::hidden(&p.body, "state").expect("state")),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Without CSRF: refused, still signed in.
    assert_eq!(b.post_raw("/logout", &[("csrf", "forged")]).await.status, 403);
    assert!(signed_in(&b).await);
    let done = b.post_raw("/logout", &fields).await;
    assert_eq!(done.location.as_deref(), Some("http://localhost:9/logged-out?state=s"));
    assert!(!signed_in(&b).await);
    assert!(signed_in(&other_browser).await, "the other user's session is untouched");
    // A tampered carried URI is not followed.
    b.sign_in(EMAIL, STRONG_PASSWORD).await;
    let p = b.get("/logout").await;
    let done = b
        .post_raw(
            "/logout",
            &[("csrf", &p.csrf()), ("client_id", &c.client_id), ("post_logout_redirect_uri", "https://evil.example/")],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/login?notice=signed-out"));
}

#[tokio::test]
async fn a_posted_end_session_request_continues_as_a_get() {
    let (app, b) = setup().await;
    let c = client_with_logout(&app).await;
    let t = signed_in_tokens(&app, &b, &c).await;
    let hint = t["id_token"].as_str().expect("id token");
    // A form on the app's site posts without our cookie or CSRF token.
    let p = Browser::new(&app)
        .post_raw("/logout", &[("id_token_hint", hint), ("post_logout_redirect_uri", LOGGED_OUT), ("state", "x")])
        .await;
    assert_eq!(p.status, 303);
    let next = p.location.expect("a GET to continue");
    assert!(next.starts_with("/logout?id_token_hint="), "{next}");
    let p = b.get(&next).await;
    assert_eq!(p.location.as_deref(), Some("http://localhost:9/logged-out?state=x"));
    assert!(!signed_in(&b).await);
}

#[tokio::test]
async fn discovery_names_the_end_session_endpoint() {
    let app = TestApp::spawn().await;
    let d: Value = app.get("/.well-known/openid-configuration").await.json().await.expect("json");
    assert_eq!(d["end_session_endpoint"], format!("{}/logout", app.public_url));
}
