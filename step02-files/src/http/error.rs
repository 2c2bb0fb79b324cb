//! Defines [`HttpError`]: every way a request can be refused before it reaches the document root.

use std::fmt;

use crate::http::status::StatusCode;

/// Why the parser refused a request.
///
/// Each variant maps to the status the server answers with ([`HttpError::status`]). After any of
/// them the server closes the connection: once framing is in doubt, the next bytes cannot be
/// trusted to start a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Occurs when the request line is not `METHOD SP request-target SP HTTP-version`.
    BadRequestLine,
    /// Occurs when the version has the shape `HTTP/x.y` but is neither 1.0 nor 1.1.
    VersionNotSupported,
    /// Occurs when the request target is longer than [`Limits::max_target_bytes`](crate::Limits).
    UriTooLong,
    /// Occurs when the head has no blank line within [`Limits::max_head_bytes`](crate::Limits),
    /// or has more than [`Limits::max_headers`](crate::Limits) header lines.
    HeadTooLarge,
    /// Occurs when a header line is malformed: no colon, white space before the colon, an invalid
    /// name, a control character in the value, or an obsolete line folding.
    BadHeader,
    /// Occurs when a line ends in a bare CR, or a CR appears inside a line.
    BadLineEnding,
    /// Occurs when an HTTP/1.1 request has no `Host` header, any request has more than one, or
    /// its value is not `uri-host [ ":" port ]`.
    BadHost,
    /// Occurs when `Content-Length` is not a number, appears twice with different values, or
    /// appears beside `Transfer-Encoding`.
    BadContentLength,
    /// Occurs when a request carries `Transfer-Encoding`, which this server does not implement.
    TransferEncodingNotImplemented,
    /// Occurs when a GET or HEAD announces a body larger than [`Limits::max_body_bytes`](crate::Limits).
    BodyTooLarge,
    /// Occurs when the target is not in origin form (`/path?query`), has an invalid
    /// percent-escape, or decodes to a NUL byte or to bytes that are not UTF-8. (Raw bytes that
    /// are not visible ASCII never get this far: the request line is refused first.)
    BadTarget,
}

impl HttpError {
    // ANCHOR: status
    /// The status the server answers this error with.
    pub fn status(self) -> StatusCode {
        match self {
            HttpError::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HttpError::UriTooLong => StatusCode::URI_TOO_LONG,
            HttpError::HeadTooLarge => StatusCode::HEADER_FIELDS_TOO_LARGE,
            HttpError::TransferEncodingNotImplemented => StatusCode::NOT_IMPLEMENTED,
            HttpError::BodyTooLarge => StatusCode::CONTENT_TOO_LARGE,
            HttpError::BadRequestLine
            | HttpError::BadHeader
            | HttpError::BadLineEnding
            | HttpError::BadHost
            | HttpError::BadContentLength
            | HttpError::BadTarget => StatusCode::BAD_REQUEST,
        }
    }
    // ANCHOR_END: status
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            HttpError::BadRequestLine => "malformed request line",
            HttpError::VersionNotSupported => "unsupported HTTP version",
            HttpError::UriTooLong => "request target too long",
            HttpError::HeadTooLarge => "request head too large",
            HttpError::BadHeader => "malformed header line",
            HttpError::BadLineEnding => "bare CR in request head",
            HttpError::BadHost => "missing, repeated or invalid Host header",
            HttpError::BadContentLength => "invalid Content-Length",
            HttpError::TransferEncodingNotImplemented => "Transfer-Encoding not implemented",
            HttpError::BodyTooLarge => "request body too large",
            HttpError::BadTarget => "invalid request target",
        };
        f.write_str(text)
    }
}

impl std::error::Error for HttpError {}
