//! [`DiscoveryHintFiles`]: which discovery flavour each endpoint's server answered, one small
//! file per endpoint next to the token files.

use std::path::{Path, PathBuf};

use flyte_auth_core::{DiscoveryFlavour, DiscoveryHints, StoreError};
use serde::{Deserialize, Serialize};

use crate::{disk, store_key};

/// The name in errors.
const HINTS: &str = "discovery hint";

/// The format version written and read.
const FORMAT_VERSION: u32 = 1;

/// A hint file larger than this is not read (ours are about 80 bytes).
const MAX_HINT_SIZE: u64 = 4 * 1024;

/// [`DiscoveryHints`] in one small `0600` file per endpoint, in the token store's directory.
///
/// The file of an endpoint is `<name>-<hash>.discovery`, the same stem as its token file and
/// lock file (see [`FileStore`](crate::FileStore)), written atomically (temporary file,
/// `fsync`, `rename`, as the token files are):
///
/// ```json
/// {"version":1,"endpoint":"flyte.example.org:443","flavour":"flyte2"}
/// ```
///
/// It holds no secret. Reading is lenient: a missing file, or one that cannot be read, is
/// larger than 4 KiB, is not of this shape, has another version, names another endpoint or
/// an unknown flavour, is no hint (logged at `debug`), and discovery asks both flavours; the
/// next successful discovery rewrites it. As the token files are, it is opened without
/// following a symbolic link or blocking on a FIFO, and must be a regular file of this user
/// in a directory of this user that nobody else may write to (on Unix); anything else is no
/// hint, with a warning naming the path.
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
}

impl DiscoveryHints for DiscoveryHintFiles {
    fn recall(&self, endpoint: &str) -> Option<DiscoveryFlavour> {
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
        let bytes = match disk::read_limited(&path, MAX_HINT_SIZE) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(why @ (disk::Unusable::Io(_) | disk::Unusable::TooLarge(_))) => {
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
        Some(flavour)
    }

    fn remember(&self, endpoint: &str, flavour: DiscoveryFlavour) -> Result<(), StoreError> {
        let json = serde_json::to_vec(&HintFile {
            version: FORMAT_VERSION,
            endpoint: store_key(endpoint).to_owned(),
            flavour: flavour.as_str().to_owned(),
        })
        .map_err(|e| StoreError::Io {
            store: HINTS,
            operation: "write",
            message: format!("could not encode the hint: {e}"),
            source: None,
        })?;
        disk::write_private_file(HINTS, &self.dir, &self.path_for(endpoint), &json)
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

    #[test]
    fn anything_unusable_is_no_hint() {
        let (_dir, hints) = hints();
        hints.remember(ENDPOINT, DiscoveryFlavour::Flyte2).unwrap();
        let path = hints.path_for(ENDPOINT);
        let other = r#"{"version":1,"endpoint":"other:443","flavour":"flyte2"}"#.to_owned();
        let big = format!(
            r#"{{"version":1,"endpoint":"{ENDPOINT}","flavour":"flyte2","pad":"{}"}}"#,
            "x".repeat(5000)
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
