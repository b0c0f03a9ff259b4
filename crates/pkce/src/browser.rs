//! Opening the browser ([`BrowserOpener`]) and telling the user where to log in
//! ([`LoginPrompt`]).

use std::{fmt, sync::Arc};

type OpenFn = dyn Fn(&str) -> Result<(), String> + Send + Sync;
type PromptFn = dyn Fn(&LoginEvent<'_>) + Send + Sync;

/// How the authorization URL is opened.
///
/// - [`BrowserOpener::system`] (the default): the system's browser, through the
///   [`webbrowser`] crate, which honours `$BROWSER`. It runs on a blocking thread, so a
///   browser command that does not return does not stop the login.
/// - [`BrowserOpener::disabled`]: nothing is opened; the user opens the URL that the
///   [`LoginPrompt`] shows (headless machines, SSH sessions).
/// - [`BrowserOpener::new`]: your function (a GUI, a test playing the browser). It is called
///   on the login's task, after the callback server listens: it must not block, so spawn
///   the work it does. An `Err` is reported to the user through the [`LoginPrompt`], and the
///   login goes on waiting for the callback.
///
/// ```
/// use flyte_auth_pkce::BrowserOpener;
/// let opener = BrowserOpener::new(|url| {
///     eprintln!("please open {url}");
///     Ok(())
/// });
/// # let _ = opener;
/// ```
#[derive(Clone, Default)]
pub struct BrowserOpener(Opener);

#[derive(Clone, Default)]
enum Opener {
    #[default]
    System,
    Disabled,
    Custom(Arc<OpenFn>),
}

impl BrowserOpener {
    /// The system's browser (honours `$BROWSER`).
    pub fn system() -> Self {
        Self(Opener::System)
    }

    /// Opens nothing: the user opens the URL the prompt shows.
    pub fn disabled() -> Self {
        Self(Opener::Disabled)
    }

    /// Calls `open` with the authorization URL. It must not block.
    pub fn new(open: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self(Opener::Custom(Arc::new(open)))
    }

    /// Whether this opener opens nothing.
    pub fn is_disabled(&self) -> bool {
        matches!(self.0, Opener::Disabled)
    }

    /// Opens `url`; `Ok(())` when nothing is to be opened.
    pub(crate) async fn open(&self, url: &str) -> Result<(), String> {
        match &self.0 {
            Opener::Disabled => Ok(()),
            Opener::Custom(open) => open(url),
            Opener::System => {
                let target = url.to_owned();
                match tokio::task::spawn_blocking(move || webbrowser::open(&target)).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the browser could not be started: {e}")),
                }
            }
        }
    }
}

impl fmt::Debug for BrowserOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Opener::System => "BrowserOpener::System",
            Opener::Disabled => "BrowserOpener::Disabled",
            Opener::Custom(_) => "BrowserOpener::Custom",
        })
    }
}

/// What happens during a browser login that the user must know about.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum LoginEvent<'a> {
    /// The callback server listens and the browser is about to be opened (unless
    /// `browser_opened` is false): the user logs in at `url`.
    Started {
        /// The authorization URL.
        url: &'a str,
        /// The endpoint the login is for.
        endpoint: &'a str,
        /// Whether a browser is going to be opened.
        browser_opened: bool,
    },
    /// The browser could not be opened: the user must open `url` by hand.
    BrowserFailed {
        /// The authorization URL.
        url: &'a str,
        /// Why (the opener's message).
        reason: &'a str,
    },
}

/// What [`LoginPrompt::stderr`] writes, one line break short.
impl fmt::Display for LoginEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started {
                url,
                endpoint,
                browser_opened: true,
            } => write!(
                f,
                "Opening the browser to log in to {endpoint}. If it does not open, visit this URL:\n\n    {url}\n"
            ),
            Self::Started { url, endpoint, .. } => write!(
                f,
                "To log in to {endpoint}, open this URL in a browser on this machine:\n\n    {url}\n"
            ),
            Self::BrowserFailed { reason, .. } => write!(
                f,
                "Could not open a browser ({reason}); open the URL above to log in."
            ),
        }
    }
}

/// How the user is told where to log in.
///
/// By default ([`LoginPrompt::stderr`]) the authorization URL is always written to standard
/// error, so that a user whose browser did not open (SSH, WSL, containers) can copy it.
/// A GUI or a tool with its own output supplies [`LoginPrompt::new`] and shows the
/// [`LoginEvent`]s its own way; nothing is then written to standard error.
///
/// ```
/// use flyte_auth_pkce::{LoginEvent, LoginPrompt};
/// let prompt = LoginPrompt::new(|event| match event {
///     LoginEvent::Started { url, .. } => eprintln!("log in at {url}"),
///     LoginEvent::BrowserFailed { reason, .. } => eprintln!("no browser: {reason}"),
///     _ => {}
/// });
/// # let _ = prompt;
/// ```
#[derive(Clone, Default)]
pub struct LoginPrompt(Option<Arc<PromptFn>>);

impl LoginPrompt {
    /// Writes the URL (and any failure to open the browser) to standard error.
    pub fn stderr() -> Self {
        Self(None)
    }

    /// Calls `show` for each [`LoginEvent`] instead of writing to standard error.
    pub fn new(show: impl Fn(&LoginEvent<'_>) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(show)))
    }

    pub(crate) fn show(&self, event: &LoginEvent<'_>) {
        match &self.0 {
            Some(show) => show(event),
            None => eprintln!("{event}"),
        }
    }
}

impl fmt::Debug for LoginPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "LoginPrompt::Custom"
        } else {
            "LoginPrompt::Stderr"
        })
    }
}
