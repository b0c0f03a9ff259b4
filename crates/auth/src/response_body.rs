//! What [`AuthService`](crate::tower::AuthService) sees of an answer: a rejection of the token
//! wherever the server puts it, and the answer it makes itself when no token can be had.
//!
//! A server refuses a token in the response head (HTTP 401, gRPC `grpc-status: 16` in the
//! headers of a trailers-only answer) or at the end of the call: gRPC trailers after the
//! messages, a Connect streaming call's end-of-stream message, a Connect unary error body.
//! [`ResponseBody`] forwards the body frame by frame, unbuffered, and looks at the end only.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};

use crate::rejected::{LateRejection, Verdict};

/// The largest Connect end-of-stream message or unary error body that is read for its code.
const CONNECT_ERROR_LIMIT: usize = 64 * 1024;
/// The longest reason put in a `grpc-message` of a call answered without a token.
const REASON_LIMIT: usize = 1024;

/// The verdict of the response head: HTTP 401, or the `grpc-status` of a trailers-only answer.
pub(crate) fn head_verdict<B>(response: &Response<B>) -> Verdict {
    if response.status() == StatusCode::UNAUTHORIZED {
        return Verdict::Rejected;
    }
    grpc_verdict(response.headers())
}

/// The verdict of gRPC headers or trailers.
fn grpc_verdict(headers: &HeaderMap) -> Verdict {
    let message = || {
        headers
            .get("grpc-message")
            .map(|m| String::from_utf8_lossy(m.as_bytes()))
    };
    match headers.get("grpc-status").map(HeaderValue::as_bytes) {
        Some(b"16") => Verdict::Rejected,
        Some(b"2") => doubtful_if(message().as_deref()),
        _ => Verdict::Accepted,
    }
}

/// [`Verdict::Doubtful`] when an `UNKNOWN` error's `message` says "unauthenticated".
fn doubtful_if(message: Option<&str>) -> Verdict {
    match message.is_some_and(|m| m.to_ascii_lowercase().contains("unauthenticated")) {
        true => Verdict::Doubtful,
        false => Verdict::Accepted,
    }
}

/// The verdict of a Connect error (`{"code": ..., "message": ...}`).
fn connect_verdict(error: &serde_json::Value) -> Verdict {
    let text = |name| error.get(name).and_then(serde_json::Value::as_str);
    match text("code") {
        Some("unauthenticated") => Verdict::Rejected,
        Some("unknown") => doubtful_if(text("message")),
        _ => Verdict::Accepted,
    }
}

/// The response body of [`AuthService`](crate::tower::AuthService): the inner service's body,
/// forwarded frame by frame, or the layer's own answer to a call it could not authenticate.
/// A refusal at the end of the call marks the token sent refused, so the next call carries a
/// new one; nothing is buffered but a Connect error message (at most 64 KiB).
pub struct ResponseBody<B> {
    inner: Inner<B>,
    watch: Option<Watch>,
}

enum Inner<B> {
    Forwarded(Pin<Box<B>>),
    Made(Option<Bytes>),
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("made_by_the_layer", &matches!(self.inner, Inner::Made(_)))
            .field("watching", &self.watch.is_some())
            .finish()
    }
}

impl<B> ResponseBody<B> {
    /// `body` as it comes.
    pub(crate) fn forward(body: B) -> Self {
        Self {
            inner: Inner::Forwarded(Box::pin(body)),
            watch: None,
        }
    }

    /// `body` as it comes, watched for a rejection at its end (by what `head` says it is).
    pub(crate) fn watched(body: B, head: &http::response::Parts, rejection: LateRejection) -> Self {
        Self {
            inner: Inner::Forwarded(Box::pin(body)),
            watch: Kind::of(head).map(|kind| Watch { kind, rejection }),
        }
    }

    fn made(body: Bytes) -> Self {
        Self {
            inner: Inner::Made((!body.is_empty()).then_some(body)),
            watch: None,
        }
    }

    /// Looks at `data` (a chunk of the body) and marks the token refused when it ends a
    /// Connect error that refuses it.
    fn watch_data(&mut self, data: &[u8]) {
        let Some(watch) = &mut self.watch else { return };
        let verdict = match &mut watch.kind {
            Kind::Grpc => return,
            Kind::ConnectStream(envelopes) => envelopes.feed(data),
            Kind::ConnectUnary(error) => {
                if error.len() + data.len() > CONNECT_ERROR_LIMIT {
                    Some(Verdict::Accepted)
                } else {
                    error.extend_from_slice(data);
                    None
                }
            }
        };
        if let Some(verdict) = verdict {
            self.settle(verdict);
        }
    }

    /// [`watch_data`](Self::watch_data) on every piece of `data`.
    fn watch_buf(&mut self, data: &impl Buf) {
        let mut pieces = [std::io::IoSlice::new(&[]); 16];
        let n = data.chunks_vectored(&mut pieces);
        let pieces = &pieces[..n];
        if pieces.iter().map(|p| p.len()).sum::<usize>() != data.remaining() {
            // More pieces than can be seen at once: no verdict.
            self.settle(Verdict::Accepted);
            return;
        }
        for piece in pieces {
            self.watch_data(piece);
        }
    }

    /// At the end of the body (`trailers`, if any).
    fn watch_end(&mut self, trailers: Option<&HeaderMap>) {
        let Some(watch) = &self.watch else { return };
        let verdict = match &watch.kind {
            Kind::Grpc => trailers.map_or(Verdict::Accepted, grpc_verdict),
            Kind::ConnectStream(_) => Verdict::Accepted,
            Kind::ConnectUnary(error) => connect_json_verdict(error, ""),
        };
        self.settle(verdict);
    }

    fn settle(&mut self, verdict: Verdict) {
        if let Some(watch) = self.watch.take() {
            watch.rejection.mark(verdict);
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let inner = match &mut this.inner {
            Inner::Made(body) => {
                return Poll::Ready(body.take().map(|b| Ok(Frame::data(b.into()))));
            }
            Inner::Forwarded(inner) => inner,
        };
        let polled = inner.as_mut().poll_frame(cx);
        if this.watch.is_some() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        this.watch_buf(data);
                    } else if let Some(trailers) = frame.trailers_ref() {
                        this.watch_end(Some(trailers));
                    }
                }
                Poll::Ready(None) => this.watch_end(None),
                // An error ends the call without a verdict.
                Poll::Ready(Some(Err(_))) => this.settle(Verdict::Accepted),
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Forwarded(inner) => inner.is_end_stream(),
            Inner::Made(body) => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Forwarded(inner) => inner.size_hint(),
            Inner::Made(body) => SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// What is watched, and the rejection to mark.
struct Watch {
    kind: Kind,
    rejection: LateRejection,
}

/// Where a rejection may come at the end of the call.
enum Kind {
    /// gRPC: `grpc-status` in the trailers.
    Grpc,
    /// A Connect streaming call: the end-of-stream message.
    ConnectStream(Envelopes),
    /// A Connect unary error: the JSON body.
    ConnectUnary(Vec<u8>),
}

impl Kind {
    fn of(head: &http::response::Parts) -> Option<Self> {
        let content_type = content_type(&head.headers)?;
        if is_grpc(&content_type) {
            Some(Self::Grpc)
        } else if content_type.starts_with("application/connect+") {
            Some(Self::ConnectStream(Envelopes::default()))
        } else if content_type.starts_with("application/json") && !head.status.is_success() {
            Some(Self::ConnectUnary(Vec::new()))
        } else {
            None
        }
    }
}

/// Reads the envelopes of a Connect stream (a flags byte, a 4-byte big-endian length, the
/// message) as they pass, keeping only the end-of-stream message.
#[derive(Default)]
struct Envelopes {
    prefix: [u8; 5],
    prefix_read: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
    /// The end-of-stream message, while it is read.
    end: Option<Vec<u8>>,
}

/// The flag of the end-of-stream envelope.
const END_STREAM: u8 = 0b10;
/// The flag of a compressed envelope.
const COMPRESSED: u8 = 0b01;

impl Envelopes {
    /// Reads `data`; `Some(verdict)` once the end-of-stream message is read (or cannot be).
    fn feed(&mut self, mut data: &[u8]) -> Option<Verdict> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                if let Some(end) = &mut self.end {
                    end.extend_from_slice(&data[..n]);
                }
                self.remaining -= n;
                data = &data[n..];
                if self.remaining == 0
                    && let Some(end) = self.end.take()
                {
                    return Some(connect_json_verdict(&end, "/error"));
                }
                continue;
            }
            let n = (5 - self.prefix_read).min(data.len());
            self.prefix[self.prefix_read..self.prefix_read + n].copy_from_slice(&data[..n]);
            self.prefix_read += n;
            data = &data[n..];
            if self.prefix_read < 5 {
                continue;
            }
            self.prefix_read = 0;
            let [flags, length @ ..] = self.prefix;
            self.remaining = u32::from_be_bytes(length) as usize;
            if flags & END_STREAM != 0 {
                if flags & COMPRESSED != 0
                    || self.remaining > CONNECT_ERROR_LIMIT
                    || self.remaining == 0
                {
                    return Some(Verdict::Accepted);
                }
                self.end = Some(Vec::with_capacity(self.remaining));
            }
        }
        None
    }
}

/// The verdict of a Connect error in JSON: the member `error` of an end-of-stream message
/// (`{"error": {"code": ...}, "metadata": ...}`) when `pointer` is `/error`, a unary error
/// body when it is empty.
fn connect_json_verdict(json: &[u8], pointer: &str) -> Verdict {
    serde_json::from_slice::<serde_json::Value>(json)
        .ok()
        .and_then(|value| value.pointer(pointer).map(connect_verdict))
        .unwrap_or(Verdict::Accepted)
}

/// The answer to a call no token could be obtained for, as a refusing server's: a gRPC
/// request's trailers-only (`grpc-status: 16`, `reason` percent-encoded in `grpc-message`),
/// any other an HTTP 401 with `{"code": "unauthenticated", "message": reason}`.
pub(crate) fn unauthenticated<B>(grpc: bool, reason: &str) -> Response<ResponseBody<B>> {
    let reason = shorten(reason);
    let mut response = if grpc {
        let mut response = Response::new(ResponseBody::made(Bytes::new()));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from_static("16"));
        if let Ok(message) = HeaderValue::from_str(&percent_encode(reason)) {
            headers.insert("grpc-message", message);
        }
        response
    } else {
        let body = serde_json::json!({ "code": "unauthenticated", "message": reason });
        let mut response = Response::new(ResponseBody::made(Bytes::from(body.to_string())));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    };
    *response.version_mut() = http::Version::HTTP_2;
    response
}

/// Whether `headers` are a gRPC request's (`application/grpc`, `application/grpc+proto`, ...).
pub(crate) fn is_grpc_request(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|v| is_grpc(&v))
}

/// The `content-type` of `headers`, trimmed and in lower case.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(value.trim().to_ascii_lowercase())
}

/// Whether `content_type` is gRPC's (not gRPC-Web's).
fn is_grpc(content_type: &str) -> bool {
    content_type.starts_with("application/grpc")
        && !content_type.starts_with("application/grpc-web")
}

/// At most [`REASON_LIMIT`] bytes of `reason`, cut at a character boundary.
fn shorten(reason: &str) -> &str {
    if reason.len() <= REASON_LIMIT {
        return reason;
    }
    let mut end = REASON_LIMIT;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// gRPC's percent-encoding of `grpc-message`: every byte outside printable ASCII, and `%`.
fn percent_encode(text: &str) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(flags: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flags];
        out.extend_from_slice(&u32::try_from(message.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    #[test]
    fn the_end_of_stream_message_is_found_across_chunks() {
        let mut stream = envelope(0, b"{\"a\":1}");
        stream.extend(envelope(
            END_STREAM,
            br#"{"error":{"code":"unauthenticated","message":"token expired"}}"#,
        ));
        for split in 0..stream.len() {
            let mut envelopes = Envelopes::default();
            let (a, b) = stream.split_at(split);
            let verdict = envelopes.feed(a).or_else(|| envelopes.feed(b));
            assert_eq!(verdict, Some(Verdict::Rejected), "split at {split}");
        }
    }

    #[test]
    fn other_end_of_stream_messages_are_no_rejection() {
        for end in [
            &br#"{}"#[..],
            br#"{"error":{"code":"permission_denied","message":"unauthenticated"}}"#,
            br#"{"error":{"code":"unknown","message":"boom"}}"#,
            br#"{"error":{"code":"unknown","message":"user is unauthorized"}}"#,
            b"not json",
        ] {
            let mut envelopes = Envelopes::default();
            let verdict = envelopes.feed(&envelope(END_STREAM, end));
            assert_eq!(verdict, Some(Verdict::Accepted));
        }
        let mut envelopes = Envelopes::default();
        let unknown = br#"{"error":{"code":"unknown","message":"Unauthenticated: jwt expired"}}"#;
        let verdict = envelopes.feed(&envelope(END_STREAM, unknown));
        assert_eq!(verdict, Some(Verdict::Doubtful));
    }

    #[test]
    fn only_grpc_status_16_is_a_rejection_and_unknown_saying_so_a_doubt() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("2"));
        assert_eq!(grpc_verdict(&headers), Verdict::Accepted);
        headers.insert("grpc-message", HeaderValue::from_static("unauthorized"));
        assert_eq!(grpc_verdict(&headers), Verdict::Accepted);
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("transport:%20Unauthenticated"),
        );
        assert_eq!(grpc_verdict(&headers), Verdict::Doubtful);
        headers.insert("grpc-status", HeaderValue::from_static("16"));
        headers.remove("grpc-message");
        assert_eq!(grpc_verdict(&headers), Verdict::Rejected);
    }

    #[test]
    fn the_reason_is_percent_encoded_and_bounded() {
        assert_eq!(percent_encode("100% schön\n"), "100%25 sch%C3%B6n%0A");
        let long = "é".repeat(REASON_LIMIT);
        assert!(shorten(&long).len() <= REASON_LIMIT);
    }
}
