//! Latchkey's integration tests: one binary, every test with a database of
//! its own (SQLite by default, PostgreSQL when LATCHKEY_TEST_DATABASE_URL is
//! set), talking to the real app over HTTP or to the real `latchkey` binary.

mod accounts;
mod admin_api;
mod admin_console;
mod backchannel;
mod cli;
mod config;
mod disposable;
mod github;
mod headers;
mod health;
mod keys;
mod logout;
mod magic;
mod metrics;
mod mfa;
mod oidc;
mod privacy;
mod retention;
mod serve;
mod store;
mod support;
mod tokens;
mod upstream;
mod webhooks;
