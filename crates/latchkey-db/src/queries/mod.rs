//! One module per table. Each function takes a connection so callers can
//! compose them inside one transaction.

pub mod audit;
pub mod clients;
pub mod mail_outbox;
pub mod signing_keys;
pub mod store;
pub mod users;
