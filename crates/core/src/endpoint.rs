//! [`Endpoint`]: a Flyte server address, parsed once into the key of stored tokens and the
//! base URL of every request.

use std::fmt;

use crate::Error;

/// A Flyte server, as a user writes it in any of the spellings the Flyte tools accept:
/// `dns:///host:port` (flytectl, pyflyte), `host[:port]`, `https://host[:port]` or
/// `http://host[:port]` (the Flyte 2 SDK), with or without a trailing `/`.
///
/// Parsed once, it gives the same [`key`](Self::key) (what stored tokens are filed under) and
/// [`base_url`](Self::base_url) for every flow, whatever the spelling: the host is lower-cased,
/// a port equal to the scheme's default is dropped, `dns:///` and a trailing slash are removed.
/// [`as_written`](Self::as_written) keeps the original text, which other tools key their own
/// keyring entries by.
///
/// The scheme is `https` unless the text says `http://`, or no scheme is written and the
/// configuration says `insecure` ([`with_insecure`](Self::with_insecure)).
///
/// ```
/// use flyte_auth_core::Endpoint;
///
/// let a = Endpoint::parse("dns:///Flyte.Example.org:443")?;
/// let b = Endpoint::parse("flyte.example.org/")?;
/// let c = Endpoint::parse("https://flyte.example.org")?;
/// assert_eq!(a.key(), "flyte.example.org");
/// assert_eq!(a.key(), b.key());
/// assert_eq!(b.key(), c.key());
/// assert_eq!(a.base_url(), "https://flyte.example.org");
/// assert_eq!(a.as_written(), "dns:///Flyte.Example.org:443");
///
/// let sandbox = Endpoint::parse("http://localhost:30080")?;
/// assert!(sandbox.is_insecure());
/// assert_eq!(sandbox.base_url(), "http://localhost:30080");
/// assert_eq!(Endpoint::parse("localhost:30080")?.with_insecure(true).base_url(), "http://localhost:30080");
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    written: String,
    insecure: bool,
    scheme_written: bool,
    host: String,
    port: Option<u16>,
    key: String,
}

impl Endpoint {
    /// Parses `raw`. Surrounding white space is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when there is no host, the scheme is not `http` or `https`, the
    /// port is not a number from 0 to 65535, or the text has a path, query, user name or
    /// space. The message quotes the text and says what is expected.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let trimmed = raw.trim();
        let invalid = |why: &str| {
            Error::config(format!(
                "invalid endpoint `{}`: {why}; expected `host[:port]`, `dns:///host[:port]` or \
                 `https://host[:port]`, such as `dns:///flyte.example.org`",
                crate::redact_url(trimmed)
            ))
        };
        let (rest, insecure, scheme_written) = if let Some(rest) = trimmed.strip_prefix("dns:///") {
            (rest, false, false)
        } else if let Some((scheme, rest)) = trimmed.split_once("://") {
            if scheme.eq_ignore_ascii_case("https") {
                (rest, false, true)
            } else if scheme.eq_ignore_ascii_case("http") {
                (rest, true, true)
            } else {
                return Err(invalid("the scheme must be `http` or `https`"));
            }
        } else {
            (trimmed, false, false)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(invalid("no host"));
        }
        if rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
            return Err(invalid("a path, query, user name or space is not allowed"));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("unclosed `[` in an IPv6 address"))?;
            if host.is_empty() || !host.contains(':') {
                return Err(invalid("`[...]` must hold an IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("unexpected text after the IPv6 address"))?,
                ),
            };
            (format!("[{}]", host.to_ascii_lowercase()), port)
        } else {
            let (host, port) = rest
                .split_once(':')
                .map_or((rest, None), |(host, port)| (host, Some(port)));
            if host.is_empty() {
                return Err(invalid("no host"));
            }
            if host.contains(':') || port.is_some_and(|p| p.contains(':')) {
                return Err(invalid(
                    "an IPv6 address must be written in brackets, `[::1]`",
                ));
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| invalid("the port must be a number from 0 to 65535"))
            })
            .transpose()?;
        let mut endpoint = Self {
            written: trimmed.to_owned(),
            insecure,
            scheme_written,
            host,
            port,
            key: String::new(),
        };
        endpoint.rekey();
        Ok(endpoint)
    }

    /// Plain HTTP when no scheme is written (the configuration's `insecure`); a written
    /// `http://` or `https://` wins over it.
    #[must_use]
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        if !self.scheme_written {
            self.insecure = insecure;
            self.rekey();
        }
        self
    }

    fn rekey(&mut self) {
        let default_port = if self.insecure { 80 } else { 443 };
        self.key = match self.port {
            Some(port) if port != default_port => format!("{}:{port}", self.host),
            _ => self.host.clone(),
        };
    }

    /// The text as written (trimmed), e.g. `dns:///flyte.example.org:443`: how flytectl and
    /// flytekit name their own keyring entries.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    /// `host[:port]`, lower-cased, without a default port: the key stored tokens are filed
    /// under ([`Credentials::for_endpoint`](crate::Credentials::for_endpoint)).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The host, lower-cased (an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when one is written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Plain HTTP (no TLS) to the server.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// Whether the text names its scheme (`http://` or `https://`).
    pub fn scheme_written(&self) -> bool {
        self.scheme_written
    }

    /// `https://key` or `http://key`: the base of every URL on the Flyte server.
    pub fn base_url(&self) -> String {
        let scheme = if self.insecure { "http" } else { "https" };
        format!("{scheme}://{}", self.key)
    }
}

/// Whether `host` (a name, an IPv4 address, or an IPv6 address with or without brackets, as
/// [`Endpoint::host`] and `url::Url::host_str` give it) is this machine: `localhost` (any
/// case) or a loopback address. The one rule for where plain HTTP keeps a secret on the
/// machine, and for which spellings name the same host.
///
/// ```
/// use flyte_auth_core::is_loopback_host;
/// assert!(is_loopback_host("localhost") && is_loopback_host("127.0.0.2") && is_loopback_host("[::1]"));
/// assert!(!is_loopback_host("flyte.example.org") && !is_loopback_host("10.0.0.1"));
/// ```
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("written", &self.written)
            .field("key", &self.key)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_one_server_has_one_key() {
        for raw in [
            "dns:///flyte.example.org:443",
            "dns:///flyte.example.org",
            "flyte.example.org",
            "flyte.example.org:443",
            "flyte.example.org/",
            "FLYTE.Example.ORG",
            "https://flyte.example.org",
            "https://flyte.example.org:443/",
            "HTTPS://flyte.example.org",
            "  dns:///flyte.example.org:443 ",
        ] {
            let e = Endpoint::parse(raw).unwrap();
            assert_eq!(e.key(), "flyte.example.org", "{raw}");
            assert_eq!(e.base_url(), "https://flyte.example.org", "{raw}");
            assert!(!e.is_insecure(), "{raw}");
        }
    }

    #[test]
    fn ports_other_than_the_default_stay_in_the_key() {
        let e = Endpoint::parse("dns:///h:8443").unwrap();
        assert_eq!(e.key(), "h:8443");
        assert_eq!(e.port(), Some(8443));
        assert_eq!(e.base_url(), "https://h:8443");
        let plain = Endpoint::parse("h:443").unwrap().with_insecure(true);
        assert_eq!(plain.key(), "h:443");
        assert_eq!(plain.base_url(), "http://h:443");
        let plain80 = Endpoint::parse("http://h:80").unwrap();
        assert_eq!(plain80.key(), "h");
    }

    #[test]
    fn a_written_scheme_wins_over_insecure() {
        let e = Endpoint::parse("https://h:30080")
            .unwrap()
            .with_insecure(true);
        assert!(!e.is_insecure());
        let e = Endpoint::parse("http://h:30080")
            .unwrap()
            .with_insecure(false);
        assert!(e.is_insecure());
        assert_eq!(e.base_url(), "http://h:30080");
        let e = Endpoint::parse("dns:///h:30080")
            .unwrap()
            .with_insecure(true);
        assert_eq!(e.base_url(), "http://h:30080");
    }

    #[test]
    fn ipv6_addresses_in_brackets() {
        let e = Endpoint::parse("dns:///[::1]:8089").unwrap();
        assert_eq!(e.key(), "[::1]:8089");
        assert_eq!(e.host(), "[::1]");
        assert_eq!(Endpoint::parse("[::1]").unwrap().key(), "[::1]");
    }

    #[test]
    fn bad_spellings_are_config_errors_that_say_what_is_expected() {
        for raw in [
            "",
            "  ",
            "dns:///",
            "https://",
            ":443",
            "grpc://h",
            "h:port",
            "h:70000",
            "h/path",
            "https://user:pw@h",
            "h?x=1",
            "h h",
            "[::1",
            "[::1]x",
            "::1",
            "[]",
        ] {
            let err = Endpoint::parse(raw).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{raw}: {err:?}");
            assert!(err.to_string().contains("dns:///"), "{raw}: {err}");
            assert!(!err.to_string().contains("pw@"), "{raw}: {err}");
        }
    }

    #[test]
    fn display_is_the_key_and_as_written_keeps_the_text() {
        let e: Endpoint = "dns:///Flyte.example.org:443".parse().unwrap();
        assert_eq!(e.to_string(), "flyte.example.org");
        assert_eq!(e.as_written(), "dns:///Flyte.example.org:443");
        assert_eq!(e, Endpoint::parse("dns:///Flyte.example.org:443").unwrap());
    }
}
