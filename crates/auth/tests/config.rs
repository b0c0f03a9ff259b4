#![allow(
    clippy::unwrap_used,
    reason = "tests: a panic with the error is the clearest failure"
)]
//! `PlatformConfig` as a pyflyte / flytectl user meets it: a real config file, `FLYTE_*`
//! variables, explicit values, and the errors a mistake in any of them gives.
//!
//! The environment is always injected, so these tests neither read nor change the process's.

use std::{collections::HashMap, fs, path::Path, path::PathBuf, time::Duration};

use flyte_auth::{AuthMode, PlatformConfig, config::PlatformConfigBuilder};
use tempfile::TempDir;

/// What `flytectl config init` writes for a sandbox, plus the auth keys a real deployment sets.
const FLYTECTL_CONFIG_YAML: &str = r#"
admin:
  # For GRPC endpoints you might want to use dns:///flyte.myexample.com
  endpoint: dns:///flyte.example.org:443
  authType: Pkce
  insecure: false
  insecureSkipVerify: true
  caCertFilePath: /etc/ssl/flyte-ca.pem
  clientId: flytectl
  scopes:
    - all
    - offline
  audience: https://flyte.example.org
  httpProxyURL: http://proxy.internal:3128
  tokenUrl: https://idp.example.org/oauth2/token
  authorizationHeader: flyte-authorization
  command:
    - gcloud
    - auth
    - print-identity-token
  proxyCommand: [iap-token, --audience, flyte]
  pkceConfig:
    timeout: 3m0s
    refreshTime: 10m0s
  deviceFlowConfig:
    timeout: 15m
    pollInterval: 2s
    refreshTime: 1h30m
  maxRetries: 5
  perRetryTimeout: 15s
logger:
  show-source: true
  level: 0
storage:
  type: stow
  stow:
    kind: s3
    config:
      auth_type: accesskey
      access_key_id: minio
      secret_key: miniostorage
      disable_ssl: true
      endpoint: http://localhost:30084
      region: us-east-1
  signedUrl:
    stowConfigOverride:
      endpoint: http://localhost:30084
  container: my-s3-bucket
console:
  endpoint: https://flyte.example.org/console
"#;

/// A temporary home directory and an environment to go with it.
struct World {
    dir: TempDir,
    env: HashMap<String, String>,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        env.insert("HOME".to_owned(), dir.path().to_str().unwrap().to_owned());
        Self { dir, env }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `~/.flyte/config.yaml`.
    fn home_config(self, yaml: &str) -> Self {
        let flyte = self.dir.path().join(".flyte");
        fs::create_dir_all(&flyte).unwrap();
        fs::write(flyte.join("config.yaml"), yaml).unwrap();
        self
    }

    /// Writes a file in the temporary directory and returns its path.
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, content).unwrap();
        path
    }

    fn var(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    fn builder(&self) -> PlatformConfigBuilder {
        let env = self.env.clone();
        PlatformConfig::builder().env(move |name| env.get(name).cloned())
    }

    fn load(&self) -> Result<PlatformConfig, flyte_auth::Error> {
        self.builder().build()
    }

    fn load_error(&self) -> String {
        self.load().unwrap_err().to_string()
    }
}

fn config_with(admin: &str) -> String {
    format!("admin:\n  endpoint: dns:///flyte.example.org:443\n{admin}")
}

#[test]
fn a_flytectl_config_file_is_read_whole() {
    let world = World::new().home_config(FLYTECTL_CONFIG_YAML);
    let cfg = world.load().unwrap();

    assert_eq!(cfg.endpoint().key(), "flyte.example.org");
    assert_eq!(cfg.base_url(), "https://flyte.example.org");
    assert_eq!(cfg.auth_mode(), AuthMode::Pkce);
    assert!(!cfg.insecure());
    assert!(cfg.insecure_skip_verify());
    assert_eq!(
        cfg.ca_cert_file_path(),
        Some(Path::new("/etc/ssl/flyte-ca.pem"))
    );
    assert_eq!(cfg.client_id(), Some("flytectl"));
    assert_eq!(cfg.scopes(), ["all", "offline"]);
    assert_eq!(cfg.audience(), Some("https://flyte.example.org"));
    assert_eq!(cfg.http_proxy_url(), Some("http://proxy.internal:3128"));
    assert_eq!(
        cfg.token_url(),
        Some("https://idp.example.org/oauth2/token")
    );
    assert_eq!(cfg.authorization_header(), Some("flyte-authorization"));
    assert_eq!(cfg.command(), ["gcloud", "auth", "print-identity-token"]);
    assert_eq!(cfg.proxy_command(), ["iap-token", "--audience", "flyte"]);
    assert_eq!(cfg.pkce_timeout(), Some(Duration::from_secs(180)));
    assert_eq!(cfg.pkce_refresh_time(), Some(Duration::from_secs(600)));
    assert_eq!(cfg.device_flow_timeout(), Some(Duration::from_secs(900)));
    assert_eq!(
        cfg.device_flow_poll_interval(),
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        cfg.device_flow_refresh_time(),
        Some(Duration::from_secs(5400))
    );
    assert!(cfg.client_secret().is_none());
    assert_eq!(
        cfg.config_file(),
        Some(world.path(".flyte/config.yaml").as_path())
    );
}

#[test]
fn the_sandbox_config_talks_plain_http() {
    let world = World::new().home_config(
        "admin:\n  endpoint: dns:///localhost:30080\n  authType: Pkce\n  insecure: true\n",
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "localhost:30080");
    assert_eq!(cfg.base_url(), "http://localhost:30080");
}

#[test]
fn flytectl_config_names_the_file_instead_of_the_home_one() {
    let world = World::new().home_config(&config_with("  clientId: from-home\n"));
    let other = world.file("other.yaml", &config_with("  clientId: from-other\n"));
    let world = world.var("FLYTECTL_CONFIG", other.to_str().unwrap());
    let cfg = world.load().unwrap();
    assert_eq!(cfg.client_id(), Some("from-other"));
    assert_eq!(cfg.config_file(), Some(other.as_path()));
}

#[test]
fn a_missing_default_file_is_fine() {
    let world = World::new().var("FLYTE_PLATFORM_URL", "flyte.example.org");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "flyte.example.org");
    assert_eq!(cfg.base_url(), "https://flyte.example.org");
    assert!(cfg.config_file().is_none());
}

#[test]
fn the_environment_overrides_the_file() {
    let world = World::new()
        .home_config(FLYTECTL_CONFIG_YAML)
        .var("FLYTE_PLATFORM_URL", "dns:///other.example.org:8443")
        .var("FLYTE_PLATFORM_INSECURE", "True")
        .var("FLYTE_PLATFORM_INSECURE_SKIP_VERIFY", "false")
        .var("FLYTE_PLATFORM_CA_CERT_FILE_PATH", "/tmp/ca.pem")
        .var("FLYTE_PLATFORM_HTTP_PROXY_URL", "https://proxy2:443")
        .var("FLYTE_CREDENTIALS_CLIENT_ID", "svc")
        .var("FLYTE_CREDENTIALS_AUTH_MODE", "DeviceFlow")
        .var("FLYTE_CREDENTIALS_SCOPES", "openid,offline_access")
        .var("FLYTE_CREDENTIALS_AUDIENCE", "api://flyte")
        .var("FLYTE_CREDENTIALS_COMMAND", "get-token,--quiet")
        .var(
            "FLYTE_CREDENTIALS_PROXY_COMMAND",
            r#"["proxy-token", "a,b"]"#,
        );
    let cfg = world.load().unwrap();

    assert_eq!(cfg.endpoint().key(), "other.example.org:8443");
    assert_eq!(cfg.base_url(), "http://other.example.org:8443");
    assert!(!cfg.insecure_skip_verify());
    assert_eq!(cfg.ca_cert_file_path(), Some(Path::new("/tmp/ca.pem")));
    assert_eq!(cfg.http_proxy_url(), Some("https://proxy2:443"));
    assert_eq!(cfg.client_id(), Some("svc"));
    assert_eq!(cfg.auth_mode(), AuthMode::DeviceFlow);
    assert_eq!(cfg.scopes(), ["openid", "offline_access"]);
    assert_eq!(cfg.audience(), Some("api://flyte"));
    assert_eq!(cfg.command(), ["get-token", "--quiet"]);
    assert_eq!(cfg.proxy_command(), ["proxy-token", "a,b"]);
    // What the environment does not set still comes from the file.
    assert_eq!(
        cfg.token_url(),
        Some("https://idp.example.org/oauth2/token")
    );
    assert_eq!(cfg.pkce_timeout(), Some(Duration::from_secs(180)));
}

#[test]
fn explicit_values_override_the_environment_and_the_file() {
    let world = World::new()
        .home_config(FLYTECTL_CONFIG_YAML)
        .var("FLYTE_PLATFORM_URL", "env.example.org")
        .var("FLYTE_CREDENTIALS_CLIENT_ID", "from-env")
        .var("FLYTE_CREDENTIALS_AUTH_MODE", "DeviceFlow")
        .var("FLYTE_CREDENTIALS_SCOPES", "from-env");
    let cfg = world
        .builder()
        .endpoint("dns:///explicit.example.org:9443")
        .insecure(true)
        .client_id("explicit")
        .auth_mode(AuthMode::ExternalCommand)
        .scopes(["explicit"])
        .command(["my-token"])
        .pkce_timeout(Duration::from_secs(1))
        .device_flow_poll_interval(Duration::from_secs(30))
        .build()
        .unwrap();
    assert_eq!(cfg.endpoint().key(), "explicit.example.org:9443");
    assert_eq!(cfg.base_url(), "http://explicit.example.org:9443");
    assert_eq!(cfg.client_id(), Some("explicit"));
    assert_eq!(cfg.auth_mode(), AuthMode::ExternalCommand);
    assert_eq!(cfg.scopes(), ["explicit"]);
    assert_eq!(cfg.command(), ["my-token"]);
    assert_eq!(cfg.pkce_timeout(), Some(Duration::from_secs(1)));
    assert_eq!(
        cfg.device_flow_poll_interval(),
        Some(Duration::from_secs(30))
    );
    assert_eq!(cfg.audience(), Some("https://flyte.example.org"));
}

#[test]
fn every_auth_type_alias_is_read_from_the_file_and_the_environment() {
    let cases = [
        ("Pkce", AuthMode::Pkce),
        ("standard", AuthMode::Pkce),
        ("ClientSecret", AuthMode::ClientSecret),
        ("basic", AuthMode::ClientSecret),
        ("client_credentials", AuthMode::ClientSecret),
        ("DeviceFlow", AuthMode::DeviceFlow),
        ("ExternalCommand", AuthMode::ExternalCommand),
        ("external_process", AuthMode::ExternalCommand),
        ("deviceflow", AuthMode::DeviceFlow),
        ("EXTERNALCOMMAND", AuthMode::ExternalCommand),
        ("GoogleIdToken", AuthMode::GoogleIdToken),
        ("googleidtoken", AuthMode::GoogleIdToken),
    ];
    for (name, mode) in cases {
        let from_file = World::new()
            .home_config(&config_with(&format!("  authType: {name}\n")))
            .load()
            .unwrap();
        assert_eq!(from_file.auth_mode(), mode, "file: {name}");
        let from_env = World::new()
            .var("FLYTE_PLATFORM_URL", "x:1")
            .var("FLYTE_CREDENTIALS_AUTH_MODE", name)
            .load()
            .unwrap();
        assert_eq!(from_env.auth_mode(), mode, "env: {name}");
    }
}

#[test]
fn durations_are_read_as_flytectl_writes_them() {
    let cases = [
        ("2m", 120_000),
        ("30s", 30_000),
        ("1h30m", 5_400_000),
        ("500ms", 500),
        ("2m0s", 120_000),
        ("45", 45_000),
        ("'60'", 60_000),
        ("1.5m", 90_000),
    ];
    for (text, millis) in cases {
        let cfg = World::new()
            .home_config(&config_with(&format!(
                "  pkceConfig:\n    timeout: {text}\n"
            )))
            .load()
            .unwrap();
        assert_eq!(
            cfg.pkce_timeout(),
            Some(Duration::from_millis(millis)),
            "{text}"
        );
    }
}

#[test]
fn the_client_secret_is_read_from_its_file_without_the_trailing_newline() {
    let world = World::new();
    let secret = world.file("secret", "s3cr3t-with-#&+%\n");
    let world = world.home_config(&config_with(&format!(
        "  clientId: svc\n  clientSecretLocation: {}\n",
        secret.display()
    )));
    let cfg = world.load().unwrap();
    assert_eq!(
        cfg.client_secret().unwrap().expose_secret(),
        "s3cr3t-with-#&+%"
    );
    assert_eq!(cfg.client_secret_location(), Some(secret.as_path()));
    cfg.validate().unwrap();
}

#[test]
fn the_client_secret_is_read_from_the_variable_the_config_names() {
    let world = World::new()
        .home_config(&config_with(
            "  clientId: svc\n  clientSecretEnvVar: MY_FLYTE_SECRET\n",
        ))
        .var("MY_FLYTE_SECRET", "from-variable");
    let cfg = world.load().unwrap();
    assert_eq!(
        cfg.client_secret().unwrap().expose_secret(),
        "from-variable"
    );
    assert_eq!(cfg.client_secret_env_var(), Some("MY_FLYTE_SECRET"));
}

#[test]
fn a_secret_found_through_location_or_variable_switches_to_client_credentials() {
    // By file, over an authType the file sets (flytekit does the same).
    let world = World::new();
    let secret = world.file("secret", "abc\n");
    let world = world.home_config(&config_with(&format!(
        "  authType: Pkce\n  clientId: svc\n  clientSecretLocation: {}\n",
        secret.display()
    )));
    assert_eq!(world.load().unwrap().auth_mode(), AuthMode::ClientSecret);

    // By variable, over FLYTE_CREDENTIALS_AUTH_MODE.
    let world = World::new()
        .var("FLYTE_PLATFORM_URL", "x:1")
        .var("FLYTE_CREDENTIALS_AUTH_MODE", "DeviceFlow")
        .var("FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "SVC_SECRET")
        .var("SVC_SECRET", "abc");
    assert_eq!(world.load().unwrap().auth_mode(), AuthMode::ClientSecret);

    // A mode set explicitly on the builder wins.
    let cfg = world
        .builder()
        .auth_mode(AuthMode::DeviceFlow)
        .build()
        .unwrap();
    assert_eq!(cfg.auth_mode(), AuthMode::DeviceFlow);
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "abc");
}

#[test]
fn a_secret_that_is_not_found_does_not_switch_the_mode() {
    let world = World::new();
    let empty = world.file("empty-secret", "\n");
    let world = world
        .home_config(&config_with(&format!(
            "  authType: DeviceFlow\n  clientSecretLocation: {}\n  clientSecretEnvVar: UNSET_VAR\n",
            empty.display()
        )))
        // Given directly, the secret is used but the mode stays (as in flytekit).
        .var("FLYTE_CREDENTIALS_CLIENT_SECRET", "direct");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.auth_mode(), AuthMode::DeviceFlow);
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "direct");
}

#[test]
fn secret_sources_follow_flytekits_order() {
    let world = World::new();
    let file = world.file("secret", "from-file\n");
    let base = world
        .var("FLYTE_PLATFORM_URL", "x:1")
        .var("FLYTE_CREDENTIALS_CLIENT_SECRET", "direct")
        .var(
            "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION",
            file.to_str().unwrap(),
        );
    let secret = |w: &World| {
        w.load()
            .unwrap()
            .client_secret()
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    assert_eq!(secret(&base), "from-file");
    let base = base
        .var("FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "NAMED")
        .var("NAMED", "from-named-variable");
    assert_eq!(secret(&base), "from-named-variable");
    let explicit = base.builder().client_secret("explicit").build().unwrap();
    assert_eq!(
        explicit.client_secret().unwrap().expose_secret(),
        "explicit"
    );
}

#[test]
fn debug_never_prints_the_client_secret() {
    let world = World::new()
        .var("FLYTE_PLATFORM_URL", "x:1")
        .var("FLYTE_CREDENTIALS_CLIENT_ID", "svc")
        .var("FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "S")
        .var("S", "very-secret-value");
    let cfg = world.load().unwrap();
    let debug = format!("{cfg:?} {cfg:#?} {:?}", world.builder());
    assert!(!debug.contains("very-secret-value"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

// ---- errors: each names where (file, key or variable) and what was expected ----

#[test]
fn a_wrong_type_names_the_file_the_key_and_the_expectation() {
    let world = World::new().home_config(&config_with("  insecure: maybe\n"));
    let err = world.load_error();
    let file = world.path(".flyte/config.yaml");
    assert!(err.starts_with("configuration error: "), "{err}");
    assert!(
        err.contains(&format!("{}: admin.insecure:", file.display())),
        "{err}"
    );
    assert!(err.contains("\"maybe\""), "{err}");
    assert!(err.contains("expected a boolean (true or false)"), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn a_bad_duration_names_the_dotted_key() {
    let world = World::new().home_config(&config_with(
        "  deviceFlowConfig:\n    timeout: 10m\n    pollInterval: five seconds\n",
    ));
    let err = world.load_error();
    assert!(
        err.contains("admin.deviceFlowConfig.pollInterval:"),
        "{err}"
    );
    assert!(err.contains("\"five seconds\""), "{err}");
    assert!(err.contains("expected a duration such as `30s`"), "{err}");
    assert!(
        err.contains(world.path(".flyte/config.yaml").to_str().unwrap()),
        "{err}"
    );

    let world = World::new().home_config(&config_with("  pkceConfig:\n    timeout: -2m\n"));
    let err = world.load_error();
    assert!(err.contains("admin.pkceConfig.timeout:"), "{err}");
}

#[test]
fn an_other_auth_type_name_is_read_as_a_plugin_name() {
    let world = World::new().home_config(&config_with("  authType: oauth2\n"));
    assert_eq!(
        world.load().unwrap().auth_mode(),
        AuthMode::Plugin("oauth2".into())
    );
}

#[test]
fn an_auth_type_no_plugin_could_have_lists_the_accepted_names() {
    let world = World::new().home_config(&config_with("  authType: oauth 2\n"));
    let err = world.load_error();
    assert!(
        err.contains("admin.authType: invalid auth type `oauth 2`"),
        "{err}"
    );
    for name in [
        "Pkce",
        "standard",
        "ClientSecret",
        "basic",
        "client_credentials",
        "DeviceFlow",
        "ExternalCommand",
        "external_process",
        "GoogleIdToken",
    ] {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
}

#[test]
fn an_explicitly_named_file_that_cannot_be_read_is_an_error() {
    let world = World::new().var("FLYTE_PLATFORM_URL", "x:1");
    let missing = world.path("nope.yaml");
    let err = world
        .builder()
        .config_file(&missing)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("cannot read config file {}", missing.display())),
        "{err}"
    );

    let world = world.var("FLYTECTL_CONFIG", missing.to_str().unwrap());
    let err = world.load_error();
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(err.contains("named by FLYTECTL_CONFIG"), "{err}");

    // A directory is no file either.
    let err = world
        .builder()
        .config_file(world.dir.path())
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read config file"), "{err}");
}

#[test]
fn invalid_yaml_names_the_file_and_the_line() {
    let world = World::new().home_config("admin:\n  endpoint: dns:///x:1\n authType: Pkce\n");
    let err = world.load_error();
    assert!(
        err.contains(world.path(".flyte/config.yaml").to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn an_unreadable_secret_file_names_the_key_and_the_file() {
    let world = World::new();
    let missing = world.path("no-secret");
    let world = world.home_config(&config_with(&format!(
        "  clientSecretLocation: {}\n",
        missing.display()
    )));
    let err = world.load_error();
    assert!(err.contains("admin.clientSecretLocation"), "{err}");
    assert!(
        err.contains(&format!(
            "cannot read the client secret file {}",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn a_bad_endpoint_in_the_environment_names_the_variable() {
    let world = World::new().var("FLYTE_PLATFORM_URL", "grpc://flyte.example.org");
    let err = world.load_error();
    assert!(
        err.contains("environment variable FLYTE_PLATFORM_URL"),
        "{err}"
    );
    assert!(err.contains("dns:///host[:port]"), "{err}");
}

#[test]
fn a_bad_endpoint_in_the_file_names_the_key() {
    let world = World::new().home_config("admin:\n  endpoint: flyte.example.org/api\n");
    let err = world.load_error();
    assert!(
        err.contains("admin.endpoint: invalid endpoint `flyte.example.org/api`"),
        "{err}"
    );
}

#[test]
fn unknown_sections_and_keys_are_ignored_but_known_keys_are_checked_everywhere() {
    // `storage.type: 5` is not ours to judge.
    let world = World::new().home_config(&format!(
        "{}storage:\n  type: 5\nsomething: [1, 2]\n",
        config_with("  unknownKey: {a: b}\n")
    ));
    assert_eq!(world.load().unwrap().endpoint().key(), "flyte.example.org");
}

#[test]
fn a_proxy_password_is_never_shown_in_debug_output_or_errors() {
    let cfg = flyte_auth::PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint("dns:///flyte.example.org:443")
        .http_proxy_url("http://user:pw-proxy-Xq7Lm2Rt@proxy.example.org:3128")
        .token_url("https://idp.example.org/token?client_secret=qs-secret-77")
        .build()
        .unwrap();
    let printed = format!("{cfg:?}");
    assert!(!printed.contains("pw-proxy-Xq7Lm2Rt"), "{printed}");
    assert!(!printed.contains("qs-secret-77"), "{printed}");
    assert!(printed.contains("proxy.example.org:3128"), "{printed}");

    let err = flyte_auth::PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint("dns:///flyte.example.org:443")
        .http_proxy_url("ftp://user:pw-proxy-Xq7Lm2Rt@proxy.example.org:3128")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("pw-proxy-Xq7Lm2Rt"), "{err}");
}

#[test]
fn an_endless_secret_file_is_refused_instead_of_read_forever() {
    let err = flyte_auth::PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint("dns:///flyte.example.org:443")
        .client_secret_location("/dev/zero")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[test]
fn the_go_clients_retry_keys_and_the_command_timeout_are_read() {
    let world = World::new().home_config(&config_with(
        "  maxRetries: 4\n  perRetryTimeout: 15s\n  commandTimeout: 1m\n",
    ));
    let cfg = world.load().unwrap();
    assert_eq!(cfg.max_retries(), Some(4));
    assert_eq!(
        cfg.per_retry_timeout(),
        Some(std::time::Duration::from_secs(15))
    );
    assert_eq!(
        cfg.command_timeout(),
        Some(std::time::Duration::from_secs(60))
    );

    let unset = World::new().home_config(&config_with("")).load().unwrap();
    assert_eq!(unset.max_retries(), None);
    assert_eq!(unset.command_timeout(), None);
}

#[test]
fn write_all_layouts_comes_from_the_file_or_the_environment() {
    let off = World::new().home_config(&config_with(""));
    assert!(!off.load().unwrap().write_all_layouts());
    let file = World::new().home_config(&config_with("  writeAllLayouts: true\n"));
    assert!(file.load().unwrap().write_all_layouts());
    let env = World::new()
        .home_config(&config_with(""))
        .var("FLYTE_ADMIN_WRITEALLLAYOUTS", "True");
    assert!(env.load().unwrap().write_all_layouts());
}

/// The identity-aware proxy's audience, as `flyte-auth` reads it: `admin.proxyGoogleAudience`
/// next to `admin.proxyCommand`, and `admin.googleAudience` for the auth type
/// `GoogleIdToken`; each with its `FLYTE_ADMIN_*` variable, which wins over the file.
#[test]
fn the_google_audiences_are_read_from_the_file_and_the_environment() {
    const PROXY: &str = "123-iap.apps.googleusercontent.com";
    const TOKEN: &str = "456-iap.apps.googleusercontent.com";
    let world = World::new().home_config(&config_with(&format!(
        "  authType: GoogleIdToken\n  proxyGoogleAudience: {PROXY}\n  googleAudience: {TOKEN}\n"
    )));
    let cfg = world.load().unwrap();
    assert_eq!(cfg.auth_mode(), AuthMode::GoogleIdToken);
    assert_eq!(cfg.proxy_google_audience(), Some(PROXY));
    assert_eq!(cfg.google_audience(), Some(TOKEN));
    assert!(cfg.proxy_command().is_empty());

    let cfg = world
        .var("FLYTE_ADMIN_PROXYGOOGLEAUDIENCE", " env-proxy-aud ")
        .var("FLYTE_ADMIN_GOOGLEAUDIENCE", "env-token-aud")
        .load()
        .unwrap();
    assert_eq!(cfg.proxy_google_audience(), Some("env-proxy-aud"));
    assert_eq!(cfg.google_audience(), Some("env-token-aud"));
    assert!(
        cfg.sources()
            .variables
            .iter()
            .any(|v| v == "FLYTE_ADMIN_PROXYGOOGLEAUDIENCE"),
        "{:?}",
        cfg.sources()
    );

    // Unset: `None`, and the explicit value wins over both.
    let cfg = PlatformConfig::for_endpoint("x:1").unwrap();
    assert_eq!(cfg.proxy_google_audience(), None);
    assert_eq!(cfg.google_audience(), None);
    let cfg = World::new()
        .var("FLYTE_PLATFORM_URL", "x:1")
        .var("FLYTE_ADMIN_PROXYGOOGLEAUDIENCE", "env-proxy-aud")
        .builder()
        .proxy_google_audience("explicit-aud")
        .build()
        .unwrap();
    assert_eq!(cfg.proxy_google_audience(), Some("explicit-aud"));
}

/// `proxy-authorization` comes from one place: `proxyCommand` and `proxyGoogleAudience`
/// together are refused when the config is loaded, naming both where they were set, in the
/// file, a variable or an explicit value.
#[test]
fn proxy_command_and_the_google_proxy_together_are_an_error_naming_both() {
    let world = World::new().home_config(&config_with(
        "  proxyCommand: [iap-token]\n  proxyGoogleAudience: 123-iap.apps.googleusercontent.com\n",
    ));
    let err = world.load_error();
    assert!(err.contains("admin.proxyCommand"), "{err}");
    assert!(err.contains("admin.proxyGoogleAudience"), "{err}");
    assert!(err.contains("config.yaml"), "{err}");

    // The file has one, the environment the other.
    let err = World::new()
        .home_config(&config_with("  proxyCommand: [iap-token]\n"))
        .var("FLYTE_ADMIN_PROXYGOOGLEAUDIENCE", "aud")
        .load_error();
    assert!(err.contains("admin.proxyCommand"), "{err}");
    assert!(
        err.contains("environment variable FLYTE_ADMIN_PROXYGOOGLEAUDIENCE"),
        "{err}"
    );

    // Explicit values.
    let err = PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint("x:1")
        .proxy_command(["iap-token"])
        .proxy_google_audience("aud")
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("explicit setting `proxy_command`"), "{err}");
    assert!(
        err.contains("explicit setting `proxy_google_audience`"),
        "{err}"
    );
}

/// `admin.deviceFlowConfig.pkce` from the file, and `FLYTE_ADMIN_DEVICEFLOWCONFIG_PKCE`
/// (the key upper-cased, as every `FLYTE_ADMIN_*` name) over it; unset, `None`: the server's
/// announcement decides.
#[test]
fn the_device_flows_pkce_is_read_from_the_file_and_the_environment() {
    let unset = World::new().home_config(&config_with(""));
    assert_eq!(unset.load().unwrap().device_flow_pkce(), None);
    let file = World::new().home_config(&config_with("  deviceFlowConfig:\n    pkce: true\n"));
    assert_eq!(file.load().unwrap().device_flow_pkce(), Some(true));
    let env = file.var("FLYTE_ADMIN_DEVICEFLOWCONFIG_PKCE", "no");
    let cfg = env.load().unwrap();
    assert_eq!(cfg.device_flow_pkce(), Some(false));
    assert!(
        cfg.sources()
            .variables
            .iter()
            .any(|v| v == "FLYTE_ADMIN_DEVICEFLOWCONFIG_PKCE"),
        "{:?}",
        cfg.sources()
    );
    let err = World::new()
        .home_config(&config_with("  deviceFlowConfig:\n    pkce: sometimes\n"))
        .load_error();
    assert!(err.contains("admin.deviceFlowConfig.pkce"), "{err}");
}

/// A config the search found in a working tree does not choose where the Flyte 2 SDK's
/// keyring file (and so a refresh token) is written; a named one, or `~/.flyte`'s, does.
#[test]
fn only_a_named_config_or_the_homes_places_the_sdks_keyring_file() {
    let world = World::new();
    let repo = world.path("repo");
    let config = repo.join(".flyte/config.yaml");
    fs::create_dir_all(repo.join(".git")).unwrap();
    fs::create_dir_all(repo.join("src")).unwrap();
    fs::create_dir_all(repo.join(".flyte")).unwrap();
    fs::write(&config, config_with("")).unwrap();
    // Found as ./.flyte/config.yaml and as <git root>/.flyte/config.yaml.
    for cwd in [repo.clone(), repo.join("src")] {
        let cfg = world.builder().current_dir(cwd).build().unwrap();
        assert_eq!(cfg.config_file(), Some(config.as_path()));
        assert_eq!(cfg.sdk_keyring_cfg(), None);
    }
    let world = world.var("FLYTECTL_CONFIG", config.to_str().unwrap());
    let cfg = world.load().unwrap();
    assert_eq!(cfg.sources().found_by, Some("$FLYTECTL_CONFIG"));
    assert_eq!(cfg.sdk_keyring_cfg(), Some(repo.join(".flyte/keyring.cfg")));

    let world = World::new().home_config(&config_with(""));
    let cfg = world.load().unwrap();
    assert_eq!(cfg.sources().found_by, Some("~/.flyte/config.yaml"));
    assert_eq!(
        cfg.sdk_keyring_cfg(),
        Some(world.path(".flyte/keyring.cfg"))
    );
}

/// The Flyte 2 SDK's rule for its notebook keyring file: next to a config file in a folder
/// named `.flyte`, else its default (`None`: the store's `~/.flyte/keyring.cfg`).
#[test]
fn the_sdks_keyring_file_is_beside_a_config_in_a_flyte_folder() {
    let world = World::new();
    let flyte = world.path("project").join(".flyte");
    fs::create_dir_all(&flyte).unwrap();
    let yaml = config_with("");
    fs::write(flyte.join("config.yaml"), &yaml).unwrap();
    let cfg = world
        .builder()
        .config_file(flyte.join("config.yaml"))
        .build()
        .unwrap();
    assert_eq!(cfg.sdk_keyring_cfg(), Some(flyte.join("keyring.cfg")));

    let plain = world.file("config.yaml", &yaml);
    let cfg = world.builder().config_file(plain).build().unwrap();
    assert_eq!(cfg.sdk_keyring_cfg(), None);
    // A folder whose name only contains `.flyte` is not one.
    let near = world.path(".flyte-old");
    fs::create_dir_all(&near).unwrap();
    fs::write(near.join("config.yaml"), &yaml).unwrap();
    let cfg = world
        .builder()
        .config_file(near.join("config.yaml"))
        .build()
        .unwrap();
    assert_eq!(cfg.sdk_keyring_cfg(), None);
    assert_eq!(
        PlatformConfig::for_endpoint("x:1")
            .unwrap()
            .sdk_keyring_cfg(),
        None
    );
}
