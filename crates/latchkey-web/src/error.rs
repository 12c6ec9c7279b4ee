//! The one place errors become HTTP. JSON APIs answer RFC 9457
//! `application/problem+json`; nothing carries internals: a `CoreError`'s
//! detail is logged, and the response says only what the caller can act on.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use latchkey_core::CoreError;
use serde_json::json;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem response.
pub fn problem(status: StatusCode, title: &str, detail: Option<&str>) -> HttpResponse {
    let mut body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
    });
    if let Some(d) = detail {
        body["detail"] = json!(d);
    }
    problem_body(status, body)
}

/// A problem with extension members already in `body`.
pub fn problem_body(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).insert_header((header::CONTENT_TYPE, PROBLEM_JSON)).body(body.to_string())
}

/// A `CoreError` on a JSON API.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(#[from] pub CoreError);

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match &self.0 {
            CoreError::Invalid { .. } | CoreError::WeakPassword(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::NotFound(_) => StatusCode::NOT_FOUND,
            CoreError::Conflict(_) => StatusCode::CONFLICT,
            CoreError::NotBuilt(_) => StatusCode::NOT_IMPLEMENTED,
            CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            CoreError::Busy | CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            CoreError::ReauthenticationRequired => StatusCode::UNAUTHORIZED,
            CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let title = status.canonical_reason().unwrap_or("Error");
        let mut res = match &self.0 {
            CoreError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                problem(status, title, Some("Something went wrong on our side. Try again later."))
            }
            CoreError::Invalid { field, message } => problem_body(
                status,
                json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": message, "field": field}),
            ),
            other => problem(status, title, Some(&other.to_string())),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let CoreError::RateLimited(wait) = &self.0
            && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// The answer for paths we do not serve: a small page for browsers, a
/// problem for everything else.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    let wants_html =
        req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_html {
        HttpResponse::NotFound().content_type("text/html; charset=utf-8").body(NOT_FOUND_PAGE)
    } else {
        problem(StatusCode::NOT_FOUND, "Not Found", Some("There is nothing at this address."))
    }
}

const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Not found · Latchkey</title></head>\
<body><main><h1>Page not found</h1><p>There is nothing at this address. Check the link and try again.</p>\
</main></body></html>";

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn render(e: CoreError) -> (StatusCode, Option<String>, serde_json::Value) {
        let res = ApiError(e).error_response();
        let status = res.status();
        let retry = res.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some(PROBLEM_JSON));
        let bytes = res.into_body().try_into_bytes().unwrap_or_default();
        (status, retry, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[test]
    fn unavailable_and_busy_are_503_with_retry_after() {
        let (s, retry, body) = render(CoreError::Unavailable("session store"));
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("5"));
        assert_eq!(body["detail"], "session store unavailable");
        let (s, retry, _) = render(CoreError::Busy);
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry.is_some());
    }

    #[test]
    fn internal_errors_never_show_their_detail() {
        let (s, _, body) = render(CoreError::Internal("SELECT * FROM users: syntax error at line 3".into()));
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("SELECT"), "{body}");
        assert_eq!(body["status"], 500);
    }

    #[test]
    fn input_errors_name_the_field() {
        let (s, _, body) = render(CoreError::invalid("Email", "Enter a valid email address."));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["field"], "Email");
        assert_eq!(body["detail"], "Enter a valid email address.");
        assert_eq!(render(CoreError::NotFound("client")).0, StatusCode::NOT_FOUND);
        assert_eq!(render(CoreError::Conflict("taken".into())).0, StatusCode::CONFLICT);
        assert_eq!(render(CoreError::NotBuilt("x".into())).0, StatusCode::NOT_IMPLEMENTED);
    }
}
