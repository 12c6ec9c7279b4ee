//! Headers every response carries, limits on what a request may send.

use std::io::{Read, Write};

use latchkey_testkit::TestApp;

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz", "/.well-known/security.txt", "/no-such-page"] {
        let r = app.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h.get("strict-transport-security").is_none(), "{path}: no HSTS over http");
        assert!(h.get("x-request-id").is_some(), "{path}");
        assert!(h.get("server").is_none(), "{path}: no server banner");
    }
}

#[tokio::test]
async fn hsts_when_the_public_url_is_https() {
    let app = TestApp::builder().env("LATCHKEY_SERVER__PUBLIC_URL", "https://id.example.test").spawn().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.headers()["strict-transport-security"], "max-age=63072000; includeSubDomains");
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123_XYZ").send().await.expect("req");
    assert_eq!(r.headers()["x-request-id"], "abc-123_XYZ");
    for bad in ["has spaces", "<script>", &"x".repeat(65)] {
        let r = app.client.get(app.url("/healthz")).header("x-request-id", bad).send().await.expect("req");
        let id = r.headers()["x-request-id"].to_str().expect("id").to_owned();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 22);
    }
}

#[tokio::test]
async fn unknown_paths_are_404_problem_or_page() {
    let app = TestApp::spawn().await;
    let r = app.get("/nothing/here").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not Found");

    let r = app.client.get(app.url("/nothing/here")).header("accept", "text/html").send().await.expect("req");
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/html"));
    let page = r.text().await.expect("body");
    assert!(page.contains("Page not found"));
    assert!(!page.contains("/nothing/here"), "the path is not echoed");
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_any_handler() {
    let app = TestApp::spawn().await;
    let big = vec![b'a'; 65 * 1024];
    let r = app.client.post(app.url("/healthz")).body(big).send().await.expect("req");
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("65536")), "{body}");
    // Within the limit the request is routed as usual.
    let r = app.client.post(app.url("/healthz")).body(vec![b'a'; 1024]).send().await.expect("req");
    assert_eq!(r.status(), 404);
}

/// Sends raw bytes and returns the status line (empty if the server closed).
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn oversized_or_malformed_headers_are_refused() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    let results = tokio::task::spawn_blocking(move || {
        let huge = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
        let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
        for i in 0..200 {
            many.push_str(&format!("X-H{i}: v\r\n"));
        }
        many.push_str("\r\n");
        let bad_length = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\nConnection: close\r\n\r\n";
        [raw(addr, huge.as_bytes()), raw(addr, many.as_bytes()), raw(addr, bad_length.as_bytes())]
    })
    .await
    .expect("join");
    assert!(results[0].starts_with("HTTP/1.1 431"), "{:?}", results[0]);
    for (i, status) in results.iter().enumerate() {
        // Refused with a 4xx, or the connection closed: never served, never 5xx.
        assert!(status.is_empty() || status.contains(" 4"), "case {i}: {status:?}");
    }
    // The server is still fine afterwards.
    assert_eq!(app.get("/healthz").await.status(), 200);
}
