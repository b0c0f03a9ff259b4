//! The `admin` section of the YAML config file shared by flytectl and pyflyte.
//!
//! Every other section (`logger`, `storage`, `console`, ...) and every `admin` key this crate
//! does not use is ignored. Type errors name the dotted key, what was expected, and the line.

use std::{fmt, path::Path, time::Duration};

use flyte_auth_core::Error;
use serde::{
    Deserialize, Deserializer,
    de::{self, SeqAccess, Unexpected, Visitor},
};

use super::{AuthMode, duration, env, layer::Layer};

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a mapping of sections (`admin`, `logger`, `storage`, ...)")]
struct FileConfig {
    #[serde(default)]
    admin: Option<AdminSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a mapping of admin settings (`endpoint`, `authType`, ...)"
)]
struct AdminSection {
    endpoint: Option<Text>,
    insecure: Option<Flag>,
    insecure_skip_verify: Option<Flag>,
    ca_cert_file_path: Option<Text>,
    auth_type: Option<Mode>,
    client_id: Option<Text>,
    client_secret_location: Option<Text>,
    client_secret_env_var: Option<Text>,
    scopes: Option<List>,
    audience: Option<Text>,
    command: Option<List>,
    proxy_command: Option<List>,
    #[serde(rename = "httpProxyURL")]
    http_proxy_url: Option<Text>,
    disable_keyring: Option<Flag>,
    write_all_layouts: Option<Flag>,
    token_url: Option<Text>,
    authorization_header: Option<Text>,
    max_retries: Option<u32>,
    per_retry_timeout: Option<Period>,
    command_timeout: Option<Period>,
    pkce_config: Option<PkceSection>,
    device_flow_config: Option<DeviceFlowSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a mapping with `timeout` and `refreshTime`"
)]
struct PkceSection {
    timeout: Option<Period>,
    refresh_time: Option<Period>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a mapping with `timeout`, `pollInterval` and `refreshTime`"
)]
struct DeviceFlowSection {
    timeout: Option<Period>,
    poll_interval: Option<Period>,
    refresh_time: Option<Period>,
}

/// Parses the text of a config file into a layer; `path` only names the file in errors.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Layer, Error> {
    let file: FileConfig = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        from_yaml(text).map_err(|e| Error::config(format!("{}: {e}", path.display())))?
    };
    let admin = file.admin.unwrap_or_default();
    let pkce = admin.pkce_config.unwrap_or_default();
    let device = admin.device_flow_config.unwrap_or_default();
    let text = |t: Option<Text>| t.and_then(|t| t.0);
    let period = |p: Option<Period>| p.and_then(|p| p.0);
    Ok(Layer {
        endpoint: text(admin.endpoint),
        insecure: admin.insecure.map(|f| f.0),
        insecure_skip_verify: admin.insecure_skip_verify.map(|f| f.0),
        ca_cert_file_path: text(admin.ca_cert_file_path).map(Into::into),
        auth_mode: admin.auth_type.and_then(|m| m.0),
        client_id: text(admin.client_id),
        client_secret: None,
        client_secret_location: text(admin.client_secret_location).map(Into::into),
        client_secret_env_var: text(admin.client_secret_env_var),
        scopes: admin.scopes.map(|l| l.0),
        audience: text(admin.audience),
        command: admin.command.map(|l| l.0),
        proxy_command: admin.proxy_command.map(|l| l.0),
        http_proxy_url: text(admin.http_proxy_url),
        token_url: text(admin.token_url),
        authorization_header: text(admin.authorization_header),
        max_retries: admin.max_retries,
        per_retry_timeout: period(admin.per_retry_timeout),
        command_timeout: period(admin.command_timeout),
        pkce_timeout: period(pkce.timeout),
        pkce_refresh_time: period(pkce.refresh_time),
        device_timeout: period(device.timeout),
        device_poll_interval: period(device.poll_interval),
        device_refresh_time: period(device.refresh_time),
        disable_keyring: admin.disable_keyring.map(|f| f.0),
        write_all_layouts: admin.write_all_layouts.map(|f| f.0),
    })
}

/// Deserializes YAML text, naming the dotted key of a value of the wrong type and its line:
/// `admin.clientId: line 2 column 3: invalid type: sequence, expected a string`.
pub(crate) fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let options = serde_saphyr::options! { with_snippet: false };
    let mut key = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            key = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let message = e.to_string();
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        match key.as_str() {
            "" | "." => message.to_owned(),
            key => format!("{key}: {message}"),
        }
    })
}

/// A string; empty means unset (as in flytekit). Numbers are taken as their text.
#[derive(Debug)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                let v = v.trim();
                Ok(Text((!v.is_empty()).then(|| v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean: YAML `true`/`false`, or one of flytekit's words as a string (`"yes"`, `"0"`).
#[derive(Debug)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (true or false)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                env::parse_bool_word(v)
                    .map(Flag)
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An auth type name; empty means unset.
#[derive(Debug)]
struct Mode(Option<AuthMode>);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an auth type name such as `Pkce`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mode, E> {
                if v.trim().is_empty() {
                    return Ok(Mode(None));
                }
                v.parse().map(|m| Mode(Some(m))).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of strings; a single string is split on commas, as flytekit does.
#[derive(Debug)]
struct List(Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<List, E> {
                Ok(List(env::split_list(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Item>()? {
                    items.push(item.0);
                }
                Ok(List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// One list element: a string, or a number taken as its text (`command: [sleep, 1]`).
#[derive(Debug)]
struct Item(String);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                Ok(Item(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
                Ok(Item(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
                Ok(Item(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Item, E> {
                Ok(Item(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration: Go's text (`2m0s`) or whole seconds; empty means unset.
#[derive(Debug)]
struct Period(Option<Duration>);

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Period;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(duration::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Period, E> {
                if v.trim().is_empty() {
                    return Ok(Period(None));
                }
                duration::parse_duration(v)
                    .map(|d| Period(Some(d)))
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Period, E> {
                Ok(Period(Some(Duration::from_secs(v))))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Layer, Error> {
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
        assert!(layer.pkce_timeout.is_none());
    }

    #[test]
    fn lists_may_be_written_as_one_comma_separated_string() {
        let layer = parse_str("admin:\n  scopes: 'all, offline'\n  command: [sleep, 1]\n").unwrap();
        assert_eq!(layer.scopes.unwrap(), ["all", "offline"]);
        assert_eq!(layer.command.unwrap(), ["sleep", "1"]);
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
