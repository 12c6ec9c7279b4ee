//! Latchkey's HTTP layer on actix-web: the route table, handlers, middleware
//! and the one place errors become HTTP. Handlers call into `latchkey-core`.

pub mod browser;
pub mod client_addr;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod routes;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::{self, Data};
use actix_web::{App, HttpServer};
use latchkey_core::Core;

/// How to run the server beyond what the settings say.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Tests stop the server themselves; the binary stops it on SIGTERM/SIGINT.
    pub disable_signals: bool,
}

/// A server bound to its listeners, not yet polled: await it (or spawn it)
/// to serve. `Server::handle()` stops it gracefully.
pub fn build_server(core: Core, listeners: Vec<TcpListener>, opts: &ServeOptions) -> std::io::Result<Server> {
    let s = core.settings.server.clone();
    let data = Data::new(core);
    let metrics = Data::new(metrics::Metrics::new().map_err(std::io::Error::other)?);
    let max_body = s.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(metrics.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::FormConfig::default().limit(max_body).error_handler(|err, _req| {
                let status = match &err {
                    actix_web::error::UrlencodedError::Overflow { .. } => {
                        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
                    }
                    _ => actix_web::http::StatusCode::BAD_REQUEST,
                };
                let page = pages::message(
                    status,
                    "That form could not be read",
                    "Go back, reload the page and try again.",
                    true,
                    None,
                );
                actix_web::error::InternalError::from_response(err, page).into()
            }))
            .app_data(web::JsonConfig::default().limit(max_body))
            .configure(routes::configure)
            .default_service(web::to(error::not_found))
            .wrap(from_fn(middleware::limit_request))
            .wrap(from_fn(middleware::security_headers))
            .wrap(from_fn(middleware::request_log))
    })
    .shutdown_timeout(s.shutdown_timeout.as_secs())
    .client_request_timeout(std::time::Duration::from_secs(10))
    .max_connection_rate(256);
    if let Some(n) = s.workers {
        server = server.workers(n);
    }
    if opts.disable_signals {
        server = server.disable_signals();
    }
    for l in listeners {
        server = server.listen(l)?;
    }
    Ok(server.run())
}

/// Binds the configured address (and, when it is 127.0.0.1 serving a
/// `localhost` public URL, [::1] on the same port as well, so a browser that
/// resolves localhost to IPv6 gets through).
pub fn bind(core: &Core) -> std::io::Result<Vec<TcpListener>> {
    let addr = core.settings.server.bind;
    let mut out = vec![TcpListener::bind(addr)?];
    let public_is_localhost = url_host(&core.settings.server.public_url).as_deref() == Some("localhost");
    if public_is_localhost && addr.ip() == std::net::Ipv4Addr::LOCALHOST && addr.port() != 0 {
        match TcpListener::bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))) {
            Ok(l) => out.push(l),
            Err(e) => tracing::debug!(error = %e, "not listening on [::1]"),
        }
    }
    Ok(out)
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    Some(authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority).to_owned())
}
