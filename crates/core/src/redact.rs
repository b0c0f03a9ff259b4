//! [`redact_url`]: a URL as it may appear in logs, errors and `Debug` output.

/// The URL without user name, password, query and fragment: what may be shown of a configured
/// URL (a proxy URL can carry a password, a token URL a `client_secret` query parameter).
///
/// Works on any string, URL or not, without parsing it fully.
///
/// ```
/// use flyte_auth_core::redact_url;
/// assert_eq!(
///     redact_url("http://user:pw@proxy.example.org:3128/path?client_secret=x#f"),
///     "http://proxy.example.org:3128/path"
/// );
/// assert_eq!(redact_url("dns:///flyte.example.org:443"), "dns:///flyte.example.org:443");
/// ```
pub fn redact_url(url: &str) -> String {
    let url = &url[..url.find(['?', '#']).unwrap_or(url.len())];
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_query_and_fragment_are_removed() {
        assert_eq!(
            redact_url("https://user:pw@idp.example.org/token?code=abc#frag"),
            "https://idp.example.org/token"
        );
        assert_eq!(
            redact_url("socks4://u:p@w@proxy:1080"),
            "socks4://proxy:1080"
        );
        assert_eq!(redact_url("not a url?secret=1"), "not a url");
        assert_eq!(redact_url("x://u:p@host?q"), "x://host");
        assert_eq!(redact_url("host:443/a@b"), "host:443/a@b");
        assert_eq!(redact_url(""), "");
    }
}
