//! Against the local OpenID provider: a browser login that asks for `openid` sends a `nonce`
//! the provider puts in the id token (and the login checks), and the library's logout revokes
//! the browser login's refresh token at the provider (RFC 7009) before deleting it.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test with its message"
)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use flyte_auth::{AuthMode, FactoryOptions, PlatformConfig, Revocation, logout_with};
use flyte_auth_pkce::{
    BrowserOpener,
    flyte_auth_core::{Authenticator, CachingAuthenticator, MemoryStore, TokenStore, jwt_claim},
    flyte_auth_oauth::{ClientAuth, HttpSettings, OAuthClient, TokenRequest},
};
use flyte_auth_tests::{FLYTECTL, Idp, complete_browser_login, pkce_flow};
use tokio::task::JoinHandle;
use url::Url;

/// A bound that proves "does not hang", not a speed requirement.
const NO_HANG: Duration = Duration::from_secs(120);

fn http() -> OAuthClient {
    OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap()
}

/// A browser whose user approves every login; keeps the URLs it was opened with.
#[derive(Clone, Default)]
struct Approving {
    urls: Arc<Mutex<Vec<Url>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Approving {
    fn opener(&self) -> BrowserOpener {
        let this = self.clone();
        BrowserOpener::new(move |url| {
            let url = Url::parse(url).unwrap();
            this.urls.lock().unwrap().push(url.clone());
            let task = tokio::spawn(async move {
                let answer = complete_browser_login(&url).await.unwrap();
                assert_eq!(answer.status(), 200, "{answer:?}");
            });
            this.tasks.lock().unwrap().push(task);
            Ok(())
        })
    }

    async fn finished(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in tasks {
            tokio::time::timeout(NO_HANG, task).await.unwrap().unwrap();
        }
    }

    fn param(&self, name: &str) -> Option<String> {
        let url = self.urls.lock().unwrap().last().cloned().unwrap();
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Logs in with the browser at `idp` into `store`.
async fn browser_login(idp: &Idp, store: &Arc<MemoryStore>) -> Approving {
    let browser = Approving::default();
    let flow = pkce_flow(idp, http(), browser.opener())
        .timeout(NO_HANG)
        .build()
        .unwrap();
    let auth = CachingAuthenticator::builder(flow)
        .store(Arc::clone(store) as Arc<dyn TokenStore>)
        .build();
    tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .unwrap()
        .unwrap();
    browser.finished().await;
    browser
}

#[tokio::test]
async fn a_login_asking_for_openid_sends_a_nonce_that_the_id_token_carries() {
    let idp = Idp::builder()
        .redirect_uri("http://localhost:0/callback")
        .scopes(["openid", "all", "offline"])
        .start()
        .await;
    let store = Arc::new(MemoryStore::new());
    let browser = browser_login(&idp, &store).await;

    let nonce = browser.param("nonce").expect("a nonce with openid");
    assert_eq!(nonce.len(), 43);
    let stored = store.retrieve(&idp.endpoint()).unwrap().unwrap();
    let id_token = stored.id_token.expect("an id token for openid");
    assert_eq!(
        jwt_claim(id_token.expose_secret(), "nonce"),
        Some(serde_json::Value::String(nonce))
    );
}

#[tokio::test]
async fn the_library_logout_revokes_a_browser_logins_refresh_token_at_the_provider() {
    let idp = Idp::builder()
        .redirect_uri("http://localhost:0/callback")
        .scopes(["all", "offline"])
        .start()
        .await;
    let store = Arc::new(MemoryStore::new());
    browser_login(&idp, &store).await;
    let refresh_token = store
        .retrieve(&idp.endpoint())
        .unwrap()
        .unwrap()
        .refresh_token
        .expect("a refresh token");

    let cfg = PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(idp.config_endpoint())
        .insecure(true)
        .auth_mode(AuthMode::Pkce)
        .build()
        .unwrap();
    let options = FactoryOptions::new().http_settings(HttpSettings::new().system_proxy(false));
    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options)
        .await
        .unwrap();
    assert!(
        matches!(outcome.revocation, Revocation::Revoked),
        "{outcome:?}"
    );
    assert!(outcome.stored);
    assert!(store.retrieve(&idp.endpoint()).unwrap().is_none());

    let refused = http()
        .token(&TokenRequest::refresh_token(
            idp.token_endpoint().as_str(),
            ClientAuth::public(FLYTECTL),
            refresh_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        refused.oauth().expect("an OAuth error").code.as_str(),
        "invalid_grant",
        "{refused}"
    );
}
