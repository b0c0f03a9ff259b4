//! The environment variables the platform config reads: the Flyte 2 SDK's `FLYTE_ADMIN_*`
//! names and flytekit's `FLYTE_PLATFORM_*` / `FLYTE_CREDENTIALS_*` names.
//!
//! Each overrides the matching key of the config file. An empty value counts as unset. Where
//! both names of a setting are set, the `FLYTE_ADMIN_*` one wins (it is named after the file
//! key, and the newer SDK reads only it). Lists are comma-separated (items trimmed, empty ones
//! dropped), or a JSON array of strings when an item contains a comma; booleans are flytekit's
//! words (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case).

use flyte_auth_core::Error;

#[cfg(test)]
use super::AuthMode;
use super::settings::Layer;

/// Path of the YAML config file (flytectl's name), searched after `./config.yaml`,
/// `./.flyte/config.yaml`, `<git root>/.flyte/config.yaml` and [`UCTL_CONFIG`].
pub const FLYTECTL_CONFIG: &str = "FLYTECTL_CONFIG";
/// Path of the YAML config file (Union's name), searched before [`FLYTECTL_CONFIG`].
pub const UCTL_CONFIG: &str = "UCTL_CONFIG";
/// An API key of the Flyte 2 SDK: base64 of `endpoint:client_id:client_secret:org`. It selects
/// client credentials and supplies the endpoint when nothing else does.
pub const API_KEY: &str = "FLYTE_API_KEY";

// Each setting's variables, declared with the setting in `settings.rs`.
pub use super::settings::vars::*;

/// Reads every `FLYTE_*` variable into a layer; also returns the names of those that were set.
pub(crate) fn read(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Layer, Vec<&'static str>), Error> {
    let mut used = Vec::new();
    let layer = Layer::from_text(
        |key| {
            key.env.iter().find_map(|name| {
                let value = env(name).filter(|v| !v.trim().is_empty())?;
                used.push(*name);
                Some(((*name).to_owned(), value))
            })
        },
        |name, message| Error::config(format!("environment variable {name}: {message}")),
    )?;
    Ok((layer, used))
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
