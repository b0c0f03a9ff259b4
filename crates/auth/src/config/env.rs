//! The environment variables the platform config reads: the Flyte 2 SDK's `FLYTE_ADMIN_*`
//! names and flytekit's `FLYTE_PLATFORM_*` / `FLYTE_CREDENTIALS_*` names.
//!
//! Each overrides the matching key of the config file. An empty value counts as unset. Where
//! both names of a setting are set, the `FLYTE_ADMIN_*` one wins (it is named after the file
//! key, and the newer SDK reads only it).

use std::path::PathBuf;

use flyte_auth_core::{Error, SecretString};

use super::{
    AuthMode,
    layer::{self, Key, Layer},
};

/// Path of the YAML config file (flytectl's name), searched after `./config.yaml`,
/// `./.flyte/config.yaml`, `<git root>/.flyte/config.yaml` and [`UCTL_CONFIG`].
pub const FLYTECTL_CONFIG: &str = "FLYTECTL_CONFIG";
/// Path of the YAML config file (Union's name), searched before [`FLYTECTL_CONFIG`].
pub const UCTL_CONFIG: &str = "UCTL_CONFIG";
/// An API key of the Flyte 2 SDK: base64 of `endpoint:client_id:client_secret:org`. It selects
/// client credentials and supplies the endpoint when nothing else does.
pub const API_KEY: &str = "FLYTE_API_KEY";

/// `admin.endpoint` (Flyte 2 SDK).
pub const ADMIN_ENDPOINT: &str = "FLYTE_ADMIN_ENDPOINT";
/// `admin.insecure` (Flyte 2 SDK).
pub const ADMIN_INSECURE: &str = "FLYTE_ADMIN_INSECURE";
/// `admin.insecureSkipVerify` (Flyte 2 SDK).
pub const ADMIN_INSECURE_SKIP_VERIFY: &str = "FLYTE_ADMIN_INSECURESKIPVERIFY";
/// `admin.caCertFilePath` (Flyte 2 SDK).
pub const ADMIN_CA_CERT_FILE_PATH: &str = "FLYTE_ADMIN_CACERTFILEPATH";
/// `admin.httpProxyURL` (Flyte 2 SDK).
pub const ADMIN_HTTP_PROXY_URL: &str = "FLYTE_ADMIN_HTTPPROXYURL";
/// `admin.disableKeyring` (Flyte 2 SDK): keep tokens out of the system keyring.
pub const ADMIN_DISABLE_KEYRING: &str = "FLYTE_ADMIN_DISABLEKEYRING";
/// `admin.writeAllLayouts` (flyte-auth): write the keyring entries of every Flyte tool
/// (flytekit, the Flyte 2 SDK, flytectl) on each login, even where none held one.
pub const ADMIN_WRITE_ALL_LAYOUTS: &str = "FLYTE_ADMIN_WRITEALLLAYOUTS";
/// `admin.authType` (Flyte 2 SDK).
pub const ADMIN_AUTH_TYPE: &str = "FLYTE_ADMIN_AUTHTYPE";
/// `admin.clientId` (Flyte 2 SDK).
pub const ADMIN_CLIENT_ID: &str = "FLYTE_ADMIN_CLIENTID";
/// `admin.clientSecretLocation` (Flyte 2 SDK).
pub const ADMIN_CLIENT_SECRET_LOCATION: &str = "FLYTE_ADMIN_CLIENTSECRETLOCATION";
/// `admin.clientSecretEnvVar` (Flyte 2 SDK).
pub const ADMIN_CLIENT_SECRET_ENV_VAR: &str = "FLYTE_ADMIN_CLIENTSECRETENVVAR";
/// `admin.scopes` (Flyte 2 SDK).
pub const ADMIN_SCOPES: &str = "FLYTE_ADMIN_SCOPES";
/// `admin.audience`.
pub const ADMIN_AUDIENCE: &str = "FLYTE_ADMIN_AUDIENCE";
/// `admin.command` (Flyte 2 SDK).
pub const ADMIN_COMMAND: &str = "FLYTE_ADMIN_COMMAND";
/// `admin.proxyCommand` (Flyte 2 SDK).
pub const ADMIN_PROXY_COMMAND: &str = "FLYTE_ADMIN_PROXYCOMMAND";
/// `admin.tokenUrl`.
pub const ADMIN_TOKEN_URL: &str = "FLYTE_ADMIN_TOKENURL";
/// `admin.authorizationHeader`.
pub const ADMIN_AUTHORIZATION_HEADER: &str = "FLYTE_ADMIN_AUTHORIZATIONHEADER";

/// `admin.endpoint` (flytekit).
pub const PLATFORM_URL: &str = "FLYTE_PLATFORM_URL";
/// `admin.insecure` (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`; flytekit).
pub const PLATFORM_INSECURE: &str = "FLYTE_PLATFORM_INSECURE";
/// `admin.insecureSkipVerify` (flytekit).
pub const PLATFORM_INSECURE_SKIP_VERIFY: &str = "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY";
/// `admin.caCertFilePath` (flytekit).
pub const PLATFORM_CA_CERT_FILE_PATH: &str = "FLYTE_PLATFORM_CA_CERT_FILE_PATH";
/// `admin.httpProxyURL` (flytekit).
pub const PLATFORM_HTTP_PROXY_URL: &str = "FLYTE_PLATFORM_HTTP_PROXY_URL";
/// `admin.clientId` (flytekit).
pub const CREDENTIALS_CLIENT_ID: &str = "FLYTE_CREDENTIALS_CLIENT_ID";
/// The client secret itself (no file key; it does not switch the auth mode). Surrounding
/// white space is removed.
pub const CREDENTIALS_CLIENT_SECRET: &str = "FLYTE_CREDENTIALS_CLIENT_SECRET";
/// `admin.clientSecretLocation` (flytekit).
pub const CREDENTIALS_CLIENT_SECRET_LOCATION: &str = "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION";
/// `admin.clientSecretEnvVar` (flytekit).
pub const CREDENTIALS_CLIENT_SECRET_ENV_VAR: &str = "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR";
/// `admin.authType` (flytekit).
pub const CREDENTIALS_AUTH_MODE: &str = "FLYTE_CREDENTIALS_AUTH_MODE";
/// `admin.scopes`, comma-separated (flytekit).
pub const CREDENTIALS_SCOPES: &str = "FLYTE_CREDENTIALS_SCOPES";
/// `admin.audience` (flytekit).
pub const CREDENTIALS_AUDIENCE: &str = "FLYTE_CREDENTIALS_AUDIENCE";
/// `admin.command`: comma-separated argv as flytekit reads it (`gcloud,auth,print-access-token`),
/// or a JSON array of strings when an argument contains a comma.
pub const CREDENTIALS_COMMAND: &str = "FLYTE_CREDENTIALS_COMMAND";
/// `admin.proxyCommand`, written like [`CREDENTIALS_COMMAND`].
pub const CREDENTIALS_PROXY_COMMAND: &str = "FLYTE_CREDENTIALS_PROXY_COMMAND";

/// Reads every `FLYTE_*` variable into a layer; also returns the names of those that were set.
pub(crate) fn read(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Layer, Vec<&'static str>), Error> {
    let used = std::cell::RefCell::new(Vec::new());
    let get = |key: Key| {
        key.env.iter().find_map(|name| {
            let value = env(name).filter(|v| !v.trim().is_empty())?;
            used.borrow_mut().push(*name);
            Some((*name, value))
        })
    };
    let string = |key: Key| get(key).map(|(_, v)| v.trim().to_owned());
    let flag = |key: Key| get(key).map(|(n, v)| parse_bool(n, &v)).transpose();
    let list = |key: Key| get(key).map(|(n, v)| parse_list(n, &v)).transpose();
    let layer = Layer {
        endpoint: string(layer::ENDPOINT),
        insecure: flag(layer::INSECURE)?,
        insecure_skip_verify: flag(layer::INSECURE_SKIP_VERIFY)?,
        ca_cert_file_path: string(layer::CA_CERT_FILE_PATH).map(PathBuf::from),
        http_proxy_url: string(layer::HTTP_PROXY_URL),
        disable_keyring: flag(layer::DISABLE_KEYRING)?,
        write_all_layouts: flag(layer::WRITE_ALL_LAYOUTS)?,
        client_id: string(layer::CLIENT_ID),
        client_secret: string(layer::CLIENT_SECRET).map(SecretString::from),
        client_secret_location: string(layer::CLIENT_SECRET_LOCATION).map(PathBuf::from),
        client_secret_env_var: string(layer::CLIENT_SECRET_ENV_VAR),
        auth_mode: get(layer::AUTH_MODE)
            .map(|(name, v)| {
                v.parse::<AuthMode>()
                    .map_err(|e| Error::config(format!("environment variable {name}: {e}")))
            })
            .transpose()?,
        scopes: list(layer::SCOPES)?,
        audience: string(layer::AUDIENCE),
        command: list(layer::COMMAND)?,
        proxy_command: list(layer::PROXY_COMMAND)?,
        token_url: string(layer::TOKEN_URL),
        authorization_header: string(layer::AUTHORIZATION_HEADER),
        ..Layer::default()
    };
    Ok((layer, used.into_inner()))
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
        read(&move |name| map.get(name).cloned()).map(|(layer, _)| layer)
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
