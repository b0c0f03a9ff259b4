//! A minimal cookie jar: enough of RFC 6265 for one browser talking to one test server.
//!
//! Cookies are kept per host and port, matched by path, and removed when the server expires
//! them (`Max-Age` of zero or less, or an `Expires` date in 1970 as Koa writes it).

use url::Url;

#[derive(Debug, Clone)]
struct Cookie {
    origin: String,
    name: String,
    value: String,
    path: String,
}

/// The cookies a [`crate::Browser`] has been given.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    cookies: Vec<Cookie>,
}

fn origin_of(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// The default path of a cookie set by a response to `url` (RFC 6265 section 5.1.4).
fn default_path(url: &Url) -> String {
    let path = url.path();
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

/// RFC 6265 section 5.1.4 path-match.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

impl CookieJar {
    /// Stores (or removes) the cookie of one `Set-Cookie` header received from `url`.
    pub(crate) fn store(&mut self, url: &Url, header: &str) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let name = name.trim().to_owned();
        let value = value.trim().to_owned();
        let mut path = default_path(url);
        let mut expired = false;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let key = key.trim().to_ascii_lowercase();
            let val = val.trim();
            match key.as_str() {
                "path" if val.starts_with('/') => path = val.to_owned(),
                "max-age" => expired |= val.parse::<i64>().is_ok_and(|age| age <= 0),
                "expires" => expired |= val.contains("1970"),
                _ => {}
            }
        }
        let origin = origin_of(url);
        self.cookies
            .retain(|c| !(c.origin == origin && c.name == name && c.path == path));
        if !expired {
            self.cookies.push(Cookie {
                origin,
                name,
                value,
                path,
            });
        }
    }

    /// The `Cookie` header value to send with a request to `url`, if any cookie applies.
    pub(crate) fn header_for(&self, url: &Url) -> Option<String> {
        let origin = origin_of(url);
        let mut matching: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.origin == origin && path_matches(&c.path, url.path()))
            .collect();
        if matching.is_empty() {
            return None;
        }
        // Longer paths first, as browsers send them.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        Some(
            matching
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn cookies_go_back_to_matching_paths_only() {
        let mut jar = CookieJar::default();
        let at = url("http://127.0.0.1:9/auth");
        jar.store(&at, "_session=abc; path=/; httponly");
        jar.store(&at, "_interaction=xyz; path=/interaction/uid1; httponly");
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:9/interaction/uid1")),
            Some("_interaction=xyz; _session=abc".to_owned())
        );
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:9/interaction/uid10")),
            Some("_session=abc".to_owned())
        );
        assert_eq!(jar.header_for(&url("http://127.0.0.1:10/auth")), None);
    }

    #[test]
    fn expired_cookies_are_removed() {
        let mut jar = CookieJar::default();
        let at = url("http://127.0.0.1:9/auth");
        jar.store(&at, "a=1; path=/");
        jar.store(&at, "a=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT");
        jar.store(&at, "b=1; path=/");
        jar.store(&at, "b=; path=/; max-age=0");
        assert_eq!(jar.header_for(&at), None);
    }
}
