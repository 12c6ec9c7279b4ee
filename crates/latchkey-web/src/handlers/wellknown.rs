//! `/.well-known/security.txt` (RFC 9116): where to report vulnerabilities;
//! `/.well-known/jwks.json`: the public signing keys.

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use chrono::{Datelike, Duration, TimeZone, Utc};
use latchkey_core::Core;

/// The published signing keys (RFC 7517), readable from any origin and
/// cached for less time than a new key waits before it signs.
#[get("/.well-known/jwks.json")]
pub async fn jwks(core: Data<Core>) -> HttpResponse {
    match core.jwks_json().await {
        Ok(set) => HttpResponse::Ok()
            .content_type("application/jwk-set+json")
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .insert_header((
                actix_web::http::header::CACHE_CONTROL,
                format!("public, max-age={}", latchkey_core::keys::JWKS_MAX_AGE.as_secs()),
            ))
            .body(set.to_string()),
        Err(e) => actix_web::ResponseError::error_response(&crate::error::ApiError(e)),
    }
}

#[get("/.well-known/security.txt")]
pub async fn security_txt(core: Data<Core>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(render(&core))
}

/// The file, with an `Expires` a quarter of a year ahead (RFC 9116 asks for
/// less than a year), at midnight UTC so it is stable through the day.
pub fn render(core: &Core) -> String {
    let s = &core.settings.server;
    let later = core.clock.now() + Duration::days(90);
    let expires = Utc
        .with_ymd_and_hms(later.year(), later.month(), later.day(), 0, 0, 0)
        .single()
        .unwrap_or(later)
        .format("%Y-%m-%dT%H:%M:%SZ");
    let mut out = String::new();
    for c in &s.security_contact {
        out.push_str(&format!("Contact: {c}\n"));
    }
    out.push_str(&format!("Expires: {expires}\n"));
    out.push_str(&format!("Canonical: {}/.well-known/security.txt\n", s.public_url));
    out.push_str("Preferred-Languages: en\n");
    out
}
