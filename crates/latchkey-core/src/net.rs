//! The client's address: the socket peer, or — only when that peer is a
//! trusted proxy — the first address in X-Forwarded-For read right to left
//! that is not itself a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// One X-Forwarded-For element: an address, optionally with a port.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip())).map(canonical)
}

/// `forwarded_for` holds every X-Forwarded-For header value, in order.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut current = peer;
    let hops = forwarded_for.iter().rev().flat_map(|h| h.rsplit(','));
    for hop in hops {
        match parse_hop(hop) {
            // Garbage: whoever wrote it is not to be believed past this point.
            None => return current,
            Some(ip) if is_trusted(ip, trusted) => current = ip,
            Some(ip) => return ip,
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("net")).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(client_address(ip("203.0.113.9"), &["198.51.100.1"], &t), ip("203.0.113.9"));
        assert_eq!(client_address(ip("203.0.113.9"), &[], &[]), ip("203.0.113.9"));
    }

    #[test]
    fn read_right_to_left_past_trusted_proxies() {
        let t = nets(&["10.0.0.0/8", "192.0.2.10/32"]);
        // client, spoofed entry the client sent, then two of our proxies.
        let xff = ["1.2.3.4, 198.51.100.7, 10.1.1.1"];
        assert_eq!(client_address(ip("192.0.2.10"), &xff, &t), ip("198.51.100.7"));
        // Several headers are one list.
        assert_eq!(client_address(ip("192.0.2.10"), &["1.2.3.4", "198.51.100.7"], &t), ip("198.51.100.7"));
        // Ports and IPv6 forms.
        assert_eq!(client_address(ip("10.0.0.1"), &["198.51.100.7:4711"], &t), ip("198.51.100.7"));
        assert_eq!(client_address(ip("10.0.0.1"), &["[2001:db8::1]:443"], &t), ip("2001:db8::1"));
        assert_eq!(client_address(ip("10.0.0.1"), &["2001:db8::1"], &t), ip("2001:db8::1"));
    }

    #[test]
    fn nothing_but_proxies_or_garbage() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(client_address(ip("10.0.0.1"), &[], &t), ip("10.0.0.1"));
        assert_eq!(client_address(ip("10.0.0.1"), &["10.0.0.2"], &t), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.1"), &["1.2.3.4, not-an-ip"], &t), ip("10.0.0.1"));
        assert_eq!(client_address(ip("10.0.0.1"), &["1.2.3.4, unknown, 10.0.0.3"], &t), ip("10.0.0.3"));
    }

    #[test]
    fn mapped_ipv4_is_plain_ipv4() {
        let t = nets(&["127.0.0.1/32"]);
        assert_eq!(client_address(ip("::ffff:127.0.0.1"), &["198.51.100.7"], &t), ip("198.51.100.7"));
        assert_eq!(client_address(ip("::ffff:203.0.113.5"), &[], &t), ip("203.0.113.5"));
    }
}
