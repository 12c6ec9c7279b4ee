//! Second factors and passkeys through HTTP, as a browser would: TOTP (codes
//! from totp-rs), recovery codes, security keys and passkeys (software
//! authenticators from webauthn-authenticator-rs), the MFA step after every
//! first factor, admin policy, per-client requirement and acr step-up.

use latchkey_testkit::{Browser, Page, TestApp, hidden};
use latchkey_testkit::{REDIRECT_URI, query_of};
use serde_json::Value;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs_proto::{CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse};

use crate::oidc::{EMAIL, VERIFIER, auth_url, challenge_for, claims_of, exchange};
use crate::support::STRONG_PASSWORD;

const PW: &str = STRONG_PASSWORD;

/// The 6-digit code for `secret` (base32) at `at` (seconds).
pub(crate) fn code_at(secret: &str, at: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret.replace(' ', "")).expect("base32 secret");
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name("test")
        .build()
        .expect("totp")
        .generate(u64::try_from(at).expect("positive time"))
        .to_string()
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

fn recovery_codes(page: &Page) -> Vec<String> {
    page.body.split("<li><code>").skip(1).filter_map(|s| s.split("</code>").next()).map(str::to_owned).collect()
}

async fn user_of(app: &TestApp) -> latchkey_core::accounts::User {
    let users = latchkey_core::accounts::list_users(&app.core).await.expect("users");
    users.into_iter().find(|u| u.email == EMAIL).expect("the user")
}

/// A browser signed in with a password (no second factor yet).
async fn signed_in(app: &TestApp, email: &str) -> Browser {
    app.user(email, PW, true).await;
    let b = Browser::new(app);
    b.sign_in(email, PW).await;
    b
}

/// Sets up an authenticator app from /account; returns its secret and the
/// recovery codes shown.
pub(crate) async fn enrol_totp(app: &TestApp, b: &Browser) -> (String, Vec<String>) {
    let page = b.get("/account/totp").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("<img class=\"qr\" src=\"data:image/svg+xml;base64,"), "a QR code made here");
    let secret = between(&page.body, "<p class=\"secret\"><code>", "</code>").expect("the secret as text").to_owned();
    let setup = hidden(&page.body, "setup").expect("setup");
    let code = code_at(&secret, app.clock.now_ts());
    let done = b.post_raw("/account/totp", &[("csrf", &page.csrf()), ("setup", &setup), ("code", &code)]).await;
    assert_eq!(done.status, 200, "{:?}", done.alert());
    let codes = recovery_codes(&done);
    (secret, codes)
}

/// Password sign-in in a new browser; returns it at /login/mfa.
async fn first_factor(app: &TestApp, email: &str, next: Option<&str>) -> (Browser, Page) {
    let b = Browser::new(app);
    let mut fields = vec![("email", email), ("password", PW)];
    if let Some(n) = next {
        fields.push(("next", n));
    }
    let p = b.submit("/login", "/login", &fields).await;
    assert_eq!(p.status, 303, "{:?}", p.alert());
    let loc = p.location.clone().expect("a redirect");
    assert!(loc.starts_with("/login/mfa?next="), "the second factor comes next: {loc}");
    assert_eq!(b.get("/account").await.status, 303, "not signed in yet");
    let page = b.get(&loc).await;
    assert_eq!(page.status, 200);
    (b, page)
}

async fn post_code(b: &Browser, page: &Page, action: &str, code: &str) -> Page {
    let next = hidden(&page.body, "next").unwrap_or_default();
    b.post_raw(action, &[("csrf", &page.csrf()), ("next", &next), ("code", code)]).await
}

fn next_step(app: &TestApp) {
    app.clock.advance(chrono::Duration::seconds(30));
}

#[tokio::test]
async fn totp_enrol_then_sign_in_with_a_code_once() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;

    // A wrong first code saves nothing.
    let page = b.get("/account/totp").await;
    let setup = hidden(&page.body, "setup").expect("setup");
    let wrong = b.post_raw("/account/totp", &[("csrf", &page.csrf()), ("setup", &setup), ("code", "12345")]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.alert().is_some_and(|a| a.contains("6-digit")), "{:?}", wrong.alert());
    assert!(wrong.contains(&setup), "the same set-up is shown again");
    let user = user_of(&app).await;
    assert!(!app.core.factors(&user.id).await.expect("factors").totp);
    // A set-up sealed for someone else, or tampered with, is refused.
    let forged = b.post_raw("/account/totp", &[("csrf", &page.csrf()), ("setup", "lk1.x.y"), ("code", "123456")]).await;
    assert_eq!(forged.status, 422);
    // A set-up belongs to the session that started it: another session of
    // the same user cannot confirm it, even with the right code.
    let secret = between(&page.body, "<p class=\"secret\"><code>", "</code>").expect("secret").to_owned();
    let other = Browser::new(&app);
    other.sign_in(EMAIL, PW).await;
    let csrf = other.get("/account").await.csrf();
    let code = code_at(&secret, app.clock.now_ts());
    let elsewhere = other.post_raw("/account/totp", &[("csrf", &csrf), ("setup", &setup), ("code", &code)]).await;
    assert_eq!(elsewhere.status, 422);
    assert!(!app.core.factors(&user.id).await.expect("factors").totp);

    let (secret, codes) = enrol_totp(&app, &b).await;
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    assert!(codes.iter().all(|c| c.len() == 14));
    app.wait_for_mail(EMAIL, "A sign-in method was added", 0).await;
    assert!(b.get("/account").await.contains("Remove authenticator app"));

    // Sign in: the password, then a code.
    let (b2, page) = first_factor(&app, EMAIL, None).await;
    assert!(page.contains("<label for=\"code\">Code</label>") && page.contains("Verify"));
    assert!(page.contains("Use a recovery code"));
    // The code the set-up used is spent.
    let replay = post_code(&b2, &page, "/login/mfa/code", &code_at(&secret, app.clock.now_ts())).await;
    assert_eq!(replay.status, 422);
    assert!(replay.alert().is_some_and(|a| a.contains("used already")));
    next_step(&app);
    let wrong = post_code(&b2, &page, "/login/mfa/code", "000000").await;
    assert_eq!(wrong.status, 422);
    let code = code_at(&secret, app.clock.now_ts());
    let ok = post_code(&b2, &page, "/login/mfa/code", &code).await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/account")));
    assert_eq!(b2.get("/account").await.status, 200);
    // The waiting sign-in is gone with it.
    let again = post_code(&b2, &page, "/login/mfa/code", &code).await;
    assert_ne!(again.status, 303);

    // The same code in another browser, within its step: refused.
    let (b3, page3) = first_factor(&app, EMAIL, None).await;
    assert_eq!(post_code(&b3, &page3, "/login/mfa/code", &code).await.status, 422);
    // One step later (clock drift allowed), the next code works.
    next_step(&app);
    let later = post_code(&b3, &page3, "/login/mfa/code", &code_at(&secret, app.clock.now_ts() + 30)).await;
    assert_eq!(later.status, 303);
    // Each refused code is in the audit log as a failed sign-in.
    let audit = latchkey_core::audit::list(&app.core, Some(EMAIL), None, 1000).await.expect("audit");
    let failed = audit.iter().filter(|e| e.kind == "login.failed" && e.detail["method"] == "otp").count();
    assert_eq!(failed, 4, "the replay, the wrong code, the code again after signing in, the replay elsewhere");
}

#[tokio::test]
async fn a_code_used_on_one_instance_is_refused_on_the_other() {
    let (a, b_app) = TestApp::two_instances().await;
    let b = signed_in(&a, EMAIL).await;
    let (secret, _) = enrol_totp(&a, &b).await;
    next_step(&a);
    let code = code_at(&secret, a.clock.now_ts());
    let (on_a, page_a) = first_factor(&a, EMAIL, None).await;
    let (on_b, page_b) = first_factor(&b_app, EMAIL, None).await;
    let (ra, rb) = tokio::join!(
        post_code(&on_a, &page_a, "/login/mfa/code", &code),
        post_code(&on_b, &page_b, "/login/mfa/code", &code)
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 422], "exactly one instance accepts the code");
}

#[tokio::test]
async fn a_policy_set_on_one_instance_applies_on_the_other_within_seconds() {
    let (a, b) = TestApp::two_instances().await;
    a.user(EMAIL, PW, true).await;
    Browser::new(&b).sign_in(EMAIL, PW).await; // b has read the policy: optional
    a.core
        .set_mfa_policy(latchkey_core::mfa::MfaPolicy::Required, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("policy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let p = Browser::new(&b).submit("/login", "/login", &[("email", EMAIL), ("password", PW)]).await;
        if p.location.as_deref().is_some_and(|l| l.starts_with("/login/mfa")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the policy was not applied within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn codes_are_rate_limited_with_recovery_codes() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    let (secret, codes) = enrol_totp(&app, &b).await;
    let now = app.clock.now_ts();
    app.clock.advance(chrono::Duration::seconds(900 - now.rem_euclid(900)));
    let (b2, page) = first_factor(&app, EMAIL, None).await;
    for i in 0..3 {
        assert_eq!(post_code(&b2, &page, "/login/mfa/code", "000000").await.status, 422, "code {i}");
    }
    for i in 0..2 {
        assert_eq!(post_code(&b2, &page, "/login/mfa/recovery", "aaaa-bbbb-cccc").await.status, 422, "recovery {i}");
    }
    // The sixth attempt is refused whatever it is, recovery code or not.
    let right = code_at(&secret, app.clock.now_ts());
    let limited = post_code(&b2, &page, "/login/mfa/code", &right).await;
    assert_eq!(limited.status, 429);
    assert!(limited.alert().is_some_and(|a| a.contains("Try again in")));
    assert_eq!(post_code(&b2, &page, "/login/mfa/recovery", &codes[0]).await.status, 429);
    // When the window passes, the (new) code works; the recovery code is unspent.
    app.clock.advance(chrono::Duration::seconds(900));
    let b3 = first_factor(&app, EMAIL, None).await;
    let ok = post_code(&b3.0, &b3.1, "/login/mfa/code", &code_at(&secret, app.clock.now_ts())).await;
    assert_eq!(ok.status, 303);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_is_mailed() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    let (_, codes) = enrol_totp(&app, &b).await;
    let (b2, page) = first_factor(&app, EMAIL, None).await;
    // Case and dashes do not matter.
    let ok = post_code(&b2, &page, "/login/mfa/recovery", &codes[3].to_uppercase().replace('-', " ")).await;
    assert_eq!(ok.status, 303, "{:?}", ok.alert());
    app.wait_for_mail(EMAIL, "A recovery code was used", 0).await;
    let mail = app.wait_for_mail(EMAIL, "A recovery code was used", 0).await;
    assert!(mail.text.contains("9 recovery codes left"), "{}", mail.text);
    let (b3, page3) = first_factor(&app, EMAIL, None).await;
    let again = post_code(&b3, &page3, "/login/mfa/recovery", &codes[3]).await;
    assert_eq!(again.status, 422);
    // New codes replace the old ones.
    let account = b.get("/account").await;
    let fresh = b.post_raw("/account/recovery-codes", &[("csrf", &account.csrf())]).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(recovery_codes(&fresh).len(), 10);
    assert_eq!(post_code(&b3, &page3, "/login/mfa/recovery", &codes[4]).await.status, 422, "old codes are gone");
    let audit = latchkey_core::audit::list(&app.core, None, None, 1000).await.expect("audit");
    assert!(audit.iter().any(|e| e.kind == "mfa.recovery_code_used"));
}

// --- WebAuthn ------------------------------------------------------------------

fn origin(app: &TestApp) -> Url {
    Url::parse(&app.public_url).expect("public url")
}

async fn options(b: &Browser, path: &str, csrf: &str, kind: &str) -> (u16, Value) {
    let p = b.post_raw(path, &[("csrf", csrf), ("kind", kind)]).await;
    (p.status, serde_json::from_str(&p.body).unwrap_or(Value::Null))
}

/// Registers a key from /account with `auth`; returns the page after it.
async fn add_key(app: &TestApp, b: &Browser, auth: &mut impl WebauthnAuthenticator, kind: &str, name: &str) -> Page {
    let csrf = b.get("/account").await.csrf();
    let (status, started) = options(b, "/account/keys/options", &csrf, kind).await;
    assert_eq!(status, 200, "{started}");
    let mut opts = started["options"].clone();
    if kind == "passkey" {
        assert_eq!(opts["publicKey"]["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(opts["publicKey"]["authenticatorSelection"]["userVerification"], "required");
        // The software passkey keeps its keys in memory and cannot promise
        // residency; the browser test uses Chromium's resident keys.
        opts["publicKey"]["authenticatorSelection"]["requireResidentKey"] = false.into();
    }
    let ccr: CreationChallengeResponse = serde_json::from_value(opts).expect("creation options");
    let cred = auth.do_registration(origin(app), ccr).expect("the authenticator registers");
    let ceremony = started["ceremony"].as_str().expect("ceremony").to_owned();
    let body = serde_json::to_string(&cred).expect("json");
    b.post_raw(
        "/account/keys",
        &[("csrf", &csrf), ("kind", kind), ("ceremony", &ceremony), ("credential", &body), ("name", name)],
    )
    .await
}

/// Runs a `get` ceremony against `options_path` and returns what to post.
async fn assertion(
    app: &TestApp,
    b: &Browser,
    auth: &mut impl WebauthnAuthenticator,
    options_path: &str,
    csrf: &str,
    origin_url: Url,
) -> (String, PublicKeyCredential) {
    let (status, started) = options(b, options_path, csrf, "").await;
    assert_eq!(status, 200, "{started}");
    let rcr: RequestChallengeResponse = serde_json::from_value(started["options"].clone()).expect("request options");
    let _ = app;
    let cred = auth.do_authentication(origin_url, rcr).expect("the authenticator answers");
    (started["ceremony"].as_str().expect("ceremony").to_owned(), cred)
}

#[tokio::test]
async fn a_security_key_is_a_second_factor() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    let (mut token, _) = SoftToken::new(true).expect("soft token");
    let added = add_key(&app, &b, &mut token, "security_key", "Blue key").await;
    assert_eq!(added.status, 200, "{:?}", added.alert());
    assert_eq!(recovery_codes(&added).len(), 10, "the first factor brings recovery codes");
    assert!(b.get("/account").await.contains("Blue key"));
    app.wait_for_mail(EMAIL, "A sign-in method was added", 0).await;

    // The same key again is excluded by the browser; posting it anyway fails.
    let (b2, page) = first_factor(&app, EMAIL, None).await;
    assert!(page.contains("Use a security key"));
    let csrf = page.csrf();
    let next = hidden(&page.body, "next").unwrap_or_default();
    // From another origin: refused, and the ceremony is spent.
    // Another origin on the same host (another port): the authenticator
    // signs for the host, the server checks the exact origin.
    let mut evil = origin(&app);
    evil.set_port(Some(1)).expect("port");
    let (ceremony, cred) = assertion(&app, &b2, &mut token, "/login/mfa/key/options", &csrf, evil).await;
    let body = serde_json::to_string(&cred).expect("json");
    let post = |ceremony: String, body: String| {
        let (b2, csrf, next) = (&b2, csrf.clone(), next.clone());
        async move {
            b2.post_raw(
                "/login/mfa/key",
                &[("csrf", &csrf), ("next", &next), ("ceremony", &ceremony), ("credential", &body)],
            )
            .await
        }
    };
    assert_eq!(post(ceremony, body).await.status, 422, "wrong origin");
    let (ceremony, cred) = assertion(&app, &b2, &mut token, "/login/mfa/key/options", &csrf, origin(&app)).await;
    let body = serde_json::to_string(&cred).expect("json");
    let ok = post(ceremony.clone(), body.clone()).await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/account")), "{:?}", ok.alert());
    // Replayed: the ceremony was taken once.
    let (b3, page3) = first_factor(&app, EMAIL, None).await;
    let replay = b3
        .post_raw(
            "/login/mfa/key",
            &[("csrf", &page3.csrf()), ("next", "/account"), ("ceremony", &ceremony), ("credential", &body)],
        )
        .await;
    assert_eq!(replay.status, 422);
    // Garbage and oversized answers are refused the same way, never a 500.
    for junk in ["", "{}", "not json", &"x".repeat(20_000)] {
        let (c, _) = assertion(&app, &b3, &mut token, "/login/mfa/key/options", &page3.csrf(), origin(&app)).await;
        let p = b3
            .post_raw(
                "/login/mfa/key",
                &[("csrf", &page3.csrf()), ("next", "/account"), ("ceremony", &c), ("credential", junk)],
            )
            .await;
        assert_eq!(p.status, 422, "{junk:.20}");
    }
}

#[tokio::test]
async fn a_passkey_signs_in_on_its_own() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    let user = user_of(&app).await;
    let mut passkey = SoftPasskey::new(true);
    let added = add_key(&app, &b, &mut passkey, "passkey", "Laptop").await;
    assert_eq!(added.status, 200, "{:?}", added.alert());

    // A new browser: no email, no password.
    let fresh = Browser::new(&app);
    let login = fresh.get("/login").await;
    assert!(login.contains("Sign in with a passkey"));
    let csrf = login.csrf();
    let (status, started) = options(&fresh, "/login/passkey/options", &csrf, "").await;
    assert_eq!(status, 200);
    assert_eq!(started["options"]["publicKey"]["userVerification"], "required");
    // A discoverable passkey finds itself and names its user; the software
    // passkey needs its id handed in, and returns no user handle.
    let mut rcr: RequestChallengeResponse = serde_json::from_value(started["options"].clone()).expect("options");
    let keys = app.core.keys(&user.id).await.expect("keys");
    assert_eq!(keys.len(), 1);
    let stored = latchkey_db::mfa::credentials_for;
    let rows = app.core.db.run(move |c| stored(c, &user.id)).await.expect("rows");
    let id =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &rows[0].credential_id).expect("id");
    rcr.public_key.allow_credentials =
        vec![webauthn_rs_proto::AllowCredentials { type_: "public-key".into(), id, transports: None }];
    let mut cred = passkey.do_authentication(origin(&app), rcr).expect("passkey answers");
    let uuid = uuid::Uuid::parse_str(&rows[0].user_id).expect("uuid");
    cred.response.user_handle = Some(uuid.as_bytes().to_vec());
    let body = serde_json::to_string(&cred).expect("json");
    let ceremony = started["ceremony"].as_str().expect("ceremony").to_owned();
    let ok = fresh
        .post_raw(
            "/login/passkey",
            &[("csrf", &csrf), ("next", "/account"), ("ceremony", &ceremony), ("credential", &body)],
        )
        .await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/account")), "{:?}", ok.alert());
    assert_eq!(fresh.get("/account").await.status, 200);
    // Replayed: refused.
    let other = Browser::new(&app);
    let csrf2 = other.get("/login").await.csrf();
    let replay = other
        .post_raw(
            "/login/passkey",
            &[("csrf", &csrf2), ("next", "/account"), ("ceremony", &ceremony), ("credential", &body)],
        )
        .await;
    assert_eq!(replay.status, 401);
    assert_eq!(other.get("/account").await.status, 303);
}

// --- The MFA step after every first factor -----------------------------------

#[tokio::test]
async fn a_magic_link_sign_in_waits_for_the_second_factor() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    let (secret, _) = enrol_totp(&app, &b).await;
    next_step(&app);
    let other = Browser::new(&app);
    let p = other.submit("/login", "/login/link", &[("email", EMAIL)]).await;
    assert_eq!(p.status, 200);
    let mail = app.wait_for_mail(EMAIL, "Your sign-in link", 0).await;
    let link = mail.link("/login/link?token=").expect("link");
    let opened = other.get_url(&app.local(&link)).await;
    let loc = opened.location.clone().unwrap_or_default();
    assert!(loc.starts_with("/login/mfa"), "{loc} {}", opened.body);
    assert_eq!(other.get("/account").await.status, 303);
    let page = other.get(&loc).await;
    let ok = post_code(&other, &page, "/login/mfa/code", &code_at(&secret, app.clock.now_ts())).await;
    assert_eq!(ok.status, 303);
    assert_eq!(other.get("/account").await.status, 200);
}

#[tokio::test]
async fn proving_the_address_drops_factors_someone_else_set() {
    let app = TestApp::spawn().await;
    // Someone registers the address (never verified) and adds an app.
    app.user(EMAIL, PW, false).await;
    let squatter = Browser::new(&app);
    squatter.sign_in(EMAIL, PW).await;
    enrol_totp(&app, &squatter).await;
    // The owner proves the address by mail: no code of the squatter's asked.
    let owner = Browser::new(&app);
    assert_eq!(owner.submit("/login", "/login/link", &[("email", EMAIL)]).await.status, 200);
    let mail = app.wait_for_mail(EMAIL, "Your sign-in link", 0).await;
    let opened = owner.get_url(&app.local(&mail.link("/login/link?token=").expect("link"))).await;
    assert_eq!(opened.location.as_deref(), Some("/account"), "signed in at once");
    let user = user_of(&app).await;
    assert_eq!(app.core.factors(&user.id).await.expect("factors"), Default::default());
}

#[tokio::test]
async fn policy_requires_set_up_before_anything_else_and_keeps_the_last_factor() {
    let app = TestApp::spawn().await;
    app.user(EMAIL, PW, true).await;
    app.core
        .set_mfa_policy(latchkey_core::mfa::MfaPolicy::Required, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("policy");
    let (b, page) = first_factor(&app, EMAIL, None).await;
    assert!(page.contains("Add a second step"));
    assert!(
        page.contains("Set up authenticator app")
            && page.contains("Add a security key")
            && page.contains("Add a passkey")
    );
    // No way around it: codes are refused, the account page sends back.
    assert_ne!(post_code(&b, &page, "/login/mfa/code", "123456").await.status, 303);
    assert_eq!(b.get("/account").await.status, 303);
    let setup = b.get("/login/mfa/totp?next=/account").await;
    assert_eq!(setup.status, 200);
    let secret = between(&setup.body, "<p class=\"secret\"><code>", "</code>").expect("secret").to_owned();
    let done = b
        .post_raw(
            "/login/mfa/totp",
            &[
                ("csrf", &setup.csrf()),
                ("next", "/account"),
                ("setup", &hidden(&setup.body, "setup").expect("setup")),
                ("code", &code_at(&secret, app.clock.now_ts())),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{:?}", done.alert());
    assert_eq!(recovery_codes(&done).len(), 10);
    assert_eq!(b.get("/account").await.status, 200, "signed in after set-up");

    // Set-up during sign-in is only for those who have no factor yet.
    let (b2, _) = first_factor(&app, EMAIL, None).await;
    assert_eq!(b2.get("/login/mfa/totp?next=/account").await.status, 403);
    let csrf = b2.get("/login/mfa").await.csrf();
    assert_eq!(options(&b2, "/login/mfa/register/options", &csrf, "security_key").await.0, 403);

    // The last factor stays while policy requires one.
    let account = b.get("/account").await;
    let refused = b.post_raw("/account/totp/remove", &[("csrf", &account.csrf())]).await;
    assert_eq!(refused.status, 409);
    assert!(refused.alert().is_some_and(|a| a.contains("requires a second factor")));
    let user = user_of(&app).await;
    assert!(app.core.factors(&user.id).await.expect("factors").totp);
    // Optional again: it can go (with a recent sign-in), and its codes with it.
    app.core
        .set_mfa_policy(latchkey_core::mfa::MfaPolicy::Optional, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("policy");
    let removed = b.post_raw("/account/totp/remove", &[("csrf", &account.csrf())]).await;
    assert_eq!(removed.status, 303);
    assert_eq!(app.core.factors(&user.id).await.expect("factors"), Default::default());
    app.wait_for_mail(EMAIL, "A sign-in method was removed", 0).await;
}

#[tokio::test]
async fn factor_changes_need_a_recent_sign_in() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    app.clock.advance(chrono::Duration::minutes(11));
    let p = b.get("/account/totp").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login?notice=reauthenticate")));
    let csrf = b.get("/account").await.csrf();
    let (status, body) = options(&b, "/account/keys/options", &csrf, "passkey").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(options(&b, "/account/keys/options", "wrong", "passkey").await.0, 403);
    let b = Browser::new(&app);
    b.sign_in(EMAIL, PW).await;
    let csrf = b.get("/account").await.csrf();
    assert_eq!(options(&b, "/account/keys/options", &csrf, "nonsense").await.0, 400);
    assert_eq!(options(&b, "/account/keys/options", &csrf, "passkey").await.0, 200);
}

/// Walks an authorization request to its code for a user with TOTP; the
/// step-up page is answered with a code when asked.
async fn code_with_step_up(
    app: &TestApp,
    b: &Browser,
    client: &latchkey_testkit::TestClient,
    extra: &[(&str, &str)],
    secret: &str,
) -> (std::collections::HashMap<String, String>, bool) {
    let challenge = challenge_for(VERIFIER);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if !extra.iter().any(|(k, _)| *k == "scope") {
        params.push(("scope", "openid"));
    }
    params.extend_from_slice(extra);
    let mut page = b.follow(app, &auth_url(app, &params)).await;
    let mut stepped = false;
    if page.location.is_none() && page.contains("action=\"/login/mfa/code\"") {
        next_step(app);
        let p = post_code(b, &page, "/login/mfa/code", &code_at(secret, app.clock.now_ts())).await;
        assert_eq!(p.status, 303, "{:?}", p.alert());
        stepped = true;
        page = b.follow(app, p.location.as_deref().unwrap_or("/")).await;
    }
    let redirect = page.location.clone().unwrap_or_else(|| panic!("a redirect to the app: {}", page.body));
    assert!(redirect.starts_with(REDIRECT_URI), "{redirect}");
    (query_of(&redirect), stepped)
}

#[tokio::test]
async fn acr_values_and_client_requirements_step_up() {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    let b = signed_in(&app, EMAIL).await;
    let (secret, _) = enrol_totp(&app, &b).await;
    // The browser's session is a password session (1fa) from before.
    let c = app.client("Notes", false, true).await;
    let (q, stepped) = code_with_step_up(&app, &b, &c, &[], &secret).await;
    assert!(!stepped);
    let (_, t) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    assert_eq!(claims_of(t["id_token"].as_str().expect("id")).1["acr"], "1fa");

    // prompt=none cannot step up.
    let none = b
        .follow(
            &app,
            &auth_url(
                &app,
                &[
                    ("response_type", "code"),
                    ("client_id", &c.client_id),
                    ("redirect_uri", REDIRECT_URI),
                    ("scope", "openid"),
                    ("acr_values", "mfa"),
                    ("prompt", "none"),
                ],
            ),
        )
        .await;
    assert_eq!(query_of(none.location.as_deref().unwrap_or_default())["error"], "interaction_required");

    let (q, stepped) = code_with_step_up(&app, &b, &c, &[("acr_values", "mfa")], &secret).await;
    assert!(stepped, "asked for a second factor");
    let (_, t) = exchange(&app, &c, &q["code"], Some(VERIFIER)).await;
    let (_, claims) = claims_of(t["id_token"].as_str().expect("id"));
    assert_eq!(claims["acr"], "mfa");
    let amr: Vec<&str> = claims["amr"].as_array().expect("amr").iter().filter_map(Value::as_str).collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"otp") && amr.contains(&"mfa"), "{amr:?}");
    let signed_in_at = app.core.list_sessions(&user_of(&app).await.id).await.expect("sessions")[0].record.created_at;
    assert_eq!(claims["auth_time"].as_i64(), Some(signed_in_at.timestamp()), "auth_time stays the sign-in's");
    assert!(signed_in_at.timestamp() < app.clock.now_ts());

    // phr needs a security key or passkey: the code page is not offered.
    let phr = b
        .follow(
            &app,
            &auth_url(
                &app,
                &[
                    ("response_type", "code"),
                    ("client_id", &c.client_id),
                    ("redirect_uri", REDIRECT_URI),
                    ("scope", "openid"),
                    ("acr_values", "phr"),
                    ("code_challenge", &challenge_for(VERIFIER)),
                    ("code_challenge_method", "S256"),
                ],
            ),
        )
        .await;
    assert_eq!(phr.status, 200);
    assert!(phr.contains("security key or passkey") && !phr.contains("action=\"/login/mfa/code\""));

    // A client registered with --require-mfa asks for it from a new 1fa session.
    let strict = latchkey_core::clients::create_client(
        &app.core,
        latchkey_core::clients::NewClient {
            name: "Payroll".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            first_party: true,
            require_mfa: true,
            ..Default::default()
        },
        &latchkey_core::audit::Actor::Cli,
    )
    .await
    .expect("client");
    let strict = latchkey_testkit::TestClient {
        client_id: strict.client.client_id,
        secret: strict.client_secret,
        redirect_uri: REDIRECT_URI.into(),
    };
    let (b2, page) = first_factor(&app, EMAIL, None).await;
    next_step(&app);
    assert_eq!(post_code(&b2, &page, "/login/mfa/code", &code_at(&secret, app.clock.now_ts())).await.status, 303);
    let (q, stepped) = code_with_step_up(&app, &b2, &strict, &[], &secret).await;
    assert!(!stepped, "already multi-factor");
    let (_, t) = exchange(&app, &strict, &q["code"], Some(VERIFIER)).await;
    assert_eq!(claims_of(t["id_token"].as_str().expect("id")).1["acr"], "mfa");
}

#[tokio::test]
async fn mfa_pages_refuse_strangers_and_forged_forms() {
    let app = TestApp::spawn().await;
    let stranger = Browser::new(&app);
    let p = stranger.get("/login/mfa").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login?next=")));
    let csrf = stranger.get("/login").await.csrf();
    assert_eq!(options(&stranger, "/login/mfa/key/options", &csrf, "").await.0, 401);
    assert_eq!(stranger.post_raw("/login/mfa/code", &[("csrf", "bad"), ("code", "123456")]).await.status, 403);
    let b = signed_in(&app, EMAIL).await;
    let csrf = b.get("/account").await.csrf();
    assert_eq!(b.post_raw("/account/keys/remove", &[("csrf", &csrf), ("id", "not-mine")]).await.status, 404);
    assert_eq!(b.post_raw("/account/keys/rename", &[("csrf", &csrf), ("id", "x"), ("name", "y")]).await.status, 404);
    let long = "n".repeat(65);
    let renamed = b.post_raw("/account/keys/rename", &[("csrf", &csrf), ("id", "x"), ("name", &long)]).await;
    assert_eq!(renamed.status, 422);
    assert_eq!(b.post_raw("/account/recovery-codes", &[("csrf", &csrf)]).await.status, 422, "no factor to back up");
}

#[tokio::test]
async fn an_old_session_cannot_set_up_a_factor_at_the_sign_in_step() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    app.clock.advance(chrono::Duration::minutes(11));
    let p = b.get("/login/mfa/totp?next=/account").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login?notice=reauthenticate")), "{:?}", p.location);
    let csrf = b.get("/login/mfa").await.csrf();
    let (status, _) = options(&b, "/login/mfa/register/options", &csrf, "passkey").await;
    assert_eq!(status, 403);
    let user = user_of(&app).await;
    assert_eq!(app.core.factors(&user.id).await.expect("factors"), Default::default());
}

#[tokio::test]
async fn a_waiting_sign_in_ends_with_the_users_sessions() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    enrol_totp(&app, &b).await;
    // Someone with the password waits at the second step...
    let (waiting, _) = first_factor(&app, EMAIL, None).await;
    // ...and the owner signs out everywhere.
    let account = b.get("/account").await;
    assert_eq!(b.post_raw("/account/sessions/end-others", &[("csrf", &account.csrf())]).await.status, 303);
    let p = waiting.get("/login/mfa").await;
    assert_eq!(p.status, 303, "the waiting sign-in is gone");
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login?")));
}

#[tokio::test]
async fn sessions_from_before_a_required_policy_show_a_second_factor_first() {
    let app = TestApp::spawn().await;
    let b = signed_in(&app, EMAIL).await;
    let (secret, _) = enrol_totp(&app, &b).await;
    app.core
        .set_mfa_policy(latchkey_core::mfa::MfaPolicy::Required, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("policy");
    let p = b.get("/account").await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/login/mfa?next=/account")));
    let page = b.get("/login/mfa?next=/account").await;
    next_step(&app);
    let ok = post_code(&b, &page, "/login/mfa/code", &code_at(&secret, app.clock.now_ts())).await;
    assert_eq!(ok.status, 303);
    assert_eq!(b.get("/account").await.status, 200);
}

#[tokio::test]
async fn a_group_requirement_asks_its_members_only_and_steps_up_their_sessions() {
    let app = TestApp::spawn().await;
    let member = signed_in(&app, EMAIL).await;
    let other = signed_in(&app, "bob@example.com").await;
    let ada = user_of(&app).await;
    let cli = latchkey_core::audit::Actor::Cli;
    let g = app.core.create_group("Finance", true, &cli).await.expect("group");
    assert!(app.core.set_group_member(&g.id, &ada.id, true, &cli).await.expect("member"));

    // The member's old password-only session must show a second factor first;
    // the other user's is untouched.
    let p = member.get("/account").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login/mfa")), "{:?}", p.location);
    assert_eq!(other.get("/account").await.status, 200);

    // A new sign-in: the member sets a factor up before anything else.
    let (_, page) = first_factor(&app, EMAIL, None).await;
    assert!(page.contains("Add a second step") && page.contains("Set up authenticator app"));
    let b = Browser::new(&app);
    b.sign_in("bob@example.com", PW).await;
    assert_eq!(b.get("/account").await.status, 200, "not a member: one factor is enough");

    // The requirement lifted (or the membership ended), one factor is enough again.
    app.core.update_group(&g.id, None, Some(false), &cli).await.expect("update");
    assert_eq!(member.get("/account").await.status, 200);
}

#[tokio::test]
async fn admins_always_need_a_second_factor() {
    let app = TestApp::spawn().await;
    app.user(EMAIL, PW, true).await;
    let ada = user_of(&app).await;
    let cli = latchkey_core::audit::Actor::Cli;
    let changes = latchkey_core::admin::UserChanges { admin: Some(true), ..Default::default() };
    app.core.update_user(&ada.id, changes, &cli).await.expect("admin");
    let (_, page) = first_factor(&app, EMAIL, None).await;
    assert!(page.contains("Add a second step"), "an admin sets a factor up first");
}

#[tokio::test]
async fn admin_access_tokens_reach_the_admin_api_and_nothing_else() {
    let app = TestApp::spawn().await;
    app.core.ensure_signing_key().await.expect("key");
    let b = signed_in(&app, EMAIL).await;
    let (secret, _) = enrol_totp(&app, &b).await;
    let ada = user_of(&app).await;
    let cli = latchkey_core::audit::Actor::Cli;
    let admin_client = latchkey_core::clients::create_client(
        &app.core,
        latchkey_core::clients::NewClient {
            name: "Console".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            first_party: true,
            admin: true,
            ..Default::default()
        },
        &cli,
    )
    .await
    .expect("client");
    let admin_client = latchkey_testkit::TestClient {
        client_id: admin_client.client.client_id,
        secret: admin_client.client_secret,
        redirect_uri: REDIRECT_URI.into(),
    };
    let scope = [("scope", "openid offline_access latchkey:admin")];

    // Not an admin yet: the token is issued (after a second factor), the API refuses it.
    let (q, stepped) = code_with_step_up(&app, &b, &admin_client, &scope, &secret).await;
    assert!(stepped, "latchkey:admin needs a second factor");
    let (status, t) = exchange(&app, &admin_client, &q["code"], Some(VERIFIER)).await;
    assert_eq!(status, 200, "{t}");
    assert!(t.get("refresh_token").is_none(), "admin tokens are never refreshed");
    let at = t["access_token"].as_str().expect("access token").to_owned();
    let (_, claims) = claims_of(&at);
    assert_eq!(claims["aud"], app.core.admin_api_audience());
    let api = |token: String| {
        let req = app.client.get(app.url("/admin/api/v1/users")).bearer_auth(token);
        async move { req.send().await.expect("send").status().as_u16() }
    };
    assert_eq!(api(at.clone()).await, 403, "only admins");

    let changes = latchkey_core::admin::UserChanges { admin: Some(true), ..Default::default() };
    app.core.update_user(&ada.id, changes, &cli).await.expect("admin");
    assert_eq!(api(at.clone()).await, 200);
    // Not a userinfo token: its audience is the admin API.
    let ui = app.client.get(app.url("/userinfo")).bearer_auth(&at).send().await.expect("send");
    assert_eq!(ui.status(), 401);

    // An ordinary access token is not an admin token.
    let notes = app.client("Notes", false, true).await;
    let (q, _) = code_with_step_up(&app, &b, &notes, &[], &secret).await;
    let (_, t) = exchange(&app, &notes, &q["code"], Some(VERIFIER)).await;
    assert_eq!(api(t["access_token"].as_str().expect("at").to_owned()).await, 401);
    // Other clients may not ask for the scope at all.
    let refused = b
        .follow(
            &app,
            &auth_url(
                &app,
                &[
                    ("response_type", "code"),
                    ("client_id", &notes.client_id),
                    ("redirect_uri", REDIRECT_URI),
                    ("scope", "openid latchkey:admin"),
                    ("code_challenge", &challenge_for(VERIFIER)),
                    ("code_challenge_method", "S256"),
                ],
            ),
        )
        .await;
    assert_eq!(query_of(refused.location.as_deref().unwrap_or_default())["error"], "invalid_scope");

    // Disabled: the admin token stops working at once.
    let changes = latchkey_core::admin::UserChanges { disabled: Some(true), ..Default::default() };
    app.core.update_user(&ada.id, changes, &cli).await.expect("disable");
    assert_eq!(api(at).await, 401);
}
