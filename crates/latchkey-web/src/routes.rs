//! The one route table.

use actix_web::web;

use crate::handlers::{health, wellknown};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz).service(health::readyz).service(health::metrics).service(wellknown::security_txt);
}
