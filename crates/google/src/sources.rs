//! Where Google credentials are looked for ([`Sources`]) and the credentials files read there.

use std::path::{Path, PathBuf};

use flyte_auth_core::{
    Error, SecretString,
    owned::{Trust, Unreadable, read_found},
    text::printable,
    unix_now,
};
use serde::Deserialize;

use crate::{Missing, jwt};

/// The metadata server's host on Google Cloud (Compute Engine, GKE, Cloud Run, ...).
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Google's OAuth 2.0 token endpoint: where gcloud's stored user credentials are refreshed
/// when their file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The file gcloud keeps application-default user credentials in, in its configuration
/// directory (`gcloud auth application-default login`).
pub const ADC_FILE_NAME: &str = "application_default_credentials.json";

/// The largest credentials file read: a service-account key is about 2 KiB.
const MAX_FILE_SIZE: u64 = 64 * 1024;

/// Where a [`GoogleIdTokenFlow`](crate::GoogleIdTokenFlow) looks for credentials, in the
/// order Google's own libraries use: a credentials file, the metadata server, gcloud's
/// stored user credentials. A source left `None` is skipped.
///
/// ```
/// use flyte_auth_google::Sources;
/// let sources = Sources::none()
///     .key_file("/etc/flyte/iap-sa.json")
///     .metadata_host("127.0.0.1:8080");
/// assert_eq!(sources.metadata_host.as_deref(), Some("127.0.0.1:8080"));
/// assert!(sources.gcloud_config_dir.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sources {
    /// A credentials file (`GOOGLE_APPLICATION_CREDENTIALS`): a service-account key, or user
    /// credentials. When set, it is the source: a file that cannot be used is an error, not a
    /// reason to try the next source.
    pub key_file: Option<PathBuf>,
    /// The metadata server, as `host[:port]` (`GCE_METADATA_HOST`, else
    /// [`DEFAULT_METADATA_HOST`]). Tried when no key file is set; when nothing answers in
    /// time (off Google Cloud), the next source is tried.
    pub metadata_host: Option<String>,
    /// gcloud's configuration directory (`CLOUDSDK_CONFIG`, else `~/.config/gcloud`, or
    /// `%APPDATA%\gcloud` on Windows), whose [`ADC_FILE_NAME`] is used when it exists and is
    /// the user's own (or root's) and writable by nobody else.
    pub gcloud_config_dir: Option<PathBuf>,
    /// The token endpoint for user credentials whose file names none
    /// ([`DEFAULT_TOKEN_URI`] by default).
    pub user_token_uri: String,
}

impl Default for Sources {
    /// [`Sources::from_env`].
    fn default() -> Self {
        Self::from_env()
    }
}

impl Sources {
    /// No source at all; add them with the setters.
    pub fn none() -> Self {
        Self {
            key_file: None,
            metadata_host: None,
            gcloud_config_dir: None,
            user_token_uri: DEFAULT_TOKEN_URI.to_owned(),
        }
    }

    /// What Google's libraries read: `GOOGLE_APPLICATION_CREDENTIALS`, `GCE_METADATA_HOST`
    /// (else [`DEFAULT_METADATA_HOST`]), `CLOUDSDK_CONFIG` (else gcloud's default directory).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Self {
        let metadata_host = lookup("GCE_METADATA_HOST")
            .map(|host| host.to_string_lossy().trim().to_owned())
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned());
        let gcloud_config_dir = lookup("CLOUDSDK_CONFIG").map(PathBuf::from).or_else(|| {
            if cfg!(windows) {
                lookup("APPDATA").map(|dir| PathBuf::from(dir).join("gcloud"))
            } else {
                lookup("HOME").map(|home| PathBuf::from(home).join(".config").join("gcloud"))
            }
        });
        Self {
            key_file: lookup("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
            metadata_host: Some(metadata_host),
            gcloud_config_dir,
            user_token_uri: DEFAULT_TOKEN_URI.to_owned(),
        }
    }

    /// Uses this credentials file (what `GOOGLE_APPLICATION_CREDENTIALS` names).
    #[must_use]
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Asks this metadata server, `host[:port]` (what `GCE_METADATA_HOST` says).
    #[must_use]
    pub fn metadata_host(mut self, host: impl Into<String>) -> Self {
        self.metadata_host = Some(host.into());
        self
    }

    /// Reads gcloud's user credentials from this configuration directory (what
    /// `CLOUDSDK_CONFIG` says).
    #[must_use]
    pub fn gcloud_config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.gcloud_config_dir = Some(dir.into());
        self
    }

    /// Refreshes user credentials whose file names no token endpoint at `uri`.
    #[must_use]
    pub fn user_token_uri(mut self, uri: impl Into<String>) -> Self {
        self.user_token_uri = uri.into();
        self
    }

    /// gcloud's application-default credentials file, when a directory is known.
    pub(crate) fn gcloud_file(&self) -> Option<PathBuf> {
        Some(self.gcloud_config_dir.as_ref()?.join(ADC_FILE_NAME))
    }

    /// The metadata server's host, checked to be `host[:port]` and nothing else.
    pub(crate) fn checked_metadata_host(host: &str) -> Result<&str, Error> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-:[]_".contains(c);
        if host.is_empty() || !host.chars().all(allowed) {
            return Err(Error::config(format!(
                "the metadata server `{}` (GCE_METADATA_HOST) is not a host[:port]",
                printable(host)
            )));
        }
        Ok(host)
    }
}

/// A Google credentials file, as Google's libraries write it.
#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type", default)]
    kind: String,
    // A service-account key.
    private_key: Option<SecretString>,
    private_key_id: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
    // User credentials.
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    refresh_token: Option<SecretString>,
}

/// What a credentials file sends to the token endpoint for an ID token.
pub(crate) enum Grant {
    /// A service-account key's assertion, signed for the audience.
    Assertion {
        assertion: SecretString,
        client_email: String,
        token_uri: String,
    },
    /// User credentials to refresh.
    Refresh {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
        token_uri: Option<String>,
    },
}

impl Grant {
    /// The grant of the credentials file at `path`, opened as `trust` says ([`read_found`]:
    /// never waiting on a FIFO) and at most 64 KiB: JSON of a known type with the members it
    /// needs; a service-account key signs an assertion for `audience` now. Blocking (the read,
    /// the PEM parse, the RSA signature). No error quotes the file's content.
    pub(crate) fn from_file(path: &Path, trust: Trust, audience: &str) -> Result<Self, Missing> {
        let shown = || printable(&path.display().to_string()).into_owned();
        let fail =
            |why: String| Error::config(format!("the Google credentials file {}: {why}", shown()));
        let named = trust == Trust::Named;
        let bytes = match read_found(path, MAX_FILE_SIZE, trust) {
            Ok(Some(bytes)) => bytes,
            Ok(None) if named => return Err(fail("does not exist".to_owned()).into()),
            Ok(None) => return Err(Missing::NotConfigured),
            Err(why @ (Unreadable::Link | Unreadable::NotOwn(_))) if !named => {
                return Err(Missing::Untrusted { path: shown(), why });
            }
            Err(Unreadable::Io(e)) => return Err(fail(format!("cannot be read ({e})")).into()),
            Err(why) => return Err(fail(why.to_string()).into()),
        };
        let file: CredentialsFile = serde_json::from_slice(&bytes).map_err(|e| {
            // serde_json's message names the line and column only, never the content.
            fail(format!(
                "is not a credentials JSON file (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let missing = |member: &str| fail(format!("has no {member}"));
        let present = |text: Option<String>| text.filter(|t| !t.trim().is_empty());
        // The file names where its secrets go: never off TLS, but to a loopback test server.
        if let Some(uri) = &file.token_uri
            && !token_uri_keeps_tls(uri)
        {
            return Err(fail(format!(
                "names token_uri {}, which is not an https:// URL: the key or the refresh \
                 token would leave TLS",
                flyte_auth_core::redact_url(uri)
            ))
            .into());
        }
        match file.kind.as_str() {
            "service_account" => {
                let private_key = file.private_key.ok_or_else(|| missing("private_key"))?;
                let client_email =
                    present(file.client_email).ok_or_else(|| missing("client_email"))?;
                let token_uri = file
                    .token_uri
                    .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
                let claims = jwt::Claims {
                    client_email: &client_email,
                    token_uri: &token_uri,
                    target_audience: audience,
                    key_id: file.private_key_id.as_deref(),
                };
                let assertion =
                    jwt::assertion(&jwt::parse_key(&private_key)?, &claims, unix_now())?;
                Ok(Self::Assertion {
                    assertion,
                    client_email,
                    token_uri,
                })
            }
            "authorized_user" => Ok(Self::Refresh {
                client_id: present(file.client_id).ok_or_else(|| missing("client_id"))?,
                client_secret: file.client_secret.ok_or_else(|| missing("client_secret"))?,
                refresh_token: file.refresh_token.ok_or_else(|| missing("refresh_token"))?,
                token_uri: file.token_uri,
            }),
            other => Err(fail(format!(
                "is of type `{}`; an ID token comes from a `service_account` key or \
                 `authorized_user` credentials",
                printable(other)
            ))
            .into()),
        }
    }
}

/// Whether `uri` is `https://`, or `http://` to this machine (a local test server).
fn token_uri_keeps_tls(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|url| match url.scheme() {
        "https" => true,
        "http" => url
            .host_str()
            .is_some_and(flyte_auth_core::is_loopback_host),
        _ => false,
    })
}
