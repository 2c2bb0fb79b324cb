//! An incremental, allocation-free scanner for HTTP/1.x responses, on `httparse`.
//!
//! The load generator only needs to know where each response ends and whether it succeeded, so this
//! frames responses, it does not keep them: `httparse` reads the head (status line and headers, with
//! SIMD where the CPU has it), this module checks what matters for framing — `Content-Length`,
//! `Connection`, `Transfer-Encoding` — and counts body bytes without copying them. It shares no code
//! with the servers' request parser on purpose: a client that shared their code would share their bugs.
//!
//! Bytes may arrive split anywhere. A head that arrives whole (the usual case) is parsed straight from
//! the read buffer; one split between reads is kept in a small per-connection buffer until it is
//! whole. The scanner is strict where a lenient client would hide a server bug: line endings must be
//! CRLF, the status line must be `HTTP/1.x NNN …`, and a body must be framed by `Content-Length` or by
//! closing the connection.

use std::fmt;

/// The most bytes a response head may take before the scanner calls it malformed.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header lines a response head may have.
const MAX_HEADERS: usize = 32;

/// Why a response could not be framed. Each is counted as a `framing` error by the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Occurs when the first line is not `HTTP/1.x NNN reason`.
    BadStatusLine,
    /// Occurs when a header line is malformed (bad name byte, bare LF, missing colon).
    BadHeader,
    /// Occurs when `Content-Length` is not a number, overflows, or appears twice with different values.
    BadContentLength,
    /// Occurs when the response uses `Transfer-Encoding` (this client sends HTTP/1.1 requests but only
    /// frames by length or close; the servers in this project never chunk).
    UnsupportedTransferEncoding,
    /// Occurs when the head grows past [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// Occurs for a 1xx informational response, which this client never asks for.
    UnexpectedInformational,
    /// Occurs when the connection closes before the response is complete.
    Truncated,
    /// Occurs when the server sends bytes that belong to no request (after a complete response).
    UnsolicitedBytes,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::BadStatusLine => "malformed status line",
            Self::BadHeader => "malformed header line",
            Self::BadContentLength => "invalid Content-Length",
            Self::UnsupportedTransferEncoding => "Transfer-Encoding is not supported",
            Self::HeadTooLarge => "response head too large",
            Self::UnexpectedInformational => "unexpected 1xx response",
            Self::Truncated => "connection closed mid-response",
            Self::UnsolicitedBytes => "bytes after a complete response",
        };
        f.write_str(text)
    }
}

/// What the scanner learnt from one complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Complete {
    /// Bytes of the last chunk fed that belonged to this response; the rest of that chunk is not part
    /// of it.
    pub consumed: usize,
    /// The status code.
    pub status: u16,
    /// Whether the server keeps the connection open after this response (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, and a body framed by length).
    pub keep_alive: bool,
}

/// Progress after feeding some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Every byte was consumed and the response is not complete yet: an expected condition.
    Partial,
    /// The response is complete.
    Complete(Complete),
}

/// Where in the response the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the head.
    Head,
    /// Counting the body bytes still expected (`ResponseScanner::remaining`).
    Body,
    /// The body ends when the connection closes.
    UntilClose,
    /// The response is complete.
    Done,
}

/// Scans one response at a time; [`reset`](Self::reset) it before the next.
#[derive(Debug, Clone)]
pub struct ResponseScanner {
    state: State,
    /// The start of a head split between reads (empty, and unallocated, in the usual case).
    partial: Vec<u8>,
    status: u16,
    keep_alive: bool,
    remaining: u64,
    bytes_seen: u64,
}

impl Default for ResponseScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseScanner {
    /// A scanner waiting for the first byte of a response.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: State::Head,
            partial: Vec::new(),
            status: 0,
            keep_alive: false,
            remaining: 0,
            bytes_seen: 0,
        }
    }

    /// Forgets the previous response (keeping the split-head buffer's memory for the next one).
    pub fn reset(&mut self) {
        self.partial.clear();
        let partial = std::mem::take(&mut self.partial);
        *self = Self {
            partial,
            ..Self::new()
        };
    }

    /// Whether any byte of the current response has arrived.
    #[must_use]
    pub const fn started(&self) -> bool {
        self.bytes_seen > 0
    }

    /// Feeds the next bytes of the response.
    ///
    /// # Errors
    ///
    /// A [`FramingError`] when the bytes cannot be a valid response; the connection cannot be reused.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Progress, FramingError> {
        self.bytes_seen += bytes.len() as u64;
        let mut offset = 0;
        while offset < bytes.len() {
            match self.state {
                State::Head => match self.feed_head(&bytes[offset..])? {
                    Some(used) => {
                        offset += used;
                        if self.state == State::Done {
                            return Ok(Progress::Complete(self.complete(offset)));
                        }
                    }
                    None => return Ok(Progress::Partial),
                },
                State::Body => {
                    let available = (bytes.len() - offset) as u64;
                    let taken = self.remaining.min(available);
                    // `taken` is at most `available`, a usize.
                    offset += taken as usize;
                    self.remaining -= taken;
                    if self.remaining == 0 {
                        self.state = State::Done;
                        return Ok(Progress::Complete(self.complete(offset)));
                    }
                }
                State::UntilClose => return Ok(Progress::Partial),
                State::Done => return Err(FramingError::UnsolicitedBytes),
            }
        }
        Ok(Progress::Partial)
    }

    /// Tells the scanner the server closed the connection.
    ///
    /// # Errors
    ///
    /// [`FramingError::Truncated`] unless the body was delimited by the close.
    pub fn finish_on_close(&mut self) -> Result<Complete, FramingError> {
        if self.state == State::UntilClose {
            self.state = State::Done;
            Ok(self.complete(0))
        } else {
            Err(FramingError::Truncated)
        }
    }

    const fn complete(&self, consumed: usize) -> Complete {
        Complete {
            consumed,
            status: self.status,
            keep_alive: self.keep_alive,
        }
    }

    /// Takes head bytes; returns how many of `bytes` the head used once it is complete.
    fn feed_head(&mut self, bytes: &[u8]) -> Result<Option<usize>, FramingError> {
        if self.partial.is_empty() {
            if let Some(length) = self.parse_head(bytes)? {
                return Ok(Some(length));
            }
            self.partial.extend_from_slice(bytes);
        } else {
            let before = self.partial.len();
            self.partial.extend_from_slice(bytes);
            let head = std::mem::take(&mut self.partial);
            let parsed = self.parse_head(&head);
            self.partial = head;
            if let Some(length) = parsed? {
                self.partial.clear();
                return Ok(Some(length - before));
            }
        }
        if self.partial.len() > MAX_HEAD_BYTES {
            return Err(FramingError::HeadTooLarge);
        }
        Ok(None)
    }

    /// Parses a head if `bytes` holds a whole one, and sets the body's framing; returns its length.
    fn parse_head(&mut self, bytes: &[u8]) -> Result<Option<usize>, FramingError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let length = match response.parse(bytes) {
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(length)) => length,
            Err(httparse::Error::Version | httparse::Error::Status) => {
                return Err(FramingError::BadStatusLine);
            }
            Err(_) => return Err(FramingError::BadHeader),
        };
        // httparse accepts a bare LF as a line ending; a server here must send CRLF.
        if let Some(bare) =
            (0..length).find(|&at| bytes[at] == b'\n' && (at == 0 || bytes[at - 1] != b'\r'))
        {
            let status_line_end = bytes
                .iter()
                .position(|&byte| byte == b'\n')
                .unwrap_or(length);
            return Err(if bare <= status_line_end {
                FramingError::BadStatusLine
            } else {
                FramingError::BadHeader
            });
        }
        let (Some(minor), Some(status)) = (response.version, response.code) else {
            return Err(FramingError::BadStatusLine);
        };
        let framing = Framing::of(response.headers)?;
        if status < 200 {
            return Err(FramingError::UnexpectedInformational);
        }
        if framing.chunked {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
        let bodyless = status == 204 || status == 304;
        self.status = status;
        let persistent = if minor == 0 {
            framing.keep_alive && !framing.close
        } else {
            !framing.close
        };
        self.keep_alive = persistent && (framing.length.is_some() || bodyless);
        (self.state, self.remaining) = match framing.length {
            _ if bodyless => (State::Done, 0),
            Some(0) => (State::Done, 0),
            Some(length) => (State::Body, length),
            None => (State::UntilClose, 0),
        };
        Ok(Some(length))
    }
}

/// What the headers say about the body and the connection.
#[derive(Debug, Default)]
struct Framing {
    length: Option<u64>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

impl Framing {
    fn of(headers: &[httparse::Header<'_>]) -> Result<Self, FramingError> {
        let mut framing = Self::default();
        for header in headers {
            if header.name.eq_ignore_ascii_case("content-length") {
                let length = parse_length(header.value)?;
                if framing.length.is_some_and(|earlier| earlier != length) {
                    return Err(FramingError::BadContentLength);
                }
                framing.length = Some(length);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                framing.chunked = true;
            } else if header.name.eq_ignore_ascii_case("connection") {
                for token in header.value.split(|&byte| byte == b',') {
                    let token = token.trim_ascii();
                    framing.close |= token.eq_ignore_ascii_case(b"close");
                    framing.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        Ok(framing)
    }
}

/// A `Content-Length` value: digits only (surrounding blanks allowed), no overflow.
fn parse_length(value: &[u8]) -> Result<u64, FramingError> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::BadContentLength);
    }
    digits
        .iter()
        .try_fold(0u64, |length, &digit| {
            length.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })
        .ok_or(FramingError::BadContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_whole(bytes: &[u8]) -> Result<Progress, FramingError> {
        ResponseScanner::new().feed(bytes)
    }

    /// Feeds the response one byte at a time; the result must match feeding it whole.
    fn scan_bytewise(bytes: &[u8]) -> Result<Progress, FramingError> {
        let mut scanner = ResponseScanner::new();
        for (index, byte) in bytes.iter().enumerate() {
            match scanner.feed(std::slice::from_ref(byte))? {
                Progress::Partial => {}
                Progress::Complete(done) => {
                    return Ok(Progress::Complete(Complete {
                        consumed: index + done.consumed,
                        ..done
                    }));
                }
            }
        }
        Ok(Progress::Partial)
    }

    fn check(bytes: &[u8], expected: Result<Progress, FramingError>) {
        assert_eq!(
            scan_whole(bytes),
            expected,
            "whole: {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(
            scan_bytewise(bytes),
            expected,
            "bytewise: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    fn complete(consumed: usize, status: u16, keep_alive: bool) -> Result<Progress, FramingError> {
        Ok(Progress::Complete(Complete {
            consumed,
            status,
            keep_alive,
        }))
    }

    #[test]
    fn frames_by_content_length() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        check(response, complete(response.len(), 200, true));
    }

    #[test]
    fn reads_names_of_any_case_and_length() {
        let response = b"HTTP/1.1 200 OK\r\nX-A-Very-Long-Header-Name-Indeed: 1\r\nCONTENT-length:  3 \r\n\r\nabc";
        check(response, complete(response.len(), 200, true));
    }

    #[test]
    fn every_prefix_is_partial() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for end in 0..response.len() {
            check(&response[..end], Ok(Progress::Partial));
        }
    }

    #[test]
    fn stops_at_the_end_of_the_response() {
        let response = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nnoEXTRA";
        check(response, complete(response.len() - 5, 404, true));
    }

    #[test]
    fn reads_connection_tokens() {
        let close =
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n";
        check(close, complete(close.len(), 200, false));
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        check(old, complete(old.len(), 200, false));
        let old_kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        check(old_kept, complete(old_kept.len(), 200, true));
    }

    #[test]
    fn frames_by_close() {
        let mut scanner = ResponseScanner::new();
        let head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close";
        assert_eq!(scanner.feed(head), Ok(Progress::Partial));
        let done = scanner.finish_on_close();
        assert_eq!(
            done,
            Ok(Complete {
                consumed: 0,
                status: 200,
                keep_alive: false
            })
        );
    }

    #[test]
    fn truncated_is_an_error() {
        let mut scanner = ResponseScanner::new();
        assert_eq!(
            scanner.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"),
            Ok(Progress::Partial)
        );
        assert_eq!(scanner.finish_on_close(), Err(FramingError::Truncated));
        let mut scanner = ResponseScanner::new();
        assert_eq!(scanner.feed(b"HTTP/1.1 200 OK\r\n"), Ok(Progress::Partial));
        assert_eq!(scanner.finish_on_close(), Err(FramingError::Truncated));
    }

    #[test]
    fn rejects_malformed_responses() {
        let cases: &[(&[u8], FramingError)] = &[
            (b"HTTP/2.0 200 OK\r\n\r\n", FramingError::BadStatusLine),
            (b"HTTP/1.1 20 OK\r\n\r\n", FramingError::BadStatusLine),
            (b"HTTP/1.1 200OK\r\n\r\n", FramingError::BadStatusLine),
            (b"HTTP/1.1 200 OK\n\n", FramingError::BadStatusLine),
            (b"hello world\r\n\r\n", FramingError::BadStatusLine),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                FramingError::BadHeader,
            ),
            (b"HTTP/1.1 200 OK\r\n: x\r\n\r\n", FramingError::BadHeader),
            (b"HTTP/1.1 200 OK\r\nA: x\n\r\n", FramingError::BadHeader),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                FramingError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
                FramingError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
                FramingError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                FramingError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                FramingError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                FramingError::UnsupportedTransferEncoding,
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\n",
                FramingError::UnexpectedInformational,
            ),
        ];
        for (bytes, error) in cases {
            check(bytes, Err(*error));
        }
    }

    #[test]
    fn bounds_the_head() {
        let mut scanner = ResponseScanner::new();
        assert_eq!(scanner.feed(b"HTTP/1.1 200 OK\r\n"), Ok(Progress::Partial));
        let filler = vec![b'a'; MAX_HEAD_BYTES];
        assert_eq!(scanner.feed(&filler), Err(FramingError::HeadTooLarge));
    }

    #[test]
    fn bodyless_statuses_need_no_length() {
        let response = b"HTTP/1.1 304 Not Modified\r\n\r\n";
        check(response, complete(response.len(), 304, true));
    }

    #[test]
    fn bytes_after_completion_are_unsolicited() {
        let mut scanner = ResponseScanner::new();
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(scanner.feed(response), Ok(Progress::Complete(_))));
        assert_eq!(scanner.feed(b"x"), Err(FramingError::UnsolicitedBytes));
    }
}
