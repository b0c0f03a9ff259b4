//! [`Credentials`]: what a flow obtains and a store keeps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::SecretString;

/// The endpoint name flytekit uses when none is given.
pub const DEFAULT_ENDPOINT: &str = "flyte-default";

/// How long a token flyte-auth obtained without a stated lifetime (no `expires_in`, no JWT
/// `exp`) is trusted: short, so a wrong guess costs one refresh. Counted from its arrival and
/// stored with it; another tool's stored token gets none ([`Credentials::expiry_is_known`]).
pub const UNKNOWN_EXPIRY_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The longest a token is trusted for, whatever a server or a store says (`expires_in`, a JWT
/// `exp`, a stored expiry): ten years. A larger number is read as this one, so no expiry
/// arithmetic can overflow and a token is still refreshed some day.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The credentials of one endpoint: flytekit's `Credentials` fields plus the absolute expiry
/// and the client id the tokens were issued to. Tokens are [`SecretString`]s (`{:?}` shows
/// `[redacted]`); serialization writes them, as a token store must.
///
/// ```
/// use flyte_auth_core::Credentials;
/// let creds = Credentials::new("access", "flyte.example.org:443")
///     .with_refresh_token("refresh")
///     .with_expires_in(3600);
/// assert!(creds.expires_at().is_some());
/// assert!(!format!("{creds:?}").contains("access\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Credentials {
    /// The bearer token sent to Flyte.
    pub access_token: SecretString,
    /// The refresh token, when the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretString>,
    /// The endpoint these credentials are for (the store's key).
    pub for_endpoint: String,
    /// The lifetime in seconds, as the server sent it (at most [`MAX_TOKEN_LIFETIME`] when
    /// set through [`with_expires_in`](Self::with_expires_in) or read from a store). When the
    /// server sent none, the cache records the lifetime it counted when the token arrived
    /// (until the token's JWT `exp`, else [`UNKNOWN_EXPIRY_LIFETIME`]), so that its refresh
    /// window is the same in every later process. `None` for a token another tool stored
    /// without one: its refresh window is then the full margin.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lifetime_from_store"
    )]
    pub expires_in: Option<u64>,
    /// The OpenID Connect id token, when the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<SecretString>,
    /// When the access token expires, as seconds since the Unix epoch (no later than
    /// [`MAX_TOKEN_LIFETIME`] from now when set through a method or read from a store).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "expiry_from_store"
    )]
    pub expires_at_unix: Option<u64>,
    /// The OAuth client the tokens were issued to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The scopes the server granted, when it said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The header the token goes in, when the server named one (Flyte's
    /// `authorization_metadata_key`), so that a token read back from a store is sent under the
    /// right header before any discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_key: Option<String>,
    /// See [`has_stale_copies`](Self::has_stale_copies). Never stored.
    #[serde(skip)]
    pub(crate) stale_copies: bool,
}

impl Credentials {
    /// Credentials holding only an access token.
    ///
    /// When the token is a JWT with an `exp` claim, the absolute expiry is taken from it;
    /// [`with_expires_in`](Self::with_expires_in) overrides that with the server's word.
    pub fn new(access_token: impl Into<SecretString>, for_endpoint: impl Into<String>) -> Self {
        let access_token = access_token.into();
        let expires_at_unix = jwt_expiry(access_token.expose_secret());
        Self {
            access_token,
            refresh_token: None,
            for_endpoint: for_endpoint.into(),
            expires_in: None,
            id_token: None,
            expires_at_unix,
            client_id: None,
            scopes: Vec::new(),
            header_key: None,
            stale_copies: false,
        }
    }

    /// Whether the store that returned these credentials keeps several copies of the login
    /// (the keyring's layouts for each Flyte tool) and they disagree; the cache then writes
    /// these back to all of them under the store's lock.
    pub fn has_stale_copies(&self) -> bool {
        self.stale_copies
    }

    /// For a [`TokenStore`](crate::TokenStore) that keeps several copies of a login: says
    /// whether the copies it read disagree (see [`has_stale_copies`](Self::has_stale_copies)).
    pub fn set_stale_copies(&mut self, stale: bool) {
        self.stale_copies = stale;
    }

    /// Sets the refresh token.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: impl Into<SecretString>) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self
    }

    /// Sets the id token. Its `exp` claim says nothing about the access token (an opaque
    /// access token may die long before the id token), so the expiry is left as it is.
    #[must_use]
    pub fn with_id_token(mut self, id_token: impl Into<SecretString>) -> Self {
        self.id_token = Some(id_token.into());
        self
    }

    /// Records the server's `expires_in` and the absolute expiry it means, counted from now;
    /// a lifetime over [`MAX_TOKEN_LIFETIME`] is read as that.
    #[must_use]
    pub fn with_expires_in(mut self, seconds: u64) -> Self {
        let seconds = clamp_lifetime(seconds);
        self.expires_in = Some(seconds);
        self.expires_at_unix = Some(unix_now().saturating_add(seconds));
        self
    }

    /// Sets the absolute expiry; one more than [`MAX_TOKEN_LIFETIME`] away is read as that.
    #[must_use]
    pub fn with_expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at_unix = Some(clamp_expiry(to_unix(at)));
        self
    }

    /// Sets the absolute expiry in seconds since the Unix epoch (what stores keep); one more
    /// than [`MAX_TOKEN_LIFETIME`] away is read as that.
    #[must_use]
    pub fn with_expires_at_unix(mut self, seconds: u64) -> Self {
        self.expires_at_unix = Some(clamp_expiry(seconds));
        self
    }

    /// The server's `expires_in` as a duration, at most [`MAX_TOKEN_LIFETIME`] (also when
    /// the field was set directly): what may be added to a time without overflow.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_in
            .map(|seconds| Duration::from_secs(clamp_lifetime(seconds)))
    }

    /// Records the client id the tokens were issued to.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Records the scopes the server granted.
    #[must_use]
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// When the access token expires, if anyone said: the server's `expires_in`, the expiry a
    /// store kept (flyte-auth's metadata, flytectl's `expiry`), or the access token's own JWT
    /// `exp` claim. Never an id token's.
    pub fn expires_at(&self) -> Option<SystemTime> {
        // Clamped again: the field is public, and may hold anything.
        self.expires_at_unix.map(|secs| {
            UNIX_EPOCH
                .checked_add(Duration::from_secs(clamp_expiry(secs)))
                .unwrap_or(UNIX_EPOCH)
        })
    }

    /// Whether anyone said when the access token expires ([`expires_at`](Self::expires_at)).
    ///
    /// `false` for a non-JWT token another tool stored without an expiry: with a refresh token
    /// the cache refreshes it once to learn one; without, only the server can tell.
    pub fn expiry_is_known(&self) -> bool {
        self.expires_at_unix.is_some()
    }

    /// Whether the access token has expired (or expires within `leeway`); never for a token
    /// of unknown expiry.
    pub fn is_expired_within(&self, leeway: Duration) -> bool {
        self.is_expired_at(SystemTime::now(), leeway)
    }

    /// Whether the access token has expired at `now` (or expires within `leeway` of it).
    pub fn is_expired_at(&self, now: SystemTime, leeway: Duration) -> bool {
        self.expires_at()
            .is_some_and(|at| now.checked_add(leeway).is_none_or(|limit| limit >= at))
    }

    /// Carries forward what a refresh answer may omit (RFC 6749 §6 lets the server keep the
    /// old refresh token valid without repeating it): the refresh token, the id token, the
    /// client id and the scopes of `previous`.
    #[must_use]
    pub fn carry_forward(mut self, previous: &Credentials) -> Self {
        if self.refresh_token.is_none() {
            self.refresh_token.clone_from(&previous.refresh_token);
        }
        if self.id_token.is_none() {
            self.id_token.clone_from(&previous.id_token);
        }
        if self.client_id.is_none() {
            self.client_id.clone_from(&previous.client_id);
        }
        if self.scopes.is_empty() {
            self.scopes.clone_from(&previous.scopes);
        }
        if self.header_key.is_none() {
            self.header_key.clone_from(&previous.header_key);
        }
        self
    }
}

/// A lifetime in seconds, at most [`MAX_TOKEN_LIFETIME`].
fn clamp_lifetime(seconds: u64) -> u64 {
    seconds.min(MAX_TOKEN_LIFETIME.as_secs())
}

/// An expiry in seconds since the Unix epoch, no later than [`MAX_TOKEN_LIFETIME`] from now.
fn clamp_expiry(at: u64) -> u64 {
    at.min(unix_now().saturating_add(MAX_TOKEN_LIFETIME.as_secs()))
}

/// A stored `expires_in`, clamped like [`Credentials::with_expires_in`].
fn lifetime_from_store<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map(clamp_lifetime))
}

/// A stored `expires_at_unix`, clamped like [`Credentials::with_expires_at_unix`].
fn expiry_from_store<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map(clamp_expiry))
}

/// Now, in whole seconds since the Unix epoch (0 for a clock set before it): the one reading
/// of the system clock as Unix seconds, as expiries are stored.
pub fn unix_now() -> u64 {
    to_unix(SystemTime::now())
}

pub(crate) fn to_unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The claim `name` of a JWT's payload (`header.payload.signature`, the payload at most
/// 64 KiB), *without verifying the signature*: for what a token says about itself to its
/// holder (its expiry, the `nonce` of an id token that came straight from the token
/// endpoint), never to decide whom to trust. `None` when `token` is not such a JWT or has no
/// such claim.
///
/// ```
/// let token = "eyJhbGciOiJub25lIn0.eyJub25jZSI6Im4tMSJ9.";
/// assert_eq!(flyte_auth_core::jwt_claim(token, "nonce"), Some("n-1".into()));
/// assert_eq!(flyte_auth_core::jwt_claim("opaque", "nonce"), None);
/// ```
pub fn jwt_claim(token: &str, name: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 64 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let mut claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).ok()?;
    claims.remove(name)
}

/// The `exp` claim of a JWT, without verifying the signature (the expiry only schedules a
/// refresh; the server still decides whether the token is valid).
fn jwt_expiry(token: &str) -> Option<u64> {
    let exp = jwt_claim(token, "exp")?;
    // A float is truncated; a negative one is 0 (long expired); `as` saturates a huge one.
    let exp = exp.as_u64().or_else(|| exp.as_f64().map(|f| f as u64))?;
    Some(clamp_expiry(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_with_exp(exp: u64) -> String {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            enc.encode(br#"{"alg":"none"}"#),
            enc.encode(format!(r#"{{"sub":"u","exp":{exp}}}"#))
        )
    }

    #[test]
    fn credentials_round_trip_through_serde() {
        let creds = Credentials::new("a", "flyte.example.org")
            .with_refresh_token("r")
            .with_id_token("i")
            .with_expires_in(60)
            .with_client_id("flytectl")
            .with_scopes(["all", "offline"]);
        let json = serde_json::to_string(&creds).unwrap();
        let back: Credentials = serde_json::from_str(&json).unwrap();
        assert_eq!(back, creds);
    }

    #[test]
    fn flytekit_shaped_json_without_new_fields_deserializes() {
        let back: Credentials =
            serde_json::from_str(r#"{"access_token":"a","for_endpoint":"e"}"#).unwrap();
        assert_eq!(back.access_token.expose_secret(), "a");
        assert!(back.refresh_token.is_none() && back.expires_at().is_none());
    }

    #[test]
    fn debug_shows_no_token() {
        let creds = Credentials::new("access-XYZ", "e")
            .with_refresh_token("refresh-XYZ")
            .with_id_token("id-XYZ");
        let printed = format!("{creds:?}");
        assert!(!printed.contains("XYZ"), "{printed}");
    }

    #[test]
    fn expires_in_becomes_an_absolute_expiry() {
        let before = unix_now();
        let creds = Credentials::new("a", "e").with_expires_in(300);
        let at = creds.expires_at_unix.unwrap();
        assert!(at >= before + 300 && at <= unix_now() + 300);
        assert!(!creds.is_expired_within(Duration::from_secs(10)));
        assert!(creds.is_expired_within(Duration::from_secs(400)));
    }

    #[test]
    fn expiry_falls_back_to_the_jwt_exp_claim() {
        let creds = Credentials::new(jwt_with_exp(2_000_000_000), "e");
        assert_eq!(creds.expires_at_unix, Some(2_000_000_000));
        // An id token's `exp` says nothing about an opaque access token.
        let only_id = Credentials::new("opaque", "e").with_id_token(jwt_with_exp(1_900_000_000));
        assert_eq!(only_id.expires_at_unix, None);
        assert!(!only_id.expiry_is_known());
        let server_wins = Credentials::new(jwt_with_exp(2_000_000_000), "e").with_expires_in(10);
        assert!(server_wins.expires_at_unix.unwrap() < 2_000_000_000);
    }

    #[test]
    fn garbage_tokens_have_no_expiry() {
        for token in ["", "a.b", "a.b.c", "a.!!!.c", "a.e30.c.d"] {
            assert_eq!(
                Credentials::new(token, "e").expires_at_unix,
                None,
                "{token}"
            );
        }
    }

    fn jwt_with_raw_exp(exp: &str) -> String {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            enc.encode(br#"{"alg":"none"}"#),
            enc.encode(format!(r#"{{"exp":{exp}}}"#))
        )
    }

    fn latest_allowed() -> u64 {
        unix_now() + MAX_TOKEN_LIFETIME.as_secs()
    }

    #[test]
    fn a_huge_expires_in_is_clamped_and_never_panics() {
        let creds = Credentials::new("a", "e").with_expires_in(u64::MAX);
        assert_eq!(creds.expires_in, Some(MAX_TOKEN_LIFETIME.as_secs()));
        let at = creds.expires_at().expect("an expiry");
        assert!(at <= SystemTime::now() + MAX_TOKEN_LIFETIME + Duration::from_secs(1));
        assert!(!creds.is_expired_within(Duration::from_secs(60)));
        assert!(creds.is_expired_at(SystemTime::now(), Duration::MAX));
    }

    #[test]
    fn a_jwt_exp_out_of_range_never_panics() {
        for exp in [
            "1e30",
            "1.8446744073709552e19",
            "18446744073709551615",
            "9e15",
        ] {
            let creds = Credentials::new(jwt_with_raw_exp(exp), "e");
            let at = creds.expires_at_unix.expect(exp);
            assert!(at <= latest_allowed(), "{exp}: {at}");
            let _ = creds.expires_at();
            assert!(!creds.is_expired_within(Duration::ZERO), "{exp}");
        }
        for exp in ["-1", "-1e30", "0", "0.5"] {
            let creds = Credentials::new(jwt_with_raw_exp(exp), "e");
            assert!(creds.is_expired_within(Duration::ZERO), "{exp}");
        }
        for exp in ["NaN", "\"soon\"", "null", "1e400"] {
            let creds = Credentials::new(jwt_with_raw_exp(exp), "e");
            assert_eq!(creds.expires_at_unix, None, "{exp}");
        }
    }

    #[test]
    fn an_absolute_expiry_far_away_is_clamped_and_never_panics() {
        let far = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2);
        let creds = Credentials::new("a", "e").with_expires_at(far);
        assert!(creds.expires_at_unix.unwrap() <= latest_allowed());
        let mut raw = Credentials::new("a", "e");
        raw.expires_at_unix = Some(u64::MAX);
        raw.expires_in = Some(u64::MAX);
        let _ = raw.expires_at();
        assert!(!raw.is_expired_within(Duration::from_secs(60)));
    }

    #[test]
    fn stored_json_with_far_expiry_is_clamped_when_read() {
        let json = format!(
            r#"{{"access_token":"a","for_endpoint":"e","expires_in":{m},"expires_at_unix":{m}}}"#,
            m = u64::MAX
        );
        let creds: Credentials = serde_json::from_str(&json).unwrap();
        assert_eq!(creds.expires_in, Some(MAX_TOKEN_LIFETIME.as_secs()));
        assert!(creds.expires_at_unix.unwrap() <= latest_allowed());
        let again: Credentials =
            serde_json::from_str(&serde_json::to_string(&creds).unwrap()).unwrap();
        assert_eq!(again, creds, "clamping is stable over a round trip");
    }

    #[test]
    fn carry_forward_keeps_the_old_refresh_token_when_the_answer_has_none() {
        let old = Credentials::new("a1", "e")
            .with_refresh_token("r1")
            .with_client_id("c");
        let new = Credentials::new("a2", "e").carry_forward(&old);
        assert_eq!(new.refresh_token.unwrap().expose_secret(), "r1");
        assert_eq!(new.client_id.as_deref(), Some("c"));
        let rotated = Credentials::new("a3", "e")
            .with_refresh_token("r2")
            .carry_forward(&old);
        assert_eq!(rotated.refresh_token.unwrap().expose_secret(), "r2");
    }
}
