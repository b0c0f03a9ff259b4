//! [`DiscoveryHintFiles`]: which discovery flavour each endpoint's server answered, and what
//! it answered, one small file per endpoint next to the token files.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use flyte_auth_core::{
    ClientConfig, DiscoveryAnswer, DiscoveryFlavour, DiscoveryHints, StoreError, owned::Unreadable,
};
use serde::{Deserialize, Serialize};

use crate::{disk, store_key};

/// The name in errors.
const HINTS: &str = "discovery hint";

/// The format version written and read.
const FORMAT_VERSION: u32 = 1;

/// A hint file larger than this is not read (ours are about 80 bytes, 1 KiB with an answer).
const MAX_HINT_SIZE: u64 = 16 * 1024;

/// [`DiscoveryHints`] in one small `0600` file per endpoint, `<name>-<hash>.discovery` in the
/// token store's directory, written atomically as the token files are. It holds the flavour
/// and, with [`remember_answer`](DiscoveryHints::remember_answer), what the server answered.
/// No secret; reading is lenient (anything unusable is no hint, logged). The crate's README
/// ("Discovery hints") has the format and the rules.
///
/// ```
/// use flyte_auth_store::{DiscoveryFlavour, DiscoveryHintFiles, DiscoveryHints};
///
/// let dir = tempfile::tempdir()?;
/// let hints = DiscoveryHintFiles::in_dir(dir.path());
/// assert_eq!(hints.recall("flyte.example.org:443"), None);
/// hints.remember("flyte.example.org:443", DiscoveryFlavour::Flyte2)?;
/// assert_eq!(hints.recall("flyte.example.org:443"), Some(DiscoveryFlavour::Flyte2));
/// std::fs::write(hints.path_for("flyte.example.org:443"), "{ not json")?;
/// assert_eq!(hints.recall("flyte.example.org:443"), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DiscoveryHintFiles {
    dir: PathBuf,
}

impl DiscoveryHintFiles {
    /// Hints in exactly `dir` (created `0700` on the first write).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Hints in `dir` when given, else where the token files go by default
    /// (`$FLYTE_AUTH_CACHE_DIR`, else `flyte-auth` in the user's cache directory); `None`
    /// when no directory is known.
    pub fn open(dir: Option<PathBuf>) -> Option<Self> {
        disk::store_dir(dir).map(Self::in_dir)
    }

    /// The directory of the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hint file of `endpoint`.
    pub fn path_for(&self, endpoint: &str) -> PathBuf {
        self.dir
            .join(format!("{}.discovery", disk::file_stem(endpoint)))
    }
}

#[derive(Serialize, Deserialize)]
struct HintFile {
    version: u32,
    endpoint: String,
    flavour: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<AnswerFile>,
}

/// What discovery answered, in a hint file.
#[derive(Serialize, Deserialize)]
struct AnswerFile {
    /// When, in seconds since the Unix epoch.
    discovered_at: u64,
    config: ClientConfig,
}

impl DiscoveryHintFiles {
    /// The usable hint file of `endpoint` and its flavour, or `None` (logged) when there is
    /// none.
    fn read(&self, endpoint: &str) -> Option<(HintFile, DiscoveryFlavour)> {
        let path = self.path_for(endpoint);
        let ignored = |why: &str| {
            tracing::debug!(path = %path.display(), why, "ignoring the discovery hint");
            None
        };
        match disk::check_dir(HINTS, &self.dir) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the discovery hints");
                return None;
            }
        }
        let bytes = match disk::read_found(&path, MAX_HINT_SIZE) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(why @ (Unreadable::Io(_) | Unreadable::TooLarge(_))) => {
                return ignored(&why.to_string());
            }
            // A link, a FIFO, another user's file: someone put it there; say so.
            Err(why) => {
                tracing::warn!(path = %path.display(), reason = %why, "ignoring the discovery hint");
                return None;
            }
        };
        let Ok(hint) = serde_json::from_slice::<HintFile>(&bytes) else {
            return ignored("not a discovery hint file");
        };
        if hint.version != FORMAT_VERSION {
            return ignored("another format version");
        }
        if store_key(&hint.endpoint) != store_key(endpoint) {
            return ignored("it names another endpoint");
        }
        let Some(flavour) = DiscoveryFlavour::from_name(&hint.flavour) else {
            return ignored("an unknown flavour");
        };
        tracing::debug!(endpoint, %flavour, "discovery hint found");
        Some((hint, flavour))
    }

    fn write(
        &self,
        endpoint: &str,
        flavour: DiscoveryFlavour,
        answer: Option<AnswerFile>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(&HintFile {
            version: FORMAT_VERSION,
            endpoint: store_key(endpoint).to_owned(),
            flavour: flavour.as_str().to_owned(),
            answer,
        })
        .map_err(|e| disk::failed(HINTS, "write", format!("could not encode the hint: {e}")))?;
        disk::write_private_file(HINTS, &self.dir, &self.path_for(endpoint), &json)
    }
}

impl DiscoveryHints for DiscoveryHintFiles {
    fn recall(&self, endpoint: &str) -> Option<DiscoveryFlavour> {
        self.read(endpoint).map(|(_, flavour)| flavour)
    }

    /// Keeps the flavour alone: an answer kept before is dropped (it came from the other
    /// generation).
    fn remember(&self, endpoint: &str, flavour: DiscoveryFlavour) -> Result<(), StoreError> {
        self.write(endpoint, flavour, None)
    }

    fn recall_answer(&self, endpoint: &str) -> Option<DiscoveryAnswer> {
        let (hint, flavour) = self.read(endpoint)?;
        let answer = hint.answer?;
        let discovered_at =
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(answer.discovered_at))?;
        Some(DiscoveryAnswer::new(flavour, answer.config, discovered_at))
    }

    fn remember_answer(&self, endpoint: &str, answer: &DiscoveryAnswer) -> Result<(), StoreError> {
        let discovered_at = answer
            .discovered_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let kept = AnswerFile {
            discovered_at,
            config: answer.config.clone(),
        };
        self.write(endpoint, answer.flavour, Some(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "flyte.example.org:443";

    fn hints() -> (tempfile::TempDir, DiscoveryHintFiles) {
        let dir = tempfile::tempdir().unwrap();
        let hints = DiscoveryHintFiles::in_dir(dir.path().join("cache"));
        (dir, hints)
    }

    #[test]
    fn a_remembered_flavour_is_recalled_and_replaced() {
        let (_dir, hints) = hints();
        assert_eq!(hints.recall(ENDPOINT), None, "nothing written yet");
        hints
            .remember(ENDPOINT, DiscoveryFlavour::FlyteAdmin)
            .unwrap();
        assert_eq!(hints.recall(ENDPOINT), Some(DiscoveryFlavour::FlyteAdmin));
        assert_eq!(
            hints.recall("dns:///flyte.example.org:443"),
            Some(DiscoveryFlavour::FlyteAdmin)
        );
        assert_eq!(hints.recall("other.example.org:443"), None);
        hints.remember(ENDPOINT, DiscoveryFlavour::Flyte2).unwrap();
        assert_eq!(hints.recall(ENDPOINT), Some(DiscoveryFlavour::Flyte2));
        // Only the hint file: no temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(hints.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with(".discovery"), "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_dir, hints) = hints();
        hints.remember(ENDPOINT, DiscoveryFlavour::Flyte2).unwrap();
        let mode = std::fs::metadata(hints.path_for(ENDPOINT))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_or_a_fifo_at_the_hint_path_is_no_hint_and_stalls_nothing() {
        let (dir, hints) = hints();
        // A valid hint of the same endpoint elsewhere: following the link would recall it.
        let elsewhere = DiscoveryHintFiles::in_dir(dir.path().join("elsewhere"));
        elsewhere
            .remember(ENDPOINT, DiscoveryFlavour::Flyte2)
            .unwrap();
        std::fs::create_dir(hints.dir()).unwrap();
        std::os::unix::fs::symlink(elsewhere.path_for(ENDPOINT), hints.path_for(ENDPOINT)).unwrap();
        assert_eq!(hints.recall(ENDPOINT), None);

        std::fs::remove_file(hints.path_for(ENDPOINT)).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(hints.path_for(ENDPOINT))
            .status()
            .unwrap();
        assert!(status.success());
        let (done, recalled) = std::sync::mpsc::channel();
        let reader = hints.clone();
        std::thread::spawn(move || done.send(reader.recall(ENDPOINT)));
        let got = recalled
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("recall hangs on a FIFO");
        assert_eq!(got, None);
        // The next discovery replaces it.
        hints
            .remember(ENDPOINT, DiscoveryFlavour::FlyteAdmin)
            .unwrap();
        assert_eq!(hints.recall(ENDPOINT), Some(DiscoveryFlavour::FlyteAdmin));
    }

    fn answer(flavour: DiscoveryFlavour) -> DiscoveryAnswer {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let config = ClientConfig::new("https://idp.example.org/token", "flytectl")
            .with_scopes(["all"])
            .with_header_key("flyte-authorization");
        DiscoveryAnswer::new(flavour, config, at)
    }

    #[test]
    fn an_answer_is_kept_with_its_flavour_until_a_flavour_alone_replaces_it() {
        let (_dir, hints) = hints();
        assert_eq!(hints.recall_answer(ENDPOINT), None);
        let kept = answer(DiscoveryFlavour::Flyte2);
        hints.remember_answer(ENDPOINT, &kept).unwrap();
        assert_eq!(hints.recall_answer(ENDPOINT), Some(kept));
        assert_eq!(hints.recall(ENDPOINT), Some(DiscoveryFlavour::Flyte2));
        assert_eq!(hints.recall_answer("other.example.org:443"), None);
        // The flavour changed: the answer was the other generation's.
        hints
            .remember(ENDPOINT, DiscoveryFlavour::FlyteAdmin)
            .unwrap();
        assert_eq!(hints.recall_answer(ENDPOINT), None);
        assert_eq!(hints.recall(ENDPOINT), Some(DiscoveryFlavour::FlyteAdmin));
    }

    #[test]
    fn a_malformed_answer_is_no_answer() {
        let (_dir, hints) = hints();
        hints
            .remember_answer(ENDPOINT, &answer(DiscoveryFlavour::FlyteAdmin))
            .unwrap();
        let path = hints.path_for(ENDPOINT);
        for bad in [
            r#""answer":{"discovered_at":"yesterday","config":{}}"#,
            r#""answer":{"discovered_at":1,"config":{"token_endpoint":7}}"#,
            r#""answer":[1,2]"#,
        ] {
            let text =
                format!(r#"{{"version":1,"endpoint":"{ENDPOINT}","flavour":"flyteadmin",{bad}}}"#);
            std::fs::write(&path, &text).unwrap();
            assert_eq!(hints.recall_answer(ENDPOINT), None, "{bad}");
        }
    }

    /// A well-formed hint and answer, given to another user (`nobody`): no hint and no
    /// answer. The tests run as root, who can give a file away.
    #[cfg(unix)]
    #[test]
    fn an_answer_planted_by_another_user_is_ignored() {
        use std::os::unix::fs::MetadataExt as _;
        const NOBODY: u32 = 65534;
        let (_dir, hints) = hints();
        let kept = answer(DiscoveryFlavour::FlyteAdmin);
        hints.remember_answer(ENDPOINT, &kept).unwrap();
        assert_eq!(hints.recall_answer(ENDPOINT), Some(kept), "the user's own");
        let path = hints.path_for(ENDPOINT);
        std::os::unix::fs::chown(&path, Some(NOBODY), None).unwrap_or_else(|e| {
            panic!(
                "chown {} to nobody: {e} (the tests run as root)",
                path.display()
            )
        });
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), NOBODY);
        assert_eq!(hints.recall_answer(ENDPOINT), None);
        assert_eq!(hints.recall(ENDPOINT), None);
    }

    #[test]
    fn anything_unusable_is_no_hint() {
        let (_dir, hints) = hints();
        hints.remember(ENDPOINT, DiscoveryFlavour::Flyte2).unwrap();
        let path = hints.path_for(ENDPOINT);
        let other = r#"{"version":1,"endpoint":"other:443","flavour":"flyte2"}"#.to_owned();
        let big = format!(
            r#"{{"version":1,"endpoint":"{ENDPOINT}","flavour":"flyte2","pad":"{}"}}"#,
            "x".repeat(17 * 1024)
        );
        for bad in [
            String::new(),
            "{ not json".to_owned(),
            "\u{0}\u{ff}".to_owned(),
            format!(r#"{{"version":2,"endpoint":"{ENDPOINT}","flavour":"flyte2"}}"#),
            format!(r#"{{"version":1,"endpoint":"{ENDPOINT}","flavour":"flyte3"}}"#),
            other,
            big,
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert_eq!(hints.recall(ENDPOINT), None, "{bad:.60}");
        }
        // A directory where the file should be cannot be read either.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert_eq!(hints.recall(ENDPOINT), None);
        assert!(hints.remember(ENDPOINT, DiscoveryFlavour::Flyte2).is_err());
    }
}
