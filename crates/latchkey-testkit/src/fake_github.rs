//! A stand-in for GitHub's OAuth app flow and REST API, on loopback: it
//! approves every authorization at once, checks the code, the client secret
//! and the PKCE verifier at the token endpoint, and serves `/user` and
//! `/user/emails` for the token it gave.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::web::{self, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use serde_json::{Value, json};

#[derive(Default)]
struct State {
    client_id: String,
    client_secret: String,
    user: Value,
    emails: Value,
    /// code → (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    tokens: Vec<String>,
}

pub struct FakeGitHub {
    pub base: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

async fn authorize(req: HttpRequest, st: Data<Arc<Mutex<State>>>) -> HttpResponse {
    let q: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let mut s = lock(&st);
    if q.get("client_id") != Some(&s.client_id) {
        return HttpResponse::BadRequest().body("unknown client");
    }
    let code = format!("code-{}", s.codes.len() + 1);
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    s.codes.insert(code.clone(), (redirect.clone(), q.get("code_challenge").cloned().unwrap_or_default()));
    let mut to = url::Url::parse(&redirect).expect("a redirect URI");
    to.query_pairs_mut().append_pair("code", &code).append_pair("state", q.get("state").map_or("", |v| v));
    HttpResponse::Found().insert_header(("location", to.to_string())).finish()
}

async fn token(req: HttpRequest, body: web::Bytes, st: Data<Arc<Mutex<State>>>) -> HttpResponse {
    let f: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let mut s = lock(&st);
    // The client authenticates with HTTP Basic (oauth2's default) or the form.
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let secret_ok = basic.as_deref() == Some(&format!("{}:{}", s.client_id, s.client_secret))
        || f.get("client_secret") == Some(&s.client_secret);
    let Some((redirect, challenge)) = f.get("code").and_then(|c| s.codes.remove(c)) else {
        return HttpResponse::Ok().json(json!({"error": "bad_verification_code"}));
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let computed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(latchkey_core::tokens::sha256(verifier.as_bytes()));
    if !secret_ok || f.get("redirect_uri") != Some(&redirect) || computed != challenge {
        return HttpResponse::Ok().json(json!({"error": "incorrect_client_credentials"}));
    }
    let t = format!("gho_{}", s.tokens.len() + 1);
    s.tokens.push(t.clone());
    HttpResponse::Ok().json(json!({"access_token": t, "token_type": "bearer", "scope": "read:user,user:email"}))
}

fn bearer_ok(req: &HttpRequest, s: &State) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| s.tokens.iter().any(|x| x == t))
}

async fn user_route(req: HttpRequest, st: Data<Arc<Mutex<State>>>) -> HttpResponse {
    let s = lock(&st);
    if !bearer_ok(&req, &s) {
        return HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"}));
    }
    HttpResponse::Ok().json(s.user.clone())
}

async fn emails_route(req: HttpRequest, st: Data<Arc<Mutex<State>>>) -> HttpResponse {
    let s = lock(&st);
    if !bearer_ok(&req, &s) {
        return HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"}));
    }
    HttpResponse::Ok().json(s.emails.clone())
}

impl FakeGitHub {
    /// Starts it for one OAuth app; `user` is the `/user` answer.
    pub async fn start(client_id: &str, client_secret: &str, user: Value, emails: Value) -> FakeGitHub {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            user,
            emails,
            ..Default::default()
        }));
        let data = Data::new(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(token))
                .route("/user", web::get().to(user_route))
                .route("/user/emails", web::get().to(emails_route))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeGitHub { base: format!("http://127.0.0.1:{port}"), state, handle }
    }

    /// Changes what `/user/emails` answers.
    pub fn set_emails(&self, emails: Value) {
        lock(&self.state).emails = emails;
    }

    /// The environment that points Latchkey's `providers.github` here.
    pub fn env(&self) -> Vec<(String, String)> {
        let s = lock(&self.state);
        vec![
            ("LATCHKEY_PROVIDERS__GITHUB__CLIENT_ID".into(), s.client_id.clone()),
            ("LATCHKEY_PROVIDERS__GITHUB__CLIENT_SECRET".into(), s.client_secret.clone()),
            ("LATCHKEY_PROVIDERS__GITHUB__AUTHORIZE_URL".into(), format!("{}/login/oauth/authorize", self.base)),
            ("LATCHKEY_PROVIDERS__GITHUB__TOKEN_URL".into(), format!("{}/login/oauth/access_token", self.base)),
            ("LATCHKEY_PROVIDERS__GITHUB__API_URL".into(), self.base.clone()),
            ("LATCHKEY_OUTBOUND__ALLOW_LOOPBACK".into(), "true".into()),
        ]
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        let h = self.handle.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}
