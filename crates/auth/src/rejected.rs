//! What the integrations send, and what they do when a server rejects it: one mechanism for
//! `AuthLayer` and `AuthenticatedClient`.

use std::{
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use flyte_auth_core::{Authenticator, Error};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// What an answer says of the token sent with its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing: the token (or its absence) was not refused.
    Accepted,
    /// Refused: HTTP 401, gRPC `UNAUTHENTICATED` (16), Connect `unauthenticated`.
    Rejected,
    /// gRPC `UNKNOWN` (2) or Connect `unknown` whose message says "unauthenticated", as the
    /// Flyte 2 SDK reads a proxy that lost the code: a token that was sent is replaced, but a
    /// call without one starts no login (an application error may say the same).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    Doubtful,
}

/// The authenticators an integration sends tokens from, and what it learnt about its server:
/// shared by the clones of one `AuthLayer` or `AuthenticatedClient`.
#[derive(Clone)]
pub(crate) struct Tokens {
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) proxy: Option<Arc<dyn Authenticator>>,
    pub(crate) eager: bool,
    learnt: Arc<Learnt>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("auth", &self.auth)
            .field("proxy", &self.proxy)
            .field("eager", &self.eager)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// `auth`'s token, lazily, and no proxy token.
    pub(crate) fn new(auth: Arc<dyn Authenticator>) -> Self {
        Self {
            auth,
            proxy: None,
            eager: false,
            learnt: Arc::default(),
        }
    }

    /// The headers of one request.
    pub(crate) fn headers(&self) -> Headers {
        Headers {
            tokens: self.clone(),
            main_sent: None,
            proxy_sent: None,
        }
    }
}

/// What a lazy integration learnt about its server: whether it found no credentials, in
/// memory or in the store (later requests then skip the store, a keyring read per request to
/// a server without auth, until a server asks for a token and a login puts one in memory),
/// and whether the server refused a call at its end (in gRPC trailers, a Connect
/// end-of-stream message) after which every request waits for a token.
#[derive(Debug, Default)]
struct Learnt {
    none_stored: AtomicBool,
    token_wanted: AtomicBool,
    /// The next request obtains a token (a doubtful late rejection dropped the one sent).
    renew_next: AtomicBool,
    /// The header the token goes in ([`Authenticator::header_name`]) and the token it was
    /// asked for: asked again for each new token, which may follow a new discovery answer.
    header_name: RwLock<Option<(HeaderValue, HeaderName)>>,
}

/// The headers of one request: chosen before it is sent, renewed after a rejection.
pub(crate) struct Headers {
    tokens: Tokens,
    main_sent: Option<HeaderValue>,
    proxy_sent: Option<HeaderValue>,
}

impl Headers {
    /// Puts the headers to send now in `request`, replacing any of the same name. The token:
    /// the fresh one in memory; else, when `eager` or when credentials exist without a login
    /// (stored, or renewable), after obtaining them; else none (lazy: the server has not
    /// asked). The proxy token: always.
    pub(crate) async fn add_to(&mut self, request: &mut HeaderMap) -> Result<(), Error> {
        for (name, value) in self.next().await? {
            request.insert(name, value);
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
        if self.tokens.auth.forwards_caller_credentials() {
            // Passthrough: the caller's headers, as captured, or no request at all.
            let mut headers = caller_headers()?;
            if let Some(p) = &self.tokens.proxy {
                let header = p.auth_header().await?;
                self.proxy_sent = Some(header.value().clone());
                headers.push(header.into_parts());
            }
            return Ok(headers);
        }
        let main = match self.tokens.auth.fetch_grpc_call_auth_metadata() {
            Some(header) => Some(header),
            None if self.tokens.eager
                || self.tokens.learnt.token_wanted.load(Ordering::Relaxed)
                || self.tokens.learnt.renew_next.swap(false, Ordering::Relaxed)
                || self.load_credentials_without_login() =>
            {
                Some(self.tokens.auth.auth_header().await?)
            }
            None => {
                tracing::debug!("no credentials yet; sending the request without a token");
                None
            }
        };
        let proxy = match &self.tokens.proxy {
            Some(p) => Some(p.auth_header().await?),
            None => None,
        };
        self.main_sent = main.as_ref().map(|h| h.value().clone());
        self.proxy_sent = proxy.as_ref().map(|h| h.value().clone());
        let main = match main {
            Some(header) => Some((
                self.header_name(header.value()).await?,
                header.value().clone(),
            )),
            None => None,
        };
        Ok(main
            .into_iter()
            .chain(proxy.map(|h| h.into_parts()))
            .collect())
    }

    /// The header `token` goes in: asked of the authenticator once per token (a flow that
    /// learns it by discovery asks the server the first time).
    async fn header_name(&self, token: &HeaderValue) -> Result<HeaderName, Error> {
        let known = &self.tokens.learnt.header_name;
        if let Ok(known) = known.read()
            && let Some((for_token, name)) = known.as_ref()
            && for_token == token
        {
            return Ok(name.clone());
        }
        let name = self.tokens.auth.header_name().await?;
        if let Ok(mut known) = known.write() {
            *known = Some((token.clone(), name.clone()));
        }
        Ok(name)
    }

    /// [`Authenticator::load_credentials_without_login`], unless it already said no and nothing was
    /// obtained since.
    fn load_credentials_without_login(&self) -> bool {
        if self.tokens.learnt.none_stored.load(Ordering::Relaxed) {
            return false;
        }
        let has = self.tokens.auth.load_credentials_without_login();
        if !has {
            self.tokens
                .learnt
                .none_stored
                .store(true, Ordering::Relaxed);
        }
        has
    }

    /// After an answer whose head says `verdict` of the token and `status`: `None` when it
    /// rejected neither the token (a doubtful verdict counts only when a token was sent;
    /// forwarded caller credentials are never renewed) nor the proxy token (407). Else drops
    /// what was rejected and obtains new credentials (a token sent by no one yet: a login).
    pub(crate) async fn renew_after(
        &self,
        status: StatusCode,
        verdict: Verdict,
    ) -> Option<Result<(), Error>> {
        let main = !self.tokens.auth.forwards_caller_credentials()
            && match verdict {
                Verdict::Rejected => true,
                Verdict::Doubtful => self.main_sent.is_some(),
                Verdict::Accepted => false,
            };
        let proxy =
            status == StatusCode::PROXY_AUTHENTICATION_REQUIRED && self.tokens.proxy.is_some();
        if !main && !proxy {
            return None;
        }
        Some(self.renew(main, proxy).await)
    }

    async fn renew(&self, main: bool, proxy: bool) -> Result<(), Error> {
        if main {
            match &self.main_sent {
                Some(sent) => refresh_if_current(&*self.tokens.auth, sent, "token").await?,
                None => {
                    tracing::debug!("the server wants a token; logging in");
                    if let Err(e) = self.tokens.auth.auth_header().await {
                        tracing::warn!(error = %e, "could not get the token the server asked for");
                        return Err(e);
                    }
                    self.tokens
                        .learnt
                        .none_stored
                        .store(false, Ordering::Relaxed);
                }
            }
        }
        if proxy && let (Some(auth), Some(sent)) = (&self.tokens.proxy, &self.proxy_sent) {
            refresh_if_current(&**auth, sent, "proxy token").await?;
        }
        Ok(())
    }
}

#[cfg(feature = "tower")]
impl Headers {
    /// What to do when the server refuses this request's token after its headers, at the
    /// end of the call (where it cannot be sent again).
    pub(crate) fn late_rejection(&self) -> LateRejection {
        LateRejection {
            auth: Arc::clone(&self.tokens.auth),
            sent: self.main_sent.clone(),
            learnt: Arc::clone(&self.tokens.learnt),
        }
    }
}

#[cfg(feature = "tower")]
/// A rejection that arrives at the end of a call: in gRPC trailers, in a Connect
/// end-of-stream message or error body. The call is over and cannot be sent again.
pub(crate) struct LateRejection {
    auth: Arc<dyn Authenticator>,
    sent: Option<HeaderValue>,
    learnt: Arc<Learnt>,
}

#[cfg(feature = "tower")]
impl std::fmt::Debug for LateRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateRejection")
            .field("token_sent", &self.sent.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "tower")]
impl LateRejection {
    /// What the end of the call said. [`Verdict::Rejected`]: the token sent is dropped and
    /// every later request waits for a token (the server wants one). [`Verdict::Doubtful`]:
    /// only a token that was sent is dropped, and the next request obtains a new one.
    pub(crate) fn mark(&self, verdict: Verdict) {
        let learnt = &self.learnt;
        match (verdict, &self.sent) {
            (Verdict::Accepted, _) | (Verdict::Doubtful, None) => return,
            (Verdict::Rejected, _) => {
                learnt.none_stored.store(false, Ordering::Relaxed);
                learnt.token_wanted.store(true, Ordering::Relaxed);
            }
            (Verdict::Doubtful, Some(_)) => learnt.renew_next.store(true, Ordering::Relaxed),
        }
        tracing::info!(
            token_sent = self.sent.is_some(),
            "the server refused the call at its end; the next call gets a new token"
        );
        if let Some(sent) = &self.sent {
            self.auth.invalidate(sent);
        }
    }
}

/// The headers of the request being served, for an authenticator that forwards them.
#[cfg(feature = "tower")]
fn caller_headers() -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    crate::passthrough::forwarded_headers()
}

/// Without `tower` there is no passthrough scope to read.
#[cfg(not(feature = "tower"))]
fn caller_headers() -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    Err(Error::Config {
        message: "forwarding the caller's credentials (Passthrough) needs the `tower` feature \
                  of flyte-auth"
            .into(),
    })
}

/// Drops `sent` from `auth` and refreshes it, unless another request has already replaced
/// it (then the new token is fresh and the next request will carry it).
async fn refresh_if_current(
    auth: &dyn Authenticator,
    sent: &HeaderValue,
    what: &'static str,
) -> Result<(), Error> {
    auth.invalidate(sent);
    if auth
        .fetch_grpc_call_auth_metadata()
        .is_some_and(|current| current.value() != sent)
    {
        tracing::debug!("the server rejected a {what} that has been replaced already");
        return Ok(());
    }
    tracing::debug!("the server rejected the {what}; getting a new one");
    match auth.refresh_credentials().await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "could not get a new {what} after the server rejected the old one");
            Err(e)
        }
    }
}
