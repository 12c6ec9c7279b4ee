//! The stylesheet and the one script, compiled into the binary (no CDN).

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, get};

const CSS: &str = include_str!("../../static/latchkey.css");
const JS: &str = include_str!("../../static/latchkey.js");
const ICON: &str = include_str!("../../static/favicon.svg");

#[get("/static/latchkey.css")]
pub async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

#[get("/static/latchkey.js")]
pub async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(JS)
}

#[get("/static/favicon.svg")]
pub async fn icon() -> HttpResponse {
    icon_response()
}

/// Browsers ask for /favicon.ico whatever the page says.
#[get("/favicon.ico")]
pub async fn favicon_ico() -> HttpResponse {
    icon_response()
}

fn icon_response() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "image/svg+xml"))
        .insert_header((CACHE_CONTROL, "public, max-age=86400"))
        .body(ICON)
}
