//! [`SecretString`]: a string that cannot be printed by accident.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// A secret (access, refresh or id token, client secret).
///
/// `Debug` and `Display` print `[redacted]`; the memory is zeroed on drop. The value is reached
/// only through [`SecretString::expose_secret`], which makes every use easy to find in review.
///
/// It implements `Serialize` because persisting credentials to a token store is the point of
/// some types that contain it; do not serialize it anywhere else (logs, error reports).
///
/// ```
/// use flyte_auth_core::SecretString;
/// let s = SecretString::from("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
/// assert_eq!(s.expose_secret(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Box<str>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().into_boxed_str())
    }

    /// The secret itself.
    ///
    /// # Security
    ///
    /// Whatever receives the returned value must not log it, put it in an error message, or
    /// print it with `Debug`.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let s = SecretString::from("very-secret-value");
        let printed = format!("{s:?} {s} {:?}", Some(&s));
        assert!(!printed.contains("very-secret-value"), "{printed}");
        assert_eq!(s.expose_secret(), "very-secret-value");
    }

    #[test]
    fn serde_round_trips_the_value() {
        let s = SecretString::from("abc");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"abc\"");
        let back: SecretString = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
