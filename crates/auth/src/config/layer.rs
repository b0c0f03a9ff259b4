//! One source of settings (the file, the environment, explicit values) before they are merged.

use std::path::PathBuf;

use flyte_auth_core::Error;

use super::settings::{Layer, key};

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

/// A setting's names in each source; [`settings`](super::settings) declares one per setting
/// (`key::endpoint`, ...).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// The field, the getter and the builder method (`client_id`).
    pub(crate) field: &'static str,
    /// The kind of value ([`kind`](super::kind)): `Text`, `Flag`, `List`, ...
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "read by the tests of every setting")
    )]
    pub(crate) kind: &'static str,
    /// Dotted path in the YAML file; none for the client secret.
    pub(crate) yaml: Option<&'static str>,
    /// Environment variables, the first set one wins: the Flyte 2 SDK's `FLYTE_ADMIN_*` name
    /// (the YAML key upper-cased), then flytekit's `FLYTE_PLATFORM_*`/`FLYTE_CREDENTIALS_*`.
    pub(crate) env: &'static [&'static str],
    /// `(section, option)` in flytekit's INI file.
    pub(crate) ini: Option<(&'static str, &'static str)>,
}

impl Source {
    /// `/home/me/.flyte/config.yaml: admin.endpoint`, `environment variable FLYTE_PLATFORM_URL`,
    /// `explicit setting endpoint`.
    pub(crate) fn name(&self, key: Key) -> String {
        match self {
            Self::File(path) => match (key.yaml, key.ini) {
                (Some(yaml), _) => format!("{}: {yaml}", path.display()),
                (None, Some((section, option))) => {
                    format!("{}: [{section}] {option}", path.display())
                }
                (None, None) => format!("{}: {}", path.display(), key.field),
            },
            Self::Env(used) => format!(
                "environment variable {}",
                key.env
                    .iter()
                    .find(|name| used.contains(name))
                    .or(key.env.first())
                    .unwrap_or(&"(none; this is a bug)")
            ),
            Self::Explicit => format!("explicit setting `{}`", key.field),
        }
    }

    /// A [`Error::Config`] about `key` from this source.
    pub(crate) fn error(&self, key: Key, message: impl std::fmt::Display) -> Error {
        Error::config(format!("{}: {message}", self.name(key)))
    }
}

impl Layer {
    /// Checks the values whose form their kind alone does not guarantee: the URLs, the
    /// header name and the name of the secret's variable.
    pub(crate) fn checked(self, source: &Source) -> Result<Self, Error> {
        if let Some(url) = &self.http_proxy_url {
            check_url(url, &["http", "https", "socks5", "socks5h"])
                .map_err(|m| source.error(key::http_proxy_url, m))?;
        }
        if let Some(url) = &self.token_url {
            check_url(url, &["http", "https"]).map_err(|m| source.error(key::token_url, m))?;
        }
        if let Some(name) = &self.authorization_header {
            flyte_auth_core::parse_header_name(name).map_err(|_| {
                source.error(
                    key::authorization_header,
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
                key::client_secret_env_var,
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
    use crate::config::env;

    #[test]
    fn the_first_variable_of_each_file_key_is_the_flyte_2_sdks_name() {
        for key in key::ALL {
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
            file.name(key::endpoint),
            "/etc/flyte/config.yaml: admin.endpoint"
        );
        assert_eq!(
            Source::Env(vec![env::PLATFORM_URL]).name(key::endpoint),
            "environment variable FLYTE_PLATFORM_URL"
        );
        assert_eq!(
            Source::Explicit.name(key::endpoint),
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
