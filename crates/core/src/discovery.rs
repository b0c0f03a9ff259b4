//! Which generation of Flyte server answers discovery ([`DiscoveryFlavour`]), and where that is
//! remembered between processes ([`DiscoveryHints`]).

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use crate::{ClientConfig, StoreError};

/// Which generation of Flyte server answered discovery (here, so that [`DiscoveryHints`] can
/// keep it without the HTTP stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscoveryFlavour {
    /// flyteadmin (Flyte 1): `GET /config/v1/flyte_client` and
    /// `GET /.well-known/oauth-authorization-server`.
    FlyteAdmin,
    /// A Flyte 2 backend: the ConnectRPC `flyteidl2.auth.AuthMetadataService` (the
    /// `.well-known` document where it is served).
    Flyte2,
}

impl DiscoveryFlavour {
    /// `flyteadmin` or `flyte2`, as `status` shows it (and as it may be stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FlyteAdmin => "flyteadmin",
            Self::Flyte2 => "flyte2",
        }
    }

    /// The flavour [`as_str`](Self::as_str) names.
    ///
    /// ```
    /// use flyte_auth_core::DiscoveryFlavour;
    /// assert_eq!(DiscoveryFlavour::from_name(" flyte2 "), Some(DiscoveryFlavour::Flyte2));
    /// assert_eq!(DiscoveryFlavour::from_name("v3"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "flyteadmin" => Some(Self::FlyteAdmin),
            "flyte2" => Some(Self::Flyte2),
            _ => None,
        }
    }

    /// The other generation: what is asked when this one is not served.
    pub fn other(self) -> Self {
        match self {
            Self::FlyteAdmin => Self::Flyte2,
            Self::Flyte2 => Self::FlyteAdmin,
        }
    }
}

impl fmt::Display for DiscoveryFlavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the [`DiscoveryFlavour`] that answered is remembered between processes, per
/// endpoint (keyed by [`Endpoint::key`](crate::Endpoint::key), like stored credentials).
///
/// A hint must never fail a login: [`recall`](Self::recall) says `None` for anything it
/// cannot use, and an error of [`remember`](Self::remember) is logged and ignored. Like a
/// [`TokenStore`](crate::TokenStore), it is called in place on a discovery's slow path and
/// must answer at once (no network, no waiting on a lock).
pub trait DiscoveryHints: Send + Sync + fmt::Debug {
    /// The flavour that answered for `endpoint` last time, if known.
    fn recall(&self, endpoint: &str) -> Option<DiscoveryFlavour>;

    /// Keeps `flavour` as the one that answered for `endpoint`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when it cannot be kept; the caller goes on without it.
    fn remember(&self, endpoint: &str, flavour: DiscoveryFlavour) -> Result<(), StoreError>;

    /// The answer kept for `endpoint` by [`remember_answer`](Self::remember_answer), however
    /// old (the caller decides how long an answer is used). Like [`recall`](Self::recall), it
    /// says `None` for anything it cannot use. The default keeps no answers.
    fn recall_answer(&self, endpoint: &str) -> Option<DiscoveryAnswer> {
        let _ = endpoint;
        None
    }

    /// Keeps what discovery answered for `endpoint`, with its flavour (as
    /// [`remember`](Self::remember) does), so that the next process can skip discovery.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when it cannot be kept; the caller goes on without it. The default
    /// keeps the flavour only ([`remember`](Self::remember)).
    fn remember_answer(&self, endpoint: &str, answer: &DiscoveryAnswer) -> Result<(), StoreError> {
        self.remember(endpoint, answer.flavour)
    }
}

/// What a server's discovery answered, kept between processes by [`DiscoveryHints`] so that
/// the next process goes straight to the token endpoint. It holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryAnswer {
    /// The generation of server that answered.
    pub flavour: DiscoveryFlavour,
    /// The client configuration the server announced, before any override.
    pub config: ClientConfig,
    /// When the server answered.
    pub discovered_at: SystemTime,
}

impl DiscoveryAnswer {
    /// How long a kept answer is used instead of asking the server again: a day.
    pub const LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

    /// How far after `now` a kept answer may be dated (the clock of the machine that wrote it).
    pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

    /// `flavour`'s answer `config`, given at `discovered_at`.
    pub fn new(flavour: DiscoveryFlavour, config: ClientConfig, discovered_at: SystemTime) -> Self {
        Self {
            flavour,
            config,
            discovered_at,
        }
    }

    /// Whether this answer may be used at `now` (the caller's [`Clock`](crate::Clock)): given
    /// at most [`LIFETIME`](Self::LIFETIME) before `now` and at most
    /// [`CLOCK_SKEW`](Self::CLOCK_SKEW) after it; `Err` says why not.
    ///
    /// # Errors
    ///
    /// `"it has expired"` or `"it is dated in the future"`.
    pub fn usable_at(&self, now: SystemTime) -> Result<(), &'static str> {
        match now.duration_since(self.discovered_at) {
            Ok(age) if age > Self::LIFETIME => Err("it has expired"),
            Err(ahead) if ahead.duration() > Self::CLOCK_SKEW => Err("it is dated in the future"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_at(discovered_at: SystemTime) -> DiscoveryAnswer {
        let config = ClientConfig::new("https://idp/token", "cli");
        DiscoveryAnswer::new(DiscoveryFlavour::Flyte2, config, discovered_at)
    }

    #[test]
    fn a_kept_answer_is_usable_for_a_day_and_not_after() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let answer = answer_at(at);
        assert_eq!(answer.usable_at(at), Ok(()));
        assert_eq!(answer.usable_at(at + DiscoveryAnswer::LIFETIME), Ok(()));
        let later = at + DiscoveryAnswer::LIFETIME + Duration::from_secs(1);
        assert_eq!(answer.usable_at(later), Err("it has expired"));
    }

    #[test]
    fn an_answer_dated_in_the_future_beyond_the_skew_is_not_used() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            answer_at(now + DiscoveryAnswer::CLOCK_SKEW).usable_at(now),
            Ok(())
        );
        let ahead = now + DiscoveryAnswer::CLOCK_SKEW + Duration::from_secs(1);
        assert_eq!(
            answer_at(ahead).usable_at(now),
            Err("it is dated in the future")
        );
    }
}
