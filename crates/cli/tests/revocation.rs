//! `flyte-auth logout` ends the login at the provider too (RFC 7009): the refresh token it
//! kept is revoked before the stored login is deleted, and a revocation that cannot be made
//! still deletes it and says so. Against the local OpenID provider of `flyte-auth-tests`
//! (`npm ci --prefix tests/idp` once), which announces its `revocation_endpoint`.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with the value in the message"
)]

mod support;

use std::time::Duration;

use flyte_auth::{
    SecretString,
    oauth::{ClientAuth, HttpSettings, OAuthClient, TokenRequest},
};
use flyte_auth_store::{Endpoint, FileStore, TokenStore};
use flyte_auth_tests::{FLYTECTL, Idp};
use support::{User, device_login};

/// The refresh token of the login `user` keeps for `idp`.
fn stored_refresh_token(idp: &Idp, user: &User) -> SecretString {
    let endpoint = Endpoint::parse(&idp.config_endpoint()).unwrap();
    FileStore::in_dir(user.cache_dir())
        .retrieve(&endpoint)
        .unwrap()
        .expect("a stored login")
        .refresh_token
        .expect("a refresh token")
}

/// What the provider answers a refresh grant with `refresh_token`.
async fn refresh_with(idp: &Idp, refresh_token: SecretString) -> Result<(), flyte_auth::Error> {
    let client = OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap();
    let request = TokenRequest::refresh_token(
        idp.token_endpoint().as_str(),
        ClientAuth::public(FLYTECTL),
        refresh_token,
    );
    client.token(&request).await.map(|_| ())
}

async fn device_idp() -> Idp {
    Idp::builder()
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await
}

#[tokio::test]
async fn after_logout_the_old_refresh_token_is_refused_by_the_provider() {
    let idp = device_idp().await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);
    let out = device_login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    let refresh_token = stored_refresh_token(&idp, &user);

    let out = user.run(&["logout"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("the refresh token was revoked at the server"),
        "{out:?}"
    );
    assert!(out.stderr.contains("file store"), "{out:?}");
    assert!(user.cached_files().is_empty(), "{out:?}");

    let refused = refresh_with(&idp, refresh_token).await.unwrap_err();
    let oauth = refused.oauth().expect("an OAuth error");
    assert_eq!(oauth.code.as_str(), "invalid_grant", "{refused}");
}

/// `login` replaces a stored login: the refresh token it replaces is revoked first, as by
/// `logout`, so a copy of it is no longer a login.
#[tokio::test]
async fn a_second_login_revokes_the_refresh_token_it_replaces() {
    let idp = device_idp().await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);
    let out = device_login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    let first = stored_refresh_token(&idp, &user);

    let out = device_login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(!out.stderr.contains("could not be revoked"), "{out:?}");
    let second = stored_refresh_token(&idp, &user);
    assert_ne!(first.expose_secret(), second.expose_secret());

    let refused = refresh_with(&idp, first).await.unwrap_err();
    let oauth = refused.oauth().expect("an OAuth error");
    assert_eq!(oauth.code.as_str(), "invalid_grant", "{refused}");
    refresh_with(&idp, second).await.unwrap();
}

/// A revocation that fails does not stop the new login: it is a note on stderr.
#[tokio::test]
async fn a_login_whose_old_token_cannot_be_revoked_still_logs_in_and_says_so() {
    let idp = device_idp().await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);
    let out = device_login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    let endpoint = Endpoint::parse(&idp.config_endpoint()).unwrap();
    // A login the provider never issued: its revocation is refused (invalid client).
    let store = FileStore::in_dir(user.cache_dir());
    let stored = store.retrieve(&endpoint).unwrap().unwrap();
    store
        .store(&endpoint, &stored.with_client_id("no-such-client"))
        .unwrap();

    let out = device_login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("Note: replacing the stored login")
            && out.stderr.contains("could not be revoked"),
        "{out:?}"
    );
    assert!(out.stderr.contains("Logged in to"), "{out:?}");
}

#[tokio::test]
async fn a_revocation_that_cannot_be_made_still_deletes_the_login_and_says_so() {
    let idp = device_idp().await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);
    let out = device_login(&idp, &user, &["login"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(user.cached_files().len(), 1);

    // The provider is gone: neither discovery nor the revocation can be made.
    drop(idp);
    let out = user.run(&["logout", "--timeout", "5"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("could not be revoked at the server"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("stored credentials were removed from the file store"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("the refresh token was revoked"),
        "{out:?}"
    );
    assert!(user.cached_files().is_empty(), "{out:?}");
}

#[tokio::test]
async fn a_logout_with_nothing_stored_names_the_store_it_looked_in() {
    let idp = device_idp().await;
    let user = User::of(&idp).args(["--auth-mode", "DeviceFlow"]);
    let out = user.run(&["logout"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("Nothing was stored for") && out.stderr.contains("file store"),
        "{out:?}"
    );
    let stats = idp.stats().await;
    assert!(
        stats.requests.iter().all(|r| !r.path.starts_with("/token")),
        "nothing to revoke, yet {:?}",
        stats.requests
    );
}
