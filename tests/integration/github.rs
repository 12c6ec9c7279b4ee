//! Sign-in with GitHub against a fake GitHub (OAuth app flow and REST API).

use latchkey_testkit::{Browser, FakeGitHub, TestApp};
use serde_json::json;

use crate::support::STRONG_PASSWORD;

const EMAIL: &str = "octo@example.com";

async fn fake() -> FakeGitHub {
    FakeGitHub::start(
        "gh-client",
        "gh-secret",
        json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": null}),
        json!([
            {"email": "old@example.com", "primary": false, "verified": true},
            {"email": EMAIL, "primary": true, "verified": true},
        ]),
    )
    .await
}

async fn app_for(gh: &FakeGitHub, extra: &[(&str, &str)]) -> TestApp {
    let mut b = TestApp::builder();
    for (k, v) in gh.env() {
        b = b.env(&k, &v);
    }
    for (k, v) in extra {
        b = b.env(k, v);
    }
    b.spawn().await
}

/// /login/with/github → the fake approves → the callback, in `b`.
async fn through_github(app: &TestApp, b: &Browser) -> latchkey_testkit::Page {
    let start = b.get("/login/with/github").await;
    assert_eq!(start.status, 302, "{}", start.body);
    let at_github = start.location.expect("to GitHub");
    let back = app.client.get(&at_github).send().await.expect("fake GitHub");
    assert_eq!(back.status(), 302);
    let callback = back.headers()["location"].to_str().expect("ascii").to_owned();
    b.get_url(&app.local(&callback)).await
}

#[tokio::test]
async fn a_new_account_from_a_verified_primary_address() {
    let gh = fake().await;
    let app = app_for(&gh, &[]).await;
    let login = Browser::new(&app).get("/login").await;
    assert!(login.contains("Continue with GitHub"));
    let b = Browser::new(&app);
    let done = through_github(&app, &b).await;
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/account")), "{}", done.body);
    let user = latchkey_core::accounts::find_by_email(&app.core, EMAIL).await.expect("db").expect("created");
    assert!(user.email_verified, "GitHub's verified primary address is trusted");
    assert_eq!(user.name.as_deref(), Some("The Octocat"));
    let ids = app.core.identities(&user.id).await.expect("ids");
    assert_eq!(
        (ids[0].subject.as_str(), ids[0].issuer.as_str()),
        ("583231", gh.base.as_str()),
        "keyed by the numeric id"
    );
    // Again: the same account.
    let again = Browser::new(&app);
    assert_eq!(through_github(&app, &again).await.status, 303);
    assert_eq!(latchkey_core::accounts::list_users(&app.core).await.expect("users").len(), 1);
}

#[tokio::test]
async fn an_existing_verified_account_is_linked_unless_trust_is_off() {
    let gh = fake().await;
    let app = app_for(&gh, &[]).await;
    let existing = app.user(EMAIL, STRONG_PASSWORD, true).await;
    assert_eq!(through_github(&app, &Browser::new(&app)).await.status, 303);
    assert_eq!(app.core.identities(&existing.id).await.expect("ids").len(), 1);

    let gh2 = fake().await;
    let strict = app_for(&gh2, &[("LATCHKEY_PROVIDERS__GITHUB__TRUST_EMAIL", "false")]).await;
    let other = strict.user(EMAIL, STRONG_PASSWORD, true).await;
    let page = through_github(&strict, &Browser::new(&strict)).await;
    assert_eq!(page.status, 409);
    assert!(strict.core.identities(&other.id).await.expect("ids").is_empty());
}

#[tokio::test]
async fn no_verified_primary_address_no_account() {
    let gh = fake().await;
    gh.set_emails(json!([{"email": EMAIL, "primary": true, "verified": false}]));
    let app = app_for(&gh, &[]).await;
    let page = through_github(&app, &Browser::new(&app)).await;
    assert_eq!(page.status, 400);
    assert!(page.alert().is_some_and(|a| a.contains("email")), "{:?}", page.alert());
    assert!(latchkey_core::accounts::list_users(&app.core).await.expect("users").is_empty());
}

#[tokio::test]
async fn a_failed_token_exchange_ends_on_a_clear_page() {
    let gh = fake().await;
    let app = app_for(&gh, &[("LATCHKEY_PROVIDERS__GITHUB__CLIENT_SECRET", "wrong")]).await;
    let page = through_github(&app, &Browser::new(&app)).await;
    assert_eq!(page.status, 502);
    assert!(page.alert().is_some());
    assert!(latchkey_core::accounts::list_users(&app.core).await.expect("users").is_empty());
}
