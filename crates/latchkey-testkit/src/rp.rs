//! Relying-party helpers: registered clients, users, and a browser walking an
//! authorization request through sign-in and consent to the redirect URI.

use latchkey_core::accounts::{NewUser, User, create_user};
use latchkey_core::audit::Actor;
use latchkey_core::clients::{NewClient, create_client};

use crate::{Browser, Page, TestApp};

/// A client registered for a test. The redirect URI points at a port
/// nothing listens on: tests read the redirect, they never follow it.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

pub const REDIRECT_URI: &str = "http://localhost:9/callback";

impl TestApp {
    /// Registers a client with `REDIRECT_URI`.
    pub async fn client(&self, name: &str, public: bool, first_party: bool) -> TestClient {
        let created = create_client(
            &self.core,
            NewClient {
                name: name.to_owned(),
                redirect_uris: vec![REDIRECT_URI.to_owned()],
                public,
                first_party,
                ..Default::default()
            },
            &Actor::Cli,
        )
        .await
        .expect("client registers");
        TestClient {
            client_id: created.client.client_id,
            secret: created.client_secret,
            redirect_uri: REDIRECT_URI.to_owned(),
        }
    }

    /// A user with a password; `verified` says whether the address is confirmed.
    pub async fn user(&self, email: &str, password: &str, verified: bool) -> User {
        create_user(
            &self.core,
            NewUser {
                email: email.to_owned(),
                name: Some("Ada Lovelace".to_owned()),
                password: Some(password.to_owned()),
                email_verified: verified,
                admin: false,
            },
            &Actor::Cli,
        )
        .await
        .expect("user is created")
    }

    /// `url` with the public URL (the issuer, `localhost`) replaced by the
    /// address the test browser uses, so its cookies go along.
    pub fn local(&self, url: &str) -> String {
        match url.strip_prefix(&self.public_url) {
            Some(rest) => format!("{}{rest}", self.address),
            None if url.starts_with('/') => format!("{}{url}", self.address),
            None => url.to_owned(),
        }
    }
}

impl Browser {
    pub async fn get_url(&self, url: &str) -> Page {
        Self::page(self.client.get(url).send().await.expect("GET reaches the app")).await
    }

    /// Follows redirects within the app from `url`; stops at a page or at a
    /// redirect that leaves the app (its `location` is then set).
    pub async fn follow(&self, app: &TestApp, url: &str) -> Page {
        if !is_ours(app, url) {
            return Page {
                status: 302,
                location: Some(url.to_owned()),
                headers: Default::default(),
                body: String::new(),
            };
        }
        let mut next = app.local(url);
        for _ in 0..10 {
            let page = self.get_url(&next).await;
            match page.location.as_deref() {
                Some(loc) if is_ours(app, loc) => {
                    next = app.local(loc);
                }
                _ => return page,
            }
        }
        panic!("too many redirects from {url}");
    }

    /// Walks an authorization request: sign-in when asked (with `email` and
    /// `password`), consent when asked (allowed). Returns the redirect to
    /// the client.
    pub async fn authorize(&self, app: &TestApp, auth_url: &str, email: &str, password: &str) -> String {
        let mut page = self.follow(app, auth_url).await;
        for _ in 0..4 {
            if let Some(loc) = &page.location {
                return loc.clone();
            }
            assert_eq!(page.status, 200, "a page of the flow: {}", page.body);
            let csrf = page.csrf();
            if page.contains("action=\"/login\"") {
                let next = crate::hidden(&page.body, "next").unwrap_or_default().replace("&amp;", "&");
                let p = self
                    .post_raw("/login", &[("csrf", &csrf), ("email", email), ("password", password), ("next", &next)])
                    .await;
                assert_eq!(p.status, 303, "sign-in succeeds: {:?}", p.alert());
                page = self.follow(app, p.location.as_deref().unwrap_or("/")).await;
            } else if page.contains("action=\"/consent\"") {
                let flow = crate::hidden(&page.body, "flow").unwrap_or_default();
                let p = self.post_raw("/consent", &[("csrf", &csrf), ("flow", &flow), ("decision", "allow")]).await;
                assert_eq!(p.status, 303, "consent is accepted: {}", p.body);
                page = self.follow(app, p.location.as_deref().unwrap_or("/")).await;
            } else {
                panic!("unexpected page in the flow: {}", page.body);
            }
        }
        panic!("the flow did not end");
    }
}

fn is_ours(app: &TestApp, url: &str) -> bool {
    url.starts_with('/')
        || url.starts_with(&format!("{}/", app.public_url))
        || url.starts_with(&format!("{}/", app.address))
}

/// The query parameters of a redirect.
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).map(|u| u.query_pairs().into_owned().collect()).unwrap_or_default()
}
