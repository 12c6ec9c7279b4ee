//! Webhooks: endpoints registered through the admin API and the CLI, events
//! born with their audit events, Standard Webhooks signatures, retries with
//! backoff until given up, nothing lost across a restart, and targets inside
//! the network refused with zero connection attempts (injected resolver and
//! transport: no traffic to private ranges).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use latchkey_core::audit::Actor;
use latchkey_core::outbound::{Outbound, Request, Resolver, Response, Transport};
use latchkey_core::webhooks::MAX_ATTEMPTS;
use latchkey_testkit::{Browser, HttpSink, ReceivedRequest, TestApp, TestDb};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{call, key};
use crate::support::{STRONG_PASSWORD, latchkey};

const EMAIL: &str = "ada@example.com";

/// Checks a received delivery's signature by hand (HMAC-SHA256 over
/// "id.timestamp.body" with the key after `whsec_`), its timestamp and
/// headers; returns the event.
fn verified(r: &ReceivedRequest, secret: &str) -> Value {
    let id = r.header("webhook-id").expect("webhook-id");
    let ts = r.header("webhook-timestamp").expect("webhook-timestamp");
    let sig = r.header("webhook-signature").expect("webhook-signature");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(id.starts_with("msg_") && !id.contains('.'), "{id}");
    assert!(ts.parse::<i64>().is_ok(), "{ts}");
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 secret");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), format!("{id}.{ts}.{}", r.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(tag.as_ref()));
    assert!(sig.split(' ').any(|s| s == expected), "signature {sig} != {expected}");
    let event: Value = serde_json::from_str(&r.body).expect("JSON body");
    assert_eq!(event["data"]["event_id"], id, "the body names the same event id");
    event
}

async fn app_with_sink() -> (TestApp, HttpSink) {
    let app = TestApp::builder().env("LATCHKEY_OUTBOUND__ALLOW_LOOPBACK", "true").spawn().await;
    let sink = HttpSink::start().await;
    (app, sink)
}

async fn hook(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let c = app.core.create_webhook(url, "test", &events, &Actor::Cli).await.expect("webhook");
    (c.webhook.id, c.secret)
}

fn wait_deadline() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(10)
}

#[tokio::test]
async fn sign_up_sign_in_and_deletion_are_delivered_signed() {
    let (app, sink) = app_with_sink().await;
    let (_, secret) = hook(&app, &sink.url, &["*"]).await;
    let user = app.user(EMAIL, STRONG_PASSWORD, true).await;
    let b = Browser::new(&app);
    b.submit("/login", "/login", &[("email", EMAIL), ("password", "wrong password entirely")]).await;
    b.sign_in(EMAIL, STRONG_PASSWORD).await;
    latchkey_core::accounts::delete_user(&app.core, EMAIL, &Actor::Cli).await.expect("delete");

    let got = sink.wait_for(4).await;
    assert_eq!(got.len(), 4, "{got:?}");
    // Delivery order is not promised (and the test clock stands still), so
    // the events are put in order by type.
    let mut events: Vec<Value> = sink.received().iter().map(|r| verified(r, &secret)).collect();
    let order = ["user.created", "signin.failed", "signin.succeeded", "user.deleted"];
    events.sort_by_key(|e| order.iter().position(|t| e["type"] == *t));
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(types, order);
    for e in &events {
        assert_eq!(e["data"]["email"], EMAIL, "{e}");
        assert!(e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    // A failed sign-in names the address tried, not an account.
    assert_eq!(events[1]["data"]["outcome"], "failed", "{}", events[1]);
    assert_eq!(events[1]["data"]["user_id"], Value::Null, "{}", events[1]);
    for e in [&events[0], &events[2], &events[3]] {
        assert_eq!(e["data"]["user_id"], user.id.as_str(), "{e}");
    }
    let received = sink.received();
    let mut ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id").unwrap_or_default()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one id per event");
    // Nothing else is mentioned: the delivery log says delivered for each.
    let id = app.core.list_webhooks().await.expect("list")[0].id.clone();
    let log = app.core.webhook_attempts(&id).await.expect("log");
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|a| a.outcome == "delivered" && a.status == Some(200) && a.attempt == 1), "{log:?}");
}

#[tokio::test]
async fn only_subscribed_enabled_endpoints_receive_and_a_rotated_secret_signs_at_once() {
    let (app, sink) = app_with_sink().await;
    let other = HttpSink::start().await;
    let (id, old) = hook(&app, &sink.url, &["signin.failed"]).await;
    let (other_id, _) = hook(&app, &other.url, &["user.deleted"]).await;
    app.user(EMAIL, STRONG_PASSWORD, true).await; // user.created: nobody subscribed
    let b = Browser::new(&app);
    b.submit("/login", "/login", &[("email", EMAIL), ("password", "wrong password entirely")]).await;
    let first = sink.wait_for(1).await;
    verified(&sink.received()[0], &old);
    assert_eq!(first.len(), 1);

    let new = app.core.rotate_webhook_secret(&id, &Actor::Cli).await.expect("rotate");
    assert_ne!(new, old);
    b.submit("/login", "/login", &[("email", EMAIL), ("password", "wrong password again")]).await;
    sink.wait_for(2).await;
    verified(&sink.received()[1], &new);

    // A disabled endpoint gets nothing: nothing is even queued for it.
    let change = latchkey_core::webhooks::WebhookChange { enabled: Some(false), ..Default::default() };
    app.core.update_webhook(&other_id, change, &Actor::Cli).await.expect("disable");
    latchkey_core::accounts::delete_user(&app.core, EMAIL, &Actor::Cli).await.expect("delete");
    app.core.deliveries_wakeup.notify_one();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.core.queued_deliveries().await.expect("count"), 0);
    assert!(app.core.webhook_attempts(&other_id).await.expect("log").is_empty());
    assert!(other.bodies().is_empty());
    assert_eq!(sink.bodies().len(), 2, "signin.failed only");
}

/// Waits until the endpoint's log has `n` attempts.
async fn attempts(app: &TestApp, id: &str, n: usize) -> Vec<latchkey_core::webhooks::WebhookAttempt> {
    let until = wait_deadline();
    loop {
        let log = app.core.webhook_attempts(id).await.expect("log");
        if log.len() >= n {
            return log;
        }
        assert!(std::time::Instant::now() < until, "expected {n} attempts, got {log:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_backoff_then_marked_failed() {
    let (app, sink) = app_with_sink().await;
    sink.answer(503);
    let (id, _) = hook(&app, &sink.url, &["user.created"]).await;
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    let log = attempts(&app, &id, 1).await;
    assert_eq!((log[0].outcome.as_str(), log[0].status, log[0].attempt), ("retrying", Some(503), 1));
    // Not before the backoff has passed.
    app.core.deliveries_wakeup.notify_one();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.core.webhook_attempts(&id).await.expect("log").len(), 1, "no retry before its time");
    for n in 2..=MAX_ATTEMPTS as usize {
        app.clock.advance(chrono::Duration::hours(11));
        app.core.deliveries_wakeup.notify_one();
        attempts(&app, &id, n).await;
    }
    let log = app.core.webhook_attempts(&id).await.expect("log");
    assert_eq!(log.len(), MAX_ATTEMPTS as usize);
    assert_eq!(log[0].outcome, "failed", "{log:?}");
    assert!(log[1..].iter().all(|a| a.outcome == "retrying"), "{log:?}");
    let ids: std::collections::HashSet<&str> = log.iter().map(|a| a.event_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "the same event id on every attempt");
    assert_eq!(app.core.queued_deliveries().await.expect("count"), 0, "given up: nothing waits");
    // Later events still go out once the endpoint recovers.
    sink.answer(200);
    app.user("grace@example.com", STRONG_PASSWORD, true).await;
    sink.wait_for(1).await;
}

#[tokio::test]
async fn a_restart_mid_retry_loses_nothing_and_keeps_the_event_id() {
    let db = Arc::new(TestDb::new());
    let sink = HttpSink::start().await;
    sink.answer(500);
    let builder = || TestApp::builder().db(db.clone()).env("LATCHKEY_OUTBOUND__ALLOW_LOOPBACK", "true");
    let mut app = builder().spawn().await;
    let (id, secret) = hook(&app, &sink.url, &["user.created"]).await;
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    let first = attempts(&app, &id, 1).await;
    app.stop();
    drop(app);

    sink.answer(200);
    let app = builder().spawn().await;
    app.clock.advance(chrono::Duration::minutes(1));
    app.core.deliveries_wakeup.notify_one();
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let r = &sink.received()[0];
    let event = verified(r, &secret);
    assert_eq!(event["type"], "user.created");
    assert_eq!(r.header("webhook-id"), Some(first[0].event_id.as_str()), "the retry carries the same id");
    let log = attempts(&app, &id, 2).await;
    assert_eq!((log[0].outcome.as_str(), log[0].attempt), ("delivered", 2));
}

/// Records lookups and connections; resolves from a table; every call
/// answers `status` (a redirect, say). Never touches the network.
#[derive(Default)]
struct Recorder {
    names: Vec<(&'static str, Vec<IpAddr>)>,
    connections: Mutex<Vec<SocketAddr>>,
    status: u16,
}

/// The recorder as the outbound client's resolver and transport.
#[derive(Clone)]
struct Rec(Arc<Recorder>);

impl Resolver for Rec {
    fn resolve(&self, host: String, _port: u16) -> BoxFuture<'static, Result<Vec<IpAddr>, String>> {
        let found = self.0.names.iter().find(|(n, _)| *n == host).map(|(_, a)| a.clone());
        Box::pin(async move { found.ok_or_else(|| "unknown name".to_owned()) })
    }
}

impl Transport for Rec {
    fn send(&self, _request: Request, addr: SocketAddr) -> BoxFuture<'static, Result<Response, String>> {
        self.0.connections.lock().unwrap_or_else(|p| p.into_inner()).push(addr);
        let status = self.0.status;
        Box::pin(async move {
            openidconnect::http::Response::builder()
                .status(status)
                .header("location", "http://10.0.0.7/inside")
                .body(Vec::new())
                .map_err(|e| e.to_string())
        })
    }
}

#[tokio::test]
async fn private_rebinding_and_redirecting_targets_are_refused_without_connecting() {
    let app = TestApp::builder().without_workers().spawn().await;
    let public: IpAddr = "93.184.216.34".parse().expect("ip");
    let recorder = Arc::new(Recorder {
        names: vec![
            ("private.example.test", vec!["192.168.1.20".parse().expect("ip")]),
            // Rebinding: one public answer and one inside; refused as a whole.
            ("rebind.example.test", vec![public, "10.1.2.3".parse().expect("ip")]),
            ("loopback.example.test", vec!["127.0.0.1".parse().expect("ip")]),
            ("redirect.example.test", vec![public]),
        ],
        connections: Mutex::new(Vec::new()),
        status: 307,
    });
    let mut core = app.core.clone();
    core.outbound = Outbound::new(Arc::new(Rec(recorder.clone())), Arc::new(Rec(recorder.clone())), false);
    let targets = [
        "http://private.example.test/hook",
        "https://rebind.example.test/hook",
        "http://loopback.example.test/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:10.0.0.1]/",
    ];
    let mut ids = Vec::new();
    for t in targets {
        ids.push(hook(&app, t, &["user.created"]).await.0);
    }
    let (redirect_id, _) = hook(&app, "https://redirect.example.test/hook", &["user.created"]).await;
    // Queued, then disabled before its turn: dropped, never sent.
    let (disabled_id, _) = hook(&app, "https://redirect.example.test/off", &["user.created"]).await;
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    let change = latchkey_core::webhooks::WebhookChange { enabled: Some(false), ..Default::default() };
    app.core.update_webhook(&disabled_id, change, &Actor::Cli).await.expect("disable");
    core.deliver_due_deliveries().await.expect("round");

    let log = core.webhook_attempts(&disabled_id).await.expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].outcome.as_str(), log[0].status), ("dropped", None), "{log:?}");

    for (id, t) in ids.iter().zip(targets) {
        let log = core.webhook_attempts(id).await.expect("log");
        assert_eq!(log.len(), 1, "{t}");
        assert_eq!(log[0].outcome, "retrying", "{t}");
        assert!(log[0].error.as_deref().is_some_and(|e| e.contains("is not a public address")), "{t}: {:?}", log[0]);
        assert_eq!(log[0].status, None, "{t}");
    }
    // The redirect is not followed: one connection, to the checked public
    // address, and the 307 counts as a failure to retry.
    let log = core.webhook_attempts(&redirect_id).await.expect("log");
    assert_eq!((log[0].outcome.as_str(), log[0].status), ("retrying", Some(307)), "{log:?}");
    let connections = recorder.connections.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(connections, vec![SocketAddr::new(public, 443)], "only the public address was ever connected to");
}

#[tokio::test]
async fn the_admin_api_manages_endpoints_with_good_and_bad_input() {
    let app = TestApp::spawn().await;
    let w = key(&app, &["webhooks:write", "webhooks:read"]).await;
    let r = key(&app, &["webhooks:read"]).await;
    let body = json!({ "url": "https://hooks.example.com/in", "events": ["user.created", "signin.failed"], "description": "CRM" });
    // The read scope cannot create; no key at all is 401.
    call(&app, Some(&r), Method::POST, "/webhooks", Some(body.clone())).await.refused(403);
    call(&app, None, Method::POST, "/webhooks", Some(body.clone())).await.refused(401);
    assert!(app.core.list_webhooks().await.expect("list").is_empty(), "nothing was created");

    let c = call(&app, Some(&w), Method::POST, "/webhooks", Some(body)).await;
    let created = c.ok(201).clone();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{created}");
    assert_eq!(created["events"], json!(["user.created", "signin.failed"]));
    assert_eq!(created["enabled"], true);

    // Reading never shows the secret.
    let list = call(&app, Some(&r), Method::GET, "/webhooks", None).await;
    let list = list.ok(200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert!(list["items"][0].get("secret").is_none(), "{list}");
    let one = call(&app, Some(&r), Method::GET, &format!("/webhooks/{id}"), None).await;
    let one = one.ok(200);
    assert!(one.get("secret").is_none() && one["attempts"] == json!([]), "{one}");
    let stored = latchkey_db::webhooks::find(&mut app.db.connect(), &id).expect("row").expect("exists");
    assert!(!stored.secret.contains(created["secret"].as_str().unwrap_or("-")), "the secret is sealed at rest");

    // Bad input: each refused with the field named, nothing changed.
    for (bad, field) in [
        (json!({ "url": "ftp://x.example/", "events": ["user.created"] }), "url"),
        (json!({ "url": "https://u:p@x.example/", "events": ["user.created"] }), "url"),
        (json!({ "url": "https://x.example/", "events": [] }), "events"),
        (json!({ "url": "https://x.example/", "events": ["user.exploded"] }), "events"),
        (json!({ "url": "https://x.example/", "events": ["*"], "description": "a".repeat(201) }), "description"),
    ] {
        let c = call(&app, Some(&w), Method::POST, "/webhooks", Some(bad.clone())).await;
        c.refused(422);
        assert_eq!(c.body["field"], field, "{bad}: {}", c.body);
    }
    let c = call(&app, Some(&w), Method::POST, "/webhooks", Some(json!({ "url": "https://x.example/" }))).await;
    c.refused(422);
    let c = call(
        &app,
        Some(&w),
        Method::POST,
        "/webhooks",
        Some(json!({ "url": "https://x.example/", "events": ["*"], "secret": "mine" })),
    )
    .await;
    c.refused(422);
    assert_eq!(app.core.list_webhooks().await.expect("list").len(), 1, "no bad input created anything");

    // Update, rotate, delete; unknown ids are 404.
    let c = call(
        &app,
        Some(&w),
        Method::PATCH,
        &format!("/webhooks/{id}"),
        Some(json!({ "enabled": false, "events": ["*"] })),
    )
    .await;
    let patched = c.ok(200);
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["events"].as_array().map(Vec::len), Some(9));
    let c =
        call(&app, Some(&w), Method::PATCH, &format!("/webhooks/{id}"), Some(json!({ "url": "gopher://x/" }))).await;
    c.refused(422);
    let c = call(&app, Some(&w), Method::POST, &format!("/webhooks/{id}/rotate-secret"), None).await;
    let rotated = c.ok(200);
    assert!(rotated["secret"].as_str().is_some_and(|s| s.starts_with("whsec_") && s != created["secret"]), "{rotated}");
    call(&app, Some(&r), Method::DELETE, &format!("/webhooks/{id}"), None).await.refused(403);
    for path in ["/webhooks/nope", "/webhooks/nope/rotate-secret"] {
        let method = if path.ends_with("secret") { Method::POST } else { Method::GET };
        call(&app, Some(&w), method, path, None).await.refused(404);
    }
    assert_eq!(call(&app, Some(&w), Method::DELETE, &format!("/webhooks/{id}"), None).await.status, 204);
    call(&app, Some(&w), Method::DELETE, &format!("/webhooks/{id}"), None).await.refused(404);
    assert!(app.core.list_webhooks().await.expect("list").is_empty());

    // Every change is in the audit log, without the secret.
    let (events, _) = latchkey_core::audit::page(&app.core, Default::default(), 0, 200).await.expect("audit");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for k in ["webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.deleted"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let text = serde_json::to_string(&events.iter().map(|e| &e.detail).collect::<Vec<_>>()).expect("json");
    assert!(!text.contains("whsec_"), "{text}");
}

#[test]
fn the_cli_creates_lists_logs_rotates_and_deletes_endpoints() {
    let db = TestDb::new();
    let args = [
        "webhook",
        "create",
        "--url",
        "https://hooks.example.com/in",
        "--event",
        "user.created,user.deleted",
        "--json",
    ];
    let created = latchkey(&db, &args, None).ok().json();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")));
    assert_eq!(created["events"], json!(["user.created", "user.deleted"]));

    let run = latchkey(&db, &["webhook", "list", "--json"], None).ok();
    assert!(!run.stdout.contains("whsec_"), "{}", run.stdout);
    let run = latchkey(&db, &["webhook", "list"], None).ok();
    assert!(run.stdout.contains("https://hooks.example.com/in") && run.stdout.contains("enabled"), "{}", run.stdout);
    let run = latchkey(&db, &["webhook", "deliveries", &id], None).ok();
    assert!(run.stdout.contains("No deliveries yet."), "{}", run.stdout);
    latchkey(&db, &["webhook", "disable", &id], None).ok();
    let listed = latchkey(&db, &["webhook", "list", "--json"], None).ok().json();
    assert_eq!(listed[0]["enabled"], false, "{listed}");
    let rotated = latchkey(&db, &["webhook", "rotate-secret", &id, "--json"], None).ok().json();
    assert!(rotated["secret"].as_str().is_some_and(|s| s.starts_with("whsec_") && s != created["secret"]));

    // Bad input: a one-line reason, a non-zero exit, nothing created.
    for (args, says) in [
        (vec!["webhook", "create", "--url", "ftp://x/", "--event", "user.created"], "url"),
        (vec!["webhook", "create", "--url", "https://x.example/", "--event", "user.exploded"], "events"),
        (vec!["webhook", "delete", "nope"], "no such webhook"),
        (vec!["webhook", "deliveries", "nope"], "no such webhook"),
        (vec!["webhook", "enable", "nope"], "no such webhook"),
    ] {
        latchkey(&db, &args, None).fails_with(says);
    }
    assert_eq!(latchkey(&db, &["webhook", "list", "--json"], None).ok().json().as_array().map(Vec::len), Some(1));
    latchkey(&db, &["webhook", "delete", &id], None).ok();
    let run = latchkey(&db, &["webhook", "list"], None).ok();
    assert!(run.stdout.contains("No webhooks."), "{}", run.stdout);
}

#[tokio::test]
async fn the_delivery_log_is_kept_thirty_days_by_maintenance() {
    let (app, sink) = app_with_sink().await;
    let (id, _) = hook(&app, &sink.url, &["user.created"]).await;
    app.user(EMAIL, STRONG_PASSWORD, true).await;
    sink.wait_for(1).await;
    attempts(&app, &id, 1).await;
    app.clock.advance(chrono::Duration::days(30) - chrono::Duration::minutes(1));
    let round = latchkey_core::maintenance::run_once(&app.core).await.expect("round").expect("ran");
    assert_eq!(round.webhook_attempts_purged, 0, "inside 30 days it stays");
    app.clock.advance(chrono::Duration::minutes(2));
    let round = latchkey_core::maintenance::run_once(&app.core).await.expect("round").expect("ran");
    assert_eq!(round.webhook_attempts_purged, 1);
    assert!(app.core.webhook_attempts(&id).await.expect("log").is_empty());
    assert_eq!(app.core.list_webhooks().await.expect("list").len(), 1, "the endpoint itself stays");
    let n = app.core.purged.get(latchkey_core::maintenance::Purge::WebhookAttempts);
    assert_eq!(n, 1, "counted for /metrics");
}
