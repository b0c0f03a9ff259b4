//! The error type shared by every crate of `flyte-auth`.

use crate::text::printable;
use std::{fmt, sync::Arc, time::Duration};

/// Everything that can go wrong while obtaining credentials.
///
/// The first two cases are flytekit's (`AccessTokenNotFoundError`, `AuthenticationError`);
/// its `AuthenticationPending` stays inside the device flow's poll loop. Branch on
/// [`Error::is_transient`] and [`Error::is_rejected_grant`]. `Clone`, so one failed refresh
/// reaches every task that waited for it. No variant ever contains a token or a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No access token is available and none could be obtained without a login.
    #[error("no access token available: {reason}")]
    AccessTokenNotFound {
        /// Why.
        reason: String,
    },
    /// Authentication failed for a reason not covered by a more specific case.
    #[error("authentication failed: {message}")]
    Authentication {
        /// What happened and what to try.
        message: String,
    },
    /// The authorization server answered with an OAuth error (RFC 6749 §5.2, RFC 8628 §3.5).
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The request could not be sent or its answer not received (DNS, connection, TLS, proxy).
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The URL, without query string.
        url: String,
        /// What went wrong, and what to check.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// An operation (HTTP request, child process, login) did not finish in time.
    #[error("{operation} timed out after {}s", after.as_secs_f32())]
    Timeout {
        /// What timed out.
        operation: String,
        /// The limit that was reached.
        after: Duration,
    },
    /// A login that needs the user (the browser, the device code) was not completed in time:
    /// the code expired, or the configured login timeout passed. Not transient: trying again
    /// without the user does not help; start the login again.
    #[error("{operation} timed out after {}s", after.as_secs_f32())]
    LoginTimeout {
        /// Which login, and why it ended.
        operation: String,
        /// The limit that was reached.
        after: Duration,
    },
    /// The server answered something that is not a valid answer (not JSON, no access token,
    /// an HTML error page from a proxy, a body over the size limit).
    #[error("invalid response{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    InvalidResponse {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What was wrong, with a short excerpt of the body where it helps (never a token).
        message: String,
    },
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is incomplete or wrong.
    #[error("configuration error: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An external command (the `command` / `proxyCommand` flows) failed.
    #[error("command `{program}` failed ({status}){}", stderr_suffix(stderr))]
    Command {
        /// The program name (never its arguments, which may hold secrets).
        program: String,
        /// How it ended: `exit status 1`, `killed by signal 9`, `could not start: ...`.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The login was cancelled by the caller or the user.
    #[error("login cancelled")]
    Cancelled,
    /// Anything else, from an extension.
    #[error(transparent)]
    Other(Arc<dyn std::error::Error + Send + Sync>),
}

fn stderr_suffix(stderr: &str) -> String {
    match stderr.trim() {
        "" => String::new(),
        stderr => format!(": {stderr}"),
    }
}

impl Error {
    /// A [`Error::Config`] with the given message.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// An [`Error::Authentication`] with the given message.
    pub fn authentication(message: impl Into<String>) -> Self {
        Self::Authentication {
            message: message.into(),
        }
    }

    /// Wraps any error as [`Error::Other`].
    pub fn other(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Other(Arc::new(error))
    }

    /// The OAuth error, when the server answered with one.
    pub fn oauth(&self) -> Option<&OAuthError> {
        match self {
            Self::OAuth(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the server refused the grant itself (an expired, revoked or already used
    /// refresh token; a denied login; any 4xx answer but 429, OAuth error or not, such as
    /// `invalid_client` or a proxy's 401/403 page). Stored credentials are deleted, and a
    /// refresh falls back to the full login, only in this case. 5xx, 429, network failures
    /// and timeouts are never a rejection.
    pub fn is_rejected_grant(&self) -> bool {
        let client_error = |status: u16| (400..500).contains(&status) && status != 429;
        match self {
            Self::AccessTokenNotFound { .. } => true,
            Self::InvalidResponse {
                status: Some(status),
                ..
            } => client_error(*status),
            Self::OAuth(e) if e.status.is_some_and(|s| s >= 500 || s == 429) => false,
            Self::OAuth(e) if e.status.is_some_and(client_error) => !matches!(
                e.code,
                OAuthErrorCode::ServerError
                    | OAuthErrorCode::TemporarilyUnavailable
                    | OAuthErrorCode::AuthorizationPending
                    | OAuthErrorCode::SlowDown
            ),
            Self::OAuth(e) => matches!(
                e.code,
                OAuthErrorCode::InvalidGrant
                    | OAuthErrorCode::InvalidToken
                    | OAuthErrorCode::InvalidRequest
                    | OAuthErrorCode::UnauthorizedClient
                    | OAuthErrorCode::AccessDenied
                    | OAuthErrorCode::ExpiredToken
            ),
            _ => false,
        }
    }

    /// Whether trying again later may succeed: network trouble, time-outs of a request, 5xx
    /// and 429 answers, `temporarily_unavailable`. A login the user did not complete in time
    /// ([`Error::LoginTimeout`]) is not transient. Nothing stored is deleted for these.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::InvalidResponse { status, .. } => status.is_some_and(|s| s >= 500 || s == 429),
            Self::OAuth(e) if e.status.is_some_and(|s| s >= 500 || s == 429) => true,
            Self::OAuth(e) => matches!(
                e.code,
                OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable
            ),
            Self::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// An error answer from the authorization server: RFC 6749 §5.2 and RFC 8628 §3.5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct OAuthError {
    /// The `error` code.
    pub code: OAuthErrorCode,
    /// The `error_description`, if any.
    pub description: Option<String>,
    /// The `error_uri`, if any.
    pub uri: Option<String>,
    /// The HTTP status of the answer, if it came over HTTP.
    pub status: Option<u16>,
}

impl OAuthError {
    /// An error with a code and nothing else.
    pub fn new(code: impl Into<OAuthErrorCode>) -> Self {
        Self {
            code: code.into(),
            description: None,
            uri: None,
            status: None,
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the error URI.
    #[must_use]
    pub fn with_uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// Sets the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every part but the status came from outside the program (a server, or a browser's
        // callback): escaped here once, so no caller can print a control sequence by mistake.
        let code = printable(self.code.as_str());
        write!(f, "the authorization server answered `{code}`")?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {}", printable(d))?;
        }
        if let Some(u) = &self.uri {
            write!(f, " (see {})", printable(u))?;
        }
        if let Some(hint) = self.code.hint() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// The `error` codes of RFC 6749 §5.2 / §4.1.2.1, RFC 6750 §3.1 and RFC 8628 §3.5.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired, revoked or used.
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `invalid_token`
    InvalidToken,
    /// `access_denied`: the user or server refused.
    AccessDenied,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `authorization_pending` (device flow)
    AuthorizationPending,
    /// `slow_down` (device flow)
    SlowDown,
    /// `expired_token` (device flow: the device code expired)
    ExpiredToken,
    /// Any other code.
    Other(String),
}

/// Every code with a variant of its own, as sent on the wire.
#[rustfmt::skip]
static KNOWN_CODES: [(OAuthErrorCode, &str); 14] = [
    (OAuthErrorCode::InvalidRequest, "invalid_request"),
    (OAuthErrorCode::InvalidClient, "invalid_client"),
    (OAuthErrorCode::InvalidGrant, "invalid_grant"),
    (OAuthErrorCode::UnauthorizedClient, "unauthorized_client"),
    (OAuthErrorCode::UnsupportedGrantType, "unsupported_grant_type"),
    (OAuthErrorCode::InvalidScope, "invalid_scope"),
    (OAuthErrorCode::InvalidToken, "invalid_token"),
    (OAuthErrorCode::AccessDenied, "access_denied"),
    (OAuthErrorCode::UnsupportedResponseType, "unsupported_response_type"),
    (OAuthErrorCode::ServerError, "server_error"),
    (OAuthErrorCode::TemporarilyUnavailable, "temporarily_unavailable"),
    (OAuthErrorCode::AuthorizationPending, "authorization_pending"),
    (OAuthErrorCode::SlowDown, "slow_down"),
    (OAuthErrorCode::ExpiredToken, "expired_token"),
];

impl OAuthErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(code) => code,
            known => KNOWN_CODES
                .iter()
                .find(|(code, _)| code == known)
                .map_or("", |(_, wire)| *wire),
        }
    }

    fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::InvalidClient => "check the client id and secret",
            Self::InvalidGrant => "the login is no longer valid; log in again",
            Self::InvalidScope => "check the configured scopes",
            Self::UnauthorizedClient => {
                "the client is not allowed this grant; check the identity provider's client settings"
            }
            Self::AccessDenied => "the login was refused",
            Self::ExpiredToken => "the code expired before the login was approved; start again",
            _ => return None,
        })
    }
}

impl From<&str> for OAuthErrorCode {
    fn from(code: &str) -> Self {
        KNOWN_CODES
            .iter()
            .find(|(_, wire)| *wire == code)
            .map_or_else(|| Self::Other(code.to_owned()), |(known, _)| known.clone())
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token store failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be used here (no keyring service answers, no D-Bus session); the
    /// caller may fall back to another store.
    #[error("{store} is not available: {message}")]
    Unavailable {
        /// Which store (`keyring`, `file`).
        store: &'static str,
        /// Why, and what to do.
        message: String,
    },
    /// The store refused access (a locked keyring, a permission error).
    #[error("{store} denied access: {message}")]
    Denied {
        /// Which store.
        store: &'static str,
        /// Why, and what to do.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{store} failed to {operation}: {message}")]
    Io {
        /// Which store.
        store: &'static str,
        /// `read`, `write`, `delete`, `lock`.
        operation: &'static str,
        /// What happened (a path, an OS error), never a token.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_shows_code_description_and_a_hint() {
        let e: Error = OAuthError::new("invalid_grant")
            .with_description("refresh token already used")
            .with_status(400)
            .into();
        let msg = e.to_string();
        assert!(msg.contains("invalid_grant"), "{msg}");
        assert!(msg.contains("refresh token already used"), "{msg}");
        assert!(msg.contains("HTTP 400"), "{msg}");
        assert!(msg.contains("log in again"), "{msg}");
        assert!(e.is_rejected_grant() && !e.is_transient());
    }

    #[test]
    fn oauth_error_shows_no_control_character_from_outside() {
        // A browser's callback or a server may send any bytes; the error must still be safe
        // to print.
        let e: Error = OAuthError::new("access_denied\x1b[2K")
            .with_description("see \x1b]8;;https://evil.example\x07here\x1b]8;;\x07\u{9b}31m")
            .with_uri("https://idp.example/\x1b[1Aerr")
            .into();
        let msg = e.to_string();
        assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
        assert!(msg.contains("\\u{1b}]8;;https://evil.example"), "{msg}");
    }

    #[test]
    fn transient_and_rejected_are_told_apart() {
        let timeout = Error::Timeout {
            operation: "token request".into(),
            after: Duration::from_secs(30),
        };
        assert!(timeout.is_transient() && !timeout.is_rejected_grant());
        let bad_gateway = Error::InvalidResponse {
            status: Some(502),
            message: "not JSON".into(),
        };
        assert!(bad_gateway.is_transient() && !bad_gateway.is_rejected_grant());
        let bad_request = Error::InvalidResponse {
            status: Some(400),
            message: "not JSON".into(),
        };
        assert!(!bad_request.is_transient());
        let login = Error::LoginTimeout {
            operation: "the device login".into(),
            after: Duration::from_secs(600),
        };
        assert!(!login.is_transient() && !login.is_rejected_grant());
        // An answer that is wrong whatever the status (a token that cannot go in a header).
        let invalid = Error::InvalidResponse {
            status: None,
            message: "control characters".into(),
        };
        assert!(!invalid.is_transient());
        let unavailable: Error = OAuthError::new("temporarily_unavailable").into();
        assert!(unavailable.is_transient() && !unavailable.is_rejected_grant());
    }

    #[test]
    fn any_4xx_but_429_rejects_a_refresh_and_5xx_429_do_not() {
        let answer = |status, code: &str| Error::from(OAuthError::new(code).with_status(status));
        let page = |status| Error::InvalidResponse {
            status: Some(status),
            message: "not JSON".into(),
        };
        for rejected in [
            answer(401, "invalid_client"),
            answer(400, "invalid_grant"),
            answer(400, "invalid_scope"),
            answer(400, "consent_required"),
            page(401),
            page(403),
            page(400),
        ] {
            assert!(rejected.is_rejected_grant(), "{rejected}");
            assert!(!rejected.is_transient(), "{rejected}");
        }
        for transient in [
            answer(429, "slow_down"),
            answer(503, "temporarily_unavailable"),
            answer(500, "invalid_grant"),
            page(429),
            page(502),
        ] {
            assert!(!transient.is_rejected_grant(), "{transient}");
            assert!(transient.is_transient(), "{transient}");
        }
        let network = Error::Transport {
            url: "https://idp.test/token".into(),
            message: "connection refused".into(),
            source: None,
        };
        assert!(!network.is_rejected_grant() && network.is_transient());
    }

    #[test]
    fn unknown_codes_are_kept_verbatim() {
        let code = OAuthErrorCode::from("consent_required");
        assert_eq!(code, OAuthErrorCode::Other("consent_required".into()));
        assert_eq!(code.to_string(), "consent_required");
        assert_eq!(OAuthErrorCode::from("slow_down"), OAuthErrorCode::SlowDown);
    }

    #[test]
    fn every_known_code_is_its_wire_name_both_ways() {
        for (code, wire) in &KNOWN_CODES {
            assert_eq!(code.as_str(), *wire);
            assert_eq!(&OAuthErrorCode::from(*wire), code);
        }
        assert_eq!(OAuthErrorCode::InvalidGrant.as_str(), "invalid_grant");
        assert_eq!(
            OAuthErrorCode::from("expired_token"),
            OAuthErrorCode::ExpiredToken
        );
    }

    #[test]
    fn command_error_shows_program_status_and_stderr() {
        let e = Error::Command {
            program: "gcloud".into(),
            status: "exit status 1".into(),
            stderr: "not logged in\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "command `gcloud` failed (exit status 1): not logged in"
        );
    }
}
