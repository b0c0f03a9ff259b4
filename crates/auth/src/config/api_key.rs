//! [`ApiKey`]: a Flyte or Union API key, decoded as the Flyte 2 SDK, the `union` package and
//! Flyte 2's Rust controller decode it, and which key a config uses (`key_in_use`: a key's
//! secret goes only to the host it names).
//!
//! A key is base64 of `endpoint:client_id:client_secret:org`. `flyte create api-key` and
//! `union create api-key` write it in the standard alphabet, padded, with the org `None` on a
//! deployment without organizations; other tools write it URL-safe or unpadded. All four are
//! read. An empty org or `None` means none.
//!
//! The Python SDK splits the decoded text at its first three `:`, the `union` package and the
//! Rust controller want exactly four parts; so a key whose text holds more than three `:` (an
//! endpoint with a port or a scheme, a secret with a `:`) would be split differently by the
//! tools, and is refused here rather than used with the wrong parts. No error shows the key,
//! its decoded text or the secret.

use std::fmt;

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use flyte_auth_core::{Endpoint, Error, SecretString};

use super::{SetAsideKey, env, settings::Source};

/// Padded or not: `flyte create api-key` pads, other encoders do not.
const EITHER_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, EITHER_PADDING);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, EITHER_PADDING);

/// A Flyte or Union API key: the endpoint, client id, client secret and organization it
/// carries, for the client-credentials flow.
///
/// Decode one with [`ApiKey::decode`], or read the variable a program uses with
/// [`ApiKey::from_env`] (`FLYTE_API_KEY`, `UNION_API_KEY`, `_UNION_EAGER_API_KEY`, ...).
/// With the `clientcreds` feature, [`ApiKey::authenticator`] is the authenticator it
/// authorizes. [`PlatformConfig`](crate::PlatformConfig) reads `FLYTE_API_KEY` itself.
///
/// `Debug` shows the endpoint and the client id only.
///
/// ```
/// use base64::Engine as _;
/// use flyte_auth::config::ApiKey;
///
/// // What `flyte create api-key` prints on a deployment without organizations.
/// let printed = base64::engine::general_purpose::STANDARD
///     .encode("flyte.example.org:my-service:s3cret:None");
/// let key = ApiKey::decode(&printed, "FLYTE_API_KEY")?;
/// assert_eq!(key.endpoint().key(), "flyte.example.org");
/// assert_eq!(key.client_id(), "my-service");
/// assert_eq!(key.org(), None);
/// assert!(!format!("{key:?}").contains("s3cret"));
/// # Ok::<(), flyte_auth::config::ApiKeyError>(())
/// ```
#[derive(Clone)]
pub struct ApiKey {
    /// The endpoint as the key writes it (a host name), for the platform config.
    pub(crate) endpoint: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) org: Option<String>,
    /// `endpoint`, parsed.
    server: Endpoint,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why an API key could not be used. Each error names where the key came from (its origin:
/// a variable name, `--api-key`) and never shows the key, its decoded text or its secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The variable holds something that is not Unicode text.
    #[error("the API key in {origin} is not Unicode text")]
    NotUnicode {
        /// Where the key came from.
        origin: String,
    },
    /// The key is not base64 (standard or URL-safe, padded or not).
    #[error("the API key from {origin} is not base64; copy the whole key as it was given to you")]
    NotBase64 {
        /// Where the key came from.
        origin: String,
    },
    /// The key decodes to bytes that are not UTF-8 text.
    #[error("the API key from {origin} does not decode to text")]
    NotText {
        /// Where the key came from.
        origin: String,
    },
    /// The decoded text has fewer than four `:`-separated parts.
    #[error(
        "the API key from {origin} has {parts} `:`-separated parts, not 4 \
         (endpoint:client_id:client_secret:org)"
    )]
    TooFewParts {
        /// Where the key came from.
        origin: String,
        /// How many parts it has.
        parts: usize,
    },
    /// The decoded text has more than four `:`-separated parts, which the Flyte tools split
    /// differently from one another.
    #[error(
        "the API key from {origin} has {parts} `:`-separated parts, not 4: its endpoint has a \
         port or a scheme, or its secret a `:`, which the Flyte 2 SDK would split wrongly; ask \
         for a key whose endpoint is a host name, or set the endpoint and client credentials \
         separately"
    )]
    TooManyParts {
        /// Where the key came from.
        origin: String,
        /// How many parts it has.
        parts: usize,
    },
    /// The endpoint part is empty.
    #[error("the API key from {origin} names no endpoint")]
    NoEndpoint {
        /// Where the key came from.
        origin: String,
    },
    /// The endpoint part is not a server address.
    #[error(
        "the API key from {origin} names an endpoint that is not a server address \
         (a host name such as flyte.example.org)"
    )]
    InvalidEndpoint {
        /// Where the key came from.
        origin: String,
    },
    /// The client id part is empty.
    #[error("the API key from {origin} names no client id")]
    NoClientId {
        /// Where the key came from.
        origin: String,
    },
    /// The client secret part is empty.
    #[error("the API key from {origin} has an empty client secret")]
    EmptySecret {
        /// Where the key came from.
        origin: String,
    },
}

impl ApiKeyError {
    /// Where the key came from: the variable name or the origin given to
    /// [`ApiKey::decode`].
    pub fn origin(&self) -> &str {
        match self {
            Self::NotUnicode { origin }
            | Self::NotBase64 { origin }
            | Self::NotText { origin }
            | Self::TooFewParts { origin, .. }
            | Self::TooManyParts { origin, .. }
            | Self::NoEndpoint { origin }
            | Self::InvalidEndpoint { origin }
            | Self::NoClientId { origin }
            | Self::EmptySecret { origin } => origin,
        }
    }
}

impl From<ApiKeyError> for Error {
    /// A key that cannot be used is a configuration error.
    fn from(err: ApiKeyError) -> Self {
        Error::config(err.to_string())
    }
}

impl ApiKey {
    /// Decodes `key`; `origin` says where it came from (`FLYTE_API_KEY`, `--api-key`) in
    /// errors. Surrounding white space is ignored.
    ///
    /// # Errors
    ///
    /// [`ApiKeyError`] when the key is not base64 of four `:`-separated parts with an endpoint,
    /// a client id and a secret.
    pub fn decode(key: &str, origin: impl Into<String>) -> Result<Self, ApiKeyError> {
        let origin = origin.into();
        let key = key.trim();
        // An alphabet is chosen by its two own letters; a key holding both is neither.
        let engine = if key.contains(['-', '_']) {
            &URL_SAFE
        } else {
            &STANDARD
        };
        let Ok(bytes) = engine.decode(key) else {
            return Err(ApiKeyError::NotBase64 { origin });
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(ApiKeyError::NotText { origin });
        };
        let text = SecretString::from(text);
        let parts: Vec<&str> = text.expose_secret().split(':').collect();
        let [endpoint, client_id, secret, org] = parts[..] else {
            let n = parts.len();
            return Err(if n < 4 {
                ApiKeyError::TooFewParts { origin, parts: n }
            } else {
                ApiKeyError::TooManyParts { origin, parts: n }
            });
        };
        let endpoint = endpoint.trim();
        if endpoint.is_empty() {
            return Err(ApiKeyError::NoEndpoint { origin });
        }
        let Ok(server) = Endpoint::parse(endpoint) else {
            return Err(ApiKeyError::InvalidEndpoint { origin });
        };
        if client_id.trim().is_empty() {
            return Err(ApiKeyError::NoClientId { origin });
        }
        if secret.is_empty() {
            return Err(ApiKeyError::EmptySecret { origin });
        }
        // The SDKs spell a missing org "None".
        let org = (!org.is_empty() && org != "None").then(|| org.to_owned());
        Ok(Self {
            endpoint: endpoint.to_owned(),
            client_id: client_id.trim().to_owned(),
            client_secret: SecretString::from(secret.to_owned()),
            org,
            server,
        })
    }

    /// The key in the environment variable `var` (`FLYTE_API_KEY`, `_UNION_EAGER_API_KEY`,
    /// ...), decoded; `None` when the variable is unset or blank. Errors name the variable.
    ///
    /// # Errors
    ///
    /// [`ApiKeyError`] when the variable is set to something that is not a key.
    pub fn from_env(var: &str) -> Result<Option<Self>, ApiKeyError> {
        match std::env::var(var) {
            Ok(value) => Self::from_env_with(var, |_| Some(value.clone())),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ApiKeyError::NotUnicode {
                origin: var.to_owned(),
            }),
        }
    }

    /// Like [`from_env`](Self::from_env), with `env` as the environment (a lookup from a
    /// variable name to its value), for tests and programs that keep their own.
    ///
    /// # Errors
    ///
    /// [`ApiKeyError`] when the variable is set to something that is not a key.
    pub fn from_env_with(
        var: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ApiKeyError> {
        match env(var).map(SecretString::from) {
            Some(v) if !v.expose_secret().trim().is_empty() => {
                Self::decode(v.expose_secret(), var).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The Flyte server the key was issued for (a host name: `https`).
    pub fn endpoint(&self) -> &Endpoint {
        &self.server
    }

    /// The client id of the key's application.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret of the key's application.
    pub fn client_secret(&self) -> &SecretString {
        &self.client_secret
    }

    /// The organization, if the key names one (`None` and an empty part name none).
    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }
}

#[cfg(feature = "clientcreds")]
impl ApiKey {
    /// The client-credentials flow for this key's client id and secret, in `ctx` (built for
    /// [`endpoint`](Self::endpoint), with the discovery and HTTP settings the program wants).
    pub fn flow_builder(
        &self,
        ctx: flyte_auth_oauth::ClientContext,
    ) -> flyte_auth_clientcreds::ClientCredentialsFlowBuilder {
        flyte_auth_clientcreds::ClientCredentialsFlow::builder(
            ctx,
            self.client_id.clone(),
            self.client_secret.clone(),
        )
    }

    /// The authenticator this key authorizes: client credentials against its endpoint, the
    /// token endpoint discovered from that server, tokens cached in memory. Touches no
    /// network.
    ///
    /// For other HTTP settings, another discovery or a token store, build the flow with
    /// [`flow_builder`](Self::flow_builder).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the default HTTP client cannot be set up.
    pub fn authenticator(
        &self,
    ) -> Result<flyte_auth_clientcreds::ClientCredentialsAuthenticator, Error> {
        let ctx = flyte_auth_oauth::ClientContext::builder(self.server.clone()).build()?;
        let flow = self.flow_builder(ctx).build()?;
        Ok(flyte_auth_core::CachingAuthenticator::builder(flow).build())
    }
}

/// An API key and where it came from: its variable, or `explicit setting`.
pub(super) type KeyAndOrigin = (ApiKey, &'static str);

/// The first API key set in the environment ([`env::API_KEYS`], in order), with the variable
/// that holds it; none without the feature `config`.
fn key_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<KeyAndOrigin>, Error> {
    if !cfg!(feature = "config") {
        return Ok(None);
    }
    for var in env::API_KEYS {
        if let Some(key) = ApiKey::from_env_with(var, env)? {
            return Ok(Some((key, var)));
        }
    }
    Ok(None)
}

/// The API key to use, and one in the environment set aside. `chosen` is the endpoint chosen
/// for this run and who chose it; `pod_file` the variable naming the config file that, in a
/// task pod, wins over a key in the environment (the Flyte 2 SDK's `init_in_cluster`).
///
/// A key's secret goes only to the host the key names: an environment key is set aside (with
/// a warning) when `chosen` names another host, and an explicit key with such an endpoint is
/// an error.
pub(super) fn key_in_use(
    env: &dyn Fn(&str) -> Option<String>,
    explicit_key: Option<&SecretString>,
    chosen: Option<(&Endpoint, &Source)>,
    pod_file: Option<&str>,
) -> Result<(Option<KeyAndOrigin>, Option<SetAsideKey>), Error> {
    let other_host = |key: &ApiKey| {
        let (endpoint, source) = chosen.filter(|(e, _)| !same_host(e, key.endpoint()))?;
        Some(format!(
            "it is for {}, and {} names {}; a key's secret is sent only to the server it names",
            key.endpoint().host(),
            source.name("endpoint"),
            endpoint.host()
        ))
    };
    if let Some(key) = explicit_key {
        let key = ApiKey::decode(key.expose_secret(), "the explicit setting")?;
        return match other_host(&key) {
            Some(why) => Err(Error::config(format!("the explicit API key: {why}"))),
            None => Ok((Some((key, "explicit setting")), None)),
        };
    }
    if let Some(file_var) = pod_file {
        tracing::debug!("in a task pod: the named config file wins over an API key");
        let variable = env::API_KEYS
            .iter()
            .copied()
            .find(|var| env(var).is_some_and(|v| !v.trim().is_empty()));
        return Ok((
            None,
            variable.map(|variable| SetAsideKey {
                variable,
                why: format!("in a task pod, the config file named by {file_var} wins over it"),
            }),
        ));
    }
    let Some((key, variable)) = key_from_env(env)? else {
        return Ok((None, None));
    };
    match other_host(&key) {
        Some(why) => {
            tracing::warn!(variable, "the API key in {variable} is not used: {why}");
            Ok((None, Some(SetAsideKey { variable, why })))
        }
        None => Ok((Some((key, variable)), None)),
    }
}

/// Whether `a` and `b` name the same host, whatever their ports and schemes; every loopback
/// name (`localhost`, `127.0.0.1`, `[::1]`) names this machine.
pub(super) fn same_host(a: &Endpoint, b: &Endpoint) -> bool {
    use flyte_auth_core::is_loopback_host as loopback;
    a.host() == b.host() || (loopback(a.host()) && loopback(b.host()))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose;

    use super::*;

    /// A key as `flyte create api-key` (flyteplugins-union 0.19.1,
    /// `flyteplugins/union/utils/auth.py`) and `union create api-key` (union 0.1.204,
    /// `union/_config.py`) make it: standard base64, padded, of the four parts, the missing org
    /// written `None`.
    fn as_flyte_creates(
        endpoint: &str,
        client_id: &str,
        secret: &str,
        org: Option<&str>,
    ) -> String {
        let org = org.unwrap_or("None");
        general_purpose::STANDARD.encode(format!("{endpoint}:{client_id}:{secret}:{org}"))
    }

    fn encode(text: &str) -> String {
        general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn four_parts_decode_as_the_sdk_does() {
        let key = ApiKey::decode(
            &encode("flyte.example.org:svc:s3cret:acme"),
            "FLYTE_API_KEY",
        )
        .unwrap();
        assert_eq!(key.endpoint, "flyte.example.org");
        assert_eq!(key.client_id, "svc");
        assert_eq!(key.client_secret.expose_secret(), "s3cret");
        assert_eq!(key.org.as_deref(), Some("acme"));
        let key = ApiKey::decode(&encode("h:svc:s3cret:"), "FLYTE_API_KEY").unwrap();
        assert_eq!(key.org, None);
        assert!(!format!("{key:?}").contains("s3cret"));
    }

    #[test]
    fn keys_made_by_flyte_and_union_decode() {
        let made = as_flyte_creates("tenant.example.org", "ci-pipeline", "s3cret", None);
        let key = ApiKey::decode(&made, "_UNION_EAGER_API_KEY").unwrap();
        assert_eq!(key.endpoint().key(), "tenant.example.org");
        assert_eq!(key.endpoint().base_url(), "https://tenant.example.org");
        assert_eq!(key.client_id(), "ci-pipeline");
        assert_eq!(key.client_secret().expose_secret(), "s3cret");
        assert_eq!(key.org(), None);
        let made = as_flyte_creates(
            "serverless-1.us-east-2.s.union.ai",
            "t-u-ci",
            "s3cret",
            Some("u"),
        );
        assert_eq!(
            ApiKey::decode(&made, "UNION_API_KEY").unwrap().org(),
            Some("u")
        );
    }

    #[test]
    fn url_safe_and_unpadded_keys_decode() {
        // Text whose standard base64 holds `+`, `/` and padding: "?>?" encodes to "Pz4/".
        let text = "h.example.org:svc??>:s3cret~~~:None";
        let standard = general_purpose::STANDARD.encode(text);
        assert!(
            standard.contains(['+', '/']) && standard.ends_with('='),
            "{standard}"
        );
        for key in [
            standard.clone(),
            general_purpose::STANDARD_NO_PAD.encode(text),
            general_purpose::URL_SAFE.encode(text),
            general_purpose::URL_SAFE_NO_PAD.encode(text),
            format!("  {standard}\n"),
        ] {
            let key =
                ApiKey::decode(&key, "FLYTE_API_KEY").unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(key.client_id(), "svc??>");
            assert_eq!(key.client_secret().expose_secret(), "s3cret~~~");
            assert_eq!(key.org(), None);
        }
    }

    #[test]
    fn malformed_keys_are_refused_in_one_line_without_the_secret() {
        // Both alphabets' own letters: neither alphabet.
        let mixed = "Pz4+Pz4-".to_owned();
        for (key, want) in [
            ("not base64!".to_owned(), "is not base64"),
            (mixed, "is not base64"),
            (
                general_purpose::STANDARD.encode([0xff, 0xfe, 0x3a]),
                "does not decode to text",
            ),
            (encode("h:svc:s3cret"), "has 3 `:`-separated parts, not 4"),
            (encode("h:8080:svc:s3cret:org"), "would split wrongly"),
            (encode("dns:///h:svc:s3cret:org"), "would split wrongly"),
            (encode("h:svc::org"), "empty client secret"),
            (encode(":svc:s3cret:org"), "names no endpoint"),
            (encode("h/s3cret:svc:s3cret:org"), "not a server address"),
            (encode("h::s3cret:org"), "names no client id"),
        ] {
            let err = ApiKey::decode(&key, "FLYTE_API_KEY").unwrap_err();
            assert_eq!(err.origin(), "FLYTE_API_KEY");
            let err = Error::from(err).to_string();
            assert!(err.contains(want), "{want}: {err}");
            assert!(err.contains("FLYTE_API_KEY"), "{err}");
            assert!(
                !err.contains("s3cret") && !err.contains(&key) && !err.contains('\n'),
                "{err}"
            );
        }
    }

    #[test]
    fn a_program_names_the_variable_it_reads() {
        let made = as_flyte_creates("h.example.org", "svc", "s3cret", None);
        let env = |name: &str| (name == "_UNION_EAGER_API_KEY").then(|| made.clone());
        let key = ApiKey::from_env_with("_UNION_EAGER_API_KEY", env)
            .unwrap()
            .unwrap();
        assert_eq!(key.client_id(), "svc");
        assert!(
            ApiKey::from_env_with("FLYTE_API_KEY", env)
                .unwrap()
                .is_none()
        );
        let blank = |_: &str| Some("  ".to_owned());
        assert!(
            ApiKey::from_env_with("_UNION_EAGER_API_KEY", blank)
                .unwrap()
                .is_none()
        );
        let bad = |_: &str| Some(encode("h:svc:s3cret"));
        let err = ApiKey::from_env_with("_UNION_EAGER_API_KEY", bad).unwrap_err();
        assert!(
            matches!(&err, ApiKeyError::TooFewParts { parts: 3, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("_UNION_EAGER_API_KEY"), "{err}");
        assert!(
            ApiKey::from_env("FLYTE_AUTH_TEST_UNSET_API_KEY_VARIABLE")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn debug_shows_the_endpoint_and_client_id_only() {
        let made = as_flyte_creates("h.example.org", "svc", "s3cret", Some("acme"));
        let shown = format!("{:?}", ApiKey::decode(&made, "FLYTE_API_KEY").unwrap());
        assert!(
            shown.contains("h.example.org") && shown.contains("svc"),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("acme"),
            "{shown}"
        );
    }

    #[cfg(feature = "clientcreds")]
    #[test]
    fn a_key_becomes_a_client_credentials_authenticator() {
        let made = as_flyte_creates("h.example.org", "svc", "s3cret", None);
        let auth = ApiKey::decode(&made, "FLYTE_API_KEY")
            .unwrap()
            .authenticator()
            .unwrap();
        assert_eq!(auth.flow().context().endpoint().key(), "h.example.org");
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
