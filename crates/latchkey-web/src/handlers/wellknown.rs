//! `/.well-known/security.txt` (RFC 9116): where to report vulnerabilities.

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use chrono::{Datelike, Duration, TimeZone, Utc};
use latchkey_core::Core;

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
