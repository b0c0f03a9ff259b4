//! The Flyte 2 SDK's plaintext keyring file, `~/.flyte/keyring.cfg` (its notebook backend,
//! `flyte._keyring.file`): an INI file as Python's `configparser` writes it, a section per
//! service, option `tokens`, value `base64.encodebytes(secret)`. Read leniently, rewritten
//! atomically under a lock ([`LOCK_TIMEOUT`]) and only when it parses; the crate's README
//! ("The Flyte 2 SDK's keyring file") has the rules in full.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use base64::Engine as _;
use flyte_auth_core::{Credentials, StoreError, StoreLock};

use crate::{
    disk,
    layouts::{self, FLYTE2_TOKENS, Layout, LoginCopy},
};

const STORE: &str = "keyring";

/// No keyring file of a few logins comes near this; a larger one is not read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How long a rewrite waits for another flyte-auth process's rewrite. Short: it runs inside
/// keyring calls, which have their own time limit, and the SDK does not lock at all.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// The name the rewrite lock is filed under, as an endpoint's would be; no endpoint has a
/// space in it.
const LOCK_NAME: &str = "flyte2 keyring.cfg";

/// The Flyte 2 SDK's keyring file at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyringCfg {
    path: PathBuf,
    /// Where the rewrite lock is: flyte-auth's directory (`$FLYTE_AUTH_CACHE_DIR` or the
    /// user's cache directory); `None`: no lock.
    lock_dir: Option<PathBuf>,
}

/// What the file held for one service.
#[derive(Debug)]
pub(crate) struct Found {
    /// The login, when the `tokens` option holds one.
    pub(crate) copy: Option<LoginCopy>,
    /// When the file was last written.
    pub(crate) modified: Option<SystemTime>,
}

impl KeyringCfg {
    /// The file the SDK uses by default: `.flyte/keyring.cfg` in the home directory (`$HOME`);
    /// `None` without one.
    pub(crate) fn default_path() -> Option<PathBuf> {
        std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".flyte").join("keyring.cfg"))
    }

    /// The file at `path`, rewritten under a lock in flyte-auth's default directory.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock_dir: disk::store_dir(None),
        }
    }

    /// Takes the rewrite lock in `dir` instead.
    #[cfg(test)]
    fn with_lock_dir(mut self, dir: PathBuf) -> Self {
        self.lock_dir = Some(dir);
        self
    }

    /// The rewrite lock, when it can be had within [`LOCK_TIMEOUT`]; otherwise the rewrite
    /// goes ahead without it (logged).
    fn lock(&self) -> Option<StoreLock> {
        let dir = self.lock_dir.as_deref()?;
        match disk::lock(STORE, dir, LOCK_NAME, LOCK_TIMEOUT) {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "rewriting the Flyte 2 SDK's keyring file without the lock");
                None
            }
        }
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Logs that the file (or an entry of it) is not used, and why (never its contents).
    fn ignoring<T>(&self, why: &str) -> Option<T> {
        tracing::warn!(path = %self.path.display(), "ignoring the Flyte 2 SDK's keyring file: {why}");
        None
    }

    /// The text of the file; `None` when it is missing or unusable (logged).
    fn text(&self) -> Option<(String, Option<SystemTime>)> {
        let bytes = match disk::read_found(&self.path, MAX_FILE_BYTES) {
            Ok(bytes) => bytes?,
            Err(why) => return self.ignoring(&why.to_string()),
        };
        let modified = std::fs::symlink_metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let Ok(text) = String::from_utf8(bytes) else {
            return self.ignoring("it is not UTF-8 text");
        };
        Some((text, modified))
    }

    /// The Flyte 2 SDK's login for `service` in the file, if any.
    pub(crate) fn read(&self, service: &str) -> Found {
        let Some((text, modified)) = self.text() else {
            return Found {
                copy: None,
                modified: None,
            };
        };
        let copy = match Ini::parse(&text) {
            Ok(ini) => ini
                .get(service, FLYTE2_TOKENS)
                .and_then(|value| self.decode(value, service)),
            Err(line) => self.ignoring(&format!("line {line} is not INI that Python reads")),
        };
        Found { copy, modified }
    }

    /// The login in an option's value: `base64.decodebytes` of the SDK's JSON of tokens.
    fn decode(&self, value: &str, service: &str) -> Option<LoginCopy> {
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let Some(json) = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
        else {
            return self.ignoring(&format!("the entry of {service} is not base64 of text"));
        };
        match layouts::parse_flyte2(&json) {
            Some(copy) => Some(LoginCopy {
                layout: Layout::Flyte2File,
                ..copy
            }),
            None => self.ignoring(&format!("the entry of {service} is not its JSON of tokens")),
        }
    }

    /// Sets the `tokens` option of `service` to `credentials`, as the SDK would; keeps the
    /// rest of the file.
    pub(crate) fn write(&self, service: &str, credentials: &Credentials) -> Result<(), StoreError> {
        let _lock = self.lock();
        let mut ini = self.editable()?;
        let value = encodebytes(layouts::format_flyte2(credentials).as_bytes());
        ini.set(service, FLYTE2_TOKENS, value);
        self.replace(&ini)
    }

    /// Removes the `tokens` option of `service`; says whether there was one.
    pub(crate) fn delete(&self, service: &str) -> Result<bool, StoreError> {
        let _lock = self.lock();
        let mut ini = self.editable()?;
        if !ini.remove(service, FLYTE2_TOKENS) {
            return Ok(false);
        }
        self.replace(&ini).map(|()| true)
    }

    /// The file's contents to edit: empty when it does not exist; an error when it exists
    /// and cannot be read or parsed (rewriting it would lose what it holds).
    fn editable(&self) -> Result<Ini, StoreError> {
        let bytes = match disk::read_found(&self.path, MAX_FILE_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Ini::default()),
            Err(why) => return Err(disk::refused(STORE, "the keyring file", &self.path, &why)),
        };
        let text = String::from_utf8(bytes).map_err(|_| self.unreadable("it is not UTF-8 text"))?;
        Ini::parse(&text).map_err(|line| {
            self.unreadable(&format!(
                "line {line} is not INI that Python's configparser reads"
            ))
        })
    }

    fn unreadable(&self, why: &str) -> StoreError {
        let message = format!(
            "not rewriting the Flyte 2 SDK's keyring file {}: {why}",
            self.path.display()
        );
        disk::failed(STORE, "write", message)
    }

    /// Replaces the file atomically with `ini` (a `0600` file).
    fn replace(&self, ini: &Ini) -> Result<(), StoreError> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        disk::write_private_file(STORE, dir, &self.path, ini.to_string().as_bytes())
    }
}

/// The sections of `text`, each with its options and values, as Python's
/// `configparser.ConfigParser(interpolation=None)` reads them; `None` where Python refuses the
/// text. For tests that compare with Python.
#[doc(hidden)]
pub fn parse_ini(text: &str) -> Option<Vec<IniSection>> {
    Ini::parse(text).ok().map(|ini| ini.sections)
}

/// One section of an INI file: its name, and its options with their values, in order.
#[doc(hidden)]
pub type IniSection = (String, Vec<(String, String)>);

/// Python's `base64.encodebytes`: standard base64 in lines of at most 76 characters, each
/// ending with a newline.
fn encodebytes(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    for chunk in encoded.as_bytes().chunks(76) {
        // Base64 is ASCII, so every chunk is text.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// An INI file as Python's `configparser.ConfigParser(interpolation=None)` reads and writes
/// it: sections in order, options in order (names lower-cased), values with their
/// continuation lines joined by newlines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ini {
    sections: Vec<IniSection>,
}

impl Ini {
    /// Parses `text`; the number of the first line Python would refuse, on error.
    fn parse(text: &str) -> Result<Self, usize> {
        let mut ini = Ini::default();
        // The option a continuation line extends, and the indentation of its first line.
        let mut current: Option<(usize, usize)> = None;
        // Python reads the file with universal newlines: `\r\n` and `\r` end lines too.
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        for (index, line) in text.split('\n').enumerate() {
            let number = index + 1;
            let trimmed = line.trim();
            let indent = line.chars().take_while(|c| c.is_whitespace()).count();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.is_empty() {
                // An empty line inside a value belongs to it (`empty_lines_in_values`).
                if let Some((option, _)) = current
                    && let Some((_, options)) = ini.sections.last_mut()
                {
                    options[option].1.push('\n');
                }
                continue;
            }
            if let Some((option, first_indent)) = current
                && indent > first_indent
                && let Some((_, options)) = ini.sections.last_mut()
            {
                let value = &mut options[option].1;
                value.push('\n');
                value.push_str(trimmed);
                continue;
            }
            if let Some(name) = trimmed
                .strip_prefix('[')
                .and_then(|rest| rest.rsplit_once(']'))
                .map(|(name, _)| name)
                .filter(|name| !name.is_empty())
            {
                if ini.sections.iter().any(|(s, _)| s == name) {
                    return Err(number);
                }
                ini.sections.push((name.to_owned(), Vec::new()));
                current = None;
                continue;
            }
            let Some((_, options)) = ini.sections.last_mut() else {
                return Err(number);
            };
            let Some(at) = trimmed.find(['=', ':']) else {
                return Err(number);
            };
            let name = trimmed[..at].trim().to_lowercase();
            if name.is_empty() || options.iter().any(|(o, _)| *o == name) {
                return Err(number);
            }
            options.push((name, trimmed[at + 1..].trim().to_owned()));
            current = Some((options.len() - 1, indent));
        }
        for (_, options) in &mut ini.sections {
            for (_, value) in options {
                value.truncate(value.trim_end().len());
            }
        }
        Ok(ini)
    }

    fn get(&self, section: &str, option: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(s, _)| s == section)?
            .1
            .iter()
            .find(|(o, _)| o == option)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, section: &str, option: &str, value: String) {
        let index = match self.sections.iter().position(|(s, _)| s == section) {
            Some(index) => index,
            None => {
                self.sections.push((section.to_owned(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let options = &mut self.sections[index].1;
        match options.iter_mut().find(|(o, _)| o == option) {
            Some((_, old)) => *old = value,
            None => options.push((option.to_owned(), value)),
        }
    }

    /// Removes an option (the section stays, as with Python's `remove_option`).
    fn remove(&mut self, section: &str, option: &str) -> bool {
        let Some((_, options)) = self.sections.iter_mut().find(|(s, _)| s == section) else {
            return false;
        };
        let before = options.len();
        options.retain(|(o, _)| o != option);
        options.len() != before
    }
}

/// As `ConfigParser.write`: `[section]`, `name = value` with the value's newlines followed by
/// a tab, and an empty line after each section.
impl std::fmt::Display for Ini {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (section, options) in &self.sections {
            writeln!(f, "[{section}]")?;
            for (name, value) in options {
                writeln!(f, "{name} = {}", value.replace('\n', "\n\t"))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_as_python_s_encodebytes() {
        assert_eq!(encodebytes(b""), "");
        assert_eq!(encodebytes(b"abc"), "YWJj\n");
        let long = encodebytes(&[b'x'; 100]);
        let lines: Vec<&str> = long.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 76);
        assert!(long.ends_with('\n'));
    }

    #[test]
    fn a_file_python_wrote_round_trips() {
        // What `ConfigParser.write` makes of two sections, one value spanning lines.
        let text = "[flyte.example.org]\ntokens = eyJhY2Nlc3NfdG9rZW4iOiAiYSIsICJyZWZyZXNoX3Rva2VuIjogInIifQ==\n\t\n\n[other:8089]\ntokens = YWJj\n\tZGVm\n\t\n\n";
        let ini = Ini::parse(text).unwrap();
        assert_eq!(ini.get("other:8089", "tokens"), Some("YWJj\nZGVm"));
        assert_eq!(
            ini.to_string(),
            "[flyte.example.org]\ntokens = eyJhY2Nlc3NfdG9rZW4iOiAiYSIsICJyZWZyZXNoX3Rva2VuIjogInIifQ==\n\n[other:8089]\ntokens = YWJj\n\tZGVm\n\n"
        );
        assert_eq!(Ini::parse(&ini.to_string()).unwrap(), ini);
    }

    #[test]
    fn python_s_reading_rules_are_kept() {
        let ini = Ini::parse("# comment\n[s]\nTokens: a\n; other\nx=1\n").unwrap();
        assert_eq!(ini.get("s", "tokens"), Some("a"));
        assert_eq!(ini.get("s", "x"), Some("1"));
        // What configparser refuses: an option before any section, duplicates, no delimiter.
        assert_eq!(Ini::parse("tokens = a\n"), Err(1));
        assert_eq!(Ini::parse("[s]\n[s]\n"), Err(2));
        assert_eq!(Ini::parse("[s]\na = 1\nA = 2\n"), Err(3));
        assert_eq!(Ini::parse("[s]\njunk\n"), Err(2));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_place_of_the_file_is_neither_read_nor_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.cfg");
        let text = format!(
            "[h]\ntokens = {}\n",
            encodebytes(br#"{"access_token": "a", "refresh_token": "r"}"#)
        );
        std::fs::write(&target, &text).unwrap();
        let path = dir.path().join("keyring.cfg");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let cfg = KeyringCfg::new(path.clone()).with_lock_dir(dir.path().join("locks"));
        assert!(cfg.read("h").copy.is_none());
        let err = cfg.write("h", &Credentials::new("new", "h")).unwrap_err();
        assert!(matches!(err, StoreError::Denied { .. }), "{err:?}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), text);

        // The same file in place is read.
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&target, &path).unwrap();
        let copy = cfg.read("h").copy.unwrap();
        assert_eq!(copy.refresh_token.as_deref(), Some("r"));
        assert_eq!(copy.layout, Layout::Flyte2File);
    }

    #[test]
    fn rewrites_of_two_endpoints_at_once_keep_both() {
        let dir = tempfile::tempdir().unwrap();
        let locks = tempfile::tempdir().unwrap();
        let cfg =
            KeyringCfg::new(dir.path().join("keyring.cfg")).with_lock_dir(locks.path().to_owned());
        let writers: Vec<_> = (0..8)
            .map(|n| {
                let cfg = cfg.clone();
                std::thread::spawn(move || {
                    for round in 0..10 {
                        let creds = Credentials::new(format!("a{n}-{round}"), "e");
                        cfg.write(&format!("host-{n}"), &creds).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        for n in 0..8 {
            let copy = cfg
                .read(&format!("host-{n}"))
                .copy
                .expect("every endpoint's login");
            assert_eq!(copy.access_token, format!("a{n}-9"));
        }
    }

    #[test]
    fn a_rewrite_waits_for_the_lock_a_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let locks = tempfile::tempdir().unwrap();
        let cfg =
            KeyringCfg::new(dir.path().join("keyring.cfg")).with_lock_dir(locks.path().to_owned());
        let held = cfg.lock().expect("a free lock");
        let started = std::time::Instant::now();
        cfg.write("h", &Credentials::new("a", "e")).unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= LOCK_TIMEOUT && waited < LOCK_TIMEOUT * 5,
            "{waited:?}"
        );
        drop(held);
        assert!(cfg.read("h").copy.is_some());
    }

    /// Runs `f` with this thread's log lines captured.
    fn logs_of(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned()
    }

    #[test]
    fn entries_that_cannot_be_used_are_warned_about_without_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.cfg");
        let cfg = KeyringCfg::new(path.clone()).with_lock_dir(dir.path().join("locks"));
        let not_json = encodebytes(b"SECRET-not-json");
        for text in [
            format!("[h]\ntokens = {not_json}\n"),
            "[h]\ntokens = SECRET!!not*base64\n".to_owned(),
            "SECRET = outside any section\n".to_owned(),
        ] {
            std::fs::write(&path, &text).unwrap();
            let logs = logs_of(|| assert!(cfg.read("h").copy.is_none()));
            assert!(logs.contains("ignoring"), "{text:?}: {logs}");
            assert!(!logs.contains("SECRET"), "{text:?}: {logs}");
            let error = cfg.write("h", &Credentials::new("new", "h")).err();
            let shown = format!("{error:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
    }

    #[test]
    fn a_file_python_cannot_parse_is_no_login_and_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.cfg");
        std::fs::write(&path, "not ini\n").unwrap();
        let cfg = KeyringCfg::new(path.clone()).with_lock_dir(dir.path().join("locks"));
        assert!(cfg.read("h").copy.is_none());
        assert!(cfg.write("h", &Credentials::new("new", "h")).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not ini\n");
    }

    /// Any text: no panic, and what parses is written back as Python would write it, which
    /// parses to the same sections, options and values.
    #[test]
    fn any_text_parses_without_panic_and_round_trips() {
        let alphabet: Vec<char> = "[]=:;# \t\n\r\u{a0}aBé=tokens".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = (next() % 120) as usize;
            // Most text is refused before its first section: start half of them with one.
            let start = if next() % 2 == 0 { "[s]\na = 1\n" } else { "" };
            let text: String = start
                .chars()
                .chain((0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]))
                .collect();
            if let Ok(ini) = Ini::parse(&text) {
                parsed += 1;
                let written = ini.to_string();
                assert_eq!(
                    Ini::parse(&written).as_ref(),
                    Ok(&ini),
                    "{text:?} -> {written:?}"
                );
            }
        }
        assert!(parsed > 1_000, "only {parsed} inputs parsed");
    }

    #[test]
    fn set_and_remove_keep_the_other_sections() {
        let mut ini = Ini::parse("[a]\nx = 1\n\n[b]\ntokens = old\n").unwrap();
        ini.set("b", "tokens", "new\n".to_owned());
        ini.set("c", "tokens", "v".to_owned());
        assert_eq!(
            ini.to_string(),
            "[a]\nx = 1\n\n[b]\ntokens = new\n\t\n\n[c]\ntokens = v\n\n"
        );
        assert!(ini.remove("b", "tokens"));
        assert!(!ini.remove("b", "tokens"));
        assert!(!ini.remove("zzz", "tokens"));
        assert_eq!(ini.to_string(), "[a]\nx = 1\n\n[b]\n\n[c]\ntokens = v\n\n");
    }
}
