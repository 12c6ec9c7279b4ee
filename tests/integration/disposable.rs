//! Disposable-mail domains refused at self sign-up: the form, sign-in links
//! that create accounts, an upstream provider's first sign-in. Admins and
//! the CLI are not refused.

use latchkey_core::disposable::REFUSAL;
use latchkey_testkit::{Browser, FakeGitHub, TestApp};
use serde_json::json;

use crate::support::STRONG_PASSWORD;

async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
    let mut b = TestApp::builder().env("LATCHKEY_LIMITS__SIGNUP_PER_MINUTE", "100");
    for (k, v) in extra {
        b = b.env(k, v);
    }
    b.spawn().await
}

async fn sign_up(app: &TestApp, email: &str) -> latchkey_testkit::Page {
    Browser::new(app).submit("/signup", "/signup", &[("email", email), ("password", STRONG_PASSWORD)]).await
}

async fn user_count(app: &TestApp) -> usize {
    latchkey_core::accounts::list_users(&app.core).await.expect("users").len()
}

/// The page refuses `email` as disposable, and nothing was created or sent.
async fn assert_refused(app: &TestApp, email: &str) {
    let p = sign_up(app, email).await;
    assert_eq!(p.status, 422, "{email}");
    assert_eq!(p.alert().as_deref(), Some(REFUSAL), "{email}");
    assert!(p.contains(email.trim()), "the typed address stays in the form");
    assert!(latchkey_core::accounts::find_by_email(&app.core, email).await.expect("lookup").is_none(), "{email}");
}

#[tokio::test]
async fn signup_refuses_disposable_domains_and_their_subdomains() {
    let app = spawn_with(&[]).await;
    for email in ["someone@mailinator.com", "Someone@Sub.MAILINATOR.com", "x@yopmail.fr", "x@a.b.guerrillamail.com"] {
        assert_refused(&app, email).await;
    }
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(app.mail_count("@").await, 0, "no mail at all");
    // Nothing about them in the audit log either: refused forms are not recorded.
    assert!(latchkey_core::audit::list(&app.core, None, None, 100).await.expect("audit").is_empty());

    // Neighbours of listed domains are fine.
    for email in ["ada@example.com", "ada@notmailinator.co", "ada@mailinator.com.example.org"] {
        let p = sign_up(&app, email).await;
        assert_eq!(p.status, 200, "{email}: {:?}", p.alert());
        assert!(latchkey_core::accounts::find_by_email(&app.core, email).await.expect("lookup").is_some());
    }
    assert_eq!(user_count(&app).await, 3);
}

#[tokio::test]
async fn the_refusal_is_the_same_whether_or_not_the_address_has_an_account() {
    let app = spawn_with(&[]).await;
    // An admin may create such an account (the CLI and console are not refused) …
    let existing = app.user("kept@mailinator.com", STRONG_PASSWORD, true).await;
    assert_eq!(existing.email, "kept@mailinator.com");
    // … and sign-up answers alike for it and for an address without one.
    let b = Browser::new(&app);
    let taken =
        b.submit("/signup", "/signup", &[("email", "kept@mailinator.com"), ("password", STRONG_PASSWORD)]).await;
    let free = b.submit("/signup", "/signup", &[("email", "free@mailinator.com"), ("password", STRONG_PASSWORD)]).await;
    assert_eq!((taken.status, taken.alert()), (free.status, free.alert()));
    let normalise = |s: &str| s.replace("kept@mailinator.com", "EMAIL").replace("free@mailinator.com", "EMAIL");
    assert_eq!(normalise(&taken.body), normalise(&free.body));
    assert_eq!(app.mail_count("@mailinator.com").await, 0, "not even the already-have-an-account mail");
    assert_eq!(user_count(&app).await, 1);
    // The existing account still signs in with its password.
    let b = Browser::new(&app);
    b.sign_in("kept@mailinator.com", STRONG_PASSWORD).await;
    assert_eq!(b.get("/account").await.status, 200);
}

#[tokio::test]
async fn configured_domains_are_refused_and_the_switch_allows_all() {
    let app = spawn_with(&[("LATCHKEY_SIGNUP__DISPOSABLE_DOMAINS", "Throwaway.Example, burner.example.net")]).await;
    assert_refused(&app, "x@throwaway.example").await;
    assert_refused(&app, "x@deep.burner.example.net").await;
    assert_refused(&app, "x@mailinator.com").await;
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(sign_up(&app, "x@example.net").await.status, 200, "only the subdomain listed is refused");
    assert_eq!(user_count(&app).await, 1);

    let open = spawn_with(&[
        ("LATCHKEY_SIGNUP__ALLOW_DISPOSABLE", "true"),
        ("LATCHKEY_SIGNUP__DISPOSABLE_DOMAINS", "throwaway.example"),
    ])
    .await;
    for email in ["x@mailinator.com", "x@throwaway.example"] {
        let p = sign_up(&open, email).await;
        assert_eq!(p.status, 200, "{email}: {:?}", p.alert());
        open.wait_for_mail(email, "Confirm your email address", 0).await;
    }
    assert_eq!(user_count(&open).await, 2);
}

#[tokio::test]
async fn sign_in_links_that_create_accounts_refuse_disposable_domains() {
    let app = spawn_with(&[("LATCHKEY_MAGIC_LINKS__CREATE_ACCOUNTS", "true")]).await;
    let b = Browser::new(&app);
    let p = b.submit("/login", "/login/link", &[("email", "new@sub.mailinator.com"), ("next", "/account")]).await;
    assert_eq!(p.status, 422);
    assert_eq!(p.alert().as_deref(), Some(REFUSAL));
    assert_eq!(app.mail_count("@").await, 0);
    assert_eq!(user_count(&app).await, 0);
    // A normal address gets its link, and the link creates the account.
    let p = b.submit("/login", "/login/link", &[("email", "new@example.com"), ("next", "/account")]).await;
    assert_eq!(p.status, 200);
    app.wait_for_mail("new@example.com", "Your sign-in link", 0).await;

    // Without account creation, links only go to accounts: nothing to refuse.
    let plain = spawn_with(&[]).await;
    let b = Browser::new(&plain);
    let p = b.submit("/login", "/login/link", &[("email", "new@mailinator.com"), ("next", "/account")]).await;
    assert_eq!(p.status, 200);
    assert!(p.contains("Check your email"));
    assert_eq!(plain.mail_count("@").await, 0, "no account, no link");
}

#[tokio::test]
async fn a_first_upstream_sign_in_with_a_disposable_address_creates_nothing() {
    let gh = FakeGitHub::start(
        "gh-client",
        "gh-secret",
        json!({"id": 77, "login": "burner", "name": "Burner", "email": null}),
        json!([{"email": "octo@mailinator.com", "primary": true, "verified": true}]),
    )
    .await;
    let mut builder = TestApp::builder();
    for (k, v) in gh.env() {
        builder = builder.env(&k, &v);
    }
    let app = builder.spawn().await;
    let b = Browser::new(&app);
    let start = b.get("/login/with/github").await;
    assert_eq!(start.status, 302, "{}", start.body);
    let back = app.client.get(start.location.expect("to GitHub")).send().await.expect("fake GitHub");
    let callback = back.headers()["location"].to_str().expect("ascii").to_owned();
    let page = b.get_url(&app.local(&callback)).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.contains(REFUSAL), "{}", page.body);
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(b.get("/account").await.status, 303, "not signed in");

    // An account an admin made for that address is linked as usual.
    let made = app.user("octo@mailinator.com", STRONG_PASSWORD, true).await;
    let b = Browser::new(&app);
    let start = b.get("/login/with/github").await;
    let back = app.client.get(start.location.expect("to GitHub")).send().await.expect("fake GitHub");
    let callback = back.headers()["location"].to_str().expect("ascii").to_owned();
    let page = b.get_url(&app.local(&callback)).await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/account")), "{}", page.body);
    assert_eq!(app.core.identities(&made.id).await.expect("ids").len(), 1);
}
