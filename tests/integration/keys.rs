//! Signing keys: created on first start, sealed at rest, published as JWKS
//! before they sign, rotated with a lead time or at once.

use latchkey_core::keys::KeyState;
use latchkey_core::signing::Alg;
use latchkey_testkit::{TestApp, TestDb};

use crate::support::latchkey;

async fn jwks(app: &TestApp) -> serde_json::Value {
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert!(r.headers()["content-type"].to_str().unwrap_or_default().starts_with("application/jwk-set+json"));
    r.json().await.expect("JSON")
}

fn kids(set: &serde_json::Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k["kid"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn states(app: &TestApp) -> Vec<(String, KeyState)> {
    app.core.list_keys().await.expect("keys").into_iter().map(|k| (k.kid, k.state)).collect()
}

#[tokio::test]
async fn first_key_is_created_once_and_published() {
    let (a, b) = TestApp::two_instances().await;
    assert!(kids(&jwks(&a).await).is_empty());
    let (ra, rb) = tokio::join!(a.core.ensure_signing_key(), b.core.ensure_signing_key());
    ra.expect("ensure on a");
    rb.expect("ensure on b");
    // Whichever lost the lock may not have seen the key yet; ask again.
    a.core.ensure_signing_key().await.expect("ensure");
    let set = jwks(&a).await;
    assert_eq!(kids(&set).len(), 1, "{set}");
    let key = &set["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none() && key.get("p").is_none(), "no private members");
    assert_eq!(kids(&jwks(&b).await), kids(&set), "both instances publish the same key");
    assert_eq!(states(&a).await[0].1, KeyState::Active);

    // At rest the private key is sealed by the secret box.
    let mut conn = a.db.connect();
    let rows = latchkey_db::signing_keys::list(&mut conn).expect("rows");
    assert!(rows[0].private_key.starts_with("lk1."));
    let (kid, pkcs8) = a.core.active_signing_key(Alg::Rs256).await.expect("opens");
    assert_eq!(kid, rows[0].kid);
    assert!(!rows[0].private_key.contains(&String::from_utf8_lossy(&pkcs8[..16]).to_string()));
}

/// The RS256 key of a rotation (the only algorithm without other clients).
fn rs256(keys: Vec<latchkey_core::keys::KeyInfo>) -> latchkey_core::keys::KeyInfo {
    keys.into_iter().find(|k| k.alg == "RS256").expect("an RS256 key")
}

#[tokio::test]
async fn rotation_publishes_before_signing_and_keeps_the_old_key_a_day() {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("first key");
    let first = states(&app).await[0].0.clone();
    let next = rs256(app.core.rotate_keys(false, &latchkey_core::audit::Actor::Cli).await.expect("rotate"));
    assert_eq!(next.state, KeyState::Next);
    let published = kids(&jwks(&app).await);
    assert!(published.contains(&first) && published.contains(&next.kid), "both published");
    assert_eq!(app.core.active_signing_key(Alg::Rs256).await.expect("key").0, first, "the old key still signs");

    app.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(
        app.core.active_signing_key(Alg::Rs256).await.expect("key").0,
        next.kid,
        "the new key signs after the lead time"
    );
    let s = states(&app).await;
    assert!(s.contains(&(first.clone(), KeyState::Retiring)), "{s:?}");
    assert!(kids(&jwks(&app).await).contains(&first), "old tokens still verify");

    app.clock.advance(chrono::Duration::hours(24));
    assert_eq!(kids(&jwks(&app).await), vec![next.kid.clone()]);
    assert!(states(&app).await.contains(&(first, KeyState::Withdrawn)));
}

#[tokio::test]
async fn rotate_now_withdraws_every_other_key() {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("first key");
    let first = states(&app).await[0].0.clone();
    let pending = rs256(app.core.rotate_keys(false, &latchkey_core::audit::Actor::Cli).await.expect("rotate"));
    let urgent = rs256(app.core.rotate_keys(true, &latchkey_core::audit::Actor::Cli).await.expect("rotate now"));
    assert_eq!(urgent.state, KeyState::Active);
    assert_eq!(kids(&jwks(&app).await), vec![urgent.kid.clone()]);
    assert_eq!(app.core.active_signing_key(Alg::Rs256).await.expect("key").0, urgent.kid);
    let s = states(&app).await;
    assert!(s.contains(&(first, KeyState::Withdrawn)) && s.contains(&(pending.kid, KeyState::Withdrawn)), "{s:?}");
    // Withdrawn keys are deleted a month later by maintenance.
    app.clock.advance(chrono::Duration::days(31));
    let round = latchkey_core::maintenance::run_once(&app.core).await.expect("round").expect("ran");
    assert_eq!(round.keys_purged, 2);
}

#[tokio::test]
async fn secrets_rewrap_moves_signing_keys_to_the_new_encryption_key() {
    let db = std::sync::Arc::new(TestDb::new());
    let app = TestApp::builder().db(db.clone()).spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    let (kid, pkcs8) = app.core.active_signing_key(Alg::Rs256).await.expect("opens");
    let new_key = latchkey_testkit::random_key();
    // The operator adds a new first key and keeps the old one for reading.
    let rotated = TestApp::builder()
        .db(db.clone())
        .env("LATCHKEY_SECRETS__ENCRYPTION_KEYS", &format!("{new_key},{}", db.encryption_key))
        .spawn()
        .await;
    let report = latchkey_core::rewrap::rewrap_all(&rotated.core).await.expect("rewrap");
    assert_eq!((report.rewrapped, report.already_current), (1, 0));
    assert!(report.failed.is_empty());
    // Now the old encryption key can go.
    let only_new = TestApp::builder().db(db.clone()).env("LATCHKEY_SECRETS__ENCRYPTION_KEYS", &new_key).spawn().await;
    assert_eq!(only_new.core.active_signing_key(Alg::Rs256).await.expect("opens with the new key"), (kid, pkcs8));
    let again = latchkey_core::rewrap::rewrap_all(&only_new.core).await.expect("rewrap");
    assert_eq!((again.rewrapped, again.already_current), (0, 1));
}

#[test]
fn keys_from_the_command_line() {
    let db = TestDb::new();
    let mut env = db.env();
    env.push(("LATCHKEY_KEYS__RSA_BITS".into(), "2048".into()));
    let run = |args: &[&str]| crate::support::run_with_env(&env, db.dir.path(), args, None);
    let empty = run(&["keys", "list"]).ok();
    assert!(empty.stdout.contains("No signing keys yet"));
    // With nothing signing yet, a rotation's key signs at once.
    let first = run(&["keys", "rotate", "--json"]).ok().json();
    assert_eq!(first[0]["state"], "active");
    assert_eq!(first[0]["alg"], "RS256");
    let second = run(&["keys", "rotate", "--json"]).ok().json();
    assert_eq!(second[0]["state"], "next");
    let list = run(&["keys", "list", "--json"]).ok().json();
    let states: Vec<&str> = list.as_array().expect("array").iter().filter_map(|k| k["state"].as_str()).collect();
    assert_eq!(states, vec!["next", "active"]);
    let urgent = run(&["keys", "rotate", "--now", "--json"]).ok().json();
    assert_eq!(urgent[0]["state"], "active");
    let list = run(&["keys", "list", "--json"]).ok().json();
    let states: Vec<&str> = list.as_array().expect("array").iter().filter_map(|k| k["state"].as_str()).collect();
    assert_eq!(states, vec!["active", "withdrawn", "withdrawn"]);
    let rewrap = latchkey(&db, &["secrets", "rewrap", "--json"], None).ok().json();
    assert_eq!(rewrap["already_current"], 3);
    run(&["keys", "frobnicate"]);
    let bad = run(&["keys", "rotate", "--later"]);
    assert_eq!(bad.code, 2);
    let audit = run(&["audit", "list", "--json"]).ok().json();
    assert_eq!(audit.as_array().expect("array").iter().filter(|e| e["kind"] == "keys.rotated").count(), 3);
}

/// A token signed by the instance verifies against the JWKS it publishes,
/// with openidconnect's verifier; after an urgent rotation, new tokens use
/// the new key and the old key's tokens no longer verify.
#[tokio::test]
async fn tokens_signed_now_verify_against_the_published_jwks() {
    use openidconnect::core::{
        CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    };
    use openidconnect::{
        Audience, ClientId, EmptyAdditionalClaims, IssuerUrl, Nonce, StandardClaims, SubjectIdentifier,
    };

    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    let issuer = IssuerUrl::new(app.public_url.clone()).expect("issuer");
    let sign = |key: std::sync::Arc<latchkey_core::signing::SigningKey>| {
        let now = chrono::Utc::now();
        let claims = CoreIdTokenClaims::new(
            issuer.clone(),
            vec![Audience::new("rp".into())],
            now + chrono::Duration::minutes(10),
            now,
            StandardClaims::new(SubjectIdentifier::new("sub-1".into())),
            EmptyAdditionalClaims {},
        );
        CoreIdToken::new(claims, key.as_ref(), CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, None, None)
            .expect("signed")
    };
    let verify = |token: &CoreIdToken, jwks: serde_json::Value| {
        let set: CoreJsonWebKeySet = serde_json::from_value(jwks).expect("a JWK set");
        let verifier = CoreIdTokenVerifier::new_public_client(ClientId::new("rp".into()), issuer.clone(), set);
        token.claims(&verifier, |_: Option<&Nonce>| Ok(())).map(|c| c.subject().to_string())
    };

    let first = app.core.signing_key(Alg::Rs256).await.expect("signing key");
    let token = sign(first.clone());
    assert_eq!(verify(&token, jwks(&app).await).ok().as_deref(), Some("sub-1"));

    app.core.rotate_keys(true, &latchkey_core::audit::Actor::Cli).await.expect("rotate now");
    let second = app.core.signing_key(Alg::Rs256).await.expect("signing key");
    assert_ne!(second.kid(), first.kid(), "this instance signs with the new key at once");
    let fresh = sign(second);
    let published = jwks(&app).await;
    assert_eq!(verify(&fresh, published.clone()).ok().as_deref(), Some("sub-1"));
    assert!(verify(&token, published).is_err(), "the withdrawn key's tokens no longer verify");
}

#[tokio::test]
async fn scheduled_rotation_publishes_a_successor_when_a_key_is_old() {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    let round = latchkey_core::maintenance::run_once(&app.core).await.expect("round").expect("ran");
    assert_eq!(round.keys_rotated, 0, "a new key is not rotated");
    app.clock.advance(chrono::Duration::days(91));
    let round = latchkey_core::maintenance::run_once(&app.core).await.expect("round").expect("ran");
    assert_eq!(round.keys_rotated, 1);
    let s = states(&app).await;
    assert!(s.iter().any(|(_, st)| *st == KeyState::Next), "{s:?}");
    // Once is enough: a successor is waiting.
    let round = latchkey_core::maintenance::run_once(&app.core).await.expect("round").expect("ran");
    assert_eq!(round.keys_rotated, 0);
    app.clock.advance(chrono::Duration::minutes(15));
    let s = states(&app).await;
    assert_eq!(s.iter().filter(|(_, st)| *st == KeyState::Active).count(), 1, "{s:?}");
    assert!(s.iter().any(|(_, st)| *st == KeyState::Retiring), "{s:?}");
}

/// Signs a token on `app` for the RP `client` and returns it.
async fn access_token_from(app: &TestApp, client: &latchkey_testkit::TestClient) -> String {
    let b = latchkey_testkit::Browser::new(app);
    let q = crate::oidc::code_for(app, &b, client, &[]).await;
    let (s, t) = crate::oidc::exchange(app, client, &q["code"], Some(crate::oidc::VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    t["access_token"].as_str().expect("access token").to_owned()
}

fn kid_of(jwt: &str) -> String {
    crate::oidc::claims_of(jwt).0["kid"].as_str().expect("kid").to_owned()
}

async fn active_on(app: &TestApp, client: &latchkey_testkit::TestClient, token: &str) -> bool {
    let resp = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(&client.client_id, client.secret.as_ref())
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    resp.json::<serde_json::Value>().await.expect("json")["active"] == true
}

#[tokio::test]
async fn rotation_on_two_instances_keeps_old_tokens_valid_and_now_ends_them() {
    // Tokens that outlive the rotation's lead time.
    let db = std::sync::Arc::new(TestDb::new());
    let spawn = |db| TestApp::builder().db(db).env("LATCHKEY_LIFETIMES__ACCESS_TOKEN_SECS", "3600");
    let a = spawn(db.clone()).spawn().await;
    // Instances behind one load balancer share the public URL (the issuer).
    let b = spawn(db).env("LATCHKEY_SERVER__PUBLIC_URL", &a.public_url).spawn().await;
    a.core.ensure_signing_key().await.expect("key");
    a.user(crate::oidc::EMAIL, crate::support::STRONG_PASSWORD, true).await;
    let c = a.client("Notes", false, true).await;
    let old = access_token_from(&a, &c).await;
    let old_kid = kid_of(&old);

    let next = rs256(a.core.rotate_keys(false, &latchkey_core::audit::Actor::Cli).await.expect("rotate"));
    // Published on the other instance before anyone signs with it.
    assert!(kids(&jwks(&b).await).contains(&next.kid));
    assert_eq!(kid_of(&access_token_from(&b, &c).await), old_kid, "the old key still signs");
    // After the lead time, both instances sign with the new key (each within
    // its key cache's few seconds), and the old token still verifies.
    a.clock.advance(chrono::Duration::minutes(15));
    b.clock.advance(chrono::Duration::minutes(15));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for app in [&a, &b] {
        while kid_of(&access_token_from(app, &c).await) != next.kid {
            assert!(std::time::Instant::now() < until, "the new key signs on every instance");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    assert!(active_on(&b, &c, &old).await, "tokens signed before still verify");

    // A compromise: --now withdraws every other key; their tokens fail
    // introspection on every instance within its key refresh.
    let fresh = access_token_from(&a, &c).await;
    a.core.rotate_keys(true, &latchkey_core::audit::Actor::Cli).await.expect("rotate now");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for app in [&a, &b] {
        while active_on(app, &c, &fresh).await || active_on(app, &c, &old).await {
            assert!(std::time::Instant::now() < until, "withdrawn keys' tokens stop verifying");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}
