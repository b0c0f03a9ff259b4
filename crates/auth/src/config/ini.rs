//! flytekit's INI config file (`~/.flyte/config`, `./flytekit.config`): the `[platform]` and
//! `[credentials]` sections, read as Python's `configparser` reads them.
//!
//! Option names are case-insensitive, `key = value` and `key: value` both work, full-line
//! comments start with `#` or `;`, and an indented line continues the value above. Booleans
//! are `configparser`'s words (`1`/`yes`/`true`/`on`, `0`/`no`/`false`/`off`); lists are
//! comma-separated.

use std::{collections::HashMap, path::Path};

use flyte_auth_core::Error;

#[cfg(test)]
use super::AuthMode;
use super::{settings::Settings, table};

/// `(section, option)` to value, both lower-cased as `configparser` does for options.
type Options = HashMap<(String, String), String>;

/// Parses the text of an INI file; `path` only names the file in errors.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Settings, Error> {
    let options = options(path, text)?;
    table::read(
        |row| {
            let (section, option) = row.ini?;
            let value = options.get(&(section.to_owned(), option.to_owned()))?;
            Some((format!("[{section}] {option}"), value.clone()))
        },
        |name, message| Error::config(format!("{}: {name}: {message}", path.display())),
    )
}

fn options(path: &Path, text: &str) -> Result<Options, Error> {
    let mut options = Options::new();
    let mut section: Option<String> = None;
    let mut last: Option<(String, String)> = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t'])
            && let Some(key) = &last
            && let Some(value) = options.get_mut(key)
        {
            value.push('\n');
            value.push_str(trimmed);
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = Some(name.trim().to_owned());
            last = None;
            continue;
        }
        let line_error = |message: &str| {
            Error::config(format!(
                "{}: line {}: {message}",
                path.display(),
                number + 1
            ))
        };
        let Some(at) = trimmed.find(['=', ':']) else {
            return Err(line_error(
                "expected `[section]` or `option = value` (this is read as flytekit's INI config)",
            ));
        };
        let Some(section) = &section else {
            return Err(line_error("an option before the first `[section]` header"));
        };
        let key = (section.clone(), trimmed[..at].trim().to_ascii_lowercase());
        options.insert(key.clone(), trimmed[at + 1..].trim().to_owned());
        last = Some(key);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Settings, Error> {
        parse(Path::new("/home/me/.flyte/config"), text)
    }

    #[test]
    fn platform_and_credentials_sections_as_flytekit_writes_them() {
        let layer = parse_str(
            "# written by flytekit\n[platform]\nurl = dns:///flyte.example.org\ninsecure = True\n\
             \n[credentials]\nclient_id: svc\nCLIENT_SECRET_LOCATION = /etc/secret\nauth_mode = basic\n\
             scopes = all, offline\ncommand = gcloud,auth,\n  print-access-token\n\n[sdk]\nworkflow_packages = x\n",
        )
        .unwrap();
        assert_eq!(
            layer.endpoint.as_ref().map(|e| e.as_written()),
            Some("dns:///flyte.example.org")
        );
        assert_eq!(layer.insecure, Some(true));
        assert_eq!(layer.client_id.as_deref(), Some("svc"));
        assert_eq!(
            layer.client_secret_location.as_deref(),
            Some(Path::new("/etc/secret"))
        );
        assert_eq!(layer.auth_mode, Some(AuthMode::ClientSecret));
        assert_eq!(layer.scopes.unwrap(), ["all", "offline"]);
        assert_eq!(
            layer.command.unwrap().0,
            ["gcloud", "auth", "print-access-token"]
        );
    }

    #[test]
    fn errors_name_the_file_the_line_or_the_option() {
        let err = parse_str("[platform]\ninsecure = maybe\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/home/me/.flyte/config: [platform] insecure: invalid value `maybe`"),
            "{err}"
        );
        let err = parse_str("url = x\n").unwrap_err().to_string();
        assert!(err.contains("line 1: an option before the first"), "{err}");
        let err = parse_str("[platform]\njust words\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2: expected `[section]`"), "{err}");
    }
}
