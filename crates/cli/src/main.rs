//! The `flyte-auth` command-line tool (not implemented yet).

fn main() {}
