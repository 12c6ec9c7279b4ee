//! The admin console through HTTP, as a browser would: who may see it (admins
//! whose session showed a second factor), CSRF on every form, a recent
//! sign-in for destructive actions, and what each form changes.

use latchkey_core::audit::Actor;
use latchkey_core::sessions::RequestContext;
use latchkey_testkit::{Browser, TestApp};

use crate::support::STRONG_PASSWORD;

/// A browser holding a session of `email` made with these methods.
async fn browser_as(app: &TestApp, email: &str, admin: bool, amr: &[&str]) -> (Browser, String) {
    let user = app.user(email, STRONG_PASSWORD, true).await;
    if admin {
        let c = latchkey_core::admin::UserChanges { admin: Some(true), ..Default::default() };
        app.core.update_user(&user.id, c, &Actor::Cli).await.expect("admin");
    }
    let amr = amr.iter().map(|s| (*s).to_owned()).collect();
    let (id, _) = app.core.create_session(&user.id, amr, &RequestContext::default()).await.expect("session");
    let b = Browser::new(app);
    let url = url::Url::parse(&app.address).expect("url");
    b.jar.add_cookie_str(&format!("latchkey_session={id}; Path=/"), &url);
    (b, user.id)
}

#[tokio::test]
async fn only_admins_with_a_second_factor_get_in() {
    let app = TestApp::spawn().await;
    let stranger = Browser::new(&app);
    let p = stranger.get("/admin/users").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login?next=%2Fadmin%2Fusers")), "{:?}", p.location);

    let (user, _) = browser_as(&app, "ada@example.com", false, &["pwd", "otp", "mfa"]).await;
    let p = user.get("/admin/users").await;
    assert_eq!(p.status, 403);
    assert!(p.contains("Admins only"));

    let (one_factor, _) = browser_as(&app, "root@example.com", true, &["pwd"]).await;
    let p = one_factor.get("/admin/clients").await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login/mfa?next=")), "{:?}", p.location);

    let (admin, _) = browser_as(&app, "boss@example.com", true, &["pwd", "otp", "mfa"]).await;
    assert_eq!(admin.get("/admin").await.location.as_deref(), Some("/admin/users"));
    for page in ["/admin/users", "/admin/clients", "/admin/groups", "/admin/settings", "/admin/audit"] {
        let p = admin.get(page).await;
        assert_eq!(p.status, 200, "{page}");
        assert_eq!(p.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{page}");
    }
    for missing in ["/admin/users/nobody", "/admin/clients/nobody", "/admin/groups/nobody", "/admin/users/a%20b"] {
        assert_eq!(admin.get(missing).await.status, 404, "{missing}");
    }
}

#[tokio::test]
async fn forms_need_csrf_and_destructive_ones_a_recent_sign_in() {
    let app = TestApp::spawn().await;
    let (admin, _) = browser_as(&app, "boss@example.com", true, &["pwd", "otp", "mfa"]).await;
    let target = app.user("ada@example.com", STRONG_PASSWORD, true).await;
    let path = format!("/admin/users/{}", target.id);
    let page = admin.get(&path).await;
    assert_eq!(page.status, 200);
    // No token, a wrong one: refused, nothing changes.
    assert_eq!(admin.post_raw(&format!("{path}/disable"), &[]).await.status, 403);
    assert_eq!(admin.post_raw(&format!("{path}/disable"), &[("csrf", "forged")]).await.status, 403);
    assert!(!app.core.find_user(&target.id).await.expect("find").expect("user").disabled);

    // Eleven minutes later, disabling asks for a sign-in first; enabling does not.
    app.clock.advance(chrono::Duration::minutes(11));
    let page = admin.get(&path).await;
    let p = admin.post_raw(&format!("{path}/disable"), &[("csrf", &page.csrf())]).await;
    assert_eq!(p.status, 303);
    assert!(p.location.as_deref().is_some_and(|l| l.starts_with("/login?notice=reauthenticate")), "{:?}", p.location);
    assert!(!app.core.find_user(&target.id).await.expect("find").expect("user").disabled);
    let p = admin.post_raw(&format!("{path}/resend-verification"), &[("csrf", &page.csrf())]).await;
    assert_eq!(p.status, 409, "already verified: said on the page");
    assert!(p.alert().is_some_and(|a| a.contains("already verified")));
    assert_eq!(admin.post_raw(&format!("{path}/explode"), &[("csrf", &page.csrf())]).await.status, 404);
}

#[tokio::test]
async fn an_admin_disables_a_user_makes_a_client_and_a_group() {
    let app = TestApp::spawn().await;
    let (admin, admin_id) = browser_as(&app, "boss@example.com", true, &["pwd", "otp", "mfa"]).await;
    let target = app.user("ada@example.com", STRONG_PASSWORD, true).await;
    let victim = Browser::new(&app);
    victim.sign_in("ada@example.com", STRONG_PASSWORD).await;
    assert_eq!(victim.get("/account").await.status, 200);

    let list = admin.get("/admin/users?q=ada%40example").await;
    assert!(list.contains(&format!("href=\"/admin/users/{}\"", target.id)));
    assert!(!list.contains(&format!("href=\"/admin/users/{admin_id}\"")), "the search filters");
    let path = format!("/admin/users/{}", target.id);
    let page = admin.get(&path).await;
    let p = admin.post_raw(&format!("{path}/disable"), &[("csrf", &page.csrf())]).await;
    assert_eq!(p.location.as_deref(), Some(format!("{path}?notice=user-disabled").as_str()));
    let after = admin.get(p.location.as_deref().unwrap_or_default()).await;
    assert!(after.contains("User disabled: their sessions and tokens have ended."));
    assert_eq!(victim.get("/account").await.status, 303, "their session is over");
    // A crafted notice shows nothing of its own.
    let crafted = admin.get(&format!("{path}?notice=Call+0800+now")).await;
    assert!(!crafted.contains("0800"));
    // An admin cannot lock themselves out.
    let me = admin.get(&format!("/admin/users/{admin_id}")).await;
    let p = admin.post_raw(&format!("/admin/users/{admin_id}/disable"), &[("csrf", &me.csrf())]).await;
    assert_eq!(p.status, 409);

    // A client: bad input is said and creates nothing; good input shows the secret once.
    let clients = admin.get("/admin/clients").await;
    let bad = admin
        .post_raw(
            "/admin/clients",
            &[
                ("csrf", &clients.csrf()),
                ("name", "Evil"),
                ("redirect_uris", "http://evil.example.com/cb"),
                ("grant_authorization_code", "1"),
                ("signing_alg", "RS256"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.alert().is_some_and(|a| a.contains("must use https")), "{:?}", bad.alert());
    assert!(latchkey_core::clients::list_clients(&app.core).await.expect("list").is_empty());
    let good = admin
        .post_raw(
            "/admin/clients",
            &[
                ("csrf", &clients.csrf()),
                ("name", "Wiki"),
                ("redirect_uris", "https://wiki.example.com/cb\r\n\r\n"),
                ("grant_authorization_code", "1"),
                ("grant_refresh_token", "1"),
                ("signing_alg", "ES256"),
                ("require_mfa", "1"),
            ],
        )
        .await;
    // The answer is a redirect: the list shows the secret once, a reload
    // shows it no more and makes nothing twice.
    assert_eq!(good.status, 303);
    assert_eq!(good.location.as_deref(), Some("/admin/clients?notice=client-created"));
    let shown = admin.get("/admin/clients?notice=client-created").await;
    assert!(shown.contains("client_secret: <code class=\"wrap\">"), "the secret is shown once");
    let again = admin.get("/admin/clients?notice=client-created").await;
    assert!(!again.contains("client_secret: <code"), "and not again");
    let made = latchkey_core::clients::list_clients(&app.core).await.expect("list");
    assert_eq!(made.len(), 1);
    assert_eq!(
        (made[0].redirect_uris.clone(), made[0].signing_alg.as_str(), made[0].require_mfa),
        (vec!["https://wiki.example.com/cb".to_owned()], "ES256", true)
    );

    // A rotated client secret and a new API key are shown the same way:
    // once, on the page the answer redirects to.
    let cid = made[0].client_id.clone();
    let cpage = admin.get(&format!("/admin/clients/{cid}")).await;
    let p = admin.post_raw(&format!("/admin/clients/{cid}/rotate-secret"), &[("csrf", &cpage.csrf())]).await;
    assert_eq!(p.status, 303);
    assert!(admin.get(&format!("/admin/clients/{cid}")).await.contains("New client secret"));
    assert!(!admin.get(&format!("/admin/clients/{cid}")).await.contains("New client secret"));
    let settings = admin.get("/admin/settings").await;
    let p = admin
        .post_raw("/admin/api-keys", &[("csrf", &settings.csrf()), ("name", "Bot"), ("scope", "users:read")])
        .await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/admin/settings?notice=key-created")));
    assert!(admin.get("/admin/settings").await.contains("New key (shown once"));
    assert!(!admin.get("/admin/settings").await.contains("New key (shown once"));
    assert_eq!(app.core.list_api_keys().await.expect("keys").len(), 1, "one key, however often the page is opened");

    // A group that requires MFA, with the user in it.
    let groups = admin.get("/admin/groups").await;
    let p =
        admin.post_raw("/admin/groups", &[("csrf", &groups.csrf()), ("name", "Finance"), ("require_mfa", "1")]).await;
    assert_eq!(p.status, 303);
    let gpath = p.location.as_deref().unwrap_or_default().split('?').next().unwrap_or_default().to_owned();
    let gpage = admin.get(&gpath).await;
    let p =
        admin.post_raw(&format!("{gpath}/members/add"), &[("csrf", &gpage.csrf()), ("email", "ADA@example.com")]).await;
    assert_eq!(p.status, 303);
    assert!(app.core.mfa_required_for(&target.id).await.expect("required"));
    let p = admin
        .post_raw(&format!("{gpath}/members/add"), &[("csrf", &gpage.csrf()), ("email", "nobody@example.com")])
        .await;
    assert_eq!(p.status, 422);

    // The audit log shows what the admin did, as the admin.
    let audit = admin.get("/admin/audit?user=ada%40example.com").await;
    assert_eq!(audit.status, 200);
    assert!(audit.contains("user.disabled") && audit.contains(&format!("admin:{admin_id}")));
    assert!(audit.contains("group.member_added"));
    assert_eq!(admin.get("/admin/audit?since=yesterday").await.status, 400);
}
