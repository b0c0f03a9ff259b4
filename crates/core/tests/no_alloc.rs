//! The hot path allocates nothing: `fetch_grpc_call_auth_metadata` on a fresh token, counted
//! by a global allocator that tallies the allocations of the calling thread.

#![allow(
    unsafe_code,
    reason = "a counting global allocator must implement the unsafe GlobalAlloc trait; it only forwards to the system allocator"
)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::Arc,
};

use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error, TokenFlow,
};
use futures_util::FutureExt as _;
use http::HeaderName;

/// Forwards to the system allocator and counts, per thread, how many allocations were made.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: during thread teardown the counter may be gone; such allocations are not ours.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const ENDPOINT: &str = "flyte.example.org:443";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));
const CALLS: usize = 10_000;

#[derive(Debug)]
struct Fixed {
    header: Option<HeaderName>,
}

impl TokenFlow for Fixed {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async {
            Ok(Credentials::new("a-fresh-access-token", ENDPOINT).with_expires_in(3600))
        })
    }

    fn header_name(&self) -> Option<HeaderName> {
        self.header.clone()
    }
}

/// An authenticator with a fresh token, logged in and warmed up on this thread.
fn logged_in(header: Option<HeaderName>) -> Arc<dyn Authenticator> {
    let auth: Arc<dyn Authenticator> =
        Arc::new(CachingAuthenticator::builder(Fixed { header }).build());
    auth.get_credentials()
        .now_or_never()
        .expect("the fixed flow answers at once")
        .unwrap();
    // The first call on a thread may set up per-thread state (arc-swap's debt list, the first
    // shared clone of the header's bytes); what must not allocate is every call after it.
    auth.fetch_grpc_call_auth_metadata()
        .expect("the token is fresh");
    auth
}

#[test]
fn fetch_grpc_call_auth_metadata_allocates_nothing_on_a_fresh_token() {
    for header in [None, Some(HeaderName::from_static("flyte-authorization"))] {
        let auth = logged_in(header.clone());
        let mut served = 0;
        let allocations = allocations_during(|| {
            for _ in 0..CALLS {
                let header = auth
                    .fetch_grpc_call_auth_metadata()
                    .expect("the token is fresh");
                served += usize::from(!header.value().is_empty());
            }
        });
        assert_eq!(served, CALLS);
        assert_eq!(
            allocations, 0,
            "{allocations} allocations in {CALLS} calls with header {header:?}"
        );
        // The header is the one the cache built, not an empty or default one.
        let header_sent = auth.fetch_grpc_call_auth_metadata().unwrap();
        assert_eq!(
            header_sent.value().to_str().unwrap(),
            "Bearer a-fresh-access-token"
        );
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Proves the allocator is installed and counting, so that zero above means zero.
    let allocations = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
        std::hint::black_box(v);
    });
    assert_eq!(allocations, 1);
}
