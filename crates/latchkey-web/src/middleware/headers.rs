use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;
use latchkey_core::Core;

/// No inline script or style, nothing from elsewhere, never framed. Pages that
/// need a script nonce set their own Content-Security-Policy, which is kept.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Lets a page's form end at `uri`'s origin: a sign-in or consent form whose
/// answer redirects on to the client's redirect URI (browsers check
/// `form-action` along the redirect chain).
pub fn allow_form_redirect_to(res: &mut actix_web::HttpResponse, uri: &str) {
    let Some(origin) = latchkey_core::clients::origin_of(uri) else { return };
    let csp = CSP.replace("form-action 'self'", &format!("form-action 'self' {origin}"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Adds the security headers to every response.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = req.app_data::<Data<Core>>().is_some_and(|c| c.settings.server.https);
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    let defaults: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=(), payment=()"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    Ok(res)
}
