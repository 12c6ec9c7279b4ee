use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable_incoming(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| s.to_owned())
}

/// Gives every request an id (a sane incoming `X-Request-Id` is kept), logs
/// one line per request with method, path, status and latency — never the
/// query string, which may carry codes and tokens — and echoes the id.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(acceptable_incoming)
        .or_else(|| latchkey_core::tokens::random_id().ok())
        .unwrap_or_default();
    req.extensions_mut().insert(RequestId(id.clone()));
    let client = crate::client_addr::of_service_request(&req);
    let client = client.map(|ip| ip.to_string()).unwrap_or_else(|| "-".to_owned());
    let method = req.method().clone();
    let path = req.path().to_owned();
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let seconds = started.elapsed().as_secs_f64();
    // Microsecond precision is plenty for a log line.
    let millis = (seconds * 1_000_000.0).round() / 1000.0;
    let _enter = span.enter();
    match result {
        Ok(mut res) => {
            let status = res.status().as_u16();
            if let Some(m) = res.request().app_data::<actix_web::web::Data<crate::metrics::Metrics>>() {
                // Route patterns, not paths: bounded label values.
                let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
                m.observe(&route, method.as_str(), status, seconds);
            }
            if res.status().is_server_error() {
                tracing::warn!(%method, %path, status, latency_ms = millis, %client, "request");
            } else {
                tracing::info!(%method, %path, status, latency_ms = millis, %client, "request");
            }
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(REQUEST_ID.clone(), v);
            }
            Ok(res)
        }
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            tracing::warn!(%method, %path, status, latency_ms = millis, %client, "request failed");
            Err(e)
        }
    }
}
