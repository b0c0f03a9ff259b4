//! Part of flyte-auth: not implemented yet.
