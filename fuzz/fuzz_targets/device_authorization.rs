//! Device authorization answers (RFC 8628 §3.2): a request through `OAuthClient` to a loopback
//! server that answers with the fuzzer's bytes.
//!
//! Input: `<status> <content-type>` on the first line, then the body (see the crate docs).
//! Checked ([`flyte_auth_fuzz::checks::device_authorization`]): no panic, no hang; no error
//! quotes the client secret (as it is, encoded, or in the Basic credentials); an accepted
//! answer has a user code and a URL to show, an interval and a lifetime within their maxima,
//! and a prompt without control characters.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| flyte_auth_fuzz::checks::device_authorization(input));
