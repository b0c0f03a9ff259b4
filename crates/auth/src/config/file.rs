//! The YAML config file shared by flytectl, pyflyte and the Flyte 2 SDK.
//!
//! Only the keys of the settings are read (the `admin` section, where every setting's dotted
//! key is); every other section (`logger`, `storage`, `console`, ...) and every other key is
//! skipped. Each value is read by its setting's kind while the file is parsed, so an error
//! names the dotted key, what was expected, and the line.

use std::{cell::RefCell, fmt, marker::PhantomData, path::Path};

use flyte_auth_core::Error;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::settings::{Layer, key};

/// Parses the text of a config file into a layer; `path` only names the file in errors.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Layer, Error> {
    let mut layer = Layer::default();
    if !text.trim().is_empty() {
        let failed_at = RefCell::new(None);
        let top = Mapping {
            path: String::new(),
            layer: &mut layer,
            failed_at: &failed_at,
        };
        let named = |message: String| match failed_at.borrow().as_deref() {
            Some(key) => format!("{}: {key}: {message}", path.display()),
            None => format!("{}: {message}", path.display()),
        };
        from_yaml_seed(text, top).map_err(|e| Error::config(named(e)))?;
    }
    Ok(layer)
}

/// A mapping of the file at the dotted `path` (empty: the whole file): a key that is a
/// setting's is read into `layer` by the setting's kind, a key on the way to settings (`admin`,
/// `admin.pkceConfig`) is read as a mapping, every other key is skipped.
struct Mapping<'a> {
    path: String,
    layer: &'a mut Layer,
    /// The dotted key of the value that failed to parse, the innermost one: what an error
    /// names.
    failed_at: &'a RefCell<Option<String>>,
}

impl Mapping<'_> {
    /// Notes `path` as where `error` happened, unless a value inside it was noted already.
    fn failed<E>(&self, path: &str, error: E) -> E {
        self.failed_at
            .borrow_mut()
            .get_or_insert_with(|| path.to_owned());
        error
    }
}

impl<'de> DeserializeSeed<'de> for Mapping<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // A null section (`admin:` alone) sets nothing.
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Mapping<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            let path = match self.path.as_str() {
                "" => name,
                parent => format!("{parent}.{name}"),
            };
            if self
                .layer
                .read_yaml(&path, &mut map)
                .map_err(|e| self.failed(&path, e))?
            {
                continue;
            }
            let leads_to_a_setting = key::ALL.iter().filter_map(|k| k.yaml).any(|yaml| {
                yaml.strip_prefix(path.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            });
            if leads_to_a_setting {
                map.next_value_seed(Mapping {
                    path: path.clone(),
                    layer: &mut *self.layer,
                    failed_at: self.failed_at,
                })
                .map_err(|e| self.failed(&path, e))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Deserializes YAML text (a list in an environment variable, for one).
pub(crate) fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    from_yaml_seed(text, PhantomData::<T>)
}

/// [`from_yaml`] with a seed. The error is the parser's, with its line and column:
/// `invalid type: sequence, expected a string at line 2, column 3`; the config file's
/// [`Mapping`] adds the dotted key it was reading.
fn from_yaml_seed<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
) -> Result<S::Value, String> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| seed.deserialize(de))
        .map_err(|e| {
            let message = e.to_string();
            message
                .strip_prefix("error: ")
                .unwrap_or(&message)
                .to_owned()
        })
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
