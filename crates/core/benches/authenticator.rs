//! Speed of the credential cache: the per-call hot path, a cached `get_credentials`, and a
//! thousand tasks arriving at once on an expired token.
//!
//! Run with `cargo bench -p flyte-auth-core` (or `cargo xtask bench`, which also runs the
//! end-to-end comparisons). That the hot path allocates nothing is asserted by
//! `tests/no_alloc.rs`, not timed here.

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use criterion::{Criterion, criterion_group, criterion_main};
use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error, MemoryStore,
    TokenFlow, TokenStore,
};
use futures_util::FutureExt as _;

const ENDPOINT: &str = "flyte.example.org:443";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));

/// How many tasks ask for credentials at once in the single-flight benchmark.
const TASKS: usize = 1000;

/// A flow that answers at once (after one yield, as a network answer would arrive on a later
/// poll) and counts what it was asked to do.
#[derive(Debug, Default)]
struct CountingFlow {
    logins: AtomicUsize,
    refreshes: AtomicUsize,
}

impl TokenFlow for CountingFlow {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            self.logins.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Credentials::new("login-token", ENDPOINT)
                .with_refresh_token("refresh")
                .with_expires_in(3600))
        })
    }

    fn refresh<'a>(
        &'a self,
        _current: &'a Credentials,
    ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
        Some(Box::pin(async move {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Credentials::new("refreshed-token", ENDPOINT).with_expires_in(3600))
        }))
    }
}

/// An authenticator holding a fresh token.
fn fresh_authenticator(
    rt: &tokio::runtime::Runtime,
) -> Arc<CachingAuthenticator<Arc<CountingFlow>>> {
    let auth = Arc::new(CachingAuthenticator::builder(Arc::new(CountingFlow::default())).build());
    rt.block_on(auth.get_credentials())
        .expect("the counting flow always logs in");
    auth
}

/// An authenticator whose store holds an expired token with a refresh token: the next
/// `get_credentials` refreshes.
fn expired_authenticator() -> (
    Arc<CachingAuthenticator<Arc<CountingFlow>>>,
    Arc<CountingFlow>,
) {
    let store = Arc::new(MemoryStore::new());
    store
        .store(
            &EP,
            &Credentials::new("stale", ENDPOINT)
                .with_refresh_token("old-refresh")
                .with_expires_at(SystemTime::now() - Duration::from_secs(60)),
        )
        .expect("the memory store accepts everything");
    let flow = Arc::new(CountingFlow::default());
    let auth = CachingAuthenticator::builder(Arc::clone(&flow))
        .store(store)
        .build();
    (Arc::new(auth), flow)
}

/// Spawns [`TASKS`] tasks that each get credentials, and waits for all of them.
async fn thousand_tasks(auth: &Arc<CachingAuthenticator<Arc<CountingFlow>>>) {
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let auth = Arc::clone(auth);
            tokio::spawn(async move { auth.get_credentials().await })
        })
        .collect();
    for task in tasks {
        let credentials = task
            .await
            .expect("the task does not panic")
            .expect("the refresh succeeds");
        black_box(credentials);
    }
}

fn hot_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let auth = fresh_authenticator(&rt);
    let dynamic: Arc<dyn Authenticator> = auth.clone();

    let mut group = c.benchmark_group("authenticator");
    group.bench_function("fetch_grpc_call_auth_metadata", |b| {
        b.iter(|| {
            black_box(&auth)
                .fetch_grpc_call_auth_metadata()
                .expect("the token is fresh")
        });
    });
    group.bench_function("fetch_grpc_call_auth_metadata_dyn", |b| {
        b.iter(|| {
            black_box(&dynamic)
                .fetch_grpc_call_auth_metadata()
                .expect("the token is fresh")
        });
    });
    group.bench_function("get_credentials_fresh", |b| {
        b.iter(|| {
            black_box(&auth)
                .get_credentials()
                .now_or_never()
                .expect("a fresh token is returned without waiting")
                .expect("the token is fresh")
        });
    });
    group.finish();
}

fn single_flight(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime");

    // Once, outside any timing: the thousand tasks cause exactly one token request.
    let (auth, flow) = expired_authenticator();
    rt.block_on(thousand_tasks(&auth));
    assert_eq!(flow.refreshes.load(Ordering::SeqCst), 1, "one refresh");
    assert_eq!(flow.logins.load(Ordering::SeqCst), 0, "no login");

    let mut group = c.benchmark_group("single_flight");
    group.sample_size(20);
    group.bench_function("expired_token_1000_tasks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (auth, _flow) = expired_authenticator();
                let started = Instant::now();
                rt.block_on(thousand_tasks(&auth));
                total += started.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = hot_path, single_flight
}
criterion_main!(benches);
