//! How a setting's value is written: as text (a variable, an INI option, a YAML string) and,
//! as flytekit and flytectl accept them in YAML, as a number (`timeout: 30`, `clientId: 42`),
//! a boolean (`insecure: true`) or a list (`command: [sleep, 1]`).
//!
//! [`Value`] says, for each type a setting holds, how it is read from text; [`lenient`] reads
//! any of them from YAML, and is the one field type of the YAML sections in
//! [`settings`](super::settings).

use std::{fmt, ops::Deref, path::PathBuf, time::Duration};

use flyte_auth_core::{Endpoint, Error, SecretString, redact_url};
use serde::{
    Deserialize,
    de::{self, Deserializer, IgnoredAny, Unexpected},
};

use super::{AuthMode, duration, env};

/// Why a text is not a value of its type.
pub(crate) enum Invalid {
    /// Not one of the type's forms: `invalid value …, expected` [`Value::EXPECTED`].
    Form,
    /// Said in full (an auth type's error lists the accepted names).
    Message(String),
}

/// A type a setting holds, read from text.
pub(crate) trait Value: Sized {
    /// What a value looks like, for errors: `a boolean (true or false)`.
    const EXPECTED: &'static str;
    /// A YAML number is read as its text.
    const FROM_NUMBER: bool = true;

    /// Reads a value written as text (trimmed, never empty).
    fn parse(text: &str) -> Result<Self, Invalid>;

    /// A YAML boolean; `None`: this type takes none.
    fn from_bool(_: bool) -> Option<Self> {
        None
    }

    /// A YAML list, its items as text; `None`: this type takes none.
    fn from_list(_: Vec<String>) -> Option<Self> {
        None
    }
}

impl Value for String {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, Invalid> {
        Ok(text.to_owned())
    }
}

impl Value for PathBuf {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, Invalid> {
        Ok(PathBuf::from(text))
    }
}

/// Shown as `[redacted]`.
impl Value for SecretString {
    const EXPECTED: &'static str = "a string";
    const FROM_NUMBER: bool = false;
    fn parse(text: &str) -> Result<Self, Invalid> {
        Ok(SecretString::from(text.to_owned()))
    }
}

/// A Flyte server address, parsed once, when it is read.
impl Value for Endpoint {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, Invalid> {
        Endpoint::parse(text).map_err(|e| match e {
            Error::Config { message } => Invalid::Message(message),
            other => Invalid::Message(other.to_string()),
        })
    }
}

/// YAML `true`/`false`, or flytekit's words (`True`, `0`, `yes`, `off`, ...).
impl Value for bool {
    const EXPECTED: &'static str = "a boolean (true or false)";
    fn parse(text: &str) -> Result<Self, Invalid> {
        env::parse_bool_word(text).ok_or(Invalid::Form)
    }
    fn from_bool(value: bool) -> Option<Self> {
        Some(value)
    }
}

/// `maxRetries`.
impl Value for u32 {
    const EXPECTED: &'static str = "a whole number";
    fn parse(text: &str) -> Result<Self, Invalid> {
        text.parse().map_err(|_| Invalid::Form)
    }
}

/// As flytectl writes it (`2m0s`, `500ms`), or whole seconds.
impl Value for Duration {
    const EXPECTED: &'static str = duration::EXPECTED;
    fn parse(text: &str) -> Result<Self, Invalid> {
        duration::parse_duration(text).map_err(|_| Invalid::Form)
    }
}

/// An auth type name (any name a plugin could have).
impl Value for AuthMode {
    const EXPECTED: &'static str = "an auth type name such as `Pkce`";
    const FROM_NUMBER: bool = false;
    fn parse(text: &str) -> Result<Self, Invalid> {
        text.parse()
            .map_err(|e: super::ParseAuthModeError| Invalid::Message(e.to_string()))
    }
}

/// A YAML list, or text split on commas (items trimmed, empty ones dropped), or a JSON array
/// of strings.
impl Value for Vec<String> {
    const EXPECTED: &'static str = "a list of strings";
    const FROM_NUMBER: bool = false;
    fn parse(text: &str) -> Result<Self, Invalid> {
        env::parse_list(text).map_err(Invalid::Message)
    }
    fn from_list(items: Vec<String>) -> Option<Self> {
        Some(items)
    }
}

/// A URL; `Debug` shows it without user info, query or fragment.
#[derive(Clone)]
pub(crate) struct Url(pub(crate) String);

impl Deref for Url {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

impl Value for Url {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, Invalid> {
        Ok(Url(text.to_owned()))
    }
}

/// A program and its arguments, read as a list; `Debug` shows the program and the number of
/// arguments (they may carry credentials).
#[derive(Clone)]
pub(crate) struct Command(pub(crate) Vec<String>);

impl Deref for Command {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("[]"),
            [program] => write!(f, "[{program:?}]"),
            [program, _] => write!(f, "[{program:?}, <1 argument>]"),
            [program, args @ ..] => write!(f, "[{program:?}, <{} arguments>]", args.len()),
        }
    }
}

impl Value for Command {
    const EXPECTED: &'static str = <Vec<String>>::EXPECTED;
    const FROM_NUMBER: bool = false;
    fn parse(text: &str) -> Result<Self, Invalid> {
        Vec::parse(text).map(Command)
    }
    fn from_list(items: Vec<String>) -> Option<Self> {
        Some(Command(items))
    }
}

/// Reads a value written as text (a variable, an INI option) into `slot`: empty means unset;
/// the error is the message that follows the place's name.
pub(crate) fn put<T: Value>(slot: &mut Option<T>, text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    *slot = Some(T::parse(text).map_err(|bad| match bad {
        Invalid::Form => format!("invalid value `{text}`, expected {}", T::EXPECTED),
        Invalid::Message(message) => message,
    })?);
    Ok(())
}

/// A YAML value as written, before it is read as a setting's type.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
    List(Vec<Raw>),
    Other(IgnoredAny),
}

/// A value in the YAML file (`#[serde(deserialize_with = "lenient")]`): null or an empty
/// string means unset; a number is read as its text where `T` takes one, a list where `T` is
/// a list. Errors are serde's (`invalid type: sequence, expected a string`), so the YAML
/// reader adds the key and the line.
pub(crate) fn lenient<'de, D: Deserializer<'de>, T: Value>(d: D) -> Result<Option<T>, D::Error> {
    let expected = &T::EXPECTED;
    let number = |text: String, found: Unexpected<'_>| match T::FROM_NUMBER {
        true => from_yaml_text::<D::Error, T>(&text, found),
        false => Err(de::Error::invalid_type(found, expected)),
    };
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Text(text)) => from_yaml_text::<D::Error, T>(&text, Unexpected::Str(&text)),
        Some(Raw::Bool(v)) => T::from_bool(v)
            .map(Some)
            .ok_or_else(|| de::Error::invalid_type(Unexpected::Bool(v), expected)),
        Some(Raw::Unsigned(v)) => number(v.to_string(), Unexpected::Unsigned(v)),
        Some(Raw::Signed(v)) => number(v.to_string(), Unexpected::Signed(v)),
        Some(Raw::Float(v)) => number(v.to_string(), Unexpected::Float(v)),
        Some(Raw::List(_)) if T::from_list(Vec::new()).is_none() => {
            Err(de::Error::invalid_type(Unexpected::Seq, expected))
        }
        // A list item is a string, or a number taken as its text (`command: [sleep, 1]`).
        Some(Raw::List(items)) => items
            .into_iter()
            .map(|item| match item {
                Raw::Text(text) => Ok(text),
                Raw::Unsigned(v) => Ok(v.to_string()),
                Raw::Signed(v) => Ok(v.to_string()),
                Raw::Float(v) => Ok(v.to_string()),
                Raw::Bool(v) => Err(de::Error::invalid_type(Unexpected::Bool(v), &"a string")),
                Raw::List(_) => Err(de::Error::invalid_type(Unexpected::Seq, &"a string")),
                Raw::Other(_) => Err(de::Error::invalid_type(Unexpected::Map, &"a string")),
            })
            .collect::<Result<_, _>>()
            .map(T::from_list),
        Some(Raw::Other(_)) => Err(de::Error::invalid_type(Unexpected::Map, expected)),
    }
}

fn from_yaml_text<E: de::Error, T: Value>(
    text: &str,
    found: Unexpected<'_>,
) -> Result<Option<T>, E> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    T::parse(text).map(Some).map_err(|bad| match bad {
        Invalid::Form => E::invalid_value(found, &T::EXPECTED),
        Invalid::Message(message) => E::custom(message),
    })
}
