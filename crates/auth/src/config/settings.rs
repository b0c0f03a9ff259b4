//! [`Settings`]: the values one source (the file, the environment, explicit values) sets.
//! `Debug` shows no secret, no argument of a command and no user info of a URL (their
//! types' `Debug`).
//!
//! The YAML file's `admin` section is this struct, deserialised: its keys are the fields'
//! names in camelCase, and every value is read [leniently](super::value::lenient). The
//! variables and flytekit's INI options of each setting are rows of [`table`](super::table).
//! Unset values stay unset (`None`): the flow that uses a setting applies its own default.

use std::{fmt, path::PathBuf, time::Duration};

use flyte_auth_core::{Endpoint, Error, SecretString, redact_url};
use serde::{Deserialize, Deserializer};

use super::{
    AuthMode, table,
    value::{Command, Url, lenient},
};

/// Every setting of one source, each unset until the source sets it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Settings {
    #[serde(deserialize_with = "lenient")]
    pub(crate) endpoint: Option<Endpoint>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) insecure: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) insecure_skip_verify: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) ca_cert_file_path: Option<PathBuf>,
    #[serde(rename = "httpProxyURL", deserialize_with = "lenient")]
    pub(crate) http_proxy_url: Option<Url>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) disable_keyring: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) write_all_layouts: Option<bool>,
    #[serde(rename = "authType", deserialize_with = "lenient")]
    pub(crate) auth_mode: Option<AuthMode>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) client_id: Option<String>,
    /// No key in the YAML file.
    #[serde(skip)]
    pub(crate) client_secret: Option<SecretString>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) client_secret_location: Option<PathBuf>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) client_secret_env_var: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) scopes: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) audience: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) command: Option<Command>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) proxy_command: Option<Command>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) proxy_google_audience: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) google_audience: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) token_url: Option<Url>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) authorization_header: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) max_retries: Option<u32>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) per_retry_timeout: Option<Duration>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) command_timeout: Option<Duration>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) token_refresh_window: Option<Duration>,
    #[serde(deserialize_with = "null_is_default")]
    pub(crate) pkce_config: PkceConfig,
    #[serde(deserialize_with = "null_is_default")]
    pub(crate) device_flow_config: DeviceFlowConfig,
}

/// `admin.pkceConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PkceConfig {
    #[serde(deserialize_with = "lenient")]
    pub(crate) timeout: Option<Duration>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) refresh_time: Option<Duration>,
}

/// `admin.deviceFlowConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct DeviceFlowConfig {
    #[serde(deserialize_with = "lenient")]
    pub(crate) timeout: Option<Duration>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) poll_interval: Option<Duration>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) refresh_time: Option<Duration>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) pkce: Option<bool>,
}

/// A section written with nothing under it (`admin:` alone) sets nothing.
pub(crate) fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Settings {
    /// Each setting from `self`, else from `lower`.
    pub(crate) fn or(mut self, lower: Self) -> Self {
        macro_rules! or {
            ($($($field:ident).+),*) => {
                $(if self.$($field).+.is_none() {
                    self.$($field).+ = lower.$($field).+;
                })*
            };
        }
        or! {
            endpoint, insecure, insecure_skip_verify, ca_cert_file_path, http_proxy_url,
            disable_keyring, write_all_layouts, auth_mode, client_id, client_secret,
            client_secret_location, client_secret_env_var, scopes, audience, command,
            proxy_command, proxy_google_audience, google_audience, token_url,
            authorization_header, max_retries, per_retry_timeout, command_timeout,
            token_refresh_window, pkce_config.timeout, pkce_config.refresh_time,
            device_flow_config.timeout, device_flow_config.poll_interval,
            device_flow_config.refresh_time, device_flow_config.pkce
        }
        self
    }

    /// `self` without what is said about one server only (where its tokens are asked for, with
    /// which scopes, audience and header, and the proxy in front of it), and the names of the
    /// settings it had: for a layer that names another server than an API key's.
    pub(crate) fn without_server_settings(mut self) -> (Self, Vec<&'static str>) {
        let mut dropped = Vec::new();
        macro_rules! drop_set {
            ($($field:ident: $name:literal),*) => {
                $(if self.$field.take().is_some() {
                    dropped.push($name);
                })*
            };
        }
        drop_set! {
            token_url: "tokenUrl", scopes: "scopes", audience: "audience",
            authorization_header: "authorizationHeader", proxy_command: "proxyCommand",
            proxy_google_audience: "proxyGoogleAudience"
        }
        (self, dropped)
    }

    /// Checks the values whose form their type alone does not guarantee: the URLs, the
    /// header name and the name of the secret's variable.
    pub(crate) fn checked(self, source: &Source) -> Result<Self, Error> {
        if let Some(url) = &self.http_proxy_url {
            check_url(url, &["http", "https", "socks5", "socks5h"])
                .map_err(|m| source.error("http_proxy_url", m))?;
        }
        if let Some(url) = &self.token_url {
            check_url(url, &["http", "https"]).map_err(|m| source.error("token_url", m))?;
        }
        if let Some(name) = &self.authorization_header {
            flyte_auth_core::parse_header_name(name).map_err(|_| {
                source.error(
                    "authorization_header",
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
                "client_secret_env_var",
                "expected the name of an environment variable (letters, digits and `_`, \
                 such as `FLYTE_CLIENT_SECRET`), not the secret itself; the value is not \
                 shown in case it is the secret",
            ));
        }
        Ok(self)
    }
}

/// Where [`Settings`] came from; names a setting the way its source spells it.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The YAML or INI config file at this path.
    File(PathBuf),
    /// `FLYTE_*` environment variables; these were set.
    Env(Vec<&'static str>),
    /// Values set on the builder.
    Explicit,
}

impl Source {
    /// The setting `field` as this source names it: `/home/me/.flyte/config.yaml:
    /// admin.endpoint`, `environment variable FLYTE_PLATFORM_URL`, `explicit setting
    /// `endpoint``.
    pub(crate) fn name(&self, field: &str) -> String {
        let row = table::row_of(field);
        match (self, row) {
            (Self::File(path), Some(row)) => match (row.yaml, row.ini) {
                (Some(yaml), _) => format!("{}: {yaml}", path.display()),
                (None, Some((section, option))) => {
                    format!("{}: [{section}] {option}", path.display())
                }
                (None, None) => format!("{}: {field}", path.display()),
            },
            (Self::Env(used), Some(row)) => {
                let name = row.env.iter().find(|name| used.contains(name));
                format!(
                    "environment variable {}",
                    name.or(row.env.first()).unwrap_or(&field)
                )
            }
            (Self::File(path), None) => format!("{}: {field}", path.display()),
            (Self::Env(_), None) | (Self::Explicit, _) => format!("explicit setting `{field}`"),
        }
    }

    /// A [`Error::Config`] about `field` from this source.
    pub(crate) fn error(&self, field: &str, message: impl fmt::Display) -> Error {
        Error::config(format!("{}: {message}", self.name(field)))
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
            redact_url(url)
        ))
    }
}

#[cfg(all(test, feature = "config"))]
mod tests {
    use super::*;
    use crate::config::{env, table::ROWS};

    #[test]
    fn the_first_variable_of_each_file_key_is_the_flyte_2_sdks_name() {
        for key in ROWS {
            if let (Some(yaml), Some(first)) = (key.yaml, key.env.first())
                && yaml.starts_with("admin.")
            {
                let sdk = format!("FLYTE_{}", yaml.to_uppercase().replace('.', "_"));
                assert_eq!(*first, sdk, "{key:?}");
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
            let cfg = crate::PlatformConfig::for_endpoint(format!("  {raw} ")).unwrap();
            assert_eq!(cfg.endpoint().as_written(), raw);
            let (layer, _) =
                env::read(&|name| (name == env::PLATFORM_URL).then(|| format!(" {raw}  ")))
                    .unwrap();
            assert_eq!(layer.endpoint.unwrap().as_written(), raw);
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
            let err = crate::PlatformConfig::for_endpoint(raw)
                .unwrap_err()
                .to_string();
            assert!(err.contains("dns:///host[:port]"), "{raw}: {err}");
            assert!(err.contains("explicit setting `endpoint`"), "{raw}: {err}");
            let err = env::read(&|name| (name == env::ADMIN_ENDPOINT).then(|| raw.to_owned()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("dns:///host[:port]"), "{raw}: {err}");
            assert!(
                err.contains("environment variable FLYTE_ADMIN_ENDPOINT"),
                "{raw}: {err}"
            );
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
        let layer = Settings {
            client_secret_env_var: Some("p@ss/w0rd+xyz".into()),
            ..Settings::default()
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
        let ok = Settings {
            client_secret_env_var: Some("_MY_SECRET_2".into()),
            ..Settings::default()
        };
        assert!(ok.checked(&Source::Env(Vec::new())).is_ok());
    }

    #[test]
    fn errors_name_the_setting_as_its_source_spells_it() {
        let file = Source::File(PathBuf::from("/etc/flyte/config.yaml"));
        assert_eq!(
            file.name("endpoint"),
            "/etc/flyte/config.yaml: admin.endpoint"
        );
        assert_eq!(
            Source::Env(vec![env::PLATFORM_URL]).name("endpoint"),
            "environment variable FLYTE_PLATFORM_URL"
        );
        assert_eq!(
            Source::Explicit.name("endpoint"),
            "explicit setting `endpoint`"
        );
        let layer = Settings {
            authorization_header: Some("bad header".into()),
            ..Settings::default()
        };
        let err = layer.checked(&file).unwrap_err().to_string();
        assert!(
            err.contains("/etc/flyte/config.yaml: admin.authorizationHeader: `bad header`"),
            "{err}"
        );
    }
}
