//! Parses a request head: bytes in, a [`Request`] or an [`HttpError`] out, no I/O.
//!
//! The parser is a pure function over a byte slice. It never waits for bytes itself: when the blank
//! line that ends the head has not arrived yet it answers [`Parsed::Partial`], and the caller (a
//! blocking loop or an event loop) decides how to get more.

use std::cell::Cell;
use std::sync::LazyLock;

use percent_encoding::percent_decode;
use regex::bytes::Regex;

use crate::http::error::HttpError;
use crate::http::host::is_valid_host;
use crate::http::limits::Limits;

/// The request methods this server knows; everything else is kept by name so it can be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`: send the file.
    Get,
    /// `HEAD`: send the head `GET` would send, without the body.
    Head,
    /// Any other syntactically valid method, answered 405.
    Other(String),
}

impl Method {
    fn from_token(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            // The regex admits only token characters, which are ASCII.
            other => Method::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }

    /// The method as it appears on the request line.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Other(name) => name,
        }
    }

    /// Whether this server serves the method (GET and HEAD).
    pub fn is_supported(&self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }
}

/// The HTTP versions this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the client asks otherwise.
    Http10,
    /// HTTP/1.1: the connection stays open unless either side says `Connection: close`.
    Http11,
}

impl Version {
    /// The version as it appears on the request and status lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The header lines of a request, checked, kept as one text: one allocation however many
/// there are, rather than two strings per line. A lookup scans the lines; a head holds few.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// The lines as sent, each ending in LF or CRLF; bytes that are not UTF-8 (RFC 9110's
    /// obs-text) are replaced by U+FFFD.
    text: String,
    /// Which of the [`LOOKED_UP`] names appear: looking up one that does not costs no scan.
    present: u16,
}

/// The header names the server itself looks up, for every request or for most.
const LOOKED_UP: [&str; 10] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "if-match",
    "if-unmodified-since",
    "if-none-match",
    "if-modified-since",
    "range",
    "if-range",
];

/// The `(name, value)` of each line of a checked header text.
fn fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name, value.trim_ascii()))
    })
}

/// The bit of `name` among [`LOOKED_UP`], compared without regard to case; 0 for any other.
fn looked_up_bit(name: &[u8]) -> u16 {
    LOOKED_UP
        .iter()
        .position(|known| known.len() == name.len() && known.as_bytes().eq_ignore_ascii_case(name))
        .map_or(0, |index| 1 << index)
}

impl Headers {
    /// Every header line as `(name, value)`, in order: the name as sent (compare it with
    /// [`str::eq_ignore_ascii_case`]), the value without its surrounding white space.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        fields(&self.text)
    }

    /// The lines that may be called `name`: none when it is a looked-up name not present.
    fn named<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let bit = looked_up_bit(name.as_bytes());
        let text = if bit != 0 && self.present & bit == 0 {
            ""
        } else {
            &self.text
        };
        fields(text)
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// How many header lines there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target exactly as sent, query included; this is what access logs show.
    pub target: String,
    /// The target's path, percent-decoded once, without the query. Always starts with `/`.
    pub path: String,
    /// The protocol version.
    pub version: Version,
    /// The header lines in the order they came.
    pub headers: Headers,
    /// The body length announced by `Content-Length`, 0 when absent.
    pub content_length: u64,
    /// Whether the client is willing to send another request on this connection
    /// (RFC 9112 §9.3: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
}

impl Request {
    /// The value of the first header called `name`, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.named(name).next()
    }

    /// The values of every header called `name`, in order, compared without regard to case.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        headers_named(&self.headers, name)
    }

    /// Hands this request's strings back to the parser on this thread, which refills them for
    /// the next request instead of allocating new ones. Optional: dropping a request frees them.
    ///
    /// An event loop that recycles each request once its response is out parses without
    /// allocating: the strings of the last request answered are the next one's.
    pub fn recycle(self) {
        let spare = SpareStrings {
            target: self.target,
            path: self.path,
            headers: self.headers.text,
        };
        if spare.is_small() {
            // During thread exit the slot may be gone: the strings are then simply freed.
            let _ = SPARE_STRINGS.try_with(|slot| slot.set(spare));
        }
    }
}

/// The strings of a request already answered, kept for the next parse on the same thread.
#[derive(Default)]
struct SpareStrings {
    target: String,
    path: String,
    headers: String,
}

impl SpareStrings {
    /// A request with a huge head does not leave its strings behind.
    fn is_small(&self) -> bool {
        const MAX_SPARE: usize = 4096;
        [&self.target, &self.path, &self.headers]
            .iter()
            .all(|text| text.capacity() <= MAX_SPARE)
    }
}

thread_local! {
    static SPARE_STRINGS: Cell<SpareStrings> = const {
        Cell::new(SpareStrings {
            target: String::new(),
            path: String::new(),
            headers: String::new(),
        })
    };
}

/// `spare`, emptied, then holding `text`: an allocation only when `spare` is too small.
fn refill(mut spare: String, text: &str) -> String {
    spare.clear();
    spare.push_str(text);
    spare
}

/// The outcome of parsing a buffer that may hold only part of a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole head: the request, and how many bytes of the buffer it used (the blank line included).
    /// Bytes after that belong to the body or to the next, pipelined, request.
    Complete(Request, usize),
    /// The blank line that ends the head has not arrived yet. Not an error: read more and call again.
    Partial,
}

// ANCHOR: request_line
/// `METHOD SP request-target SP HTTP/d.d` (RFC 9112 §3). The method is a token, the target any run
/// of visible ASCII characters (a URI is ASCII, RFC 3986 §2; anything else arrives
/// percent-encoded); the version's digits are checked after the match, so that `HTTP/2.0` can be
/// told apart (505) from garbage (400).
///
/// `(?-u:…)` matters: in Unicode mode a byte class matches whole UTF-8 characters, and raw
/// non-ASCII such as U+0085 (a "next line" to some log viewers) would pass as a target.
static REQUEST_LINE: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = r"^(?<method>[!#$%&'*+.^_`|~0-9A-Za-z-]+) (?<target>(?-u:[\x21-\x7e])+) (?<version>HTTP/[0-9]\.[0-9])$";
    // The pattern is a constant, checked by the unit tests; it cannot fail at run time.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("the request-line pattern is valid")
});

thread_local! {
    /// This thread's copy of [`REQUEST_LINE`]. A `Regex` used from several threads gives only the
    /// first its scratch space without a lock; the others take a mutex on every match (the `regex`
    /// crate's documentation, "Sharing a regex across threads can result in contention"). A clone
    /// shares the compiled program and has scratch space of its own, so the threads of step 4 and
    /// the loops of step 7 share no lock here.
    static THREAD_REQUEST_LINE: Regex = REQUEST_LINE.clone();
}
// ANCHOR_END: request_line

// ANCHOR: parse_request
/// Parses one request head from the start of `buf`.
///
/// Empty lines before the request line are skipped, as RFC 9112 §2.2 recommends. Lines may end in
/// CRLF or in a bare LF (RFC 9112 §2.2 allows a recipient to accept a bare LF); a bare CR is an error.
///
/// # Errors
///
/// Returns an [`HttpError`] as soon as the bytes cannot become a valid request, even before the head
/// is complete (an overlong target or head); the caller answers with [`HttpError::status`] and closes.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
    let start = leading_empty_lines(buf);
    let Some(head_len) = find_head_end(&buf[start..]) else {
        check_partial_head(buf, start, limits)?;
        return Ok(Parsed::Partial);
    };
    let head = &buf[start..start + head_len];
    if head.len() > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge);
    }
    let request = parse_head(head, limits)?;
    Ok(Parsed::Complete(request, start + head_len))
}
// ANCHOR_END: parse_request

/// The length of the run of empty lines at the start of `buf`.
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match &buf[at..] {
            [b'\r', b'\n', ..] => at += 2,
            [b'\n', ..] => at += 1,
            _ => return at,
        }
    }
}

/// The length of the head (the blank line included), if the blank line has arrived.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (at, &byte) in buf.iter().enumerate() {
        if byte != b'\n' {
            continue;
        }
        let line = &buf[line_start..at];
        if line_start > 0 && (line.is_empty() || line == b"\r") {
            return Some(at + 1);
        }
        line_start = at + 1;
    }
    None
}

/// Refuses a partial head that can no longer fit the limits, so a client cannot make the server
/// buffer without end by never sending the blank line.
///
/// `start` is where the request line begins, after any leading empty lines; those count against the
/// head limit too, or a stream of bare CRLFs could grow the buffer for ever.
fn check_partial_head(buf: &[u8], start: usize, limits: &Limits) -> Result<(), HttpError> {
    // Room for the longest method and version around a target of the maximum length.
    const REQUEST_LINE_SLACK: usize = 64;
    let request_line = &buf[start..];
    if !request_line.contains(&b'\n')
        && request_line.len() > limits.max_target_bytes + REQUEST_LINE_SLACK
    {
        return Err(HttpError::UriTooLong);
    }
    if buf.len() >= limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge);
    }
    Ok(())
}

/// The lines of a complete head without their terminators, up to (not including) the blank line.
fn head_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&byte| byte == b'\n')
        .map(|raw| raw.strip_suffix(b"\r").unwrap_or(raw))
        .take_while(|line| !line.is_empty())
}

/// Refuses a CR anywhere but right before an LF, and counts the lines.
fn count_lines(head: &[u8]) -> Result<usize, HttpError> {
    let mut n_lines = 0;
    for line in head_lines(head) {
        if line.contains(&b'\r') {
            return Err(HttpError::BadLineEnding);
        }
        n_lines += 1;
    }
    Ok(n_lines)
}

fn parse_head(head: &[u8], limits: &Limits) -> Result<Request, HttpError> {
    let n_lines = count_lines(head)?;
    let mut lines = head_lines(head);
    let request_line = lines.next().ok_or(HttpError::BadRequestLine)?;
    let (method, raw_target, version) = parse_request_line(request_line, limits)?;
    if n_lines - 1 > limits.max_headers {
        return Err(HttpError::HeadTooLarge);
    }
    let mut present = 0;
    for line in lines {
        let (name, _) = parse_header(line)?;
        present |= looked_up_bit(name);
    }
    let spare = SPARE_STRINGS.try_with(Cell::take).unwrap_or_default();
    // The regex admits only visible ASCII, so this never replaces a byte.
    let origin = origin_form(raw_target)?;
    let target = refill(spare.target, &String::from_utf8_lossy(origin));
    let headers = Headers {
        text: refill(spare.headers, &String::from_utf8_lossy(header_block(head))),
        present,
    };
    check_host(&headers, version)?;
    let content_length = content_length(&headers)?;
    if method.is_supported() && content_length > limits.max_body_bytes {
        return Err(HttpError::BodyTooLarge);
    }
    let path = if is_asterisk_form(&method, &target) {
        refill(spare.path, "*")
    } else {
        decode_path(&target, spare.path)?
    };
    let keep_alive = wants_keep_alive(&headers, version);
    Ok(Request {
        method,
        target,
        path,
        version,
        headers,
        content_length,
        keep_alive,
    })
}

/// The origin form (`/path?query`) of a request target. A server MUST accept the absolute form
/// `http://host/path` too (RFC 9112 §3.2.2), and then the target's authority stands for the host;
/// this server has one site, so only the path and query are kept. An authority with a slash-free
/// end (`http://host`) asks for `/`; any other scheme, or no authority, is refused.
fn origin_form(target: &[u8]) -> Result<&[u8], HttpError> {
    let scheme_end = target.windows(3).position(|bytes| bytes == b"://");
    let Some(scheme_end) = scheme_end.filter(|_| !target.starts_with(b"/")) else {
        // Origin form, or a form `decode_path` refuses (`*`, no leading slash).
        return Ok(target);
    };
    let scheme = &target[..scheme_end];
    let is_http = scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https");
    let after = &target[scheme_end + 3..];
    let authority_end = after
        .iter()
        .position(|&byte| matches!(byte, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    if !is_http || authority_end == 0 || after[..authority_end].contains(&b'@') {
        return Err(HttpError::BadTarget);
    }
    match after[authority_end..] {
        [] => Ok(b"/"),
        [b'/', ..] => Ok(&after[authority_end..]),
        // `http://host?q`: no path is the path `/` (RFC 9110 §4.2.3); the query is not needed.
        _ => Ok(b"/"),
    }
}

/// `OPTIONS *`, the asterisk form (RFC 9112 §3.2.4): a question about the server as a whole, and
/// the only request whose target need not start with `/`. It is well formed, so it is answered
/// (405, like any `OPTIONS`: this server offers GET and HEAD), not refused as 400.
fn is_asterisk_form(method: &Method, target: &str) -> bool {
    target == "*" && matches!(method, Method::Other(name) if name == "OPTIONS")
}

/// The header lines of a complete head, terminators included: what lies between the request
/// line and the blank line.
fn header_block(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(head.len(), |at| at + 1);
    let blank_line = if head.ends_with(b"\n\r\n") { 2 } else { 1 };
    &head[start.min(head.len())..head.len().saturating_sub(blank_line).max(start)]
}

// ANCHOR: parse_request_line
fn parse_request_line<'a>(
    line: &'a [u8],
    limits: &Limits,
) -> Result<(Method, &'a [u8], Version), HttpError> {
    if !THREAD_REQUEST_LINE.with(|request_line| request_line.is_match(line)) {
        return Err(request_line_error(line, limits));
    }
    // No group of the pattern admits a space, so the line's two spaces separate them: splitting
    // finds what captures would, without allocating the capture slots on every request.
    let mut words = line.splitn(3, |&byte| byte == b' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err(HttpError::BadRequestLine);
    };
    if target.len() > limits.max_target_bytes {
        return Err(HttpError::UriTooLong);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => return Err(HttpError::VersionNotSupported),
    };
    Ok((Method::from_token(method), target, version))
}
// ANCHOR_END: parse_request_line

/// Tells an overlong target (414) apart from a line that is simply malformed (400).
fn request_line_error(line: &[u8], limits: &Limits) -> HttpError {
    let longest_word = line.split(|&byte| byte == b' ').map(<[u8]>::len).max();
    if longest_word.is_some_and(|len| len > limits.max_target_bytes) {
        HttpError::UriTooLong
    } else {
        HttpError::BadRequestLine
    }
}

// ANCHOR: headers
/// `field-name ":" OWS field-value OWS` (RFC 9112 §5). No white space is allowed before the colon
/// (§5.1: a server MUST reject it), and a line that starts with white space is an obsolete line
/// folding (§5.2), which this server rejects rather than unfolds.
fn parse_header(line: &[u8]) -> Result<(&[u8], &[u8]), HttpError> {
    let colon = line
        .iter()
        .position(|&byte| byte == b':')
        .ok_or(HttpError::BadHeader)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().copied().all(is_token_byte) {
        return Err(HttpError::BadHeader);
    }
    let value = value.trim_ascii();
    if value.iter().any(|&byte| is_forbidden_in_value(byte)) {
        return Err(HttpError::BadHeader);
    }
    Ok((name, value))
}

/// `tchar` from RFC 9110 §5.6.2.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Control characters other than horizontal tab may not appear in a field value (RFC 9110 §5.5).
fn is_forbidden_in_value(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

fn headers_named<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.named(name)
}

/// HTTP/1.1 requires exactly one `Host`, and any `Host` must be `uri-host [ ":" port ]`
/// (RFC 9112 §3.2: a server "MUST respond with a 400" to a request without one, with more than
/// one, or with an invalid value).
fn check_host(headers: &Headers, version: Version) -> Result<(), HttpError> {
    let mut hosts = headers_named(headers, "host");
    let (first, second) = (hosts.next(), hosts.next());
    match (version, first, second) {
        (_, Some(value), None) if is_valid_host(value) => Ok(()),
        (Version::Http10, None, None) => Ok(()),
        _ => Err(HttpError::BadHost),
    }
}
// ANCHOR_END: headers

// ANCHOR: framing
/// The body length, refusing every framing this server cannot make safe (RFC 9112 §6.3).
///
/// A request with both `Transfer-Encoding` and `Content-Length`, or with two different lengths, is
/// the raw material of request smuggling: a proxy in front and this server could disagree on where
/// the body ends, so both are refused rather than guessed at.
///
/// Production note: RFC 9112 §7.1 says a recipient must be able to parse chunked bodies. A server
/// that only serves files with GET and HEAD never needs a body, so this one answers 501 and
/// closes instead; a real server would decode (and discard) the chunks.
fn content_length(headers: &Headers) -> Result<u64, HttpError> {
    let has_transfer_encoding = headers_named(headers, "transfer-encoding").next().is_some();
    let mut lengths = headers_named(headers, "content-length").peekable();
    if has_transfer_encoding {
        return Err(match lengths.peek() {
            Some(_) => HttpError::BadContentLength,
            None => HttpError::TransferEncodingNotImplemented,
        });
    }
    let mut length = None;
    for value in lengths {
        let parsed = parse_decimal(value).ok_or(HttpError::BadContentLength)?;
        if length.is_some_and(|seen| seen != parsed) {
            return Err(HttpError::BadContentLength);
        }
        length = Some(parsed);
    }
    Ok(length.unwrap_or(0))
}
// ANCHOR_END: framing

/// `1*DIGIT` that fits in a `u64`; `u64::from_str` alone would also accept a leading `+`.
fn parse_decimal(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn wants_keep_alive(headers: &Headers, version: Version) -> bool {
    let mut close = false;
    let mut keep_alive = false;
    for token in headers_named(headers, "connection").flat_map(|value| value.split(',')) {
        let token = token.trim();
        close |= token.eq_ignore_ascii_case("close");
        keep_alive |= token.eq_ignore_ascii_case("keep-alive");
    }
    match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    }
}

// ANCHOR: decode_path
/// The target's path, percent-decoded exactly once.
///
/// Only origin form (`/path?query`) is accepted. `percent_decode` passes a malformed escape such
/// as `%zz` through unchanged; that would let `%2` followed by `e` mean different things to
/// different layers, so malformed escapes are refused first. The path is written into `into`, a
/// string reused from an earlier request.
fn decode_path(target: &str, into: String) -> Result<String, HttpError> {
    let raw_path = target.split_once('?').map_or(target, |(path, _query)| path);
    if !raw_path.starts_with('/') || !has_valid_escapes(raw_path.as_bytes()) {
        return Err(HttpError::BadTarget);
    }
    let decoded = percent_decode(raw_path.as_bytes())
        .decode_utf8()
        .map_err(|_| HttpError::BadTarget)?;
    if decoded.contains('\0') {
        return Err(HttpError::BadTarget);
    }
    Ok(refill(into, &decoded))
}
// ANCHOR_END: decode_path

fn has_valid_escapes(path: &[u8]) -> bool {
    let mut at = 0;
    while let Some(offset) = path[at..].iter().position(|&byte| byte == b'%') {
        let escape = at + offset;
        match path.get(escape + 1..escape + 3) {
            Some([high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                at = escape + 3
            }
            _ => return false,
        }
    }
    true
}
