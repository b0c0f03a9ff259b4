#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests")]
//! Credentials files that someone else could have put in place: a FIFO never stalls a login,
//! and gcloud's file found on disk is used only when it is the user's own (the tests run as
//! root, who can give a file to `nobody`), while a file the user names is read as named.

use std::{
    io,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use flyte_auth_core::{Error, TokenFlow as _};
use flyte_auth_google::{ADC_FILE_NAME, GoogleIdTokenFlow, Source, Sources};
use flyte_auth_oauth::{HttpSettings, OAuthClient};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

const AUDIENCE: &str = "123-iap.apps.googleusercontent.com";
const NOBODY: u32 = 65534;

fn flow(sources: Sources) -> GoogleIdTokenFlow {
    GoogleIdTokenFlow::builder(AUDIENCE)
        .http_client(OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap())
        .sources(sources)
        .build()
        .unwrap()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn give_to_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap_or_else(|e| {
        panic!(
            "chown {} to nobody: {e} (the tests run as root)",
            path.display()
        )
    });
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

/// gcloud's user credentials, as `gcloud auth application-default login` leaves them (`0600`).
fn user_credentials(file: &Path) {
    let creds = json!({
        "type": "authorized_user",
        "client_id": "764086051850-gcloud.apps.googleusercontent.com",
        "client_secret": "gcloud-client-secret",
        "refresh_token": "1//user-refresh-token",
    });
    std::fs::write(file, creds.to_string()).unwrap();
    chmod(file, 0o600);
}

/// A token endpoint that answers `expect` refreshes with an ID token.
async fn token_endpoint(expect: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.user-access-token",
            "id_token": "header.payload.signature",
        })))
        .expect(expect)
        .mount(&server)
        .await;
    server
}

/// Appends what the log writes to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// gcloud's directory (in a fresh temporary directory) with `plant` done to its credentials
/// file: the login skips the file with a warning naming it and `reason`; once the file is the
/// user's own `0600` file again, the same login uses it.
async fn planted_gcloud_file_is_skipped(plant: impl FnOnce(&Path), reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let gcloud = dir.path().join("gcloud");
    std::fs::create_dir(&gcloud).unwrap();
    let file = gcloud.join(ADC_FILE_NAME);
    user_credentials(&file);
    plant(&file);

    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = token_endpoint(0).await;
    let sources = Sources::none()
        .gcloud_config_dir(&gcloud)
        .user_token_uri(format!("{}/token", server.uri()));
    let err = flow(sources.clone()).login().await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("no Google credentials"), "{err}");
    let logged = logs.text();
    assert!(
        logged.contains("skipping gcloud's credentials file"),
        "{logged}"
    );
    assert!(logged.contains(&file.display().to_string()), "{logged}");
    assert!(logged.contains(reason), "{logged}");
    drop(server);

    // The control: the user's own file at the same place is used.
    let _ = std::fs::remove_file(&file);
    user_credentials(&file);
    let server = token_endpoint(1).await;
    let flow = flow(sources.user_token_uri(format!("{}/token", server.uri())));
    flow.login().await.unwrap();
    assert_eq!(flow.source(), Some(Source::GcloudUser));
}

#[tokio::test]
async fn gcloud_credentials_of_another_user_are_skipped() {
    planted_gcloud_file_is_skipped(give_to_nobody, "belongs to user id 65534").await;
}

#[tokio::test]
async fn gcloud_credentials_others_may_write_to_are_skipped() {
    planted_gcloud_file_is_skipped(|file| chmod(file, 0o620), "other users may write to it").await;
    planted_gcloud_file_is_skipped(|file| chmod(file, 0o602), "mode 602").await;
}

#[tokio::test]
async fn a_link_as_gcloud_credentials_is_skipped_not_followed() {
    planted_gcloud_file_is_skipped(
        |file| {
            // The user's own credentials elsewhere: following the link would use them.
            let elsewhere = file.with_file_name("elsewhere.json");
            std::fs::rename(file, &elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, file).unwrap();
        },
        "symbolic link",
    )
    .await;
}

#[tokio::test]
async fn a_fifo_as_gcloud_credentials_is_skipped_without_waiting() {
    let started = Instant::now();
    planted_gcloud_file_is_skipped(
        |file| {
            std::fs::remove_file(file).unwrap();
            mkfifo(file);
        },
        "it is a FIFO",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A file the user names is the user's choice: read through a link, whoever owns it and
/// whoever may write to it.
#[tokio::test]
async fn a_named_credentials_file_is_read_as_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("theirs.json");
    user_credentials(&file);
    give_to_nobody(&file);
    chmod(&file, 0o666);
    let link = dir.path().join("named.json");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let server = token_endpoint(1).await;
    // gcloud's file, which would be used next, does not exist.
    let sources = Sources::none()
        .key_file(&link)
        .gcloud_config_dir(dir.path().join("gcloud"))
        .user_token_uri(format!("{}/token", server.uri()));
    let flow = flow(sources);
    flow.login().await.unwrap();
    assert_eq!(flow.source(), Some(Source::KeyFile));
}

/// The credentials path swapped between a regular file and a FIFO while logins read it, as
/// someone who can write the directory could: no read waits on the FIFO. (Checking the path
/// and then opening it would, when the swap falls between the two.)
#[test]
fn a_fifo_swapped_in_at_the_credentials_path_never_stalls_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let regular = dir.path().join("regular");
    std::fs::write(&regular, r#"{"type": "none"}"#).unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let named: PathBuf = dir.path().join("credentials.json");
    std::fs::hard_link(&regular, &named).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, named, temp) = (stop.clone(), named.clone(), dir.path().join("next"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for source in [&fifo, &regular] {
                    let _ = std::fs::remove_file(&temp);
                    std::fs::hard_link(source, &temp).unwrap();
                    std::fs::rename(&temp, &named).unwrap();
                }
            }
        })
    };
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let flow = flow(Sources::none().key_file(&named));
        let (mut fifos, mut files, mut others) = (0, 0, Vec::new());
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            let err = runtime.block_on(flow.login()).unwrap_err().to_string();
            if err.contains("it is a FIFO") {
                fifos += 1;
            } else if err.contains("is of type `none`") {
                files += 1;
            } else {
                others.push(err);
            }
        }
        let _ = done.send((fifos, files, others));
    });
    let seen = finished.recv_timeout(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    let (fifos, files, others) = seen.expect("a login waits on the FIFO");
    assert!(others.is_empty(), "{others:?}");
    swapper.join().unwrap();
    assert!(fifos > 0 && files > 0, "{fifos} FIFOs, {files} files");
}
