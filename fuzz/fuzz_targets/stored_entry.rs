//! The keyring entries of a login as flytekit, the Flyte 2 SDK, flytectl or another version
//! of flyte-auth (or a person) may have left them, read as `KeyringStore::retrieve` reads them
//! (`flyte_auth_store::credentials_from_entries`, without a keyring).
//!
//! Input: `=== <entry>` lines, each followed by that entry's text (see
//! [`flyte_auth_fuzz::checks::stored_entry`]).
//! Checked: no panic; expiries within the longest token lifetime; what is read survives a
//! round trip through its JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| flyte_auth_fuzz::checks::stored_entry(input));
