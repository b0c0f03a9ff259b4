//! The OpenID Connect `nonce` of the browser login: a provider configured strictly (glewlwyd)
//! refuses an authorization request without one, and an id token carrying another login's
//! nonce is refused without anything being stored.
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::sync::{Arc, Mutex};

use flyte_auth_core::{
    Authenticator, CachingAuthenticator, ClientConfig, Endpoint, Error, MemoryStore,
    StaticClientConfigStore, TokenStore,
};
use flyte_auth_oauth::ClientContext;
use flyte_auth_pkce::{BrowserOpener, NonceMismatch, PkceFlow};
use serde_json::json;
use support::*;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

/// base64url without padding, for the test's id tokens.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// An unsigned id token with `claims` (the login does not verify signatures: the token comes
/// from the token endpoint over TLS).
fn id_token(claims: serde_json::Value) -> String {
    format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    )
}

/// The nonce of the last authorization request, as the provider saw it.
type SeenNonce = Arc<Mutex<Option<String>>>;

/// A browser at a strict provider: without a `nonce` in the authorization URL, the provider
/// sends it back with `error=invalid_request&error_description=nonce+required`; with one, it
/// approves with a code.
fn strict_provider(browser: &ScriptedBrowser, seen: &SeenNonce) -> BrowserOpener {
    let seen = Arc::clone(seen);
    browser.opener(move |url, browser| {
        let seen = Arc::clone(&seen);
        async move {
            let state = param(&url, "state").unwrap();
            match param(&url, "nonce") {
                Some(nonce) if !nonce.is_empty() => {
                    *seen.lock().unwrap() = Some(nonce);
                    browser.visit(&approve(&url, "the-code")).await;
                }
                _ => {
                    let refusal = format!(
                        "error=invalid_request&error_description=nonce+required&state={state}"
                    );
                    browser.visit(&callback(&url, &refusal)).await;
                }
            }
        }
    })
}

/// The token endpoint: an id token whose nonce is the one the provider saw, or `fixed`.
#[derive(Clone)]
struct TokenEndpoint {
    seen: SeenNonce,
    fixed: Option<Option<&'static str>>,
}

impl Respond for TokenEndpoint {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let nonce = match self.fixed {
            Some(fixed) => fixed.map(str::to_owned),
            None => self.seen.lock().unwrap().clone(),
        };
        let mut claims =
            json!({"iss": "https://idp.example.org", "sub": "user-1", "aud": "flytectl"});
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-1",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "rt-1",
            "id_token": id_token(claims),
        }))
    }
}

/// A browser login through core's cache and a memory store, against the strict provider
/// whose token endpoint answers with `fixed` as the id token's nonce (`None`: the nonce it
/// saw).
async fn login(
    fixed: Option<Option<&'static str>>,
) -> (
    Result<Arc<flyte_auth_core::Credentials>, Error>,
    Arc<MemoryStore>,
    ScriptedBrowser,
) {
    let idp = MockServer::start().await;
    let seen = SeenNonce::default();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(TokenEndpoint {
            seen: Arc::clone(&seen),
            fixed,
        })
        .mount(&idp)
        .await;
    let config = ClientConfig::new(format!("{}/token", idp.uri()), "flytectl")
        .with_authorization_endpoint(format!("{}/authorize", idp.uri()))
        .with_redirect_uri("http://localhost:0/callback")
        .with_scopes(["openid", "offline_access"]);
    let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org").unwrap())
        .discovery(Arc::new(StaticClientConfigStore::new(config)))
        .build()
        .unwrap();
    let browser = ScriptedBrowser::new();
    let flow = PkceFlow::builder(ctx)
        .browser(strict_provider(&browser, &seen))
        .prompt(RecordedPrompt::default().prompt())
        .timeout(NO_HANG)
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let auth = CachingAuthenticator::builder(flow)
        .store(Arc::clone(&store) as Arc<dyn TokenStore>)
        .build();
    let result = tokio::time::timeout(NO_HANG * 2, auth.get_credentials())
        .await
        .expect("the login does not hang");
    browser.finished().await;
    (result, store, browser)
}

#[tokio::test]
async fn a_provider_that_requires_a_nonce_gets_one_and_its_id_token_is_accepted() {
    let (result, store, browser) = login(None).await;
    let credentials = result.unwrap();
    assert_eq!(credentials.access_token.expose_secret(), "at-1");
    assert!(credentials.id_token.is_some());
    let ep = Endpoint::parse("flyte.example.org").unwrap();
    assert!(
        store.retrieve(&ep).unwrap().is_some(),
        "the login is stored"
    );
    let nonce = param(&browser.last_url(), "nonce").unwrap();
    assert_eq!(nonce.len(), 43, "32 random bytes, base64url: {nonce}");
    assert_ne!(Some(nonce), param(&browser.last_url(), "state"));
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_a_refused_login_and_nothing_is_stored() {
    let (result, store, browser) = login(Some(Some("another-logins-nonce"))).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Other(e) if e.downcast_ref::<NonceMismatch>().is_some()),
        "{err:?}"
    );
    assert!(err.to_string().contains("nonce"), "{err}");
    assert!(!err.to_string().contains("another-logins-nonce"), "{err}");
    let ep = Endpoint::parse("flyte.example.org").unwrap();
    assert!(store.retrieve(&ep).unwrap().is_none(), "nothing is stored");
    // The browser is told the login failed.
    let pages = browser.pages.lock().unwrap().clone();
    assert!(pages.last().unwrap().body.contains("nonce"), "{pages:?}");
}

#[tokio::test]
async fn an_id_token_without_a_nonce_claim_is_accepted() {
    let (result, _, _) = login(Some(None)).await;
    assert_eq!(result.unwrap().access_token.expose_secret(), "at-1");
}
