//! [`DevicePrompt`]: what the user must be told to approve a device login, and how it is shown.

use std::{fmt, io::Write as _, sync::Arc, time::Duration};

use flyte_auth_core::text::printable;

/// Shows a [`DevicePrompt`] to the user: a terminal line, a GUI dialog, a notebook widget.
///
/// Called once per device login, from the task running the login, before polling starts;
/// it should return quickly (show the prompt, do not wait for the user).
pub type PromptCallback = Arc<dyn Fn(&DevicePrompt) + Send + Sync>;

/// What the user needs to approve a device login (RFC 8628 §3.3).
///
/// [`url`](Self::url) is the address to open: `verification_uri_complete` when the server
/// sent one (it carries the code, so the user only confirms), else `verification_uri`, where
/// the user types [`user_code`](Self::user_code). Nothing here is secret: the device code that
/// is redeemed for tokens is not part of the prompt.
///
/// What the server sent is kept printable ([`printable`]): a control character in the user
/// code or a URL (an escape sequence that clears the line, draws a second URL, or makes a
/// hidden link) is shown escaped, as `\u{1b}`, never passed to the terminal.
///
/// `Display` writes the default message, the one written to stderr:
///
/// ```
/// use std::time::Duration;
/// use flyte_auth_device::DevicePrompt;
///
/// let prompt = DevicePrompt::new(
///     "flyte.example.org",
///     "https://idp.example.org/activate",
///     Some("https://idp.example.org/activate?user_code=WDJB-MJHT".to_owned()),
///     "WDJB-MJHT",
///     Some(Duration::from_secs(600)),
/// );
/// assert_eq!(prompt.url(), "https://idp.example.org/activate?user_code=WDJB-MJHT");
/// let text = prompt.to_string();
/// assert!(text.contains("https://idp.example.org/activate?user_code=WDJB-MJHT"));
/// assert!(text.contains("WDJB-MJHT"));
/// assert!(text.contains("10 minutes"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DevicePrompt {
    /// The Flyte endpoint being logged in to.
    pub endpoint: String,
    /// Where the user goes to enter the code.
    pub verification_uri: String,
    /// A URL that already carries the code, when the server offers one.
    pub verification_uri_complete: Option<String>,
    /// The code the user enters (or checks) on the verification page.
    pub user_code: String,
    /// How long the code is valid, when the server says.
    pub expires_in: Option<Duration>,
}

impl DevicePrompt {
    /// A prompt; see the fields.
    pub fn new(
        endpoint: impl Into<String>,
        verification_uri: impl Into<String>,
        verification_uri_complete: Option<String>,
        user_code: impl Into<String>,
        expires_in: Option<Duration>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            verification_uri: printable(&verification_uri.into()).into_owned(),
            verification_uri_complete: verification_uri_complete
                .filter(|u| !u.trim().is_empty())
                .map(|u| printable(&u).into_owned()),
            user_code: printable(&user_code.into()).into_owned(),
            expires_in,
        }
    }

    /// The URL to open: `verification_uri_complete` when present, else `verification_uri`.
    pub fn url(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }

    /// Whether [`url`](Self::url) already carries the code (the user only confirms it).
    pub fn url_has_code(&self) -> bool {
        self.verification_uri_complete.is_some()
    }

    /// The message [`prompt_on_stderr`] writes, ending with a line break: the
    /// [`Display`](fmt::Display) text, after a QR code of the URL when `qr` (and the `qr`
    /// feature) asks for one.
    pub fn message(&self, qr: bool) -> String {
        let mut text = String::new();
        #[cfg(feature = "qr")]
        if qr && let Some(code) = self.qr_code() {
            text.push_str(&code);
            text.push_str("\nOr scan this code with a phone.\n\n");
        }
        #[cfg(not(feature = "qr"))]
        let _ = qr;
        text.push_str(&self.to_string());
        text.push('\n');
        text
    }

    /// [`url`](Self::url) as a QR code drawn with Unicode half blocks (two rows of modules per
    /// line of text), dark modules drawn dark on a light quiet zone, for a phone to scan.
    /// `None` when the URL is too long for a QR code.
    #[cfg(feature = "qr")]
    pub fn qr_code(&self) -> Option<String> {
        use qrcode::{QrCode, render::unicode::Dense1x2};
        let code = QrCode::new(self.url().as_bytes()).ok()?;
        Some(
            code.render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build(),
        )
    }
}

impl fmt::Display for DevicePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "To log in to {}, open this address in a browser, on this or any other device:",
            printable(&self.endpoint)
        )?;
        writeln!(f)?;
        // Again here: the fields are public, and may have been set directly.
        writeln!(f, "    {}", printable(self.url()))?;
        writeln!(f)?;
        let code = printable(&self.user_code);
        if self.url_has_code() {
            write!(f, "and check that it shows the code {code}.")?;
        } else {
            write!(f, "and enter the code {code}.")?;
        }
        if let Some(valid) = self.expires_in {
            write!(f, " The code is valid for {}.", human_duration(valid))?;
        }
        Ok(())
    }
}

/// `10 minutes`, `90 seconds`, `1 minute`, `2 minutes 30 seconds`.
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if secs < 120 && !secs.is_multiple_of(60) {
        plural(secs, "second")
    } else if secs.is_multiple_of(60) {
        plural(secs / 60, "minute")
    } else {
        format!(
            "{} {}",
            plural(secs / 60, "minute"),
            plural(secs % 60, "second")
        )
    }
}

/// The default [`PromptCallback`]: writes the prompt (and, with the `qr` feature, a QR code
/// of the URL) to standard error, so that standard output stays clean for a token printed by
/// a command-line tool.
pub fn prompt_on_stderr(prompt: &DevicePrompt) {
    let mut stderr = std::io::stderr().lock();
    // A closed stderr must not fail the login: the prompt is also logged.
    let _ = stderr.write_all(prompt.message(true).as_bytes());
    let _ = stderr.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> DevicePrompt {
        DevicePrompt::new(
            "flyte.example.org",
            "https://idp.example.org/activate",
            Some("https://idp.example.org/activate?user_code=WDJB-MJHT".to_owned()),
            "WDJB-MJHT",
            Some(Duration::from_secs(600)),
        )
    }

    #[test]
    fn complete_url_is_shown_and_the_code_is_to_be_checked() {
        let prompt = example();
        assert_eq!(
            prompt.url(),
            "https://idp.example.org/activate?user_code=WDJB-MJHT"
        );
        let text = prompt.to_string();
        assert!(
            text.contains("    https://idp.example.org/activate?user_code=WDJB-MJHT\n"),
            "{text}"
        );
        assert!(
            text.contains("check that it shows the code WDJB-MJHT."),
            "{text}"
        );
        assert!(text.contains("valid for 10 minutes"), "{text}");
    }

    #[test]
    fn without_complete_url_the_user_enters_the_code() {
        let prompt = DevicePrompt::new(
            "flyte.example.org",
            "https://idp.example.org/activate",
            Some(String::new()),
            "ABCD-EFGH",
            None,
        );
        assert_eq!(prompt.url(), "https://idp.example.org/activate");
        let text = prompt.to_string();
        assert!(text.contains("enter the code ABCD-EFGH."), "{text}");
        assert!(!text.contains("valid for"), "{text}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(90)), "90 seconds");
        assert_eq!(human_duration(Duration::from_secs(60)), "1 minute");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(
            human_duration(Duration::from_secs(150)),
            "2 minutes 30 seconds"
        );
    }

    #[cfg(feature = "qr")]
    #[test]
    fn qr_code_is_drawn_with_half_blocks() {
        let qr = example().qr_code().expect("a short URL fits");
        let lines: Vec<&str> = qr.lines().collect();
        // Version 3 or 4 (29-33 modules) plus a 4-module quiet zone on each side; two rows per line.
        let width = lines[0].chars().count();
        assert!((37..=41).contains(&width), "{width}");
        assert!(lines.len() >= width / 2 && lines.len() <= width / 2 + 1);
        assert!(qr.contains('▀') || qr.contains('▄'), "{qr}");
        assert!(lines.iter().all(|l| l.chars().count() == width));
    }
}
