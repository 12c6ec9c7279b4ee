//! Probes for orchestrators and monitoring: `/healthz` (the process answers),
//! `/readyz` (the database and the store answer, within a short deadline) and
//! `/metrics` (Prometheus, to `server.metrics_allow` only).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, RETRY_AFTER};
use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use latchkey_core::Core;
use serde_json::json;

use crate::client_addr::ClientAddr;
use crate::error::{problem, problem_body};
use crate::metrics::Metrics;

/// How long a readiness probe waits for each dependency.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(json!({ "status": "ok" }))
}

/// "ok", "unreachable" or "timeout" for each dependency, probed together.
async fn probe(core: &Core) -> (&'static str, &'static str) {
    // Waiting for a pooled connection gives up a little before the probe's
    // own deadline, which also catches a connection that hangs: either way
    // the probe answers within PROBE_TIMEOUT.
    let db = async {
        match tokio::time::timeout(PROBE_TIMEOUT, core.db.ping(PROBE_TIMEOUT * 4 / 5)).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: database unreachable");
                "unreachable"
            }
            Err(_) => "timeout",
        }
    };
    let store = async {
        match core.store.ping(PROBE_TIMEOUT).await {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "readiness: session store unreachable");
                if matches!(e, latchkey_core::store::StoreError::Timeout(_)) { "timeout" } else { "unreachable" }
            }
        }
    };
    tokio::join!(db, store)
}

#[get("/readyz")]
pub async fn readyz(core: Data<Core>) -> HttpResponse {
    let (database, store) = probe(&core).await;
    let checks = json!({ "database": database, "store": store, "store_kind": core.store.kind() });
    let mut res = if database == "ok" && store == "ok" {
        HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks }))
    } else {
        let detail = match (database == "ok", store == "ok") {
            (false, false) => "Neither the database nor the session store is reachable.",
            (false, true) => "The database is not reachable.",
            _ => "The session store is not reachable.",
        };
        let mut res = problem_body(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": detail,
                "checks": checks,
            }),
        );
        res.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
        res
    };
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[get("/metrics")]
pub async fn metrics(core: Data<Core>, metrics: Data<Metrics>, client: ClientAddr) -> HttpResponse {
    let allowed = client.0.is_some_and(|ip| core.settings.server.metrics_allow.iter().any(|n| n.contains(&ip)));
    if !allowed {
        return problem(StatusCode::FORBIDDEN, "Forbidden", Some("Metrics are not served to this address."));
    }
    let (database, store) = probe(&core).await;
    metrics.db_up.set(i64::from(database == "ok"));
    metrics.store_up.set(i64::from(store == "ok"));
    metrics.hash_queue.set(i64::try_from(core.hasher.queue_depth()).unwrap_or(i64::MAX));
    let (open, idle) = core.db.pool_state();
    metrics.db_connections.set(i64::from(open));
    metrics.db_idle.set(i64::from(idle));
    metrics.sync_retention(&core.purged);
    match metrics.render() {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render metrics");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", None)
        }
    }
}
