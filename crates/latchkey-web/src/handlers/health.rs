//! Probes for orchestrators: `/healthz` (the process answers) and `/readyz`
//! (the database answers, within a short deadline).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use latchkey_core::Core;
use serde_json::json;

use crate::error::problem_body;

/// How long a readiness probe waits for each dependency.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(json!({ "status": "ok" }))
}

#[get("/readyz")]
pub async fn readyz(core: Data<Core>) -> HttpResponse {
    // The pool gives up after PROBE_TIMEOUT; the outer deadline catches a
    // connection that was handed out but hangs.
    let database = match tokio::time::timeout(PROBE_TIMEOUT * 2, core.db.ping(PROBE_TIMEOUT)).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer in time");
            "timeout"
        }
    };
    let checks = json!({ "database": database });
    let mut res = if database == "ok" {
        HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks }))
    } else {
        let mut res = problem_body(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "The database is not reachable.",
                "checks": checks,
            }),
        );
        res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        res
    };
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
