//! Password accounts through HTTP, as a browser would: sign-up, verification,
//! sign-in, sessions, reset, change, sign-out, CSRF, rate limits.

use latchkey_testkit::{Browser, TestApp, hidden};

const PW: &str = "correct horse battery staple";
const PW2: &str = "tangerine lantern orbit 42";

/// Signs up `email` and returns the verification mail's link.
async fn sign_up(app: &TestApp, b: &Browser, email: &str, name: &str) -> String {
    let p = b.submit("/signup", "/signup", &[("name", name), ("email", email), ("password", PW)]).await;
    assert_eq!(p.status, 200, "{:?}", p.alert());
    assert!(p.contains("Check your email"));
    let mail = app.wait_for_mail(email, "Confirm your email address", 0).await;
    mail.link("/email/verify?token=").expect("a verification link")
}

fn path_of(link: &str) -> String {
    let u = url::Url::parse(link).expect("absolute link");
    format!("{}?{}", u.path(), u.query().unwrap_or_default())
}

#[tokio::test]
async fn signup_verify_sign_in_list_sessions_sign_out() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    let link = sign_up(&app, &b, "ada@example.com", "Ada Lovelace").await;
    assert!(link.starts_with(&format!("{}/email/verify?token=", app.public_url)), "links use the public URL: {link}");

    // Unverified accounts can sign in.
    b.sign_in("ada@example.com", PW).await;
    let account = b.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(account.contains("ada@example.com"));
    assert!(account.contains("Not verified"));
    assert!(account.contains("This device"));
    assert!(account.contains("Chrome on Linux"), "sessions list the device");
    assert!(account.contains("127.0.0.1"), "and the address");

    // The link's GET shows the address and asks for one click; it changes nothing.
    let path = path_of(&link);
    let confirm = b.get(&path).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.contains("ada@example.com"));
    assert!(b.get("/account").await.contains("Not verified"));
    let token = hidden(&confirm.body, "token").expect("token field");
    let done = b.submit(&path, "/email/verify", &[("token", &token)]).await;
    assert_eq!(done.status, 200);
    assert!(done.contains("confirmed"));
    assert!(b.get("/account").await.contains("Verified"));
    // Single use.
    let again = b.submit("/password/forgot", "/email/verify", &[("token", &token)]).await;
    assert_eq!(again.status, 400);
    assert_eq!(b.get(&path).await.status, 400);

    // Sign out: GET asks, POST does.
    let ask = b.get("/logout").await;
    assert_eq!(ask.status, 200);
    assert!(ask.contains("Sign out"));
    assert_eq!(b.get("/account").await.status, 200, "GET /logout ends nothing");
    let out = b.submit("/logout", "/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login?notice=signed-out"));
    let after = b.get("/account").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location.as_deref(), Some("/login?next=/account"));

    let kinds: Vec<String> = latchkey_core::audit::list(&app.core, Some("ada@example.com"), None, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for k in ["signup", "login.succeeded", "email.verified", "logout"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

#[tokio::test]
async fn login_page_sends_signed_in_users_on() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "lin@example.com", "").await;
    b.sign_in("lin@example.com", PW).await;
    let p = b.get("/login").await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/account")));
    // Only local paths are followed after sign-in.
    for evil in ["https://evil.example/x", "//evil.example", "/\\evil.example"] {
        let b2 = Browser::new(&app);
        let page = b2.get("/login").await;
        let res = b2
            .post_raw(
                "/login",
                &[("csrf", &page.csrf()), ("email", "lin@example.com"), ("password", PW), ("next", evil)],
            )
            .await;
        assert_eq!((res.status, res.location.as_deref()), (303, Some("/account")), "{evil}");
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "known@example.com", "").await;

    let dummy_before = app.core.hasher.dummy_verifications();
    let wrong = b.submit("/login", "/login", &[("email", "known@example.com"), ("password", "not the password")]).await;
    assert_eq!(app.core.hasher.dummy_verifications(), dummy_before, "a real hash was checked");
    let unknown =
        b.submit("/login", "/login", &[("email", "nobody@example.com"), ("password", "not the password")]).await;
    assert_eq!(app.core.hasher.dummy_verifications(), dummy_before + 1, "the dummy hash ran for the unknown email");

    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.alert(), unknown.alert());
    assert!(wrong.alert().is_some_and(|a| a.contains("match")));
    let normalise = |s: &str| s.replace("known@example.com", "EMAIL").replace("nobody@example.com", "EMAIL");
    assert_eq!(normalise(&wrong.body), normalise(&unknown.body), "identical pages but for the typed email");
}

#[tokio::test]
async fn sixth_failure_is_refused_until_the_window_passes() {
    let app = TestApp::spawn().await;
    let owner = Browser::new(&app);
    sign_up(&app, &owner, "target@example.com", "").await;
    owner.sign_in("target@example.com", PW).await; // this browser is now a known device

    // Start at the beginning of a 15-minute window so the test is exact.
    let now = app.clock.now_ts();
    app.clock.advance(chrono::Duration::seconds(900 - now.rem_euclid(900)));

    let attacker = Browser::new(&app);
    for i in 1..=5 {
        let p = attacker.submit("/login", "/login", &[("email", "target@example.com"), ("password", "guess")]).await;
        assert_eq!(p.status, 200, "attempt {i}");
    }
    // Locked: even the right password, and the same words for an unknown email.
    let sixth = attacker.submit("/login", "/login", &[("email", "target@example.com"), ("password", PW)]).await;
    assert_eq!(sixth.status, 429);
    assert!(sixth.alert().is_some_and(|a| a.contains("Try again in 15 minutes")), "{:?}", sixth.alert());
    for _ in 0..5 {
        attacker.submit("/login", "/login", &[("email", "ghost@example.com"), ("password", "guess")]).await;
    }
    let ghost = attacker.submit("/login", "/login", &[("email", "ghost@example.com"), ("password", "guess")]).await;
    assert_eq!(ghost.status, 429);
    assert_eq!(ghost.alert().map(|a| a.replace("ghost", "target")), sixth.alert());

    // The owner's browser signed in before: a flood from elsewhere does not lock it out.
    let p = owner.submit("/password/forgot", "/login", &[("email", "target@example.com"), ("password", PW)]).await;
    assert_eq!(p.status, 303, "known device is exempt: {:?}", p.alert());

    // When the window passes, the attacker's browser may try again.
    app.clock.advance(chrono::Duration::seconds(899));
    let still = attacker.submit("/login", "/login", &[("email", "target@example.com"), ("password", PW)]).await;
    assert_eq!(still.status, 429);
    app.clock.advance(chrono::Duration::seconds(1));
    let ok = attacker.submit("/login", "/login", &[("email", "target@example.com"), ("password", PW)]).await;
    assert_eq!(ok.status, 303, "{:?}", ok.alert());
}

#[tokio::test]
async fn guesses_sent_at_once_are_all_counted() {
    let app = TestApp::spawn().await;
    let owner = Browser::new(&app);
    sign_up(&app, &owner, "target@example.com", "").await;
    let now = app.clock.now_ts();
    app.clock.advance(chrono::Duration::seconds(900 - now.rem_euclid(900)));

    // Twelve guesses in flight together: only five are checked at all.
    let attacker = Browser::new(&app);
    let csrf = attacker.get("/login").await.csrf();
    let fields = [("csrf", csrf.as_str()), ("email", "target@example.com"), ("password", "guess")];
    let pages = futures_util::future::join_all((0..12).map(|_| attacker.post_raw("/login", &fields))).await;
    let mut statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [[200; 5].as_slice(), [429; 7].as_slice()].concat());

    // A right password does not count against the account: the owner signs
    // in five times in a row from new browsers in the next window.
    app.clock.advance(chrono::Duration::seconds(900));
    for _ in 0..6 {
        Browser::new(&app).sign_in("target@example.com", PW).await;
    }
}

#[tokio::test]
async fn reset_requests_sent_at_once_mail_at_most_the_limit() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "many@example.com", "").await;
    let csrf = b.get("/password/forgot").await.csrf();
    let fields = [("csrf", csrf.as_str()), ("email", "many@example.com")];
    let pages = futures_util::future::join_all((0..8).map(|_| b.post_raw("/password/forgot", &fields))).await;
    assert!(pages.iter().all(|p| p.status == 200));
    app.mail_delivered().await;
    let resets = app.mails().into_iter().filter(|m| m.subject.contains("Reset your password")).count();
    assert_eq!(resets, 3);
}

#[tokio::test]
async fn one_address_gets_growing_delays() {
    let app = TestApp::builder().env("LATCHKEY_LIMITS__LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE", "3").spawn().await;
    let now = app.clock.now_ts();
    app.clock.advance(chrono::Duration::seconds(3600 - now.rem_euclid(3600)));
    let b = Browser::new(&app);
    for i in 0..3 {
        let email = format!("user{i}@example.com");
        assert_eq!(b.submit("/login", "/login", &[("email", &email), ("password", "x")]).await.status, 200);
    }
    // A fourth account from the same address: refused for the rest of the minute.
    let p = b.submit("/login", "/login", &[("email", "user9@example.com"), ("password", "x")]).await;
    assert_eq!(p.status, 429);
    assert!(p.alert().is_some_and(|a| a.contains("1 minute")), "{:?}", p.alert());
    app.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(b.submit("/login", "/login", &[("email", "user9@example.com"), ("password", "x")]).await.status, 200);
}

#[tokio::test]
async fn signup_with_a_taken_email_answers_the_same_and_mails_the_owner() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "taken@example.com", "").await;
    let first = b.submit("/signup", "/signup", &[("email", "fresh@example.com"), ("password", PW)]).await;
    let dup = b.submit("/signup", "/signup", &[("email", "Taken@Example.com"), ("password", PW)]).await;
    assert_eq!(first.status, dup.status);
    let normalise = |s: &str| s.replace("fresh@example.com", "EMAIL").replace("Taken@Example.com", "EMAIL");
    assert_eq!(normalise(&first.body), normalise(&dup.body));
    let note = app.wait_for_mail("taken@example.com", "You already have an account", 0).await;
    assert!(note.link("/password/forgot").is_some());
    let users = latchkey_core::accounts::list_users(&app.core).await.expect("users");
    assert_eq!(users.iter().filter(|u| u.email.eq_ignore_ascii_case("taken@example.com")).count(), 1);
}

#[tokio::test]
async fn signup_refuses_bad_input_and_creates_nothing() {
    let app = TestApp::builder().env("LATCHKEY_LIMITS__SIGNUP_PER_MINUTE", "100").spawn().await;
    let b = Browser::new(&app);
    for (email, password, needle) in [
        ("not-an-email", PW, "valid email"),
        ("", PW, "Enter an email"),
        ("weak@example.com", "short", "at least 8"),
        ("weak@example.com", "password123", "common"),
        ("weak@example.com", "weakweak@example.com", "too easy"),
    ] {
        let p = b.submit("/signup", "/signup", &[("email", email), ("password", password)]).await;
        assert_eq!(p.status, 422, "{email} / {password}");
        assert!(p.alert().is_some_and(|a| a.contains(needle)), "{:?} should mention {needle}", p.alert());
        assert!(!p.contains(password) || password.is_empty() || email.contains(password), "the password is not echoed");
    }
    let long = "x".repeat(2000);
    let p = b.submit("/signup", "/signup", &[("email", "long@example.com"), ("password", &long)]).await;
    assert_eq!(p.status, 422);
    assert!(latchkey_core::accounts::list_users(&app.core).await.expect("users").is_empty());
    assert_eq!(app.mail_count("@example.com").await, 0);
}

#[tokio::test]
async fn signup_is_limited_per_address() {
    let app = TestApp::spawn().await;
    let now = app.clock.now_ts();
    app.clock.advance(chrono::Duration::seconds(60 - now.rem_euclid(60)));
    let b = Browser::new(&app);
    for i in 0..5 {
        let email = format!("s{i}@example.com");
        assert_eq!(b.submit("/signup", "/signup", &[("email", &email), ("password", PW)]).await.status, 200);
    }
    let p = b.submit("/signup", "/signup", &[("email", "s9@example.com"), ("password", PW)]).await;
    assert_eq!(p.status, 429);
    assert!(p.alert().is_some_and(|a| a.contains("Try again in")));
    assert!(latchkey_core::accounts::find_by_email(&app.core, "s9@example.com").await.expect("lookup").is_none());
}

#[tokio::test]
async fn reset_link_works_once_and_expires() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "reset@example.com", "").await;
    let other = Browser::new(&app);
    other.sign_in("reset@example.com", PW).await;

    let p = b.submit("/password/forgot", "/password/forgot", &[("email", "reset@example.com")]).await;
    assert_eq!(p.status, 200);
    let mail = app.wait_for_mail("reset@example.com", "Reset your password", 0).await;
    let link = mail.link("/password/reset?token=").expect("reset link");
    let path = path_of(&link);
    let form = b.get(&path).await;
    assert_eq!(form.status, 200);
    assert!(form.contains("reset@example.com"), "the page shows whose password it is");
    let token = hidden(&form.body, "token").expect("token");

    // A weak password keeps the link usable.
    let weak = b.submit(&path, "/password/reset", &[("token", &token), ("new_password", "password1")]).await;
    assert_eq!(weak.status, 422);
    let done = b.submit(&path, "/password/reset", &[("token", &token), ("new_password", PW2)]).await;
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/login?notice=password-set")));

    // Everyone was signed out; the new password works, the old one not.
    assert_eq!(other.get("/account").await.status, 303);
    let old = Browser::new(&app);
    let old_pw = old.submit("/login", "/login", &[("email", "reset@example.com"), ("password", PW)]).await;
    assert!(old_pw.alert().is_some_and(|a| a.contains("match")), "the old password no longer works");
    b.sign_in("reset@example.com", PW2).await;
    assert!(b.get("/account").await.contains("Verified"), "the reset link proved the address");

    // Used once: refused now.
    let again = b
        .submit(
            "/password/forgot",
            "/password/reset",
            &[("token", &token), ("new_password", "another fine passphrase")],
        )
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(b.get(&path).await.status, 400);

    // A fresh link expires after an hour; a tampered one never works.
    b.submit("/password/forgot", "/password/forgot", &[("email", "reset@example.com")]).await;
    let mail = app.wait_for_mail("reset@example.com", "Reset your password", 1).await;
    let path2 = path_of(&mail.link("/password/reset?token=").expect("link"));
    let token2 = path2.split("token=").nth(1).expect("token").to_owned();
    let mut tampered = token2.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert_eq!(b.get(&format!("/password/reset?token={tampered}")).await.status, 400);
    assert_eq!(b.get("/password/reset?token=").await.status, 400);
    assert_eq!(b.get(&format!("/password/reset?token={}", "A".repeat(5000))).await.status, 400);
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(b.get(&path2).await.status, 400);
    let expired = b
        .submit(
            "/password/forgot",
            "/password/reset",
            &[("token", &token2), ("new_password", "another fine passphrase")],
        )
        .await;
    assert_eq!(expired.status, 400);
}

#[tokio::test]
async fn forgot_password_never_reveals_an_account() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "real@example.com", "").await;
    let known = b.submit("/password/forgot", "/password/forgot", &[("email", "real@example.com")]).await;
    let unknown = b.submit("/password/forgot", "/password/forgot", &[("email", "ghost@example.com")]).await;
    assert_eq!(known.status, unknown.status);
    let normalise = |s: &str| s.replace("real@example.com", "EMAIL").replace("ghost@example.com", "EMAIL");
    assert_eq!(normalise(&known.body), normalise(&unknown.body));
    app.wait_for_mail("real@example.com", "Reset your password", 0).await;
    assert_eq!(app.mail_count("ghost@example.com").await, 0);
    // Per account, only a few mails an hour; the answer stays the same.
    for _ in 0..5 {
        let p = b.submit("/password/forgot", "/password/forgot", &[("email", "real@example.com")]).await;
        assert_eq!(p.status, 200);
    }
    app.mail_delivered().await;
    let resets = app.mails().into_iter().filter(|m| m.subject.contains("Reset your password")).count();
    assert_eq!(resets, 3);
}

#[tokio::test]
async fn password_change_needs_the_current_password_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let a = Browser::new(&app);
    sign_up(&app, &a, "change@example.com", "").await;
    a.sign_in("change@example.com", PW).await;
    let other = Browser::new(&app);
    other.sign_in("change@example.com", PW).await;
    assert!(a.get("/account").await.body.matches("End session").count() >= 1);

    let wrong = a.submit("/account", "/account/password", &[("current_password", "nope"), ("new_password", PW2)]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.alert().is_some_and(|m| m.contains("current password")));
    assert_eq!(other.get("/account").await.status, 200, "nothing changed");

    let weak =
        a.submit("/account", "/account/password", &[("current_password", PW), ("new_password", "12345678")]).await;
    assert_eq!(weak.status, 422);

    let ok = a.submit("/account", "/account/password", &[("current_password", PW), ("new_password", PW2)]).await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/account?notice=password-changed")));
    let set_cookie = ok.headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(set_cookie.starts_with("latchkey_session="), "a new session id: {set_cookie}");
    assert_eq!(a.get("/account").await.status, 200, "this browser stays signed in");
    assert_eq!(other.get("/account").await.status, 303, "the other session ended");
    app.wait_for_mail("change@example.com", "Your password was changed", 0).await;

    // Ten minutes after sign-in, it asks to sign in again.
    app.clock.advance(chrono::Duration::minutes(11));
    let later = a.submit("/account", "/account/password", &[("current_password", PW2), ("new_password", PW)]).await;
    assert_eq!(later.status, 303);
    assert_eq!(later.location.as_deref(), Some("/login?notice=reauthenticate&next=/account"));
    let fresh = Browser::new(&app);
    assert_eq!(
        fresh.submit("/login", "/login", &[("email", "change@example.com"), ("password", PW2)]).await.status,
        303
    );
}

#[tokio::test]
async fn sign_out_everywhere_keeps_this_session() {
    let app = TestApp::spawn().await;
    let a = Browser::new(&app);
    sign_up(&app, &a, "many@example.com", "").await;
    a.sign_in("many@example.com", PW).await;
    let b = Browser::new(&app);
    b.sign_in("many@example.com", PW).await;
    let c = Browser::new(&app);
    c.sign_in("many@example.com", PW).await;
    let page = a.get("/account").await;
    assert!(page.contains("Sign out everywhere"));
    let done = a.submit("/account", "/account/sessions/end-others", &[]).await;
    assert_eq!(done.status, 303);
    assert_eq!(a.get("/account").await.status, 200);
    assert_eq!(b.get("/account").await.status, 303);
    assert_eq!(c.get("/account").await.status, 303);
}

#[tokio::test]
async fn ending_one_session_and_not_another_users() {
    let app = TestApp::spawn().await;
    let a = Browser::new(&app);
    sign_up(&app, &a, "one@example.com", "").await;
    a.sign_in("one@example.com", PW).await;
    let a2 = Browser::new(&app);
    a2.sign_in("one@example.com", PW).await;
    let mallory = Browser::new(&app);
    sign_up(&app, &mallory, "mallory@example.com", "").await;
    mallory.sign_in("mallory@example.com", PW).await;

    // The handle of a2's session, from a's account page.
    let page = a.get("/account").await;
    let handle = hidden(&page.body, "session").expect("another session is listed");
    // Mallory cannot end it.
    let refused = mallory.submit("/account", "/account/sessions/end", &[("session", &handle)]).await;
    assert_eq!(refused.status, 404);
    assert_eq!(a2.get("/account").await.status, 200);
    // Its owner can.
    let ended = a.submit("/account", "/account/sessions/end", &[("session", &handle)]).await;
    assert_eq!(ended.status, 303);
    assert_eq!(a2.get("/account").await.status, 303);
    assert_eq!(a.get("/account").await.status, 200);
    let bogus = a.submit("/account", "/account/sessions/end", &[("session", "nonsense")]).await;
    assert_eq!(bogus.status, 404);
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let a = Browser::new(&app);
    sign_up(&app, &a, "csrf@example.com", "").await;
    a.sign_in("csrf@example.com", PW).await;
    let other = Browser::new(&app);
    other.sign_in("csrf@example.com", PW).await;
    let foreign_token = other.get("/account").await.csrf();

    for (path, fields) in [
        ("/login", vec![("email", "csrf@example.com"), ("password", PW)]),
        ("/signup", vec![("email", "new@example.com"), ("password", PW)]),
        ("/password/forgot", vec![("email", "csrf@example.com")]),
        ("/account/sessions/end-others", vec![]),
        ("/account/password", vec![("current_password", PW), ("new_password", PW2)]),
        ("/logout", vec![]),
    ] {
        for csrf in [None, Some("wrong"), Some(foreign_token.as_str())] {
            let mut all = fields.clone();
            if let Some(c) = csrf {
                all.push(("csrf", c));
            }
            let p = a.post_raw(path, &all).await;
            if path == "/logout" && csrf.is_none() {
                // Without a CSRF field a POST to /logout is an end-session
                // request from an app: it continues as a GET, which asks.
                assert_eq!((p.status, p.location.as_deref()), (303, Some("/logout")));
                continue;
            }
            assert_eq!(p.status, 403, "{path} with {csrf:?}");
            assert!(p.alert().is_some());
        }
    }
    // Nothing changed: still signed in everywhere, no new account, no mail.
    assert_eq!(a.get("/account").await.status, 200);
    assert_eq!(other.get("/account").await.status, 200);
    assert!(latchkey_core::accounts::find_by_email(&app.core, "new@example.com").await.expect("lookup").is_none());
    app.mail_delivered().await;
    assert_eq!(app.mails().iter().filter(|m| m.subject.contains("Reset")).count(), 0);
    // A browser with no CSRF cookie at all is refused too.
    let bare = Browser::new(&app);
    assert_eq!(bare.post_raw("/login", &[("csrf", "x"), ("email", "a@b.c"), ("password", "p")]).await.status, 403);
}

#[tokio::test]
async fn malformed_and_oversized_forms_are_refused_cleanly() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    let page = b.get("/login").await;
    let r = b
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}&email=%ZZ&password", page.csrf()))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let r = b
        .client
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("req");
    assert!(r.status().is_client_error());
    let r = b.client.post(app.url("/signup")).form(&[("password", "x".repeat(70_000))]).send().await.expect("req");
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn pages_carry_security_headers_and_escape_names() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "x@example.com", "<script>alert(1)</script>").await;
    b.sign_in("x@example.com", PW).await;
    let page = b.get("/account").await;
    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "the name is shown, escaped");
    for path in ["/login", "/signup", "/account", "/logout", "/password/forgot"] {
        let p = b.get(path).await;
        let h = &p.headers;
        assert!(h["content-security-policy"].to_str().unwrap_or_default().contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(!p.body.contains("<script>") || !p.body.contains("<script>alert"), "{path}");
    }
    // The stylesheet and script are served by us.
    assert_eq!(b.get("/static/latchkey.css").await.status, 200);
    assert_eq!(b.get("/static/latchkey.js").await.status, 200);
}

#[tokio::test]
async fn session_cookie_flags() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "flags@example.com", "").await;
    let p = b.submit("/login", "/login", &[("email", "flags@example.com"), ("password", PW)]).await;
    let cookies: Vec<String> =
        p.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    let session = cookies.iter().find(|c| c.starts_with("latchkey_session=")).expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax") && session.contains("Path=/"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "http public URL");
    let id = session.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_owned()).expect("value");
    assert_eq!(id.len(), 43, "256-bit id");

    // With an https public URL: Secure and the __Host- prefix.
    let app = TestApp::builder().env("LATCHKEY_SERVER__PUBLIC_URL", "https://id.example.test").spawn().await;
    let b = Browser::new(&app);
    let p = b.get("/login").await;
    let csrf_cookie = p.headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(csrf_cookie.starts_with("__Host-latchkey_csrf="), "{csrf_cookie}");
    assert!(csrf_cookie.contains("Secure") && csrf_cookie.contains("Path=/") && !csrf_cookie.contains("Domain"));
}

#[tokio::test]
async fn sessions_expire_when_idle() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "idle@example.com", "").await;
    b.sign_in("idle@example.com", PW).await;
    app.clock.advance(chrono::Duration::hours(23));
    assert_eq!(b.get("/account").await.status, 200, "activity moves the idle deadline");
    app.clock.advance(chrono::Duration::hours(23));
    assert_eq!(b.get("/account").await.status, 200);
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(b.get("/account").await.status, 303, "idle for more than 24 h");
}

#[tokio::test]
async fn sessions_end_at_the_absolute_limit() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "abs@example.com", "").await;
    b.sign_in("abs@example.com", PW).await;
    for _ in 0..14 {
        app.clock.advance(chrono::Duration::hours(23));
        if b.get("/account").await.status != 200 {
            break;
        }
    }
    app.clock.advance(chrono::Duration::hours(23));
    assert_eq!(b.get("/account").await.status, 303, "14 days is the most a session lives");
}

#[tokio::test]
async fn disabled_accounts_cannot_sign_in_and_lose_their_sessions() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "off@example.com", "").await;
    b.sign_in("off@example.com", PW).await;
    latchkey_core::accounts::set_disabled(&app.core, "off@example.com", true, &latchkey_core::audit::Actor::Cli)
        .await
        .expect("disable");
    let user =
        latchkey_core::accounts::find_by_email(&app.core, "off@example.com").await.expect("lookup").expect("user");
    assert!(
        app.core.list_sessions(&user.id).await.expect("sessions").is_empty(),
        "disabling ends the sessions at once"
    );
    assert_eq!(b.get("/account").await.status, 303);
    let p = Browser::new(&app).submit("/login", "/login", &[("email", "off@example.com"), ("password", PW)]).await;
    assert_eq!(p.status, 403);
    assert!(p.alert().is_some_and(|a| a.contains("disabled")));
    // A wrong password says nothing about the account being disabled.
    let p = Browser::new(&app).submit("/login", "/login", &[("email", "off@example.com"), ("password", "wrong")]).await;
    assert_eq!(p.status, 200);
    assert!(p.alert().is_some_and(|a| a.contains("match")));
}

#[tokio::test]
async fn a_session_made_on_one_instance_is_valid_on_the_other() {
    let (one, two) = TestApp::two_instances().await;
    let b = Browser::new(&one);
    sign_up(&one, &b, "hop@example.com", "").await;
    b.sign_in("hop@example.com", PW).await;
    let on_two = b.with_base(&two.address);
    let page = on_two.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.contains("hop@example.com"));
    // And a form from one instance is accepted by the other (shared keys).
    let out = on_two.post_raw("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.status, 303);
    assert_eq!(b.get("/account").await.status, 303);
}

#[tokio::test]
async fn mail_goes_out_over_smtp_when_configured() {
    let sink = latchkey_testkit::SmtpSink::start().await;
    let app = TestApp::builder()
        .env("LATCHKEY_MAIL__SMTP_URL", &sink.url())
        .env("LATCHKEY_MAIL__FROM", "Example ID <id@example.com>")
        .spawn()
        .await;
    let b = Browser::new(&app);
    let p = b.submit("/signup", "/signup", &[("email", "smtp@example.com"), ("password", PW)]).await;
    assert_eq!(p.status, 200);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sink.messages().is_empty() {
        assert!(std::time::Instant::now() < until, "no message reached the SMTP sink");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let m = &sink.messages()[0];
    assert_eq!(m.from, "<id@example.com>");
    assert_eq!(m.to, vec!["<smtp@example.com>".to_owned()]);
    let parsed = mailparse::parse_mail(m.data.as_bytes()).expect("a MIME message");
    assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
    let kinds: Vec<String> = parsed.subparts.iter().map(|p| p.ctype.mimetype.clone()).collect();
    assert_eq!(kinds, vec!["text/plain", "text/html"]);
    let text = parsed.subparts[0].get_body().expect("text");
    assert!(text.contains(&format!("{}/email/verify?token=", app.public_url)));
    assert!(app.mails().is_empty(), "nothing in the outbox when SMTP is configured");
}

#[tokio::test]
async fn the_mailbox_alone_confirms_the_address_and_ousts_a_squatter() {
    let app = TestApp::spawn().await;
    // Someone signs up with an address that is not theirs, and signs in.
    let squatter = Browser::new(&app);
    let link = sign_up(&app, &squatter, "victim@example.com", "").await;
    squatter.sign_in("victim@example.com", PW).await;
    let path = path_of(&link);

    // The address's real owner opens the link in their own browser: one
    // click on a page that shows the address.
    let owner = Browser::new(&app);
    let page = owner.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.contains("victim@example.com"));
    assert!(page.contains("Verify email"));
    let token = hidden(&page.body, "token").expect("token");

    // A wrong password changes nothing and keeps the link usable.
    let wrong =
        owner.post_raw("/email/verify", &[("csrf", &page.csrf()), ("token", &token), ("password", "guess")]).await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.alert().is_some_and(|a| a.contains("match")));
    assert_eq!(squatter.get("/account").await.status, 200);

    // The click alone: the address is confirmed, the squatter's password and
    // sessions are gone, and the owner chooses a password.
    let done = owner.post_raw("/email/verify", &[("csrf", &page.csrf()), ("token", &token)]).await;
    assert_eq!(done.status, 303);
    let to = done.location.clone().expect("to choose a password");
    assert!(to.starts_with("/password/reset?token=") && to.ends_with("&notice=verified"), "{to}");
    assert_eq!(squatter.get("/account").await.status, 303, "the squatter's session ended");
    let again =
        Browser::new(&app).submit("/login", "/login", &[("email", "victim@example.com"), ("password", PW)]).await;
    assert!(again.alert().is_some_and(|a| a.contains("match")), "the squatter's password is gone");
    let choose = owner.get(&to).await;
    assert!(choose.contains("Your address is confirmed. Choose a password to finish."));
    let reset_token = hidden(&choose.body, "token").expect("token");
    let set = owner.submit(&to, "/password/reset", &[("token", &reset_token), ("new_password", PW2)]).await;
    assert_eq!(set.status, 303);
    owner.sign_in("victim@example.com", PW2).await;
    assert!(owner.get("/account").await.contains("Verified"));
    // The link was used once.
    assert_eq!(owner.get(&path).await.status, 400);
    let events = latchkey_core::audit::list(&app.core, Some("victim@example.com"), None, 100).await.expect("audit");
    let verified = events.iter().find(|e| e.kind == "email.verified").expect("audited");
    assert_eq!(verified.detail["password_dropped"], true);
}

#[tokio::test]
async fn the_password_on_the_verification_page_keeps_it_and_signs_in() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    let link = sign_up(&app, &b, "keep@example.com", "").await;
    let other_device = Browser::new(&app);
    other_device.sign_in("keep@example.com", PW).await;
    let path = path_of(&link);
    let page = b.get(&path).await;
    let token = hidden(&page.body, "token").expect("token");
    let done = b.post_raw("/email/verify", &[("csrf", &page.csrf()), ("token", &token), ("password", PW)]).await;
    assert_eq!((done.status, done.location.as_deref()), (303, Some("/account?notice=verified")));
    let account = b.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(account.contains("Verified"));
    assert_eq!(other_device.get("/account").await.status, 200, "nothing else ended");
    // The password still works.
    Browser::new(&app).sign_in("keep@example.com", PW).await;
}

#[tokio::test]
async fn a_later_link_for_a_verified_address_drops_nothing() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    let first = sign_up(&app, &b, "twice@example.com", "").await;
    b.sign_in("twice@example.com", PW).await;
    // A second link (sent again from the account page).
    let account = b.get("/account").await;
    assert!(b.post_raw("/account/verification", &[("csrf", &account.csrf())]).await.status == 303);
    let second = app.wait_for_mail("twice@example.com", "Confirm your email address", 1).await;
    let second = second.link("/email/verify?token=").expect("link");
    // The owner confirms with the first link, signed in.
    let p = b.get(&path_of(&first)).await;
    assert!(!p.contains("name=\"password\""), "signed in as the owner: no password asked");
    let t = hidden(&p.body, "token").expect("token");
    assert_eq!(b.submit(&path_of(&first), "/email/verify", &[("token", &t)]).await.status, 200);
    // Someone with only the mailbox uses the second one: already verified, nothing is dropped.
    let reader = Browser::new(&app);
    let p = reader.get(&path_of(&second)).await;
    let t = hidden(&p.body, "token").expect("token");
    let done = reader.post_raw("/email/verify", &[("csrf", &p.csrf()), ("token", &t)]).await;
    assert_eq!(done.status, 200);
    assert_eq!(b.get("/account").await.status, 200);
    Browser::new(&app).sign_in("twice@example.com", PW).await;
}

#[tokio::test]
async fn queued_mail_survives_a_mail_outage_and_a_restart() {
    let db = std::sync::Arc::new(latchkey_testkit::TestDb::new());
    // Nothing listens on this port: delivery fails and the message waits.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("smtp://127.0.0.1:{}", closed.local_addr().expect("addr").port());
    drop(closed);
    let first = TestApp::builder().db(db.clone()).env("LATCHKEY_MAIL__SMTP_URL", &dead).spawn().await;
    let b = Browser::new(&first);
    let p = b.submit("/signup", "/signup", &[("email", "patient@example.com"), ("password", PW)]).await;
    assert_eq!(p.status, 200, "the answer does not wait for the mail server");
    assert_eq!(first.core.queued_mail().await.expect("count"), 1);
    // At rest the message is sealed: its link is not readable in the table.
    let mut conn = db.connect();
    let rows = latchkey_db::mail_outbox::due(
        &mut conn,
        chrono::NaiveDate::from_ymd_opt(2100, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date"),
        10,
    )
    .expect("rows");
    assert!(rows[0].message.starts_with("lk1.") && !rows[0].message.contains("verify"));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = latchkey_db::mail_outbox::due(
            &mut conn,
            chrono::NaiveDate::from_ymd_opt(2100, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date"),
            10,
        )
        .expect("rows");
        if rows.first().is_some_and(|r| r.attempts >= 1) {
            assert!(rows[0].last_error.is_some());
            break;
        }
        assert!(std::time::Instant::now() < until, "no delivery attempt was made");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(first);

    // Another instance with a working mail server delivers it once due.
    let sink = latchkey_testkit::SmtpSink::start().await;
    let second = TestApp::builder().db(db.clone()).env("LATCHKEY_MAIL__SMTP_URL", &sink.url()).spawn().await;
    // Past the retry backoff, and past the delivery lock in case the first
    // instance stopped before releasing it.
    second.clock.advance(chrono::Duration::minutes(6));
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sink.messages().is_empty() {
        assert!(std::time::Instant::now() < until, "the queued mail was not delivered after the restart");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sink.messages()[0].to, vec!["<patient@example.com>".to_owned()]);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while second.core.queued_mail().await.expect("count") != 0 {
        assert!(std::time::Instant::now() < until, "delivered mail leaves the queue");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn malformed_emails_count_against_the_address_limit() {
    let app = TestApp::builder().env("LATCHKEY_LIMITS__LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE", "3").spawn().await;
    let now = app.clock.now_ts();
    app.clock.advance(chrono::Duration::seconds(3600 - now.rem_euclid(3600)));
    let b = Browser::new(&app);
    for junk in ["not-an-email", "also not", "@@@"] {
        let p = b.submit("/login", "/login", &[("email", junk), ("password", "x")]).await;
        assert_eq!(p.status, 200);
        assert!(p.alert().is_some_and(|a| a.contains("match")));
    }
    let p = b.submit("/login", "/login", &[("email", "real@example.com"), ("password", "x")]).await;
    assert_eq!(p.status, 429, "junk is no way around the limit");
}

#[tokio::test]
async fn guessing_the_current_password_is_rate_limited() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    sign_up(&app, &b, "guess@example.com", "").await;
    let now = app.clock.now_ts();
    app.clock.advance(chrono::Duration::seconds(900 - now.rem_euclid(900)));
    b.sign_in("guess@example.com", PW).await;
    for _ in 0..5 {
        let p =
            b.submit("/account", "/account/password", &[("current_password", "wrong"), ("new_password", PW2)]).await;
        assert_eq!(p.status, 422);
    }
    let p = b.submit("/account", "/account/password", &[("current_password", PW), ("new_password", PW2)]).await;
    assert_eq!(p.status, 429, "the sixth try waits, even with the right password");
    assert!(p.alert().is_some_and(|a| a.contains("Try again in")));
}
