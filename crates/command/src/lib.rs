//! Flyte's external-command authenticator: a program you name prints the access token
//! (Flyte's `authType: ExternalCommand` with `admin.command`, and `admin.proxyCommand` for a
//! proxy in front of Flyte).
//!
//! [`CommandAuthenticator`] is flytekit's `CommandAuthenticator`: the command is an argument
//! list run without a shell, and its standard output, trimmed, is the token. Unlike flytekit's,
//! it has a time-out ([`DEFAULT_TIMEOUT`]) that kills the command's process group, checks the
//! output ([`MAX_OUTPUT`], one token), names how a failing command ended with the end of its
//! stderr, shows the program name only (arguments may hold secrets), and shares one run among
//! concurrent callers; the crate's README says each in full. No HTTP or TLS stack and no async
//! runtime: the command runs on a std thread and any executor can await the answer.
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth_core::Error> {
//! use flyte_auth_command::CommandFlow;
//! use flyte_auth_core::{Authenticator, CachingAuthenticator};
//!
//! let auth = CachingAuthenticator::builder(CommandFlow::new(["gcloud", "auth", "print-identity-token"])?)
//!     .build();
//! let header = auth.auth_header().await?; // `authorization: Bearer <what gcloud printed>`
//! # let _ = header; Ok(()) }
//! ```

mod process;

use std::{fmt, sync::Arc, thread, time::Duration};

use flyte_auth_core::{
    BoxFuture, CachingAuthenticator, ClientConfigStore, Credentials, DEFAULT_ENDPOINT,
    DEFAULT_HEADER_KEY, Endpoint, Error, SecretString, TokenFlow, parse_header_name,
};
use http::HeaderName;
use tokio::sync::{OnceCell, oneshot};

pub use crate::process::exit_code;
use crate::process::{Finished, Job, command_error, describe};

/// How long the command may run unless [`CommandFlowBuilder::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most the command may print on standard output, in bytes (64 KiB). A token is far
/// smaller; a command printing more is stopped, and the run is an error.
pub const MAX_OUTPUT: usize = process::MAX_OUTPUT;

/// The header of [`CommandFlow::proxy`]: flytekit's `proxyCommand` sends its token
/// in `proxy-authorization`, for a proxy in front of Flyte.
pub const PROXY_HEADER_KEY: &str = "proxy-authorization";

/// Obtains the token by running a command: flytekit's `CommandAuthenticator`, the shared
/// [`CachingAuthenticator`] around a [`CommandFlow`].
///
/// Concurrent callers share one run of the command; a refresh runs it again. `{:?}` shows
/// the program name, never its arguments or the token.
///
/// ```
/// use flyte_auth_command::{CommandAuthenticator, CommandFlow};
/// use flyte_auth_core::CachingAuthenticator;
///
/// let auth: CommandAuthenticator =
///     CachingAuthenticator::builder(CommandFlow::new(["my-token-helper", "--secret=hunter2"])?)
///         .build();
/// let printed = format!("{auth:?}");
/// assert!(printed.contains("my-token-helper") && !printed.contains("hunter2"));
/// assert!(CommandFlow::new(Vec::<String>::new()).is_err());
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
pub type CommandAuthenticator = CachingAuthenticator<CommandFlow>;

/// Builds a [`CommandFlow`]; see [`CommandFlow::builder`].
///
/// ```
/// use std::time::Duration;
/// use flyte_auth_command::CommandFlow;
/// use flyte_auth_core::Endpoint;
///
/// let flow = CommandFlow::builder()
///     .command(["gcloud", "auth", "print-identity-token"])
///     .timeout(Duration::from_secs(10))
///     .endpoint(Endpoint::parse("dns:///flyte.example.org")?)
///     .build()?;
/// assert_eq!(flow.timeout(), Duration::from_secs(10));
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct CommandFlowBuilder {
    command: Vec<SecretString>,
    header_key: Option<String>,
    header_from: Option<Arc<dyn ClientConfigStore>>,
    timeout: Option<Duration>,
    endpoint: Option<Endpoint>,
    interactive: bool,
}

impl fmt::Debug for CommandFlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandFlowBuilder")
            .field(
                "program",
                &self.command.first().map(SecretString::expose_secret),
            )
            .field("arguments", &self.command.len().saturating_sub(1))
            .field("header_key", &self.header_key)
            .field("header_from", &self.header_from)
            .field("timeout", &self.timeout)
            .field("endpoint", &self.endpoint)
            .field("interactive", &self.interactive)
            .finish()
    }
}

impl CommandFlowBuilder {
    /// The program and its arguments (`admin.command`), run without a shell. Required.
    ///
    /// The arguments are kept as secrets: they never appear in logs, `{:?}` or errors.
    pub fn command(mut self, command: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.command = command
            .into_iter()
            .map(|s| SecretString::new(s.into()))
            .collect();
        self
    }

    /// The header the token goes in: `authorization` by default, [`PROXY_HEADER_KEY`] for a
    /// proxy, or the configuration's `authorizationHeader`.
    pub fn header_key(mut self, header_key: impl Into<String>) -> Self {
        let key = header_key.into();
        self.header_key = (!key.trim().is_empty()).then_some(key);
        self
    }

    /// When no [`header_key`](Self::header_key) is given, asks `store` (the Flyte server's
    /// discovery, say) for the header on the first run, once: Flyte's
    /// `authorization_metadata_key`, as flytekit does. If it cannot answer, the token goes in
    /// `authorization` and the failure is logged.
    pub fn header_from(mut self, store: Arc<dyn ClientConfigStore>) -> Self {
        self.header_from = Some(store);
        self
    }

    /// How long the command may run ([`DEFAULT_TIMEOUT`] by default). When it is over, the
    /// command and its process group are killed and the run fails with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The server the token is for: what a token store files it under, if the caching
    /// authenticator has one ([`DEFAULT_ENDPOINT`] by default). A proxy authenticator for
    /// the same server must not share a store with the main one: both would file their
    /// tokens under this endpoint.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Lets the command talk to the user on the terminal (an MFA prompt, say). Off by default.
    ///
    /// Off, the command's stdin is empty and it runs in a process group of its own, so that a
    /// time-out kills everything it started. On, it inherits stdin and stays in the terminal's
    /// foreground process group (a background group would be stopped when it reads the
    /// terminal), and a time-out kills the command itself only.
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.interactive = interactive;
        self
    }

    /// The flow. Runs nothing yet.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the command or its program name is empty, the header key is not
    /// a valid header name, or the time-out is zero.
    pub fn build(self) -> Result<CommandFlow, Error> {
        let mut command = self.command.into_iter();
        let program = command
            .next()
            .map(|p| p.expose_secret().to_owned())
            .ok_or_else(|| {
                Error::config(
                    "the command is empty: auth type ExternalCommand needs a command \
                     (admin.command or FLYTE_CREDENTIALS_COMMAND), the program and its \
                     arguments, e.g. [\"gcloud\", \"auth\", \"print-identity-token\"]",
                )
            })?;
        if program.trim().is_empty() {
            return Err(Error::config("the command's program name is empty"));
        }
        let header = self
            .header_key
            .as_deref()
            .map(parse_header_name)
            .transpose()?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(Error::config(format!(
                "the time-out of command `{program}` is zero"
            )));
        }
        let endpoint = self
            .endpoint
            .map_or_else(|| Endpoint::parse(DEFAULT_ENDPOINT), Ok)?;
        Ok(CommandFlow {
            job: Arc::new(Job {
                program,
                args: command.collect(),
                timeout,
                interactive: self.interactive,
            }),
            header_from: self.header_from.filter(|_| header.is_none()),
            header,
            discovered_header: OnceCell::new(),
            endpoint,
        })
    }
}

/// The [`TokenFlow`] of [`CommandAuthenticator`]: [`login`](TokenFlow::login) runs the
/// command; there is no refresh grant, so a refresh runs it again.
///
/// Each run happens on a new std thread, which waits for the command, enforces the time-out
/// and hands the result back through a oneshot channel, so any executor (or none, with a
/// simple `block_on`) can await it. Dropping the future before it completes kills the command.
pub struct CommandFlow {
    job: Arc<Job>,
    header: Option<HeaderName>,
    header_from: Option<Arc<dyn ClientConfigStore>>,
    discovered_header: OnceCell<HeaderName>,
    endpoint: Endpoint,
}

impl fmt::Debug for CommandFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandFlow")
            .field("program", &self.job.program)
            .field(
                "arguments",
                &format_args!("<{} redacted>", self.job.args.len()),
            )
            .field("header_key", &self.header_key())
            .field("timeout", &self.job.timeout)
            .field("endpoint", &self.endpoint)
            .field("interactive", &self.job.interactive)
            .finish()
    }
}

impl CommandFlow {
    /// Starts a builder.
    pub fn builder() -> CommandFlowBuilder {
        CommandFlowBuilder::default()
    }

    /// flytekit's `CommandAuthenticator(command)`: the token goes in the `authorization`
    /// header; everything else takes its default. Use [`builder`](Self::builder) for more.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the command is empty.
    pub fn new(command: impl IntoIterator<Item = impl Into<String>>) -> Result<Self, Error> {
        Self::builder().command(command).build()
    }

    /// For a proxy in front of Flyte (flytekit's `proxyCommand`): like [`new`](Self::new),
    /// but the token goes in the [`proxy-authorization`](PROXY_HEADER_KEY) header.
    ///
    /// ```
    /// use flyte_auth_command::CommandFlow;
    /// let proxy = CommandFlow::proxy(["iap-token"])?;
    /// assert_eq!(proxy.header_key().as_str(), "proxy-authorization");
    /// # Ok::<(), flyte_auth_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the command is empty.
    pub fn proxy(command: impl IntoIterator<Item = impl Into<String>>) -> Result<Self, Error> {
        Self::builder()
            .command(command)
            .header_key(PROXY_HEADER_KEY)
            .build()
    }

    /// The program: the first element of the command, as given.
    pub fn program(&self) -> &str {
        &self.job.program
    }

    /// The header the token goes in: the configured one, else the server's once asked,
    /// else `authorization`.
    pub fn header_key(&self) -> HeaderName {
        self.header_name()
            .unwrap_or(HeaderName::from_static(DEFAULT_HEADER_KEY))
    }

    /// The server's header, asked for once when none is configured.
    async fn discover_header(&self) {
        let Some(store) = &self.header_from else {
            return;
        };
        self.discovered_header
            .get_or_init(|| async {
                match store
                    .get_client_config()
                    .await
                    .and_then(|c| c.header_name())
                {
                    Ok(header) => header,
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            "could not ask the server which header the token goes in; using \
                             `authorization` (set authorizationHeader to choose)"
                        );
                        HeaderName::from_static(DEFAULT_HEADER_KEY)
                    }
                }
            })
            .await;
    }

    /// How long the command may run.
    pub fn timeout(&self) -> Duration {
        self.job.timeout
    }

    /// Whether the command may talk to the user on the terminal.
    pub fn is_interactive(&self) -> bool {
        self.job.interactive
    }

    /// Turns what the command printed into credentials, or says why it cannot.
    fn credentials(&self, finished: Finished) -> Result<Credentials, Error> {
        let program = self.program();
        // Never show the output or the arguments in an error, not even where stderr repeats them.
        let printed = String::from_utf8_lossy(&finished.stdout);
        let mut hide: Vec<&str> = printed
            .split_whitespace()
            .filter(|w| w.len() >= 8)
            .collect();
        hide.extend(self.job.secret_words());
        hide.sort_by_key(|w| std::cmp::Reverse(w.len()));
        let fail =
            |status: &str| command_error(program, status.to_owned(), finished.stderr.text(&hide));

        if !finished.status.success() {
            return Err(fail(&describe(finished.status)));
        }
        let Ok(text) = std::str::from_utf8(&finished.stdout) else {
            return Err(fail(
                "exited successfully, but its standard output is not UTF-8 text",
            ));
        };
        let token = text.trim();
        if token.is_empty() {
            return Err(fail(
                "exited successfully, but printed nothing on standard output",
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(fail(
                "exited successfully, but its standard output is not one token: it has spaces, \
                 line breaks, control or non-ASCII characters inside",
            ));
        }
        let credentials = Credentials::new(token, self.endpoint.key());
        match credentials.expires_at() {
            Some(at) if credentials.is_expired_within(Duration::ZERO) => {
                let ago = at.elapsed().unwrap_or_default().as_secs();
                tracing::warn!(
                    program,
                    expired_s_ago = ago,
                    "the token command printed a token that has already expired (its `exp` \
                     claim); check the command and this machine's clock"
                );
            }
            expiry => tracing::debug!(
                program,
                expiry_known = expiry.is_some(),
                "the token command printed a token"
            ),
        }
        Ok(credentials)
    }
}

impl TokenFlow for CommandFlow {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let job = Arc::clone(&self.job);
            tracing::debug!(
                program = %job.program,
                arguments = job.args.len(),
                timeout_s = job.timeout.as_secs_f32(),
                "running the token command"
            );
            let (tx, rx) = oneshot::channel();
            thread::Builder::new()
                .name("flyte-auth-command".into())
                .spawn(move || {
                    let result = process::run(&job, &|| tx.is_closed());
                    // The caller may have stopped waiting; then nobody needs the answer.
                    let _ = tx.send(result);
                })
                .map_err(|e| {
                    command_error(
                        self.program(),
                        format!("could not start: no thread to run it on: {e}"),
                        String::new(),
                    )
                })?;
            let finished = rx.await.map_err(|_| {
                command_error(
                    self.program(),
                    "the thread running it ended without an answer".to_owned(),
                    String::new(),
                )
            })??;
            let credentials = self.credentials(finished)?;
            // Asked once the command has answered: a command that fails (a flyte-auth refusing
            // to run itself, say) is reported without waiting for the server first.
            self.discover_header().await;
            Ok(credentials)
        })
    }

    /// Asks the server first when the header is its to name (once): the header is known
    /// before the command has ever run.
    fn resolve_header_name(&self) -> BoxFuture<'_, Result<Option<HeaderName>, Error>> {
        Box::pin(async move {
            self.discover_header().await;
            Ok(self.header_name())
        })
    }

    fn header_name(&self) -> Option<HeaderName> {
        let default = || Some(HeaderName::from_static(DEFAULT_HEADER_KEY));
        let later = || match self.header_from {
            None => default(),
            Some(_) => self.discovered_header.get().cloned(),
        };
        self.header.clone().or_else(later)
    }
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
