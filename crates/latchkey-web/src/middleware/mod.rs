//! Middleware every response passes through: request ids and access logs,
//! body-size limits, and the security headers of SPEC §5.

mod headers;
mod limits;
mod request_log;

pub use headers::{allow_form_redirect_to, security_headers};
pub use limits::{MAX_HEADER_BYTES, limit_request};
pub use request_log::{RequestId, request_log};
