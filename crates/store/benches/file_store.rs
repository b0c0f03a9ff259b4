//! Speed of `FileStore`: reading a stored token (what every new process does once), writing
//! one (atomic replace with `fsync`, after each login or refresh), and taking and releasing
//! the cross-process lock around a refresh.
//!
//! Run with `cargo bench -p flyte-auth-store` (or `cargo xtask bench`). The files live in a
//! temporary directory under `$TMPDIR` (`/tmp` by default), so the write numbers are those of
//! that file system's `fsync`.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use flyte_auth_store::{Credentials, Endpoint, FileStore, TokenStore};

const ENDPOINT: &str = "flyte.example.org:443";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));

/// Credentials of a realistic size: a JWT-sized access token, a refresh token, an id token.
fn credentials() -> Credentials {
    Credentials::new("a".repeat(900), ENDPOINT)
        .with_refresh_token("r".repeat(120))
        .with_id_token("i".repeat(800))
        .with_expires_in(3600)
        .with_client_id("flytectl")
        .with_scopes(["all", "offline"])
}

fn file_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = FileStore::in_dir(dir.path());
    let credentials = credentials();
    store
        .store(&EP, &credentials)
        .expect("the temporary directory is writable");

    let missing = Endpoint::parse("nothing.example.org:443").expect("a valid endpoint");
    let mut group = c.benchmark_group("file_store");
    group.bench_function("retrieve", |b| {
        b.iter(|| {
            store
                .retrieve(black_box(&*EP))
                .expect("the token file is readable")
                .expect("a token was stored")
        });
    });
    group.bench_function("retrieve_missing", |b| {
        b.iter(|| {
            store
                .retrieve(black_box(&missing))
                .expect("a missing file is not an error")
        });
    });
    group.bench_function("store", |b| {
        b.iter(|| {
            store
                .store(black_box(&EP), black_box(&credentials))
                .expect("the temporary directory is writable");
        });
    });
    group.bench_function("lock_unlock", |b| {
        b.iter(|| {
            let guard = store.lock(black_box(&EP)).expect("nobody else holds it");
            drop(black_box(guard));
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = file_store
}
criterion_main!(benches);
