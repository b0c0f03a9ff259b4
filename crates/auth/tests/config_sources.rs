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

/// The key's endpoint wins over the files' and the variables' (a key supplies the endpoint in
/// lieu of them, as in the Flyte 2 SDK), and its client id, secret and flow over theirs. Only
/// an endpoint set explicitly wins over the key's: on the key's host the key is used; on
/// another host a key from the environment is set aside and the config's own settings apply;
/// an explicit key is refused.
#[test]
fn an_api_key_against_the_other_sources() {
    let mut world = World::new();
    world.write(
        "home/.flyte/config.yaml",
        "admin:\n  endpoint: file.example.org\n  authType: Pkce\n  clientId: file-client\n",
    );
    world.var("FLYTE_CREDENTIALS_CLIENT_ID", "env-client");
    world.var("FLYTE_API_KEY", &api_key("key.example.org:svc:s3cret:"));
    world.var("FLYTE_PLATFORM_URL", "env.example.org");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "key.example.org");
    assert_eq!(cfg.client_id(), Some("svc"));
    assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
    assert_eq!(cfg.api_key().unwrap().endpoint, "key.example.org");
    assert_eq!(cfg.sources().api_key_set_aside, None);

    // The key's host in another spelling, set explicitly: the key is used there.
    let env = world.env.clone();
    let explicitly = |endpoint: &str| {
        let env = env.clone();
        PlatformConfig::builder()
            .env(move |n| env.get(n).cloned())
            .no_config_file()
            .endpoint(endpoint)
            .build()
            .unwrap()
    };
    let cfg = explicitly("dns:///KEY.example.org:443");
    assert_eq!(cfg.endpoint().as_written(), "dns:///KEY.example.org:443");
    assert_eq!(cfg.client_id(), Some("svc"));
    assert_eq!(cfg.client_secret().unwrap().expose_secret(), "s3cret");

    // Another host, set explicitly: the key is set aside, and says why, never showing itself.
    let cfg = explicitly("other.example.org");
    assert_eq!(cfg.endpoint().key(), "other.example.org");
    assert!(cfg.api_key().is_none());
    assert_eq!(cfg.client_id(), Some("env-client"));
    assert!(cfg.client_secret().is_none());
    let set_aside = cfg.sources().api_key_set_aside.clone().unwrap();
    assert_eq!(set_aside.variable, "FLYTE_API_KEY");
    for named in [
        "key.example.org",
        "explicit setting `endpoint`",
        "other.example.org",
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

/// A key in the environment names flyte.example.org; a token endpoint on 127.0.0.1 is the
/// config's own. Whichever way that server is named, it never receives the key's id or
/// secret: an endpoint set explicitly sets the key aside (the config's own client goes
/// there); a variable's or a named file's endpoint loses to the key's, and their token URL,
/// being for another server, is not used with the key.
#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn a_key_from_the_environment_never_reaches_another_host() {
    let server = token_endpoint::start().await;
    let port = server.address().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut world = World::new();
    world.write(
        "home/.flyte/config.yaml",
        &format!("{}  endpoint: {endpoint}\n", own_client(port)),
    );
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
    world.var("FLYTECTL_CONFIG", &named.display().to_string());
    let in_a_named_file = world.load().unwrap();
    for (how, cfg) in [
        ("a variable", by_variable),
        ("a named file", in_a_named_file),
    ] {
        assert_eq!(cfg.api_key().unwrap().origin, "UNION_API_KEY", "{how}");
        assert_eq!(cfg.endpoint().host(), "flyte.example.org", "{how}");
        assert_eq!(cfg.token_url(), None, "{how}");
        assert!(cfg.scopes().is_empty(), "{how}");
    }

    let env = world.env.clone();
    let explicitly = PlatformConfig::builder()
        .env(move |n| env.get(n).cloned())
        .current_dir(world.root().join("repo/work"))
        .endpoint(&endpoint)
        .build()
        .unwrap();
    assert!(explicitly.api_key().is_none());
    let set_aside = explicitly.sources().api_key_set_aside.clone().unwrap();
    assert_eq!(set_aside.variable, "UNION_API_KEY");
    assert!(
        set_aside.why.contains("explicit setting `endpoint`")
            && set_aside.why.contains("flyte.example.org"),
        "{set_aside}"
    );
    let auth = flyte_auth::get_authenticator(&explicitly, None).unwrap();
    let token = auth.get_credentials().await.unwrap();
    assert_eq!(token.access_token.expose_secret(), "the-token");
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
        ("admin.insecureSkipVerify", "  insecureSkipVerify: true\n"),
        ("admin.caCertFilePath", "  caCertFilePath: @KEYFILE@\n"),
        (
            "admin.httpProxyURL",
            "  httpProxyURL: http://proxy.example.org:3128\n",
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
            world.write(
                place,
                &text.replace("@KEYFILE@", &key.display().to_string()),
            );
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
        for home_file in ["home/.uctl/config.yaml", "home/.union/config.yaml"] {
            let world = World::new();
            world.write("elsewhere/key", "a private key");
            world.write(home_file, &text);
            let cfg = world.load().unwrap();
            assert!(cfg.config_file().is_some_and(|f| f.ends_with(home_file)));
        }
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
        // A config for the key's host: its token endpoint applies to the key.
        let own = format!("{}  endpoint: http://localhost:{port}\n", own_client(port));
        world.write("home/.flyte/config.yaml", &own);
        let key = format!("{host}:key-client:key-s3cret:None");
        world.var("UNION_API_KEY", &api_key(&key));
        let env = world.env.clone();
        let cfg = PlatformConfig::builder()
            .env(move |n| env.get(n).cloned())
            .current_dir(world.root().join("repo/work"))
            .endpoint(format!("http://127.0.0.1:{port}"))
            .build()
            .unwrap();
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

/// Another user's `.git` and `.flyte/config.yaml` above the working directory: the planted
/// file is skipped, reported, and the search goes on to the user's own file.
#[cfg(unix)]
#[test]
fn a_file_found_by_the_search_and_owned_by_another_user_is_skipped() {
    let world = World::new();
    world.write(
        "repo/.flyte/config.yaml",
        "admin:\n  endpoint: dns:///attacker.example.org\n  authType: ExternalCommand\n  \
         command: [touch, /tmp/pwned]\n",
    );
    world.write("home/.flyte/config.yaml", &yaml("home.example.org"));
    give_to_nobody(&world, "repo");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "home.example.org");
    let sources = cfg.sources();
    assert_eq!(sources.found_by, Some("~/.flyte/config.yaml"));
    let planted = world.root().join("repo/.flyte/config.yaml");
    let [skipped] = &sources.skipped[..] else {
        panic!("{:?}", sources.skipped)
    };
    assert_eq!(skipped.path, planted);
    assert_eq!(skipped.found_by, "<git root>/.flyte/config.yaml");
    assert!(
        matches!(
            skipped.why,
            flyte_auth::SkipReason::Owner { owner: NOBODY, .. }
        ),
        "{skipped:?}"
    );
    let shown = skipped.to_string();
    assert!(shown.contains("belongs to user id 65534"), "{shown}");
    assert!(
        shown.contains(&format!("--config {}", planted.display())),
        "{shown}"
    );

    // With nothing else to read, the error says what was skipped and why.
    fs::remove_file(world.root().join("home/.flyte/config.yaml")).unwrap();
    let err = world.load().unwrap_err().to_string();
    assert!(err.contains("no Flyte endpoint"), "{err}");
    assert!(err.contains("skipped") && err.contains("65534"), "{err}");
}

/// A file the user names is the user's choice: used whoever owns it.
#[cfg(unix)]
#[test]
fn a_file_named_explicitly_is_used_whoever_owns_it() {
    let world = World::new();
    world.write("elsewhere/team.yaml", &yaml("team.example.org"));
    give_to_nobody(&world, "elsewhere");
    chmod(&world.root().join("elsewhere"), 0o777);
    let named = world.root().join("elsewhere/team.yaml");
    let env = world.env.clone();
    let cfg = PlatformConfig::builder()
        .env(move |n| env.get(n).cloned())
        .current_dir(world.root().join("repo/work"))
        .config_file(&named)
        .build()
        .unwrap();
    assert_eq!(cfg.endpoint().key(), "team.example.org");
    assert!(cfg.sources().skipped.is_empty());
    for var in ["FLYTECTL_CONFIG", "UCTL_CONFIG"] {
        let mut world_var = World::new();
        world_var.env = world.env.clone();
        world_var.var(var, named.to_str().unwrap());
        let cfg = world_var.load().unwrap();
        assert_eq!(cfg.endpoint().key(), "team.example.org", "{var}");
    }
}

/// The user's own file in a directory group or others may write to: they could have replaced
/// it. Skipped and reported; so is a file others may write to.
#[cfg(unix)]
#[test]
fn a_found_file_in_a_directory_others_may_write_is_skipped() {
    let world = World::new();
    world.write("repo/work/config.yaml", &yaml("shared.example.org"));
    world.write("home/.flyte/config.yaml", &yaml("home.example.org"));
    let work = world.root().join("repo/work");
    chmod(&work, 0o777);
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "home.example.org");
    let skipped = &cfg.sources().skipped;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].found_by, "./config.yaml");
    assert_eq!(
        skipped[0].why,
        flyte_auth::SkipReason::Writable {
            path: work.clone(),
            mode: 0o777
        }
    );
    assert!(
        skipped[0]
            .to_string()
            .contains("writable by group or others"),
        "{}",
        skipped[0]
    );

    chmod(&work, 0o755);
    chmod(&work.join("config.yaml"), 0o666);
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "home.example.org");
    assert!(matches!(
        cfg.sources().skipped[0].why,
        flyte_auth::SkipReason::Writable { mode: 0o666, .. }
    ));

    chmod(&work.join("config.yaml"), 0o644);
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "shared.example.org");
    assert!(cfg.sources().skipped.is_empty());
}

/// In a task pod (the Flyte 2 SDK's `init_in_cluster`): without a named config file, the
/// `_U_*` variables give the endpoint and the transport, a key's endpoint wins over
/// `_U_EP_OVERRIDE`, and a config file named by `FLYTECTL_CONFIG` wins over the key.
#[test]
fn a_task_pod() {
    let mut world = World::new();
    world.var("_U_EP_OVERRIDE", "flyte.pod.svc:8089");
    world.var("_U_INSECURE", "true");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "flyte.pod.svc:8089");
    assert!(cfg.insecure());
    assert!(
        cfg.sources()
            .variables
            .contains(&"_U_EP_OVERRIDE".to_owned())
    );
    assert!(cfg.sources().variables.contains(&"_U_INSECURE".to_owned()));

    // The key's endpoint wins; the transport still comes from the pod.
    world.var(
        "_UNION_EAGER_API_KEY",
        &api_key("key.example.org:svc:s3cret:None"),
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "key.example.org");
    assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret);
    assert_eq!(cfg.api_key().unwrap().origin, "_UNION_EAGER_API_KEY");
    assert!(cfg.insecure());

    // Outside the pod's own variables, no `insecure` meant for another server reaches the
    // key's: its secret never goes in clear text because of a config file or a variable.
    world.env.remove("_U_INSECURE");
    world.var("FLYTE_PLATFORM_INSECURE", "true");
    world.var("FLYTE_ADMIN_INSECURESKIPVERIFY", "true");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "key.example.org");
    assert!(!cfg.insecure());
    assert!(!cfg.insecure_skip_verify());
    assert!(cfg.endpoint().base_url().starts_with("https://"));
    world.env.remove("FLYTE_PLATFORM_INSECURE");
    world.env.remove("FLYTE_ADMIN_INSECURESKIPVERIFY");
    world.var("_U_INSECURE", "true");

    // A file named by FLYTECTL_CONFIG wins over the key and the `_U_*` variables.
    world.write("elsewhere/pod.yaml", &yaml("file.example.org"));
    let named = world
        .root()
        .join("elsewhere/pod.yaml")
        .display()
        .to_string();
    world.var("FLYTECTL_CONFIG", &named);
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "file.example.org");
    assert!(cfg.api_key().is_none());
    assert!(!cfg.insecure());
    assert!(
        !cfg.sources()
            .variables
            .contains(&"_U_EP_OVERRIDE".to_owned())
    );

    // Outside a pod, the key wins over the named file (the Flyte 2 CLI's order).
    world.env.remove("_U_EP_OVERRIDE");
    world.env.remove("_U_INSECURE");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "key.example.org");

    // A pod that names no endpoint at all: the Flyte 2 SDK's default.
    let mut world = World::new();
    world.var("_U_INSECURE_SKIP_VERIFY", "true");
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().as_written(), "host.docker.internal:8090");
    assert!(cfg.insecure_skip_verify());

    let mut world = World::new();
    world.var("_U_INSECURE", "perhaps");
    let err = world.load().unwrap_err().to_string();
    assert!(err.contains("environment variable _U_INSECURE"), "{err}");
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every variable that carries a key, in the order they are read: each row's key wins over
/// every key of the rows below it, and the config records the variable it came from.
#[test]
fn every_api_key_variable_in_order() {
    let vars = [
        "FLYTE_API_KEY",
        "UNION_API_KEY",
        "UNION_SERVERLESS_API_KEY",
        "UNIONAI_SERVERLESS_API_KEY",
        "_UNION_EAGER_API_KEY",
        "_UNION_UNION_API_KEY",
        "EAGER_API_KEY",
    ];
    assert_eq!(flyte_auth::config::env::API_KEYS, vars);
    for winner in 0..vars.len() {
        let mut world = World::new();
        world.write("home/.flyte/config.yaml", "admin:\n  authType: Pkce\n");
        for (i, var) in vars.iter().enumerate().skip(winner) {
            world.var(
                var,
                &api_key(&format!("key{i}.example.org:svc{i}:s3cret:None")),
            );
        }
        let cfg = world.load().unwrap();
        let var = vars[winner];
        assert_eq!(
            cfg.endpoint().key(),
            format!("key{winner}.example.org"),
            "{var}"
        );
        assert_eq!(cfg.client_id(), Some(format!("svc{winner}").as_str()));
        // A key means client credentials, whatever the file says: no browser login.
        assert_eq!(cfg.auth_mode(), AuthMode::ClientSecret, "{var}");
        assert_eq!(cfg.api_key().unwrap().origin, var);
        assert_eq!(cfg.api_key().unwrap().org, None);
        assert!(cfg.sources().variables.contains(&var.to_owned()), "{var}");
        for other in &vars[winner + 1..] {
            assert!(!cfg.sources().variables.contains(&(*other).to_owned()));
        }
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }
}

/// Gives `rel` and everything under it to `nobody`. Needs root, as CI runs the tests.
#[cfg(unix)]
fn give_to_nobody(world: &World, rel: &str) {
    fn walk(path: &Path) {
        std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap_or_else(|e| {
            panic!(
                "chown {} to nobody: {e} (these tests run as root)",
                path.display()
            )
        });
        if path.is_dir() {
            for entry in fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path());
            }
        }
    }
    walk(&world.root().join(rel));
}

#[test]
fn malformed_api_keys_are_refused_in_one_line() {
    for (key, want) in [
        ("%%% not base64".to_owned(), "is not base64"),
        (api_key("h:svc:s3cret"), "has 3 `:`-separated parts"),
        (api_key("h:svc::org"), "empty client secret"),
        (api_key("h:30080:svc:s3cret:org"), "would split wrongly"),
    ] {
        let mut world = World::new();
        world.var("FLYTE_API_KEY", &key);
        let err = world.load().unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("FLYTE_API_KEY"),
            "{want}: {err}"
        );
        assert!(
            !err.contains("s3cret") && !err.contains(&key) && !err.contains('\n'),
            "{err}"
        );
    }
}

/// The git root is looked for up to the home directory, not above it.
#[test]
fn the_search_for_a_git_root_stops_at_home() {
    let world = World::new();
    // The temporary directory holds `home`: a `.git` and a config above home.
    fs::create_dir_all(world.root().join(".git")).unwrap();
    world.write(".flyte/config.yaml", &yaml("above-home.example.org"));
    fs::create_dir_all(world.root().join("home/work")).unwrap();
    let env = world.env.clone();
    let load = |dir: &str| {
        let env = env.clone();
        PlatformConfig::builder()
            .env(move |n| env.get(n).cloned())
            .current_dir(world.root().join(dir))
            .build()
    };
    let err = load("home/work").unwrap_err().to_string();
    assert!(err.contains("no Flyte endpoint"), "{err}");
    // Outside home the same root is found.
    let cfg = load("elsewhere").unwrap();
    assert_eq!(cfg.endpoint().key(), "above-home.example.org");
    assert_eq!(
        cfg.sources().found_by,
        Some("<git root>/.flyte/config.yaml")
    );
}

/// `union create login` writes `union.connection.host` and `union.auth.type` next to the
/// `admin` keys; they are used where the `admin` key is not set.
#[test]
fn the_union_keys_of_a_union_config_file() {
    let world = World::new();
    world.write(
        "home/.union/config.yaml",
        "union:\n  connection:\n    host: dns:///union.example.org\n    insecure: false\n  \
         auth:\n    type: DeviceFlow\nadmin:\n  clientId: cli\n",
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "union.example.org");
    assert_eq!(cfg.endpoint().as_written(), "dns:///union.example.org");
    assert_eq!(cfg.auth_mode(), AuthMode::DeviceFlow);
    assert_eq!(cfg.client_id(), Some("cli"));

    world.write(
        "home/.union/config.yaml",
        "admin:\n  endpoint: dns:///admin.example.org\n  authType: Pkce\n\
         union:\n  connection:\n    host: dns:///union.example.org\n  auth:\n    type: DeviceFlow\n",
    );
    let cfg = world.load().unwrap();
    assert_eq!(cfg.endpoint().key(), "admin.example.org");
    assert_eq!(cfg.auth_mode(), AuthMode::Pkce);

    world.write(
        "home/.union/config.yaml",
        "union:\n  connection:\n    host: grpc://x\n",
    );
    let err = world.load().unwrap_err().to_string();
    assert!(err.contains("union.connection.host"), "{err}");
}

/// The user id of `nobody`, to whom planted files are given.
#[cfg(unix)]
const NOBODY: u32 = 65534;
