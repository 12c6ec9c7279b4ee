//! The one route table.

use actix_web::web;

use crate::handlers::{account, assets, auth, health, oidc, wellknown};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(wellknown::security_txt)
        .service(wellknown::jwks)
        .service(assets::css)
        .service(assets::js)
        .service(assets::icon)
        .service(assets::favicon_ico)
        .service(auth::login_form)
        .service(auth::login)
        .service(auth::signup_form)
        .service(auth::signup)
        .service(auth::logout_form)
        .service(auth::logout)
        .service(auth::verify_form)
        .service(auth::verify)
        .service(auth::forgot_form)
        .service(auth::forgot)
        .service(auth::reset_form)
        .service(auth::reset)
        .service(account::account)
        .service(account::change_password)
        .service(account::end_session)
        .service(account::end_other_sessions)
        .service(account::resend_verification)
        .service(account::revoke_app)
        .service(oidc::discovery)
        .service(oidc::authorize_get)
        .service(oidc::authorize_post)
        .service(oidc::authorize_continue)
        .service(oidc::consent_form)
        .service(oidc::consent)
        .service(oidc::token)
        .service(oidc::token_preflight)
        .service(oidc::userinfo_get)
        .service(oidc::userinfo_post)
        .service(oidc::userinfo_preflight)
        .service(oidc::introspect)
        .service(oidc::revoke)
        .service(oidc::revoke_preflight);
}
