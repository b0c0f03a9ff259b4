//! `FileStore` on a real file system, with real child processes for the cross-process cases.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
    time::Duration,
};

use common::{capture_logs, child_role, spawn_self};
use flyte_auth_store::{Credentials, Endpoint, FileStore, StoreError, TokenStore};

const ENDPOINT: &str = "flyte.example.org:443";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));
const CHILD_LIMIT: Duration = Duration::from_secs(300);

/// One expiry for every credentials this process builds, an hour after its start, so two
/// built a second apart still compare equal.
static EXPIRES_AT: std::sync::LazyLock<std::time::SystemTime> =
    std::sync::LazyLock::new(|| std::time::SystemTime::now() + Duration::from_secs(3600));

fn full_credentials(tag: &str) -> Credentials {
    Credentials::new(format!("access-{tag}"), EP.key())
        .with_refresh_token(format!("refresh-{tag}"))
        .with_id_token(format!("id-{tag}"))
        .with_expires_in(3600)
        .with_expires_at(*EXPIRES_AT)
        .with_client_id(format!("client-{tag}"))
        .with_scopes(["all", "offline"])
}

#[test]
fn credentials_round_trip_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path().join("tokens"));
    assert_eq!(store.retrieve(&EP).unwrap(), None);

    let creds = full_credentials("1");
    store.store(&EP, &creds).unwrap();
    assert_eq!(store.retrieve(&EP).unwrap(), Some(creds));

    let newer = Credentials::new("access-2", EP.key()).with_expires_in(60);
    store.store(&EP, &newer).unwrap();
    assert_eq!(store.retrieve(&EP).unwrap(), Some(newer));

    store.delete(&EP).unwrap();
    assert_eq!(store.retrieve(&EP).unwrap(), None);
    store.delete(&EP).unwrap(); // nothing to delete is fine
    assert_eq!(store.name(), "file");
}

#[test]
fn the_file_is_versioned_json_holding_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    store.store(&EP, &full_credentials("v")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(store.path_for(&EP)).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["credentials"]["access_token"], "access-v");
    assert_eq!(json["credentials"]["for_endpoint"], EP.key());
    assert_eq!(json["credentials"]["client_id"], "client-v");
}

#[cfg(unix)]
#[test]
fn a_directory_readable_by_others_is_warned_about_once_per_process() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let store = FileStore::in_dir(dir.path());
    let ((), logs) = capture_logs(|| {
        store.store(&EP, &full_credentials("w")).unwrap();
        drop(store.lock(&EP).unwrap());
        assert!(store.retrieve(&EP).unwrap().is_some());
    });
    assert_eq!(
        logs.matches("readable by other users").count(),
        1,
        "one warning for a login's store, read and lock: {logs}"
    );
}

#[cfg(unix)]
#[test]
fn directory_is_0700_and_files_are_0600_with_no_temporary_files_left() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("cache").join("flyte-auth");
    let store = FileStore::in_dir(&tokens);
    store.store(&EP, &full_credentials("p")).unwrap();
    store.store(&EP, &full_credentials("q")).unwrap();
    drop(store.lock(&EP).unwrap());

    assert_eq!(mode(&tokens), 0o700, "token directory");
    assert_eq!(mode(&dir.path().join("cache")), 0o700, "created parent");
    assert_eq!(mode(&store.path_for(&EP)), 0o600, "token file");
    assert_eq!(mode(&store.lock_path_for(&EP)), 0o600, "lock file");

    let mut names: Vec<String> = fs::read_dir(&tokens)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected = [&store.path_for(&EP), &store.lock_path_for(&EP)]
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
    assert_eq!(names, expected, "only the token file and its lock file");
}

#[test]
fn unusable_files_are_no_credentials_with_a_warning_that_shows_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    store.store(&EP, &full_credentials("good")).unwrap();
    let path = store.path_for(&EP);
    let good = fs::read(&path).unwrap();

    let other = FileStore::in_dir(dir.path().join("other"));
    let elsewhere = Endpoint::parse("other.example.org").unwrap();
    other
        .store(
            &elsewhere,
            &Credentials::new("access-other", "other.example.org"),
        )
        .unwrap();
    let foreign = fs::read(other.path_for(&elsewhere)).unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\xffnot json at all".to_vec()),
        ("empty", Vec::new()),
        ("torn write", good[..good.len() / 2].to_vec()),
        (
            "newer format",
            br#"{"version":2,"credentials":{"access_token":"access-v2","for_endpoint":"flyte.example.org:443"}}"#.to_vec(),
        ),
        (
            "no access token",
            br#"{"version":1,"credentials":{"for_endpoint":"flyte.example.org:443"}}"#.to_vec(),
        ),
        ("another endpoint's file", foreign),
    ];
    for (what, bytes) in cases {
        fs::write(&path, &bytes).unwrap();
        let (got, logs) = capture_logs(|| store.retrieve(&EP));
        assert_eq!(got.unwrap(), None, "{what}");
        assert!(logs.contains("WARN"), "{what}: no warning in {logs:?}");
        for token in ["access-good", "refresh-good", "access-v2", "access-other"] {
            assert!(
                !logs.contains(token),
                "{what}: a token reached the log: {logs}"
            );
        }
    }

    // A path that cannot be read as a file at all.
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let (got, logs) = capture_logs(|| store.retrieve(&EP));
    assert_eq!(got.unwrap(), None);
    assert!(logs.contains("WARN"), "{logs}");
    fs::remove_dir(&path).unwrap();

    // The next write replaces a broken file.
    fs::write(&path, b"{broken").unwrap();
    store.store(&EP, &full_credentials("again")).unwrap();
    assert_eq!(
        store.retrieve(&EP).unwrap(),
        Some(full_credentials("again"))
    );
}

#[test]
fn distinct_endpoints_use_distinct_files_and_every_spelling_of_one_shares_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    let endpoints = [
        "flyte.example.org:443",
        "flyte.example.org:8443",
        "flyte.example.org_8443",
        "localhost:30080",
        "[::1]:8089",
    ]
    .map(|e| Endpoint::parse(e).unwrap());
    for (i, endpoint) in endpoints.iter().enumerate() {
        store
            .store(
                endpoint,
                &Credentials::new(format!("token-{i}"), endpoint.key()),
            )
            .unwrap();
    }
    for (i, endpoint) in endpoints.iter().enumerate() {
        let got = store.retrieve(endpoint).unwrap().unwrap();
        assert_eq!(got.access_token.expose_secret(), format!("token-{i}"));
        assert_eq!(got.for_endpoint, endpoint.key());
        assert_eq!(store.path_for(endpoint).parent(), Some(dir.path()));
    }
    let files = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, endpoints.len());

    // Every spelling of a server names the same endpoint.
    for spelling in [
        "dns:///flyte.example.org:443",
        "https://FLYTE.example.org/",
        "flyte.example.org",
    ] {
        let got = store
            .retrieve(&Endpoint::parse(spelling).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(got.access_token.expose_secret(), "token-0", "{spelling}");
    }
}

#[test]
fn store_and_retrieve_work_while_this_process_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    let (done, finished) = mpsc::channel();
    let worker = store.clone();
    thread::spawn(move || {
        let guard = worker.lock(&EP).unwrap().expect("the file store locks");
        worker.store(&EP, &full_credentials("locked")).unwrap();
        let got = worker.retrieve(&EP).unwrap();
        worker.delete(&EP).unwrap();
        drop(guard);
        done.send(got).unwrap();
    });
    let got = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("store/retrieve under the lock did not finish: deadlock");
    assert_eq!(got, Some(full_credentials("locked")));
}

fn role_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("FLYTE_AUTH_STORE_TEST_DIR").expect("the parent sets the directory"),
    )
}

/// In a child: takes the lock with the limit the parent gave and reports what happened.
/// Run directly: the lock excludes a second handle in this very process, with a bounded wait.
#[test]
fn lock_contender() {
    match child_role().as_deref() {
        Some("try") => {
            let store = FileStore::in_dir(role_dir()).with_lock_timeout(Duration::from_millis(300));
            match store.lock(&EP) {
                Err(StoreError::Io {
                    operation: "lock", ..
                }) => {}
                other => panic!("expected the lock to be busy, got {other:?}"),
            }
        }
        Some("wait") => {
            let store = FileStore::in_dir(role_dir()).with_lock_timeout(Duration::from_secs(120));
            let guard = store.lock(&EP).unwrap();
            assert!(guard.is_some());
            println!("acquired");
        }
        Some(other) => panic!("unknown role {other}"),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let store = FileStore::in_dir(dir.path()).with_lock_timeout(Duration::from_millis(200));
            let held = store.lock(&EP).unwrap().expect("the file store locks");
            match store.lock(&EP) {
                Err(
                    e @ StoreError::Io {
                        operation: "lock", ..
                    },
                ) => {
                    assert!(e.to_string().contains("lock"), "{e}");
                }
                other => panic!("a second lock must wait and give up, got {other:?}"),
            }
            // Another endpoint has its own lock.
            let other = Endpoint::parse("other.example.org").unwrap();
            assert!(store.lock(&other).unwrap().is_some());
            drop(held);
            assert!(store.lock(&EP).unwrap().is_some());
        }
    }
}

#[test]
fn the_lock_excludes_other_processes_until_it_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    let env = [("FLYTE_AUTH_STORE_TEST_DIR", OsString::from(dir.path()))];

    let guard = store.lock(&EP).unwrap().expect("the file store locks");
    spawn_self("lock_contender", "try", &env)
        .wait(CHILD_LIMIT)
        .assert_test_passed();

    let mut waiter = spawn_self("lock_contender", "wait", &env);
    thread::sleep(Duration::from_secs(1));
    assert!(
        waiter.is_running(),
        "the other process got the lock while this one held it"
    );
    drop(guard);
    let finished = waiter.wait(CHILD_LIMIT);
    finished.assert_test_passed();
    assert!(finished.stdout.contains("acquired"), "{}", finished.stdout);
}

const ITERATIONS: usize = 200;
const WORKERS: usize = 8;

/// Stores and reads back the same endpoint `ITERATIONS` times, every other time under the
/// lock, checking that each read is whole and self-consistent. In a child, it shares the
/// directory with the other workers; run directly, it works alone.
#[test]
fn concurrent_writer() {
    let (dir, worker, _keep) = match child_role() {
        Some(worker) => (role_dir(), worker, None),
        None => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_owned(), "solo".to_owned(), Some(temp))
        }
    };
    let store = FileStore::in_dir(&dir).with_lock_timeout(Duration::from_secs(120));
    for i in 0..ITERATIONS {
        let tag = format!("{worker}-{i}");
        let guard = if i % 2 == 0 {
            store.lock(&EP).unwrap()
        } else {
            None
        };
        store.store(&EP, &full_credentials(&tag)).unwrap();
        let got = store
            .retrieve(&EP)
            .unwrap()
            .unwrap_or_else(|| panic!("iteration {i}: the file was unreadable or torn"));
        drop(guard);

        // Whatever worker wrote last, the entry must be one complete write.
        let access = got.access_token.expose_secret();
        let seen = access
            .strip_prefix("access-")
            .expect("an access token we wrote");
        assert_eq!(
            got,
            full_credentials(seen).with_expires_at(got.expires_at().unwrap())
        );
        assert_eq!(
            got.refresh_token.unwrap().expose_secret(),
            format!("refresh-{seen}")
        );
        assert_eq!(got.client_id.unwrap(), format!("client-{seen}"));
        assert_eq!(got.scopes, ["all", "offline"]);
    }
    println!("worker {worker} finished {ITERATIONS} iterations");
}

#[test]
fn eight_processes_writing_and_reading_one_endpoint_never_see_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            spawn_self(
                "concurrent_writer",
                &format!("w{w}"),
                &[("FLYTE_AUTH_STORE_TEST_DIR", OsString::from(dir.path()))],
            )
        })
        .collect();
    for worker in workers {
        worker.wait(CHILD_LIMIT).assert_test_passed();
    }
    let last = FileStore::in_dir(dir.path())
        .retrieve(&EP)
        .unwrap()
        .expect("the last write is there");
    assert!(
        last.access_token
            .expose_secret()
            .ends_with(&format!("-{}", ITERATIONS - 1))
    );
}

/// In a child: `FileStore::new()` uses `$FLYTE_AUTH_CACHE_DIR`. Run directly (without the
/// variable): the default directory is `flyte-auth` under the user's cache directory.
#[test]
fn default_directory() {
    let store = FileStore::new().unwrap();
    match child_role().as_deref() {
        Some("env") => {
            let wanted = PathBuf::from(std::env::var_os("FLYTE_AUTH_CACHE_DIR").unwrap());
            assert_eq!(store.dir(), wanted);
            store
                .store(&EP, &Credentials::new("from-env", EP.key()))
                .unwrap();
            assert!(
                wanted
                    .join(store.path_for(&EP).file_name().unwrap())
                    .is_file()
            );
        }
        _ => match std::env::var_os(FileStore::ENV_CACHE_DIR) {
            Some(dir) if !dir.is_empty() => assert_eq!(store.dir(), Path::new(&dir)),
            _ => assert!(
                store.dir().ends_with("flyte-auth"),
                "{}",
                store.dir().display()
            ),
        },
    }
    // An explicit directory wins over everything.
    let explicit = FileStore::open(Some(PathBuf::from("/explicit/dir"))).unwrap();
    assert_eq!(explicit.dir(), Path::new("/explicit/dir"));
}

#[test]
fn the_environment_variable_chooses_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("from-env");
    spawn_self(
        "default_directory",
        "env",
        &[("FLYTE_AUTH_CACHE_DIR", OsString::from(&tokens))],
    )
    .wait(CHILD_LIMIT)
    .assert_test_passed();
    let got = FileStore::in_dir(&tokens).retrieve(&EP).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), "from-env");
}

#[test]
fn debug_output_and_errors_show_no_token() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be: every write fails.
    let blocked = dir.path().join("not-a-dir");
    fs::write(&blocked, b"").unwrap();
    let store = FileStore::in_dir(&blocked);
    let creds = full_credentials("SECRET");
    let (result, logs) = capture_logs(|| store.store(&EP, &creds));
    let err = result.unwrap_err();
    let shown = format!("{err} {err:?} {store:?} {logs}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(
        matches!(
            err,
            StoreError::Io {
                operation: "write",
                ..
            }
        ),
        "{err:?}"
    );
}

/// Runs `f` on a thread and fails the test when it has not returned within `limit` (a hang).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}: it hangs"))
}

/// Whether `err` is the refusal of `path`, saying `why`.
#[cfg(unix)]
fn assert_refused(err: &StoreError, path: &Path, why: &str) {
    let StoreError::Denied { message, .. } = err else {
        panic!("expected Denied, got {err:?}");
    };
    assert!(
        message.contains(&path.display().to_string()) && message.contains(why),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_at_the_lock_path_is_refused_and_its_target_never_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path().join("tokens"));
    fs::create_dir(store.dir()).unwrap();
    let target = dir.path().join("victim-file");
    std::os::unix::fs::symlink(&target, store.lock_path_for(&EP)).unwrap();

    let (result, logs) = capture_logs(|| store.lock(&EP));
    let err = result.unwrap_err();
    assert_refused(&err, &store.lock_path_for(&EP), "symbolic link");
    assert!(logs.contains("WARN"), "{logs}");
    assert!(!target.exists(), "the link's target was created");
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_at_the_token_path_is_never_read_and_a_write_replaces_only_the_link() {
    let dir = tempfile::tempdir().unwrap();
    // A valid token file of the same endpoint elsewhere: following the link would serve it.
    let elsewhere = FileStore::in_dir(dir.path().join("elsewhere"));
    elsewhere
        .store(&EP, &full_credentials("elsewhere"))
        .unwrap();
    let target = elsewhere.path_for(&EP);
    let before = fs::read(&target).unwrap();

    let store = FileStore::in_dir(dir.path().join("tokens"));
    fs::create_dir(store.dir()).unwrap();
    std::os::unix::fs::symlink(&target, store.path_for(&EP)).unwrap();

    let (result, logs) = capture_logs(|| store.retrieve(&EP));
    let err = result.unwrap_err();
    assert_refused(&err, &store.path_for(&EP), "symbolic link");
    assert!(
        logs.contains("WARN") && !logs.contains("access-elsewhere"),
        "{logs}"
    );

    store.store(&EP, &full_credentials("mine")).unwrap();
    assert_eq!(
        fs::read(&target).unwrap(),
        before,
        "the link's target was written"
    );
    assert!(
        !fs::symlink_metadata(store.path_for(&EP))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(store.retrieve(&EP).unwrap(), Some(full_credentials("mine")));
}

#[cfg(unix)]
#[test]
fn a_directory_others_may_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let store = FileStore::in_dir(&tokens);
    store.store(&EP, &full_credentials("before")).unwrap();
    for mode in [0o777, 0o770, 0o1777] {
        fs::set_permissions(&tokens, fs::Permissions::from_mode(mode)).unwrap();
        let err = store.store(&EP, &full_credentials("open")).unwrap_err();
        assert_refused(&err, &tokens, "other users may write to it");
        let err = store.retrieve(&EP).unwrap_err();
        assert_refused(&err, &tokens, "other users may write to it");
        let err = store.lock(&EP).unwrap_err();
        assert_refused(&err, &tokens, "other users may write to it");
    }
    // Made private again, it serves what it held before.
    fs::set_permissions(&tokens, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        store.retrieve(&EP).unwrap(),
        Some(full_credentials("before"))
    );
}

/// The user id of this process, as the owner of a file it creates.
#[cfg(unix)]
fn this_user(dir: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    let probe = dir.join("owner-probe");
    fs::write(&probe, b"").unwrap();
    let uid = fs::metadata(&probe).unwrap().uid();
    fs::remove_file(&probe).unwrap();
    uid
}

#[cfg(unix)]
#[test]
fn a_directory_or_a_file_of_another_user_is_refused() {
    const NOBODY: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    if this_user(dir.path()) != 0 {
        // Not root: `/` belongs to root, which is another user.
        let store = FileStore::in_dir("/");
        let err = store.retrieve(&EP).unwrap_err();
        assert_refused(&err, Path::new("/"), "belongs to user id 0");
        return;
    }
    // Root may give a directory away: one of `nobody` is refused, even to root.
    let tokens = dir.path().join("tokens");
    let store = FileStore::in_dir(&tokens);
    store.store(&EP, &full_credentials("before")).unwrap();
    std::os::unix::fs::chown(&tokens, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = store.store(&EP, &full_credentials("theirs")).unwrap_err();
    assert_refused(&err, &tokens, "belongs to user id 65534");
    let err = store.retrieve(&EP).unwrap_err();
    assert_refused(&err, &tokens, "belongs to user id 65534");
    let err = store.lock(&EP).unwrap_err();
    assert_refused(&err, &tokens, "belongs to user id 65534");

    // In a directory of this user, a token or lock file of another user is refused too.
    std::os::unix::fs::chown(&tokens, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(store.path_for(&EP), Some(NOBODY), None).unwrap();
    let err = store.retrieve(&EP).unwrap_err();
    assert_refused(&err, &store.path_for(&EP), "belongs to user id 65534");
    fs::write(store.lock_path_for(&EP), b"").unwrap();
    std::os::unix::fs::chown(store.lock_path_for(&EP), Some(NOBODY), None).unwrap();
    let err = store.lock(&EP).unwrap_err();
    assert_refused(&err, &store.lock_path_for(&EP), "belongs to user id 65534");
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[cfg(unix)]
#[test]
fn a_fifo_at_the_token_or_lock_path_stalls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    mkfifo(&store.path_for(&EP));
    let limit = Duration::from_secs(10);

    let reader = store.clone();
    let (result, logs) = within(limit, "retrieve", move || {
        capture_logs(|| reader.retrieve(&EP))
    });
    assert_eq!(result.unwrap(), None);
    assert!(
        logs.contains("WARN")
            && logs.contains("FIFO")
            && logs.contains(&store.path_for(&EP).display().to_string()),
        "{logs}"
    );

    // A write replaces it, and what it wrote is read back.
    let writer = store.clone();
    within(limit, "store", move || {
        writer.store(&EP, &full_credentials("after")).unwrap();
    });
    assert_eq!(
        store.retrieve(&EP).unwrap(),
        Some(full_credentials("after"))
    );

    mkfifo(&store.lock_path_for(&EP));
    let locker = store.clone();
    let err = within(limit, "lock", move || locker.lock(&EP).map(drop)).unwrap_err();
    assert_refused(&err, &store.lock_path_for(&EP), "FIFO");
}

/// Plants a temporary file as a write of `store` killed after it wrote leaves it, last
/// modified `age` ago.
fn plant_temp(store: &FileStore, endpoint: &Endpoint, pid: u32, age: Duration) -> PathBuf {
    let path = store.path_for(endpoint);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let temp = path.with_file_name(format!(".{name}.{pid}.0.tmp"));
    let file = fs::File::create(&temp).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
    temp
}

#[test]
fn temporary_files_of_killed_writes_are_removed_by_the_next_write_or_lock_once_a_minute_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    store.store(&EP, &full_credentials("first")).unwrap();
    let old = Duration::from_secs(120);
    let young = Duration::from_secs(5);

    let stale = plant_temp(&store, &EP, 4_000_001, old);
    let in_progress = plant_temp(&store, &EP, 4_000_002, young);
    let other_endpoint = plant_temp(
        &store,
        &Endpoint::parse("other.example.org:443").unwrap(),
        4_000_003,
        old,
    );
    store.store(&EP, &full_credentials("second")).unwrap();
    assert!(!stale.exists(), "an old temporary file was left");
    assert!(in_progress.exists(), "a write in progress lost its file");
    assert!(
        other_endpoint.exists(),
        "another endpoint's file was touched"
    );

    let stale = plant_temp(&store, &EP, 4_000_004, old);
    drop(store.lock(&EP).unwrap());
    assert!(!stale.exists(), "the lock left an old temporary file");
    assert!(in_progress.exists());
    assert_eq!(
        store.retrieve(&EP).unwrap(),
        Some(full_credentials("second"))
    );
}

#[test]
fn a_file_naming_its_endpoint_in_another_spelling_is_read_for_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::in_dir(dir.path());
    store.store(&EP, &full_credentials("older")).unwrap();
    // As an earlier version (or a program on the store alone) may have written it.
    let path = store.path_for(&EP);
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["credentials"]["for_endpoint"] = "dns:///FLYTE.example.org:443".into();
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();

    let got = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(got.access_token.expose_secret(), "access-older");
    assert_eq!(got.for_endpoint, EP.key());
}
