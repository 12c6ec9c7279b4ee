//! Per-worker latency recording and the JSON summary every load command prints.

use std::time::Duration;

/// How many error descriptions are kept (the first ones, distinct).
const SAMPLES: usize = 5;

#[derive(Default)]
pub struct Recorder {
    latencies_us: Vec<u64>,
    errors: u64,
    samples: Vec<String>,
}

impl Recorder {
    pub fn ok(&mut self, took: Duration) {
        self.latencies_us.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < SAMPLES && !self.samples.contains(&what) {
            self.samples.push(what);
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        for s in other.samples {
            if self.samples.len() < SAMPLES && !self.samples.contains(&s) {
                self.samples.push(s);
            }
        }
    }

    /// One JSON object: successful requests per second over `elapsed`, the
    /// 50th and 99th percentile of the successful ones, the error count and
    /// the first few error descriptions (also written to standard error).
    pub fn summary(mut self, scenario: &str, elapsed: Duration) -> serde_json::Value {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * self.latencies_us.len() as f64).ceil() as usize;
            let idx = rank.clamp(1, self.latencies_us.len()) - 1;
            self.latencies_us[idx] as f64 / 1000.0
        };
        for s in &self.samples {
            eprintln!("bench-driver: {scenario}: error: {s}");
        }
        let secs = elapsed.as_secs_f64().max(1e-9);
        serde_json::json!({
            "scenario": scenario,
            "requests": self.latencies_us.len(),
            "duration_s": secs,
            "rps": self.latencies_us.len() as f64 / secs,
            "p50_ms": pct(50.0),
            "p99_ms": pct(99.0),
            "errors": self.errors,
            "error_samples": self.samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rate() {
        let mut r = Recorder::default();
        for ms in 1..=100 {
            r.ok(Duration::from_millis(ms));
        }
        r.error("x".to_owned());
        r.error("x".to_owned());
        let s = r.summary("t", Duration::from_secs(2));
        assert_eq!(s["requests"], 100);
        assert_eq!(s["rps"], 50.0);
        assert_eq!(s["p50_ms"], 50.0);
        assert_eq!(s["p99_ms"], 99.0);
        assert_eq!(s["errors"], 2);
        assert_eq!(s["error_samples"].as_array().map(Vec::len), Some(1));
    }
}
