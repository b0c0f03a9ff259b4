//! Where the login prompts go: standard error always (on a headless machine a log is where
//! the user reads the device code), and also the controlling terminal when standard error is
//! not one — flyte-auth run by pyflyte or flytectl as their `command` has its standard error
//! captured, and the user would otherwise never see the prompt.

use std::io::{IsTerminal as _, Write as _};

use flyte_auth::{device::DevicePrompt, pkce::LoginPrompt};

/// Writes `text` to standard error and, when that is not a terminal, to the controlling
/// terminal if there is one. Failures to write are ignored: the login goes on.
pub(crate) fn show(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
    if !std::io::stderr().is_terminal()
        && let Some(mut tty) = controlling_terminal()
    {
        let _ = tty.write_all(text.as_bytes());
        let _ = tty.flush();
    }
}

/// The controlling terminal, when the process has one.
fn controlling_terminal() -> Option<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    cfg!(unix).then(|| options.write(true).open("/dev/tty").ok())?
}

/// The device login prompt: the URL and code, with a QR code of the URL when `qr`.
pub(crate) fn device(qr: bool) -> impl Fn(&DevicePrompt) + Send + Sync + 'static {
    move |prompt: &DevicePrompt| show(&prompt.message(qr))
}

/// The browser login prompt: where to log in, and what to do when no browser opened.
pub(crate) fn browser() -> LoginPrompt {
    LoginPrompt::new(|event| show(&format!("{event}\n")))
}
