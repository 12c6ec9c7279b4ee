//! The client's address for logs, rate limits and the audit trail: the socket
//! peer, or what X-Forwarded-For says past the proxies in
//! `server.trusted_proxies` (see `latchkey_core::net`).

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use latchkey_core::Core;

/// Extractor: the client's address, when the connection has a peer.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, core: Option<&Data<Core>>) -> Option<IpAddr> {
    let peer = peer?;
    let Some(core) = core else { return Some(peer) };
    let forwarded: Vec<&str> = headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
    Some(latchkey_core::net::client_address(peer, &forwarded, &core.settings.server.trusted_proxies))
}

pub fn of_service_request(req: &ServiceRequest) -> Option<IpAddr> {
    resolve(req.peer_addr().map(|a| a.ip()), req.headers(), req.app_data::<Data<Core>>())
}

pub fn of_request(req: &HttpRequest) -> Option<IpAddr> {
    resolve(req.peer_addr().map(|a| a.ip()), req.headers(), req.app_data::<Data<Core>>())
}

impl FromRequest for ClientAddr {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(ClientAddr(of_request(req))))
    }
}
