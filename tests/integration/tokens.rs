//! The life of tokens after the first exchange: refresh (rotation, reuse,
//! expiry, scope), client_credentials, introspection (RFC 7662), revocation
//! (RFC 7009) and the revocation fan-out of SPEC §5.

use latchkey_core::audit::Actor;
use latchkey_core::clients::{NewClient, create_client};
use latchkey_testkit::{Browser, REDIRECT_URI, TestApp, TestClient};
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, OAuth2TokenResponse, RefreshToken, TokenResponse};
use serde_json::Value;

use crate::oidc::{EMAIL, VERIFIER, claims_of, code_for, exchange, http, setup, userinfo_status};
use crate::support::STRONG_PASSWORD;

/// Tokens with a refresh token: a first-party client asking offline_access.
async fn offline_tokens(app: &TestApp, b: &Browser, c: &TestClient) -> Value {
    let q = code_for(app, b, c, &[("scope", "openid email offline_access")]).await;
    let (s, t) = exchange(app, c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    assert!(t["refresh_token"].is_string(), "a refresh token: {t}");
    t
}

/// POST to a token-family endpoint with the client's credentials (Basic).
async fn post(app: &TestApp, path: &str, c: &TestClient, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app.client.post(app.url(path));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    match &c.secret {
        Some(s) => req = req.basic_auth(&c.client_id, Some(s)),
        None => form.push(("client_id", &c.client_id)),
    }
    let resp = req.form(&form).send().await.expect("answer");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn refresh(app: &TestApp, c: &TestClient, token: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    post(app, "/oauth/token", c, &form).await
}

async fn introspect(app: &TestApp, c: &TestClient, token: &str) -> Value {
    let (s, v) = post(app, "/oauth/introspect", c, &[("token", token)]).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_owned()
}

#[tokio::test]
async fn refresh_rotates_and_openidconnect_uses_it() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    assert_eq!(t["scope"], "openid email offline_access");

    // The relying library refreshes.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.public_url.clone()).expect("issuer"), &http())
            .await
            .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.client_id.clone()),
        c.secret.clone().map(ClientSecret::new),
    );
    let refreshed = rp
        .exchange_refresh_token(&RefreshToken::new(s(&t, "refresh_token")))
        .expect("token endpoint")
        .request_async(&http())
        .await
        .expect("refresh works");
    let next = refreshed.refresh_token().expect("a new refresh token").secret().clone();
    assert_ne!(next, s(&t, "refresh_token"), "rotated");
    assert!(refreshed.id_token().is_some(), "openid: a new ID token");
    assert_eq!(userinfo_status(&app, refreshed.access_token().secret()).await, 200);
    let (_, at) = claims_of(refreshed.access_token().secret());
    assert_eq!(at["grant_id"], claims_of(&s(&t, "access_token")).1["grant_id"], "the same family");

    // The new one works in turn; narrowing the scope is allowed, widening not.
    let (st, narrowed) = refresh(&app, &c, &next, Some("openid")).await;
    assert_eq!(st, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid");
    assert_eq!(claims_of(&s(&narrowed, "access_token")).1["scope"], "openid");
    let (st, e) = refresh(&app, &c, &s(&narrowed, "refresh_token"), Some("openid email profile")).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_scope")));
    // The refresh token keeps the original scope.
    let (st, full) = refresh(&app, &c, &s(&narrowed, "refresh_token"), None).await;
    assert_eq!(st, 200, "{full}");
    assert_eq!(full["scope"], "openid email offline_access");
}

#[tokio::test]
async fn reuse_after_the_window_kills_the_family() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    let first = s(&t, "refresh_token");
    let (_, r1) = refresh(&app, &c, &first, None).await;
    let (_, r2) = refresh(&app, &c, &s(&r1, "refresh_token"), None).await;
    let newest = s(&r2, "refresh_token");
    let access = s(&r2, "access_token");
    assert_eq!(userinfo_status(&app, &access).await, 200);

    app.clock.advance(chrono::Duration::seconds(11));
    let (st, e) = refresh(&app, &c, &first, None).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    let (st, _) = refresh(&app, &c, &newest, None).await;
    assert_eq!(st, 400, "the newest token of the family is dead too");
    assert_eq!(userinfo_status(&app, &access).await, 401, "and its access tokens");
    assert_eq!(introspect(&app, &c, &newest).await["active"], false);
    let audit = latchkey_core::audit::list(&app.core, None, None, 1000).await.expect("audit");
    assert!(audit.iter().any(|e| e.kind == "token.refresh_replayed"));
}

#[tokio::test]
async fn concurrent_refreshes_within_the_window_get_the_same_successor() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    let token = s(&t, "refresh_token");
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (client, url, c, token) = (app.client.clone(), app.url("/oauth/token"), c.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .basic_auth(&c.client_id, c.secret.as_ref())
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                .send()
                .await
                .expect("refresh");
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut successors = Vec::new();
    for task in tasks {
        let (st, v) = task.await.expect("join");
        assert_eq!(st, 200, "{v}");
        successors.push(s(&v, "refresh_token"));
    }
    assert_eq!(successors[0], successors[1], "the same successor");
    // A third try within the window still gets it; the successor works.
    app.clock.advance(chrono::Duration::seconds(5));
    let (st, v) = refresh(&app, &c, &token, None).await;
    assert_eq!((st, s(&v, "refresh_token")), (200, successors[0].clone()));
    let (st, _) = refresh(&app, &c, &successors[0], None).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn refresh_tokens_belong_to_their_client_and_expire() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let other = app.client("Other", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    let token = s(&t, "refresh_token");
    let (st, e) = refresh(&app, &other, &token, None).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")), "another client's token");
    assert_eq!(introspect(&app, &other, &token).await["active"], false);
    let (st, v) = refresh(&app, &c, &token, None).await;
    assert_eq!(st, 200, "still the owner's: {v}");
    for bad in ["", "x", &"A".repeat(43), &"A".repeat(5000)] {
        let (st, e) = refresh(&app, &c, bad, None).await;
        assert_eq!(st, 400, "{bad:?}");
        assert!(matches!(e["error"].as_str(), Some("invalid_grant" | "invalid_request")), "{e}");
    }

    // Idle expiry: 30 days unused.
    let mut current = s(&v, "refresh_token");
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(refresh(&app, &c, &current, None).await.0, 400, "idle expiry");

    // Absolute expiry: 90 days after the grant, however active.
    let t = offline_tokens(&app, &b, &c).await;
    current = s(&t, "refresh_token");
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::days(29));
        let (st, v) = refresh(&app, &c, &current, None).await;
        assert_eq!(st, 200, "{v}");
        current = s(&v, "refresh_token");
    }
    app.clock.advance(chrono::Duration::days(4));
    assert_eq!(refresh(&app, &c, &current, None).await.0, 400, "absolute expiry");
}

#[tokio::test]
async fn offline_access_needs_a_first_party_client_or_prompt_consent() {
    let (app, b) = setup().await;
    let third = app.client("Third party", false, false).await;
    // Without prompt=consent the scope is dropped: no refresh token.
    let q = code_for(&app, &b, &third, &[("scope", "openid offline_access")]).await;
    let (_, t) = exchange(&app, &third, &q["code"], Some(VERIFIER)).await;
    assert_eq!(t["scope"], "openid");
    assert!(t.get("refresh_token").is_none());
    // With prompt=consent the user is asked, and it is granted.
    let q = code_for(&app, &b, &third, &[("scope", "openid offline_access"), ("prompt", "consent")]).await;
    let (_, t) = exchange(&app, &third, &q["code"], Some(VERIFIER)).await;
    assert_eq!(t["scope"], "openid offline_access");
    assert!(t["refresh_token"].is_string());
    // A client without the refresh_token grant never gets one.
    let created = create_client(
        &app.core,
        NewClient {
            name: "Code only".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            first_party: true,
            grants: vec!["authorization_code".into()],
            ..Default::default()
        },
        &Actor::Cli,
    )
    .await
    .expect("client");
    let code_only = TestClient {
        client_id: created.client.client_id,
        secret: created.client_secret,
        redirect_uri: REDIRECT_URI.into(),
    };
    let q = code_for(&app, &b, &code_only, &[("scope", "openid offline_access")]).await;
    let (_, t) = exchange(&app, &code_only, &q["code"], Some(VERIFIER)).await;
    assert!(t.get("refresh_token").is_none(), "{t}");
    let (st, e) = refresh(&app, &code_only, &"A".repeat(43), None).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("unauthorized_client")));
}

async fn service_client(app: &TestApp, grants: &[&str]) -> TestClient {
    let created = create_client(
        &app.core,
        NewClient {
            name: "Service".into(),
            redirect_uris: if grants.contains(&"authorization_code") { vec![REDIRECT_URI.into()] } else { vec![] },
            grants: grants.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        },
        &Actor::Cli,
    )
    .await
    .expect("client");
    TestClient { client_id: created.client.client_id, secret: created.client_secret, redirect_uri: REDIRECT_URI.into() }
}

#[tokio::test]
async fn client_credentials_gives_the_client_a_token_of_its_own() {
    let (app, _) = setup().await;
    let service = service_client(&app, &["client_credentials"]).await;
    let (st, t) = post(&app, "/oauth/token", &service, &[("grant_type", "client_credentials")]).await;
    assert_eq!(st, 200, "{t}");
    assert!(t.get("id_token").is_none() && t.get("refresh_token").is_none());
    let (header, claims) = claims_of(&s(&t, "access_token"));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], service.client_id.as_str());
    assert_eq!(claims["client_id"], service.client_id.as_str());
    let info = introspect(&app, &service, &s(&t, "access_token")).await;
    assert_eq!((info["active"].as_bool(), info["sub"].as_str()), (Some(true), Some(service.client_id.as_str())));
    // Not a user: userinfo says the scope is insufficient.
    let resp = app.client.get(app.url("/userinfo")).bearer_auth(s(&t, "access_token")).send().await.expect("userinfo");
    assert_eq!(resp.status(), 403);
    // Scopes it may not have; a client without the grant; a public client cannot be made.
    let (st, e) =
        post(&app, "/oauth/token", &service, &[("grant_type", "client_credentials"), ("scope", "openid")]).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_scope")));
    let web = app.client("Web", false, true).await;
    let (st, e) = post(&app, "/oauth/token", &web, &[("grant_type", "client_credentials")]).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("unauthorized_client")));
    let public = create_client(
        &app.core,
        NewClient { name: "P".into(), public: true, grants: vec!["client_credentials".into()], ..Default::default() },
        &Actor::Cli,
    )
    .await;
    assert!(public.is_err());
}

#[tokio::test]
async fn introspection_answers_only_the_tokens_own_client() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let other = app.client("Other", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    let access = s(&t, "access_token");

    let v = introspect(&app, &c, &access).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], c.client_id.as_str());
    assert_eq!(v["scope"], "openid email offline_access");
    for field in ["sub", "exp", "iat", "iss", "jti", "token_type"] {
        assert!(v.get(field).is_some(), "{field}");
    }
    let r = introspect(&app, &c, &s(&t, "refresh_token")).await;
    assert_eq!((r["active"].as_bool(), r["token_type"].as_str()), (Some(true), Some("refresh_token")));

    assert_eq!(introspect(&app, &other, &access).await, serde_json::json!({"active": false}), "another client's token");
    for bad in ["garbage", "a.b.c", &s(&t, "id_token"), &"x".repeat(9000)] {
        assert_eq!(introspect(&app, &c, bad).await["active"], false, "{bad}");
    }
    // Without client authentication: 401; without a token: 400.
    let resp =
        app.client.post(app.url("/oauth/introspect")).form(&[("token", access.as_str())]).send().await.expect("x");
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_some());
    let (st, e) = post(&app, "/oauth/introspect", &c, &[]).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_request")));
    // Expired (clock moved): inactive.
    app.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(introspect(&app, &c, &access).await["active"], false);
}

#[tokio::test]
async fn revocation_ends_what_the_client_owns_and_nothing_else() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let other = app.client("Other", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    let (access, refresh_token) = (s(&t, "access_token"), s(&t, "refresh_token"));

    // Unknown tokens: 200. Another client's tokens: 200 and nothing changes.
    for token in ["unknown", "A".repeat(43).as_str()] {
        assert_eq!(post(&app, "/oauth/revoke", &c, &[("token", token)]).await.0, 200);
    }
    assert_eq!(post(&app, "/oauth/revoke", &other, &[("token", &refresh_token)]).await.0, 200);
    assert_eq!(post(&app, "/oauth/revoke", &other, &[("token", &access)]).await.0, 200);
    assert_eq!(introspect(&app, &c, &refresh_token).await["active"], true);
    assert_eq!(userinfo_status(&app, &access).await, 200);
    // Without client authentication: 401.
    let resp = app.client.post(app.url("/oauth/revoke")).form(&[("token", access.as_str())]).send().await.expect("x");
    assert_eq!(resp.status(), 401);

    // An access token: refused from now on; the refresh token lives on.
    assert_eq!(
        post(&app, "/oauth/revoke", &c, &[("token", &access), ("token_type_hint", "access_token")]).await.0,
        200
    );
    assert_eq!(userinfo_status(&app, &access).await, 401);
    assert_eq!(introspect(&app, &c, &access).await["active"], false);
    let (st, r) = refresh(&app, &c, &refresh_token, None).await;
    assert_eq!(st, 200);
    // A refresh token: its family ends, access tokens included.
    let (newest, newest_access) = (s(&r, "refresh_token"), s(&r, "access_token"));
    assert_eq!(
        post(&app, "/oauth/revoke", &c, &[("token", &newest), ("token_type_hint", "refresh_token")]).await.0,
        200
    );
    assert_eq!(refresh(&app, &c, &newest, None).await.0, 400);
    assert_eq!(userinfo_status(&app, &newest_access).await, 401);
}

/// A user's tokens from two clients, and what each trigger leaves alive.
struct Grants {
    app: TestApp,
    b: Browser,
    c: TestClient,
    other: TestClient,
}

impl Grants {
    async fn new() -> Grants {
        let (app, b) = setup().await;
        let c = app.client("Own app", false, true).await;
        let other = app.client("Other", false, true).await;
        Grants { app, b, c, other }
    }

    /// (refresh token, access token) alive right now?
    async fn alive(&self, c: &TestClient, t: &Value) -> (bool, bool) {
        let r = introspect(&self.app, c, &s(t, "refresh_token")).await["active"] == true;
        let a = userinfo_status(&self.app, &s(t, "access_token")).await == 200;
        (r, a)
    }
}

#[tokio::test]
async fn password_reset_disable_and_delete_end_every_token() {
    let g = Grants::new().await;
    let t = offline_tokens(&g.app, &g.b, &g.c).await;
    let t2 = offline_tokens(&g.app, &g.b, &g.other).await;
    assert_eq!(g.alive(&g.c, &t).await, (true, true));
    // Another user's grant, which none of this touches.
    g.app.user("grace@example.com", STRONG_PASSWORD, true).await;
    let grace = offline_tokens_for(&g, "grace@example.com", STRONG_PASSWORD).await;
    // A password reset (through the mail link).
    let reset_browser = Browser::new(&g.app);
    let p = reset_browser.submit("/password/forgot", "/password/forgot", &[("email", EMAIL)]).await;
    assert_eq!(p.status, 200);
    let mail = g.app.wait_for_mail(EMAIL, "Reset", 0).await;
    let link = mail.link("/password/reset").expect("reset link");
    let path = link.trim_start_matches(&g.app.public_url).to_owned();
    let page = reset_browser.get(&path).await;
    let token = latchkey_testkit::hidden(&page.body, "token").expect("token");
    let p = reset_browser
        .post_raw(
            "/password/reset",
            &[("csrf", &page.csrf()), ("token", &token), ("new_password", "fresh copper lighthouse 42")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(g.alive(&g.c, &t).await, (false, false));
    assert_eq!(g.alive(&g.other, &t2).await, (false, false));
    assert_eq!(g.alive(&g.c, &grace).await, (true, true), "another user's tokens live on");

    // Disabled: refused at refresh, userinfo and introspection.
    g.app.clock.advance(chrono::Duration::seconds(2));
    let t = offline_tokens_with(&g, "fresh copper lighthouse 42").await;
    latchkey_core::accounts::set_disabled(&g.app.core, EMAIL, true, &Actor::Cli).await.expect("disable");
    assert_eq!(g.alive(&g.c, &t).await, (false, false));
    assert_eq!(refresh(&g.app, &g.c, &s(&t, "refresh_token"), None).await.0, 400);
    latchkey_core::accounts::set_disabled(&g.app.core, EMAIL, false, &Actor::Cli).await.expect("enable");
    assert_eq!(g.alive(&g.c, &t).await, (false, false), "enabling again does not bring them back");

    // Deleted.
    g.app.clock.advance(chrono::Duration::seconds(2));
    let t = offline_tokens_with(&g, "fresh copper lighthouse 42").await;
    latchkey_core::accounts::delete_user(&g.app.core, EMAIL, &Actor::Cli).await.expect("delete");
    assert_eq!(g.alive(&g.c, &t).await, (false, false));
    assert_eq!(g.alive(&g.c, &grace).await, (true, true), "another user's tokens live on");
}

async fn offline_tokens_with(g: &Grants, password: &str) -> Value {
    offline_tokens_for(g, EMAIL, password).await
}

async fn offline_tokens_for(g: &Grants, email: &str, password: &str) -> Value {
    let url = crate::oidc::auth_url(
        &g.app,
        &[
            ("response_type", "code"),
            ("client_id", &g.c.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid offline_access"),
            ("code_challenge", &crate::oidc::challenge_for(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );
    let redirect = Browser::new(&g.app).authorize(&g.app, &url, email, password).await;
    let q = latchkey_testkit::query_of(&redirect);
    let (st, t) = exchange(&g.app, &g.c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(st, 200, "{t}");
    t
}

#[tokio::test]
async fn consent_revoked_ends_that_clients_tokens_only() {
    let (app, b) = setup().await;
    let third = app.client("Third party", false, false).await;
    let own = app.client("Own app", false, true).await;
    let q = code_for(&app, &b, &third, &[("scope", "openid offline_access"), ("prompt", "consent")]).await;
    let (_, t_third) = exchange(&app, &third, &q["code"], Some(VERIFIER)).await;
    let t_own = offline_tokens(&app, &b, &own).await;
    let account = b.get("/account").await;
    let p = b.post_raw("/account/apps/revoke", &[("csrf", &account.csrf()), ("client_id", &third.client_id)]).await;
    assert_eq!(p.status, 303);
    assert_eq!(refresh(&app, &third, &s(&t_third, "refresh_token"), None).await.0, 400);
    assert_eq!(userinfo_status(&app, &s(&t_third, "access_token")).await, 401);
    assert_eq!(refresh(&app, &own, &s(&t_own, "refresh_token"), None).await.0, 200, "another client's grant lives");
    assert_eq!(userinfo_status(&app, &s(&t_own, "access_token")).await, 200);
}

#[tokio::test]
async fn sign_out_everywhere_ends_the_other_sessions_tokens() {
    let (app, here) = setup().await;
    let c = app.client("Own app", false, true).await;
    let elsewhere = Browser::new(&app);
    let t_here = offline_tokens(&app, &here, &c).await;
    let t_elsewhere = offline_tokens(&app, &elsewhere, &c).await;
    let account = here.get("/account").await;
    let p = here.post_raw("/account/sessions/end-others", &[("csrf", &account.csrf())]).await;
    assert_eq!(p.status, 303);
    assert_eq!(refresh(&app, &c, &s(&t_elsewhere, "refresh_token"), None).await.0, 400);
    assert_eq!(userinfo_status(&app, &s(&t_elsewhere, "access_token")).await, 401);
    assert_eq!(userinfo_status(&app, &s(&t_here, "access_token")).await, 200, "this session's tokens stay");
    assert_eq!(refresh(&app, &c, &s(&t_here, "refresh_token"), None).await.0, 200);
}

#[tokio::test]
async fn public_clients_refresh_and_revoke_but_cannot_introspect() {
    let (app, b) = setup().await;
    let public = app.client("Mobile", true, true).await;
    let t = offline_tokens(&app, &b, &public).await;
    let (st, r) = refresh(&app, &public, &s(&t, "refresh_token"), None).await;
    assert_eq!(st, 200, "{r}");
    let (st, e) = post(&app, "/oauth/introspect", &public, &[("token", &s(&r, "access_token"))]).await;
    assert_eq!((st, e["error"].as_str()), (401, Some("invalid_client")));
    // Revoking the first (already rotated) token still ends the family.
    assert_eq!(post(&app, "/oauth/revoke", &public, &[("token", &s(&t, "refresh_token"))]).await.0, 200);
    assert_eq!(refresh(&app, &public, &s(&r, "refresh_token"), None).await.0, 400);
    assert_eq!(userinfo_status(&app, &s(&r, "access_token")).await, 401);
}

#[tokio::test]
async fn a_replayed_code_also_ends_the_refresh_token_it_gave() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let q = code_for(&app, &b, &c, &[("scope", "openid offline_access")]).await;
    let (_, t) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(exchange(&app, &c, &q["code"], Some(VERIFIER)).await.0, 400);
    assert_eq!(refresh(&app, &c, &s(&t, "refresh_token"), None).await.0, 400);
    assert_eq!(userinfo_status(&app, &s(&t, "access_token")).await, 401);
}

#[tokio::test]
async fn a_deleted_clients_tokens_stop_working() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    latchkey_core::clients::delete_client(&app.core, &c.client_id, &Actor::Cli).await.expect("delete");
    // Every instance notices within its registry refresh (a few seconds).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while userinfo_status(&app, &s(&t, "access_token")).await != 401 {
        assert!(std::time::Instant::now() < until, "the deleted client's token still works");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_code_from_a_session_that_ended_gives_nothing() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    // A code issued, then the session signs out before it is redeemed.
    let q = code_for(&app, &b, &c, &[("scope", "openid offline_access")]).await;
    let page = b.get("/logout").await;
    assert_eq!(b.post_raw("/logout", &[("csrf", &page.csrf())]).await.status, 303);
    let (st, e) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");

    // A code issued, then all the user's tokens are revoked (disabled and
    // enabled again): the code is refused too.
    app.clock.advance(chrono::Duration::seconds(2));
    let q = code_for(&app, &b, &c, &[("scope", "openid offline_access")]).await;
    latchkey_core::accounts::set_disabled(&app.core, EMAIL, true, &Actor::Cli).await.expect("disable");
    latchkey_core::accounts::set_disabled(&app.core, EMAIL, false, &Actor::Cli).await.expect("enable");
    let (st, _) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn proving_an_address_forgets_the_consents_someone_else_gave() {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    app.user(EMAIL, STRONG_PASSWORD, false).await;
    let third = app.client("Third party", false, false).await;
    let squatter = Browser::new(&app);
    code_for(&app, &squatter, &third, &[]).await;
    let user = latchkey_core::accounts::find_by_email(&app.core, EMAIL).await.expect("db").expect("user");
    assert_eq!(app.core.connected_apps(&user.id).await.expect("apps").len(), 1);
    // The owner proves the address with a sign-in link.
    let owner = Browser::new(&app);
    owner.submit("/login", "/login/link", &[("email", EMAIL), ("next", "/account")]).await;
    let mail = app.wait_for_mail(EMAIL, "Your sign-in link", 0).await;
    let path = mail.link("/login/link?token=").expect("link").trim_start_matches(&app.public_url).to_owned();
    assert_eq!(owner.get(&path).await.status, 303);
    assert!(app.core.connected_apps(&user.id).await.expect("apps").is_empty(), "the app must ask the owner again");
}

#[tokio::test]
async fn signing_in_again_in_a_browser_ends_the_old_sessions_tokens() {
    let (app, b) = setup().await;
    let c = app.client("Own app", false, true).await;
    let t = offline_tokens(&app, &b, &c).await;
    app.clock.advance(chrono::Duration::seconds(2));
    // The same browser signs in again (another account, or the same one).
    let p =
        b.submit("/login?notice=reauthenticate", "/login", &[("email", EMAIL), ("password", STRONG_PASSWORD)]).await;
    assert_eq!(p.status, 303);
    assert_eq!(userinfo_status(&app, &s(&t, "access_token")).await, 401);
    assert_eq!(refresh(&app, &c, &s(&t, "refresh_token"), None).await.0, 400);
    // What the new session is given works.
    let t2 = offline_tokens(&app, &b, &c).await;
    assert_eq!(userinfo_status(&app, &s(&t2, "access_token")).await, 200);
}
