//! The environment variables the platform config reads (flytekit's names).
//!
//! Each overrides the matching key of the config file. An empty value counts as unset.

use std::path::PathBuf;

use flyte_auth_core::{Error, SecretString};

use super::{AuthMode, layer::Layer};

/// Path of the YAML config file, instead of `~/.flyte/config.yaml`.
pub const FLYTECTL_CONFIG: &str = "FLYTECTL_CONFIG";
/// `admin.endpoint`.
pub const PLATFORM_URL: &str = "FLYTE_PLATFORM_URL";
/// `admin.insecure` (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
pub const PLATFORM_INSECURE: &str = "FLYTE_PLATFORM_INSECURE";
/// `admin.insecureSkipVerify`.
pub const PLATFORM_INSECURE_SKIP_VERIFY: &str = "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY";
/// `admin.caCertFilePath`.
pub const PLATFORM_CA_CERT_FILE_PATH: &str = "FLYTE_PLATFORM_CA_CERT_FILE_PATH";
/// `admin.httpProxyURL`.
pub const PLATFORM_HTTP_PROXY_URL: &str = "FLYTE_PLATFORM_HTTP_PROXY_URL";
/// `admin.clientId`.
pub const CREDENTIALS_CLIENT_ID: &str = "FLYTE_CREDENTIALS_CLIENT_ID";
/// The client secret itself (no file key; it does not switch the auth mode).
pub const CREDENTIALS_CLIENT_SECRET: &str = "FLYTE_CREDENTIALS_CLIENT_SECRET";
/// `admin.clientSecretLocation`.
pub const CREDENTIALS_CLIENT_SECRET_LOCATION: &str = "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION";
/// `admin.clientSecretEnvVar`.
pub const CREDENTIALS_CLIENT_SECRET_ENV_VAR: &str = "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR";
/// `admin.authType`.
pub const CREDENTIALS_AUTH_MODE: &str = "FLYTE_CREDENTIALS_AUTH_MODE";
/// `admin.scopes`, comma-separated.
pub const CREDENTIALS_SCOPES: &str = "FLYTE_CREDENTIALS_SCOPES";
/// `admin.audience`.
pub const CREDENTIALS_AUDIENCE: &str = "FLYTE_CREDENTIALS_AUDIENCE";
/// `admin.command`: comma-separated argv as flytekit reads it (`gcloud,auth,print-access-token`),
/// or a JSON array of strings when an argument contains a comma.
pub const CREDENTIALS_COMMAND: &str = "FLYTE_CREDENTIALS_COMMAND";
/// `admin.proxyCommand`, written like [`CREDENTIALS_COMMAND`].
pub const CREDENTIALS_PROXY_COMMAND: &str = "FLYTE_CREDENTIALS_PROXY_COMMAND";

/// Reads every `FLYTE_*` variable into a layer.
pub(crate) fn read(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, Error> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let string = |name: &str| get(name).map(|v| v.trim().to_owned());
    let flag = |name: &str| get(name).map(|v| parse_bool(name, &v)).transpose();
    let list = |name: &str| get(name).map(|v| parse_list(name, &v)).transpose();
    Ok(Layer {
        endpoint: string(PLATFORM_URL),
        insecure: flag(PLATFORM_INSECURE)?,
        insecure_skip_verify: flag(PLATFORM_INSECURE_SKIP_VERIFY)?,
        ca_cert_file_path: string(PLATFORM_CA_CERT_FILE_PATH).map(PathBuf::from),
        http_proxy_url: string(PLATFORM_HTTP_PROXY_URL),
        client_id: string(CREDENTIALS_CLIENT_ID),
        // The secret is taken verbatim: spaces may be part of it.
        client_secret: get(CREDENTIALS_CLIENT_SECRET).map(SecretString::from),
        client_secret_location: string(CREDENTIALS_CLIENT_SECRET_LOCATION).map(PathBuf::from),
        client_secret_env_var: string(CREDENTIALS_CLIENT_SECRET_ENV_VAR),
        auth_mode: string(CREDENTIALS_AUTH_MODE)
            .map(|v| {
                v.parse::<AuthMode>().map_err(|e| {
                    Error::config(format!("environment variable {CREDENTIALS_AUTH_MODE}: {e}"))
                })
            })
            .transpose()?,
        scopes: list(CREDENTIALS_SCOPES)?,
        audience: string(CREDENTIALS_AUDIENCE),
        command: list(CREDENTIALS_COMMAND)?,
        proxy_command: list(CREDENTIALS_PROXY_COMMAND)?,
        ..Layer::default()
    })
}

/// flytekit's boolean words, strictly: anything else is an error rather than `true`.
pub(crate) fn parse_bool_word(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    parse_bool_word(value).ok_or_else(|| {
        Error::config(format!(
            "environment variable {name}: invalid value `{}`, expected a boolean (true or false)",
            value.trim()
        ))
    })
}

/// `a,b,c` (items trimmed, empty items dropped), or a JSON array of strings.
fn parse_list(name: &str, value: &str) -> Result<Vec<String>, Error> {
    let value = value.trim();
    if value.starts_with('[') {
        return parse_json_strings(value).ok_or_else(|| {
            Error::config(format!(
                "environment variable {name}: a value starting with `[` must be a JSON array \
                 of strings, such as [\"gcloud\", \"auth\", \"print-access-token\"]"
            ))
        });
    }
    Ok(split_list(value))
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A JSON array of strings, read with the YAML parser (JSON is YAML).
fn parse_json_strings(value: &str) -> Option<Vec<String>> {
    super::file::from_yaml::<Vec<String>>(value).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn layer(vars: &[(&str, &str)]) -> Result<Layer, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        read(&move |name| map.get(name).cloned())
    }

    #[test]
    fn lists_are_comma_separated_like_flytekit() {
        let l = layer(&[
            (CREDENTIALS_SCOPES, "openid, offline_access,,all"),
            (CREDENTIALS_COMMAND, "gcloud,auth,print-access-token"),
        ])
        .unwrap();
        assert_eq!(l.scopes.unwrap(), ["openid", "offline_access", "all"]);
        assert_eq!(l.command.unwrap(), ["gcloud", "auth", "print-access-token"]);
    }

    #[test]
    fn a_command_may_be_a_json_array_when_an_argument_has_a_comma() {
        let l = layer(&[(
            CREDENTIALS_PROXY_COMMAND,
            r#"["get-token", "--audience=a,b"]"#,
        )])
        .unwrap();
        assert_eq!(l.proxy_command.unwrap(), ["get-token", "--audience=a,b"]);
        let err = layer(&[(CREDENTIALS_COMMAND, "[not json")]).unwrap_err();
        assert!(
            err.to_string().contains("FLYTE_CREDENTIALS_COMMAND")
                && err.to_string().contains("JSON array"),
            "{err}"
        );
    }

    #[test]
    fn booleans_are_strict() {
        for (word, want) in [
            ("True", true),
            ("1", true),
            ("yes", true),
            ("off", false),
            ("FALSE", false),
        ] {
            assert_eq!(
                layer(&[(PLATFORM_INSECURE, word)]).unwrap().insecure,
                Some(want),
                "{word}"
            );
        }
        let err = layer(&[(PLATFORM_INSECURE_SKIP_VERIFY, "maybe")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("FLYTE_PLATFORM_INSECURE_SKIP_VERIFY"), "{err}");
        assert!(
            err.contains("`maybe`") && err.contains("expected a boolean"),
            "{err}"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let l = layer(&[
            (PLATFORM_URL, ""),
            (PLATFORM_INSECURE, " "),
            (CREDENTIALS_AUTH_MODE, ""),
        ])
        .unwrap();
        assert!(l.endpoint.is_none() && l.insecure.is_none() && l.auth_mode.is_none());
    }

    #[test]
    fn an_invalid_mode_names_the_variable_and_the_accepted_names() {
        let err = layer(&[(CREDENTIALS_AUTH_MODE, "o auth")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("FLYTE_CREDENTIALS_AUTH_MODE"), "{err}");
        assert!(
            err.contains("`o auth`") && err.contains("external_process"),
            "{err}"
        );
    }

    #[test]
    fn another_mode_name_is_a_plugin_name() {
        let l = layer(&[(CREDENTIALS_AUTH_MODE, "corp-sso")]).unwrap();
        assert_eq!(l.auth_mode, Some(AuthMode::Plugin("corp-sso".into())));
    }
}
