//! Prometheus metrics: requests by route and status, latency histograms,
//! the password-hashing queue, the database pool, whether the database
//! and the store answer, and what retention removed. Served at `/metrics`
//! to `server.metrics_allow` only.

use latchkey_core::maintenance::{Purge, PurgeTotals};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub hash_queue: IntGauge,
    pub db_connections: IntGauge,
    pub db_idle: IntGauge,
    pub db_up: IntGauge,
    pub store_up: IntGauge,
    /// What this instance's maintenance rounds removed, by `what`.
    pub retention_purged: IntCounterVec,
    /// Serialises [`Metrics::sync_retention`], so that two scrapes at once
    /// cannot add the same rows twice.
    retention_sync: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("latchkey".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered, by route pattern, method and status"),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to answer an HTTP request, by route pattern")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["route", "method"],
        )?;
        let hash_queue = IntGauge::new("password_hash_queue_depth", "Password hashing jobs queued or running")?;
        let db_connections = IntGauge::new("db_pool_connections", "Database connections open in the pool")?;
        let db_idle = IntGauge::new("db_pool_idle_connections", "Idle database connections in the pool")?;
        let db_up = IntGauge::new("database_up", "1 when the database answered the last probe")?;
        let store_up = IntGauge::new("store_up", "1 when the session store answered the last probe")?;
        let retention_purged = IntCounterVec::new(
            Opts::new(
                "retention_purged_total",
                "Rows removed by this instance's maintenance rounds, by what they were",
            ),
            &["what"],
        )?;
        // Every series exists from the start, at 0.
        for what in Purge::ALL {
            retention_purged.with_label_values(&[what.label()]);
        }
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(hash_queue.clone()))?;
        registry.register(Box::new(db_connections.clone()))?;
        registry.register(Box::new(db_idle.clone()))?;
        registry.register(Box::new(db_up.clone()))?;
        registry.register(Box::new(store_up.clone()))?;
        registry.register(Box::new(retention_purged.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            hash_queue,
            db_connections,
            db_idle,
            db_up,
            store_up,
            retention_purged,
            retention_sync: std::sync::Mutex::new(()),
        })
    }

    /// Brings the retention counters up to the core's totals (the
    /// maintenance rounds run outside the web server and count there).
    pub fn sync_retention(&self, totals: &PurgeTotals) {
        let _guard = self.retention_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for what in Purge::ALL {
            let counter = self.retention_purged.with_label_values(&[what.label()]);
            let behind = totals.get(what).saturating_sub(counter.get());
            if behind > 0 {
                counter.inc_by(behind);
            }
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.latency.with_label_values(&[route, method]).observe(seconds);
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
