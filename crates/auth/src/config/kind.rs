//! The kinds of setting values: how each kind is written in the YAML file, in a variable or an
//! INI option, and how `Debug` shows it. Every setting of the table in
//! [`settings`](super::settings) names one.

use std::{fmt, marker::PhantomData, path::PathBuf, time::Duration};

use flyte_auth_core::{Endpoint, Error, SecretString, redact_url};
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Unexpected, Visitor};

use super::{AuthMode, duration, env};

/// Why a text is not a value of its kind.
pub(crate) enum Invalid {
    /// Not one of the kind's forms: `invalid value …, expected` [`Kind::EXPECTED`].
    Value,
    /// Said in full (an auth type's error lists the accepted names).
    Message(String),
}

/// A kind of setting value.
pub(crate) trait Kind {
    /// What a [`Layer`](super::settings::Layer) holds for a setting of this kind.
    type Value: Clone + fmt::Debug;
    /// What a value looks like, for errors: `a boolean (true or false)`.
    const EXPECTED: &'static str;
    /// A YAML number is read as its text (`clientId: 42`, `timeout: 30`).
    const NUMBERS: bool = false;
    /// A YAML list is read, with [`from_list`](Self::from_list).
    const LIST: bool = false;

    /// Reads a value written as text (trimmed, never empty): a variable, an INI option or a
    /// YAML string.
    fn parse(text: &str) -> Result<Self::Value, Invalid>;

    /// A YAML boolean; `None`: this kind takes none.
    fn from_bool(_: bool) -> Option<Self::Value> {
        None
    }

    /// A YAML list, its items as text; `None`: this kind takes none.
    fn from_list(_: Vec<String>) -> Option<Self::Value> {
        None
    }

    /// How `Debug` shows a value.
    fn show(value: &Self::Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(value, f)
    }
}

/// A string; a YAML number is taken as its text.
pub(crate) struct Text;

impl Kind for Text {
    type Value = String;
    const EXPECTED: &'static str = "a string";
    const NUMBERS: bool = true;
    fn parse(text: &str) -> Result<String, Invalid> {
        Ok(text.to_owned())
    }
}

/// A Flyte server address, parsed once, when it is read; shown as written.
pub(crate) struct Address;

impl Kind for Address {
    type Value = Endpoint;
    const EXPECTED: &'static str = "a string";
    const NUMBERS: bool = true;
    fn parse(text: &str) -> Result<Endpoint, Invalid> {
        Endpoint::parse(text).map_err(|e| match e {
            Error::Config { message } => Invalid::Message(message),
            other => Invalid::Message(other.to_string()),
        })
    }
    fn show(value: &Endpoint, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(value.as_written(), f)
    }
}

/// A URL, shown without user info, query or fragment (its form is checked by
/// [`Layer::checked`](super::settings::Layer::checked)).
pub(crate) struct Url;

impl Kind for Url {
    type Value = String;
    const EXPECTED: &'static str = "a string";
    const NUMBERS: bool = true;
    fn parse(text: &str) -> Result<String, Invalid> {
        Ok(text.to_owned())
    }
    fn show(value: &String, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(value), f)
    }
}

/// A file path.
pub(crate) struct FilePath;

impl Kind for FilePath {
    type Value = PathBuf;
    const EXPECTED: &'static str = "a string";
    const NUMBERS: bool = true;
    fn parse(text: &str) -> Result<PathBuf, Invalid> {
        Ok(PathBuf::from(text))
    }
}

/// A secret: shown as `[redacted]`.
pub(crate) struct Secret;

impl Kind for Secret {
    type Value = SecretString;
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<SecretString, Invalid> {
        Ok(SecretString::from(text.to_owned()))
    }
}

/// A boolean: YAML `true`/`false`, or flytekit's words (`True`, `0`, `yes`, `off`, ...).
pub(crate) struct Flag;

impl Kind for Flag {
    type Value = bool;
    const EXPECTED: &'static str = "a boolean (true or false)";
    const NUMBERS: bool = true;
    fn parse(text: &str) -> Result<bool, Invalid> {
        env::parse_bool_word(text).ok_or(Invalid::Value)
    }
    fn from_bool(value: bool) -> Option<bool> {
        Some(value)
    }
}

/// A list of strings: a YAML list, or text split on commas (items trimmed, empty ones
/// dropped), or a JSON array of strings.
pub(crate) struct List;

impl Kind for List {
    type Value = Vec<String>;
    const EXPECTED: &'static str = "a list of strings";
    const LIST: bool = true;
    fn parse(text: &str) -> Result<Vec<String>, Invalid> {
        env::parse_list(text).map_err(Invalid::Message)
    }
    fn from_list(items: Vec<String>) -> Option<Vec<String>> {
        Some(items)
    }
}

/// A program and its arguments, read as a [`List`]; shown as the program and the number of
/// arguments (they may carry credentials).
pub(crate) struct Command;

impl Kind for Command {
    type Value = Vec<String>;
    const EXPECTED: &'static str = List::EXPECTED;
    const LIST: bool = true;
    fn parse(text: &str) -> Result<Vec<String>, Invalid> {
        List::parse(text)
    }
    fn from_list(items: Vec<String>) -> Option<Vec<String>> {
        Some(items)
    }
    fn show(value: &Vec<String>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match value.as_slice() {
            [] => f.write_str("[]"),
            [program] => write!(f, "[{program:?}]"),
            [program, _] => write!(f, "[{program:?}, <1 argument>]"),
            [program, args @ ..] => write!(f, "[{program:?}, <{} arguments>]", args.len()),
        }
    }
}

/// A duration as flytectl writes it (`2m0s`, `500ms`) or whole seconds.
pub(crate) struct Period;

impl Kind for Period {
    type Value = Duration;
    const EXPECTED: &'static str = duration::EXPECTED;
    const NUMBERS: bool = true;
    fn parse(text: &str) -> Result<Duration, Invalid> {
        duration::parse_duration(text).map_err(|_| Invalid::Value)
    }
}

/// A whole number (`maxRetries`).
pub(crate) struct Count;

impl Kind for Count {
    type Value = u32;
    const EXPECTED: &'static str = "a whole number";
    const NUMBERS: bool = true;
    fn parse(text: &str) -> Result<u32, Invalid> {
        text.parse().map_err(|_| Invalid::Value)
    }
}

/// An auth type name (any name a plugin could have).
pub(crate) struct Mode;

impl Kind for Mode {
    type Value = AuthMode;
    const EXPECTED: &'static str = "an auth type name such as `Pkce`";
    fn parse(text: &str) -> Result<AuthMode, Invalid> {
        text.parse()
            .map_err(|e: super::ParseAuthModeError| Invalid::Message(e.to_string()))
    }
}

/// Reads a value written as text (a variable, an INI option): empty means unset; the error
/// is the message after the place's name.
pub(crate) fn from_text<K: Kind>(text: &str) -> Result<Option<K::Value>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    K::parse(text).map(Some).map_err(|bad| match bad {
        Invalid::Value => format!("invalid value `{text}`, expected {}", K::EXPECTED),
        Invalid::Message(message) => message,
    })
}

/// A value of kind `K` in the YAML file; null or an empty string means unset. Errors are
/// serde's (`invalid type: sequence, expected a string`), so the YAML reader adds the line.
pub(crate) struct Yaml<K: Kind>(pub(crate) Option<K::Value>);

impl<'de, K: Kind> Deserialize<'de> for Yaml<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlVisitor::<K>(PhantomData)).map(Yaml)
    }
}

struct YamlVisitor<K>(PhantomData<K>);

impl<K: Kind> YamlVisitor<K> {
    fn text<E: de::Error>(
        self,
        text: &str,
        as_found: Unexpected<'_>,
    ) -> Result<Option<K::Value>, E> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        K::parse(text).map(Some).map_err(|bad| match bad {
            Invalid::Value => E::invalid_value(as_found, &self),
            Invalid::Message(message) => E::custom(message),
        })
    }

    fn number<E: de::Error>(
        self,
        text: &str,
        as_found: Unexpected<'_>,
    ) -> Result<Option<K::Value>, E> {
        if !K::NUMBERS {
            return Err(E::invalid_type(as_found, &self));
        }
        self.text(text, as_found)
    }
}

impl<'de, K: Kind> Visitor<'de> for YamlVisitor<K> {
    type Value = Option<K::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(K::EXPECTED)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.text(v, Unexpected::Str(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        K::from_bool(v)
            .map(Some)
            .ok_or_else(|| E::invalid_type(Unexpected::Bool(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.number(&v.to_string(), Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.number(&v.to_string(), Unexpected::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.number(&v.to_string(), Unexpected::Float(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if !K::LIST {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        let mut items = Vec::new();
        while let Some(Item(item)) = seq.next_element()? {
            items.push(item);
        }
        K::from_list(items)
            .map(Some)
            .ok_or_else(|| de::Error::invalid_type(Unexpected::Seq, &self))
    }
}

/// One list element: a string, or a number taken as its text (`command: [sleep, 1]`).
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

/// Shows a setting by its kind: `None` when unset.
pub(crate) struct Shown<'a, K: Kind>(pub(crate) &'a Option<K::Value>);

impl<K: Kind> fmt::Debug for Shown<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => K::show(value, f),
            None => f.write_str("None"),
        }
    }
}
