//! The stylesheet and the one script, compiled into the binary (no CDN).

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, get};

const CSS: &str = include_str!("../../static/latchkey.css");
const JS: &str = include_str!("../../static/latchkey.js");

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
