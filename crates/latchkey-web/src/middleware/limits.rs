use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Data;
use latchkey_core::Core;

use crate::error::problem;

/// The most header bytes (names and values) a request may carry. The HTTP
/// codec already caps the count at 96 and its buffer at 128 KiB; nothing we
/// serve needs more than a few KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses oversized headers (431) and a declared body larger than
/// `server.max_body_bytes` (413) before any handler runs; the extractors' own
/// limits cover chunked bodies.
pub async fn limit_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let header_bytes: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        let res = problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
            Some(&format!("Request headers are limited to {MAX_HEADER_BYTES} bytes.")),
        );
        return Ok(req.into_response(res).map_into_right_body());
    }
    let max = req.app_data::<Data<Core>>().map(|c| c.settings.server.max_body_bytes).unwrap_or(64 * 1024);
    let declared =
        req.headers().get(header::CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()));
    match declared {
        Some(None) => {
            let res = problem(StatusCode::BAD_REQUEST, "Bad Request", Some("The Content-Length header is malformed."));
            Ok(req.into_response(res).map_into_right_body())
        }
        Some(Some(n)) if n > max as u64 => {
            let res = problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large",
                Some(&format!("Request bodies are limited to {max} bytes.")),
            );
            Ok(req.into_response(res).map_into_right_body())
        }
        _ => Ok(next.call(req).await?.map_into_left_body()),
    }
}
