//! [`AuthMode`]: which flow obtains the token, by the names flytekit and flytectl accept.

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
///
/// ```
/// use flyte_auth::AuthMode;
/// assert_eq!("standard".parse::<AuthMode>()?, AuthMode::Pkce);
/// assert_eq!("CLIENT_CREDENTIALS".parse::<AuthMode>()?, AuthMode::ClientSecret);
/// assert_eq!(AuthMode::DeviceFlow.to_string(), "DeviceFlow");
/// assert!("oauth".parse::<AuthMode>().is_err());
/// # Ok::<(), flyte_auth::config::ParseAuthModeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
}

impl AuthMode {
    /// Every mode, in the order of the table above.
    pub const ALL: [AuthMode; 4] = [
        Self::Pkce,
        Self::ClientSecret,
        Self::DeviceFlow,
        Self::ExternalCommand,
    ];

    /// The canonical name (flyteidl's, as flytectl writes it): `Pkce`, `ClientSecret`,
    /// `DeviceFlow`, `ExternalCommand`.
    pub fn as_str(self) -> &'static str {
        self.names()[0]
    }

    /// Every name that parses to this mode, the canonical one first.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Self::Pkce => &["Pkce", "standard"],
            Self::ClientSecret => &["ClientSecret", "basic", "client_credentials"],
            Self::DeviceFlow => &["DeviceFlow"],
            Self::ExternalCommand => &["ExternalCommand", "external_process"],
        }
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
        Self::ALL
            .into_iter()
            .find(|mode| mode.names().iter().any(|n| n.eq_ignore_ascii_case(name)))
            .ok_or_else(|| ParseAuthModeError {
                input: name.to_owned(),
            })
    }
}

/// An auth type name that is not one of [`AuthMode`]'s.
///
/// Its message lists every accepted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseAuthModeError {
    input: String,
}

impl ParseAuthModeError {
    /// The name that was not recognised.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseAuthModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown auth type `{}`; expected one of {} (case-insensitive)",
            self.input,
            accepted_names()
        )
    }
}

impl std::error::Error for ParseAuthModeError {}

/// `Pkce (or standard), ClientSecret (or basic, client_credentials), ...`.
fn accepted_names() -> String {
    AuthMode::ALL
        .iter()
        .map(|mode| match mode.names() {
            [canonical] => (*canonical).to_owned(),
            [canonical, aliases @ ..] => format!("{canonical} (or {})", aliases.join(", ")),
            [] => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
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
            (" Pkce ", AuthMode::Pkce),
        ];
        for (name, mode) in cases {
            assert_eq!(name.parse::<AuthMode>().unwrap(), mode, "{name}");
        }
    }

    #[test]
    fn canonical_names_round_trip() {
        for mode in AuthMode::ALL {
            assert_eq!(mode.to_string().parse::<AuthMode>().unwrap(), mode);
        }
        assert_eq!(AuthMode::default(), AuthMode::Pkce);
    }

    #[test]
    fn unknown_name_lists_every_accepted_name() {
        let err = "client_secret".parse::<AuthMode>().unwrap_err();
        assert_eq!(err.input(), "client_secret");
        assert_eq!(
            err.to_string(),
            "unknown auth type `client_secret`; expected one of Pkce (or standard), \
             ClientSecret (or basic, client_credentials), DeviceFlow, \
             ExternalCommand (or external_process) (case-insensitive)"
        );
    }
}
