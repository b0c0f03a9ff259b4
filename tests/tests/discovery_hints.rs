//! The discovery flavour and answer remembered across processes, through the factory, against
//! the provider in both modes (flyteadmin and Flyte 2): the second cold start sends no
//! discovery request (the answer is kept), one with the flavour alone only the two requests
//! the server answers; a corrupt hint is ignored, a wrong one (the server changed
//! generation) still logs in and is corrected; the hint goes next to the token store's files,
//! where the program says, or nowhere.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{future::Future, path::Path, sync::Arc, time::Duration};

use flyte_auth::{
    AuthMode, Authenticator, DiscoveryFlavour, DiscoveryHints, FactoryOptions, MemoryStore,
    PlatformConfig, TokenStore, get_authenticator_with,
};
use flyte_auth_store::{DiscoveryHintFiles, FileStore};
use flyte_auth_tests::{BASIC_CLIENT, GRANT_CLIENT_CREDENTIALS, Idp, file_names_ending_with};

const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const V1_CLIENT: &str = "/config/v1/flyte_client";
const CONNECT_CLIENT: &str = "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig";
const CONNECT_METADATA: &str = "/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata";

/// Bounds every login: a bug shows as a failure, not a hang.
const NO_HANG: Duration = Duration::from_secs(60);

async fn idp(flyte2: bool) -> Idp {
    let builder = Idp::builder();
    if flyte2 { builder.flyte2() } else { builder }
        .start()
        .await
}

/// Client credentials at the fixture, plain HTTP on loopback, discovery needed.
fn config(idp: &Idp) -> PlatformConfig {
    PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(format!("http://{}", idp.host_port()))
        .auth_mode(AuthMode::ClientSecret)
        .client_id(BASIC_CLIENT.id())
        .client_secret(BASIC_CLIENT.secret())
        .build()
        .unwrap()
}

/// One process-like start: a fresh factory call (no discovery in memory), a login.
async fn start(cfg: &PlatformConfig, store: Arc<dyn TokenStore>, options: &FactoryOptions) {
    let auth = get_authenticator_with(cfg, Some(store), options).unwrap();
    let creds = tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .expect("the login does not hang")
        .unwrap();
    assert!(!creds.access_token.expose_secret().is_empty());
}

/// The discovery requests since the last reset, sorted (those sent at once have no order).
async fn discovery_requests(idp: &Idp) -> Vec<String> {
    let mut paths: Vec<String> = idp
        .stats()
        .await
        .requests
        .into_iter()
        .map(|r| r.path)
        .filter(|p| [WELL_KNOWN, V1_CLIENT, CONNECT_CLIENT, CONNECT_METADATA].contains(&p.as_str()))
        .collect();
    paths.sort();
    paths
}

fn sorted(paths: &[&str]) -> Vec<String> {
    let mut paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
    paths.sort();
    paths
}

/// What a server of this generation answers.
fn answered(flyte2: bool) -> Vec<String> {
    if flyte2 {
        sorted(&[CONNECT_CLIENT, CONNECT_METADATA])
    } else {
        sorted(&[WELL_KNOWN, V1_CLIENT])
    }
}

/// Nothing known: `.well-known`, the v1 client config and the Connect client config at once.
fn cold() -> Vec<String> {
    sorted(&[WELL_KNOWN, V1_CLIENT, CONNECT_CLIENT])
}

/// Logs out (the next start must log in, and so discover) and forgets the requests so far.
async fn logout(idp: &Idp, cfg: &PlatformConfig, dir: &Path) {
    FileStore::in_dir(dir).delete(cfg.endpoint()).unwrap();
    idp.reset_stats().await;
}

async fn both_modes<F: Future<Output = ()>>(test: impl Fn(bool) -> F) {
    test(false).await;
    test(true).await;
}

#[tokio::test]
async fn the_second_cold_start_asks_only_the_flavour_that_answered() {
    both_modes(|flyte2| async move {
        let idp = idp(flyte2).await;
        let cfg = config(&idp);
        let dir = tempfile::tempdir().unwrap();
        let options = FactoryOptions::new();

        start(&cfg, Arc::new(FileStore::in_dir(dir.path())), &options).await;
        assert_eq!(discovery_requests(&idp).await, cold(), "flyte2: {flyte2}");
        // Kept next to the token file, by default.
        assert_eq!(
            file_names_ending_with(dir.path(), ".discovery").len(),
            1,
            "flyte2: {flyte2}"
        );
        let want = if flyte2 {
            DiscoveryFlavour::Flyte2
        } else {
            DiscoveryFlavour::FlyteAdmin
        };
        let hints = DiscoveryHintFiles::in_dir(dir.path());
        assert_eq!(hints.recall(cfg.endpoint().key()), Some(want));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let path = hints.path_for(cfg.endpoint().key());
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // The answer is kept with the flavour: the next start asks nothing.
        logout(&idp, &cfg, dir.path()).await;
        start(&cfg, Arc::new(FileStore::in_dir(dir.path())), &options).await;
        assert!(
            discovery_requests(&idp).await.is_empty(),
            "flyte2: {flyte2}"
        );
        assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);

        // The flavour alone: only its two requests.
        hints.remember(cfg.endpoint().key(), want).unwrap();
        logout(&idp, &cfg, dir.path()).await;
        start(&cfg, Arc::new(FileStore::in_dir(dir.path())), &options).await;
        assert_eq!(
            discovery_requests(&idp).await,
            answered(flyte2),
            "flyte2: {flyte2}"
        );
        assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_hint_is_ignored_and_rewritten() {
    let idp = idp(true).await;
    let cfg = config(&idp);
    let dir = tempfile::tempdir().unwrap();
    let hints = DiscoveryHintFiles::in_dir(dir.path());
    let path = hints.path_for(cfg.endpoint().key());
    for corrupt in [
        &b"{\"version\":1,\"endpoint\":"[..],
        b"\xff\xfe not text",
        b"",
    ] {
        std::fs::write(&path, corrupt).unwrap();
        idp.reset_stats().await;
        start(
            &cfg,
            Arc::new(MemoryStore::new()),
            &FactoryOptions::new().discovery_hints(Arc::new(hints.clone())),
        )
        .await;
        assert_eq!(discovery_requests(&idp).await, cold());
        assert_eq!(
            hints.recall(cfg.endpoint().key()),
            Some(DiscoveryFlavour::Flyte2)
        );
    }
}

#[tokio::test]
async fn a_wrong_hint_still_logs_in_and_is_corrected() {
    both_modes(|flyte2| async move {
        let idp = idp(flyte2).await;
        let cfg = config(&idp);
        let dir = tempfile::tempdir().unwrap();
        let hints = DiscoveryHintFiles::in_dir(dir.path());
        let (wrong, right) = if flyte2 {
            (DiscoveryFlavour::FlyteAdmin, DiscoveryFlavour::Flyte2)
        } else {
            (DiscoveryFlavour::Flyte2, DiscoveryFlavour::FlyteAdmin)
        };
        // The server changed generation since the hint was written.
        hints.remember(cfg.endpoint().key(), wrong).unwrap();

        let store = || Arc::new(FileStore::in_dir(dir.path())) as Arc<dyn TokenStore>;
        start(&cfg, store(), &FactoryOptions::new()).await;
        // The remembered flavour's requests (the second of the two may be cancelled once
        // the first is refused), then the other's two.
        let sent = discovery_requests(&idp).await;
        for path in answered(flyte2) {
            assert!(sent.contains(&path), "flyte2: {flyte2}: {sent:?}");
        }
        let not_served = if flyte2 { V1_CLIENT } else { CONNECT_CLIENT };
        let not_served_too = if flyte2 { WELL_KNOWN } else { CONNECT_METADATA };
        assert!(
            sent.iter().any(|p| p == not_served || p == not_served_too),
            "the wrong hint was not tried first: {sent:?}"
        );
        assert!(sent.len() <= 4, "flyte2: {flyte2}: {sent:?}");
        assert_eq!(hints.recall(cfg.endpoint().key()), Some(right));

        // Corrected, with the answer: the next start asks nothing.
        logout(&idp, &cfg, dir.path()).await;
        start(&cfg, store(), &FactoryOptions::new()).await;
        assert!(
            discovery_requests(&idp).await.is_empty(),
            "flyte2: {flyte2}"
        );
    })
    .await;
}

#[tokio::test]
async fn hints_go_where_the_program_says_or_nowhere() {
    let idp = idp(true).await;
    let cfg = config(&idp);

    // A memory store keeps nothing on disk, but the program may name a place.
    let elsewhere = tempfile::tempdir().unwrap();
    let options = FactoryOptions::new()
        .discovery_hints(Arc::new(DiscoveryHintFiles::in_dir(elsewhere.path())));
    start(&cfg, Arc::new(MemoryStore::new()), &options).await;
    assert_eq!(
        file_names_ending_with(elsewhere.path(), ".discovery").len(),
        1
    );
    idp.reset_stats().await;
    start(&cfg, Arc::new(MemoryStore::new()), &options).await;
    assert!(
        discovery_requests(&idp).await.is_empty(),
        "the answer is kept"
    );

    // Turned off: nothing next to the token file, and every start asks both generations.
    let dir = tempfile::tempdir().unwrap();
    let off = FactoryOptions::new().no_discovery_hints();
    for _ in 0..2 {
        idp.reset_stats().await;
        start(&cfg, Arc::new(FileStore::in_dir(dir.path())), &off).await;
        assert_eq!(discovery_requests(&idp).await, cold());
        FileStore::in_dir(dir.path())
            .delete(cfg.endpoint())
            .unwrap();
    }
    assert!(file_names_ending_with(dir.path(), ".discovery").is_empty());
}
