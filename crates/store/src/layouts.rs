//! The keyring layouts of the Flyte tools (flytekit 1.x, the Flyte 2 SDK, flytectl,
//! flyte-sdk-go, and the Flyte 2 SDK's `keyring.cfg` file): their names, their formats, and
//! which copy of a login is the newest usable one.
//!
//! No keyring access here: [`KeyringStore`](crate::KeyringStore) reads and writes the entries.

use std::collections::HashSet;

use flyte_auth_core::{Credentials, MAX_TOKEN_LIFETIME, SecretString};
use serde::{Deserialize, Serialize};

pub(crate) use crate::disk::fingerprint;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// The usernames flytekit uses, and the one only this crate uses.
pub(crate) const ACCESS_TOKEN: &str = "access_token";
pub(crate) const REFRESH_TOKEN: &str = "refresh_token";
pub(crate) const ID_TOKEN: &str = "id_token";
pub(crate) const METADATA: &str = "flyte_auth_metadata";
/// The Flyte 2 SDK's one username.
pub(crate) const FLYTE2_TOKENS: &str = "tokens";
/// flytectl's service, and the suffix of its username.
pub(crate) const FLYTECTL_SERVICE: &str = "flytectl";
const FLYTECTL_USER_SUFFIX: &str = ":flytectl-user";

/// One tool's way of keeping a login in the keyring; the order breaks ties between copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Layout {
    /// flytekit 1.x (pyflyte), and flyte-auth's own: one entry per token plus flyte-auth's
    /// metadata entry.
    Flytekit,
    /// flytectl: one JSON entry of Go's `oauth2.Token`.
    Flytectl,
    /// The Flyte 2 SDK: one JSON entry with both tokens.
    Flyte2,
    /// flyte-sdk-go: flytekit's `access_token` and `refresh_token` entries under the host
    /// without its port (only where that differs from flytekit's service).
    FlyteSdkGo,
    /// The Flyte 2 SDK's plaintext keyring file of notebooks (`~/.flyte/keyring.cfg`): its
    /// `tokens` entry, base64-encoded in an INI file.
    Flyte2File,
}

/// Where each layout keeps the login of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// flytekit's service: the endpoint as written, without `dns:///`.
    pub(crate) flytekit: String,
    /// The Flyte 2 SDK's service: the endpoint without its scheme.
    pub(crate) flyte2: String,
    /// flytectl's username: `<endpoint as written>:flytectl-user`.
    pub(crate) flytectl_user: String,
    /// flyte-sdk-go's service: the host without its port; `None` when it is flytekit's
    /// service (then both tools share the same entries).
    pub(crate) go: Option<String>,
}

impl Names {
    /// The names for an endpoint spelled `written` (as the user wrote it in the config).
    pub(crate) fn new(written: &str) -> Self {
        let written = written.trim();
        let flytekit = crate::store_key(written);
        let go = host_without_port(written);
        Self {
            flytekit: flytekit.to_owned(),
            flyte2: strip_scheme(written).to_owned(),
            flytectl_user: format!("{written}{FLYTECTL_USER_SUFFIX}"),
            go: (go != flytekit).then(|| go.to_owned()),
        }
    }
}

/// flyte-sdk-go's service: the host of the endpoint, without scheme, path or port (as Go's
/// `net.SplitHostPort` gives it: an IPv6 address loses its brackets); text that is not
/// `host:port` stays as it is.
fn host_without_port(written: &str) -> &str {
    let rest = strip_scheme(written);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(bracketed) = authority.strip_prefix('[') {
        return match bracketed.split_once("]:") {
            Some((host, _port)) => host,
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, _port)) if !host.contains(':') => host,
        _ => authority,
    }
}

/// What the Flyte 2 SDK's `strip_scheme` does: `dns:///h` and `https://h` both give `h`; text
/// without a scheme stays as it is.
fn strip_scheme(written: &str) -> &str {
    if written.len() >= 4 && written[..4].eq_ignore_ascii_case("dns:") {
        return written[4..].trim_start_matches('/');
    }
    match written.split_once("://") {
        Some((scheme, rest))
            if !rest.is_empty()
                && !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            rest
        }
        _ => written,
    }
}

/// One layout's copy of a login, as read. Its `Debug` shows which tokens it holds, never
/// their values.
#[derive(Clone)]
pub(crate) struct LoginCopy {
    pub(crate) layout: Layout,
    /// Empty when the layout holds a refresh token only (the Flyte 2 SDK allows it).
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) id_token: Option<String>,
    /// The expiry the layout itself records (flytectl's `expiry`), when not zero.
    pub(crate) expires_at_unix: Option<u64>,
}

impl std::fmt::Debug for LoginCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = |token: Option<&String>| token.filter(|t| !t.is_empty()).map(|_| "<redacted>");
        f.debug_struct("LoginCopy")
            .field("layout", &self.layout)
            .field("access_token", &held(Some(&self.access_token)))
            .field("refresh_token", &held(self.refresh_token.as_ref()))
            .field("id_token", &held(self.id_token.as_ref()))
            .field("expires_at_unix", &self.expires_at_unix)
            .finish()
    }
}

impl LoginCopy {
    fn same_tokens(&self, other: &LoginCopy) -> bool {
        self.access_token == other.access_token && self.refresh_token == other.refresh_token
    }
}

/// flytekit's copy (also flyte-auth's own), from its three entries. As flytekit: nothing
/// unless there is an access or an id token. With an id token only (some identity providers
/// issue nothing else), the id token is the bearer token.
pub(crate) fn flytekit_copy(
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
) -> Option<LoginCopy> {
    let non_empty = |t: Option<String>| t.filter(|t| !t.is_empty());
    let id_token = non_empty(id_token);
    let bearer = non_empty(access_token).or_else(|| id_token.clone())?;
    Some(LoginCopy {
        layout: Layout::Flytekit,
        access_token: bearer,
        refresh_token: non_empty(refresh_token),
        id_token,
        expires_at_unix: None,
    })
}

/// flyte-sdk-go's copy, from its two entries: nothing without an access token (as Go). Go
/// stores no expiry: it is the access token's JWT `exp`, when it has one.
pub(crate) fn go_copy(
    access_token: Option<String>,
    refresh_token: Option<String>,
) -> Option<LoginCopy> {
    let access_token = access_token.filter(|t| !t.is_empty())?;
    let expires_at_unix = Credentials::new(access_token.clone(), String::new()).expires_at_unix;
    Some(LoginCopy {
        layout: Layout::FlyteSdkGo,
        access_token,
        refresh_token: refresh_token.filter(|t| !t.is_empty()),
        id_token: None,
        expires_at_unix,
    })
}

/// The text of every keyring entry that may hold one endpoint's login, as any tool (or a
/// person) left it: what [`credentials_from_entries`] reads. For fuzzing and tests.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RawEntries {
    /// flytekit's `access_token` entry.
    pub access_token: Option<String>,
    /// flytekit's `refresh_token` entry.
    pub refresh_token: Option<String>,
    /// flytekit's `id_token` entry.
    pub id_token: Option<String>,
    /// flyte-auth's `flyte_auth_metadata` entry.
    pub metadata: Option<String>,
    /// The Flyte 2 SDK's `tokens` entry.
    pub flyte2: Option<String>,
    /// flytectl's entry.
    pub flytectl: Option<String>,
    /// flyte-sdk-go's `access_token` entry (under the host without its port).
    pub go_access_token: Option<String>,
    /// flyte-sdk-go's `refresh_token` entry.
    pub go_refresh_token: Option<String>,
    /// The `tokens` option of the Flyte 2 SDK's `keyring.cfg`, base64-decoded.
    pub flyte2_file: Option<String>,
}

/// The login [`KeyringStore::retrieve`](crate::KeyringStore) makes of `entries` at `now`
/// (seconds since the Unix epoch): the same parsing and the same choice of a copy, without a
/// keyring. For fuzzing and tests.
#[doc(hidden)]
pub fn credentials_from_entries(
    entries: &RawEntries,
    endpoint: &str,
    now: u64,
) -> Option<Credentials> {
    let metadata = entries
        .metadata
        .as_deref()
        .and_then(|m| Metadata::parse(m, endpoint));
    choose(&copies(entries), metadata.as_ref(), endpoint, now)
}

/// Every layout's copy of the login in `entries`; an entry not in its layout's format is
/// warned about (never its contents).
pub(crate) fn copies(entries: &RawEntries) -> Vec<LoginCopy> {
    let parsed = |json: &Option<String>, parse: fn(&str) -> Option<LoginCopy>, entry: &str| {
        let copy = parse(json.as_deref()?);
        if copy.is_none() {
            tracing::warn!("ignoring {entry} in the keyring: it is not its JSON of tokens");
        }
        copy
    };
    [
        flytekit_copy(
            entries.access_token.clone(),
            entries.refresh_token.clone(),
            entries.id_token.clone(),
        ),
        parsed(&entries.flyte2, parse_flyte2, "the Flyte 2 SDK's entry"),
        parsed(&entries.flytectl, parse_flytectl, "flytectl's entry"),
        go_copy(
            entries.go_access_token.clone(),
            entries.go_refresh_token.clone(),
        ),
        entries
            .flyte2_file
            .as_deref()
            .and_then(parse_flyte2)
            .map(|copy| LoginCopy {
                layout: Layout::Flyte2File,
                ..copy
            }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// flyte-auth's metadata entry (see the docs of [`KeyringStore`](crate::KeyringStore)).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Metadata {
    pub(crate) version: u32,
    pub(crate) access_token_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) written_at_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) retired_refresh_sha256: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) header_key: Option<String>,
}

pub(crate) const METADATA_VERSION: u32 = 1;

/// How many rotated-away refresh tokens the metadata remembers (by fingerprint).
const RETIRED_KEPT: usize = 8;

impl Metadata {
    /// Parses the entry; anything of another shape or version is `None` (and a warning).
    pub(crate) fn parse(json: &str, service: &str) -> Option<Self> {
        let metadata: Metadata = match serde_json::from_str(json) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(service, error = %e, "ignoring the keyring's token metadata: it is not valid JSON of the expected shape");
                return None;
            }
        };
        if metadata.version != METADATA_VERSION {
            tracing::warn!(
                service,
                version = metadata.version,
                "ignoring the keyring's token metadata: written by another version of flyte-auth"
            );
            return None;
        }
        Some(metadata)
    }

    /// The metadata of a write of `credentials` at `now`, retiring the refresh tokens the
    /// copies held before (`previous`) that the new login does not keep.
    pub(crate) fn of(credentials: &Credentials, now: u64, previous: &[String]) -> Self {
        let refresh = credentials
            .refresh_token
            .as_ref()
            .map(|t| fingerprint(t.expose_secret()));
        let mut retired: Vec<String> = Vec::new();
        for fp in previous {
            if Some(fp) != refresh.as_ref() && !retired.contains(fp) {
                retired.push(fp.clone());
            }
        }
        retired.truncate(RETIRED_KEPT);
        Self {
            version: METADATA_VERSION,
            access_token_sha256: fingerprint(credentials.access_token.expose_secret()),
            refresh_token_sha256: refresh,
            written_at_unix: Some(now),
            retired_refresh_sha256: retired,
            expires_at_unix: credentials.expires_at_unix,
            expires_in: credentials.expires_in,
            client_id: credentials.client_id.clone(),
            scopes: credentials.scopes.clone(),
            header_key: credentials.header_key.clone(),
        }
    }

    /// Whether `copy` holds the tokens flyte-auth wrote last.
    fn describes(&self, copy: &LoginCopy) -> bool {
        self.access_token_sha256 == fingerprint(&copy.access_token)
            && self.refresh_token_sha256.as_ref().is_none_or(|fp| {
                copy.refresh_token.as_deref().map(fingerprint).as_ref() == Some(fp)
            })
    }

    fn retired(&self, copy: &LoginCopy) -> bool {
        copy.refresh_token
            .as_deref()
            .is_some_and(|t| self.retired_refresh_sha256.contains(&fingerprint(t)))
    }

    /// Adds what the metadata holds to `credentials` (which hold the tokens it describes).
    /// Numbers out of range (written by hand, or by a version that did not clamp them) are
    /// clamped as a server's are.
    fn apply(&self, mut credentials: Credentials) -> Credentials {
        if let Some(at) = self.expires_at_unix {
            credentials = credentials.with_expires_at_unix(at);
        }
        credentials.expires_in = self
            .expires_in
            .map(|secs| secs.min(MAX_TOKEN_LIFETIME.as_secs()));
        credentials.client_id.clone_from(&self.client_id);
        credentials.scopes.clone_from(&self.scopes);
        credentials.header_key.clone_from(&self.header_key);
        credentials
    }
}

pub(crate) use flyte_auth_core::unix_now;

/// The login to use among the copies found, marked when the copies disagree (the caller
/// writes it back to all of them). The rule (retired refresh tokens never, a copy another
/// tool wrote after ours first, then by expiry) is in the crate's README.
pub(crate) fn choose(
    copies: &[LoginCopy],
    metadata: Option<&Metadata>,
    endpoint: &str,
    now: u64,
) -> Option<Credentials> {
    let alive = copies
        .iter()
        .filter(|c| !c.access_token.is_empty() || c.refresh_token.is_some())
        .filter(|c| !metadata.is_some_and(|m| m.retired(c)));
    let chosen = alive.min_by_key(|c| {
        let ours = metadata.is_some_and(|m| m.describes(c));
        let expiry = c.expires_at_unix.or_else(|| {
            metadata
                .filter(|m| m.describes(c))
                .and_then(|m| m.expires_at_unix)
        });
        let freshness = match expiry {
            Some(at) if at > now => (0, u64::MAX - at),
            None => (1, 0),
            Some(_) => (2, 0),
        };
        (ours, freshness, c.layout)
    })?;

    let mut credentials = Credentials::new(
        SecretString::from(chosen.access_token.clone()),
        endpoint.to_owned(),
    );
    if let Some(refresh) = &chosen.refresh_token {
        credentials = credentials.with_refresh_token(refresh.clone());
    }
    let id_token = chosen.id_token.clone().or_else(|| {
        copies
            .iter()
            .find(|c| c.id_token.is_some() && c.access_token == chosen.access_token)
            .and_then(|c| c.id_token.clone())
    });
    if let Some(id) = id_token {
        credentials = credentials.with_id_token(id);
    }
    if let Some(at) = chosen.expires_at_unix {
        credentials = credentials.with_expires_at_unix(at);
    }
    if let Some(m) = metadata.filter(|m| m.access_token_sha256 == fingerprint(&chosen.access_token))
    {
        credentials = m.apply(credentials);
        if let Some(at) = chosen.expires_at_unix {
            credentials = credentials.with_expires_at_unix(at);
        }
    }
    credentials.set_stale_copies(copies.iter().any(|c| !c.same_tokens(chosen)));
    Some(credentials)
}

/// The refresh tokens (fingerprints) the copies hold, and those the metadata already retired:
/// what a write of a new login retires.
pub(crate) fn previous_refresh_tokens(
    copies: &[LoginCopy],
    metadata: Option<&Metadata>,
) -> Vec<String> {
    let mut seen: Vec<String> = copies
        .iter()
        .filter_map(|c| c.refresh_token.as_deref().map(fingerprint))
        .collect();
    if let Some(m) = metadata {
        seen.extend(m.retired_refresh_sha256.iter().cloned());
    }
    let mut unique = HashSet::new();
    seen.retain(|fp| unique.insert(fp.clone()));
    seen
}

// ---------------------------------------------------------------------------------------------
// The Flyte 2 SDK's entry: `{"access_token": ..., "refresh_token": ...}`.

#[derive(Debug, Serialize, Deserialize)]
struct Flyte2Tokens {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Reads the Flyte 2 SDK's entry; `None` when it holds no token or is not its JSON.
pub(crate) fn parse_flyte2(json: &str) -> Option<LoginCopy> {
    let tokens: Flyte2Tokens = serde_json::from_str(json).ok()?;
    let access_token = tokens.access_token.unwrap_or_default();
    let refresh_token = tokens.refresh_token.filter(|t| !t.is_empty());
    if access_token.is_empty() && refresh_token.is_none() {
        return None;
    }
    Some(LoginCopy {
        layout: Layout::Flyte2,
        access_token,
        refresh_token,
        id_token: None,
        expires_at_unix: None,
    })
}

/// The Flyte 2 SDK's entry for `credentials`, spaced as Python's `json.dumps` writes it.
pub(crate) fn format_flyte2(credentials: &Credentials) -> String {
    let string = |s: &str| serde_json::Value::from(s).to_string();
    let refresh = credentials
        .refresh_token
        .as_ref()
        .map_or_else(|| "null".to_owned(), |t| string(t.expose_secret()));
    format!(
        r#"{{"access_token": {}, "refresh_token": {refresh}}}"#,
        string(credentials.access_token.expose_secret())
    )
}

// ---------------------------------------------------------------------------------------------
// flytectl's entry: the JSON of Go's `oauth2.Token`.

/// Go's `oauth2.Token`, field for field, in its order and with its `omitempty`s.
#[derive(Debug, Serialize, Deserialize)]
struct GoToken {
    access_token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    token_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    refresh_token: String,
    #[serde(default)]
    expiry: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    expires_in: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Go's zero `time.Time`: "no expiry known".
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Reads flytectl's entry; `None` when it holds no access token or is not its JSON.
pub(crate) fn parse_flytectl(json: &str) -> Option<LoginCopy> {
    let token: GoToken = serde_json::from_str(json).ok()?;
    if token.access_token.is_empty() {
        return None;
    }
    let expires_at_unix = token
        .expiry
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
        .filter(|&secs| secs > 0);
    Some(LoginCopy {
        layout: Layout::Flytectl,
        access_token: token.access_token,
        refresh_token: Some(token.refresh_token).filter(|t| !t.is_empty()),
        id_token: None,
        expires_at_unix,
    })
}

/// flytectl's entry for `credentials`: compact JSON as Go's `json.Marshal` writes it, with the
/// expiry in RFC 3339 (Go's zero time when unknown).
pub(crate) fn format_flytectl(credentials: &Credentials) -> String {
    let expiry = credentials
        .expires_at_unix
        .and_then(|secs| i64::try_from(secs).ok())
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| GO_ZERO_TIME.to_owned());
    let token = GoToken {
        access_token: credentials.access_token.expose_secret().to_owned(),
        token_type: "Bearer".to_owned(),
        refresh_token: credentials
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_default(),
        expiry: Some(expiry),
        expires_in: credentials
            .expires_in
            .and_then(|s| i64::try_from(s).ok())
            .unwrap_or(0),
    };
    serde_json::to_string(&token).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(layout: Layout, access: &str, refresh: Option<&str>) -> LoginCopy {
        LoginCopy {
            layout,
            access_token: access.to_owned(),
            refresh_token: refresh.map(str::to_owned),
            id_token: None,
            expires_at_unix: None,
        }
    }

    #[test]
    fn a_copy_s_debug_shows_no_token() {
        let mut c = copy(Layout::Flyte2File, "SECRET-A", Some("SECRET-R"));
        c.id_token = Some("SECRET-I".to_owned());
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("Flyte2File"), "{shown}");
    }

    #[test]
    fn fingerprints_are_short_stable_and_tell_tokens_apart() {
        // SHA-256("test") = 9f86d081884c7d65...
        assert_eq!(fingerprint("test"), "9f86d081884c7d65");
        assert_ne!(fingerprint("token-a"), fingerprint("token-b"));
    }

    #[test]
    fn names_follow_each_tool() {
        let n = Names::new("dns:///flyte.example.org:443");
        assert_eq!(n.flytekit, "flyte.example.org:443");
        assert_eq!(n.flyte2, "flyte.example.org:443");
        assert_eq!(
            n.flytectl_user,
            "dns:///flyte.example.org:443:flytectl-user"
        );
        let n = Names::new("https://flyte.example.org");
        assert_eq!(n.flyte2, "flyte.example.org");
        let n = Names::new("localhost:30080");
        assert_eq!(
            (n.flytekit.as_str(), n.flyte2.as_str()),
            ("localhost:30080", "localhost:30080")
        );
    }

    #[test]
    fn flyte_sdk_go_s_service_is_the_host_without_its_port() {
        let go = |written: &str| Names::new(written).go;
        assert_eq!(
            go("dns:///flyte.example.org:443").as_deref(),
            Some("flyte.example.org")
        );
        assert_eq!(
            go("https://Flyte.example.org:8443/console").as_deref(),
            Some("Flyte.example.org")
        );
        assert_eq!(go("localhost:30080").as_deref(), Some("localhost"));
        assert_eq!(go("[::1]:8089").as_deref(), Some("::1"));
        // Without a port, Go's entries are flytekit's.
        assert_eq!(go("dns:///flyte.example.org"), None);
        assert_eq!(go("flyte.example.org"), None);
    }

    #[test]
    fn flyte_sdk_go_s_copy_takes_its_expiry_from_the_jwt() {
        use base64::Engine as _;
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":2000000000}"#);
        let jwt = format!("e30.{payload}.sig");
        let c = go_copy(Some(jwt), Some("r".to_owned())).unwrap();
        assert_eq!(c.expires_at_unix, Some(2_000_000_000));
        assert_eq!(c.layout, Layout::FlyteSdkGo);
        assert!(
            go_copy(Some("opaque".to_owned()), None)
                .unwrap()
                .expires_at_unix
                .is_none()
        );
        assert!(
            go_copy(None, Some("r".to_owned())).is_none(),
            "Go needs an access token"
        );
    }

    #[test]
    fn flytectl_entries_read_and_write_go_s_format() {
        let go = r#"{"access_token":"a","token_type":"bearer","refresh_token":"r","expiry":"2021-04-27T19:55:26.658635+05:30"}"#;
        let c = parse_flytectl(go).unwrap();
        assert_eq!(c.expires_at_unix, Some(1_619_533_526));
        assert_eq!(c.refresh_token.as_deref(), Some("r"));
        let zero = r#"{"access_token":"a","expiry":"0001-01-01T00:00:00Z"}"#;
        let c = parse_flytectl(zero).unwrap();
        assert_eq!((c.expires_at_unix, c.refresh_token), (None, None));

        let mut creds = Credentials::new("a", "e")
            .with_refresh_token("r")
            .with_expires_in(3600);
        creds.expires_at_unix = Some(1_619_533_526);
        assert_eq!(
            format_flytectl(&creds),
            r#"{"access_token":"a","token_type":"Bearer","refresh_token":"r","expiry":"2021-04-27T14:25:26Z","expires_in":3600}"#
        );
        assert_eq!(
            format_flytectl(&Credentials::new("a", "e")),
            r#"{"access_token":"a","token_type":"Bearer","expiry":"0001-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn flyte2_entries_read_and_write_its_json() {
        let creds = Credentials::new("a\"1", "e").with_refresh_token("r");
        let json = format_flyte2(&creds);
        assert_eq!(json, r#"{"access_token": "a\"1", "refresh_token": "r"}"#);
        let c = parse_flyte2(&json).unwrap();
        assert_eq!(
            (c.access_token.as_str(), c.refresh_token.as_deref()),
            ("a\"1", Some("r"))
        );
        assert_eq!(
            format_flyte2(&Credentials::new("a", "e")),
            r#"{"access_token": "a", "refresh_token": null}"#
        );
        assert!(parse_flyte2(r#"{"access_token": null, "refresh_token": null}"#).is_none());
        assert_eq!(
            parse_flyte2(r#"{"access_token": "", "refresh_token": "r"}"#)
                .unwrap()
                .refresh_token
                .as_deref(),
            Some("r")
        );
    }

    #[test]
    fn the_copy_written_after_flyte_auth_comes_first_and_retired_refresh_tokens_never() {
        let ours = Credentials::new("a1", "e").with_refresh_token("r1");
        let metadata = Metadata::of(&ours, 100, &[fingerprint("r0")]);
        let copies = [
            copy(Layout::Flytekit, "a1", Some("r1")),
            copy(Layout::Flytectl, "a2", Some("r2")),
            copy(Layout::Flyte2, "a0", Some("r0")),
        ];
        let chosen = choose(&copies, Some(&metadata), "e", 200).unwrap();
        assert_eq!(
            chosen.access_token.expose_secret(),
            "a2",
            "flytectl refreshed since"
        );
        assert!(chosen.has_stale_copies());

        let only_retired = [copy(Layout::Flyte2, "a0", Some("r0"))];
        assert!(choose(&only_retired, Some(&metadata), "e", 200).is_none());

        let agreeing = [
            copy(Layout::Flytekit, "a1", Some("r1")),
            copy(Layout::Flyte2, "a1", Some("r1")),
        ];
        let chosen = choose(&agreeing, Some(&metadata), "e", 200).unwrap();
        assert!(!chosen.has_stale_copies());
        assert_eq!(chosen.access_token.expose_secret(), "a1");
    }

    fn latest_allowed() -> u64 {
        now() + flyte_auth_core::MAX_TOKEN_LIFETIME.as_secs()
    }

    use flyte_auth_core::unix_now as now;

    /// What every stored login must give: an expiry that can be used in arithmetic, and one
    /// that flytectl's format can write.
    fn assert_sane(credentials: &Credentials) {
        let at = credentials.expires_at_unix.expect("an expiry");
        assert!(at <= latest_allowed(), "{at}");
        assert!(
            credentials
                .expires_in
                .is_none_or(|s| s <= latest_allowed() - now())
        );
        let _ = credentials.expires_at();
        assert!(!format_flytectl(credentials).contains(GO_ZERO_TIME));
    }

    #[test]
    fn far_expiries_other_tools_or_versions_stored_are_clamped() {
        // flyte-auth's metadata, written by a version that did not clamp (or edited by hand).
        let ours = Credentials::new("a1", "e").with_refresh_token("r1");
        let mut metadata = Metadata::of(&ours, 100, &[]);
        metadata.expires_at_unix = Some(u64::MAX);
        metadata.expires_in = Some(u64::MAX);
        let json = serde_json::to_string(&metadata).unwrap();
        let metadata = Metadata::parse(&json, "e").unwrap();
        let copies = [copy(Layout::Flytekit, "a1", Some("r1"))];
        assert_sane(&choose(&copies, Some(&metadata), "e", now()).unwrap());

        // flytectl's `expiry`, as far as RFC 3339 goes.
        let go = r#"{"access_token":"a","refresh_token":"r","expiry":"9999-12-31T23:59:59Z"}"#;
        let c = parse_flytectl(go).unwrap();
        assert_sane(&choose(&[c], None, "e", now()).unwrap());

        // A copy whose own expiry is out of range.
        let mut far = copy(Layout::Flytectl, "a", None);
        far.expires_at_unix = Some(u64::MAX);
        assert_sane(&choose(&[far], None, "e", now()).unwrap());
    }

    #[test]
    fn retiring_keeps_what_the_new_login_still_holds() {
        let creds = Credentials::new("a", "e").with_refresh_token("same");
        let m = Metadata::of(&creds, 1, &[fingerprint("same"), fingerprint("old")]);
        assert_eq!(m.retired_refresh_sha256, [fingerprint("old")]);
    }
}
