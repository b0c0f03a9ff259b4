//! Checking the redirect URI: the browser must be sent back to this machine, on a known port.

use std::net::{Ipv4Addr, Ipv6Addr};

use flyte_auth_core::Error;
use url::{Host, Url};

/// Where the callback server listens for a `localhost` redirect URI, or for a literal address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoopbackHost {
    /// `localhost`: both 127.0.0.1 and ::1 (where IPv6 exists), since browsers resolve it to
    /// either.
    Localhost,
    /// An address in 127.0.0.0/8.
    V4(Ipv4Addr),
    /// `[::1]`.
    V6(Ipv6Addr),
}

/// A checked loopback redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedirectTarget {
    /// As configured: identity providers compare redirect URIs character by character, so
    /// it is sent exactly as written (only a port 0 is replaced).
    original: String,
    uri: Url,
    /// The host to listen on.
    pub(crate) host: LoopbackHost,
    /// The port to listen on; 0 means any free port.
    pub(crate) port: u16,
}

impl RedirectTarget {
    /// Checks `uri`: `http`, a loopback host (`localhost`, 127.0.0.0/8, `[::1]`), an explicit
    /// port (0 means any free port), no fragment.
    pub(crate) fn parse(uri: &str) -> Result<Self, Error> {
        let example = "such as http://localhost:53593/callback";
        let uri = uri.trim();
        let parsed = Url::parse(uri).map_err(|e| {
            Error::config(format!(
                "the redirect URI `{uri}` is not a valid URL ({e}); the browser login needs a loopback URL {example}"
            ))
        })?;
        if parsed.scheme() != "http" {
            return Err(Error::config(format!(
                "the redirect URI `{uri}` must start with http:// (the login callback is received by a plain-HTTP server on this machine), {example}"
            )));
        }
        let host = match parsed.host() {
            Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => LoopbackHost::Localhost,
            Some(Host::Ipv4(ip)) if ip.is_loopback() => LoopbackHost::V4(ip),
            Some(Host::Ipv6(ip)) if ip.is_loopback() => LoopbackHost::V6(ip),
            Some(_) => {
                return Err(Error::config(format!(
                    "the redirect URI `{uri}` does not point to this machine: its host must be localhost, 127.0.0.1 or [::1] ({example}), since the browser login is received by a server on this machine"
                )));
            }
            None => {
                return Err(Error::config(format!(
                    "the redirect URI `{uri}` has no host; use a loopback URL {example}"
                )));
            }
        };
        let port = match parsed.port() {
            Some(port) => port,
            // `url` drops a port equal to the scheme's default, so tell "no port" from ":80".
            None if has_explicit_port(uri) => 80,
            None => {
                return Err(Error::config(format!(
                    "the redirect URI `{uri}` has no port; the browser login listens on the port it names, {example}"
                )));
            }
        };
        if parsed.fragment().is_some() {
            return Err(Error::config(format!(
                "the redirect URI `{uri}` must not have a fragment (#...) (RFC 6749 §3.1.2)"
            )));
        }
        Ok(Self {
            original: uri.to_owned(),
            uri: parsed,
            host,
            port,
        })
    }

    /// The URI as configured.
    pub(crate) fn uri(&self) -> &str {
        &self.original
    }

    /// The path the callback arrives on.
    pub(crate) fn path(&self) -> &str {
        self.uri.path()
    }

    /// The URI to send once `port` is bound: as configured, or with the bound port when the
    /// configured one is 0.
    pub(crate) fn with_port(&self, port: u16) -> String {
        if self.port != 0 {
            return self.original.clone();
        }
        let mut uri = self.uri.clone();
        // Setting a port on an http URL with a host cannot fail.
        let _ = uri.set_port(Some(port));
        uri.into()
    }
}

/// Whether the authority of `uri` ends with `:digits`.
fn has_explicit_port(uri: &str) -> bool {
    let Some(rest) = uri.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = match host_port.rfind(']') {
        Some(end) => &host_port[end + 1..],
        None => host_port.rfind(':').map_or("", |i| &host_port[i..]),
    };
    after_host
        .strip_prefix(':')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_uris_are_accepted() {
        let t = RedirectTarget::parse("http://localhost:53593/callback").unwrap();
        assert_eq!(
            (t.host, t.port, t.path()),
            (LoopbackHost::Localhost, 53593, "/callback")
        );
        let t = RedirectTarget::parse("http://127.0.0.1:8080/cb").unwrap();
        assert_eq!(t.host, LoopbackHost::V4(Ipv4Addr::LOCALHOST));
        let t = RedirectTarget::parse("http://127.1.2.3:8080/").unwrap();
        assert_eq!(t.host, LoopbackHost::V4(Ipv4Addr::new(127, 1, 2, 3)));
        let t = RedirectTarget::parse("http://[::1]:8080/callback").unwrap();
        assert_eq!(t.host, LoopbackHost::V6(Ipv6Addr::LOCALHOST));
        let t = RedirectTarget::parse("http://LOCALHOST:80/callback").unwrap();
        assert_eq!(t.port, 80);
        let t = RedirectTarget::parse("http://localhost:0/callback").unwrap();
        assert_eq!(t.port, 0);
        assert_eq!(t.with_port(4242), "http://localhost:4242/callback");
        let t = RedirectTarget::parse("http://localhost:53593").unwrap();
        assert_eq!(
            t.with_port(53593),
            "http://localhost:53593",
            "sent as configured"
        );
    }

    #[test]
    fn unusable_uris_are_config_errors_naming_the_uri() {
        for (uri, expected) in [
            (
                "http://flyte.example.org:53593/callback",
                "does not point to this machine",
            ),
            (
                "http://10.0.0.1:53593/callback",
                "does not point to this machine",
            ),
            (
                "http://[::2]:53593/callback",
                "does not point to this machine",
            ),
            ("http://localhost/callback", "has no port"),
            (
                "https://localhost:53593/callback",
                "must start with http://",
            ),
            ("localhost:53593/callback", "must start with http://"),
            ("/callback", "not a valid URL"),
            ("", "not a valid URL"),
            ("http://localhost:53593/callback#x", "fragment"),
        ] {
            let e = RedirectTarget::parse(uri).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{uri}: {e:?}");
            let msg = e.to_string();
            assert!(msg.contains(expected), "{uri}: {msg}");
            assert!(msg.contains(&format!("`{uri}`")), "{uri}: {msg}");
        }
    }

    #[test]
    fn explicit_port_detection() {
        assert!(has_explicit_port("http://localhost:80/x"));
        assert!(has_explicit_port("http://u:p@[::1]:80"));
        assert!(!has_explicit_port("http://[::1]/x"));
        assert!(!has_explicit_port("http://localhost/x:80"));
        assert!(!has_explicit_port("http://localhost:/x"));
    }
}
