#![allow(
    clippy::unwrap_used,
    reason = "tests: a panic with the error is the clearest failure"
)]
//! Where the platform config comes from: the Flyte 2 SDK's file search with flytekit's INI
//! files after it, every environment name of every setting (`FLYTE_ADMIN_*` beside
//! `FLYTE_PLATFORM_*` / `FLYTE_CREDENTIALS_*`), `FLYTE_API_KEY`, and the record of what was
//! used. Each table row is one location or one variable; the disagreements between the tools
//! that this crate resolves have their own rows.

use std::{collections::HashMap, fs, path::Path};

use base64::Engine as _;
use flyte_auth::{AuthMode, PlatformConfig};

/// A home, a git repository with a working directory inside it, and an environment.
struct World {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "repo/.git", "repo/work", "elsewhere"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let mut env = HashMap::new();
        env.insert(
            "HOME".to_owned(),
            dir.path().join("home").display().to_string(),
        );
        Self { dir, env }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn var(&mut self, name: &str, value: &str) {
        self.env.insert(name.to_owned(), value.to_owned());
    }

    fn load(&self) -> Result<PlatformConfig, flyte_auth::Error> {
        let env = self.env.clone();
        PlatformConfig::builder()
            .env(move |name| env.get(name).cloned())
            .current_dir(self.root().join("repo/work"))
            .build()
    }
}

fn yaml(endpoint: &str) -> String {
    format!("admin:\n  endpoint: dns:///{endpoint}\n")
}

fn ini(endpoint: &str) -> String {
    format!("[platform]\nurl = dns:///{endpoint}\n")
}

/// The search order, first found wins: each row's file beats every file of the rows below it.
#[test]
fn each_config_location_wins_over_every_later_one() {
    // (file written, how it is found, INI?, the variable that names it)
    let places: [(&str, &str, bool, Option<&str>); 12] = [
        ("repo/work/config.yaml", "./config.yaml", false, None),
        (
            "repo/work/.flyte/config.yaml",
            "./.flyte/config.yaml",
            false,
            None,
        ),
        (
            "repo/.flyte/config.yaml",
            "<git root>/.flyte/config.yaml",
            false,
            None,
        ),
        (
            "elsewhere/uctl.yaml",
            "$UCTL_CONFIG",
            false,
            Some("UCTL_CONFIG"),
        ),
        (
            "elsewhere/flytectl.yaml",
            "$FLYTECTL_CONFIG",
            false,
            Some("FLYTECTL_CONFIG"),
        ),
        // The `union` package's names.
        (
            "elsewhere/union.yaml",
            "$UNION_CONFIG",
            false,
            Some("UNION_CONFIG"),
        ),
        (
            "elsewhere/unionai.yaml",
            "$UNIONAI_CONFIG",
            false,
            Some("UNIONAI_CONFIG"),
        ),
        (
            "home/.union/config.yaml",
            "~/.union/config.yaml",
            false,
            None,
        ),
        ("home/.uctl/config.yaml", "~/.uctl/config.yaml", false, None),
        (
            "home/.flyte/config.yaml",
            "~/.flyte/config.yaml",
            false,
            None,
        ),
        // flytekit's INI files: only when no YAML file exists.
        ("repo/work/flytekit.config", "./flytekit.config", true, None),
        ("home/.flyte/config", "~/.flyte/config", true, None),
    ];
    for winner in 0..places.len() {
        let mut world = World::new();
        for (i, (rel, _, is_ini, var)) in places.iter().enumerate().skip(winner) {
            let host = format!("place{i}.example.org");
            world.write(rel, &if *is_ini { ini(&host) } else { yaml(&host) });
            if let Some(var) = var {
                let path = world.root().join(rel).display().to_string();
                world.var(var, &path);
            }
        }
        let (rel, found_by, is_ini, var) = places[winner];
        let cfg = world.load().unwrap_or_else(|e| panic!("{found_by}: {e}"));
        assert_eq!(
            cfg.endpoint().key(),
            format!("place{winner}.example.org"),
            "{found_by}"
        );
        let sources = cfg.sources();
        assert_eq!(sources.found_by, Some(found_by));
        assert_eq!(sources.ini, is_ini, "{found_by}");
        assert!(sources.file.as_ref().unwrap().ends_with(rel), "{found_by}");
        assert_eq!(
            sources.variables.contains(&var.unwrap_or("-").to_owned()),
            var.is_some(),
            "{found_by}: {:?}",
            sources.variables
        );
    }
}

#[test]
fn a_file_named_by_a_variable_must_exist() {
    for var in [
        "UCTL_CONFIG",
        "FLYTECTL_CONFIG",
        "UNION_CONFIG",
        "UNIONAI_CONFIG",
    ] {
        let mut world = World::new();
        world.write("home/.flyte/config.yaml", &yaml("home.example.org"));
        let missing = world.root().join("missing.yaml").display().to_string();
        world.var(var, &missing);
        let err = world.load().unwrap_err().to_string();
        assert!(err.contains(&format!("named by {var}")), "{err}");
    }
}

#[test]
fn an_explicit_file_may_be_ini_and_nothing_is_searched() {
    let world = World::new();
    world.write("repo/work/config.yaml", &yaml("searched.example.org"));
    world.write("elsewhere/my.config", &ini("given.example.org"));
    let env = world.env.clone();
    let cfg = PlatformConfig::builder()
        .env(move |n| env.get(n).cloned())
        .current_dir(world.root().join("repo/work"))
        .config_file(world.root().join("elsewhere/my.config"))
        .build()
        .unwrap();
    assert_eq!(cfg.endpoint().key(), "given.example.org");
    assert_eq!(cfg.sources().found_by, Some("given"));
    assert!(cfg.sources().ini);
}

/// One row per variable and name: the value it sets, as read back.
#[test]
fn every_environment_name_of_every_setting() {
    type Check = fn(&PlatformConfig) -> String;
    let rows: &[(&str, &str, Check, &str)] = &[
        (
            "FLYTE_ADMIN_ENDPOINT",
            "https://a.example.org",
            |c| c.endpoint().key().to_owned(),
            "a.example.org",
        ),
        (
            "FLYTE_PLATFORM_URL",
            "dns:///b.example.org:8089",
            |c| c.endpoint().key().to_owned(),
            "b.example.org:8089",
        ),
        (
            "FLYTE_ADMIN_INSECURE",
            "True",
            |c| c.insecure().to_string(),
            "true",
        ),
        (
            "FLYTE_PLATFORM_INSECURE",
            "yes",
            |c| c.insecure().to_string(),
            "true",
        ),
        (
            "FLYTE_ADMIN_INSECURESKIPVERIFY",
            "1",
            |c| c.insecure_skip_verify().to_string(),
            "true",
        ),
        (
            "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY",
            "on",
            |c| c.insecure_skip_verify().to_string(),
            "true",
        ),
        (
            "FLYTE_ADMIN_CACERTFILEPATH",
            "/ca.pem",
            |c| format!("{:?}", c.ca_cert_file_path()),
            "Some(\"/ca.pem\")",
        ),
        (
            "FLYTE_PLATFORM_CA_CERT_FILE_PATH",
            "/ca.pem",
            |c| format!("{:?}", c.ca_cert_file_path()),
            "Some(\"/ca.pem\")",
        ),
        (
            "FLYTE_ADMIN_HTTPPROXYURL",
            "http://proxy:3128",
            |c| format!("{:?}", c.http_proxy_url()),
            "Some(\"http://proxy:3128\")",
        ),
        (
            "FLYTE_PLATFORM_HTTP_PROXY_URL",
            "http://proxy:3128",
            |c| format!("{:?}", c.http_proxy_url()),
            "Some(\"http://proxy:3128\")",
        ),
        (
            "FLYTE_ADMIN_DISABLEKEYRING",
            "true",
            |c| c.disable_keyring().to_string(),
            "true",
        ),
        (
            "FLYTE_ADMIN_AUTHTYPE",
            "DeviceFlow",
            |c| (c.auth_mode() == AuthMode::DeviceFlow).to_string(),
            "true",
        ),
        (
            "FLYTE_CREDENTIALS_AUTH_MODE",
            "deviceflow",
            |c| (c.auth_mode() == AuthMode::DeviceFlow).to_string(),
            "true",
        ),
        (
            "FLYTE_ADMIN_CLIENTID",
            "svc",
            |c| format!("{:?}", c.client_id()),
            "Some(\"svc\")",
        ),
        (
            "FLYTE_CREDENTIALS_CLIENT_ID",
            "svc",
            |c| format!("{:?}", c.client_id()),
            "Some(\"svc\")",
        ),
        (
            "FLYTE_CREDENTIALS_CLIENT_SECRET",
            "  s3cret \n",
            |c| c.client_secret().unwrap().expose_secret().to_owned(),
            "s3cret",
        ),
        (
            "FLYTE_ADMIN_CLIENTSECRETLOCATION",
            "/dev/null",
            |c| format!("{:?}", c.client_secret_location()),
            "Some(\"/dev/null\")",
        ),
        (
            "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION",
            "/dev/null",
            |c| format!("{:?}", c.client_secret_location()),
            "Some(\"/dev/null\")",
        ),
        (
            "FLYTE_ADMIN_CLIENTSECRETENVVAR",
            "MY_SECRET",
            |c| format!("{:?}", c.client_secret_env_var()),
            "Some(\"MY_SECRET\")",
        ),
        (
            "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR",
            "MY_SECRET",
            |c| format!("{:?}", c.client_secret_env_var()),
            "Some(\"MY_SECRET\")",
        ),
        (
            "FLYTE_ADMIN_SCOPES",
            "openid, offline_access",
            |c| c.scopes().join("|"),
            "openid|offline_access",
        ),
        (
            "FLYTE_CREDENTIALS_SCOPES",
            "all,, offline",
            |c| c.scopes().join("|"),
            "all|offline",
        ),
        (
            "FLYTE_ADMIN_AUDIENCE",
            "api://flyte",
            |c| format!("{:?}", c.audience()),
            "Some(\"api://flyte\")",
        ),
        (
            "FLYTE_CREDENTIALS_AUDIENCE",
            "api://flyte",
            |c| format!("{:?}", c.audience()),
            "Some(\"api://flyte\")",
        ),
        (
            "FLYTE_ADMIN_COMMAND",
            "gcloud, auth,print-access-token",
            |c| c.command().join("|"),
            "gcloud|auth|print-access-token",
        ),
        (
            "FLYTE_CREDENTIALS_COMMAND",
            "[\"get\", \"a,b\"]",
            |c| c.command().join("|"),
            "get|a,b",
        ),
        (
            "FLYTE_ADMIN_PROXYCOMMAND",
            "iap-token",
            |c| c.proxy_command().join("|"),
            "iap-token",
        ),
        (
            "FLYTE_CREDENTIALS_PROXY_COMMAND",
            "iap-token,--x",
            |c| c.proxy_command().join("|"),
            "iap-token|--x",
        ),
        (
            "FLYTE_ADMIN_TOKENURL",
            "https://idp/token",
            |c| format!("{:?}", c.token_url()),
            "Some(\"https://idp/token\")",
        ),
        (
            "FLYTE_ADMIN_AUTHORIZATIONHEADER",
            "flyte-authorization",
            |c| format!("{:?}", c.authorization_header()),
            "Some(\"flyte-authorization\")",
        ),
    ];
    for (name, value, check, want) in rows {
        let mut world = World::new();
        world.write("home/.flyte/config.yaml", &yaml("file.example.org"));
        world.var(name, value);
        let cfg = world.load().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(check(&cfg), *want, "{name}={value:?}");
        assert!(
            cfg.sources().variables.contains(&(*name).to_owned()),
            "{name}: {:?}",
            cfg.sources().variables
        );
    }
}

/// Both names set, disagreeing: the Flyte 2 SDK's `FLYTE_ADMIN_*` name wins; a variable wins
/// over any file; `status` names only the variable that was used.
#[test]
fn where_the_names_disagree_the_flyte_admin_name_wins() {
    let mut world = World::new();
    world.write(
        "home/.flyte/config.yaml",
        "admin:\n  endpoint: file.example.org\n  clientId: from-file\n",
    );
    world.var("FLYTE_ADMIN_ENDPOINT", "admin.example.org");
    world.var("FLYTE_PLATFORM_URL", "platform.example.org");
    world.var("FLYTE_CREDENTIALS_CLIENT_ID", "from-credentials");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "admin.example.org");
    assert_eq!(cfg.client_id(), Some("from-credentials"));
    let vars = &cfg.sources().variables;
    assert!(
        vars.contains(&"FLYTE_ADMIN_ENDPOINT".to_owned()),
        "{vars:?}"
    );
    assert!(!vars.contains(&"FLYTE_PLATFORM_URL".to_owned()), "{vars:?}");
}

#[test]
fn booleans_from_the_environment_that_flytekit_would_misread_are_refused() {
    let mut world = World::new();
    world.var("FLYTE_PLATFORM_URL", "x.example.org");
    world.var("FLYTE_ADMIN_INSECURE", "maybe");
    let err = world.load().unwrap_err().to_string();
    assert!(
        err.contains("FLYTE_ADMIN_INSECURE") && err.contains("expected a boolean"),
        "{err}"
    );
}

#[test]
fn disable_keyring_from_the_file() {
    let world = World::new();
    world.write(
        "home/.flyte/config.yaml",
        "admin:\n  endpoint: x.example.org\n  disableKeyring: true\n",
    );
    assert!(world.load().unwrap().disable_keyring());
}

#[test]
fn the_client_secret_file_and_variable_are_trimmed_as_the_go_client_does() {
    let mut world = World::new();
    world.write("secret", "  s3cret \n");
    let secret = world.root().join("secret").display().to_string();
    world.write(
        "home/.flyte/config.yaml",
        &format!(
            "admin:\n  endpoint: x.example.org\n  clientId: svc\n  clientSecretLocation: {secret}\n"
        ),
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "s3cret");
    assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
    world.var("FLYTE_ADMIN_CLIENTSECRETENVVAR", "MY_SECRET");
    world.var("MY_SECRET", "\tother \n");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "other");
    assert!(cfg.sources().variables.contains(&"MY_SECRET".to_owned()));
}

fn api_key(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn an_api_key_alone_is_a_whole_config() {
    let mut world = World::new();
    world.var(
        "FLYTE_API_KEY",
        &api_key("flyte.example.org:svc:s3cret:acme"),
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "flyte.example.org");
    assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
    assert_eq!(cfg.client_id(), Some("svc"));
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "s3cret");
    cfg.validate().unwrap();
    let key = cfg.api_key().unwrap();
    assert_eq!(
        (
            key.origin,
            key.endpoint.as_str(),
            key.client_id.as_str(),
            key.org.as_deref()
        ),
        ("FLYTE_API_KEY", "flyte.example.org", "svc", Some("acme"))
    );
    assert!(
        cfg.sources()
            .variables
            .contains(&"FLYTE_API_KEY".to_owned())
    );
    assert!(!format!("{cfg:?}").contains("s3cret"));
}

/// The key's endpoint wins over a found file's (a stale file must not take the key's place),
/// and its client id, secret and flow over the file's and the variables'. An endpoint chosen
/// for this run (explicitly, by a variable, in a named file) wins over the key's: on the key's
/// host the key is used; on another host a key from the environment is set aside, and the
/// config's own settings apply; an explicit key is refused.
#[test]
fn an_api_key_against_the_other_sources() {
    let mut world = World::new();
    world.write(
        "home/.flyte/config.yaml",
        "admin:\n  endpoint: file.example.org\n  authType: Pkce\n  clientId: file-client\n",
    );
    world.var("FLYTE_CREDENTIALS_CLIENT_ID", "env-client");
    world.var("FLYTE_API_KEY", &api_key("key.example.org:svc:s3cret:"));
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "key.example.org");
    assert_eq!(cfg.client_id(), Some("svc"));
    assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
    assert_eq!(cfg.api_key().unwrap().endpoint, "key.example.org");
    assert_eq!(cfg.sources().api_key_set_aside, None);

    // The key's host in another spelling: the key is used there.
    world.var("FLYTE_PLATFORM_URL", "dns:///KEY.example.org:443");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().as_written(), "dns:///KEY.example.org:443");
    assert_eq!(cfg.client_id(), Some("svc"));
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "s3cret");

    // Another host: the key is set aside, and says why, never showing itself.
    world.var("FLYTE_PLATFORM_URL", "env.example.org");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "env.example.org");
    assert!(cfg.api_key().is_none());
    assert_eq!(cfg.client_id(), Some("env-client"));
    assert!(cfg.client_secret().is_none());
    assert_eq!(cfg.auth_mode(), AuthMode::Pkce);
    let set_aside = cfg.sources().api_key_set_aside.clone().unwrap();
    assert_eq!(set_aside.variable, "FLYTE_API_KEY");
    for named in [
        "key.example.org",
        "environment variable FLYTE_PLATFORM_URL",
        "env.example.org",
    ] {
        assert!(set_aside.why.contains(named), "{set_aside}");
    }
    assert!(
        !cfg.sources()
            .variables
            .contains(&"FLYTE_API_KEY".to_owned())
    );
    assert!(!format!("{cfg:?} {set_aside}").contains("s3cret"));

    // An explicit key: only an explicit endpoint wins over it, and on another host it is an
    // error.
    let env = world.env.clone();
    let explicit = move || {
        let env = env.clone();
        PlatformConfig::builder()
            .env(move |n| env.get(n).cloned())
            .no_config_file()
            .api_key(api_key("other.example.org:explicit:pw-s3cret:"))
    };
    let cfg = explicit().build().unwrap();
    assert_eq!(cfg.endpoint().key(), "other.example.org");
    let cfg = explicit()
        .endpoint("http://other.example.org:30080")
        .build()
        .unwrap();
    assert_eq!(cfg.endpoint().key(), "other.example.org:30080");
    assert_eq!(cfg.client_id(), Some("explicit"));
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "pw-s3cret");
    assert_eq!(cfg.api_key().unwrap().origin, "explicit setting");
    let err = explicit()
        .endpoint("http://localhost:30080")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("other.example.org") && err.contains("localhost"),
        "{err}"
    );
    assert!(!err.contains("pw-s3cret"), "{err}");
}

/// A token endpoint that answers every client-credentials request, and what the requests it
/// received showed of their client: form bodies, headers and decoded `Basic` credentials.
#[cfg(feature = "clientcreds")]
mod token_endpoint {
    use base64::Engine as _;
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{method, path},
    };

    pub(crate) async fn start() -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": "the-token",
                "token_type": "Bearer",
                "expires_in": 3600,
            })))
            .mount(&server)
            .await;
        server
    }

    pub(crate) async fn seen(server: &MockServer) -> String {
        let mut seen = String::new();
        for request in server.received_requests().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&request.body));
            for (name, value) in &request.headers {
                let value = value.to_str().unwrap_or_default();
                seen.push_str(&format!("\n{name}: {value}\n"));
                if let Some(basic) = value.strip_prefix("Basic ") {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(basic)
                        .unwrap_or_default();
                    seen.push_str(&String::from_utf8_lossy(&decoded));
                }
            }
        }
        seen
    }
}

/// The config's own client, with the token endpoint at `port` on 127.0.0.1.
#[cfg(feature = "clientcreds")]
fn own_client(port: u16) -> String {
    format!(
        "admin:\n  authType: ClientSecret\n  clientId: own-client\n  \
         tokenUrl: http://127.0.0.1:{port}/token\n  scopes: [all]\n"
    )
}

/// A key in the environment names flyte.example.org; the endpoint chosen for this run is
/// another host (a token endpoint on 127.0.0.1): whichever way it is chosen, that token
/// endpoint receives the config's own client, never the key's id or secret.
#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn a_key_from_the_environment_never_reaches_another_host() {
    let server = token_endpoint::start().await;
    let port = server.address().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut world = World::new();
    world.write("home/.flyte/config.yaml", &own_client(port));
    world.write(
        "elsewhere/named.yaml",
        &format!("{}  endpoint: {endpoint}\n", own_client(port)),
    );
    world.var(
        "UNION_API_KEY",
        &api_key("flyte.example.org:key-client:key-s3cret:None"),
    );
    world.var("FLYTE_CREDENTIALS_CLIENT_SECRET", "own-s3cret");
    let named = world.root().join("elsewhere/named.yaml");

    world.var("FLYTE_PLATFORM_URL", &endpoint);
    let by_variable = world.load().unwrap();
    world.env.remove("FLYTE_PLATFORM_URL");
    let env = world.env.clone();
    let explicitly = PlatformConfig::builder()
        .env(move |n| env.get(n).cloned())
        .current_dir(world.root().join("repo/work"))
        .endpoint(&endpoint)
        .build()
        .unwrap();
    world.var("FLYTECTL_CONFIG", &named.display().to_string());
    let in_a_named_file = world.load().unwrap();

    for (how, cfg) in [
        ("FLYTE_PLATFORM_URL", by_variable),
        ("explicit setting `endpoint`", explicitly),
        ("admin.endpoint", in_a_named_file),
    ] {
        assert!(cfg.api_key().is_none(), "{how}");
        let set_aside = cfg.sources().api_key_set_aside.clone().unwrap();
        assert_eq!(set_aside.variable, "UNION_API_KEY");
        assert!(
            set_aside.why.contains(how) && set_aside.why.contains("flyte.example.org"),
            "{set_aside}"
        );
        let auth = flyte_auth::get_authenticator(&cfg, None).unwrap();
        let token = auth.get_credentials().await.unwrap();
        assert_eq!(token.access_token.expose_secret(), "the-token", "{how}");
    }
    let seen = token_endpoint::seen(&server).await;
    assert!(
        seen.contains("own-client") && seen.contains("own-s3cret"),
        "{seen}"
    );
    assert!(
        !seen.contains("key-client") && !seen.contains("key-s3cret"),
        "{seen}"
    );
}

/// A config file the search finds in a working tree may have come with a cloned repository: it
/// may say where the server is, but not run a program or read a secret from elsewhere (a
/// file sent as the client secret to the file's own token URL). Named, or in the home
/// directory, the same file is the user's choice and is used.
#[test]
fn a_config_found_in_a_working_tree_may_not_run_a_program_or_read_a_secret() {
    let cases = [
        (
            "admin.command",
            "  authType: ExternalCommand\n  command: [touch, marker]\n",
        ),
        ("admin.proxyCommand", "  proxyCommand: [touch, marker]\n"),
        (
            "admin.clientSecretLocation",
            "  authType: ClientSecret\n  clientId: c\n  clientSecretLocation: @KEYFILE@\n",
        ),
        (
            "admin.clientSecretEnvVar",
            "  clientSecretEnvVar: AWS_SECRET_ACCESS_KEY\n",
        ),
    ];
    for (setting, yaml) in cases {
        let text = format!("admin:\n  endpoint: dns:///flyte.example.org\n{yaml}");
        for place in [
            "repo/.flyte/config.yaml",
            "repo/work/config.yaml",
            "repo/work/.flyte/config.yaml",
        ] {
            let mut world = World::new();
            world.write("elsewhere/key", "a private key");
            let key = world.root().join("elsewhere/key");
            world.write(place, &text.replace("@KEYFILE@", &key.display().to_string()));
            let err = world.load().unwrap_err().to_string();
            assert!(
                err.contains(place) && err.contains(setting) && err.contains("--config"),
                "{place}: {err}"
            );
            let named = world.root().join(place).display().to_string();
            world.var("FLYTECTL_CONFIG", &named);
            let cfg = world.load().unwrap();
            assert!(
                cfg.config_file().is_some_and(|f| f.ends_with(place)),
                "{place}"
            );
        }
        let world = World::new();
        world.write("elsewhere/key", "a private key");
        let key = world.root().join("elsewhere/key");
        let text = text.replace("@KEYFILE@", &key.display().to_string());
        world.write("home/.flyte/config.yaml", &text);
        let cfg = world.load().unwrap();
        assert!(
            cfg.config_file()
                .is_some_and(|f| f.ends_with("home/.flyte/config.yaml"))
        );
    }
}

/// A key in the environment and a config file for another server: what the file says of its
/// server (token URL, scopes, audience, header, proxy) is not applied to the key's server, so
/// the key's secret never goes to the other server's token endpoint. A file naming no server
/// still applies (the test below).
#[test]
fn a_config_for_another_server_says_nothing_about_the_keys_server() {
    let mut world = World::new();
    world.write(
        "home/.flyte/config.yaml",
        "admin:\n  endpoint: dns:///company.example.org\n  \
         tokenUrl: https://idp.company.example.org/token\n  scopes: [company]\n  \
         audience: company\n  authorizationHeader: flyte-authorization\n  \
         proxyCommand: [echo, proxy-token]\n  maxRetries: 7\n",
    );
    world.var(
        "UNION_API_KEY",
        &api_key("flyte.example.org:key-client:key-s3cret:None"),
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.api_key().unwrap().origin, "UNION_API_KEY");
    assert_eq!(cfg.endpoint().host(), "flyte.example.org");
    assert_eq!(cfg.client_id(), Some("key-client"));
    assert_eq!(cfg.token_url(), None);
    assert!(cfg.scopes().is_empty(), "{:?}", cfg.scopes());
    assert_eq!(cfg.audience(), None);
    assert_eq!(cfg.authorization_header(), None);
    assert!(cfg.proxy_command().is_empty());
    // What is not about one server still applies.
    assert_eq!(cfg.max_retries(), Some(7));

    // The same file with the key's own server: all of it applies.
    world.write(
        "home/.flyte/config.yaml",
        "admin:\n  endpoint: dns:///flyte.example.org:443\n  \
         tokenUrl: https://idp.example.org/token\n  scopes: [all]\n",
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.token_url(), Some("https://idp.example.org/token"));
    assert_eq!(cfg.scopes(), ["all"]);
}

/// The key's own host written with a port and a scheme (the key's format holds neither; every
/// loopback name is the same host): the key is used there, with the config's token endpoint.
#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn a_key_is_used_on_its_host_whatever_the_port_and_scheme() {
    for host in ["127.0.0.1", "localhost"] {
        let server = token_endpoint::start().await;
        let port = server.address().port();
        let mut world = World::new();
        world.write("home/.flyte/config.yaml", &own_client(port));
        let key = format!("{host}:key-client:key-s3cret:None");
        world.var("UNION_API_KEY", &api_key(&key));
        world.var("FLYTE_PLATFORM_URL", &format!("http://127.0.0.1:{port}"));
        let cfg = world.load().unwrap();
        assert_eq!(cfg.api_key().unwrap().origin, "UNION_API_KEY");
        assert_eq!(cfg.sources().api_key_set_aside, None);
        assert_eq!(cfg.endpoint().key(), format!("127.0.0.1:{port}"));
        let auth = flyte_auth::get_authenticator(&cfg, None).unwrap();
        auth.get_credentials().await.unwrap();
        let seen = token_endpoint::seen(&server).await;
        assert!(
            seen.contains("key-client") && seen.contains("key-s3cret"),
            "{host}: {seen}"
        );
        assert!(!seen.contains("own-client"), "{seen}");
    }
}
