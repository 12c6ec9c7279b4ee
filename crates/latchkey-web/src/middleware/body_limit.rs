use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Data;
use latchkey_core::Core;

use crate::error::problem;

/// Refuses a declared body larger than `server.max_body_bytes` before any
/// handler reads it (the extractors' own limits cover chunked bodies).
pub async fn limit_body(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
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
