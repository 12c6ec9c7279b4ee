//! A browser-less OpenID Connect relying party: the authorization-code flow
//! with PKCE and a password sign-in on the provider's HTML form, the code
//! exchange, and the refresh grant.
//!
//! It is generic over providers: it follows redirects from the authorization
//! endpoint until a page holds a form with a password field, posts that form
//! back with every hidden input (Latchkey's `csrf` and `next`, whatever
//! another provider puts there) plus the email and password, and follows
//! redirects again until one goes to the client's redirect URI with a code.
//! Cookies are kept per flow in a small jar, so one connection pool serves
//! every simulated browser.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use url::Url;

/// What the driver needs to act as one relying party of one provider.
#[derive(clap::Args, Clone, Debug)]
pub struct RpArgs {
    /// The provider's issuer (its discovery document is read from here).
    #[arg(long)]
    pub issuer: String,
    /// A confidential client with the authorization_code and refresh_token grants.
    #[arg(long)]
    pub client_id: String,
    #[arg(long, env = "BENCH_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: String,
    /// Registered redirect URI (never fetched: the flow stops at the redirect to it).
    #[arg(long, default_value = "http://localhost/cb")]
    pub redirect_uri: String,
    #[arg(long, default_value = "openid profile email offline_access")]
    pub scope: String,
    /// The user that signs in.
    #[arg(long)]
    pub email: String,
    #[arg(long, env = "BENCH_USER_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// An extra authorization request parameter, NAME=VALUE (repeatable):
    /// oidc-provider grants offline_access only with prompt=consent.
    #[arg(long = "auth-param", value_parser = name_value)]
    pub auth_params: Vec<(String, String)>,
}

fn name_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

/// The endpoints read from discovery.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub authorization: Url,
    pub token: Url,
    pub userinfo: Url,
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

/// One provider, one client, one user, over one shared HTTP connection pool.
#[derive(Clone)]
pub struct Rp {
    pub http: Client,
    pub args: RpArgs,
    pub endpoints: Endpoints,
    basic: String,
}

/// Cookies of one simulated browser. Paths and domains are ignored: every
/// flow talks to one host, and sending a cookie to more paths than its own
/// changes nothing for either provider.
#[derive(Clone, Debug, Default)]
pub struct Jar {
    cookies: BTreeMap<String, String>,
}

impl Jar {
    fn header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    fn update(&mut self, resp: &Response) {
        for value in resp.headers().get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|nv| nv.split_once('=')) else { continue };
            let attrs = value.to_ascii_lowercase();
            let gone = attrs.contains("max-age=0") || attrs.contains("1970") || val.trim().is_empty();
            if gone {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), val.trim().to_owned());
            }
        }
    }
}

/// An HTTP client for loopback benchmarking: no redirects followed (the flow
/// follows them itself), a large keep-alive pool, and `localhost` pinned to
/// 127.0.0.1 so no attempt goes to ::1 first.
pub fn http_client(issuer: &str) -> Result<Client, String> {
    let url = Url::parse(issuer).map_err(|e| format!("--issuer {issuer}: {e}"))?;
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .user_agent("latchkey-bench-driver");
    if url.host_str() == Some("localhost") {
        let port = url.port_or_known_default().unwrap_or(80);
        builder = builder.resolve("localhost", SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// A short description of a failed request for the error samples: the
/// method, the URL without its query, the status and the start of the body.
pub async fn describe(method: &str, url: &Url, resp: Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let mut short = url.clone();
    short.set_query(None);
    let snippet: String = body.chars().take(300).collect();
    format!("{method} {short} -> {status}: {}", snippet.replace('\n', " "))
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("the system random generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

impl Rp {
    pub async fn discover(http: Client, args: RpArgs) -> Result<Self, String> {
        let url = format!("{}/.well-known/openid-configuration", args.issuer.trim_end_matches('/'));
        let doc: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
            .error_for_status()
            .map_err(|e| format!("GET {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let endpoint = |name: &str| -> Result<Url, String> {
            let s = doc[name].as_str().ok_or_else(|| format!("discovery has no {name}"))?;
            Url::parse(s).map_err(|e| format!("discovery {name}: {e}"))
        };
        let endpoints = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            userinfo: endpoint("userinfo_endpoint")?,
        };
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic =
            format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(&args.client_id), enc(&args.client_secret))));
        Ok(Self { http, args, endpoints, basic })
    }

    /// The whole sign-in: authorization request, sign-in form (only when the
    /// jar holds no session), code, and its exchange. Returns the tokens.
    pub async fn sign_in(&self, jar: &mut Jar) -> Result<Tokens, String> {
        let verifier = random_b64(32);
        let challenge =
            URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
        let state = random_b64(12);
        let nonce = random_b64(12);
        let mut url = self.endpoints.authorization.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.args.client_id)
            .append_pair("redirect_uri", &self.args.redirect_uri)
            .append_pair("scope", &self.args.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .extend_pairs(&self.args.auth_params);
        let code = self.follow_to_code(jar, url, &state).await?;
        self.exchange(&code, &verifier).await
    }

    async fn follow_to_code(&self, jar: &mut Jar, start: Url, state: &str) -> Result<String, String> {
        let mut current = start;
        let mut post: Option<String> = None;
        let mut posted = false;
        for _ in 0..16 {
            let (method, mut req) = match post.take() {
                Some(body) => (
                    "POST",
                    self.http
                        .post(current.clone())
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body),
                ),
                None => ("GET", self.http.get(current.clone())),
            };
            if let Some(cookie) = jar.header() {
                req = req.header(COOKIE, cookie);
            }
            let resp = req.send().await.map_err(|e| format!("{method} {current}: {e}"))?;
            jar.update(&resp);
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{method} {current} -> {status} without Location"))?;
                let next = current.join(location).map_err(|e| format!("Location {location}: {e}"))?;
                if next.as_str().starts_with(&self.args.redirect_uri) {
                    let q: BTreeMap<String, String> = next.query_pairs().into_owned().collect();
                    if let Some(err) = q.get("error") {
                        return Err(format!(
                            "{method} {current} -> redirect with error={err} ({})",
                            q.get("error_description").map(String::as_str).unwrap_or("")
                        ));
                    }
                    if q.get("state").map(String::as_str) != Some(state) {
                        return Err(format!("{method} {current} -> redirect with a wrong state"));
                    }
                    return q.get("code").cloned().ok_or_else(|| format!("redirect without code: {next}"));
                }
                current = next;
                continue;
            }
            if status == StatusCode::OK && !posted {
                let html = resp.text().await.map_err(|e| format!("GET {current}: {e}"))?;
                let form =
                    find_password_form(&html).ok_or_else(|| format!("GET {current} -> 200 without a sign-in form"))?;
                let action = current.join(&form.action).map_err(|e| format!("form action {}: {e}", form.action))?;
                let mut pairs: Vec<(&str, &str)> = form.hidden.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                pairs.push((form.email_field.as_str(), &self.args.email));
                pairs.push((form.password_field.as_str(), &self.args.password));
                post = Some(form_body(&pairs));
                posted = true;
                current = action;
                continue;
            }
            return Err(describe(method, &current, resp).await);
        }
        Err(format!("too many redirects, last at {current}"))
    }

    async fn token_request(&self, body: String) -> Result<serde_json::Value, String> {
        let resp = self
            .http
            .post(self.endpoints.token.clone())
            .header(AUTHORIZATION, &self.basic)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", self.endpoints.token))?;
        if resp.status() != StatusCode::OK {
            return Err(describe("POST", &self.endpoints.token, resp).await);
        }
        resp.json().await.map_err(|e| format!("POST {}: {e}", self.endpoints.token))
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<Tokens, String> {
        let body = form_body(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.args.redirect_uri),
            ("code_verifier", verifier),
        ]);
        let json = self.token_request(body).await?;
        if json["id_token"].as_str().is_none() {
            return Err(format!("code exchange without id_token: {json}"));
        }
        let access_token =
            json["access_token"].as_str().ok_or_else(|| format!("code exchange without access_token: {json}"))?;
        Ok(Tokens {
            access_token: access_token.to_owned(),
            refresh_token: json["refresh_token"].as_str().map(str::to_owned),
        })
    }

    /// One refresh grant. Returns the refresh token to use next: the
    /// successor when the provider rotated it, else the same one.
    pub async fn refresh(&self, refresh_token: &str) -> Result<String, String> {
        let body = form_body(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]);
        let json = self.token_request(body).await?;
        if json["access_token"].as_str().is_none() {
            return Err(format!("refresh without access_token: {json}"));
        }
        Ok(json["refresh_token"].as_str().unwrap_or(refresh_token).to_owned())
    }

    /// GET userinfo with a bearer token; Ok when it answers 200.
    pub async fn userinfo(&self, access_token: &str) -> Result<(), String> {
        let url = &self.endpoints.userinfo;
        let resp = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, format!("Bearer {access_token}"))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if resp.status() != StatusCode::OK {
            return Err(describe("GET", url, resp).await);
        }
        // Read the body so the connection goes back to the pool.
        resp.bytes().await.map(|_| ()).map_err(|e| format!("GET {url}: {e}"))
    }
}

/// The form of a sign-in page: where it posts, its hidden inputs, and the
/// names of its email and password fields.
#[derive(Debug, PartialEq)]
pub struct LoginForm {
    pub action: String,
    pub hidden: Vec<(String, String)>,
    pub email_field: String,
    pub password_field: String,
}

/// Finds the first `<form>` that has a password input. A deliberately small
/// scanner: enough for the two providers' server-rendered pages.
pub fn find_password_form(html: &str) -> Option<LoginForm> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<form").map(|i| i + from) {
        let end = lower[start..].find("</form>").map(|i| i + start).unwrap_or(html.len());
        from = end;
        let tag_end = lower[start..].find('>').map(|i| i + start)?;
        let attrs = attributes(&html[start + 5..tag_end]);
        let action = attrs.get("action").cloned().unwrap_or_default();
        let mut hidden = Vec::new();
        let (mut email_field, mut password_field) = (None, None);
        let mut pos = tag_end;
        while let Some(i) = lower[pos..end].find("<input").map(|i| i + pos) {
            let close = lower[i..end].find('>').map(|j| j + i).unwrap_or(end);
            let a = attributes(&html[i + 6..close]);
            pos = close;
            let (Some(name), kind) = (a.get("name"), a.get("type").map(|t| t.to_ascii_lowercase())) else {
                continue;
            };
            match kind.as_deref() {
                Some("hidden") => hidden.push((name.clone(), a.get("value").cloned().unwrap_or_default())),
                Some("password") => password_field = Some(name.clone()),
                Some("email") | Some("text") if email_field.is_none() => email_field = Some(name.clone()),
                _ => {}
            }
        }
        if let Some(password_field) = password_field {
            return Some(LoginForm {
                action,
                hidden,
                email_field: email_field.unwrap_or_else(|| "email".to_owned()),
                password_field,
            });
        }
    }
    None
}

/// `name="value"` (or single quotes, or bare) attributes of one tag, names
/// lower-cased and values HTML-unescaped.
fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' && bytes[i] != b'/' {
            i += 1;
        }
        let name = tag[name_start..i].to_ascii_lowercase();
        if name.is_empty() {
            i += 1;
            continue;
        }
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            let value = if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let s = i + 1;
                let e = tag[s..].find(quote as char).map(|j| j + s).unwrap_or(tag.len());
                i = e + 1;
                &tag[s..e]
            } else {
                let s = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                &tag[s..i]
            };
            out.insert(name, unescape(value));
        } else {
            out.insert(name, String::new());
        }
    }
    out
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.find(';').filter(|&j| j <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_latchkey_style_form() {
        let html = r#"<form method="post" action="/logout"><input type="hidden" name="csrf" value="a"></form>
<form method="post" action="/login" novalidate>
<input type="hidden" name="csrf" value="x&#x2F;y&amp;z">
<input type="hidden" name="next" value="/authorize/continue?flow=abc&amp;d=1">
<input id="email" name="email" type="email" autocomplete="username" required value="">
<input id="password" name="password" type="password" required data-reveal>
<button type="submit" class="primary">Sign in</button></form>"#;
        let form = find_password_form(html).expect("form");
        assert_eq!(form.action, "/login");
        assert_eq!(
            form.hidden,
            vec![
                ("csrf".to_owned(), "x/y&z".to_owned()),
                ("next".to_owned(), "/authorize/continue?flow=abc&d=1".to_owned())
            ]
        );
        assert_eq!(form.email_field, "email");
        assert_eq!(form.password_field, "password");
    }

    #[test]
    fn no_form_without_password() {
        assert_eq!(find_password_form("<form action='/x'><input type=hidden name=a value=b></form>"), None);
    }
}
