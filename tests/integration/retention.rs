//! Retention: what the maintenance round deletes, exactly at its limits, and
//! the `latchkey_retention_purged_total` counter of `/metrics`.

use chrono::{Duration, NaiveDateTime};
use latchkey_core::Clock;
use latchkey_core::accounts::{NewUser, create_user, find_by_email};
use latchkey_core::audit::Actor;
use latchkey_core::maintenance::{Round, run_once};
use latchkey_db::refresh_tokens::{FamilyRow, TokenRow, insert_family, insert_token};
use latchkey_testkit::{Browser, TestApp};

use crate::support::STRONG_PASSWORD;

async fn round(app: &TestApp) -> Round {
    run_once(&app.core).await.expect("round").expect("the lock was free")
}

/// `latchkey_retention_purged_total{what}` as `/metrics` shows it.
async fn purged_metric(app: &TestApp, what: &str) -> f64 {
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == "latchkey_retention_purged_total" && s.labels.get("what") == Some(what))
        .unwrap_or_else(|| panic!("no sample for {what}"));
    match sample.value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("not a counter: {other:?}"),
    }
}

async fn audit_count(app: &TestApp) -> usize {
    latchkey_core::audit::list(&app.core, None, None, 1000).await.expect("audit").len()
}

async fn new_user(app: &TestApp, email: &str, verified: bool, admin: bool) -> latchkey_core::accounts::User {
    create_user(
        &app.core,
        NewUser {
            email: email.to_owned(),
            password: Some(STRONG_PASSWORD.to_owned()),
            email_verified: verified,
            admin,
            ..Default::default()
        },
        &Actor::Cli,
    )
    .await
    .expect("user")
}

#[tokio::test]
async fn audit_events_go_after_the_configured_days_to_the_second() {
    let app = TestApp::builder()
        .env("LATCHKEY_RETENTION__AUDIT_DAYS", "10")
        .env("LATCHKEY_RETENTION__UNVERIFIED_DAYS", "0")
        .spawn()
        .await;
    for what in ["audit", "store", "refresh_tokens", "token_families", "signing_keys", "unverified_accounts"] {
        assert_eq!(purged_metric(&app, what).await, 0.0, "{what} is there from the start");
    }
    // One event now (T0), two a day later.
    new_user(&app, "first@example.com", true, false).await;
    app.clock.advance(Duration::days(1));
    new_user(&app, "second@example.com", true, false).await;
    new_user(&app, "third@example.com", true, false).await;
    assert_eq!(audit_count(&app).await, 3);

    // Exactly 10 days after the first event it is still inside the limit.
    app.clock.advance(Duration::days(9));
    assert_eq!(round(&app).await.audit_purged, 0);
    assert_eq!(audit_count(&app).await, 3);
    // One second later it is past it; the others are not.
    app.clock.advance(Duration::seconds(1));
    assert_eq!(round(&app).await.audit_purged, 1);
    assert_eq!(audit_count(&app).await, 2);
    assert_eq!(purged_metric(&app, "audit").await, 1.0);
    // The next day the two others go; nothing is counted twice.
    app.clock.advance(Duration::days(1));
    assert_eq!(round(&app).await.audit_purged, 2);
    assert_eq!(round(&app).await.audit_purged, 0);
    assert_eq!(audit_count(&app).await, 0);
    assert_eq!(purged_metric(&app, "audit").await, 3.0);
    assert_eq!(purged_metric(&app, "audit").await, 3.0, "a second scrape adds nothing");
    // The accounts themselves are untouched.
    assert_eq!(latchkey_core::accounts::list_users(&app.core).await.expect("users").len(), 3);
}

#[tokio::test]
async fn audit_retention_defaults_to_730_days() {
    let app = TestApp::builder().env("LATCHKEY_RETENTION__UNVERIFIED_DAYS", "0").spawn().await;
    new_user(&app, "old@example.com", true, false).await;
    app.clock.advance(Duration::days(730));
    assert_eq!(round(&app).await.audit_purged, 0);
    app.clock.advance(Duration::seconds(1));
    assert_eq!(round(&app).await.audit_purged, 1);
}

fn family(id: &str, client_id: &str, user_id: &str, created: NaiveDateTime, ends: NaiveDateTime) -> FamilyRow {
    FamilyRow {
        id: id.to_owned(),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        scopes: "openid offline_access".to_owned(),
        sid: format!("sid-{id}"),
        auth_time: created,
        amr: "[\"pwd\"]".to_owned(),
        created_at: created,
        expires_at: ends,
        revoked_at: None,
    }
}

fn token(hash: &str, family_id: &str, created: NaiveDateTime, idle_end: NaiveDateTime) -> TokenRow {
    TokenRow {
        token_hash: hash.to_owned(),
        family_id: family_id.to_owned(),
        created_at: created,
        idle_expires_at: idle_end,
        used_at: None,
    }
}

async fn refresh_rows(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let mut conn = app.db.connect();
    let tokens = ["a1", "a2", "b1", "c1"]
        .into_iter()
        .filter(|h| latchkey_db::refresh_tokens::find(&mut conn, h).expect("query").is_some())
        .map(str::to_owned)
        .collect();
    let user = find_by_email(&app.core, "rt@example.com").await.expect("lookup").expect("user");
    let families = latchkey_db::refresh_tokens::live_families(
        &mut conn,
        &user.id,
        None,
        chrono::NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date"),
    )
    .expect("query")
    .into_iter()
    .map(|f| f.id)
    .collect();
    (tokens, families)
}

#[tokio::test]
async fn refresh_tokens_and_families_go_when_expired_revoked_or_empty() {
    let app = TestApp::spawn().await;
    let client = app.client("App", false, true).await;
    let user = new_user(&app, "rt@example.com", true, false).await;
    let t0 = app.clock.now_naive();
    let day = Duration::days(1);
    {
        let mut conn = app.db.connect();
        // A: live for 90 days; a1 spent (refreshed into a2), idle until day 30; a2 until day 40.
        insert_family(&mut conn, &family("A", &client.client_id, &user.id, t0, t0 + day * 90)).expect("A");
        let mut a1 = token("a1", "A", t0, t0 + day * 30);
        a1.used_at = Some(t0 + Duration::hours(1));
        insert_token(&mut conn, &a1).expect("a1");
        insert_token(&mut conn, &token("a2", "A", t0 + Duration::hours(1), t0 + day * 40)).expect("a2");
        // B: ends after 2 days, its token with it.
        insert_family(&mut conn, &family("B", &client.client_id, &user.id, t0, t0 + day * 2)).expect("B");
        insert_token(&mut conn, &token("b1", "B", t0, t0 + day * 2)).expect("b1");
        // C: revoked now, its token still within its idle time.
        let mut c = family("C", &client.client_id, &user.id, t0, t0 + day * 90);
        c.revoked_at = Some(t0);
        insert_family(&mut conn, &c).expect("C");
        insert_token(&mut conn, &token("c1", "C", t0, t0 + day * 30)).expect("c1");
    }

    // A day after its revocation C is still kept (to the second) …
    app.clock.advance(day);
    let r = round(&app).await;
    assert_eq!((r.refresh_purged, r.families_purged), (0, 0));
    // … then goes, with its token.
    app.clock.advance(Duration::seconds(1));
    let r = round(&app).await;
    assert_eq!((r.refresh_purged, r.families_purged), (1, 1));
    assert!(!refresh_rows(&app).await.0.contains(&"c1".to_owned()));

    // B ends on day 2, and its token with it: kept to the second, then
    // both go (a family older than a day with no token left).
    app.clock.advance(t0 + day * 2 - app.clock.now_naive());
    let r = round(&app).await;
    assert_eq!((r.refresh_purged, r.families_purged), (0, 0));
    app.clock.advance(Duration::seconds(1));
    let r = round(&app).await;
    assert_eq!((r.refresh_purged, r.families_purged), (1, 1), "b1 past its idle end, B empty");
    assert_eq!(refresh_rows(&app).await, (vec!["a1".to_owned(), "a2".to_owned()], vec!["A".to_owned()]));

    // a1 (spent) stays to the second of its idle end, then goes; A keeps a2.
    app.clock.advance(t0 + day * 30 - app.clock.now_naive());
    let r = round(&app).await;
    assert_eq!((r.refresh_purged, r.families_purged), (0, 0));
    app.clock.advance(Duration::seconds(1));
    let r = round(&app).await;
    assert_eq!((r.refresh_purged, r.families_purged), (1, 0));
    assert_eq!(refresh_rows(&app).await, (vec!["a2".to_owned()], vec!["A".to_owned()]));

    // When a2 idles out nothing can refresh A any more: both go, though A's
    // absolute end is 50 days away.
    app.clock.advance(day * 10);
    let r = round(&app).await;
    assert_eq!((r.refresh_purged, r.families_purged), (1, 1));
    assert_eq!(refresh_rows(&app).await, (vec![], vec![]));

    assert_eq!(purged_metric(&app, "refresh_tokens").await, 4.0);
    assert_eq!(purged_metric(&app, "token_families").await, 3.0);
    // The user and the client are untouched.
    assert!(find_by_email(&app.core, "rt@example.com").await.expect("lookup").is_some());
}

#[tokio::test]
async fn a_fresh_family_is_not_taken_for_an_empty_one() {
    let app = TestApp::spawn().await;
    let client = app.client("App", false, true).await;
    let user = new_user(&app, "rt@example.com", true, false).await;
    let t0 = app.clock.now_naive();
    {
        let mut conn = app.db.connect();
        // A family without a token yet, younger than a day.
        insert_family(&mut conn, &family("A", &client.client_id, &user.id, t0, t0 + Duration::days(90))).expect("A");
    }
    app.clock.advance(Duration::hours(23));
    assert_eq!(round(&app).await.families_purged, 0);
    app.clock.advance(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(round(&app).await.families_purged, 1);
}

/// An identity linked to `user_id`.
fn identity(user_id: &str, at: NaiveDateTime) -> latchkey_db::identities::IdentityRow {
    latchkey_db::identities::IdentityRow {
        id: format!("id-{user_id}"),
        user_id: user_id.to_owned(),
        provider: "github".to_owned(),
        issuer: "https://github.com".to_owned(),
        subject: format!("sub-{user_id}"),
        email: None,
        created_at: at,
        last_used_at: at,
    }
}

/// A WebAuthn credential of `kind` for `user_id`.
fn credential(user_id: &str, kind: &str, at: NaiveDateTime) -> latchkey_db::mfa::CredentialRow {
    latchkey_db::mfa::CredentialRow {
        id: format!("cred-{user_id}"),
        user_id: user_id.to_owned(),
        kind: kind.to_owned(),
        credential_id: format!("cid-{user_id}"),
        name: "Key".to_owned(),
        credential: "{}".to_owned(),
        sign_count: 0,
        backup_eligible: false,
        backup_state: false,
        created_at: at,
        last_used_at: None,
    }
}

#[tokio::test]
async fn never_verified_accounts_go_after_30_days_and_no_others() {
    // Sessions may outlive the 30 days here, so that deleting one shows.
    let app = TestApp::builder()
        .env("LATCHKEY_LIFETIMES__SESSION_IDLE_SECS", &(90 * 86_400).to_string())
        .env("LATCHKEY_LIFETIMES__SESSION_ABSOLUTE_SECS", &(365 * 86_400).to_string())
        .spawn()
        .await;
    let t0 = app.clock.now_naive();
    let stale = new_user(&app, "stale@example.com", false, false).await;
    new_user(&app, "verified@example.com", true, false).await;
    new_user(&app, "admin@example.com", false, true).await;
    new_user(&app, "disabled@example.com", false, false).await;
    latchkey_core::accounts::set_disabled(&app.core, "disabled@example.com", true, &Actor::Cli).await.expect("disable");
    let linked = new_user(&app, "linked@example.com", false, false).await;
    let passkey = new_user(&app, "passkey@example.com", false, false).await;
    let keyed = new_user(&app, "keyed@example.com", false, false).await;
    {
        let mut conn = app.db.connect();
        latchkey_db::identities::insert(&mut conn, &identity(&linked.id, t0)).expect("identity");
        latchkey_db::mfa::credential_insert(&mut conn, &credential(&passkey.id, "passkey", t0)).expect("passkey");
        // A security key is a second factor only: no way in without the address.
        latchkey_db::mfa::credential_insert(&mut conn, &credential(&keyed.id, "security_key", t0)).expect("key");
    }
    let b = Browser::new(&app);
    b.sign_in("stale@example.com", STRONG_PASSWORD).await;
    app.clock.advance(Duration::days(1));
    new_user(&app, "recent@example.com", false, false).await;

    // Exactly 30 days after its creation the stale account is kept.
    app.clock.advance(Duration::days(29));
    assert_eq!(round(&app).await.unverified_purged, 0);
    assert_eq!(b.get("/account").await.status, 200, "its session is alive");
    // A second later it goes, with the security-key account of the same age.
    app.clock.advance(Duration::seconds(1));
    assert_eq!(round(&app).await.unverified_purged, 2);
    for gone in ["stale@example.com", "keyed@example.com"] {
        assert!(find_by_email(&app.core, gone).await.expect("lookup").is_none(), "{gone}");
    }
    for kept in [
        "verified@example.com",
        "admin@example.com",
        "disabled@example.com",
        "linked@example.com",
        "passkey@example.com",
        "recent@example.com",
    ] {
        assert!(find_by_email(&app.core, kept).await.expect("lookup").is_some(), "{kept}");
    }
    // Deleted like any account: the session ended, the event recorded, the
    // account's events pseudonymised.
    assert_eq!(b.get("/account").await.status, 303, "the session ended");
    let events = latchkey_core::audit::list(&app.core, None, None, 1000).await.expect("audit");
    let deleted: Vec<_> = events.iter().filter(|e| e.kind == "user.deleted").collect();
    assert_eq!(deleted.len(), 2, "{events:?}");
    for e in &deleted {
        assert_eq!(e.actor, "system:retention");
        assert_eq!(e.detail, serde_json::json!({ "reason": "unverified" }));
        assert!(e.user_id.as_deref().is_some_and(|u| u.starts_with("deleted:")), "{e:?}");
        assert_eq!(e.user_email, None);
    }
    assert!(
        !events
            .iter()
            .any(|e| e.user_id.as_deref() == Some(stale.id.as_str())
                || e.user_email.as_deref() == Some("stale@example.com")),
        "nothing names the account any more"
    );
    assert_eq!(purged_metric(&app, "unverified_accounts").await, 2.0);

    // The recent one goes a day later; the rest stay for good.
    app.clock.advance(Duration::days(1));
    assert_eq!(round(&app).await.unverified_purged, 1);
    app.clock.advance(Duration::days(400));
    assert_eq!(round(&app).await.unverified_purged, 0);
    assert_eq!(latchkey_core::accounts::list_users(&app.core).await.expect("users").len(), 5);
    assert_eq!(purged_metric(&app, "unverified_accounts").await, 3.0);
}

#[tokio::test]
async fn an_account_verified_in_time_is_kept_and_0_keeps_all() {
    let app = TestApp::builder().env("LATCHKEY_RETENTION__UNVERIFIED_DAYS", "7").spawn().await;
    let user = new_user(&app, "late@example.com", false, false).await;
    app.clock.advance(Duration::days(6));
    // The owner proves the address just in time (here, as a reset link would).
    let now = app.clock.now_naive();
    let id = user.id.clone();
    app.core.db.run(move |c| latchkey_db::users::set_email_verified(c, &id, now)).await.expect("verified");
    app.clock.advance(Duration::days(2));
    assert_eq!(round(&app).await.unverified_purged, 0);
    assert!(find_by_email(&app.core, "late@example.com").await.expect("lookup").is_some());

    let keep = TestApp::builder().env("LATCHKEY_RETENTION__UNVERIFIED_DAYS", "0").spawn().await;
    new_user(&keep, "kept@example.com", false, false).await;
    keep.clock.advance(Duration::days(3650));
    assert_eq!(round(&keep).await.unverified_purged, 0);
    assert!(find_by_email(&keep.core, "kept@example.com").await.expect("lookup").is_some());
    assert_eq!(purged_metric(&keep, "unverified_accounts").await, 0.0);
}
