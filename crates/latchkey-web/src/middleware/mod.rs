//! Middleware every response passes through: request ids and access logs,
//! body-size limits, and the security headers of SPEC §5.

mod body_limit;
mod headers;
mod request_log;

pub use body_limit::limit_body;
pub use headers::security_headers;
pub use request_log::{RequestId, request_log};
