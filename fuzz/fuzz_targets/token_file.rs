//! `FileStore`'s token file, which anyone with access to the cache directory (or a full disk,
//! or another version of the program) may have left in any state: `retrieve` on the fuzzer's
//! bytes.
//!
//! Input: the file's bytes.
//! Checked ([`flyte_auth_fuzz::checks::token_file`]): no panic; reading never fails (an
//! unusable file is "no credentials"); what is read is for the endpoint asked for, has a sane
//! expiry, and survives a store-and-retrieve round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| flyte_auth_fuzz::checks::token_file(input));
