//! Token endpoint answers (RFC 6749 §5.1 tokens, §5.2 errors, and whatever else a server or a
//! proxy sends): `TokenResponse::from_http`, then the credentials made from a token.
//!
//! Input: `<status> <content-type>` on the first line, then the body (see the crate docs).
//! Checked ([`flyte_auth_fuzz::checks::token_response`]): no panic; no error quotes a secret
//! the request sent, as it is or encoded as it was sent (form or percent encoding); an OAuth
//! error shows no control character; a token becomes credentials with a sane expiry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| flyte_auth_fuzz::checks::token_response(input));
