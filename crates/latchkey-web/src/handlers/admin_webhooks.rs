//! The console's webhook pages: endpoints, what they receive, their secret
//! (shown once, on creation or rotation) and their delivery log. A child of
//! the console module, so it shares its guards and helpers.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use latchkey_core::webhooks::{EVENT_TYPES, Webhook, WebhookAttempt, WebhookChange};
use latchkey_core::{Core, CoreError};

use super::{
    Admin, admin, admin_form, back, done, field, fields, id_ok, keep_for_reveal, not_found, notice_of, reveal, say,
    status_of,
};
use crate::pages;

/// One checkbox of the event list.
struct EventOption {
    name: &'static str,
    on: bool,
}

fn options(chosen: &[String]) -> Vec<EventOption> {
    EVENT_TYPES.iter().map(|name| EventOption { name, on: chosen.iter().any(|c| c == name) }).collect()
}

#[derive(askama::Template)]
#[template(path = "admin_webhooks.html")]
struct WebhooksPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    webhooks: Vec<Webhook>,
    /// What the create form showed, kept after a refusal.
    url: String,
    description: String,
    events: Vec<EventOption>,
}

#[derive(askama::Template)]
#[template(path = "admin_webhook.html")]
struct WebhookPage {
    me: String,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    webhook: Webhook,
    events: Vec<EventOption>,
    attempts: Vec<WebhookAttempt>,
    new_secret: Option<String>,
}

fn events_of(f: &[(String, String)]) -> Vec<String> {
    f.iter().filter(|(k, _)| k == "event").map(|(_, v)| v.clone()).collect()
}

struct Form {
    url: String,
    description: String,
    chosen: Vec<String>,
}

async fn list_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    status: StatusCode,
    error: Option<String>,
    form: Form,
) -> HttpResponse {
    let webhooks = match core.list_webhooks().await {
        Ok(w) => w,
        Err(e) => return pages::error_page(&e),
    };
    pages::form_page(req, core, status, |csrf| WebhooksPage {
        me: a.user.email.clone(),
        nav: "webhooks",
        csrf,
        error,
        notice: notice_of(req),
        webhooks,
        events: options(&form.chosen),
        url: form.url,
        description: form.description,
    })
}

async fn detail_page(
    req: &HttpRequest,
    core: &Core,
    a: &Admin,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    new_secret: Option<String>,
) -> HttpResponse {
    let webhook = match core.find_webhook(id).await {
        Ok(Some(w)) => w,
        Ok(None) => return not_found(),
        Err(e) => return pages::error_page(&e),
    };
    let attempts = match core.webhook_attempts(id).await {
        Ok(a) => a,
        Err(e) => return pages::error_page(&e),
    };
    pages::form_page(req, core, status, |csrf| WebhookPage {
        me: a.user.email.clone(),
        nav: "webhooks",
        csrf,
        error,
        notice: notice_of(req),
        events: options(&webhook.events),
        webhook,
        attempts,
        new_secret,
    })
}

#[get("/admin/webhooks")]
pub async fn webhooks_index(req: HttpRequest, core: Data<Core>) -> HttpResponse {
    done(
        async {
            let a = admin(&req, &core, "/admin/webhooks").await?;
            let form = Form { url: String::new(), description: String::new(), chosen: Vec::new() };
            Ok(list_page(&req, &core, &a, StatusCode::OK, None, form).await)
        }
        .await,
    )
}

#[post("/admin/webhooks")]
pub async fn webhooks_create(req: HttpRequest, core: Data<Core>, body: Bytes) -> HttpResponse {
    done(
        async {
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), "/admin/webhooks", false).await?;
            let form = Form {
                url: field(&f, "url").to_owned(),
                description: field(&f, "description").to_owned(),
                chosen: events_of(&f),
            };
            match core.create_webhook(&form.url, &form.description, &form.chosen, &a.actor()).await {
                Ok(c) => {
                    keep_for_reveal(&core, &a, "webhook", &c.webhook.id, &c.secret).await?;
                    Ok(back(&format!("/admin/webhooks/{}", c.webhook.id), "webhook-created"))
                }
                Err(e) => Ok(list_page(&req, &core, &a, status_of(&e), Some(say(&e)), form).await),
            }
        }
        .await,
    )
}

#[get("/admin/webhooks/{id}")]
pub async fn webhook_show(req: HttpRequest, core: Data<Core>, id: Path<String>) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let a = admin(&req, &core, &format!("/admin/webhooks/{id}")).await?;
            let secret = reveal(&core, &a, "webhook", &id).await;
            Ok(detail_page(&req, &core, &a, &id, StatusCode::OK, None, secret).await)
        }
        .await,
    )
}

#[post("/admin/webhooks/{id}")]
pub async fn webhook_update(req: HttpRequest, core: Data<Core>, id: Path<String>, body: Bytes) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let here = format!("/admin/webhooks/{id}");
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), &here, false).await?;
            let change = WebhookChange {
                url: Some(field(&f, "url").to_owned()),
                description: Some(field(&f, "description").to_owned()),
                events: Some(events_of(&f)),
                enabled: Some(!field(&f, "enabled").is_empty()),
            };
            match core.update_webhook(&id, change, &a.actor()).await {
                Ok(_) => Ok(back(&here, "saved")),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(detail_page(&req, &core, &a, &id, status_of(&e), Some(say(&e)), None).await),
            }
        }
        .await,
    )
}

#[post("/admin/webhooks/{id}/rotate-secret")]
pub async fn webhook_rotate(req: HttpRequest, core: Data<Core>, id: Path<String>, body: Bytes) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), &format!("/admin/webhooks/{id}"), true).await?;
            match core.rotate_webhook_secret(&id, &a.actor()).await {
                Ok(secret) => {
                    keep_for_reveal(&core, &a, "webhook", &id, &secret).await?;
                    Ok(back(&format!("/admin/webhooks/{id}"), "webhook-secret-rotated"))
                }
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(detail_page(&req, &core, &a, &id, status_of(&e), Some(say(&e)), None).await),
            }
        }
        .await,
    )
}

#[post("/admin/webhooks/{id}/delete")]
pub async fn webhook_delete(req: HttpRequest, core: Data<Core>, id: Path<String>, body: Bytes) -> HttpResponse {
    done(
        async {
            id_ok(&id)?;
            let f = fields(&body)?;
            let a = admin_form(&req, &core, field(&f, "csrf"), &format!("/admin/webhooks/{id}"), true).await?;
            match core.delete_webhook(&id, &a.actor()).await {
                Ok(()) => Ok(back("/admin/webhooks", "webhook-deleted")),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Ok(detail_page(&req, &core, &a, &id, status_of(&e), Some(say(&e)), None).await),
            }
        }
        .await,
    )
}
