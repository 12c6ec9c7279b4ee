//! Sign-in with an upstream OpenID provider. The upstream here is a second
//! Latchkey instance: real discovery, PKCE, state, nonce and signed ID
//! tokens, all on loopback (allowed by `outbound.allow_loopback`).

use latchkey_core::audit::Actor;
use latchkey_core::clients::{NewClient, create_client};
use latchkey_testkit::{Browser, TestApp, query_of};

use crate::support::STRONG_PASSWORD;

const UP_EMAIL: &str = "ada@upstream.example";

struct Pair {
    here: TestApp,
    up: TestApp,
}

/// An upstream with a user, and an app that signs in with it. `first_party`
/// decides whether the upstream asks for consent; `trust` is `trust_email`.
async fn pair(trust: Option<bool>, up_verified: bool, first_party: bool) -> Pair {
    let up = TestApp::spawn().await;
    up.core.ensure_signing_key().await.expect("key");
    up.user(UP_EMAIL, STRONG_PASSWORD, up_verified).await;
    let created = create_client(
        &up.core,
        NewClient {
            name: "Latchkey downstream".into(),
            // Loopback: any port (RFC 8252), so it fits the app started next.
            redirect_uris: vec!["http://localhost/login/with/up/callback".into()],
            first_party,
            ..Default::default()
        },
        &Actor::Cli,
    )
    .await
    .expect("client");
    let mut b = TestApp::builder()
        .env("LATCHKEY_OUTBOUND__ALLOW_LOOPBACK", "true")
        .env("LATCHKEY_PROVIDERS__OIDC__UP__ISSUER", &up.public_url)
        .env("LATCHKEY_PROVIDERS__OIDC__UP__CLIENT_ID", &created.client.client_id)
        .env("LATCHKEY_PROVIDERS__OIDC__UP__CLIENT_SECRET", created.client_secret.as_deref().expect("secret"))
        .env("LATCHKEY_PROVIDERS__OIDC__UP__DISPLAY_NAME", "Upstream");
    if let Some(t) = trust {
        b = b.env("LATCHKEY_PROVIDERS__OIDC__UP__TRUST_EMAIL", if t { "true" } else { "false" });
    }
    let here = b.spawn().await;
    Pair { here, up }
}

/// Starts at /login/with/up in `b`, signs in at the upstream; returns the
/// page `b` gets at the callback.
async fn sign_in_upstream(p: &Pair, b: &Browser) -> latchkey_testkit::Page {
    let start = b.get("/login/with/up").await;
    assert_eq!(start.status, 302, "{}", start.body);
    let at_up = start.location.expect("to the upstream");
    assert!(at_up.starts_with(&format!("{}/authorize?", p.up.public_url)), "{at_up}");
    let q = query_of(&at_up);
    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"));
    assert!(q.contains_key("nonce") && q.contains_key("state"));
    let back = Browser::new(&p.up).authorize(&p.up, &at_up, UP_EMAIL, STRONG_PASSWORD).await;
    b.get_url(&p.here.local(&back)).await
}

async fn user_here(p: &Pair, email: &str) -> Option<latchkey_core::accounts::User> {
    latchkey_core::accounts::find_by_email(&p.here.core, email).await.expect("db")
}

#[tokio::test]
async fn a_new_account_and_then_the_same_one_by_issuer_and_subject() {
    let p = pair(None, true, true).await;
    let b = Browser::new(&p.here);
    let done = sign_in_upstream(&p, &b).await;
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/account")), "{}", done.body);
    let user = user_here(&p, UP_EMAIL).await.expect("an account was made");
    assert!(!user.email_verified, "an untrusted provider does not verify the address here");
    assert!(!user.has_password);
    let account = b.get("/account").await;
    assert!(account.contains("Sign-in methods") && account.contains("Upstream"));

    // The address changes upstream: the identity (issuer + subject) still
    // finds the same account.
    p.up.db.execute("UPDATE users SET email = 'new@upstream.example', email_normalized = 'new@upstream.example'");
    let again = Browser::new(&p.here);
    let start = again.get("/login/with/up").await;
    let back = Browser::new(&p.up)
        .authorize(&p.up, start.location.as_deref().expect("up"), "new@upstream.example", STRONG_PASSWORD)
        .await;
    let done = again.get_url(&p.here.local(&back)).await;
    assert_eq!(done.status, 303);
    let account = again.get("/account").await;
    assert!(account.contains(UP_EMAIL), "the same account, still under its address here");
    assert!(user_here(&p, "new@upstream.example").await.is_none(), "no second account");
    let audit = latchkey_core::audit::list(&p.here.core, None, None, 100).await.expect("audit");
    assert!(audit.iter().any(|e| e.kind == "login.upstream") && audit.iter().any(|e| e.kind == "identity.linked"));
}

#[tokio::test]
async fn a_trusted_verified_address_links_to_the_existing_account() {
    let p = pair(Some(true), true, true).await;
    let existing = p.here.user(UP_EMAIL, STRONG_PASSWORD, true).await;
    let b = Browser::new(&p.here);
    assert_eq!(sign_in_upstream(&p, &b).await.status, 303);
    assert_eq!(user_here(&p, UP_EMAIL).await.expect("user").id, existing.id, "linked, not a new account");
    assert!(user_here(&p, UP_EMAIL).await.expect("user").has_password, "a verified account keeps its password");
}

#[tokio::test]
async fn no_link_from_an_untrusted_provider_or_an_unverified_address() {
    for (trust, verified) in [(Some(false), true), (Some(true), false)] {
        let p = pair(trust, verified, true).await;
        let existing = p.here.user(UP_EMAIL, STRONG_PASSWORD, true).await;
        let b = Browser::new(&p.here);
        let done = sign_in_upstream(&p, &b).await;
        assert_eq!(done.status, 409, "trust {trust:?}, verified {verified}: {}", done.body);
        assert!(done.alert().is_some());
        assert!(p.here.core.identities(&existing.id).await.expect("ids").is_empty(), "nothing linked");
        assert_eq!(b.get("/account").await.status, 303, "not signed in");
    }
}

#[tokio::test]
async fn the_owner_proving_the_address_drops_a_pre_registered_accounts_password_and_sessions() {
    let p = pair(Some(true), true, true).await;
    p.here.user(UP_EMAIL, STRONG_PASSWORD, false).await;
    let squatter = Browser::new(&p.here);
    squatter.sign_in(UP_EMAIL, STRONG_PASSWORD).await;
    let owner = Browser::new(&p.here);
    assert_eq!(sign_in_upstream(&p, &owner).await.status, 303);
    let user = user_here(&p, UP_EMAIL).await.expect("user");
    assert!(user.email_verified && !user.has_password);
    assert_eq!(squatter.get("/account").await.status, 303, "the other session ended");
}

#[tokio::test]
async fn state_nonce_and_browser_must_match() {
    let p = pair(None, true, true).await;
    let b = Browser::new(&p.here);
    // A made-up state, or the real callback in another browser: refused.
    assert_eq!(b.get("/login/with/up/callback?code=x&state=y").await.status, 400);
    let start = b.get("/login/with/up").await;
    let at_up = start.location.expect("up");
    let back = Browser::new(&p.up).authorize(&p.up, &at_up, UP_EMAIL, STRONG_PASSWORD).await;
    let other = Browser::new(&p.here);
    let page = other.get_url(&p.here.local(&back)).await;
    assert_eq!(page.status, 400, "another browser");
    assert_eq!(b.get_url(&p.here.local(&back)).await.status, 400, "the flow was used up");
    assert!(user_here(&p, UP_EMAIL).await.is_none(), "no half-made account");

    // A nonce that does not match the ID token: refused.
    let start = b.get("/login/with/up").await;
    let at_up = start.location.expect("up");
    let state = query_of(&at_up)["state"].clone();
    let key = latchkey_core::store::hashed_key("upstream", &state);
    let raw = p.here.core.store.get(&key).await.expect("store").expect("flow");
    let mut flow: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    flow["nonce"] = serde_json::json!("another-nonce");
    p.here.core.store.put(&key, flow.to_string().as_bytes(), std::time::Duration::from_secs(600)).await.expect("put");
    let back = Browser::new(&p.up).authorize(&p.up, &at_up, UP_EMAIL, STRONG_PASSWORD).await;
    let page = b.get_url(&p.here.local(&back)).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(user_here(&p, UP_EMAIL).await.is_none());
}

#[tokio::test]
async fn an_id_token_whose_signature_does_not_verify_is_refused() {
    let p = pair(None, true, true).await;
    // The upstream publishes, under its signing key's kid, another key's
    // public half: its tokens no longer verify against its own JWKS.
    let next = p.up.core.rotate_keys(false, &Actor::Cli).await.expect("rotate");
    let keys = p.up.core.list_keys().await.expect("keys");
    let active = keys.iter().find(|k| k.state == latchkey_core::keys::KeyState::Active).expect("active").kid.clone();
    let other = next[0].kid.clone();
    p.up.db.execute(&format!(
        "UPDATE signing_keys SET public_jwk = (SELECT replace(public_jwk, '{other}', '{active}') FROM signing_keys WHERE kid = '{other}') WHERE kid = '{active}'"
    ));
    let b = Browser::new(&p.here);
    let page = sign_in_upstream(&p, &b).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(user_here(&p, UP_EMAIL).await.is_none(), "no half-made account");
}

#[tokio::test]
async fn a_key_the_provider_published_since_is_read_again() {
    let p = pair(None, true, true).await;
    let b = Browser::new(&p.here);
    let start = b.get("/login/with/up").await;
    // Keys cached at the start; the upstream then signs with a new key.
    p.up.core.rotate_keys(true, &Actor::Cli).await.expect("rotate");
    let back =
        Browser::new(&p.up).authorize(&p.up, start.location.as_deref().expect("up"), UP_EMAIL, STRONG_PASSWORD).await;
    let page = b.get_url(&p.here.local(&back)).await;
    assert_eq!(page.status, 303, "{}", page.body);
}

#[tokio::test]
async fn a_refusal_upstream_and_an_unreachable_upstream_end_on_a_clear_page() {
    // The user denies the app at the upstream's consent page.
    let p = pair(None, true, false).await;
    let b = Browser::new(&p.here);
    let start = b.get("/login/with/up").await;
    let up_browser = Browser::new(&p.up);
    up_browser.sign_in(UP_EMAIL, STRONG_PASSWORD).await;
    let consent = up_browser.follow(&p.up, start.location.as_deref().expect("up")).await;
    assert!(consent.contains("action=\"/consent\""));
    let flow = latchkey_testkit::hidden(&consent.body, "flow").expect("flow");
    let denied =
        up_browser.post_raw("/consent", &[("csrf", &consent.csrf()), ("flow", &flow), ("decision", "deny")]).await;
    let page = b.get_url(&p.here.local(denied.location.as_deref().expect("back"))).await;
    assert_eq!(page.status, 400);
    assert!(page.alert().is_some_and(|a| a.contains("didn’t allow")), "{:?}", page.alert());
    assert!(user_here(&p, UP_EMAIL).await.is_none());

    // An upstream nobody answers for.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let here = TestApp::builder()
        .env("LATCHKEY_OUTBOUND__ALLOW_LOOPBACK", "true")
        .env("LATCHKEY_PROVIDERS__OIDC__UP__ISSUER", &format!("http://127.0.0.1:{port}"))
        .env("LATCHKEY_PROVIDERS__OIDC__UP__CLIENT_ID", "x")
        .env("LATCHKEY_PROVIDERS__OIDC__UP__CLIENT_SECRET", "y")
        .spawn()
        .await;
    let page = Browser::new(&here).get("/login/with/up").await;
    assert_eq!(page.status, 502);
    assert!(page.alert().is_some_and(|a| a.contains("couldn’t reach")), "{:?}", page.alert());
    assert_eq!(Browser::new(&here).get("/login/with/nobody").await.status, 404);
}

#[tokio::test]
async fn link_and_unlink_from_the_account_page() {
    let p = pair(None, true, true).await;
    p.here.user("local@example.com", STRONG_PASSWORD, true).await;
    let b = Browser::new(&p.here);
    b.sign_in("local@example.com", STRONG_PASSWORD).await;
    let account = b.get("/account").await;
    assert!(account.contains("Link Upstream"));
    let start = b.post_raw("/account/identities/link", &[("csrf", &account.csrf()), ("provider", "up")]).await;
    assert_eq!(start.status, 302);
    let back =
        Browser::new(&p.up).authorize(&p.up, start.location.as_deref().expect("up"), UP_EMAIL, STRONG_PASSWORD).await;
    let done = b.get_url(&p.here.local(&back)).await;
    assert_eq!(done.location.as_deref(), Some("/account?notice=linked"));
    let user = user_here(&p, "local@example.com").await.expect("user");
    let ids = p.here.core.identities(&user.id).await.expect("ids");
    assert_eq!(ids.len(), 1);

    // Signing in upstream now finds this account.
    let other = Browser::new(&p.here);
    assert_eq!(sign_in_upstream(&p, &other).await.status, 303);
    assert!(other.get("/account").await.contains("local@example.com"));

    // Unlink: without CSRF refused; another user's identity id changes nothing.
    let account = b.get("/account").await;
    assert_eq!(b.post_raw("/account/identities/unlink", &[("identity", &ids[0].id)]).await.status, 403);
    let p2 = b.post_raw("/account/identities/unlink", &[("csrf", &account.csrf()), ("identity", "nope")]).await;
    assert_eq!(p2.status, 404);
    let p3 = b.post_raw("/account/identities/unlink", &[("csrf", &account.csrf()), ("identity", &ids[0].id)]).await;
    assert_eq!(p3.location.as_deref(), Some("/account?notice=unlinked"));
    assert!(p.here.core.identities(&user.id).await.expect("ids").is_empty());
    let audit = latchkey_core::audit::list(&p.here.core, None, None, 100).await.expect("audit");
    assert!(audit.iter().any(|e| e.kind == "identity.unlinked"));
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let p = pair(None, true, true).await;
    let b = Browser::new(&p.here);
    assert_eq!(sign_in_upstream(&p, &b).await.status, 303);
    let user = user_here(&p, UP_EMAIL).await.expect("user");
    let ids = p.here.core.identities(&user.id).await.expect("ids");
    let account = b.get("/account").await;
    let page = b.post_raw("/account/identities/unlink", &[("csrf", &account.csrf()), ("identity", &ids[0].id)]).await;
    assert_eq!(page.status, 409);
    assert_eq!(p.here.core.identities(&user.id).await.expect("ids").len(), 1, "still linked");

    // Setting a first password (no current one to give) makes unlinking possible.
    let account = b.get("/account").await;
    assert!(account.contains("Set password") && !account.contains("Current password"));
    let set = b
        .post_raw(
            "/account/password",
            &[("csrf", &account.csrf()), ("current_password", ""), ("new_password", "fresh copper lighthouse 42")],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    Browser::new(&p.here).sign_in(UP_EMAIL, "fresh copper lighthouse 42").await;
    let account = b.get("/account").await;
    assert!(account.contains("Current password"));
    let page = b.post_raw("/account/identities/unlink", &[("csrf", &account.csrf()), ("identity", &ids[0].id)]).await;
    assert_eq!(page.location.as_deref(), Some("/account?notice=unlinked"));
}

#[tokio::test]
async fn an_identity_linked_by_someone_else_goes_when_the_owner_proves_the_address() {
    // An untrusted provider made an account with an address it did not prove here.
    let p = pair(None, true, true).await;
    assert_eq!(sign_in_upstream(&p, &Browser::new(&p.here)).await.status, 303);
    let user = user_here(&p, UP_EMAIL).await.expect("user");
    assert_eq!(p.here.core.identities(&user.id).await.expect("ids").len(), 1);
    // The address's owner proves it with a sign-in link.
    let owner = Browser::new(&p.here);
    owner.submit("/login", "/login/link", &[("email", UP_EMAIL), ("next", "/account")]).await;
    let mail = p.here.wait_for_mail(UP_EMAIL, "Your sign-in link", 0).await;
    let path = mail.link("/login/link?token=").expect("link").trim_start_matches(&p.here.public_url).to_owned();
    assert_eq!(owner.get(&path).await.status, 303);
    assert!(p.here.core.identities(&user.id).await.expect("ids").is_empty(), "the provider no longer signs in here");
}

#[tokio::test]
async fn an_upstream_sign_in_waits_for_the_second_factor_here() {
    let p = pair(None, true, true).await;
    let b = Browser::new(&p.here);
    assert_eq!(sign_in_upstream(&p, &b).await.status, 303);
    // The account made here gets a security policy: MFA for everyone.
    p.here
        .core
        .set_mfa_policy(latchkey_core::mfa::MfaPolicy::Required, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("policy");
    let again = Browser::new(&p.here);
    let done = sign_in_upstream(&p, &again).await;
    let loc = done.location.clone().unwrap_or_default();
    assert!(loc.starts_with("/login/mfa?next="), "the second step comes first: {loc}");
    assert_eq!(again.get("/account").await.status, 303, "not signed in before it");
    assert!(again.get(&loc).await.contains("Add a second step"));
}
