//! Defines [`StatusCode`]: the status codes this server answers with, and their reason phrases.

use std::fmt;

/// An HTTP status code (RFC 9110 §15).
///
/// Only the codes this project sends have constants; the type itself is open so a step can
/// log or compare any code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// 200: the file follows.
    pub const OK: StatusCode = StatusCode(200);
    /// 206: the part of the file a `Range` asked for follows.
    pub const PARTIAL_CONTENT: StatusCode = StatusCode(206);
    /// 301: a folder was named without its trailing slash.
    pub const MOVED_PERMANENTLY: StatusCode = StatusCode(301);
    /// 304: the client's copy is still current (a conditional GET or HEAD); no content follows.
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    /// 400: the request is malformed.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 403: the file exists but may not be served.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404: no such file under the document root.
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405: the method is not GET or HEAD.
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 408: the client started a request and did not finish it in time.
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 412: an `If-Match` or `If-Unmodified-Since` of a GET or HEAD does not hold for the file.
    pub const PRECONDITION_FAILED: StatusCode = StatusCode(412);
    /// 413: the request body is larger than the server will read.
    pub const CONTENT_TOO_LARGE: StatusCode = StatusCode(413);
    /// 414: the request target is longer than the server will read.
    pub const URI_TOO_LONG: StatusCode = StatusCode(414);
    /// 416: the `Range` asked for lies wholly beyond the end of the file.
    pub const RANGE_NOT_SATISFIABLE: StatusCode = StatusCode(416);
    /// 431: the request head is larger than the server will read.
    pub const HEADER_FIELDS_TOO_LARGE: StatusCode = StatusCode(431);
    /// 500: the server failed on its side (an I/O error reading a file, say).
    pub const INTERNAL_SERVER_ERROR: StatusCode = StatusCode(500);
    /// 503: the server is short of a resource (descriptors) for now; the client may retry.
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 501: the request uses a feature this server does not implement (`Transfer-Encoding`).
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 505: the HTTP version is well formed but not 1.0 or 1.1.
    pub const HTTP_VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);

    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// The reason phrase RFC 9110 gives this code, or `""` for a code this project never sends.
    pub fn reason(self) -> &'static str {
        match self.0 {
            200 => "OK",
            206 => "Partial Content",
            301 => "Moved Permanently",
            304 => "Not Modified",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            416 => "Range Not Satisfiable",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}
