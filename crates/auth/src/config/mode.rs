//! [`AuthMode`]: which flow obtains the token, by the names flytekit and flytectl accept, or
//! the name of an authenticator an application registered.

use std::{fmt, str::FromStr};

/// The authentication flow, as named by `admin.authType` or `FLYTE_CREDENTIALS_AUTH_MODE`.
///
/// Parsing is case-insensitive and accepts every name flytekit accepts, so a config file
/// shared with pyflyte and flytectl reads the same here:
///
/// | mode | accepted names |
/// | --- | --- |
/// | [`Pkce`](Self::Pkce) | `Pkce`, `standard` |
/// | [`ClientSecret`](Self::ClientSecret) | `ClientSecret`, `basic`, `client_credentials` |
/// | [`DeviceFlow`](Self::DeviceFlow) | `DeviceFlow` |
/// | [`ExternalCommand`](Self::ExternalCommand) | `ExternalCommand`, `external_process` |
/// | [`GoogleIdToken`](Self::GoogleIdToken) | `GoogleIdToken` |
/// | [`Passthrough`](Self::Passthrough) | `Passthrough` |
///
/// Any other name made of letters, digits, `_`, `-` and `.` parses to
/// [`Plugin`](Self::Plugin): the name of an authenticator the application registers
/// (flytekit's authenticator plugins; see [`AuthenticatorRegistry`](crate::AuthenticatorRegistry)).
/// Whether such a name means anything is decided by
/// [`get_authenticator`](crate::get_authenticator), which fails for an unregistered name with
/// the list of every accepted one — so a typo such as `Pkse` is reported there, not while
/// the config is read.
///
/// ```
/// use flyte_auth::AuthMode;
/// assert_eq!("standard".parse::<AuthMode>()?, AuthMode::Pkce);
/// assert_eq!("CLIENT_CREDENTIALS".parse::<AuthMode>()?, AuthMode::ClientSecret);
/// assert_eq!(AuthMode::DeviceFlow.to_string(), "DeviceFlow");
/// assert_eq!("my-sso".parse::<AuthMode>()?, AuthMode::Plugin("my-sso".into()));
/// assert!("two words".parse::<AuthMode>().is_err());
/// # Ok::<(), flyte_auth::config::ParseAuthModeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AuthMode {
    /// Browser login: authorization code with PKCE. The default, as in flytekit and flytectl.
    #[default]
    Pkce,
    /// Client credentials grant with a client id and secret (services, CI).
    ClientSecret,
    /// Device authorization grant (RFC 8628): a code to enter on another device.
    DeviceFlow,
    /// A command (`admin.command`) prints the token.
    ExternalCommand,
    /// A Google ID token for `admin.googleAudience` is the token (a Flyte deployment whose
    /// only gate is Google Cloud's identity-aware proxy): from a service-account key, the
    /// metadata server or gcloud's login (feature `google`). Not a flytekit name.
    GoogleIdToken,
    /// The credentials of the request being served are forwarded (the Flyte 2 SDK's
    /// `Passthrough`, for apps acting as the signed-in user): no login, no store (feature
    /// `tower`; see `flyte_auth::passthrough`).
    Passthrough,
    /// An authenticator registered by the application under this name (as written in the
    /// config; looked up case-insensitively).
    Plugin(String),
}

impl AuthMode {
    /// Every built-in mode, in the order of the table above.
    pub const ALL: [AuthMode; 6] = [
        Self::Pkce,
        Self::ClientSecret,
        Self::DeviceFlow,
        Self::ExternalCommand,
        Self::GoogleIdToken,
        Self::Passthrough,
    ];

    /// The canonical name (flyteidl's, as flytectl writes it): `Pkce`, `ClientSecret`,
    /// `DeviceFlow`, `ExternalCommand`, `GoogleIdToken`; for a plugin, its name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Plugin(name) => name,
            builtin => builtin.names()[0],
        }
    }

    /// Every name that parses to this built-in mode, the canonical one first; empty for a
    /// plugin.
    pub fn names(&self) -> &'static [&'static str] {
        match self {
            Self::Pkce => &["Pkce", "standard"],
            Self::ClientSecret => &["ClientSecret", "basic", "client_credentials"],
            Self::DeviceFlow => &["DeviceFlow"],
            Self::ExternalCommand => &["ExternalCommand", "external_process"],
            Self::GoogleIdToken => &["GoogleIdToken"],
            Self::Passthrough => &["Passthrough"],
            Self::Plugin(_) => &[],
        }
    }

    /// The plugin name, when this is [`Plugin`](Self::Plugin).
    pub fn plugin_name(&self) -> Option<&str> {
        match self {
            Self::Plugin(name) => Some(name),
            _ => None,
        }
    }

    /// Whether this is one of the built-in flows ([`ALL`](Self::ALL)).
    pub fn is_builtin(&self) -> bool {
        !matches!(self, Self::Plugin(_))
    }

    /// The built-in mode `name` stands for (case-insensitive), if any.
    pub fn builtin(name: &str) -> Option<AuthMode> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|mode| mode.names().iter().any(|n| n.eq_ignore_ascii_case(name)))
    }

    /// `Pkce (or standard), ClientSecret (or basic, client_credentials), DeviceFlow,
    /// ExternalCommand (or external_process), GoogleIdToken`: every built-in name, for
    /// messages.
    pub fn accepted_names() -> String {
        Self::ALL
            .iter()
            .map(|mode| match mode.names() {
                [canonical] => (*canonical).to_owned(),
                [canonical, aliases @ ..] => format!("{canonical} (or {})", aliases.join(", ")),
                [] => String::new(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMode {
    type Err = ParseAuthModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        if let Some(mode) = Self::builtin(name) {
            return Ok(mode);
        }
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if is_name {
            Ok(Self::Plugin(name.to_owned()))
        } else {
            Err(ParseAuthModeError {
                input: name.to_owned(),
            })
        }
    }
}

/// An auth type that is neither a built-in name nor a possible plugin name (empty, or with
/// characters other than letters, digits, `_`, `-` and `.`). Its message lists every built-in
/// name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid auth type `{input}`; expected one of {} (case-insensitive), or the name of a \
     registered authenticator (letters, digits, `_`, `-`, `.`)",
    AuthMode::accepted_names()
)]
pub struct ParseAuthModeError {
    input: String,
}

impl ParseAuthModeError {
    /// The name that was not recognised.
    pub fn input(&self) -> &str {
        &self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flytekit_name_parses_in_any_case() {
        let cases = [
            ("Pkce", AuthMode::Pkce),
            ("pkce", AuthMode::Pkce),
            ("standard", AuthMode::Pkce),
            ("STANDARD", AuthMode::Pkce),
            ("ClientSecret", AuthMode::ClientSecret),
            ("clientsecret", AuthMode::ClientSecret),
            ("basic", AuthMode::ClientSecret),
            ("Basic", AuthMode::ClientSecret),
            ("client_credentials", AuthMode::ClientSecret),
            ("Client_Credentials", AuthMode::ClientSecret),
            ("DeviceFlow", AuthMode::DeviceFlow),
            ("deviceflow", AuthMode::DeviceFlow),
            ("ExternalCommand", AuthMode::ExternalCommand),
            ("externalcommand", AuthMode::ExternalCommand),
            ("external_process", AuthMode::ExternalCommand),
            ("EXTERNAL_PROCESS", AuthMode::ExternalCommand),
            ("GoogleIdToken", AuthMode::GoogleIdToken),
            ("googleidtoken", AuthMode::GoogleIdToken),
            ("Passthrough", AuthMode::Passthrough),
            ("passthrough", AuthMode::Passthrough),
            (" Pkce ", AuthMode::Pkce),
        ];
        for (name, mode) in cases {
            assert_eq!(name.parse::<AuthMode>().unwrap(), mode, "{name}");
            assert!(mode.is_builtin());
        }
    }

    #[test]
    fn canonical_names_round_trip() {
        for mode in AuthMode::ALL {
            assert_eq!(mode.to_string().parse::<AuthMode>().unwrap(), mode);
        }
        assert_eq!(AuthMode::default(), AuthMode::Pkce);
        let plugin = AuthMode::Plugin("Corp.SSO-2".into());
        assert_eq!(plugin.to_string().parse::<AuthMode>().unwrap(), plugin);
    }

    #[test]
    fn other_names_are_plugins_kept_as_written() {
        let mode = " MySSO ".parse::<AuthMode>().unwrap();
        assert_eq!(mode, AuthMode::Plugin("MySSO".into()));
        assert_eq!(mode.plugin_name(), Some("MySSO"));
        assert!(!mode.is_builtin() && mode.names().is_empty());
    }

    #[test]
    fn a_name_no_plugin_could_have_lists_every_accepted_name() {
        let err = "client secret".parse::<AuthMode>().unwrap_err();
        assert_eq!(err.input(), "client secret");
        assert_eq!(
            err.to_string(),
            "invalid auth type `client secret`; expected one of Pkce (or standard), \
             ClientSecret (or basic, client_credentials), DeviceFlow, \
             ExternalCommand (or external_process), GoogleIdToken, Passthrough \
             (case-insensitive), or the name of a registered authenticator (letters, digits, \
             `_`, `-`, `.`)"
        );
        assert!("".parse::<AuthMode>().is_err());
        assert!("a/b".parse::<AuthMode>().is_err());
    }
}
