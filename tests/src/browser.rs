//! A scripted user with a browser: logs in, consents or refuses, enters device codes.
//!
//! [`Browser`] talks to the provider the way a browser does: it keeps cookies, submits the
//! forms it is shown, follows redirects one by one (none automatically), and when the
//! provider finally redirects to another origin (the loopback callback of the client under
//! test) it sends that GET and hands back what the callback server answered.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use url::{Origin, Url};

use crate::cookies::CookieJar;
use crate::html::{Form, Page};

/// Each HTTP request of the browser gives up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Redirects followed in a row before giving up.
const MAX_REDIRECTS: usize = 20;
/// Pages filled in during one login before giving up.
const MAX_PAGES: usize = 12;

/// Why a scripted login or device approval did not go as a person would expect.
///
/// Messages never contain authorization codes, tokens or secrets: URLs are shown without
/// their query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// A request could not be sent or its answer not read.
    #[error("browser request to {url} failed")]
    Http {
        /// The URL, without its query.
        url: String,
        /// What went wrong (its own message carries no URL).
        #[source]
        source: reqwest::Error,
    },
    /// The provider showed an error page instead of going on.
    #[error("the identity provider answered HTTP {status} with an error {summary}")]
    ErrorPage {
        /// HTTP status of the page.
        status: u16,
        /// Title and start of the page text.
        summary: String,
    },
    /// A page the script does not know how to fill in.
    #[error("unexpected page from the identity provider (HTTP {status}) at {url}: {summary}")]
    UnexpectedPage {
        /// HTTP status of the page.
        status: u16,
        /// Where the page was, without query.
        url: String,
        /// Title and start of the page text.
        summary: String,
    },
    /// An answer that is neither a redirect nor an HTML page.
    #[error("unexpected HTTP {status} answer ({content_type}) from {url}")]
    UnexpectedResponse {
        /// HTTP status.
        status: u16,
        /// The URL, without its query.
        url: String,
        /// Its content type.
        content_type: String,
    },
    /// A redirect without a usable `Location`.
    #[error("redirect from {url} has no usable Location header")]
    BadRedirect {
        /// The URL that redirected, without its query.
        url: String,
    },
    /// Too many redirects or pages: the flow loops.
    #[error("gave up after {0} steps: the login does not come to an end")]
    TooManySteps(usize),
    /// The login was meant to be refused but the provider asked for no consent (the
    /// browser's session had consented before).
    #[error("the identity provider did not ask for consent, so it could not be refused")]
    NoConsentAsked,
    /// The provider sent the browser away from itself during a device approval.
    #[error("the identity provider redirected the device approval to {url}")]
    LeftProvider {
        /// The redirect target, without its query.
        url: String,
    },
    /// The provider did not accept the user code (unknown, expired, used, or denied).
    #[error("the identity provider did not accept the user code: {summary}")]
    UserCodeRejected {
        /// Title and text of the page that said so.
        summary: String,
    },
}

/// What the loopback callback server of the client under test answered the browser.
///
/// `Debug` hides the authorization code.
#[derive(Clone)]
pub struct CallbackResponse {
    redirect_url: Url,
    status: u16,
    body: String,
}

impl CallbackResponse {
    /// The URL the provider redirected the browser to (the `redirect_uri` with `code` and
    /// `state`, or `error`).
    pub fn redirect_url(&self) -> &Url {
        &self.redirect_url
    }

    /// HTTP status the callback server answered.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Body the callback server answered (what the user would read in the browser tab).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// A query parameter of the redirect.
    pub fn query(&self, name: &str) -> Option<String> {
        self.redirect_url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The authorization code, if the provider granted one.
    pub fn code(&self) -> Option<String> {
        self.query("code")
    }

    /// The `state` echoed by the provider.
    pub fn state(&self) -> Option<String> {
        self.query("state")
    }

    /// The OAuth `error` of the redirect (`access_denied` when consent was refused).
    pub fn error(&self) -> Option<String> {
        self.query("error")
    }
}

impl fmt::Debug for CallbackResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackResponse")
            .field("redirect_url", &redacted(&self.redirect_url))
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The URL with `code` (and any token-like parameter) replaced by `[redacted]`.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hide = matches!(
                    k.as_ref(),
                    "code" | "access_token" | "refresh_token" | "id_token"
                );
                (
                    k.into_owned(),
                    if hide {
                        "[redacted]".to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// The URL without query or fragment, for error messages.
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

enum Step {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

impl Step {
    fn url(&self) -> &Url {
        match self {
            Self::Get(url) | Self::Post(url, _) => url,
        }
    }
}

enum Landing {
    /// A redirect to another origin (the client's callback), not followed yet.
    LeftProvider(Url),
    /// An HTML page of the provider.
    Page { url: Url, status: u16, page: Page },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Deny,
}

/// A browser with a user at the keyboard who signs in as [`Browser::username`].
///
/// The provider accepts any username with any password. The browser keeps its cookies
/// between calls, so a second login with the same `Browser` reuses the provider session
/// (no login page, no consent page), as a real browser would; use a new `Browser` for a
/// fresh user.
pub struct Browser {
    http: reqwest::Client,
    jar: Mutex<CookieJar>,
    username: String,
    password: String,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with no cookies, whose user signs in as `alice`.
    pub fn new() -> Self {
        Self::with_user("alice")
    }

    /// A browser with no cookies, whose user signs in as `username` (the token's subject).
    pub fn with_user(username: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .user_agent("flyte-auth-tests-browser/1")
            .build()
            .expect("a reqwest client with these settings always builds");
        Self {
            http,
            jar: Mutex::new(CookieJar::default()),
            username: username.into(),
            password: "any password".to_owned(),
        }
    }

    /// The username this browser signs in with.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Opens `authorization_url`, signs in, approves, and follows the final redirect to the
    /// client's callback, returning what the callback server answered.
    ///
    /// # Errors
    ///
    /// [`BrowserError`] when the provider shows an error page (e.g. a `redirect_uri` that is
    /// not registered), a request fails, or the callback server cannot be reached.
    pub async fn complete_login(
        &self,
        authorization_url: &Url,
    ) -> Result<CallbackResponse, BrowserError> {
        let redirect = self.authorize(authorization_url).await?;
        self.follow_to_callback(redirect).await
    }

    /// Opens `authorization_url`, signs in, then refuses consent (the provider's "Cancel"),
    /// and follows the redirect (with `error=access_denied`) to the client's callback.
    ///
    /// # Errors
    ///
    /// As [`Browser::complete_login`]; [`BrowserError::NoConsentAsked`] when this browser's
    /// session had already consented.
    pub async fn deny_consent(
        &self,
        authorization_url: &Url,
    ) -> Result<CallbackResponse, BrowserError> {
        let redirect = self.drive(authorization_url, Decision::Deny).await?;
        self.follow_to_callback(redirect).await
    }

    /// Signs in and approves like [`Browser::complete_login`] but stops before the callback:
    /// returns the URL the provider redirected to (with `code` and `state`) without sending
    /// it, for tests without a listening callback server.
    ///
    /// # Errors
    ///
    /// As [`Browser::complete_login`].
    pub async fn authorize(&self, authorization_url: &Url) -> Result<Url, BrowserError> {
        self.drive(authorization_url, Decision::Approve).await
    }

    /// Opens the provider's `verification_uri` (the `/device` page), types `user_code`,
    /// confirms, signs in and approves: afterwards the device's token poll succeeds.
    ///
    /// # Errors
    ///
    /// [`BrowserError::UserCodeRejected`] when the provider does not accept the code
    /// (unknown, expired, already used); other [`BrowserError`]s as for logins.
    pub async fn approve_device_code(
        &self,
        verification_uri: &Url,
        user_code: &str,
    ) -> Result<(), BrowserError> {
        self.device(verification_uri, user_code, Decision::Approve)
            .await
    }

    /// Opens the provider's `verification_uri`, types `user_code` and presses "Abort" on the
    /// confirmation page: afterwards the device's token poll gets `access_denied`.
    ///
    /// # Errors
    ///
    /// As [`Browser::approve_device_code`].
    pub async fn deny_device_code(
        &self,
        verification_uri: &Url,
        user_code: &str,
    ) -> Result<(), BrowserError> {
        self.device(verification_uri, user_code, Decision::Deny)
            .await
    }

    async fn drive(
        &self,
        authorization_url: &Url,
        decision: Decision,
    ) -> Result<Url, BrowserError> {
        let origin = authorization_url.origin();
        let mut landing = self
            .go(Step::Get(authorization_url.clone()), &origin)
            .await?;
        for _ in 0..MAX_PAGES {
            let (url, status, page) = match landing {
                Landing::LeftProvider(url) => {
                    if decision == Decision::Deny {
                        return Err(BrowserError::NoConsentAsked);
                    }
                    return Ok(url);
                }
                Landing::Page { url, status, page } => (url, status, page),
            };
            let step = if let Some(form) = login_form(&page) {
                self.login_step(&url, form)?
            } else if let Some(form) = consent_form(&page) {
                match decision {
                    Decision::Approve => submit(&url, form, &[])?,
                    Decision::Deny => {
                        let abort = page
                            .links
                            .iter()
                            .find(|href| href.ends_with("/abort"))
                            .ok_or_else(|| unexpected(&url, status, &page))?;
                        let abort = url
                            .join(abort)
                            .map_err(|_| unexpected(&url, status, &page))?;
                        // After this the provider redirects to the callback with the error.
                        let landing = self.go(Step::Get(abort), &origin).await?;
                        return match landing {
                            Landing::LeftProvider(redirect) => Ok(redirect),
                            Landing::Page { url, status, page } => {
                                Err(page_error(&url, status, &page))
                            }
                        };
                    }
                }
            } else {
                return Err(page_error(&url, status, &page));
            };
            landing = self.go(step, &origin).await?;
        }
        Err(BrowserError::TooManySteps(MAX_PAGES))
    }

    async fn device(
        &self,
        verification_uri: &Url,
        user_code: &str,
        decision: Decision,
    ) -> Result<(), BrowserError> {
        let origin = verification_uri.origin();
        let mut landing = self
            .go(Step::Get(verification_uri.clone()), &origin)
            .await?;
        let mut code_entered = false;
        let mut aborted = false;
        let mut confirmed = false;
        for _ in 0..MAX_PAGES {
            let (url, status, page) = match landing {
                Landing::LeftProvider(url) => {
                    return Err(BrowserError::LeftProvider {
                        url: without_query(&url),
                    });
                }
                Landing::Page { url, status, page } => (url, status, page),
            };
            let step = if let Some(form) = page
                .form_with_id("op.deviceInputForm")
                .or_else(|| page.forms.iter().find(|f| is_code_input(f)))
            {
                if aborted {
                    // The input page again, saying the sign-in was interrupted: denied.
                    return Ok(());
                }
                if code_entered {
                    return Err(BrowserError::UserCodeRejected {
                        summary: page.summary(),
                    });
                }
                code_entered = true;
                submit(&url, form, &[("user_code", user_code)])?
            } else if let Some(form) = page
                .form_with_id("op.deviceConfirmForm")
                .or_else(|| page.form_with_input("confirm"))
            {
                match decision {
                    Decision::Approve => {
                        confirmed = true;
                        submit(&url, form, &[])?
                    }
                    Decision::Deny => {
                        aborted = true;
                        // The "[ Abort ]" button submits the same form with abort=yes.
                        submit(&url, form, &[("abort", "yes")])?
                    }
                }
            } else if let Some(form) = login_form(&page) {
                self.login_step(&url, form)?
            } else if let Some(form) = consent_form(&page) {
                submit(&url, form, &[])?
            } else if confirmed && status < 400 && page.forms.is_empty() {
                // The provider's "Sign-in Success" page.
                return Ok(());
            } else {
                return Err(page_error(&url, status, &page));
            };
            landing = self.go(step, &origin).await?;
        }
        Err(BrowserError::TooManySteps(MAX_PAGES))
    }

    fn login_step(&self, url: &Url, form: &Form) -> Result<Step, BrowserError> {
        submit(
            url,
            form,
            &[
                ("login", self.username.as_str()),
                ("password", self.password.as_str()),
            ],
        )
    }

    /// Sends `step` and follows redirects within the provider's origin; stops at an HTML
    /// page or at a redirect to another origin.
    async fn go(&self, first: Step, provider: &Origin) -> Result<Landing, BrowserError> {
        let mut step = first;
        for _ in 0..MAX_REDIRECTS {
            let url = step.url().clone();
            if url.origin() != *provider {
                return Ok(Landing::LeftProvider(url));
            }
            let response = self.send(&step).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| url.join(v).ok())
                    .ok_or_else(|| BrowserError::BadRedirect {
                        url: without_query(&url),
                    })?;
                step = Step::Get(location);
                continue;
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response
                .text()
                .await
                .map_err(|source| http_error(&url, source))?;
            if !content_type.starts_with("text/html") {
                return Err(BrowserError::UnexpectedResponse {
                    status: status.as_u16(),
                    url: without_query(&url),
                    content_type,
                });
            }
            return Ok(Landing::Page {
                url,
                status: status.as_u16(),
                page: Page::parse(&body),
            });
        }
        Err(BrowserError::TooManySteps(MAX_REDIRECTS))
    }

    async fn send(&self, step: &Step) -> Result<reqwest::Response, BrowserError> {
        let url = step.url();
        let mut request = match step {
            Step::Get(url) => self.http.get(url.clone()),
            Step::Post(url, fields) => self.http.post(url.clone()).form(fields),
        };
        let cookies = self
            .jar
            .lock()
            .expect("the cookie jar lock is never held across a panic")
            .header_for(url);
        if let Some(cookies) = cookies {
            request = request.header(COOKIE, cookies);
        }
        let response = request
            .send()
            .await
            .map_err(|source| http_error(url, source))?;
        let mut jar = self
            .jar
            .lock()
            .expect("the cookie jar lock is never held across a panic");
        for header in response.headers().get_all(SET_COOKIE) {
            if let Ok(header) = header.to_str() {
                jar.store(url, header);
            }
        }
        Ok(response)
    }

    async fn follow_to_callback(&self, redirect: Url) -> Result<CallbackResponse, BrowserError> {
        let response = self
            .http
            .get(redirect.clone())
            .send()
            .await
            .map_err(|source| http_error(&redirect, source))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|source| http_error(&redirect, source))?;
        Ok(CallbackResponse {
            redirect_url: redirect,
            status,
            body,
        })
    }
}

fn http_error(url: &Url, source: reqwest::Error) -> BrowserError {
    BrowserError::Http {
        url: without_query(url),
        source: source.without_url(),
    }
}

fn login_form(page: &Page) -> Option<&Form> {
    page.forms
        .iter()
        .find(|f| f.has_input("login") && f.has_input("password"))
}

fn consent_form(page: &Page) -> Option<&Form> {
    page.forms
        .iter()
        .find(|f| f.value_of("prompt") == Some("consent"))
}

fn is_code_input(form: &Form) -> bool {
    form.inputs
        .iter()
        .any(|(name, _, kind)| name == "user_code" && kind != "hidden")
}

fn submit(url: &Url, form: &Form, overrides: &[(&str, &str)]) -> Result<Step, BrowserError> {
    let target = match form.action.as_deref() {
        Some(action) if !action.is_empty() => {
            url.join(action).map_err(|_| BrowserError::UnexpectedPage {
                status: 200,
                url: without_query(url),
                summary: format!("form action {action:?} is not a URL"),
            })?
        }
        _ => url.clone(),
    };
    let fields = form.fields(overrides);
    if form.method == "post" {
        Ok(Step::Post(target, fields))
    } else {
        let mut target = target;
        target.query_pairs_mut().clear().extend_pairs(fields);
        Ok(Step::Get(target))
    }
}

fn unexpected(url: &Url, status: u16, page: &Page) -> BrowserError {
    BrowserError::UnexpectedPage {
        status,
        url: without_query(url),
        summary: page.summary(),
    }
}

fn page_error(url: &Url, status: u16, page: &Page) -> BrowserError {
    if status >= 400 {
        BrowserError::ErrorPage {
            status,
            summary: page.summary(),
        }
    } else {
        unexpected(url, status, page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_callback_hides_the_code() {
        let response = CallbackResponse {
            redirect_url: Url::parse("http://127.0.0.1:1/callback?code=SECRETCODE&state=s1")
                .unwrap(),
            status: 200,
            body: String::new(),
        };
        let shown = format!("{response:?}");
        assert!(!shown.contains("SECRETCODE"), "{shown}");
        assert!(shown.contains("state=s1"), "{shown}");
        assert_eq!(response.code().as_deref(), Some("SECRETCODE"));
    }
}
