//! `FileStore`'s token file, which anyone with access to the cache directory (or a full disk,
//! or another version of the program) may have left in any state: `retrieve` on the fuzzer's
//! bytes.
//!
//! Input: the file's bytes.
//! Checked: no panic; reading never fails (an unusable file is "no credentials"); what is
//! read is for the endpoint asked for and survives a store-and-retrieve round trip.
#![no_main]

use std::sync::OnceLock;

use flyte_auth_store::{FileStore, TokenStore};
use libfuzzer_sys::fuzz_target;

const ENDPOINT: &str = "flyte.example.org:443";

fn store() -> &'static FileStore {
    static STORE: OnceLock<FileStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("flyte-auth-fuzz-token-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        FileStore::in_dir(dir)
    })
}

fuzz_target!(|input: &[u8]| {
    let store = store();
    std::fs::write(store.path_for(ENDPOINT), input).expect("the temporary directory is writable");
    let read = store
        .retrieve(ENDPOINT)
        .expect("a token file that cannot be used is no credentials, not an error");
    if let Some(credentials) = read {
        assert_eq!(credentials.for_endpoint, ENDPOINT);
        store
            .store(&credentials)
            .expect("what was read can be stored");
        let again = store
            .retrieve(ENDPOINT)
            .expect("the file just written is readable")
            .expect("the file just written holds credentials");
        assert_eq!(
            again, credentials,
            "the credentials changed in a round trip"
        );
    }
});
