//! Exit statuses and the one-line error message: what went wrong, and what to try.

use std::process::ExitCode;

use flyte_auth::{Error, OAuthErrorCode};

/// Why the command failed, as the exit status says it (documented in `--help` and README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 1: anything else (the token store, an unexpected answer).
    Other = 1,
    /// 2: configuration or usage.
    Config = 2,
    /// 3: the server or the user refused, or the token command failed.
    Refused = 3,
    /// 4: the network, a time-out, a server error.
    Network = 4,
}

impl Failure {
    /// The exit status.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// What to try, for errors whose message does not already say it.
    fn hint(self, error: &Error) -> Option<&'static str> {
        match (self, error) {
            (Self::Config, _) => Some(
                "flags override the config file and the environment (--endpoint, --config, \
                 --auth-mode, ...; see `flyte-auth --help`)",
            ),
            // The server's OAuth errors carry their own hint when there is one.
            (Self::Refused, Error::OAuth(e))
                if matches!(
                    e.code,
                    OAuthErrorCode::InvalidClient
                        | OAuthErrorCode::InvalidGrant
                        | OAuthErrorCode::InvalidScope
                        | OAuthErrorCode::UnauthorizedClient
                        | OAuthErrorCode::ExpiredToken
                ) =>
            {
                None
            }
            (Self::Refused, Error::LoginTimeout { .. }) => {
                Some("run `flyte-auth login` again and complete the login before it expires")
            }
            (Self::Other, Error::InvalidResponse { .. }) => Some(
                "the answer is not what a Flyte server or identity provider sends: check that the \
                 endpoint (and tokenUrl) point at them, not at a proxy or another service; run \
                 with -vv to see the exchange",
            ),
            (Self::Refused, Error::Command { .. }) => {
                Some("run the token command by hand to see what it needs")
            }
            (Self::Refused, _) => Some(
                "check the auth mode, client id, secret and scopes, then run `flyte-auth login`",
            ),
            (Self::Network, _) => Some(
                "check that the endpoint is reachable (--endpoint; --insecure for plain HTTP, \
                 --ca-cert, --http-proxy) or allow more time with --timeout",
            ),
            (Self::Other, Error::Store(_)) => Some(
                "choose another token store with --store file or --store memory, or another \
                 --cache-dir",
            ),
            (Self::Other, _) => None,
        }
    }
}

impl From<Failure> for ExitCode {
    fn from(failure: Failure) -> Self {
        ExitCode::from(failure.code())
    }
}

/// Sorts an error into an exit status.
pub(crate) fn classify(error: &Error) -> Failure {
    match error {
        Error::Config { .. } => Failure::Config,
        Error::Transport { .. } | Error::Timeout { .. } => Failure::Network,
        Error::OAuth(e) => match e.code {
            OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable => {
                Failure::Network
            }
            _ => Failure::Refused,
        },
        Error::InvalidResponse { status, .. } => match status {
            Some(401 | 403) => Failure::Refused,
            _ if error.is_transient() => Failure::Network,
            _ => Failure::Other,
        },
        Error::AccessTokenNotFound { .. }
        | Error::LoginTimeout { .. }
        | Error::Authentication { .. }
        | Error::Command { .. }
        | Error::Cancelled => Failure::Refused,
        _ => Failure::Other,
    }
}

/// The message written to standard error: one line, `flyte-auth: <what>; <what to try>`.
pub(crate) fn message(error: &Error) -> String {
    let failure = classify(error);
    let what = one_line(&error.to_string());
    match failure.hint(error) {
        Some(hint) => format!("flyte-auth: {what}; {hint}"),
        None => format!("flyte-auth: {what}"),
    }
}

/// Joins the lines of a message (a command's standard error may have several).
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use flyte_auth::{OAuthError, StoreError};

    use super::*;

    #[test]
    fn every_kind_of_error_has_its_exit_status() {
        let cases: Vec<(Error, u8)> = vec![
            (Error::config("no endpoint"), 2),
            (OAuthError::new("invalid_client").with_status(401).into(), 3),
            (OAuthError::new("access_denied").into(), 3),
            (OAuthError::new("temporarily_unavailable").into(), 4),
            (
                Error::Transport {
                    url: "http://127.0.0.1:1/token".into(),
                    message: "connection refused".into(),
                    source: None,
                },
                4,
            ),
            (
                Error::Timeout {
                    operation: "token request".into(),
                    after: Duration::from_secs(5),
                },
                4,
            ),
            (
                Error::InvalidResponse {
                    status: Some(502),
                    message: "HTML".into(),
                },
                4,
            ),
            (
                Error::InvalidResponse {
                    status: Some(401),
                    message: "HTML".into(),
                },
                3,
            ),
            (
                Error::InvalidResponse {
                    status: Some(200),
                    message: "no access_token".into(),
                },
                1,
            ),
            (
                Error::Command {
                    program: "gcloud".into(),
                    status: "exit status 1".into(),
                    stderr: "not logged in".into(),
                },
                3,
            ),
            (
                StoreError::Denied {
                    store: "keyring",
                    message: "locked".into(),
                }
                .into(),
                1,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(classify(&error).code(), code, "{error}");
        }
    }

    #[test]
    fn the_message_is_one_line_saying_what_and_what_to_try() {
        let error = Error::Command {
            program: "get-token".into(),
            status: "exit status 1".into(),
            stderr: "line one\nline two\n".into(),
        };
        let text = message(&error);
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with("flyte-auth: command `get-token` failed"),
            "{text}"
        );
        assert!(text.contains("line one | line two"), "{text}");
        assert!(text.contains("run the token command by hand"), "{text}");

        let text = message(&OAuthError::new("invalid_client").with_status(401).into());
        assert!(text.contains("invalid_client"), "{text}");
        assert!(text.contains("check the client id and secret"), "{text}");

        let text = message(&Error::Transport {
            url: "http://127.0.0.1:1/token".into(),
            message: "connection refused".into(),
            source: None,
        });
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("--timeout"), "{text}");

        let text = message(&Error::InvalidResponse {
            status: Some(200),
            message: "no access_token".into(),
        });
        assert!(
            text.contains("check that the endpoint (and tokenUrl) point at them"),
            "{text}"
        );
        assert!(!text.contains("  "), "{text}");
    }
}
