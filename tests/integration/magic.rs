//! Sign-in links by mail.

use latchkey_testkit::{Browser, TestApp};

use crate::support::STRONG_PASSWORD;

const EMAIL: &str = "link@example.com";

async fn app_with_user(verified: bool) -> TestApp {
    let app = TestApp::spawn().await;
    app.user(EMAIL, STRONG_PASSWORD, verified).await;
    app
}

/// Asks for a link in `b`; returns the page answered.
async fn ask(b: &Browser, email: &str, next: &str) -> latchkey_testkit::Page {
    b.submit("/login", "/login/link", &[("email", email), ("next", next)]).await
}

/// The path of the `skip`-th sign-in link mailed to `to`.
async fn link_path(app: &TestApp, to: &str, skip: usize) -> String {
    let mail = app.wait_for_mail(to, "Your sign-in link", skip).await;
    mail.link("/login/link?token=").expect("a link").trim_start_matches(&app.public_url).to_owned()
}

async fn signed_in_as(b: &Browser) -> Option<String> {
    let p = b.get("/account").await;
    (p.status == 200).then_some(p.body)
}

#[tokio::test]
async fn a_link_signs_in_the_browser_that_asked_once() {
    let app = app_with_user(false).await;
    let b = Browser::new(&app);
    let p = ask(&b, EMAIL, "/account").await;
    assert_eq!(p.status, 200);
    assert!(p.contains("Check your email"));
    let path = link_path(&app, EMAIL, 0).await;
    let p = b.get(&path).await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/account")));
    let account = signed_in_as(&b).await.expect("signed in");
    assert!(account.contains("Verified"), "the address is proven");
    // Used: a second time is refused.
    let again = Browser::new(&app);
    let p = again.get(&path).await;
    assert_eq!(p.status, 400);
    assert!(signed_in_as(&again).await.is_none());
    let audit = latchkey_core::audit::list(&app.core, Some(EMAIL), None, 100).await.expect("audit");
    assert!(audit.iter().any(|e| e.kind == "login.link_requested"));
    assert!(audit.iter().any(|e| e.kind == "login.succeeded" && e.detail["method"] == "otp"));
}

#[tokio::test]
async fn an_expired_or_made_up_link_is_refused() {
    let app = app_with_user(true).await;
    let b = Browser::new(&app);
    ask(&b, EMAIL, "/account").await;
    let path = link_path(&app, EMAIL, 0).await;
    app.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(b.get(&path).await.status, 400);
    for bad in ["/login/link?token=", "/login/link?token=x", &format!("/login/link?token={}", "A".repeat(43))] {
        assert_eq!(b.get(bad).await.status, 400, "{bad}");
    }
    assert!(signed_in_as(&b).await.is_none());
}

#[tokio::test]
async fn another_browser_needs_a_click_and_never_continues_an_app() {
    let app = app_with_user(true).await;
    let asking = Browser::new(&app);
    ask(&asking, EMAIL, "/authorize/continue?flow=abc").await;
    let path = link_path(&app, EMAIL, 0).await;
    // A mail scanner or another device: a page, nothing used.
    let other = Browser::new(&app);
    let page = other.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.contains(EMAIL) && page.contains("different browser"));
    assert!(signed_in_as(&other).await.is_none());
    let page = other.get(&path).await;
    // Without CSRF: refused.
    let token = latchkey_testkit::hidden(&page.body, "token").expect("token");
    assert_eq!(other.post_raw("/login/link/confirm", &[("token", &token)]).await.status, 403);
    let p = other.post_raw("/login/link/confirm", &[("csrf", &page.csrf()), ("token", &token)]).await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/account")), "not the app's flow");
    assert!(signed_in_as(&other).await.is_some());
    // The link is spent for the asking browser too.
    assert_eq!(asking.get(&path).await.status, 400);
}

#[tokio::test]
async fn the_asking_browser_continues_where_it_was_going() {
    let app = app_with_user(true).await;
    let b = Browser::new(&app);
    ask(&b, EMAIL, "/authorize/continue?flow=abc").await;
    let p = b.get(&link_path(&app, EMAIL, 0).await).await;
    assert_eq!(p.location.as_deref(), Some("/authorize/continue?flow=abc"));
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let app = app_with_user(true).await;
    let b = Browser::new(&app);
    let known = ask(&b, EMAIL, "/account").await;
    let unknown = ask(&b, "nobody@example.com", "/account").await;
    assert_eq!(known.status, unknown.status);
    let strip = |body: &str, email: &str| body.replace(email, "X");
    assert_eq!(strip(&known.body, EMAIL), strip(&unknown.body, "nobody@example.com"), "the same page");
    app.wait_for_mail(EMAIL, "Your sign-in link", 0).await;
    app.mail_delivered().await;
    assert_eq!(app.mail_count("nobody@example.com").await, 0);
    // Bad input is said so; nothing is sent.
    let p = ask(&b, "not an address", "/account").await;
    assert_eq!(p.status, 422);
    assert!(p.alert().is_some());
    let p = ask(&b, "", "/account").await;
    assert_eq!(p.status, 400);
    // Without CSRF: refused.
    assert_eq!(b.post_raw("/login/link", &[("email", EMAIL)]).await.status, 403);
}

#[tokio::test]
async fn links_are_rate_limited_per_address_and_per_client_address() {
    let app = app_with_user(true).await;
    let b = Browser::new(&app);
    for _ in 0..7 {
        assert_eq!(ask(&b, EMAIL, "/account").await.status, 200);
    }
    app.mail_delivered().await;
    assert_eq!(app.mail_count(EMAIL).await, 5, "five links per address per hour");
    // Twenty requests per client address per hour, then a wait.
    for i in 0..13 {
        assert_eq!(ask(&b, &format!("other{i}@example.com"), "/account").await.status, 200);
    }
    let p = ask(&b, "one-more@example.com", "/account").await;
    assert_eq!(p.status, 429);
    assert!(p.alert().is_some_and(|a| a.contains("Try again")));
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(ask(&b, EMAIL, "/account").await.status, 200);
}

#[tokio::test]
async fn proving_a_never_verified_address_drops_what_someone_else_set() {
    // Someone else registered the address with their own password.
    let app = app_with_user(false).await;
    let squatter = Browser::new(&app);
    squatter.sign_in(EMAIL, STRONG_PASSWORD).await;
    // The owner proves the address by mail.
    let owner = Browser::new(&app);
    ask(&owner, EMAIL, "/account").await;
    owner.get(&link_path(&app, EMAIL, 0).await).await;
    assert!(signed_in_as(&owner).await.is_some());
    assert!(signed_in_as(&squatter).await.is_none(), "the other session ended");
    let user = latchkey_core::accounts::find_by_email(&app.core, EMAIL).await.expect("db").expect("user");
    assert!(user.email_verified && !user.has_password, "the password someone else set is gone");
    let p = Browser::new(&app).submit("/login", "/login", &[("email", EMAIL), ("password", STRONG_PASSWORD)]).await;
    assert_ne!(p.status, 303, "the old password no longer signs in");
}

#[tokio::test]
async fn a_verified_accounts_password_is_kept() {
    let app = app_with_user(true).await;
    let b = Browser::new(&app);
    ask(&b, EMAIL, "/account").await;
    b.get(&link_path(&app, EMAIL, 0).await).await;
    let user = latchkey_core::accounts::find_by_email(&app.core, EMAIL).await.expect("db").expect("user");
    assert!(user.has_password);
    Browser::new(&app).sign_in(EMAIL, STRONG_PASSWORD).await;
}

#[tokio::test]
async fn links_create_accounts_only_when_configured() {
    let app = TestApp::builder().env("LATCHKEY_MAGIC_LINKS__CREATE_ACCOUNTS", "true").spawn().await;
    let b = Browser::new(&app);
    ask(&b, "Fresh@Example.com", "/account").await;
    b.get(&link_path(&app, "Fresh@Example.com", 0).await).await;
    let user =
        latchkey_core::accounts::find_by_email(&app.core, "fresh@example.com").await.expect("db").expect("created");
    assert!(user.email_verified && !user.has_password);
    assert!(signed_in_as(&b).await.is_some());
}

#[tokio::test]
async fn a_disabled_account_gets_no_link() {
    let app = app_with_user(true).await;
    let b = Browser::new(&app);
    ask(&b, EMAIL, "/account").await;
    let path = link_path(&app, EMAIL, 0).await;
    latchkey_core::accounts::set_disabled(&app.core, EMAIL, true, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("disable");
    assert_eq!(b.get(&path).await.status, 400, "a link sent before is refused");
    ask(&b, EMAIL, "/account").await;
    app.mail_delivered().await;
    assert_eq!(app.mail_count(EMAIL).await, 1, "no new link");
}

#[tokio::test]
async fn asking_twice_keeps_the_first_link_working_in_the_same_browser() {
    let app = app_with_user(true).await;
    let b = Browser::new(&app);
    ask(&b, EMAIL, "/authorize/continue?flow=abc").await;
    let first = link_path(&app, EMAIL, 0).await;
    ask(&b, EMAIL, "/account").await;
    link_path(&app, EMAIL, 1).await;
    let p = b.get(&first).await;
    assert_eq!(p.location.as_deref(), Some("/authorize/continue?flow=abc"), "still this browser's link");
}
