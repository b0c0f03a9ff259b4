//! One source of settings (the file, the environment, explicit values) before they are merged.

use std::{path::PathBuf, time::Duration};

use flyte_auth_core::{Error, SecretString};

use super::{AuthMode, env};

/// Where a [`Layer`] came from; names a setting the way its source spells it.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The YAML or INI config file at this path.
    File(PathBuf),
    /// `FLYTE_*` environment variables; these were set.
    Env(Vec<&'static str>),
    /// Values set on the builder.
    Explicit,
}

/// A setting, declared once: its name in each source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// Dotted path in the YAML file.
    pub(crate) yaml: &'static str,
    /// Environment variables, the first set one wins: the Flyte 2 SDK's `FLYTE_ADMIN_*` name
    /// (the YAML key upper-cased), then flytekit's `FLYTE_PLATFORM_*`/`FLYTE_CREDENTIALS_*`.
    pub(crate) env: &'static [&'static str],
    /// `(section, option)` in flytekit's INI file.
    pub(crate) ini: Option<(&'static str, &'static str)>,
    /// Builder method.
    pub(crate) setter: &'static str,
}

macro_rules! keys {
    ($($(#[$doc:meta])* $name:ident = $yaml:literal, [$($env:expr),*], $ini:expr, $setter:literal;)*) => {
        $($(#[$doc])* pub(crate) const $name: Key = Key {
            yaml: $yaml,
            env: &[$($env),*],
            ini: $ini,
            setter: $setter,
        };)*
        /// Every setting that has a file key.
        #[cfg(test)]
        pub(crate) const ALL: &[Key] = &[$($name),*];
    };
}

const P: &str = "platform";
const C: &str = "credentials";

keys! {
    /// The server.
    ENDPOINT = "admin.endpoint", [env::ADMIN_ENDPOINT, env::PLATFORM_URL], Some((P, "url")), "endpoint";
    /// Plain HTTP.
    INSECURE = "admin.insecure", [env::ADMIN_INSECURE, env::PLATFORM_INSECURE], Some((P, "insecure")), "insecure";
    /// TLS without verification.
    INSECURE_SKIP_VERIFY = "admin.insecureSkipVerify",
        [env::ADMIN_INSECURE_SKIP_VERIFY, env::PLATFORM_INSECURE_SKIP_VERIFY],
        Some((P, "insecure_skip_verify")), "insecure_skip_verify";
    /// A PEM bundle.
    CA_CERT_FILE_PATH = "admin.caCertFilePath",
        [env::ADMIN_CA_CERT_FILE_PATH, env::PLATFORM_CA_CERT_FILE_PATH],
        Some((P, "ca_cert_file_path")), "ca_cert_file_path";
    /// Proxy URL.
    HTTP_PROXY_URL = "admin.httpProxyURL",
        [env::ADMIN_HTTP_PROXY_URL, env::PLATFORM_HTTP_PROXY_URL],
        Some((P, "http_proxy_url")), "http_proxy_url";
    /// No keyring.
    DISABLE_KEYRING = "admin.disableKeyring", [env::ADMIN_DISABLE_KEYRING], None, "disable_keyring";
    /// Every Flyte tool's keyring entries.
    WRITE_ALL_LAYOUTS = "admin.writeAllLayouts", [env::ADMIN_WRITE_ALL_LAYOUTS], None,
        "write_all_layouts";
    /// The flow.
    AUTH_MODE = "admin.authType", [env::ADMIN_AUTH_TYPE, env::CREDENTIALS_AUTH_MODE],
        Some((C, "auth_mode")), "auth_mode";
    /// OAuth client id.
    CLIENT_ID = "admin.clientId", [env::ADMIN_CLIENT_ID, env::CREDENTIALS_CLIENT_ID],
        Some((C, "client_id")), "client_id";
    /// The secret itself (no YAML key).
    CLIENT_SECRET = "(none)", [env::CREDENTIALS_CLIENT_SECRET], Some((C, "client_secret")), "client_secret";
    /// File with the secret.
    CLIENT_SECRET_LOCATION = "admin.clientSecretLocation",
        [env::ADMIN_CLIENT_SECRET_LOCATION, env::CREDENTIALS_CLIENT_SECRET_LOCATION],
        Some((C, "client_secret_location")), "client_secret_location";
    /// Variable with the secret.
    CLIENT_SECRET_ENV_VAR = "admin.clientSecretEnvVar",
        [env::ADMIN_CLIENT_SECRET_ENV_VAR, env::CREDENTIALS_CLIENT_SECRET_ENV_VAR],
        Some((C, "client_secret_env_var")), "client_secret_env_var";
    /// Scopes.
    SCOPES = "admin.scopes", [env::ADMIN_SCOPES, env::CREDENTIALS_SCOPES], Some((C, "scopes")), "scopes";
    /// Audience.
    AUDIENCE = "admin.audience", [env::ADMIN_AUDIENCE, env::CREDENTIALS_AUDIENCE], Some((C, "audience")), "audience";
    /// Token command.
    COMMAND = "admin.command", [env::ADMIN_COMMAND, env::CREDENTIALS_COMMAND], Some((C, "command")), "command";
    /// Proxy token command.
    PROXY_COMMAND = "admin.proxyCommand", [env::ADMIN_PROXY_COMMAND, env::CREDENTIALS_PROXY_COMMAND],
        Some((C, "proxy_command")), "proxy_command";
    /// Token endpoint override.
    TOKEN_URL = "admin.tokenUrl", [env::ADMIN_TOKEN_URL], None, "token_url";
    /// Header override.
    AUTHORIZATION_HEADER = "admin.authorizationHeader", [env::ADMIN_AUTHORIZATION_HEADER], None,
        "authorization_header";
}

impl Source {
    /// `/home/me/.flyte/config.yaml: admin.endpoint`, `environment variable FLYTE_PLATFORM_URL`,
    /// `explicit setting endpoint`.
    pub(crate) fn name(&self, key: Key) -> String {
        match self {
            Self::File(path) => format!("{}: {}", path.display(), key.yaml),
            Self::Env(used) => format!(
                "environment variable {}",
                key.env
                    .iter()
                    .find(|name| used.contains(name))
                    .or(key.env.first())
                    .unwrap_or(&"(none; this is a bug)")
            ),
            Self::Explicit => format!("explicit setting `{}`", key.setter),
        }
    }

    /// A [`Error::Config`] about `key` from this source.
    pub(crate) fn error(&self, key: Key, message: impl std::fmt::Display) -> Error {
        Error::config(format!("{}: {message}", self.name(key)))
    }
}

/// Every setting, each unset until a source sets it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layer {
    pub(crate) endpoint: Option<String>,
    pub(crate) insecure: Option<bool>,
    pub(crate) insecure_skip_verify: Option<bool>,
    pub(crate) ca_cert_file_path: Option<PathBuf>,
    pub(crate) auth_mode: Option<AuthMode>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) client_secret_location: Option<PathBuf>,
    pub(crate) client_secret_env_var: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) audience: Option<String>,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) proxy_command: Option<Vec<String>>,
    pub(crate) http_proxy_url: Option<String>,
    pub(crate) token_url: Option<String>,
    pub(crate) authorization_header: Option<String>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) per_retry_timeout: Option<Duration>,
    pub(crate) command_timeout: Option<Duration>,
    pub(crate) pkce_timeout: Option<Duration>,
    pub(crate) pkce_refresh_time: Option<Duration>,
    pub(crate) device_timeout: Option<Duration>,
    pub(crate) device_poll_interval: Option<Duration>,
    pub(crate) device_refresh_time: Option<Duration>,
    pub(crate) disable_keyring: Option<bool>,
    pub(crate) write_all_layouts: Option<bool>,
}

impl Layer {
    /// Normalises and checks the values whose form the types alone do not guarantee:
    /// the endpoint parses as a [`flyte_auth_core::Endpoint`], URLs and the header name are checked.
    pub(crate) fn checked(mut self, source: &Source) -> Result<Self, Error> {
        if let Some(endpoint) = self.endpoint.take() {
            flyte_auth_core::Endpoint::parse(&endpoint).map_err(|e| match e {
                Error::Config { message } => source.error(ENDPOINT, message),
                other => other,
            })?;
            self.endpoint = Some(endpoint.trim().to_owned());
        }
        if let Some(url) = &self.http_proxy_url {
            check_url(url, &["http", "https", "socks5", "socks5h"])
                .map_err(|m| source.error(HTTP_PROXY_URL, m))?;
        }
        if let Some(url) = &self.token_url {
            check_url(url, &["http", "https"]).map_err(|m| source.error(TOKEN_URL, m))?;
        }
        if let Some(name) = &self.authorization_header {
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                source.error(
                    AUTHORIZATION_HEADER,
                    format!(
                        "`{name}` is not a valid HTTP header name (expected letters, digits \
                         and `-`, such as `authorization` or `flyte-authorization`)"
                    ),
                )
            })?;
        }
        // Not echoed: a common mistake is to put the secret itself here.
        if self
            .client_secret_env_var
            .as_deref()
            .is_some_and(|name| !is_env_var_name(name))
        {
            return Err(source.error(
                CLIENT_SECRET_ENV_VAR,
                "expected the name of an environment variable (letters, digits and `_`, \
                 such as `FLYTE_CLIENT_SECRET`), not the secret itself; the value is not \
                 shown in case it is the secret",
            ));
        }
        Ok(self)
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    let expected = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ");
    let ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme))
            && !rest.is_empty()
            && !rest.starts_with('/')
            && !url.contains(char::is_whitespace)
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid URL `{}`: expected an absolute URL starting with {expected}",
            flyte_auth_core::redact_url(url)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_variable_of_each_file_key_is_the_flyte_2_sdks_name() {
        for key in ALL {
            if key.yaml.starts_with("admin.") {
                let sdk = format!("FLYTE_{}", key.yaml.to_uppercase().replace('.', "_"));
                assert_eq!(key.env.first().copied(), Some(sdk.as_str()), "{key:?}");
            }
            assert!(
                key.env.iter().all(|name| name.starts_with("FLYTE_")),
                "{key:?}"
            );
        }
    }

    #[test]
    fn endpoints_are_checked_and_kept_as_written() {
        for raw in [
            "dns:///flyte.example.org:443",
            "flyte.example.org",
            "https://flyte.example.org",
            "http://localhost:30080",
            "[::1]:8089",
        ] {
            let layer = Layer {
                endpoint: Some(format!("  {raw} ")),
                ..Layer::default()
            };
            let checked = layer.checked(&Source::Explicit).unwrap();
            assert_eq!(checked.endpoint.as_deref(), Some(raw));
        }
    }

    #[test]
    fn bad_endpoints_say_what_is_expected_and_where() {
        for raw in [
            "grpc://flyte.example.org",
            "dns:///",
            "flyte.example.org:99999",
            "a b",
        ] {
            let layer = Layer {
                endpoint: Some(raw.to_owned()),
                ..Layer::default()
            };
            let err = layer.checked(&Source::Explicit).unwrap_err().to_string();
            assert!(err.contains("dns:///host[:port]"), "{raw}: {err}");
            assert!(err.contains("endpoint"), "{raw}: {err}");
        }
    }

    #[test]
    fn urls_need_an_allowed_scheme_and_a_host() {
        assert!(check_url("http://proxy:3128", &["http", "https"]).is_ok());
        assert!(check_url("HTTPS://idp.example.org/token", &["http", "https"]).is_ok());
        let err = check_url("proxy:3128", &["http", "https"]).unwrap_err();
        assert!(err.contains("http://, https://"), "{err}");
        assert!(check_url("ftp://x", &["http", "https"]).is_err());
        assert!(check_url("http:///path", &["http", "https"]).is_err());
    }

    #[test]
    fn a_secret_written_where_a_variable_name_belongs_is_refused_without_showing_it() {
        let layer = Layer {
            client_secret_env_var: Some("p@ss/w0rd+xyz".into()),
            ..Layer::default()
        };
        let err = layer
            .checked(&Source::Env(vec![env::CREDENTIALS_CLIENT_SECRET_ENV_VAR]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR"),
            "{err}"
        );
        assert!(
            err.contains("expected the name of an environment variable"),
            "{err}"
        );
        assert!(!err.contains("p@ss"), "{err}");
        let ok = Layer {
            client_secret_env_var: Some("_MY_SECRET_2".into()),
            ..Layer::default()
        };
        assert!(ok.checked(&Source::Env(Vec::new())).is_ok());
    }

    #[test]
    fn errors_name_the_setting_as_its_source_spells_it() {
        let file = Source::File(PathBuf::from("/etc/flyte/config.yaml"));
        assert_eq!(
            file.name(ENDPOINT),
            "/etc/flyte/config.yaml: admin.endpoint"
        );
        assert_eq!(
            Source::Env(vec![env::PLATFORM_URL]).name(ENDPOINT),
            "environment variable FLYTE_PLATFORM_URL"
        );
        assert_eq!(
            Source::Explicit.name(ENDPOINT),
            "explicit setting `endpoint`"
        );
        let layer = Layer {
            authorization_header: Some("bad header".into()),
            ..Layer::default()
        };
        let err = layer.checked(&file).unwrap_err().to_string();
        assert!(
            err.contains("/etc/flyte/config.yaml: admin.authorizationHeader: `bad header`"),
            "{err}"
        );
    }
}
