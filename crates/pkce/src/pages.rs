//! The pages the callback server shows in the browser, and [`EndpointMetadata`] to replace
//! them.

use std::fmt;

/// What the browser shows at the end of the login: flytekit's `EndpointMetadata`.
///
/// `endpoint` is named on the built-in pages; `success_html` and `failure_html`, when set,
/// replace the built-in success and failure pages (served as `text/html; charset=utf-8`,
/// verbatim: they cannot include the reason of a failure, which the terminal shows).
///
/// ```
/// use flyte_auth_pkce::EndpointMetadata;
/// let metadata = EndpointMetadata::new("flyte.example.org")
///     .with_success_html("<h1>Logged in to Example Flyte</h1>")
///     .with_failure_html("<h1>Login failed; see your terminal</h1>");
/// assert_eq!(metadata.endpoint, "flyte.example.org");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointMetadata {
    /// The endpoint named on the built-in pages.
    pub endpoint: String,
    /// A page shown instead of the built-in success page.
    pub success_html: Option<Vec<u8>>,
    /// A page shown instead of the built-in failure page.
    pub failure_html: Option<Vec<u8>>,
}

impl EndpointMetadata {
    /// Metadata naming `endpoint`, with the built-in pages.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            success_html: None,
            failure_html: None,
        }
    }

    /// Shows this HTML after a successful login.
    #[must_use]
    pub fn with_success_html(mut self, html: impl Into<Vec<u8>>) -> Self {
        self.success_html = Some(html.into());
        self
    }

    /// Shows this HTML after a failed login.
    #[must_use]
    pub fn with_failure_html(mut self, html: impl Into<Vec<u8>>) -> Self {
        self.failure_html = Some(html.into());
        self
    }
}

impl fmt::Debug for EndpointMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |html: &Option<Vec<u8>>| html.as_ref().map(|h| format!("{} bytes", h.len()));
        f.debug_struct("EndpointMetadata")
            .field("endpoint", &self.endpoint)
            .field("success_html", &len(&self.success_html))
            .field("failure_html", &len(&self.failure_html))
            .finish()
    }
}

/// A page ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// Whether it is one of ours (then a strict Content-Security-Policy is sent with it).
    pub(crate) built_in: bool,
}

impl Page {
    fn built_in(status: u16, title: &str, heading: &str, paragraphs: &[String]) -> Self {
        let mut body = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;\
             padding:0 1em;line-height:1.5;color:#222}}h1{{font-size:1.4em}}\
             code{{background:#f3f3f3;padding:0 .2em}}</style></head><body><h1>{}</h1>",
            escape(title),
            escape(heading)
        );
        for p in paragraphs {
            body.push_str("<p>");
            body.push_str(p);
            body.push_str("</p>");
        }
        body.push_str("</body></html>\n");
        Self {
            status,
            body: body.into_bytes(),
            built_in: true,
        }
    }

    /// The page `html` (a replacement of a built-in one), when set.
    fn given(status: u16, html: Option<&Vec<u8>>) -> Option<Self> {
        let body = html?.clone();
        Some(Self {
            status,
            body,
            built_in: false,
        })
    }

    /// The login succeeded.
    pub(crate) fn success(metadata: &EndpointMetadata) -> Self {
        if let Some(page) = Self::given(200, metadata.success_html.as_ref()) {
            return page;
        }
        let target = if metadata.endpoint.is_empty() {
            "Flyte".to_owned()
        } else {
            format!("<code>{}</code>", escape(&metadata.endpoint))
        };
        Self::built_in(
            200,
            "Login successful",
            "Login successful",
            &[
                format!("You are logged in to {target}."),
                "You can close this window and return to your terminal or application.".into(),
            ],
        )
    }

    /// The login failed; `reason` is plain text (escaped here).
    pub(crate) fn failure(metadata: &EndpointMetadata, reason: &str) -> Self {
        if let Some(page) = Self::given(400, metadata.failure_html.as_ref()) {
            return page;
        }
        let target = if metadata.endpoint.is_empty() {
            String::new()
        } else {
            format!(" to <code>{}</code>", escape(&metadata.endpoint))
        };
        Self::built_in(
            400,
            "Login failed",
            "Login failed",
            &[
                format!("The login{target} did not succeed: {}", escape(reason)),
                "Return to your terminal or application for details, and start the login again."
                    .into(),
            ],
        )
    }

    /// A callback whose `state` is not the one of the login in progress; the login goes on.
    pub(crate) fn state_mismatch() -> Self {
        Self::built_in(
            400,
            "Unexpected login response",
            "This login response does not belong to the login in progress",
            &[
                "It may come from an earlier login attempt, or from a page that tried to \
                 complete a login it did not start. It was ignored."
                    .into(),
                "The login that is in progress is still waiting: finish it in the browser \
                 window it opened, or start it again."
                    .into(),
            ],
        )
    }

    /// Any path other than the callback's (`/favicon.ico`, probes).
    pub(crate) fn not_found() -> Self {
        Self::built_in(
            404,
            "Not found",
            "Not found",
            &["This server only receives the login callback.".into()],
        )
    }

    /// A method other than GET.
    pub(crate) fn method_not_allowed() -> Self {
        Self::built_in(
            405,
            "Method not allowed",
            "Method not allowed",
            &["This server only receives the login callback (GET).".into()],
        )
    }

    /// A request that is not HTTP, or whose head is too large.
    pub(crate) fn bad_request(status: u16, reason: &str) -> Self {
        Self::built_in(status, "Bad request", "Bad request", &[escape(reason)])
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The reason phrase of the statuses the server sends.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(page: &Page) -> String {
        String::from_utf8(page.body.clone()).unwrap()
    }

    #[test]
    fn failure_reasons_are_escaped() {
        let page = Page::failure(
            &EndpointMetadata::new("flyte<1>"),
            "access_denied: <script>alert('x')</script> & \"more\"",
        );
        let html = text(&page);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"),
            "{html}"
        );
        assert!(html.contains("flyte&lt;1&gt;"), "{html}");
        assert_eq!(page.status, 400);
    }

    #[test]
    fn custom_pages_replace_the_built_in_ones() {
        let metadata = EndpointMetadata::new("e")
            .with_success_html("<p>yay</p>")
            .with_failure_html("<p>nay</p>");
        assert_eq!(text(&Page::success(&metadata)), "<p>yay</p>");
        assert!(!Page::success(&metadata).built_in);
        assert_eq!(text(&Page::failure(&metadata, "why")), "<p>nay</p>");
        let default = Page::success(&EndpointMetadata::new("flyte.example.org"));
        assert!(text(&default).contains("flyte.example.org"));
    }

    #[test]
    fn debug_shows_sizes_not_pages() {
        let metadata = EndpointMetadata::new("e").with_success_html("0123456789");
        let printed = format!("{metadata:?}");
        assert!(
            printed.contains("10 bytes") && !printed.contains("0123"),
            "{printed}"
        );
    }
}
