//! `flyte-auth status`: what is configured and what is stored, as text or JSON, never a secret.

use std::{
    fmt::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use flyte_auth::{
    Authenticator, Credentials, DEFAULT_HEADER_KEY, PlatformConfig, TokenStore, google_proxy_entry,
    text::printable,
};

use serde::Serialize;

/// Everything `status` shows. Holds no token and no secret, only facts about them.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    endpoint: String,
    base_url: String,
    config_file: Option<String>,
    /// How the config file was found (`./config.yaml`, `$FLYTECTL_CONFIG`, ...).
    config_file_found_by: Option<&'static str>,
    /// Config files the search found and did not use (another user could have written them).
    skipped_config_files: Vec<SkippedFile>,
    /// The environment variables that were used (names only).
    variables: Vec<String>,
    /// The API key in use: its endpoint and client id (never the secret).
    api_key: Option<ApiKey>,
    /// An API key in the environment that was not used, and why.
    api_key_set_aside: Option<flyte_auth::config::SetAsideKey>,
    auth_mode: String,
    client_id: Option<String>,
    client_secret: &'static str,
    configured_scopes: Vec<String>,
    config_error: Option<String>,
    store: String,
    store_error: Option<String>,
    logged_in: bool,
    credentials: Option<StoredCredentials>,
    /// The header the token is sent in, and where its name came from.
    pub(crate) token_header: Option<TokenHeader>,
    /// The identity-aware proxy of `proxyGoogleAudience`, when configured.
    pub(crate) google_proxy: Option<GoogleProxy>,
}

/// The Google proxy of `proxyGoogleAudience`: its audience and whether an ID token is stored
/// for it (never the token).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GoogleProxy {
    audience: String,
    /// Whether `store` holds an ID token for the audience.
    pub(crate) token_stored: bool,
    /// Why the store could not be asked.
    error: Option<String>,
}

impl GoogleProxy {
    /// The proxy `cfg` configures, and whether `store` holds a token for it; `None` without
    /// `proxyGoogleAudience`. Reads the store.
    pub(crate) fn of(cfg: &PlatformConfig, store: &dyn TokenStore) -> Option<Self> {
        let audience = cfg.proxy_google_audience()?;
        let stored = google_proxy_entry(audience)
            .and_then(|entry| Ok(store.retrieve(&entry)?.is_some()))
            .map_err(|e| e.to_string());
        Some(Self {
            audience: audience.to_owned(),
            token_stored: stored.as_ref().is_ok_and(|stored| *stored),
            error: stored.err(),
        })
    }

    /// `123-iap.apps.googleusercontent.com (an ID token is stored)`.
    pub(crate) fn to_text(&self) -> String {
        let state = match &self.error {
            Some(e) => format!("the store cannot be read: {e}"),
            None if self.token_stored => "an ID token is stored".to_owned(),
            None => "no ID token stored yet".to_owned(),
        };
        format!("{} ({state})", self.audience)
    }
}

/// How long `status` and `doctor` wait for the server to name the token's header, without
/// `--timeout`.
pub(crate) const TOKEN_HEADER_LIMIT: Duration = Duration::from_secs(5);

/// The header the token is sent in, and where its name came from.
#[derive(Debug, Serialize)]
pub(crate) struct TokenHeader {
    /// The header name (for `caller`, the headers forwarded); `None` when it could not be
    /// learnt.
    pub(crate) name: Option<String>,
    /// `configured` (`authorizationHeader`), `server` (the server's
    /// `authorization_metadata_key`), `default` (the server names no other, or could not be
    /// asked), `caller` (Passthrough: the request being served's own headers), or `unknown`.
    pub(crate) source: &'static str,
    /// Why the name could not be learnt.
    error: Option<String>,
}

impl TokenHeader {
    /// Asks `auth` for the header ([`Authenticator::header_name`]: the configured one, else
    /// the server's, asking the server once), within `limit`, and says where it came from.
    pub(crate) async fn of(
        cfg: &PlatformConfig,
        auth: &dyn Authenticator,
        limit: Duration,
    ) -> Self {
        if auth.forwards_caller_credentials() {
            return Self::known("authorization, cookie".to_owned(), "caller");
        }
        let name = match tokio::time::timeout(limit, auth.header_name()).await {
            Ok(Ok(name)) => name,
            Ok(Err(e)) => return Self::unknown(e.to_string()),
            Err(_) => {
                return Self::unknown(format!("the server did not say within {}", human(limit)));
            }
        };
        let configured = cfg
            .authorization_header()
            .is_some_and(|header| header.trim().eq_ignore_ascii_case(name.as_str()));
        let source = if configured {
            "configured"
        } else if name.as_str() != DEFAULT_HEADER_KEY {
            "server"
        } else {
            "default"
        };
        Self::known(name.as_str().to_owned(), source)
    }

    fn known(name: String, source: &'static str) -> Self {
        Self {
            name: Some(name),
            source,
            error: None,
        }
    }

    fn unknown(error: String) -> Self {
        Self {
            name: None,
            source: "unknown",
            error: Some(error),
        }
    }

    /// `flyte-authorization (the server's authorization_metadata_key)`.
    pub(crate) fn to_text(&self) -> String {
        let (Some(name), None) = (&self.name, &self.error) else {
            return format!("unknown ({})", self.error.as_deref().unwrap_or("not asked"));
        };
        let source = match self.source {
            "configured" => "configured: authorizationHeader",
            "server" => "the server's authorization_metadata_key",
            "default" => "the default: the server names no other, or could not be asked",
            "caller" => "forwarded from the request being served: Passthrough",
            other => other,
        };
        format!("{name} ({source})")
    }
}

/// A config file the search found and did not use.
#[derive(Debug, Serialize)]
struct SkippedFile {
    path: String,
    found_by: &'static str,
    /// Why, and how to use it anyway.
    reason: String,
}

/// An API key in use, without its secret.
#[derive(Debug, Serialize)]
struct ApiKey {
    origin: &'static str,
    endpoint: String,
    client_id: String,
}

/// What is known about the stored credentials.
#[derive(Debug, Serialize)]
struct StoredCredentials {
    expires_at: Option<String>,
    expires_at_unix: Option<u64>,
    /// Seconds until expiry; negative once expired.
    expires_in_seconds: Option<i64>,
    expired: bool,
    /// No expiry is known (another tool stored the token without one, and it is no JWT):
    /// only the server can tell whether it still works.
    validity_unknown: bool,
    refresh_token: bool,
    id_token: bool,
    client_id: Option<String>,
    scopes: Vec<String>,
    header: Option<String>,
}

impl Status {
    /// The status of `cfg` with what the store returned for its endpoint.
    pub(crate) fn new(
        cfg: &PlatformConfig,
        store_name: &str,
        stored: Result<Option<Credentials>, String>,
        config_error: Option<flyte_auth::Error>,
    ) -> Self {
        let (credentials, store_error) = match stored {
            Ok(credentials) => (credentials, None),
            Err(e) => (None, Some(e)),
        };
        let credentials = credentials.map(|c| describe(&c, SystemTime::now()));
        Self {
            endpoint: cfg.endpoint().key().to_owned(),
            base_url: cfg.base_url(),
            config_file: cfg.config_file().map(|p| p.display().to_string()),
            config_file_found_by: cfg.sources().found_by,
            skipped_config_files: cfg
                .sources()
                .skipped
                .iter()
                .map(|skipped| SkippedFile {
                    path: skipped.path.display().to_string(),
                    found_by: skipped.found_by,
                    reason: skipped.reason(),
                })
                .collect(),
            variables: cfg.sources().variables.clone(),
            api_key: cfg.api_key().map(|key| ApiKey {
                origin: key.origin,
                endpoint: key.endpoint.clone(),
                client_id: key.client_id.clone(),
            }),
            api_key_set_aside: cfg.sources().api_key_set_aside.clone(),
            auth_mode: cfg.auth_mode().to_string(),
            client_id: cfg.client_id().map(str::to_owned),
            client_secret: if cfg.client_secret().is_some() {
                "set"
            } else {
                "not set"
            },
            configured_scopes: cfg.scopes().to_vec(),
            config_error: config_error.map(|e| e.to_string()),
            store: store_name.to_owned(),
            store_error,
            logged_in: credentials
                .as_ref()
                .is_some_and(|c| !c.expired || c.refresh_token),
            credentials,
            token_header: None,
            google_proxy: None,
        }
    }

    /// One JSON object.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the status is plain data and serializes")
    }

    /// The text for people.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        // Values come from files, the environment and servers (granted scopes): shown
        // printable, so none can move the cursor or forge a line.
        let mut line = |name: &str, value: &str| {
            let _ = writeln!(out, "{name:<15}{}", printable(value));
        };
        line(
            "endpoint:",
            &format!("{} ({})", self.endpoint, self.base_url),
        );
        let file = match (&self.config_file, self.config_file_found_by) {
            (Some(file), Some(by)) if by != "given" => format!("{file} (found as {by})"),
            (Some(file), _) => file.clone(),
            (None, _) => "none".to_owned(),
        };
        line("config file:", &file);
        for SkippedFile {
            path,
            found_by,
            reason,
        } in &self.skipped_config_files
        {
            let text = format!(
                "{path} (found as {found_by}): {reason}; to use it, name it: --config {path}"
            );
            line("skipped file:", &text);
        }
        if !self.variables.is_empty() {
            line("variables:", &self.variables.join(" "));
        }
        if let Some(key) = &self.api_key {
            let (endpoint, id, origin) = (&self.endpoint, &key.client_id, key.origin);
            line(
                "api key:",
                &format!("API key in use for {endpoint}, client id {id} (from {origin})"),
            );
        }
        if let Some(set_aside) = &self.api_key_set_aside {
            line("api key:", &set_aside.to_string());
        }
        line("auth mode:", &self.auth_mode);
        if let Some(header) = &self.token_header {
            line("token header:", &header.to_text());
        }
        if let Some(id) = &self.client_id {
            line("client id:", id);
        }
        if self.auth_mode == "ClientSecret" || self.client_secret == "set" {
            line("client secret:", self.client_secret);
        }
        if !self.configured_scopes.is_empty() {
            line("scopes asked:", &self.configured_scopes.join(" "));
        }
        if let Some(error) = &self.config_error {
            line("config error:", error);
        }
        line("token store:", &self.store);
        if let Some(error) = &self.store_error {
            line("store error:", error);
        }
        if let Some(proxy) = &self.google_proxy {
            line("google proxy:", &proxy.to_text());
        }
        match &self.credentials {
            None => line("logged in:", "no"),
            Some(c) => {
                let state = match (c.expired, c.refresh_token) {
                    _ if c.validity_unknown && c.refresh_token => {
                        "yes (validity unknown: no expiry is stored; the next use refreshes once)"
                    }
                    _ if c.validity_unknown => {
                        "validity unknown (no expiry is stored; the server decides on next use)"
                    }
                    (false, _) => "yes",
                    (true, true) => "yes (the token expired; it is refreshed on next use)",
                    (true, false) => "no (the token expired; the next use logs in again)",
                };
                line("logged in:", state);
                line("expires:", &expiry_text(c));
                line(
                    "refresh token:",
                    if c.refresh_token { "stored" } else { "none" },
                );
                if !c.scopes.is_empty() {
                    line("scopes:", &c.scopes.join(" "));
                }
                if let Some(id) = &c.client_id {
                    line("issued to:", id);
                }
                if let Some(header) = &c.header {
                    line("header:", header);
                }
            }
        }
        out
    }
}

fn describe(c: &Credentials, now: SystemTime) -> StoredCredentials {
    let expires_at = c.expires_at();
    let expires_in_seconds = expires_at.map(|at| match at.duration_since(now) {
        Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
    });
    StoredCredentials {
        expires_at: expires_at.map(rfc3339),
        expires_at_unix: c.expires_at_unix,
        expires_in_seconds,
        expired: expires_at.is_some_and(|at| at <= now),
        validity_unknown: !c.expiry_is_known(),
        refresh_token: c.refresh_token.is_some(),
        id_token: c.id_token.is_some(),
        client_id: c.client_id.clone(),
        scopes: c.scopes.clone(),
        header: c.header_key.clone(),
    }
}

fn expiry_text(c: &StoredCredentials) -> String {
    match (&c.expires_at, c.expires_in_seconds) {
        (Some(at), Some(left)) if left >= 0 => format!(
            "{at} (in {})",
            human(Duration::from_secs(left.unsigned_abs()))
        ),
        (Some(at), Some(left)) => format!(
            "{at} ({} ago)",
            human(Duration::from_secs(left.unsigned_abs()))
        ),
        _ => "unknown (the server did not say)".to_owned(),
    }
}

/// `1h 5m`, `59m 30s`, `45s`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

/// `2024-05-01T12:00:00Z`.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    // humantime formats years 1970 to 9999 only; a stored expiry may say anything.
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    humantime::format_rfc3339_seconds(at.clamp(UNIX_EPOCH, last)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PlatformConfig {
        PlatformConfig::builder()
            .no_config_file()
            .no_env()
            .endpoint("dns:///flyte.example.org:443")
            .client_id("svc")
            .client_secret("the-client-secret")
            .scopes(["all"])
            .build()
            .unwrap()
    }

    /// Forwards the served request's credentials (the Passthrough auth type).
    #[derive(Debug)]
    struct Forwarding;

    impl Authenticator for Forwarding {
        fn get_credentials(
            &self,
        ) -> flyte_auth::BoxFuture<'_, Result<std::sync::Arc<Credentials>, flyte_auth::Error>>
        {
            Box::pin(async { Err(flyte_auth::Error::config("not in scope")) })
        }
        fn refresh_credentials(
            &self,
        ) -> flyte_auth::BoxFuture<'_, Result<std::sync::Arc<Credentials>, flyte_auth::Error>>
        {
            self.get_credentials()
        }
        fn fetch_grpc_call_auth_metadata(&self) -> Option<flyte_auth::AuthHeader> {
            None
        }
        fn forwards_caller_credentials(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn forwarded_credentials_are_named_as_the_callers() {
        let header = TokenHeader::of(&cfg(), &Forwarding, TOKEN_HEADER_LIMIT).await;
        assert_eq!(header.source, "caller");
        assert_eq!(
            header.to_text(),
            "authorization, cookie (forwarded from the request being served: Passthrough)"
        );
    }

    #[test]
    fn dates_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_714_564_800 + 3_723)),
            "2024-05-01T13:02:03Z"
        );
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(3570)), "59m 30s");
        assert_eq!(human(Duration::from_secs(3900)), "1h 5m");
    }

    #[test]
    fn text_output_escapes_control_characters_a_server_granted() {
        let creds = Credentials::new("t", "flyte.example.org:443")
            .with_expires_in(3600)
            .with_scopes(["all\u{1b}[2K\rforged"]);
        let text = Status::new(&cfg(), "file", Ok(Some(creds)), None).to_text();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("\\u{1b}[2K"), "{text}");
    }

    #[test]
    fn status_shows_facts_about_the_tokens_never_the_tokens() {
        let creds = Credentials::new("the-access-token", "flyte.example.org:443")
            .with_refresh_token("the-refresh-token")
            .with_expires_in(3600)
            .with_client_id("svc")
            .with_scopes(["all", "offline"]);
        let status = Status::new(&cfg(), "file", Ok(Some(creds)), None);
        for shown in [status.to_json(), status.to_text()] {
            for secret in ["the-access-token", "the-refresh-token", "the-client-secret"] {
                assert!(!shown.contains(secret), "{secret} shown in {shown}");
            }
        }
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(json["endpoint"], "flyte.example.org");
        assert_eq!(json["auth_mode"], "Pkce");
        assert_eq!(json["store"], "file");
        assert_eq!(json["logged_in"], true);
        assert_eq!(json["client_secret"], "set");
        assert_eq!(json["credentials"]["refresh_token"], true);
        assert_eq!(json["credentials"]["expired"], false);
        assert_eq!(json["credentials"]["scopes"][1], "offline");
        let left = json["credentials"]["expires_in_seconds"].as_i64().unwrap();
        assert!((3500..=3600).contains(&left), "{left}");
        let text = status.to_text();
        assert!(text.contains("logged in:     yes"), "{text}");
        assert!(text.contains("(in 59m"), "{text}");
    }

    #[test]
    fn nothing_stored_or_an_unreadable_store_is_not_logged_in() {
        let status = Status::new(&cfg(), "keyring", Err("keyring is locked".into()), None);
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(json["logged_in"], false);
        assert_eq!(json["credentials"], serde_json::Value::Null);
        assert_eq!(json["store_error"], "keyring is locked");
        assert!(
            status
                .to_text()
                .contains("store error:   keyring is locked")
        );
    }

    #[test]
    fn a_token_of_unknown_expiry_says_its_validity_is_unknown() {
        let opaque = Credentials::new("opaque", "e");
        let status = Status::new(&cfg(), "keyring", Ok(Some(opaque)), None);
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(json["credentials"]["validity_unknown"], true);
        assert!(
            status.to_text().contains("validity unknown"),
            "{}",
            status.to_text()
        );
    }

    #[test]
    fn an_expired_token_without_refresh_token_is_not_a_login() {
        let expired = Credentials::new("t", "e")
            .with_expires_at(SystemTime::now() - Duration::from_secs(120));
        let status = Status::new(&cfg(), "memory", Ok(Some(expired)), None);
        let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
        assert_eq!(json["logged_in"], false);
        assert_eq!(json["credentials"]["expired"], true);
        assert!(json["credentials"]["expires_in_seconds"].as_i64().unwrap() <= -120);
        assert!(status.to_text().contains("ago)"), "{}", status.to_text());
    }
}
