//! The environment variables the platform config reads: the Flyte 2 SDK's `FLYTE_ADMIN_*`
//! names and flytekit's `FLYTE_PLATFORM_*` / `FLYTE_CREDENTIALS_*` names.
//!
//! Each overrides the matching key of the config file. An empty value counts as unset. Where
//! both names of a setting are set, the `FLYTE_ADMIN_*` one wins (it is named after the file
//! key, and the newer SDK reads only it). Lists are comma-separated (items trimmed, empty ones
//! dropped), or a JSON array of strings when an item contains a comma; booleans are flytekit's
//! words (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case).

use flyte_auth_core::Error;

#[cfg(all(test, feature = "config"))]
use super::AuthMode;
use super::{settings::Settings, table, value::put};

/// Path of the YAML config file (flytectl's name), searched after `./config.yaml`,
/// `./.flyte/config.yaml`, `<git root>/.flyte/config.yaml` and [`UCTL_CONFIG`].
pub const FLYTECTL_CONFIG: &str = "FLYTECTL_CONFIG";
/// Path of the YAML config file (Union's name), searched before [`FLYTECTL_CONFIG`].
pub const UCTL_CONFIG: &str = "UCTL_CONFIG";
/// An API key of the Flyte 2 SDK: base64 of `endpoint:client_id:client_secret:org`. It selects
/// client credentials and supplies the endpoint when nothing else does.
pub const API_KEY: &str = "FLYTE_API_KEY";
/// Path of a YAML config file (the `union` package's name), used as named, searched after
/// [`FLYTECTL_CONFIG`].
pub const UNION_CONFIG: &str = "UNION_CONFIG";
/// Path of a YAML config file (the `union` package's older name), searched after
/// [`UNION_CONFIG`].
pub const UNIONAI_CONFIG: &str = "UNIONAI_CONFIG";
/// A Union API key (same format as [`API_KEY`]).
pub const UNION_API_KEY: &str = "UNION_API_KEY";
/// A Union serverless API key (same format as [`API_KEY`]).
pub const UNION_SERVERLESS_API_KEY: &str = "UNION_SERVERLESS_API_KEY";
/// A Union serverless API key, older name (same format as [`API_KEY`]).
pub const UNIONAI_SERVERLESS_API_KEY: &str = "UNIONAI_SERVERLESS_API_KEY";
/// The API key Union puts in a task pod (same format as [`API_KEY`]).
pub const UNION_EAGER_API_KEY: &str = "_UNION_EAGER_API_KEY";
/// The API key the `union` package passes on to tasks (same format as [`API_KEY`]).
pub const UNION_UNION_API_KEY: &str = "_UNION_UNION_API_KEY";
/// The API key the Flyte 2 SDK reads in a task pod after [`UNION_EAGER_API_KEY`].
pub const EAGER_API_KEY: &str = "EAGER_API_KEY";

/// Every variable that may carry an API key, in the order they are read; the first one set
/// wins. [`API_KEY`], the Flyte 2 SDK's and this crate's own name, comes first: a key set
/// there was meant for Flyte. Then the `union` package's names in the order it reads them,
/// then [`EAGER_API_KEY`], which the Flyte 2 SDK reads in a task pod after
/// [`UNION_EAGER_API_KEY`].
pub const API_KEYS: &[&str] = &[
    API_KEY,
    UNION_API_KEY,
    UNION_SERVERLESS_API_KEY,
    UNIONAI_SERVERLESS_API_KEY,
    UNION_EAGER_API_KEY,
    UNION_UNION_API_KEY,
    EAGER_API_KEY,
];

/// In a task pod, the Flyte endpoint when no API key names one and no config file is named
/// (the Flyte 2 SDK's `init_in_cluster`).
pub const TASK_POD_ENDPOINT: &str = "_U_EP_OVERRIDE";
/// In a task pod, plain text to the Flyte endpoint when no config file is named.
pub const TASK_POD_INSECURE: &str = "_U_INSECURE";
/// In a task pod, TLS without certificate verification when no config file is named.
pub const TASK_POD_INSECURE_SKIP_VERIFY: &str = "_U_INSECURE_SKIP_VERIFY";
/// Set in a Union task pod: the organization.
pub const TASK_POD_ORG: &str = "_U_ORG_NAME";
/// Set in every Kubernetes pod.
pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";

/// Whether `env` is a task pod's: one of [`TASK_POD_ENDPOINT`], [`TASK_POD_INSECURE`],
/// [`TASK_POD_INSECURE_SKIP_VERIFY`], [`TASK_POD_ORG`] or [`KUBERNETES_SERVICE_HOST`] is set
/// (never without the feature `config`).
pub(crate) fn in_task_pod(env: &dyn Fn(&str) -> Option<String>) -> bool {
    if !cfg!(feature = "config") {
        return false;
    }
    [
        TASK_POD_ENDPOINT,
        TASK_POD_INSECURE,
        TASK_POD_INSECURE_SKIP_VERIFY,
        TASK_POD_ORG,
        KUBERNETES_SERVICE_HOST,
    ]
    .iter()
    .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()))
}

/// The settings of a task pod's `_U_*` variables: the endpoint, `insecure`,
/// `insecure_skip_verify`; also returns the names of those that were set.
pub(crate) fn read_task_pod(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Settings, Vec<&'static str>), Error> {
    let mut settings = Settings::default();
    let mut used = Vec::new();
    let slots: [(&'static str, table::Setter); 3] = [
        (TASK_POD_ENDPOINT, |s, t| put(&mut s.endpoint, t)),
        (TASK_POD_INSECURE, |s, t| put(&mut s.insecure, t)),
        (TASK_POD_INSECURE_SKIP_VERIFY, |s, t| {
            put(&mut s.insecure_skip_verify, t)
        }),
    ];
    for (name, set) in slots {
        if let Some(value) = env(name).filter(|v| !v.trim().is_empty()) {
            set(&mut settings, &value)
                .map_err(|m| Error::config(format!("environment variable {name}: {m}")))?;
            used.push(name);
        }
    }
    Ok((settings, used))
}

/// Declares each setting's variables, each documented with the builder method of the setting it
/// sets; the table in `table.rs` reads them.
macro_rules! setting_variables {
    ($($name:ident = $value:literal => $setting:ident;)*) => {$(
        #[doc = concat!(
            "`", $value, "`: sets [`", stringify!($setting),
            "`](crate::config::PlatformConfigBuilder::", stringify!($setting), ")."
        )]
        pub const $name: &str = $value;
    )*};
}

setting_variables! {
    ADMIN_ENDPOINT = "FLYTE_ADMIN_ENDPOINT" => endpoint;
    PLATFORM_URL = "FLYTE_PLATFORM_URL" => endpoint;
    ADMIN_INSECURE = "FLYTE_ADMIN_INSECURE" => insecure;
    PLATFORM_INSECURE = "FLYTE_PLATFORM_INSECURE" => insecure;
    ADMIN_INSECURE_SKIP_VERIFY = "FLYTE_ADMIN_INSECURESKIPVERIFY" => insecure_skip_verify;
    PLATFORM_INSECURE_SKIP_VERIFY = "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY" => insecure_skip_verify;
    ADMIN_CA_CERT_FILE_PATH = "FLYTE_ADMIN_CACERTFILEPATH" => ca_cert_file_path;
    PLATFORM_CA_CERT_FILE_PATH = "FLYTE_PLATFORM_CA_CERT_FILE_PATH" => ca_cert_file_path;
    ADMIN_HTTP_PROXY_URL = "FLYTE_ADMIN_HTTPPROXYURL" => http_proxy_url;
    PLATFORM_HTTP_PROXY_URL = "FLYTE_PLATFORM_HTTP_PROXY_URL" => http_proxy_url;
    ADMIN_DISABLE_KEYRING = "FLYTE_ADMIN_DISABLEKEYRING" => disable_keyring;
    ADMIN_WRITE_ALL_LAYOUTS = "FLYTE_ADMIN_WRITEALLLAYOUTS" => write_all_layouts;
    ADMIN_AUTH_TYPE = "FLYTE_ADMIN_AUTHTYPE" => auth_mode;
    CREDENTIALS_AUTH_MODE = "FLYTE_CREDENTIALS_AUTH_MODE" => auth_mode;
    ADMIN_CLIENT_ID = "FLYTE_ADMIN_CLIENTID" => client_id;
    CREDENTIALS_CLIENT_ID = "FLYTE_CREDENTIALS_CLIENT_ID" => client_id;
    CREDENTIALS_CLIENT_SECRET = "FLYTE_CREDENTIALS_CLIENT_SECRET" => client_secret;
    ADMIN_CLIENT_SECRET_LOCATION = "FLYTE_ADMIN_CLIENTSECRETLOCATION" => client_secret_location;
    CREDENTIALS_CLIENT_SECRET_LOCATION = "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION" =>
        client_secret_location;
    ADMIN_CLIENT_SECRET_ENV_VAR = "FLYTE_ADMIN_CLIENTSECRETENVVAR" => client_secret_env_var;
    CREDENTIALS_CLIENT_SECRET_ENV_VAR = "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR" =>
        client_secret_env_var;
    ADMIN_SCOPES = "FLYTE_ADMIN_SCOPES" => scopes;
    CREDENTIALS_SCOPES = "FLYTE_CREDENTIALS_SCOPES" => scopes;
    ADMIN_AUDIENCE = "FLYTE_ADMIN_AUDIENCE" => audience;
    CREDENTIALS_AUDIENCE = "FLYTE_CREDENTIALS_AUDIENCE" => audience;
    ADMIN_COMMAND = "FLYTE_ADMIN_COMMAND" => command;
    CREDENTIALS_COMMAND = "FLYTE_CREDENTIALS_COMMAND" => command;
    ADMIN_PROXY_COMMAND = "FLYTE_ADMIN_PROXYCOMMAND" => proxy_command;
    CREDENTIALS_PROXY_COMMAND = "FLYTE_CREDENTIALS_PROXY_COMMAND" => proxy_command;
    ADMIN_PROXY_GOOGLE_AUDIENCE = "FLYTE_ADMIN_PROXYGOOGLEAUDIENCE" => proxy_google_audience;
    ADMIN_GOOGLE_AUDIENCE = "FLYTE_ADMIN_GOOGLEAUDIENCE" => google_audience;
    ADMIN_TOKEN_URL = "FLYTE_ADMIN_TOKENURL" => token_url;
    ADMIN_AUTHORIZATION_HEADER = "FLYTE_ADMIN_AUTHORIZATIONHEADER" => authorization_header;
    ADMIN_DEVICE_FLOW_CONFIG_PKCE = "FLYTE_ADMIN_DEVICEFLOWCONFIG_PKCE" => device_flow_pkce;
}

/// Reads every `FLYTE_*` variable; also returns the names of those that were set. Reads
/// none without the feature `config`.
pub(crate) fn read(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Settings, Vec<&'static str>), Error> {
    if !cfg!(feature = "config") {
        return Ok((Settings::default(), Vec::new()));
    }
    let mut used = Vec::new();
    let settings = table::read(
        |row| {
            row.env.iter().find_map(|name| {
                let value = env(name).filter(|v| !v.trim().is_empty())?;
                used.push(*name);
                Some(((*name).to_owned(), value))
            })
        },
        |name, message| Error::config(format!("environment variable {name}: {message}")),
    )?;
    Ok((settings, used))
}

/// flytekit's boolean words, strictly: `true`/`false`, `t`/`f`, `1`/`0`, `yes`/`no`, `y`/`n`,
/// `on`/`off`, in any case and trimmed; anything else is `None` rather than `true`.
///
/// ```
/// use flyte_auth::config::env::parse_bool_word;
///
/// assert_eq!(parse_bool_word(" Yes"), Some(true));
/// assert_eq!(parse_bool_word("0"), Some(false));
/// assert_eq!(parse_bool_word("sure"), None);
/// ```
pub fn parse_bool_word(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "on" => Some(true),
        "false" | "f" | "0" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// `a,b,c` (items trimmed, empty items dropped), or a JSON array of strings; the error says
/// what a value starting with `[` must be.
pub(crate) fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let value = value.trim();
    if value.starts_with('[') {
        return parse_json_strings(value).ok_or_else(|| {
            "a value starting with `[` must be a JSON array of strings, such as \
             [\"gcloud\", \"auth\", \"print-access-token\"]"
                .to_owned()
        });
    }
    Ok(split_list(value))
}

/// A comma-separated list as flytekit reads one (`FLYTE_CREDENTIALS_SCOPES`): items trimmed,
/// empty ones dropped.
///
/// ```
/// use flyte_auth::config::env::split_list;
///
/// assert_eq!(split_list("openid, offline_access,,all "), ["openid", "offline_access", "all"]);
/// assert!(split_list(" , ").is_empty());
/// ```
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A JSON array of strings, read with the YAML parser (JSON is YAML); none without the
/// feature `config` (nothing reads text then).
fn parse_json_strings(value: &str) -> Option<Vec<String>> {
    #[cfg(feature = "config")]
    return super::file::from_yaml::<Vec<String>>(value).ok();
    #[cfg(not(feature = "config"))]
    {
        let _ = value;
        None
    }
}

#[cfg(all(test, feature = "config"))]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn layer(vars: &[(&str, &str)]) -> Result<Settings, Error> {
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
        assert_eq!(
            l.command.unwrap().0,
            ["gcloud", "auth", "print-access-token"]
        );
    }

    #[test]
    fn a_command_may_be_a_json_array_when_an_argument_has_a_comma() {
        let l = layer(&[(
            CREDENTIALS_PROXY_COMMAND,
            r#"["get-token", "--audience=a,b"]"#,
        )])
        .unwrap();
        assert_eq!(l.proxy_command.unwrap().0, ["get-token", "--audience=a,b"]);
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
