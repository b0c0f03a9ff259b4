//! Where Google credentials are looked for ([`Sources`]) and the credentials files read there.

use std::{
    fmt,
    io::Read as _,
    path::{Path, PathBuf},
};

use flyte_auth_core::{Error, SecretString, text::printable};
use serde::Deserialize;

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
/// [`from_env`](Self::from_env) is what Google's libraries read;
/// [`none`](Self::none) and the setters say it explicitly (tests, a program's own
/// configuration).
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
    /// `%APPDATA%\gcloud` on Windows), whose [`ADC_FILE_NAME`] is used when it exists.
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

    /// gcloud's application-default credentials file, when a directory is known and the
    /// file exists.
    pub(crate) fn gcloud_file(&self) -> Option<PathBuf> {
        let file = self.gcloud_config_dir.as_ref()?.join(ADC_FILE_NAME);
        file.exists().then_some(file)
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
pub(crate) struct CredentialsFile {
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    // A service-account key.
    #[serde(default)]
    pub(crate) private_key: Option<SecretString>,
    #[serde(default)]
    pub(crate) private_key_id: Option<String>,
    #[serde(default)]
    pub(crate) client_email: Option<String>,
    #[serde(default)]
    pub(crate) token_uri: Option<String>,
    // User credentials.
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) client_secret: Option<SecretString>,
    #[serde(default)]
    pub(crate) refresh_token: Option<SecretString>,
}

impl fmt::Debug for CredentialsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsFile")
            .field("type", &self.kind)
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The two kinds of credentials file that yield an ID token.
pub(crate) enum FileKind {
    ServiceAccount {
        private_key: SecretString,
        private_key_id: Option<String>,
        client_email: String,
        token_uri: String,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
        token_uri: Option<String>,
    },
}

impl CredentialsFile {
    /// Reads and checks the credentials file at `path`: a regular file of at most 64 KiB
    /// (a FIFO or a device is never opened), JSON of a known type with the members it needs.
    /// No error quotes the file's content.
    pub(crate) fn read(path: &Path) -> Result<FileKind, Error> {
        let shown = || printable(&path.display().to_string()).into_owned();
        let fail =
            |why: String| Error::config(format!("the Google credentials file {}: {why}", shown()));
        // `stat` does not open the file, so a FIFO cannot block the read below.
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot be read ({e})")))?;
        if !meta.is_file() {
            return Err(fail("is not a regular file".to_owned()));
        }
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_FILE_SIZE + 1).read_to_string(&mut text))
            .map_err(|e| fail(format!("cannot be read ({e})")))?;
        if text.len() as u64 > MAX_FILE_SIZE {
            return Err(fail(format!("is larger than {MAX_FILE_SIZE} bytes")));
        }
        let file: Self = serde_json::from_str(&text).map_err(|e| {
            // serde_json's message names the line and column only, never the content.
            fail(format!(
                "is not a credentials JSON file (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let missing = |member: &str| fail(format!("has no {member}"));
        // The file names where its secrets go: never off TLS, but to a loopback test server.
        if let Some(uri) = &file.token_uri
            && !token_uri_keeps_tls(uri)
        {
            return Err(fail(format!(
                "names token_uri {}, which is not an https:// URL: the key or the refresh \
                 token would leave TLS",
                flyte_auth_core::redact_url(uri)
            )));
        }
        match file.kind.as_str() {
            "service_account" => Ok(FileKind::ServiceAccount {
                private_key: file.private_key.ok_or_else(|| missing("private_key"))?,
                private_key_id: file.private_key_id,
                client_email: file
                    .client_email
                    .filter(|e| !e.trim().is_empty())
                    .ok_or_else(|| missing("client_email"))?,
                token_uri: file
                    .token_uri
                    .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            }),
            "authorized_user" => Ok(FileKind::AuthorizedUser {
                client_id: file
                    .client_id
                    .filter(|id| !id.trim().is_empty())
                    .ok_or_else(|| missing("client_id"))?,
                client_secret: file.client_secret.ok_or_else(|| missing("client_secret"))?,
                refresh_token: file.refresh_token.ok_or_else(|| missing("refresh_token"))?,
                token_uri: file.token_uri,
            }),
            other => Err(fail(format!(
                "is of type `{}`; an ID token comes from a `service_account` key or \
                 `authorized_user` credentials",
                printable(other)
            ))),
        }
    }
}

/// Whether `uri` is `https://`, or `http://` to this machine (a local test server).
fn token_uri_keeps_tls(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|url| match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    })
}
