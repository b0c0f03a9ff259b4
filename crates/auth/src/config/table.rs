//! Every setting's names, one row each: the YAML file's dotted key, the environment variables
//! (the first set one wins) and flytekit's INI option, and how a text sets it. The variables
//! and the INI file are read through this table; errors name a setting through it.
//!
//! Adding a setting is adding a field to [`Settings`], a row here, a getter and a builder
//! method (`getters.rs`), and its variables' constants in [`env`](super::env).

use flyte_auth_core::Error;

use super::{env::*, settings::Settings, value::put};

/// Sets a setting from text (trimmed; empty leaves it unset); the error is the message after
/// the place's name.
pub(crate) type Setter = fn(&mut Settings, &str) -> Result<(), String>;

/// A setting's names in each source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// The field, the getter and the builder method (`client_id`).
    pub(crate) field: &'static str,
    /// Dotted key in the YAML file; none for the client secret.
    pub(crate) yaml: Option<&'static str>,
    /// Environment variables, the first set one wins: the Flyte 2 SDK's `FLYTE_ADMIN_*` name
    /// (the YAML key upper-cased), then flytekit's `FLYTE_PLATFORM_*`/`FLYTE_CREDENTIALS_*`.
    pub(crate) env: &'static [&'static str],
    /// `(section, option)` in flytekit's INI file.
    pub(crate) ini: Option<(&'static str, &'static str)>,
    /// Sets the setting from text.
    pub(crate) set: Setter,
}

/// One [`Row`] per setting: `field (= its path in Settings when not the field): YAML key,
/// [variables], INI option;`.
macro_rules! rows {
    ($($field:ident $(= $($path:ident).+)?: $yaml:literal, [$($env:ident),*], $ini:expr;)*) => {
        &[$(Row {
            field: stringify!($field),
            yaml: if $yaml.is_empty() { None } else { Some($yaml) },
            env: &[$($env),*],
            ini: $ini,
            set: |s, t| put(&mut rows!(@path s, $field $(, $($path).+)?), t),
        }),*]
    };
    (@path $s:ident, $field:ident) => { $s.$field };
    (@path $s:ident, $field:ident, $($path:ident).+) => { $s.$($path).+ };
}

const P: &str = "platform";
const C: &str = "credentials";

/// Every setting.
pub(crate) const ROWS: &[Row] = rows! {
    endpoint: "admin.endpoint", [ADMIN_ENDPOINT, PLATFORM_URL], Some((P, "url"));
    insecure: "admin.insecure", [ADMIN_INSECURE, PLATFORM_INSECURE], Some((P, "insecure"));
    insecure_skip_verify: "admin.insecureSkipVerify",
        [ADMIN_INSECURE_SKIP_VERIFY, PLATFORM_INSECURE_SKIP_VERIFY],
        Some((P, "insecure_skip_verify"));
    ca_cert_file_path: "admin.caCertFilePath",
        [ADMIN_CA_CERT_FILE_PATH, PLATFORM_CA_CERT_FILE_PATH], Some((P, "ca_cert_file_path"));
    http_proxy_url: "admin.httpProxyURL",
        [ADMIN_HTTP_PROXY_URL, PLATFORM_HTTP_PROXY_URL], Some((P, "http_proxy_url"));
    disable_keyring: "admin.disableKeyring", [ADMIN_DISABLE_KEYRING], None;
    write_all_layouts: "admin.writeAllLayouts", [ADMIN_WRITE_ALL_LAYOUTS], None;
    auth_mode: "admin.authType", [ADMIN_AUTH_TYPE, CREDENTIALS_AUTH_MODE], Some((C, "auth_mode"));
    client_id: "admin.clientId", [ADMIN_CLIENT_ID, CREDENTIALS_CLIENT_ID], Some((C, "client_id"));
    client_secret: "", [CREDENTIALS_CLIENT_SECRET], Some((C, "client_secret"));
    client_secret_location: "admin.clientSecretLocation",
        [ADMIN_CLIENT_SECRET_LOCATION, CREDENTIALS_CLIENT_SECRET_LOCATION],
        Some((C, "client_secret_location"));
    client_secret_env_var: "admin.clientSecretEnvVar",
        [ADMIN_CLIENT_SECRET_ENV_VAR, CREDENTIALS_CLIENT_SECRET_ENV_VAR],
        Some((C, "client_secret_env_var"));
    scopes: "admin.scopes", [ADMIN_SCOPES, CREDENTIALS_SCOPES], Some((C, "scopes"));
    audience: "admin.audience", [ADMIN_AUDIENCE, CREDENTIALS_AUDIENCE], Some((C, "audience"));
    command: "admin.command", [ADMIN_COMMAND, CREDENTIALS_COMMAND], Some((C, "command"));
    proxy_command: "admin.proxyCommand",
        [ADMIN_PROXY_COMMAND, CREDENTIALS_PROXY_COMMAND], Some((C, "proxy_command"));
    proxy_google_audience: "admin.proxyGoogleAudience", [ADMIN_PROXY_GOOGLE_AUDIENCE], None;
    google_audience: "admin.googleAudience", [ADMIN_GOOGLE_AUDIENCE], None;
    token_url: "admin.tokenUrl", [ADMIN_TOKEN_URL], None;
    authorization_header: "admin.authorizationHeader", [ADMIN_AUTHORIZATION_HEADER], None;
    max_retries: "admin.maxRetries", [], None;
    per_retry_timeout: "admin.perRetryTimeout", [], None;
    command_timeout: "admin.commandTimeout", [], None;
    pkce_timeout = pkce_config.timeout: "admin.pkceConfig.timeout", [], None;
    pkce_refresh_time = pkce_config.refresh_time: "admin.pkceConfig.refreshTime", [], None;
    device_flow_timeout = device_flow_config.timeout: "admin.deviceFlowConfig.timeout", [], None;
    device_flow_poll_interval = device_flow_config.poll_interval:
        "admin.deviceFlowConfig.pollInterval", [], None;
    device_flow_refresh_time = device_flow_config.refresh_time:
        "admin.deviceFlowConfig.refreshTime", [], None;
    device_flow_pkce = device_flow_config.pkce: "admin.deviceFlowConfig.pkce",
        [ADMIN_DEVICE_FLOW_CONFIG_PKCE], None;
    token_refresh_window: "admin.tokenRefreshWindow", [], None;
};

/// The row of `field`.
pub(crate) fn row_of(field: &str) -> Option<&'static Row> {
    ROWS.iter().find(|row| row.field == field)
}

/// Reads settings from text: `value(row)` is the setting's name in that source and its text,
/// if set; `error(name, message)` the error for a text that is no value of the setting.
pub(crate) fn read(
    mut value: impl FnMut(&Row) -> Option<(String, String)>,
    error: impl Fn(&str, &str) -> Error,
) -> Result<Settings, Error> {
    let mut settings = Settings::default();
    for row in ROWS {
        if let Some((name, text)) = value(row) {
            (row.set)(&mut settings, &text).map_err(|message| error(&name, &message))?;
        }
    }
    Ok(settings)
}

#[cfg(all(test, feature = "config"))]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::config::{PlatformConfig, table};
    use std::path::Path;

    use crate::config::{FileChoice, Inputs, env, file, ini, resolve};

    const SECRET: &str = "s3cret-sample";

    /// A value of `key`'s type, written as text.
    fn sample(key: &Row) -> &'static str {
        match key.field {
            "insecure"
            | "insecure_skip_verify"
            | "disable_keyring"
            | "write_all_layouts"
            | "device_flow_pkce" => "true",
            "scopes" => "first, second",
            "command" | "proxy_command" => "program, --token=argument-secret",
            f if f.ends_with("timeout") || f.ends_with("time") || f.ends_with("interval") => "90s",
            "token_refresh_window" => "90s",
            "max_retries" => "3",
            "auth_mode" => "DeviceFlow",
            "http_proxy_url" | "token_url" => {
                "https://user:pw-in-url@proxy.example.org:3128/p?q=query-secret"
            }
            f if f.ends_with("path") || f.ends_with("location") => "/etc/flyte/sample",
            "client_secret" => SECRET,
            "client_secret_env_var" => "SAMPLE_SECRET_VAR",
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
        for key in ROWS {
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
            // Only this setting is set: one of the 30 is not `None`.
            assert_eq!(first.matches(": None").count(), 29, "{first}");
            for (source, layer) in &read {
                assert_eq!(format!("{layer:?}"), first, "{source} reads another value");
            }
        }
    }

    #[test]
    fn each_name_belongs_to_one_setting() {
        let mut seen = HashSet::new();
        for key in ROWS {
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
        // Every setting but the Google proxy, which `proxy_command` excludes.
        let explicit = table::read(
            |key| {
                (key.field != "proxy_google_audience")
                    .then(|| (key.field.to_owned(), sample(key).to_owned()))
            },
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
        // Every setting is shown, and set.
        let settings = format!("{:?}", cfg.settings);
        assert_eq!(settings.matches(": Some(").count(), 29, "{settings}");
        assert!(
            settings.contains("proxy_google_audience: None"),
            "{settings}"
        );
        for secret in [SECRET, "pw-in-url", "query-secret", "argument-secret"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(
            debug.contains(r#"command: Some(["program", <1 argument>])"#),
            "{debug}"
        );
        assert!(debug.contains("proxy.example.org:3128"), "{debug}");
        // Unset settings show as unset.
        let unset = format!("{:?}", PlatformConfig::for_endpoint("x:1").unwrap());
        assert!(
            unset.contains("pkce_config: PkceConfig { timeout: None"),
            "{unset}"
        );
    }
}
