//! One module per table. Each function takes a connection so callers can
//! compose them inside one transaction.

/// Runs the same diesel expression on whichever backend `conn` is.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Pg($c) => $body,
            DbConnection::Sqlite($c) => $body,
        }
    };
}

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod consents;
pub mod deliveries;
pub mod groups;
pub mod identities;
pub mod mail_outbox;
pub mod mfa;
pub mod refresh_tokens;
pub mod signing_keys;
pub mod store;
pub mod users;
pub mod webhooks;
