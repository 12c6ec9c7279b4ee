//! Back-channel logout: a fake relying app on loopback receives a signed
//! logout token, verified against the JWKS, for every way a session ends.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::audit::Actor;
use latchkey_core::clients::{NewClient, create_client};
use latchkey_testkit::{Browser, HttpSink, REDIRECT_URI, TestApp, TestClient, TestDb};
use openidconnect::JsonWebKey;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};

use crate::oidc::{EMAIL, VERIFIER, claims_of, code_for, exchange};
use crate::support::{STRONG_PASSWORD, latchkey};

struct Rp {
    app: TestApp,
    sink: HttpSink,
    client: TestClient,
}

async fn rp_with(db: Arc<TestDb>, alg: &str) -> Rp {
    rp_built(TestApp::builder().db(db).env("LATCHKEY_OUTBOUND__ALLOW_LOOPBACK", "true"), alg).await
}

/// The app as `builder` makes it, a user, a sink and a client whose
/// back-channel URI is the sink.
async fn rp_built(builder: latchkey_testkit::TestAppBuilder, alg: &str) -> Rp {
    let app = builder.spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    let sink = HttpSink::start().await;
    let created = create_client(
        &app.core,
        NewClient {
            name: "Notes".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            backchannel_logout_uri: Some(sink.url.clone()),
            first_party: true,
            signing_alg: Some(alg.into()),
            ..Default::default()
        },
        &Actor::Cli,
    )
    .await
    .expect("client");
    let client = TestClient {
        client_id: created.client.client_id,
        secret: created.client_secret,
        redirect_uri: REDIRECT_URI.into(),
    };
    Rp { app, sink, client }
}

async fn rp() -> Rp {
    rp_with(Arc::new(TestDb::new()), "RS256").await
}

/// Signs in through the client; returns the browser and the ID token's sid.
async fn session(rp: &Rp) -> (Browser, String) {
    let b = Browser::new(&rp.app);
    let q = code_for(&rp.app, &b, &rp.client, &[]).await;
    let (s, t) = exchange(&rp.app, &rp.client, &q["code"], Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    let sid = claims_of(t["id_token"].as_str().expect("id token")).1["sid"].as_str().expect("sid").to_owned();
    (b, sid)
}

/// Checks a received body: a logout token for this client and session,
/// whose signature verifies against the published JWKS.
async fn check_logout_token(rp: &Rp, body: &str, sid: &str) {
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("a logout_token field");
    let (header, claims) = claims_of(&token);
    assert_eq!(header["typ"], "logout+jwt");
    let jwks: CoreJsonWebKeySet = rp.app.get("/.well-known/jwks.json").await.json().await.expect("jwks");
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == header["kid"].as_str())
        .expect("the key is published");
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(header["alg"].clone()).expect("alg");
    let (signed, sig) = token.rsplit_once('.').expect("three parts");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("base64");
    key.verify_signature(&alg, signed.as_bytes(), &sig).expect("the signature verifies against the JWKS");
    assert_eq!(claims["iss"], rp.app.public_url.as_str());
    assert_eq!(claims["aud"], rp.client.client_id.as_str());
    assert_eq!(claims["sid"], sid);
    assert!(claims["sub"].is_string() && claims["jti"].is_string() && claims["iat"].is_i64());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
}

#[tokio::test]
async fn sign_out_sends_a_verifiable_logout_token() {
    let rp = rp().await;
    let (b, sid) = session(&rp).await;
    let page = b.get("/logout").await;
    let p = b.post_raw("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(p.status, 303);
    let bodies = rp.sink.wait_for(1).await;
    check_logout_token(&rp, &bodies[0], &sid).await;
    // Delivered: it leaves the outbox (once the worker has the answer).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rp.app.core.queued_deliveries().await.expect("count") != 0 {
        assert!(std::time::Instant::now() < until, "a delivered token leaves the outbox");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn es256_and_eddsa_clients_get_tokens_in_their_algorithm() {
    for alg in ["ES256", "EdDSA"] {
        let rp = rp_with(Arc::new(TestDb::new()), alg).await;
        let (b, sid) = session(&rp).await;
        let page = b.get("/logout").await;
        b.post_raw("/logout", &[("csrf", &page.csrf())]).await;
        let bodies = rp.sink.wait_for(1).await;
        check_logout_token(&rp, &bodies[0], &sid).await;
    }
}

#[tokio::test]
async fn revocation_sign_out_everywhere_and_password_reset_each_send_one() {
    let rp = rp().await;
    // Revocation of another session from the account page.
    let (here, _) = session(&rp).await;
    let (_elsewhere, sid_elsewhere) = session(&rp).await;
    let account = here.get("/account").await;
    let handle = {
        let marker = "name=\"session\" value=\"";
        let start = account.body.find(marker).expect("another session listed") + marker.len();
        account.body[start..start + 64].to_owned()
    };
    let p = here.post_raw("/account/sessions/end", &[("csrf", &account.csrf()), ("session", &handle)]).await;
    assert_eq!(p.status, 303);
    check_logout_token(&rp, &rp.sink.wait_for(1).await[0], &sid_elsewhere).await;

    // Sign out everywhere: the other session's client hears of it.
    let (_third, sid_third) = session(&rp).await;
    let account = here.get("/account").await;
    here.post_raw("/account/sessions/end-others", &[("csrf", &account.csrf())]).await;
    check_logout_token(&rp, &rp.sink.wait_for(2).await[1], &sid_third).await;

    // A password reset ends every session, this one included.
    let sid_here = {
        let q = code_for(&rp.app, &here, &rp.client, &[]).await;
        let (_, t) = exchange(&rp.app, &rp.client, &q["code"], Some(VERIFIER)).await;
        claims_of(t["id_token"].as_str().expect("id")).1["sid"].as_str().expect("sid").to_owned()
    };
    let reset = Browser::new(&rp.app);
    reset.submit("/password/forgot", "/password/forgot", &[("email", EMAIL)]).await;
    let mail = rp.app.wait_for_mail(EMAIL, "Reset", 0).await;
    let path = mail.link("/password/reset").expect("link").trim_start_matches(&rp.app.public_url).to_owned();
    let page = reset.get(&path).await;
    let token = latchkey_testkit::hidden(&page.body, "token").expect("token");
    reset
        .post_raw(
            "/password/reset",
            &[("csrf", &page.csrf()), ("token", &token), ("new_password", "fresh copper lighthouse 42")],
        )
        .await;
    let bodies = rp.sink.wait_for(3).await;
    check_logout_token(&rp, &bodies[2], &sid_here).await;
}

#[tokio::test]
async fn disabling_a_user_from_the_cli_while_the_server_runs_is_told() {
    let db = Arc::new(TestDb::new());
    let rp = rp_with(db.clone(), "RS256").await;
    // The CLI runs on the system clock: bring the server's test clock to it.
    let lag = chrono::Utc::now() - latchkey_core::Clock::now(&*rp.app.clock);
    if lag > chrono::Duration::zero() {
        rp.app.clock.advance(lag);
    }
    let (_b, sid) = session(&rp).await;
    latchkey(&db, &["user", "disable", EMAIL], None).ok();
    // What the CLI queued is due by its clock, a moment later.
    rp.app.clock.advance(chrono::Duration::minutes(1));
    let bodies = rp.sink.wait_for(1).await;
    check_logout_token(&rp, &bodies[0], &sid).await;
}

#[tokio::test]
async fn an_unreachable_app_is_retried_until_it_answers() {
    let rp = rp().await;
    let (b, sid) = session(&rp).await;
    rp.sink.answer(503);
    let page = b.get("/logout").await;
    b.post_raw("/logout", &[("csrf", &page.csrf())]).await;
    // The first attempt fails and is kept for later.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = latchkey_db::deliveries::due(
            &mut rp.app.db.connect(),
            chrono::NaiveDate::from_ymd_opt(2100, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date"),
            10,
        )
        .expect("rows");
        if rows.first().is_some_and(|r| r.attempts >= 1) {
            break;
        }
        assert!(std::time::Instant::now() < until, "no attempt was made");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rp.sink.bodies().is_empty());
    rp.sink.answer(200);
    rp.app.clock.advance(chrono::Duration::minutes(5));
    rp.app.core.deliveries_wakeup.notify_one();
    check_logout_token(&rp, &rp.sink.wait_for(1).await[0], &sid).await;
}

#[tokio::test]
async fn without_the_loopback_allowance_nothing_is_sent_to_loopback() {
    let Rp { app, sink, client } = rp_built(TestApp::builder(), "RS256").await;
    let b = Browser::new(&app);
    code_for(&app, &b, &client, &[]).await;
    let page = b.get("/logout").await;
    b.post_raw("/logout", &[("csrf", &page.csrf())]).await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = latchkey_db::deliveries::due(
            &mut app.db.connect(),
            chrono::NaiveDate::from_ymd_opt(2100, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date"),
            10,
        )
        .expect("rows");
        if let Some(r) = rows.first().filter(|r| r.attempts >= 1) {
            assert!(r.last_error.as_deref().is_some_and(|e| e.contains("not a public address")), "{r:?}");
            break;
        }
        assert!(std::time::Instant::now() < until, "no attempt was made");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sink.bodies().is_empty(), "nothing reached the loopback listener");
}
