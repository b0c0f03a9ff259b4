//! The numbers a server states (`expires_in`, a JWT `exp`, a device `interval` and
//! `expires_in`) and the user code it sends, through the real constructors, the credential
//! cache and a device login's poll timing (against a loopback server, in virtual time).
//!
//! Input: `name=value` lines, values as raw JSON text, e.g. `expires_in=1e30` (see
//! [`flyte_auth_fuzz::checks::expiry_arithmetic`]).
//! Checked: no panic, no hang; expiries within the longest token lifetime; no wait between
//! polls longer than the longest poll interval; no control character in the prompt.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| flyte_auth_fuzz::checks::expiry_arithmetic(input));
