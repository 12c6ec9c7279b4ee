//! /metrics: Prometheus text, to allowed addresses only.

use latchkey_testkit::TestApp;

fn sample<'a>(
    scrape: &'a prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Sample> {
    scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

fn value(s: &prometheus_parse::Sample) -> f64 {
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

async fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.expect("body");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text format")
}

#[tokio::test]
async fn metrics_parse_and_count_requests() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    assert_eq!(app.get("/no/such/path").await.status(), 404);
    let s = scrape(&app).await;
    let healthz =
        sample(&s, "latchkey_http_requests_total", &[("route", "/healthz"), ("method", "GET"), ("status", "200")])
            .expect("requests by route and status");
    assert_eq!(value(healthz), 3.0);
    // Unknown paths share one label value: no unbounded cardinality.
    let unmatched =
        sample(&s, "latchkey_http_requests_total", &[("route", "unmatched"), ("status", "404")]).expect("404s");
    assert_eq!(value(unmatched), 1.0);
    assert!(!s.samples.iter().any(|x| x.labels.get("route") == Some("/no/such/path")));
    assert!(s.samples.iter().any(
        |x| x.metric == "latchkey_http_request_duration_seconds_count" && x.labels.get("route") == Some("/healthz")
    ));
    for gauge in
        ["latchkey_password_hash_queue_depth", "latchkey_db_pool_connections", "latchkey_db_pool_idle_connections"]
    {
        assert!(sample(&s, gauge, &[]).is_some(), "{gauge}");
    }
    assert_eq!(sample(&s, "latchkey_database_up", &[]).map(value), Some(1.0));
    assert_eq!(sample(&s, "latchkey_store_up", &[]).map(value), Some(1.0));
}

#[tokio::test]
async fn metrics_are_refused_to_other_addresses() {
    // Loopback is not in the allowed list: refused.
    let app = TestApp::builder().env("LATCHKEY_SERVER__METRICS_ALLOW", "192.0.2.0/24").spawn().await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body = r.text().await.expect("body");
    assert!(!body.contains("latchkey_http_requests_total"));

    // Behind a trusted proxy the forwarded client is what counts.
    let app = TestApp::builder().env("LATCHKEY_SERVER__TRUSTED_PROXIES", "127.0.0.1").spawn().await;
    let r = app.client.get(app.url("/metrics")).header("x-forwarded-for", "203.0.113.9").send().await.expect("req");
    assert_eq!(r.status(), 403);
    let r = app.client.get(app.url("/metrics")).header("x-forwarded-for", "127.0.0.1").send().await.expect("req");
    assert_eq!(r.status(), 200);
    // An untrusted peer's header changes nothing.
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/metrics")).header("x-forwarded-for", "203.0.113.9").send().await.expect("req");
    assert_eq!(r.status(), 200, "the peer is loopback and no proxy is trusted");
}
