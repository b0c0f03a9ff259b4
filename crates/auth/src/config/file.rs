//! The YAML config file shared by flytectl, pyflyte and the Flyte 2 SDK.
//!
//! Only the `admin` section is read, as [`Settings`], and of the `union` section the two keys
//! `union create login` writes (`union.connection.host`, `union.auth.type`; `admin.*` wins
//! where both are set); every other section (`logger`, `storage`, `console`, ...) and every
//! other key is skipped. Each value is read by its
//! setting's type while the file is parsed, so an error names the dotted key, what was
//! expected, and the line.

use std::path::Path;

use flyte_auth_core::{Endpoint, Error};
use serde::{Deserialize, de::DeserializeOwned};

use super::{
    AuthMode,
    settings::{Settings, null_is_default},
    value::lenient,
};

/// The sections of the file that are read.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Document {
    #[serde(deserialize_with = "null_is_default")]
    admin: Settings,
    #[serde(deserialize_with = "null_is_default")]
    union: Union,
}

/// What `union create login` writes next to `admin.endpoint` and `admin.authType`:
/// `union.connection.host` and `union.auth.type`, used where the `admin` key is not set.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Union {
    #[serde(deserialize_with = "null_is_default")]
    connection: UnionConnection,
    #[serde(deserialize_with = "null_is_default")]
    auth: UnionAuth,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct UnionConnection {
    #[serde(deserialize_with = "lenient")]
    host: Option<Endpoint>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct UnionAuth {
    #[serde(rename = "type", deserialize_with = "lenient")]
    kind: Option<AuthMode>,
}

/// Parses the text of a config file; `path` only names the file in errors.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Settings, Error> {
    if text.trim().is_empty() {
        return Ok(Settings::default());
    }
    let document: Option<Document> = from_yaml(text).map_err(|(key, message)| {
        Error::config(match key {
            Some(key) => format!("{}: {key}: {message}", path.display()),
            None => format!("{}: {message}", path.display()),
        })
    })?;
    let Document { mut admin, union } = document.unwrap_or_default();
    admin.endpoint = admin.endpoint.or(union.connection.host);
    admin.auth_mode = admin.auth_mode.or(union.auth.kind);
    Ok(admin)
}

/// Deserializes YAML text (the config file, a list in an environment variable). The error is
/// the dotted key that failed, if any, and the parser's message with its line and column:
/// `invalid type: sequence, expected a string at line 2, column 3`.
pub(crate) fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, (Option<String>, String)> {
    let mut key = None;
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            // A list item's error names the list.
            let path = e.path().to_string();
            let path = path.split('[').next().unwrap_or_default();
            key = (!path.is_empty() && path != ".").then(|| path.to_owned());
            e.into_inner()
        })
    })
    .map_err(|e| {
        let message = e.to_string();
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        (key, message.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Settings, Error> {
        parse(Path::new("/cfg/config.yaml"), text)
    }

    #[test]
    fn empty_and_section_less_files_set_nothing() {
        for text in [
            "",
            "\n# only a comment\n",
            "admin:\n",
            "logger:\n  level: 0\n",
        ] {
            let layer = parse_str(text).unwrap();
            assert!(
                layer.endpoint.is_none() && layer.auth_mode.is_none(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn empty_strings_count_as_unset() {
        let layer = parse_str(
            "admin:\n  endpoint: ''\n  authType: ''\n  clientSecretLocation: ''\n  pkceConfig:\n    timeout: ''\n",
        )
        .unwrap();
        assert!(layer.endpoint.is_none());
        assert!(layer.auth_mode.is_none());
        assert!(layer.client_secret_location.is_none());
        assert!(layer.pkce_config.timeout.is_none());
    }

    #[test]
    fn lists_may_be_written_as_one_comma_separated_string() {
        let layer = parse_str("admin:\n  scopes: 'all, offline'\n  command: [sleep, 1]\n").unwrap();
        assert_eq!(layer.scopes.unwrap(), ["all", "offline"]);
        assert_eq!(layer.command.unwrap().0, ["sleep", "1"]);
    }

    #[test]
    fn quoted_booleans_are_read_like_flytekit_does() {
        let layer = parse_str("admin:\n  insecure: 'True'\n  insecureSkipVerify: 'no'\n").unwrap();
        assert_eq!(layer.insecure, Some(true));
        assert_eq!(layer.insecure_skip_verify, Some(false));
    }

    #[test]
    fn a_list_where_a_string_belongs_is_an_error_with_the_key() {
        let err = parse_str("admin:\n  clientId: [a, b]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "/cfg/config.yaml: admin.clientId: invalid type: sequence, expected a string"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_section_of_the_wrong_shape_says_what_is_expected() {
        let err = parse_str("admin: dns:///x\n").unwrap_err().to_string();
        assert!(
            err.contains("/cfg/config.yaml: admin: expected mapping"),
            "{err}"
        );
        assert!(err.contains("line 1, column 8"), "{err}");
        let err = parse_str("- a\n- b\n").unwrap_err().to_string();
        assert!(err.contains("expected mapping"), "{err}");
    }
}
