//! OpenID Connect: the openidconnect crate as the relying party for the
//! code flow with PKCE, and the cases of the OpenID Foundation's oidcc-basic
//! and config plans and of RFC 9700 that apply to a code-flow provider.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_testkit::{Browser, REDIRECT_URI, TestApp, TestClient, query_of};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::support::STRONG_PASSWORD;

pub(crate) const EMAIL: &str = "ada@example.com";

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The app, a user, a browser.
pub(crate) async fn setup() -> (TestApp, Browser) {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("signing key");
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    let browser = Browser::new(&app);
    (app, browser)
}

/// An authorization URL built by hand (for the cases a relying library
/// would not send).
pub(crate) fn auth_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let base = format!("{}/authorize?", app.public_url);
    let start = base.len();
    let mut s = url::form_urlencoded::Serializer::for_suffix(base, start);
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

pub(crate) fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(latchkey_core::tokens::sha256(verifier.as_bytes()))
}

pub(crate) const VERIFIER: &str = "dBjftJeZ4CK8p1mYnlLCjvhJZ2mLRo9tU2JdpiX7hhY-and-some-more";

/// A code for `client` through the browser, with the standard parameters
/// plus `extra`; returns the redirect's query.
pub(crate) async fn code_for(
    app: &TestApp,
    b: &Browser,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let challenge = challenge_for(VERIFIER);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile email"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        params.push((k, v));
    }
    params.retain(|(_, v)| !v.is_empty());
    let redirect = b.authorize(app, &auth_url(app, &params), EMAIL, STRONG_PASSWORD).await;
    assert!(redirect.starts_with(REDIRECT_URI), "{redirect}");
    query_of(&redirect)
}

pub(crate) async fn exchange(app: &TestApp, client: &TestClient, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT_URI)];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let mut req = app.client.post(app.url("/oauth/token"));
    match &client.secret {
        Some(s) => req = req.basic_auth(&client.client_id, Some(s)),
        None => form.push(("client_id", &client.client_id)),
    }
    let resp = req.form(&form).send().await.expect("token endpoint");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) fn claims_of(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let mut part = || -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().expect("part")).expect("base64")).expect("json")
    };
    let header = part();
    (header, part())
}

pub(crate) async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    app.client.get(app.url("/userinfo")).bearer_auth(token).send().await.expect("userinfo").status().as_u16()
}

// ---------------------------------------------------------------- the RP library

async fn rp_flow(public: bool, alg: &str) {
    let (app, b) = setup().await;
    let created = latchkey_core::clients::create_client(
        &app.core,
        latchkey_core::clients::NewClient {
            name: "Notes".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            public,
            signing_alg: Some(alg.to_owned()),
            ..Default::default()
        },
        &latchkey_core::audit::Actor::Cli,
    )
    .await
    .expect("client");
    let tc = TestClient {
        client_id: created.client.client_id,
        secret: created.client_secret,
        redirect_uri: REDIRECT_URI.into(),
    };
    let jws = latchkey_core::signing::Alg::parse(alg).expect("alg").jws();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.public_url.clone()).expect("issuer"), &http())
            .await
            .expect("discovery is read");
    assert!(!metadata.jwks().keys().is_empty(), "the JWKS has a key");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(tc.client_id.clone()),
        tc.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    let redirect = b.authorize(&app, url.as_str(), EMAIL, STRONG_PASSWORD).await;
    let q = query_of(&redirect);
    assert_eq!(q.get("state"), Some(state.secret()), "state comes back");
    assert_eq!(q.get("iss"), Some(&app.public_url), "RFC 9207 iss");
    let code = q.get("code").expect("a code").clone();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("the code is exchanged");
    let id_token = tokens.id_token().expect("an ID token");
    // The app runs on a test clock; the verifier reads the same one.
    let clock = app.clock.clone();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![jws.clone()])
        .set_time_fn(move || latchkey_core::Clock::now(&*clock));
    let claims: &CoreIdTokenClaims = id_token.claims(&verifier, &nonce).expect("the ID token verifies");
    let user = latchkey_core::accounts::find_by_email(&app.core, EMAIL).await.expect("db").expect("user");
    assert_eq!(claims.subject().as_str(), user.id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Ada Lovelace"));
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("1fa"));
    assert_eq!(claims.auth_method_refs().map(|a| a.iter().map(|m| m.as_str()).collect::<Vec<_>>()), Some(vec!["pwd"]));
    assert_eq!(claims.authorized_party().map(|a| a.as_str()), Some(tc.client_id.as_str()));
    assert!(claims.auth_time().is_some());
    // at_hash binds the access token.
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&verifier).expect("key"),
    )
    .expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert_eq!(id_token.signing_alg().ok(), Some(&jws));
    let (header, raw_claims) = claims_of(&id_token.to_string());
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.expect("jwks");
    assert!(jwks["keys"].as_array().expect("keys").iter().any(|k| k["kid"] == header["kid"]), "kid is published");
    assert!(raw_claims["sid"].as_str().is_some_and(|s| !s.is_empty()), "sid");

    // The access token: an RFC 9068 JWT for this provider.
    let (at_header, at) = claims_of(tokens.access_token().secret());
    assert_eq!(at_header["typ"], "at+jwt");
    assert_eq!(at["aud"], app.public_url.as_str());
    assert_eq!(at["client_id"], tc.client_id.as_str());
    assert_eq!(at["scope"], "openid profile email");
    assert!(at["jti"].as_str().is_some());
    assert_eq!(tokens.scopes().map(|s| s.len()), Some(3));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .expect("userinfo known")
        .request_async(&http())
        .await
        .expect("userinfo answers");
    assert_eq!(info.email().map(|e| e.as_str()), Some(EMAIL));
}

#[tokio::test]
async fn openidconnect_completes_code_and_pkce_with_a_confidential_client() {
    rp_flow(false, "RS256").await;
}

#[tokio::test]
async fn es256_id_tokens_verify_with_openidconnect() {
    rp_flow(false, "ES256").await;
}

#[tokio::test]
async fn eddsa_id_tokens_verify_with_openidconnect() {
    rp_flow(true, "EdDSA").await;
}

#[tokio::test]
async fn openidconnect_completes_code_and_pkce_with_a_public_client() {
    rp_flow(true, "RS256").await;
}

// ---------------------------------------------------------------- discovery

#[tokio::test]
async fn discovery_lists_what_is_supported() {
    let app = TestApp::spawn().await;
    let resp = app.get("/.well-known/openid-configuration").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("*"));
    let d: Value = resp.json().await.expect("json");
    assert_eq!(d["issuer"], app.public_url.as_str());
    for (field, want) in [
        ("response_types_supported", serde_json::json!(["code"])),
        ("code_challenge_methods_supported", serde_json::json!(["S256"])),
        ("id_token_signing_alg_values_supported", serde_json::json!(["RS256", "ES256", "EdDSA"])),
        ("grant_types_supported", serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])),
        ("subject_types_supported", serde_json::json!(["public"])),
        ("acr_values_supported", serde_json::json!(["1fa", "mfa", "phr"])),
        (
            "token_endpoint_auth_methods_supported",
            serde_json::json!(["client_secret_basic", "client_secret_post", "none"]),
        ),
    ] {
        assert_eq!(d[field], want, "{field}");
    }
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["request_parameter_supported"], false);
    assert_eq!(d["request_uri_parameter_supported"], false);
    for endpoint in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"] {
        assert!(d[endpoint].as_str().is_some_and(|u| u.starts_with(&app.public_url)), "{endpoint}");
    }
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.expect("jwks");
    for k in jwks["keys"].as_array().expect("keys") {
        assert!(k["kid"].is_string() && k["alg"] == "RS256" && k["use"] == "sig", "{k}");
    }
}

// ---------------------------------------------------------------- authorization errors

/// A request refused before anything can be redirected: a 400 page.
async fn page_refusal(app: &TestApp, params: &[(&str, &str)]) -> latchkey_testkit::Page {
    let p = Browser::new(app).get_url(&app.local(&auth_url(app, params))).await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert_eq!(p.location, None, "never a redirect");
    p
}

#[tokio::test]
async fn unknown_clients_and_unregistered_redirect_uris_get_an_error_page() {
    let (app, _) = setup().await;
    let c = app.client("Notes", false, false).await;
    let id = c.client_id.as_str();
    let base = [("response_type", "code"), ("scope", "openid")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        base.iter().chain(extra.iter()).copied().collect()
    };
    page_refusal(&app, &with(&[("redirect_uri", REDIRECT_URI)])).await; // no client_id
    page_refusal(&app, &with(&[("client_id", "0123456789abcdef0123456789abcdef"), ("redirect_uri", REDIRECT_URI)]))
        .await;
    let mut p = with(&[("redirect_uri", REDIRECT_URI)]);
    p.push(("client_id", id));
    p.push(("client_id", id));
    page_refusal(&app, &p).await; // client_id twice
    for bad in [
        "https://evil.example/callback",
        "http://localhost:9/callback/extra",
        "http://localhost:9/callback?x=1",
        "http://localhost:9/callbac",
        "http://localhost.evil.example:9/callback",
        "",
    ] {
        let mut p = with(&[]);
        p.push(("client_id", id));
        if !bad.is_empty() {
            p.push(("redirect_uri", bad));
        }
        let page = page_refusal(&app, &p).await;
        assert!(page.alert().is_some(), "an explanation for {bad:?}");
    }
}

/// A request refused by redirect: the error, state and iss.
async fn redirect_refusal(app: &TestApp, params: &[(&str, &str)], error: &str) {
    let p = Browser::new(app).get_url(&app.local(&auth_url(app, params))).await;
    assert_eq!(p.status, 302, "{}", p.body);
    let loc = p.location.expect("a redirect");
    assert!(loc.starts_with(REDIRECT_URI), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{loc}");
    assert!(q.contains_key("error_description"));
    assert_eq!(q.get("state").map(String::as_str), Some("s1"));
    assert_eq!(q.get("iss"), Some(&app.public_url));
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn bad_requests_are_answered_at_the_redirect_uri() {
    let (app, _) = setup().await;
    let conf = app.client("Notes", false, false).await;
    let public = app.client("Mobile", true, false).await;
    let challenge = challenge_for(VERIFIER);
    let req = |c: &TestClient, extra: Vec<(&'static str, String)>| {
        let mut v: Vec<(&str, String)> = vec![
            ("client_id", c.client_id.clone()),
            ("redirect_uri", REDIRECT_URI.into()),
            ("state", "s1".into()),
            ("response_type", "code".into()),
            ("scope", "openid".into()),
        ];
        for (k, val) in extra {
            v.retain(|(pk, _)| *pk != k);
            if !val.is_empty() {
                v.push((k, val));
            }
        }
        v
    };
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (req(&conf, vec![("response_type", String::new())]), "invalid_request"),
        (req(&conf, vec![("response_type", "token".into())]), "unsupported_response_type"),
        (req(&conf, vec![("response_type", "id_token".into())]), "unsupported_response_type"),
        (req(&conf, vec![("response_type", "code id_token".into())]), "unsupported_response_type"),
        (req(&conf, vec![("request", "eyJhbGciOiJub25lIn0.e30.".into())]), "request_not_supported"),
        (req(&conf, vec![("request_uri", "https://app.example/r".into())]), "request_uri_not_supported"),
        (req(&conf, vec![("registration", "{}".into())]), "registration_not_supported"),
        (req(&conf, vec![("scope", "profile".into())]), "invalid_scope"),
        (req(&conf, vec![("prompt", "none login".into())]), "invalid_request"),
        (req(&conf, vec![("max_age", "soon".into())]), "invalid_request"),
        (req(&conf, vec![("response_mode", "fragment".into())]), "invalid_request"),
        (req(&conf, vec![("id_token_hint", "not.a.token".into())]), "invalid_request"),
        (
            req(&conf, vec![("code_challenge", challenge.clone()), ("code_challenge_method", "plain".into())]),
            "invalid_request",
        ),
        (req(&conf, vec![("code_challenge", challenge.clone())]), "invalid_request"),
        (
            req(&conf, vec![("code_challenge", "short".into()), ("code_challenge_method", "S256".into())]),
            "invalid_request",
        ),
        (req(&conf, vec![("code_challenge_method", "S256".into())]), "invalid_request"),
        // RFC 9700: a public client must use PKCE.
        (req(&public, vec![]), "invalid_request"),
    ];
    for (params, error) in cases {
        let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect_refusal(&app, &p, error).await;
    }
    // A parameter given twice.
    let mut twice: Vec<(&str, &str)> = vec![
        ("client_id", &conf.client_id),
        ("redirect_uri", REDIRECT_URI),
        ("state", "s1"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("nonce", "a"),
        ("nonce", "b"),
    ];
    redirect_refusal(&app, &twice, "invalid_request").await;
    twice.truncate(5);
    // The same request without the repeat and with unknown parameters is fine.
    twice.push(("an_unknown_parameter", "whatever"));
    twice.push(("claims", "{}"));
    let p = Browser::new(&app).get_url(&app.local(&auth_url(&app, &twice))).await;
    assert_eq!(p.status, 302);
    assert!(p.location.expect("to sign in").starts_with("/login?"), "unknown parameters are ignored");
}

// ---------------------------------------------------------------- the code

#[tokio::test]
async fn code_exchange_checks_client_redirect_and_pkce() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    let other = app.client("Other", false, true).await;

    // RFC 9700: another client's code is refused and not spent.
    let q = code_for(&app, &b, &c, &[]).await;
    let code = q["code"].clone();
    let (s, e) = exchange(&app, &other, &code, Some(VERIFIER)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    let (s, body) = exchange(&app, &c, &code, Some(VERIFIER)).await;
    assert_eq!(s, 200, "{body}");

    // A wrong verifier, a missing one.
    let q = code_for(&app, &b, &c, &[]).await;
    let (s, e) = exchange(&app, &c, &q["code"], Some(&format!("{VERIFIER}x"))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    let q = code_for(&app, &b, &c, &[]).await;
    let (s, e) = exchange(&app, &c, &q["code"], None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    // A verifier without a stored challenge.
    let q = code_for(&app, &b, &c, &[("code_challenge", ""), ("code_challenge_method", "")]).await;
    let (s, e) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    // A confidential client without PKCE at all is fine.
    let q = code_for(&app, &b, &c, &[("code_challenge", ""), ("code_challenge_method", "")]).await;
    assert_eq!(exchange(&app, &c, &q["code"], None).await.0, 200);

    // The redirect URI must be the one of the request.
    let q = code_for(&app, &b, &c, &[]).await;
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, c.secret.as_ref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", "http://localhost:9/other"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.expect("json")["error"], "invalid_grant");

    // An expired code.
    let q = code_for(&app, &b, &c, &[]).await;
    app.clock.advance(chrono::Duration::seconds(61));
    let (s, e) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    // A made-up code.
    let (s, e) = exchange(&app, &c, &"A".repeat(43), Some(VERIFIER)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_it_gave() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    let q = code_for(&app, &b, &c, &[]).await;
    let (s, first) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(s, 200);
    let access = first["access_token"].as_str().expect("access token").to_owned();
    assert_eq!(userinfo_status(&app, &access).await, 200);
    let (s, e) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(userinfo_status(&app, &access).await, 401, "the first redemption's token is revoked");
    let audit = latchkey_core::audit::list(&app.core, None, None, 1000).await.expect("audit");
    assert!(audit.iter().any(|e| e.kind == "token.code_replayed"));
}

async fn concurrent_redemptions(a: &TestApp, b_app: &TestApp) {
    a.core.ensure_signing_key().await.expect("key");
    a.user(EMAIL, STRONG_PASSWORD, true).await;
    let browser = Browser::new(a);
    let c = a.client("Notes", false, true).await;
    let q = code_for(a, &browser, &c, &[]).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let target = if i % 2 == 0 { a } else { b_app };
        let (client, url) = (target.client.clone(), target.url("/oauth/token"));
        let (id, secret, code) = (c.client_id.clone(), c.secret.clone(), q["code"].clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .basic_auth(id, secret)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", VERIFIER),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("join").expect("answer") {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one redemption succeeds");
}

#[tokio::test]
async fn fifty_concurrent_redemptions_give_one_success() {
    let app = TestApp::spawn().await;
    concurrent_redemptions(&app, &app).await;
}

#[tokio::test]
async fn fifty_concurrent_redemptions_across_two_instances_give_one_success() {
    let (a, b) = TestApp::two_instances().await;
    concurrent_redemptions(&a, &b).await;
}

// ---------------------------------------------------------------- the token endpoint

#[tokio::test]
async fn the_token_endpoint_authenticates_clients() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    let secret = c.secret.clone().expect("secret");
    let token = |form: Vec<(&'static str, String)>, basic: Option<(String, String)>| {
        let mut req = app.client.post(app.url("/oauth/token")).form(&form);
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        async move {
            let resp = req.send().await.expect("token");
            let status = resp.status().as_u16();
            let www = resp.headers().get("www-authenticate").is_some();
            let cache = resp.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (status, www, cache, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // client_secret_post works.
    let q = code_for(&app, &b, &c, &[]).await;
    let (s, _, cache, body) = token(
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", q["code"].clone()),
            ("redirect_uri", REDIRECT_URI.into()),
            ("code_verifier", VERIFIER.into()),
            ("client_id", c.client_id.clone()),
            ("client_secret", secret.clone()),
        ],
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(body["token_type"], "Bearer");

    let grant = |code: &str| -> Vec<(&'static str, String)> {
        vec![("grant_type", "authorization_code".into()), ("code", code.into()), ("redirect_uri", REDIRECT_URI.into())]
    };
    // Wrong secret, no authentication, an unknown client: 401 invalid_client with a challenge.
    for (form, basic) in [
        (grant("x"), Some((c.client_id.clone(), "wrong".to_owned()))),
        (grant("x"), None),
        ([grant("x"), vec![("client_id", c.client_id.clone()), ("client_secret", "wrong".into())]].concat(), None),
        (grant("x"), Some(("ffffffffffffffffffffffffffffffff".to_owned(), secret.clone()))),
        ([grant("x"), vec![("client_id", c.client_id.clone())]].concat(), None),
    ] {
        let (s, www, cache, e) = token(form, basic).await;
        assert_eq!((s, www, e["error"].as_str()), (401, true, Some("invalid_client")), "{e}");
        assert_eq!(cache.as_deref(), Some("no-store"));
    }
    let basic = Some((c.client_id.clone(), secret.clone()));
    // Two methods at once; grant_type missing or unknown; a repeated parameter.
    let (s, _, _, e) = token([grant("x"), vec![("client_secret", secret.clone())]].concat(), basic.clone()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_request")));
    let (s, _, _, e) = token(vec![("code", "x".into())], basic.clone()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_request")));
    let (s, _, _, e) = token(vec![("grant_type", "password".into())], basic.clone()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unsupported_grant_type")));
    let (s, _, _, e) = token([grant("x"), vec![("code", "y".into())]].concat(), basic.clone()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_request")));
    // Not a form.
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some(&secret))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.expect("json")["error"], "invalid_request");
}

// ---------------------------------------------------------------- userinfo

#[tokio::test]
async fn userinfo_takes_access_tokens_by_header_or_body_only() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    let q = code_for(&app, &b, &c, &[]).await;
    let (_, tokens) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let id_token = tokens["id_token"].as_str().expect("id").to_owned();
    let url = app.url("/userinfo");

    let get = app.client.get(&url).bearer_auth(&access).send().await.expect("get");
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let info: Value = get.json().await.expect("json");
    assert_eq!(info["email"], EMAIL);
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "Ada Lovelace");
    let post_header = app.client.post(&url).bearer_auth(&access).send().await.expect("post");
    assert_eq!(post_header.status(), 200);
    let post_body = app.client.post(&url).form(&[("access_token", access.as_str())]).send().await.expect("post");
    assert_eq!(post_body.status(), 200);
    assert_eq!(post_body.json::<Value>().await.expect("json")["sub"], info["sub"]);

    // Refusals.
    let both = app.client.post(&url).bearer_auth(&access).form(&[("access_token", access.as_str())]).send().await;
    assert_eq!(both.expect("both").status(), 400);
    let in_query = app.client.get(format!("{url}?access_token={access}")).send().await.expect("query");
    assert_eq!(in_query.status(), 400);
    let none = app.client.get(&url).send().await.expect("none");
    assert_eq!(none.status(), 401);
    assert!(
        none.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer"))
    );
    let as_id = app.client.get(&url).bearer_auth(&id_token).send().await.expect("id token");
    assert_eq!(as_id.status(), 401, "an ID token is not an access token");
    assert!(as_id.headers()["www-authenticate"].to_str().expect("ascii").contains("invalid_token"));
    // Tampered: the claims changed, the signature kept.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
    claims["sub"] = Value::String("someone-else".into());
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(userinfo_status(&app, &parts.join(".")).await, 401);
    // alg none.
    let none_alg = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#), parts[1]);
    assert_eq!(userinfo_status(&app, &none_alg).await, 401);
    assert_eq!(userinfo_status(&app, "garbage").await, 401);
    assert_eq!(userinfo_status(&app, &"a".repeat(10_000)).await, 401);
    // Disabled users are refused; expired tokens too.
    latchkey_core::accounts::set_disabled(&app.core, EMAIL, true, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("disable");
    assert_eq!(userinfo_status(&app, &access).await, 401);
    latchkey_core::accounts::set_disabled(&app.core, EMAIL, false, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("enable");
    assert_eq!(userinfo_status(&app, &access).await, 401, "tokens from before the account was disabled stay dead");
    // Expired tokens are refused.
    app.clock.advance(chrono::Duration::seconds(5));
    let q = code_for(&app, &b, &c, &[]).await;
    let (_, tokens) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    let fresh = tokens["access_token"].as_str().expect("access").to_owned();
    assert_eq!(userinfo_status(&app, &fresh).await, 200);
    app.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(userinfo_status(&app, &fresh).await, 401);
}

#[tokio::test]
async fn scopes_release_their_claims_and_email_verified_is_honest() {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    app.user(EMAIL, STRONG_PASSWORD, false).await;
    let b = Browser::new(&app);
    let c = app.client("Notes", false, true).await;
    for (scope, has_email, has_name) in
        [("openid", false, false), ("openid profile", false, true), ("openid email", true, false)]
    {
        let q = code_for(&app, &b, &c, &[("scope", scope)]).await;
        let (_, tokens) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
        assert_eq!(tokens["scope"], scope);
        let info: Value = app
            .client
            .get(app.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().expect("at"))
            .send()
            .await
            .expect("userinfo")
            .json()
            .await
            .expect("json");
        assert_eq!(info.get("email").is_some(), has_email, "{scope}: {info}");
        assert_eq!(info.get("name").is_some(), has_name, "{scope}: {info}");
        if has_email {
            assert_eq!(info["email_verified"], false, "the address was never confirmed");
        }
        let (_, id) = claims_of(tokens["id_token"].as_str().expect("id"));
        assert_eq!(id.get("email").is_some(), has_email);
    }
    // Unknown scopes are left out of the grant.
    let q = code_for(&app, &b, &c, &[("scope", "openid email calendar")]).await;
    let (_, tokens) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(tokens["scope"], "openid email");
}

#[tokio::test]
async fn nonce_is_returned_only_when_sent() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    let q = code_for(&app, &b, &c, &[("nonce", "")]).await;
    let (_, t) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert!(claims_of(t["id_token"].as_str().expect("id")).1.get("nonce").is_none());
    let q = code_for(&app, &b, &c, &[("nonce", "n-0S6_WzA2Mj")]).await;
    let (_, t) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(claims_of(t["id_token"].as_str().expect("id")).1["nonce"], "n-0S6_WzA2Mj");
}

// ---------------------------------------------------------------- prompt, max_age, hints

async fn id_claims(app: &TestApp, c: &TestClient, q: &HashMap<String, String>) -> Value {
    let (s, t) = exchange(app, c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    claims_of(t["id_token"].as_str().expect("id")).1
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    let first = id_claims(&app, &c, &code_for(&app, &b, &c, &[]).await).await;
    app.clock.advance(chrono::Duration::seconds(30));

    // Signed in and nothing demands more: straight back with a code.
    let params = |extra: &[(&'static str, &'static str)]| {
        let ch = challenge_for(VERIFIER);
        let mut v: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", c.client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        v.push(("code_challenge".into(), ch));
        v.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        v
    };
    let url = |p: Vec<(String, String)>| {
        let r: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        auth_url(&app, &r)
    };
    let p = b.follow(&app, &url(params(&[("max_age", "10000")]))).await;
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with(REDIRECT_URI)), "max_age=10000 needs no sign-in");
    let q = query_of(p.location.as_deref().unwrap_or_default());
    let claims = id_claims(&app, &c, &q).await;
    assert_eq!(claims["auth_time"], first["auth_time"], "auth_time is the original sign-in");

    for extra in [&[("prompt", "login")][..], &[("max_age", "1")][..], &[("prompt", "select_account")][..]] {
        let p = b.follow(&app, &url(params(extra))).await;
        assert_eq!(p.status, 200, "{extra:?} shows the sign-in form");
        assert!(p.contains("action=\"/login\""), "{extra:?}");
        app.clock.advance(chrono::Duration::seconds(5));
        let redirect = b.authorize(&app, &url(params(extra)), EMAIL, STRONG_PASSWORD).await;
        let claims = id_claims(&app, &c, &query_of(&redirect)).await;
        assert!(claims["auth_time"].as_i64() > first["auth_time"].as_i64(), "{extra:?}: auth_time moves");
        app.clock.advance(chrono::Duration::seconds(5));
    }
}

#[tokio::test]
async fn prompt_none_answers_without_showing_anything() {
    let (app, b) = setup().await;
    let third = app.client("Third party", false, false).await;
    let first_party = app.client("Own app", false, true).await;
    let none = |c: &TestClient| {
        auth_url(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &c.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid"),
                ("state", "s1"),
                ("prompt", "none"),
            ],
        )
    };
    // Not signed in: login_required.
    let p = b.follow(&app, &none(&first_party)).await;
    let q = query_of(p.location.as_deref().expect("redirect"));
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("login_required", "s1"));
    assert_eq!(q.get("iss"), Some(&app.public_url));
    b.sign_in(EMAIL, STRONG_PASSWORD).await;
    // Signed in, first party: a code at once.
    let p = b.follow(&app, &none(&first_party)).await;
    assert!(query_of(p.location.as_deref().expect("redirect")).contains_key("code"));
    // Third party never allowed: consent_required; once allowed, a code.
    let p = b.follow(&app, &none(&third)).await;
    assert_eq!(query_of(p.location.as_deref().expect("redirect"))["error"], "consent_required");
    code_for(&app, &b, &third, &[]).await;
    let p = b.follow(&app, &none(&third)).await;
    assert!(query_of(p.location.as_deref().expect("redirect")).contains_key("code"), "consent is remembered");
    // prompt=consent asks again, even for a first-party client.
    for c in [&third, &first_party] {
        let url = auth_url(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &c.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid"),
                ("prompt", "consent"),
            ],
        );
        let p = b.follow(&app, &url).await;
        assert_eq!(p.status, 200);
        assert!(p.contains("action=\"/consent\""), "prompt=consent shows the consent page");
    }
}

#[tokio::test]
async fn hints_and_acr_values_are_accepted() {
    let (app, b) = setup().await;
    app.user("grace@example.com", STRONG_PASSWORD, true).await;
    let c = app.client("Notes", false, true).await;
    // login_hint fills in the address.
    let p = b
        .follow(
            &app,
            &auth_url(
                &app,
                &[
                    ("response_type", "code"),
                    ("client_id", &c.client_id),
                    ("redirect_uri", REDIRECT_URI),
                    ("scope", "openid"),
                    ("login_hint", "grace@example.com"),
                ],
            ),
        )
        .await;
    assert!(p.contains("value=\"grace@example.com\""), "the address is filled in");

    // acr_values is accepted (every sign-in today is 1fa); an id_token_hint
    // of the signed-in user continues silently.
    let q = code_for(&app, &b, &c, &[("acr_values", "1fa mfa")]).await;
    let (_, t) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    let hint = t["id_token"].as_str().expect("id").to_owned();
    assert_eq!(claims_of(&hint).1["acr"], "1fa");
    let hinted = |extra: (&'static str, &'static str)| {
        auth_url(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &c.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid"),
                ("prompt", "none"),
                ("id_token_hint", &hint),
                extra,
            ],
        )
    };
    let p = b.follow(&app, &hinted(("state", "a"))).await;
    assert!(query_of(p.location.as_deref().expect("redirect")).contains_key("code"), "the hinted user is signed in");
    // Another user signed in: login_required under prompt=none.
    let other = Browser::new(&app);
    other.sign_in("grace@example.com", STRONG_PASSWORD).await;
    app.clock.advance(chrono::Duration::seconds(1));
    let p = other.follow(&app, &hinted(("state", "b"))).await;
    assert_eq!(query_of(p.location.as_deref().expect("redirect"))["error"], "login_required");
    // An ID token issued to another client is not a hint for this one.
    let c2 = app.client("Other", false, true).await;
    let p = b
        .follow(
            &app,
            &auth_url(
                &app,
                &[
                    ("response_type", "code"),
                    ("client_id", &c2.client_id),
                    ("redirect_uri", REDIRECT_URI),
                    ("scope", "openid"),
                    ("id_token_hint", &hint),
                ],
            ),
        )
        .await;
    assert_eq!(query_of(p.location.as_deref().expect("redirect"))["error"], "invalid_request");
}

// ---------------------------------------------------------------- consent and connected apps

#[tokio::test]
async fn consent_is_asked_once_and_can_be_denied_or_revoked() {
    let (app, b) = setup().await;
    let c = app.client("Notes <script>alert(1)</script>", false, false).await;
    let url = auth_url(
        &app,
        &[
            ("response_type", "code"),
            ("client_id", &c.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid email"),
            ("state", "s1"),
        ],
    );
    b.sign_in(EMAIL, STRONG_PASSWORD).await;
    let page = b.follow(&app, &url).await;
    assert_eq!(page.status, 200);
    assert!(page.contains("action=\"/consent\""));
    assert!(page.contains("Notes &#60;script&#62;") || page.contains("Notes &lt;script&gt;"), "the name is escaped");
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("See your email address"));
    let csp = page.headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self' http://localhost:9"), "{csp}");

    // Deny: access_denied to the client.
    let flow = latchkey_testkit::hidden(&page.body, "flow").expect("flow");
    let csrf = page.csrf();
    let p = b.post_raw("/consent", &[("csrf", &csrf), ("flow", &flow), ("decision", "deny")]).await;
    let q = query_of(p.location.as_deref().expect("redirect"));
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("access_denied", "s1"));
    // The flow is over: answering again changes nothing.
    let p = b.post_raw("/consent", &[("csrf", &csrf), ("flow", &flow), ("decision", "allow")]).await;
    assert_eq!(p.status, 400);
    // Without CSRF: refused.
    let page = b.follow(&app, &url).await;
    let flow = latchkey_testkit::hidden(&page.body, "flow").expect("flow");
    let p = b.post_raw("/consent", &[("flow", &flow), ("decision", "allow")]).await;
    assert_eq!(p.status, 403);
    assert!(
        app.core
            .connected_apps(&latchkey_core::accounts::find_by_email(&app.core, EMAIL).await.expect("db").expect("u").id)
            .await
            .expect("apps")
            .is_empty()
    );

    // Allow: a code; the next request asks nothing; more scopes ask again.
    let p = b.post_raw("/consent", &[("csrf", &page.csrf()), ("flow", &flow), ("decision", "allow")]).await;
    assert_eq!(p.status, 303);
    let q = query_of(p.location.as_deref().expect("redirect"));
    let (_, tokens) = exchange(&app, &c, &q["code"], None).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let again = b.follow(&app, &url).await;
    assert!(again.location.as_deref().is_some_and(|l| l.starts_with(REDIRECT_URI)), "remembered");
    let more = b.follow(&app, &url.replace("openid+email", "openid+email+profile")).await;
    assert_eq!(more.status, 200, "a new scope asks again");

    // Connected apps lists it; removing it refuses its tokens and asks again.
    let account = b.get("/account").await;
    assert!(account.contains("Connected apps") && account.contains("your email address"));
    let revoke = |client_id: String| {
        let csrf = account.csrf();
        let b = &b;
        async move { b.post_raw("/account/apps/revoke", &[("csrf", &csrf), ("client_id", &client_id)]).await }
    };
    let other = app.client("Other", false, false).await;
    assert_eq!(revoke(other.client_id.clone()).await.status, 404, "not a connected app");
    assert_eq!(revoke(String::new()).await.status, 404);
    assert_eq!(userinfo_status(&app, &access).await, 200, "nothing changed");
    let p = b.post_raw("/account/apps/revoke", &[("client_id", &c.client_id)]).await;
    assert_eq!(p.status, 403, "CSRF");
    assert_eq!(revoke(c.client_id.clone()).await.location.as_deref(), Some("/account?notice=app-removed"));
    assert_eq!(userinfo_status(&app, &access).await, 401, "its tokens stop working");
    assert_eq!(b.follow(&app, &url).await.status, 200, "consent is asked again");
    let audit = latchkey_core::audit::list(&app.core, None, None, 1000).await.expect("audit");
    for kind in ["consent.granted", "consent.denied", "consent.revoked"] {
        assert!(audit.iter().any(|e| e.kind == kind), "{kind} is audited");
    }
}

#[tokio::test]
async fn a_posted_request_continues_through_a_get() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    b.sign_in(EMAIL, STRONG_PASSWORD).await;
    // A cross-site POST carries no SameSite=Lax cookie: the request is kept.
    let cookieless = Browser::new(&app);
    let p = cookieless
        .post_raw(
            "/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &c.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid"),
                ("state", "posted"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    let next = p.location.expect("continue");
    assert!(next.starts_with("/authorize/continue?flow="), "{next}");
    // The browser (with its cookie) follows the GET and gets its code.
    let p = b.follow(&app, &next).await;
    let q = query_of(p.location.as_deref().expect("redirect"));
    assert_eq!(q["state"], "posted");
    assert!(q.contains_key("code"));
    // The flow was used: following it again ends on an explanation.
    let p = b.follow(&app, &next).await;
    assert_eq!(p.status, 400);
    assert!(b.follow(&app, "/authorize/continue?flow=nonsense").await.status == 400);
}

#[tokio::test]
async fn cors_is_open_to_registered_origins_only() {
    let (app, _) = setup().await;
    app.client("Notes", false, true).await;
    for path in ["/oauth/token", "/userinfo"] {
        let ok = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "http://localhost:9")
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .expect("preflight");
        assert_eq!(
            ok.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
            Some("http://localhost:9")
        );
        assert!(ok.headers().get("access-control-allow-credentials").is_none());
        let bad = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .expect("preflight");
        assert!(bad.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
    let resp = app.client.get(app.url("/userinfo")).header("Origin", "http://localhost:9").send().await.expect("get");
    assert_eq!(
        resp.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("http://localhost:9")
    );
}

#[tokio::test]
async fn disabled_users_get_no_tokens() {
    let (app, b) = setup().await;
    let c = app.client("Notes", false, true).await;
    let q = code_for(&app, &b, &c, &[]).await;
    latchkey_core::accounts::set_disabled(&app.core, EMAIL, true, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("disable");
    let (s, e) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_flood_of_authorization_requests_from_one_address_waits() {
    let app =
        TestApp::builder().env("LATCHKEY_LIMITS__AUTHORIZATION_REQUESTS_PER_ADDRESS_PER_MINUTE", "3").spawn().await;
    let c = app.client("Notes", false, true).await;
    let url = app.local(&auth_url(
        &app,
        &[("response_type", "code"), ("client_id", &c.client_id), ("redirect_uri", REDIRECT_URI), ("scope", "openid")],
    ));
    let b = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(b.get_url(&url).await.status, 302);
    }
    let p = b.get_url(&url).await;
    assert_eq!(p.status, 429);
    assert!(p.alert().is_some_and(|a| a.contains("Try again")));
    app.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(b.get_url(&url).await.status, 302);
}
