//! A Flyte 2 backend (the provider's Flyte 2 mode): the fixture proved with the real Flyte 2
//! SDK, flyte-auth's discovery and logins against it, `FLYTE_API_KEY` end to end, and
//! `proxy-authorization` on every OAuth request through `proxyCommand`.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    future::Future,
    io::Read as _,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine as _;
use flyte_auth::{FactoryOptions, PlatformConfig, get_authenticator_with, proxy_authenticator};
use flyte_auth_core::{Authenticator, ClientConfigStore, MemoryStore, TokenStore};
use flyte_auth_oauth::{DiscoveryFlavour, HttpSettings, OAuthClient, RemoteClientConfigStore};
use flyte_auth_tests::{
    API_KEY_CLIENT, BASIC_CLIENT, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE, Idp,
};

const GET_CLIENT: &str = "GetPublicClientConfig";
const GET_METADATA: &str = "GetOAuth2Metadata";

/// Bounds every login: a bug shows as a failure, not a hang.
const NO_HANG: Duration = Duration::from_secs(90);

fn http() -> OAuthClient {
    OAuthClient::new(HttpSettings::new().request_timeout(Duration::from_secs(10))).unwrap()
}

fn store(idp: &Idp, http: OAuthClient) -> RemoteClientConfigStore {
    RemoteClientConfigStore::from_base_url(idp.base_url().as_str(), http)
}

/// The string fields of a protobuf message (wire type 2 only, as these messages have).
fn proto_strings(mut bytes: &[u8]) -> Vec<(u64, String)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let (byte, rest) = bytes.split_first().unwrap();
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let tag = varint(&mut bytes);
        assert_eq!(tag & 7, 2, "only length-delimited fields");
        let len = usize::try_from(varint(&mut bytes)).unwrap();
        let (value, rest) = bytes.split_at(len);
        fields.push((tag >> 3, String::from_utf8(value.to_vec()).unwrap()));
        bytes = rest;
    }
    fields
}

#[tokio::test]
async fn the_fixture_serves_both_connect_methods_in_json_and_protobuf_and_no_v1_document() {
    let idp = Idp::builder().flyte2().start().await;
    let client = reqwest::Client::new();
    let v1 = client.get(idp.flyte_client_url()).send().await.unwrap();
    assert_eq!(v1.status(), 404);

    let json: serde_json::Value = client
        .post(idp.connect_url(GET_CLIENT))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["clientId"], "flytectl");
    assert_eq!(json["scopes"], serde_json::json!(["all"]));

    let proto = client
        .post(idp.connect_url(GET_METADATA))
        .header("content-type", "application/proto")
        .send()
        .await
        .unwrap();
    assert_eq!(proto.headers()["content-type"], "application/proto");
    let fields = proto_strings(&proto.bytes().await.unwrap());
    assert!(
        fields.contains(&(3, idp.token_endpoint().to_string())),
        "{fields:?}"
    );
    let get = client
        .get(idp.connect_url(GET_CLIENT))
        .query(&[("connect", "v1"), ("encoding", "proto"), ("message", "")])
        .send()
        .await
        .unwrap();
    let fields = proto_strings(&get.bytes().await.unwrap());
    assert!(fields.contains(&(1, "flytectl".to_owned())), "{fields:?}");

    let unknown = client
        .post(idp.connect_url("GetNothing"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let error: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(error["code"], "unimplemented");
}

/// Runs `python3 -c script args...` with a deadline; returns its standard output.
fn python(script: &str, args: &[&str]) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        // The SDK must not touch a keyring of the machine running the tests.
        .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 on PATH (with `pip install flyte==2.12.1`, as .ci/run installs it)");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the Flyte 2 SDK did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "python failed ({status}):\n{err}\n{out}");
    out
}

/// The real Flyte 2 SDK (`flyte` 2.12.1): its own `RemoteClientConfigStore` reads the
/// fixture's config through ConnectRPC (it sends binary protobuf), and its client-credentials
/// authenticator gets a token from the fixture.
const SDK_LOGIN: &str = r#"
import asyncio, json, sys
import flyte
from flyte.remote._client.auth._client_config import RemoteClientConfigStore
from flyte.remote._client.auth._authenticators.client_credentials import ClientCredentialsAuthenticator

async def main():
    endpoint, client_id, secret = sys.argv[1:4]
    store = RemoteClientConfigStore(endpoint)
    cfg = await store.get_client_config()
    auth = ClientCredentialsAuthenticator(
        client_id=client_id, client_credentials_secret=secret, endpoint=endpoint,
        cfg_store=store, disable_keyring=True, verify=False,
    )
    await auth.refresh_credentials()
    creds = auth.get_credentials()
    print(json.dumps({
        "version": flyte.__version__,
        "token_endpoint": cfg.token_endpoint,
        "client_id": cfg.client_id,
        "scopes": cfg.scopes,
        "got_token": bool(creds and creds.access_token),
    }))

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_real_flyte_2_sdk_reads_the_fixture_and_gets_a_token() {
    let idp = Idp::builder().flyte2().start().await;
    let endpoint = idp.base_url().as_str().trim_end_matches('/').to_owned();
    let out = tokio::task::spawn_blocking(move || {
        python(
            SDK_LOGIN,
            &[&endpoint, API_KEY_CLIENT.id(), API_KEY_CLIENT.secret()],
        )
    })
    .await
    .unwrap();
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["version"], "2.12.1", "{answer}");
    assert_eq!(answer["token_endpoint"], idp.token_endpoint().as_str());
    assert_eq!(answer["client_id"], "flytectl");
    assert_eq!(answer["scopes"], serde_json::json!(["all"]));
    assert_eq!(answer["got_token"], true);
    let stats = idp.stats().await;
    // It asks again for each use of the config (the authenticator resolves it anew).
    assert!(stats.connect_requests(GET_CLIENT) >= 1, "{stats:?}");
    assert!(stats.connect_requests(GET_METADATA) >= 1, "{stats:?}");
    assert!(stats.token_requests(GRANT_CLIENT_CREDENTIALS) >= 1);
    // The SDK speaks the binary protobuf codec.
    let connect: Vec<_> = stats
        .requests
        .iter()
        .filter(|r| r.path.contains("AuthMetadataService"))
        .collect();
    assert!(
        connect
            .iter()
            .all(|r| r.content_type.as_deref() == Some("application/proto")),
        "{connect:?}"
    );
}

/// The SDK's own `decode_api_key`, for every key, next to flyte-auth's: where flyte-auth
/// accepts a key, both read the same parts; where the SDK would mis-split it, flyte-auth
/// refuses. Keys are encoded the way the SDK's tests encode them.
const SDK_DECODE: &str = r#"
import base64, json, sys
from flyte.remote._client.auth._auth_utils import decode_api_key
out = []
for text in json.loads(sys.argv[1]):
    key = base64.b64encode(text.encode("utf-8")).decode("utf-8")
    try:
        parts = list(decode_api_key(key))
    except Exception as e:
        parts = None
    out.append({"key": key, "parts": parts})
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_decode_as_the_sdk_decodes_them_or_are_refused() {
    let texts = [
        "flyte.example.org:svc:s3cret:acme",
        "flyte.example.org:svc:s3cret:",
        "dns:///flyte.example.org:svc:s3cret:acme",
        "flyte.example.org:443:svc:s3cret:acme",
        "https://flyte.example.org:svc:s3cret:",
        "flyte.example.org:svc:s3:cret:acme",
    ];
    let arg = serde_json::to_string(&texts).unwrap();
    let out = tokio::task::spawn_blocking(move || python(SDK_DECODE, &[&arg]))
        .await
        .unwrap();
    let answers: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    for (text, answer) in texts.iter().zip(&answers) {
        let key = answer["key"].as_str().unwrap().to_owned();
        let ours = PlatformConfig::builder()
            .no_config_file()
            .no_env()
            .api_key(key)
            .build();
        let honest_split = text.matches(':').count() == 3;
        match ours {
            Ok(cfg) => {
                assert!(honest_split, "{text}: accepted a key the SDK mis-splits");
                let sdk = &answer["parts"];
                let api = cfg.api_key().unwrap();
                assert_eq!(sdk[0], api.endpoint.as_str(), "{text}");
                assert_eq!(sdk[1], cfg.client_id().unwrap(), "{text}");
                assert_eq!(
                    sdk[2],
                    cfg.client_secret().unwrap().expose_secret(),
                    "{text}"
                );
                let org = api.org.clone().unwrap_or_else(|| "None".to_owned());
                assert_eq!(sdk[3], org.as_str(), "{text}");
            }
            Err(e) => {
                assert!(!honest_split, "{text}: refused a good key: {e}");
                let e = e.to_string();
                assert!(e.contains("would split wrongly"), "{text}: {e}");
                assert!(!e.contains("s3") && !e.contains('\n'), "{e}");
            }
        }
    }
}

#[tokio::test]
async fn discovery_of_a_flyte_2_backend_costs_no_failed_round_trip() {
    let idp = Idp::builder().flyte2().start().await;

    // Cold start, nothing known: three requests at once, Flyte 2 answers.
    let cold = store(&idp, http());
    let config = cold.get_client_config().await.unwrap();
    assert_eq!(config.token_endpoint, idp.token_endpoint().as_str());
    assert_eq!(config.client_id, "flytectl");
    assert_eq!(cold.flavour(), Some(DiscoveryFlavour::Flyte2));
    let stats = idp.stats().await;
    assert_eq!(stats.connect_requests(GET_CLIENT), 1);
    assert_eq!(
        stats.connect_requests(GET_METADATA),
        0,
        "the .well-known document is served"
    );

    // The flavour remembered: the two Connect calls only, nothing else.
    idp.reset_stats().await;
    let warm = store(&idp, http()).prefer(DiscoveryFlavour::Flyte2);
    warm.get_client_config().await.unwrap();
    let paths: Vec<_> = idp
        .stats()
        .await
        .requests
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(
        paths.iter().all(|p| p.contains("AuthMetadataService")),
        "{paths:?}"
    );

    // A remembered flavour that is wrong (the server was upgraded) falls back.
    let stale = store(&idp, http()).prefer(DiscoveryFlavour::FlyteAdmin);
    stale.get_client_config().await.unwrap();
    assert_eq!(stale.flavour(), Some(DiscoveryFlavour::Flyte2));
}

#[tokio::test]
async fn without_the_well_known_document_the_metadata_comes_from_connect() {
    let idp = Idp::builder().flyte2().well_known(false).start().await;
    let cold = store(&idp, http());
    let discovery = cold.discover().await.unwrap();
    assert_eq!(
        discovery.metadata.token_endpoint.as_deref(),
        Some(idp.token_endpoint().as_str())
    );
    assert_eq!(
        discovery.metadata.device_authorization_endpoint.as_deref(),
        Some(idp.device_authorization_endpoint().as_str())
    );
    assert_eq!(idp.stats().await.connect_requests(GET_METADATA), 1);
}

#[tokio::test]
async fn a_flyteadmin_server_is_discovered_as_before() {
    let idp = Idp::start().await;
    let cold = store(&idp, http());
    cold.get_client_config().await.unwrap();
    assert_eq!(cold.flavour(), Some(DiscoveryFlavour::FlyteAdmin));
    idp.reset_stats().await;
    let warm = store(&idp, http()).prefer(DiscoveryFlavour::FlyteAdmin);
    warm.get_client_config().await.unwrap();
    let stats = idp.stats().await;
    assert!(stats.connect_requests.is_empty(), "{stats:?}");
    assert_eq!(stats.requests.len(), 2, "{:?}", stats.requests);
}

/// A config for the fixture, plain HTTP on loopback.
fn config(idp: &Idp) -> flyte_auth::config::PlatformConfigBuilder {
    PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(format!("http://{}", idp.host_port()))
}

#[tokio::test]
async fn client_credentials_log_in_to_a_flyte_2_backend_through_the_factory() {
    let idp = Idp::builder().flyte2().start().await;
    let cfg = config(&idp)
        .auth_mode(flyte_auth::AuthMode::ClientSecret)
        .client_id(BASIC_CLIENT.id())
        .client_secret(BASIC_CLIENT.secret())
        .build()
        .unwrap();
    let auth = get_authenticator_with(&cfg, None, &FactoryOptions::new()).unwrap();
    let creds = auth.get_credentials().await.unwrap();
    assert!(!creds.access_token.expose_secret().is_empty());
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
}

#[tokio::test]
async fn an_api_key_logs_in_with_the_endpoint_given_explicitly() {
    let idp = Idp::builder().flyte2().start().await;
    // The SDK cannot carry a port in a key: the key names the host, `--endpoint` the port.
    let text = format!(
        "localhost:{}:{}:",
        API_KEY_CLIENT.id(),
        API_KEY_CLIENT.secret()
    );
    let key = base64::engine::general_purpose::STANDARD.encode(text);
    let env_key = key.clone();
    let cfg = PlatformConfig::builder()
        .no_config_file()
        .env(move |name| (name == "FLYTE_API_KEY").then(|| env_key.clone()))
        .endpoint(format!("http://{}", idp.host_port()))
        .build()
        .unwrap();
    assert_eq!(cfg.api_key().unwrap().endpoint, "localhost");
    let store = Arc::new(MemoryStore::new());
    let auth = get_authenticator_with(
        &cfg,
        Some(Arc::clone(&store) as Arc<dyn TokenStore>),
        &FactoryOptions::new(),
    )
    .unwrap();
    let creds = auth.get_credentials().await.unwrap();
    assert!(!creds.access_token.expose_secret().is_empty());
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    assert!(!format!("{cfg:?}{auth:?}").contains(API_KEY_CLIENT.secret()));
    assert!(!format!("{cfg:?}").contains(&key));
}

/// What the fixture saw: every request carries the proxy's token.
async fn assert_every_request_had_the_proxy_token(idp: &Idp, at_least: &[&str]) {
    let requests = idp.stats().await.requests;
    for path in at_least {
        assert!(
            requests.iter().any(|r| r.path.ends_with(path)),
            "no request to {path}: {requests:?}"
        );
    }
    for request in &requests {
        assert_eq!(
            request.proxy_authorization.as_deref(),
            Some("Bearer proxy-token-1"),
            "{request:?}"
        );
    }
}

/// `proxyCommand`'s authenticator (a real child process) and the client that sends its
/// header on every OAuth request, as the factory must wire them.
fn proxied_client(idp: &Idp) -> OAuthClient {
    let cfg = config(idp)
        .proxy_command(["echo", "proxy-token-1"])
        .build()
        .unwrap();
    let proxy: Arc<dyn Authenticator> = proxy_authenticator(&cfg).unwrap().unwrap();
    http().with_request_header(cfg.endpoint(), proxy)
}

#[tokio::test]
async fn proxy_authorization_is_on_discovery_and_token_requests_of_client_credentials() {
    for flyte2 in [false, true] {
        let builder = Idp::builder();
        let idp = if flyte2 { builder.flyte2() } else { builder }
            .start()
            .await;
        let cfg = config(&idp)
            .auth_mode(flyte_auth::AuthMode::ClientSecret)
            .client_id(BASIC_CLIENT.id())
            .client_secret(BASIC_CLIENT.secret())
            .build()
            .unwrap();
        let options = FactoryOptions::new().http_client(proxied_client(&idp));
        let auth = get_authenticator_with(&cfg, None, &options).unwrap();
        auth.get_credentials().await.unwrap();
        assert_every_request_had_the_proxy_token(
            &idp,
            &["/.well-known/oauth-authorization-server", "/token"],
        )
        .await;
    }
}

#[tokio::test]
async fn proxy_authorization_is_on_every_request_of_the_device_flow() {
    let idp = Idp::builder().flyte2().start().await;
    let cfg = config(&idp)
        .auth_mode(flyte_auth::AuthMode::DeviceFlow)
        .device_flow_poll_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let codes = Arc::new(Mutex::new(None::<String>));
    let seen = Arc::clone(&codes);
    let options = FactoryOptions::new()
        .http_client(proxied_client(&idp))
        .device_prompt(move |p| *seen.lock().unwrap() = Some(p.user_code.clone()));
    let auth = get_authenticator_with(&cfg, None, &options).unwrap();
    let user = async {
        let code = loop {
            if let Some(code) = codes.lock().unwrap().clone() {
                break code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        idp.approve_device_code(&code).await.unwrap();
    };
    let (creds, ()) = bounded(async { tokio::join!(auth.get_credentials(), user) }).await;
    creds.unwrap();
    assert!(idp.token_requests(GRANT_DEVICE_CODE).await >= 1);
    // The browser's requests (the user approving) go through no proxy of ours: only the
    // client's requests are checked.
    let requests = idp.stats().await.requests;
    let client: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.path.contains("AuthMetadataService")
                || r.path == "/.well-known/oauth-authorization-server"
                || r.path == "/config/v1/flyte_client"
                || r.path == "/token"
                || r.path == "/device/auth"
        })
        .collect();
    assert!(
        client.iter().any(|r| r.path == "/device/auth"),
        "{requests:?}"
    );
    for request in client {
        assert_eq!(
            request.proxy_authorization.as_deref(),
            Some("Bearer proxy-token-1"),
            "{request:?}"
        );
    }
}

async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(NO_HANG, work)
        .await
        .expect("the login must not hang")
}
