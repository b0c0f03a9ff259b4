//! `rust-floor`: prints one line the length of an access token, and exits.
//!
//! `cargo xtask bench` runs it next to `/bin/true` and the cached `flyte-auth token`. Built
//! with the same release profile as `flyte-auth`, it is what starting any Rust program costs
//! on the machine (the dynamic loader, `libgcc_s`, std's runtime set-up) before it does
//! anything, so the table shows how much of the cached token's time is the token's own work.

#[allow(clippy::print_stdout)]
fn main() {
    println!("{}", "t".repeat(43));
}
