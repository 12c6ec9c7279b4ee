//! The one outbound HTTP client for calls made on others' behalf:
//! back-channel logout, webhooks and upstream providers.
//!
//! A URL given by a client or an admin must not reach inside the network we
//! run in, so: http(s) only, no credentials in the URL, the host name is
//! resolved here and every address it gives is checked (loopback, private,
//! link-local, unique-local, CGNAT, multicast, unspecified and the cloud
//! metadata addresses are refused), then the connection goes to the checked
//! address and nowhere else (no second resolution, no redirects), with a
//! 10 s timeout. Loopback is allowed only by configuration (tests).
//!
//! The resolver and the transport are traits, so tests prove each refusal
//! with zero connection attempts; they never send traffic to private ranges.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use url::{Host, Url};

pub const TIMEOUT: Duration = Duration::from_secs(10);
/// A URL longer than this is refused.
const MAX_URL: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("not an http(s) URL without credentials")]
    BadUrl,
    #[error("{0} is not a public address")]
    Forbidden(IpAddr),
    #[error("the host name did not resolve: {0}")]
    Resolve(String),
    #[error("{0}")]
    Transport(String),
}

/// Names to addresses.
pub trait Resolver: Send + Sync {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, Result<Vec<IpAddr>, String>>;
}

/// An HTTP request and response as the OAuth crates pass them.
pub type Request = openidconnect::http::Request<Vec<u8>>;
pub type Response = openidconnect::http::Response<Vec<u8>>;

/// Sends one request, connecting to `addr` only.
pub trait Transport: Send + Sync {
    fn send(&self, request: Request, addr: SocketAddr) -> BoxFuture<'static, Result<Response, String>>;
}

/// Response bodies larger than this are refused.
pub const MAX_RESPONSE: usize = 1 << 20;

/// The system resolver (through tokio).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, Result<Vec<IpAddr>, String>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| e.to_string())?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// reqwest over rustls (aws-lc-rs, WebPKI roots), pinned to the checked
/// address, no redirects, no proxies from the environment.
pub struct HttpTransport {
    tls: rustls::ClientConfig,
}

impl HttpTransport {
    pub fn new() -> Result<HttpTransport, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpTransport { tls })
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: Request, addr: SocketAddr) -> BoxFuture<'static, Result<Response, String>> {
        let tls = self.tls.clone();
        Box::pin(async move {
            let url = Url::parse(&request.uri().to_string()).map_err(|e| e.to_string())?;
            let host = url.host_str().unwrap_or_default().to_owned();
            let client = reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(TIMEOUT)
                .resolve(&host, addr)
                .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())?;
            let (parts, body) = request.into_parts();
            let mut builder = client.request(parts.method, url);
            for (name, value) in &parts.headers {
                builder = builder.header(name, value);
            }
            let mut resp = builder.body(body).send().await.map_err(|e| e.to_string())?;
            let mut out = openidconnect::http::Response::builder().status(resp.status().as_u16());
            for (name, value) in resp.headers() {
                out = out.header(name.as_str(), value.as_bytes());
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                if bytes.len() + chunk.len() > MAX_RESPONSE {
                    return Err("the response is too large".into());
                }
                bytes.extend_from_slice(&chunk);
            }
            out.body(bytes).map_err(|e| e.to_string())
        })
    }
}

/// Whether an address may be called. Loopback only with the allowance.
pub fn is_public(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4, allow_loopback),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4, allow_loopback);
            }
            if v6.is_loopback() {
                return allow_loopback;
            }
            let seg = v6.segments();
            // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks).
            if seg[..6].iter().all(|x| *x == 0) {
                return false;
            }
            let first = seg[0];
            if first == 0x2002 // 6to4: an IPv4 address inside
                || (first == 0x2001 && seg[1] == 0) // Teredo
                || (first == 0x0064 && seg[1] == 0xff9b) // NAT64, well-known and local-use
                || (first & 0xffc0) == 0xfec0
            // site-local
            {
                return false;
            }
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254)
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 to anything
        }
    }
}

fn public_v4(v4: Ipv4Addr, allow_loopback: bool) -> bool {
    if v4.is_loopback() {
        return allow_loopback;
    }
    let [a, b, c, _] = v4.octets();
    !(v4.is_private()
        || v4.is_link_local() // 169.254/16, the metadata address included
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT (100.100.100.200 included)
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // 192.0.0.0/24 and 192.0.2.0/24
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

/// The guarded client.
#[derive(Clone)]
pub struct Outbound {
    resolver: Arc<dyn Resolver>,
    transport: Arc<dyn Transport>,
    allow_loopback: bool,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").field("allow_loopback", &self.allow_loopback).finish_non_exhaustive()
    }
}

impl Outbound {
    pub fn new(resolver: Arc<dyn Resolver>, transport: Arc<dyn Transport>, allow_loopback: bool) -> Outbound {
        Outbound { resolver, transport, allow_loopback }
    }

    /// The checked addresses to call for `url`, in the resolver's order.
    pub async fn target(&self, url: &str) -> Result<(Url, Vec<SocketAddr>), OutboundError> {
        if url.len() > MAX_URL {
            return Err(OutboundError::BadUrl);
        }
        let parsed = Url::parse(url).map_err(|_| OutboundError::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() || parsed.password().is_some()
        {
            return Err(OutboundError::BadUrl);
        }
        let port = parsed.port_or_known_default().ok_or(OutboundError::BadUrl)?;
        let candidates = match parsed.host() {
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(Host::Domain(name)) => {
                // The whole call is bounded, the name lookup included.
                let found = tokio::time::timeout(TIMEOUT, self.resolver.resolve(name.to_owned(), port))
                    .await
                    .map_err(|_| OutboundError::Resolve("the name lookup timed out".into()))?
                    .map_err(OutboundError::Resolve)?;
                if found.is_empty() {
                    return Err(OutboundError::Resolve("no addresses".into()));
                }
                found
            }
            None => return Err(OutboundError::BadUrl),
        };
        // Every address must be public: a name that also points inside is
        // refused as a whole.
        if let Some(bad) = candidates.iter().find(|ip| !is_public(**ip, self.allow_loopback)) {
            return Err(OutboundError::Forbidden(*bad));
        }
        Ok((parsed, candidates.into_iter().map(|ip| SocketAddr::new(ip, port)).collect()))
    }

    /// Sends a request after the checks.
    pub async fn send(&self, request: Request) -> Result<Response, OutboundError> {
        let (_, addrs) = self.target(&request.uri().to_string()).await?;
        // Each checked address in turn (a name with IPv6 and IPv4 answers
        // may listen on one only); never anything unchecked.
        let mut last = OutboundError::Resolve("no addresses".into());
        for addr in addrs {
            let mut copy = openidconnect::http::Request::builder()
                .method(request.method().clone())
                .uri(request.uri().clone())
                .version(request.version());
            for (k, v) in request.headers() {
                copy = copy.header(k, v);
            }
            let copy = copy.body(request.body().clone()).map_err(|_| OutboundError::BadUrl)?;
            match self.transport.send(copy, addr).await {
                Ok(r) => return Ok(r),
                Err(e) => last = OutboundError::Transport(e),
            }
        }
        Err(last)
    }

    /// POSTs a form to `url` after the checks; the status code.
    pub async fn post_form(&self, url: &str, body: String) -> Result<u16, OutboundError> {
        let request = openidconnect::http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into_bytes())
            .map_err(|_| OutboundError::BadUrl)?;
        Ok(self.send(request).await?.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records every lookup and connection; resolves from a table.
    #[derive(Default)]
    struct Recorder {
        names: Vec<(&'static str, Vec<IpAddr>)>,
        lookups: Mutex<Vec<String>>,
        connections: Mutex<Vec<SocketAddr>>,
        /// What every call answers (a redirect, say).
        status: Option<u16>,
    }

    impl Resolver for Arc<Recorder> {
        fn resolve(&self, host: String, _port: u16) -> BoxFuture<'static, Result<Vec<IpAddr>, String>> {
            self.lookups.lock().unwrap_or_else(|p| p.into_inner()).push(host.clone());
            let found = self.names.iter().find(|(n, _)| *n == host).map(|(_, a)| a.clone());
            Box::pin(async move { found.ok_or_else(|| "unknown name".to_owned()) })
        }
    }

    fn answer(status: u16) -> Result<Response, String> {
        openidconnect::http::Response::builder().status(status).body(Vec::new()).map_err(|e| e.to_string())
    }

    impl Transport for Arc<Recorder> {
        fn send(&self, _request: Request, addr: SocketAddr) -> BoxFuture<'static, Result<Response, String>> {
            self.connections.lock().unwrap_or_else(|p| p.into_inner()).push(addr);
            let status = self.status.unwrap_or(200);
            Box::pin(async move { answer(status) })
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn client(allow_loopback: bool) -> (Arc<Recorder>, Outbound) {
        let rec = Arc::new(Recorder {
            names: vec![
                ("rp.example", vec![ip("93.184.216.34")]),
                ("inside.example", vec![ip("10.1.2.3")]),
                ("mixed.example", vec![ip("93.184.216.34"), ip("192.168.0.10")]),
                ("metadata.example", vec![ip("169.254.169.254")]),
                ("v6inside.example", vec![ip("fd00:ec2::254")]),
            ],
            ..Default::default()
        });
        let out = Outbound::new(Arc::new(rec.clone()), Arc::new(rec.clone()), allow_loopback);
        (rec, out)
    }

    fn connections(rec: &Recorder) -> Vec<SocketAddr> {
        rec.connections.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    #[tokio::test]
    async fn private_and_special_targets_are_refused_without_connecting() {
        let (rec, out) = client(false);
        for url in [
            "http://10.0.0.1/logout",
            "http://172.16.5.4/logout",
            "http://192.168.1.1/logout",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.100.100.200/",
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fc00::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://[::127.0.0.1]/",
            "http://[::a00:1]/",
            "http://[2002:a00:1::1]/",
            "http://[2001:0:4136:e378::1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[fec0::1]/",
            "https://inside.example/bc",
            "https://mixed.example/bc",
            "https://metadata.example/bc",
            "https://v6inside.example/bc",
        ] {
            let got = out.post_form(url, "logout_token=x".into()).await;
            assert!(matches!(got, Err(OutboundError::Forbidden(_))), "{url}: {got:?}");
        }
        for url in [
            "ftp://rp.example/x",
            "file:///etc/passwd",
            "https://user:pw@rp.example/",
            "not a url",
            "https://nowhere.example/",
        ] {
            let got = out.post_form(url, String::new()).await;
            assert!(matches!(got, Err(OutboundError::BadUrl | OutboundError::Resolve(_))), "{url}: {got:?}");
        }
        assert!(connections(&rec).is_empty(), "no connection was attempted");
    }

    #[tokio::test]
    async fn public_targets_are_called_at_the_checked_address_only() {
        let (rec, out) = client(false);
        assert_eq!(out.post_form("https://rp.example/bc", String::new()).await, Ok(200));
        assert_eq!(connections(&rec), vec!["93.184.216.34:443".parse().expect("addr")]);
    }

    #[tokio::test]
    async fn loopback_only_with_the_allowance() {
        let (rec, out) = client(true);
        assert_eq!(out.post_form("http://127.0.0.1:9/bc", String::new()).await, Ok(200));
        assert!(matches!(out.post_form("http://10.0.0.1/bc", String::new()).await, Err(OutboundError::Forbidden(_))));
        assert_eq!(connections(&rec).len(), 1);
    }
}

#[cfg(test)]
mod redirects {
    use std::sync::Mutex;

    use super::*;

    struct Redirecting(Mutex<usize>);

    impl Transport for Arc<Redirecting> {
        fn send(&self, _request: Request, _addr: SocketAddr) -> BoxFuture<'static, Result<Response, String>> {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            Box::pin(async {
                openidconnect::http::Response::builder().status(302).body(Vec::new()).map_err(|e| e.to_string())
            })
        }
    }

    struct Fixed;

    impl Resolver for Fixed {
        fn resolve(&self, _host: String, _port: u16) -> BoxFuture<'static, Result<Vec<IpAddr>, String>> {
            Box::pin(async { Ok(vec!["93.184.216.34".parse().map_err(|_| "address".to_owned())?]) })
        }
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_not_a_second_connection() {
        let t = Arc::new(Redirecting(Mutex::new(0)));
        let out = Outbound::new(Arc::new(Fixed), Arc::new(t.clone()), false);
        assert_eq!(out.post_form("https://rp.example/bc", String::new()).await, Ok(302));
        assert_eq!(*t.0.lock().unwrap_or_else(|p| p.into_inner()), 1, "one connection, the redirect not followed");
    }
}
