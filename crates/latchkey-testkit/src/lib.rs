//! Test kit: a database per test (a temporary SQLite file, or a PostgreSQL
//! database copied from a migrated template when `LATCHKEY_TEST_DATABASE_URL`
//! is set), the real app spawned on port 0, and a TCP proxy a test can cut.
//! Everything a test makes is removed when it is dropped.

mod app;
mod browser;
mod db;
mod fake_github;
mod http_sink;
mod proxy;
mod rp;
mod smtp;

pub use app::{TestApp, TestAppBuilder};
pub use browser::{Browser, Page, SentMail, hidden};
pub use db::TestDb;
pub use fake_github::FakeGitHub;
pub use http_sink::{HttpSink, ReceivedRequest};
pub use proxy::TcpProxy;
pub use rp::{REDIRECT_URI, TestClient, query_of};
pub use smtp::{Received, SmtpSink};

/// The PostgreSQL server tests use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("LATCHKEY_TEST_DATABASE_URL").ok().filter(|s| !s.trim().is_empty())
}

/// The Redis server tests use, if any.
pub fn redis_url() -> Option<String> {
    std::env::var("LATCHKEY_TEST_REDIS_URL").ok().filter(|s| !s.trim().is_empty())
}

/// A fresh base64 32-byte key.
pub fn random_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(latchkey_core::tokens::random_bytes::<32>().expect("system RNG"))
}
