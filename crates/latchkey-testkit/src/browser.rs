//! A browser stand-in: a cookie jar, forms with their CSRF token, and the
//! mail the app sent, read from its outbox.

use std::time::{Duration, Instant};

use crate::TestApp;

/// One browser: its own cookie jar, following no redirects.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
    base: String,
}

/// A page as the browser received it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").unwrap_or_default()
    }

    pub fn contains(&self, s: &str) -> bool {
        self.body.contains(s)
    }

    /// The text of the first `role="alert"` element.
    pub fn alert(&self) -> Option<String> {
        let start = self.body.find("role=\"alert\">")? + "role=\"alert\">".len();
        let end = self.body[start..].find('<')? + start;
        Some(self.body[start..end].to_owned())
    }
}

/// The value of `<input … name="NAME" value="…">`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser::at(&app.address)
    }

    /// A browser pointed at `base` (another instance shares cookies by host).
    pub fn at(base: &str) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .user_agent(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            )
            .build()
            .expect("HTTP client");
        Browser { client, jar, base: base.to_owned() }
    }

    /// The same cookie jar against another base URL (another instance).
    pub fn with_base(&self, base: &str) -> Browser {
        Browser { client: self.client.clone(), jar: self.jar.clone(), base: base.to_owned() }
    }

    pub(crate) async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Page { status, location, headers, body }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(self.client.get(format!("{}{path}", self.base)).send().await.expect("GET reaches the app")).await
    }

    /// Posts `fields` as a form, as is (no CSRF added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let resp =
            self.client.post(format!("{}{path}", self.base)).form(fields).send().await.expect("POST reaches the app");
        Self::page(resp).await
    }

    /// Opens `form_page`, then posts `fields` to `action` with its CSRF token.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(form_page).await;
        let csrf = page.csrf();
        assert!(!csrf.is_empty(), "{form_page} has a CSRF token (status {})", page.status);
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all).await
    }

    /// Signs in; panics unless it lands where sign-ins land.
    pub async fn sign_in(&self, email: &str, password: &str) {
        let p = self.submit("/login", "/login", &[("email", email), ("password", password)]).await;
        assert_eq!(p.status, 303, "sign-in succeeds: {:?}", p.alert());
    }
}

/// A mail from the outbox.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl SentMail {
    /// The first link in the text part that contains `needle`.
    pub fn link(&self, needle: &str) -> Option<String> {
        self.text.split_whitespace().find(|w| w.contains(needle) && w.starts_with("http")).map(str::to_owned)
    }
}

impl TestApp {
    /// Every mail in the outbox so far, oldest first.
    pub fn mails(&self) -> Vec<SentMail> {
        let Some(dir) = self.core.mailer.outbox() else { return Vec::new() };
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).filter_map(|raw| parse_mail(&raw)).collect()
    }

    /// Waits (to a deadline) for a mail to `to` whose subject contains
    /// `subject`, beyond the first `skip` such mails.
    pub async fn wait_for_mail(&self, to: &str, subject: &str, skip: usize) -> SentMail {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<SentMail> = self
                .mails()
                .into_iter()
                .filter(|m| m.to.to_lowercase().contains(&to.to_lowercase()) && m.subject.contains(subject))
                .collect();
            if let Some(m) = found.into_iter().nth(skip) {
                return m;
            }
            assert!(Instant::now() < until, "no mail {subject:?} to {to} within 10 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (to a deadline) until every queued mail is delivered.
    pub async fn mail_delivered(&self) {
        // Mail queued after an answer (no enumeration by timing) first.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.core.background_idle()).await;
        let until = Instant::now() + Duration::from_secs(10);
        while self.core.queued_mail().await.unwrap_or(0) > 0 {
            assert!(Instant::now() < until, "queued mail was not delivered within 10 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// How many mails to `to` the outbox holds, once the queue is empty.
    pub async fn mail_count(&self, to: &str) -> usize {
        self.mail_delivered().await;
        self.mails().iter().filter(|m| m.to.to_lowercase().contains(&to.to_lowercase())).count()
    }
}

fn parse_mail(raw: &[u8]) -> Option<SentMail> {
    let parsed = mailparse::parse_mail(raw).ok()?;
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let mut text = String::new();
    let mut html = String::new();
    for part in parsed.subparts.iter() {
        let body = part.get_body().unwrap_or_default();
        if part.ctype.mimetype == "text/plain" {
            text = body;
        } else if part.ctype.mimetype == "text/html" {
            html = body;
        }
    }
    if parsed.subparts.is_empty() {
        text = parsed.get_body().unwrap_or_default();
    }
    Some(SentMail { to: header("To"), subject: header("Subject"), text, html })
}
