//! The URL under load: `http://HOST:PORT/PATH`, resolved once, and the request bytes built from it.
//!
//! Requests are serialized once before the run: every connection writes the same bytes, so the hot loop
//! never formats or allocates.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{Context as _, anyhow, ensure};

/// An `http://` URL resolved to a socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// The `Host` header value (`host:port` as written in the URL).
    pub authority: String,
    /// The address connections go to.
    pub addr: SocketAddr,
    /// The request target, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses and resolves an `http://host[:port][/path]` URL (port 80 by default).
    ///
    /// # Errors
    ///
    /// When the scheme is not `http`, the host is empty, or it does not resolve.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        ensure!(!authority.is_empty(), "{url}: no host");
        // `[::1]` has colons but no port: a port comes after the `]`.
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.contains(']'));
        let with_port = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|error| anyhow!("{url}: {error}"))?
            .next()
            .with_context(|| format!("{url}: host has no address"))?;
        Ok(Self {
            url: url.to_owned(),
            authority: authority.to_owned(),
            addr,
            path: if path.is_empty() { "/" } else { path }.to_owned(),
        })
    }

    /// The bytes of one GET request: `Host`, then `extra_headers` (each `Name: value`), then
    /// `Connection: close` when `close` is set.
    #[must_use]
    pub fn request_bytes(&self, extra_headers: &[String], close: bool) -> Vec<u8> {
        let mut request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", self.path, self.authority);
        for header in extra_headers {
            request.push_str(header.trim());
            request.push_str("\r\n");
        }
        if close {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        request.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let target = Target::parse("http://127.0.0.1:8080/a/b?c").unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target.path, "/a/b?c");
        assert_eq!(target.authority, "127.0.0.1:8080");
        let bare = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(bare.addr.port(), 80);
        assert_eq!(bare.path, "/");
        assert!(Target::parse("https://127.0.0.1/").is_err());
        assert!(Target::parse("http:///").is_err());
    }

    #[test]
    fn serializes_requests() {
        let target = Target::parse("http://127.0.0.1:9/x").unwrap();
        let bytes = target.request_bytes(&["A: b".to_owned()], true);
        assert_eq!(
            bytes,
            b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:9\r\nA: b\r\nConnection: close\r\n\r\n"
        );
    }
}
