//! /healthz, /readyz and their behaviour when the database goes away.

use std::time::{Duration, Instant};

use latchkey_testkit::{TcpProxy, TestApp};

async fn ready_status(app: &TestApp) -> (u16, serde_json::Value) {
    let r = app.get("/readyz").await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// A proxy in front of the (loopback) service `url` names, and the same URL
/// pointing through it.
async fn proxied(url: &str, default_port: u16) -> (TcpProxy, url::Url) {
    let url = url::Url::parse(url).expect("url");
    let target = format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port().unwrap_or(default_port));
    let target =
        tokio::net::lookup_host(target).await.expect("resolve").find(|a| a.ip().is_loopback()).expect("loopback");
    let proxy = TcpProxy::start(target);
    let mut through = url.clone();
    through.set_host(Some("127.0.0.1")).expect("host");
    through.set_port(Some(proxy.addr.port())).expect("port");
    (proxy, through)
}

/// Polls until `want` or the deadline.
async fn wait_for_ready(app: &TestApp, want: u16, deadline: Duration) -> (u16, serde_json::Value) {
    let until = Instant::now() + deadline;
    loop {
        let got = ready_status(app).await;
        if got.0 == want || Instant::now() > until {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["status"], "ok");
    let (status, body) = ready_status(&app).await;
    assert_eq!(status, 200);
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn probes_refuse_other_methods() {
    let app = TestApp::spawn().await;
    let r = app.client.post(app.url("/healthz")).send().await.expect("request");
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap_or_default().starts_with("application/problem+json"));
}

#[tokio::test]
async fn readyz_is_503_while_a_sqlite_folder_is_missing_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("not-yet");
    let url = format!("sqlite://{}", folder.join("latchkey.db").display());
    let app = TestApp::builder().database_url(&url).spawn().await;
    let (status, body) = ready_status(&app).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["database"], "unreachable");
    assert_eq!(body["status"], 503);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("database")));
    // Nothing about the path or the driver's words leaks.
    assert!(!body.to_string().contains("not-yet"), "{body}");

    std::fs::create_dir_all(&folder).expect("create the folder");
    let (status, body) = wait_for_ready(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn readyz_follows_a_postgres_outage() {
    let Some(_) = latchkey_testkit::postgres_url() else {
        return; // PostgreSQL runs in the suite's second pass (.ci/run).
    };
    let db = std::sync::Arc::new(latchkey_testkit::TestDb::new());
    let (proxy, through) = proxied(&db.url, 5432).await;
    let app = TestApp::builder().db(db.clone()).database_url(through.as_str()).spawn().await;
    assert_eq!(wait_for_ready(&app, 200, Duration::from_secs(10)).await.0, 200);

    proxy.cut();
    let started = Instant::now();
    let (status, body) = wait_for_ready(&app, 503, Duration::from_secs(10)).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The probe itself answers quickly even while the database is gone.
    let t = Instant::now();
    assert_eq!(ready_status(&app).await.0, 503);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "probe took {:?} (bounded at 500 ms in code; slack for a loaded machine)",
        t.elapsed()
    );
    // Other requests still answer; work that needs the database fails
    // cleanly and quickly with "unavailable".
    assert_eq!(app.get("/healthz").await.status(), 200);
    let t = Instant::now();
    let err = latchkey_core::accounts::list_users(&app.core).await.expect_err("the database is cut");
    assert!(matches!(err, latchkey_core::CoreError::Unavailable("database")), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());

    proxy.restore();
    let (status, body) = wait_for_ready(&app, 200, Duration::from_secs(15)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn security_txt_follows_rfc_9116() {
    let app = TestApp::spawn().await;
    let r = app.get("/.well-known/security.txt").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/plain"));
    let text = r.text().await.expect("body");
    assert!(text.contains("Contact: mailto:security@localhost\n"), "{text}");
    assert!(text.contains(&format!("Canonical: {}/.well-known/security.txt\n", app.public_url)), "{text}");
    // The clock starts at 2026-11-23 12:00 UTC in tests: 90 days on, at midnight.
    assert!(text.contains("Expires: 2027-02-21T00:00:00Z\n"), "{text}");
    app.clock.advance(chrono::Duration::days(30));
    let text = app.get("/.well-known/security.txt").await.text().await.expect("body");
    assert!(text.contains("Expires: 2027-03-23T00:00:00Z\n"), "{text}");
}

#[tokio::test]
async fn security_txt_contact_is_configurable() {
    let app = TestApp::builder()
        .env("LATCHKEY_SERVER__SECURITY_CONTACT", "mailto:sec@example.org,https://example.org/report")
        .spawn()
        .await;
    let text = app.get("/.well-known/security.txt").await.text().await.expect("body");
    assert!(text.contains("Contact: mailto:sec@example.org\nContact: https://example.org/report\n"), "{text}");
}

#[tokio::test]
async fn readyz_follows_a_redis_outage() {
    let Some(redis) = latchkey_testkit::redis_url() else {
        return; // Redis runs in the suite's third pass (.ci/run).
    };
    let (proxy, through) = proxied(&redis, 6379).await;
    let app = TestApp::builder().sessions_url(through.as_str()).spawn().await;
    assert_eq!(app.core.store.kind(), "redis");
    let (status, body) = wait_for_ready(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "{body}");
    app.core.store.put("before", b"v", Duration::from_secs(600)).await.expect("put");

    proxy.cut();
    let (status, body) = wait_for_ready(&app, 503, Duration::from_secs(10)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_ne!(body["checks"]["store"], "ok");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("session store")), "{body}");
    let t = Instant::now();
    assert_eq!(ready_status(&app).await.0, 503);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "probe took {:?} (bounded at 500 ms in code; slack for a loaded machine)",
        t.elapsed()
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    let t = Instant::now();
    let err = app.core.store.get("before").await.expect_err("the store is cut");
    assert!(matches!(err, latchkey_core::store::StoreError::Unavailable(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());

    proxy.restore();
    let (status, body) = wait_for_ready(&app, 200, Duration::from_secs(15)).await;
    assert_eq!(status, 200, "{body}");
    // Recovered without a restart, and the data is still there.
    let until = Instant::now() + Duration::from_secs(10);
    let value = loop {
        match app.core.store.get("before").await {
            Ok(v) => break v,
            Err(_) if Instant::now() < until => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("store did not recover: {e}"),
        }
    };
    assert_eq!(value.as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn readyz_reports_the_store_kind() {
    let app = TestApp::spawn().await;
    let (status, body) = ready_status(&app).await;
    assert_eq!(status, 200);
    assert_eq!(body["checks"]["store"], "ok");
    let want = if latchkey_testkit::redis_url().is_some() { "redis" } else { "database" };
    assert_eq!(body["checks"]["store_kind"], want);
}
