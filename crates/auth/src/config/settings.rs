//! Every setting, declared once.
//!
//! Each row of the table at the end names a setting's field, its [kind](super::kind) (how it is
//! written and shown), what its getter returns (no getter: written by hand in `mod.rs`), and its
//! name in each source: the YAML file's dotted key, the environment variables (the first set
//! one wins) and flytekit's INI option. Its doc comment documents the getter and the builder
//! method. From the table come: the [`Layer`] holding one source's values, the [`key`]
//! constants naming a setting in errors, the variables' constants in
//! [`env`](super::env), the reading of the YAML file, the environment and the INI file, the
//! merge, `Debug`, the getters of [`PlatformConfig`] and the methods of
//! [`PlatformConfigBuilder`].
//!
//! Adding a setting is adding a row. Unset values stay unset (`None`): the flow that uses a
//! setting applies its own default.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use flyte_auth_core::{Error, SecretString};
use serde::de::MapAccess;

use super::{
    AuthMode, PlatformConfig, PlatformConfigBuilder,
    kind::{
        Command, Count, FilePath, Flag, Kind, List, Mode, Period, Secret, Shown, Text, Url, View,
        Yaml,
    },
    layer::Key,
};

macro_rules! settings {
    // `Some(value)`, or `None` when the row leaves the part out.
    (@opt) => { None };
    (@opt $value:expr) => { Some($value) };

    // The getter: none when the row names no return type.
    (@getter [$($doc:literal)*] $field:ident [] $($rest:tt)*) => {};
    (@getter [$($doc:literal)*] $field:ident [$get:ty] [$($yaml:literal)?] [$($var:literal)*]
        [$($section:ident $option:ident)?]) => {
        $(#[doc = $doc])*
        ///
        /// Where it comes from, the first that sets it winning: the builder method of the same
        /// name,
        $(#[doc = concat!("- `", $var, "`,")])*
        $(#[doc = concat!("- `", $yaml, "` in the config file,")])?
        $(#[doc = concat!("- `[", stringify!($section), "] ", stringify!($option), "` in flytekit's INI file.")])?
        pub fn $field(&self) -> $get {
            View::view(&self.settings.$field)
        }
    };

    // The builder method's argument, by kind.
    (@arg Text) => { impl Into<String> };
    (@arg Url) => { impl Into<String> };
    (@arg FilePath) => { impl Into<PathBuf> };
    (@arg Secret) => { impl Into<SecretString> };
    (@arg Flag) => { bool };
    (@arg List) => { impl IntoIterator<Item = impl Into<String>> };
    (@arg Command) => { impl IntoIterator<Item = impl Into<String>> };
    (@arg Period) => { Duration };
    (@arg Count) => { u32 };
    (@arg Mode) => { AuthMode };
    (@value List $value:ident) => { $value.into_iter().map(Into::into).collect() };
    (@value Command $value:ident) => { $value.into_iter().map(Into::into).collect() };
    (@value $kind:ident $value:ident) => { $value.into() };

    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $kind:ident $(-> $get:ty)? {
            $(yaml: $yaml:literal,)?
            $(env: [$($var:ident = $name:literal),+],)?
            $(ini: $section:ident.$option:ident,)?
        }
    )*) => {
        /// Each setting's names in each source, by its field name.
        #[allow(non_upper_case_globals)]
        pub(crate) mod key {
            use super::Key;
            $(pub(crate) const $field: Key = Key {
                field: stringify!($field),
                kind: stringify!($kind),
                yaml: settings!(@opt $($yaml)?),
                env: &[$($($name),+)?],
                ini: settings!(@opt $((stringify!($section), stringify!($option)))?),
            };)*
            /// Every setting.
            pub(crate) const ALL: &[Key] = &[$($field),*];
        }

        /// The variables of the settings, re-exported by [`env`](super::super::env).
        pub(crate) mod vars {
            $($($(
                #[doc = concat!(
                    "`", $name, "`: sets [`", stringify!($field),
                    "`](crate::config::PlatformConfigBuilder::", stringify!($field), ")."
                )]
                pub const $var: &str = $name;
            )+)?)*
        }

        /// Every setting, each unset until a source sets it.
        #[derive(Clone, Default)]
        pub(crate) struct Layer {
            $(pub(crate) $field: Option<<$kind as Kind>::Value>,)*
        }

        impl Layer {
            /// Reads every setting from text (the environment, an INI file): `value(key)` is
            /// the setting's name there and its text, if set; `error(name, message)` the error
            /// for a text that is no value of the setting's kind.
            pub(crate) fn from_text(
                mut value: impl FnMut(&Key) -> Option<(String, String)>,
                error: impl Fn(&str, &str) -> Error,
            ) -> Result<Self, Error> {
                Ok(Self {
                    $($field: match value(&key::$field) {
                        Some((name, text)) => super::kind::from_text::<$kind>(&text)
                            .map_err(|message| error(&name, &message))?,
                        None => None,
                    },)*
                })
            }

            /// Reads the value at the YAML file's dotted `path` from `map`, if a setting has
            /// that key; `false` if none has.
            pub(crate) fn read_yaml<'de, A: MapAccess<'de>>(
                &mut self,
                path: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(if key::$field.yaml == Some(path) {
                    self.$field = map.next_value::<Yaml<$kind>>()?.0;
                    return Ok(true);
                })*
                Ok(false)
            }

            /// Each setting from `self`, else from `lower`.
            pub(crate) fn or(self, lower: Self) -> Self {
                Self { $($field: self.$field.or(lower.$field),)* }
            }

            /// Adds every setting to `out`, shown by its kind: no secret, no argument of a
            /// command, no user info of a URL.
            pub(crate) fn debug_fields(&self, out: &mut fmt::DebugStruct<'_, '_>) {
                $(out.field(stringify!($field), &Shown::<$kind>(&self.$field));)*
            }

            /// The fields that are set.
            #[cfg(test)]
            pub(crate) fn set_fields(&self) -> Vec<&'static str> {
                let mut set = Vec::new();
                $(if self.$field.is_some() {
                    set.push(stringify!($field));
                })*
                set
            }
        }

        impl PlatformConfig {
            $(settings!(@getter [$($doc)*] $field [$($get)?] [$($yaml)?] [$($($name)+)?]
                [$($section $option)?]);)*
        }

        impl PlatformConfigBuilder {
            $(
                $(#[doc = $doc])*
                ///
                /// Set here, it wins over the config file and the environment.
                pub fn $field(mut self, value: settings!(@arg $kind)) -> Self {
                    self.explicit.$field = Some(settings!(@value $kind value));
                    self
                }
            )*
        }
    };
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Layer");
        self.debug_fields(&mut out);
        out.finish()
    }
}

settings! {
    /// The server: `host:port`, `dns:///host:port`, `https://host` or `http://host:port`.
    endpoint: Text {
        yaml: "admin.endpoint",
        env: [ADMIN_ENDPOINT = "FLYTE_ADMIN_ENDPOINT", PLATFORM_URL = "FLYTE_PLATFORM_URL"],
        ini: platform.url,
    }
    /// Plain text to the server, no TLS.
    insecure: Flag {
        yaml: "admin.insecure",
        env: [ADMIN_INSECURE = "FLYTE_ADMIN_INSECURE", PLATFORM_INSECURE = "FLYTE_PLATFORM_INSECURE"],
        ini: platform.insecure,
    }
    /// TLS without certificate verification.
    insecure_skip_verify: Flag -> bool {
        yaml: "admin.insecureSkipVerify",
        env: [
            ADMIN_INSECURE_SKIP_VERIFY = "FLYTE_ADMIN_INSECURESKIPVERIFY",
            PLATFORM_INSECURE_SKIP_VERIFY = "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY"
        ],
        ini: platform.insecure_skip_verify,
    }
    /// A PEM bundle to trust in addition to the system roots.
    ca_cert_file_path: FilePath -> Option<&Path> {
        yaml: "admin.caCertFilePath",
        env: [
            ADMIN_CA_CERT_FILE_PATH = "FLYTE_ADMIN_CACERTFILEPATH",
            PLATFORM_CA_CERT_FILE_PATH = "FLYTE_PLATFORM_CA_CERT_FILE_PATH"
        ],
        ini: platform.ca_cert_file_path,
    }
    /// The proxy of the OAuth requests (`http://`, `https://`, `socks5://`, `socks5h://`).
    http_proxy_url: Url -> Option<&str> {
        yaml: "admin.httpProxyURL",
        env: [
            ADMIN_HTTP_PROXY_URL = "FLYTE_ADMIN_HTTPPROXYURL",
            PLATFORM_HTTP_PROXY_URL = "FLYTE_PLATFORM_HTTP_PROXY_URL"
        ],
        ini: platform.http_proxy_url,
    }
    /// Keep tokens out of the system keyring (the automatic store is then the file store).
    disable_keyring: Flag -> bool {
        yaml: "admin.disableKeyring",
        env: [ADMIN_DISABLE_KEYRING = "FLYTE_ADMIN_DISABLEKEYRING"],
    }
    /// Write the keyring entries of every Flyte tool (flytekit, the Flyte 2 SDK, flytectl) on
    /// each login, even where none held one, so one login serves them all (off by default:
    /// only the layouts that held a login are updated).
    write_all_layouts: Flag -> bool {
        yaml: "admin.writeAllLayouts",
        env: [ADMIN_WRITE_ALL_LAYOUTS = "FLYTE_ADMIN_WRITEALLLAYOUTS"],
    }
    /// The flow. Set on the builder, it also wins over the switch to client credentials that
    /// a secret found through `clientSecretLocation` or `clientSecretEnvVar` makes.
    auth_mode: Mode {
        yaml: "admin.authType",
        env: [ADMIN_AUTH_TYPE = "FLYTE_ADMIN_AUTHTYPE", CREDENTIALS_AUTH_MODE = "FLYTE_CREDENTIALS_AUTH_MODE"],
        ini: credentials.auth_mode,
    }
    /// The OAuth client id (an API key's wins over the file's and the environment's).
    client_id: Text -> Option<&str> {
        yaml: "admin.clientId",
        env: [ADMIN_CLIENT_ID = "FLYTE_ADMIN_CLIENTID", CREDENTIALS_CLIENT_ID = "FLYTE_CREDENTIALS_CLIENT_ID"],
        ini: credentials.client_id,
    }
    /// The client secret itself (no key in the YAML file). Surrounding white space is removed.
    /// The one used comes from the builder, else an API key, else the variable
    /// `clientSecretEnvVar` names, else the file `clientSecretLocation` names, else
    /// `FLYTE_CREDENTIALS_CLIENT_SECRET` (or the INI file's `client_secret`).
    client_secret: Secret -> Option<&SecretString> {
        env: [CREDENTIALS_CLIENT_SECRET = "FLYTE_CREDENTIALS_CLIENT_SECRET"],
        ini: credentials.client_secret,
    }
    /// A file holding the client secret (surrounding white space is ignored).
    client_secret_location: FilePath -> Option<&Path> {
        yaml: "admin.clientSecretLocation",
        env: [
            ADMIN_CLIENT_SECRET_LOCATION = "FLYTE_ADMIN_CLIENTSECRETLOCATION",
            CREDENTIALS_CLIENT_SECRET_LOCATION = "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION"
        ],
        ini: credentials.client_secret_location,
    }
    /// The name of an environment variable holding the client secret.
    client_secret_env_var: Text -> Option<&str> {
        yaml: "admin.clientSecretEnvVar",
        env: [
            ADMIN_CLIENT_SECRET_ENV_VAR = "FLYTE_ADMIN_CLIENTSECRETENVVAR",
            CREDENTIALS_CLIENT_SECRET_ENV_VAR = "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR"
        ],
        ini: credentials.client_secret_env_var,
    }
    /// Scopes to ask for; empty means the server's.
    scopes: List -> &[String] {
        yaml: "admin.scopes",
        env: [ADMIN_SCOPES = "FLYTE_ADMIN_SCOPES", CREDENTIALS_SCOPES = "FLYTE_CREDENTIALS_SCOPES"],
        ini: credentials.scopes,
    }
    /// The `audience` parameter of the token requests.
    audience: Text -> Option<&str> {
        yaml: "admin.audience",
        env: [ADMIN_AUDIENCE = "FLYTE_ADMIN_AUDIENCE", CREDENTIALS_AUDIENCE = "FLYTE_CREDENTIALS_AUDIENCE"],
        ini: credentials.audience,
    }
    /// The program and arguments that print a token; empty if unset.
    command: Command -> &[String] {
        yaml: "admin.command",
        env: [ADMIN_COMMAND = "FLYTE_ADMIN_COMMAND", CREDENTIALS_COMMAND = "FLYTE_CREDENTIALS_COMMAND"],
        ini: credentials.command,
    }
    /// The program and arguments that print a token for `proxy-authorization`; empty if unset.
    proxy_command: Command -> &[String] {
        yaml: "admin.proxyCommand",
        env: [
            ADMIN_PROXY_COMMAND = "FLYTE_ADMIN_PROXYCOMMAND",
            CREDENTIALS_PROXY_COMMAND = "FLYTE_CREDENTIALS_PROXY_COMMAND"
        ],
        ini: credentials.proxy_command,
    }
    /// The token endpoint to use instead of the discovered one.
    token_url: Url -> Option<&str> {
        yaml: "admin.tokenUrl",
        env: [ADMIN_TOKEN_URL = "FLYTE_ADMIN_TOKENURL"],
    }
    /// The header to send the token in instead of the discovered one.
    authorization_header: Text -> Option<&str> {
        yaml: "admin.authorizationHeader",
        env: [ADMIN_AUTHORIZATION_HEADER = "FLYTE_ADMIN_AUTHORIZATIONHEADER"],
    }
    /// How many times discovery and the token requests safe to repeat are retried after a
    /// transient failure (as in the Go client; unset: the oauth crate's `DEFAULT_MAX_RETRIES`,
    /// 4, the Go client's default).
    max_retries: Count -> Option<u32> {
        yaml: "admin.maxRetries",
    }
    /// The time allowed for each attempt of a retried request (discovery, client
    /// credentials, refresh) before it is abandoned and retried, as in the Go client (unset:
    /// the oauth crate's `DEFAULT_PER_RETRY_TIMEOUT`, 15 seconds, the Go client's default).
    per_retry_timeout: Period -> Option<Duration> {
        yaml: "admin.perRetryTimeout",
    }
    /// The time the token command (`admin.command`) may take (unset: the command crate's
    /// `DEFAULT_TIMEOUT`, 30 seconds).
    command_timeout: Period -> Option<Duration> {
        yaml: "admin.commandTimeout",
    }
    /// How long the browser login waits for the user (unset: the PKCE crate's
    /// `DEFAULT_LOGIN_TIMEOUT`, 2 minutes, as flytectl).
    pkce_timeout: Period -> Option<Duration> {
        yaml: "admin.pkceConfig.timeout",
    }
    /// Refresh a browser-login token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes).
    pkce_refresh_time: Period -> Option<Duration> {
        yaml: "admin.pkceConfig.refreshTime",
    }
    /// How long the device login waits for the user's approval (unset: the device crate's
    /// `DEFAULT_LOGIN_TIMEOUT`, 10 minutes).
    device_flow_timeout: Period -> Option<Duration> {
        yaml: "admin.deviceFlowConfig.timeout",
    }
    /// How often the device flow polls when the server names no interval (unset: the device
    /// crate's `DEFAULT_DEVICE_POLL_INTERVAL`, 5 seconds).
    device_flow_poll_interval: Period -> Option<Duration> {
        yaml: "admin.deviceFlowConfig.pollInterval",
    }
    /// Refresh a device-flow token this long before it expires (unset: core's
    /// `DEFAULT_REFRESH_MARGIN`, 5 minutes).
    device_flow_refresh_time: Period -> Option<Duration> {
        yaml: "admin.deviceFlowConfig.refreshTime",
    }
    /// How long before expiry a token is refreshed at the earliest, for every flow (the Go
    /// client's setting; a flow's own `refreshTime` wins): each token's refresh point is drawn
    /// between this and half of it before expiry, so processes do not refresh in step. Unset
    /// or `0s` (the Go client's default): core's `DEFAULT_REFRESH_MARGIN`, 5 minutes.
    token_refresh_window: Period -> Option<Duration> {
        yaml: "admin.tokenRefreshWindow",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::config::{FileChoice, Inputs, env, file, ini, resolve};

    const SECRET: &str = "s3cret-sample";

    /// A value of `key`'s kind, written as text.
    fn sample(key: &Key) -> &'static str {
        match key.kind {
            "Flag" => "true",
            "List" => "first, second",
            "Command" => "program, --token=argument-secret",
            "Period" => "90s",
            "Count" => "3",
            "Mode" => "DeviceFlow",
            "Url" => "https://user:pw-in-url@proxy.example.org:3128/p?q=query-secret",
            "FilePath" => "/etc/flyte/sample",
            "Secret" => SECRET,
            _ if key.field == "client_secret_env_var" => "SAMPLE_SECRET_VAR",
            _ => "sample-text.example.org",
        }
    }

    /// The YAML file setting only `yaml` (`admin.pkceConfig.timeout`) to `value`.
    fn yaml_file(yaml: &str, value: &str) -> String {
        let mut text = String::new();
        let parts: Vec<&str> = yaml.split('.').collect();
        for (depth, part) in parts.iter().enumerate() {
            text.push_str(&"  ".repeat(depth));
            text.push_str(part);
            text.push(':');
            if depth + 1 == parts.len() {
                text.push_str(&format!(" '{value}'"));
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn every_setting_is_read_from_its_yaml_key_each_variable_and_its_ini_option() {
        for key in key::ALL {
            let value = sample(key);
            // Each source reads the same value, and sets this setting only.
            let mut read = Vec::new();
            if let Some(yaml) = key.yaml {
                let text = yaml_file(yaml, value);
                let layer = file::parse(Path::new("config.yaml"), &text)
                    .unwrap_or_else(|e| panic!("{text}: {e}"));
                read.push((format!("YAML {yaml}"), layer));
            }
            for name in key.env {
                let vars = HashMap::from([(name.to_string(), value.to_owned())]);
                let (layer, used) =
                    env::read(&|n| vars.get(n).cloned()).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(used, [*name]);
                read.push((format!("variable {name}"), layer));
            }
            if let Some((section, option)) = key.ini {
                let text = format!("[{section}]\n{option} = {value}\n");
                let layer = ini::parse(Path::new("config"), &text)
                    .unwrap_or_else(|e| panic!("{text}: {e}"));
                read.push((format!("INI [{section}] {option}"), layer));
            }
            assert!(!read.is_empty(), "{key:?} has no source");
            let first = format!("{:?}", read[0].1);
            for (source, layer) in &read {
                assert_eq!(layer.set_fields(), [key.field], "{source}");
                assert_eq!(format!("{layer:?}"), first, "{source} reads another value");
            }
        }
    }

    #[test]
    fn each_name_belongs_to_one_setting() {
        let mut seen = HashSet::new();
        for key in key::ALL {
            let names = key.yaml.into_iter().chain(key.env.iter().copied());
            let ini = key.ini.map(|(s, o)| format!("[{s}] {o}"));
            for name in names
                .map(str::to_owned)
                .chain(ini)
                .chain([key.field.to_owned()])
            {
                assert!(seen.insert(name.clone()), "{name} is declared twice");
            }
        }
    }

    #[test]
    fn debug_shows_every_setting_and_no_secret() {
        let explicit = Layer::from_text(
            |key| Some((key.field.to_owned(), sample(key).to_owned())),
            |name, message| Error::config(format!("{name}: {message}")),
        )
        .unwrap();
        let inputs = Inputs {
            env: &|_| None,
            process_env: false,
            cwd: None,
        };
        let cfg = resolve(&inputs, &FileChoice::Skip, explicit, None).unwrap();
        assert_eq!(cfg.client_secret().unwrap().expose_secret(), SECRET);
        let debug = format!("{cfg:?}");
        for key in key::ALL {
            let field = format!(" {}: ", key.field);
            assert!(debug.contains(&field), "{} missing from {debug}", key.field);
            assert!(!debug.contains(&format!("{field}None")), "{debug}");
        }
        for secret in [SECRET, "pw-in-url", "query-secret", "argument-secret"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(
            debug.contains(r#"command: ["program", <1 argument>]"#),
            "{debug}"
        );
        assert!(debug.contains("proxy.example.org:3128"), "{debug}");
        // Unset settings show as unset.
        let unset = format!("{:?}", PlatformConfig::for_endpoint("x:1").unwrap());
        assert!(unset.contains("pkce_timeout: None"), "{unset}");
    }
}
