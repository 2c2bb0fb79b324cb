//! An incremental, allocation-free scanner for HTTP/1.x responses, on `httparse`.
//!
//! The load generator only needs to know where each response ends and whether it succeeded, so this
//! frames responses, it does not keep them: `httparse` reads the head, this module checks what matters
//! for framing (`Content-Length`, `Connection`, `Transfer-Encoding`) and counts body bytes without
//! copying them. It shares no code with the servers' request parser on purpose: a client that shared
//! their code would share their bugs. It is strict where a lenient client would hide a server bug:
//! CRLF line endings, an `HTTP/1.x NNN …` status line, a body framed by length or by the close.

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Complete {
    /// Bytes of the last chunk fed that belonged to this response.
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Reading the head.
    #[default]
    Head,
    /// Counting the body bytes still expected.
    Body(u64),
    /// The body ends when the connection closes.
    UntilClose,
    /// The response is complete.
    Done,
}

/// Scans one response at a time; [`reset`](Self::reset) it before the next.
#[derive(Debug, Clone, Default)]
pub struct ResponseScanner {
    state: State,
    /// The start of a head split between reads (empty, and unallocated, in the usual case).
    partial: Vec<u8>,
    /// What the head said, once it is parsed.
    head: Complete,
}

impl ResponseScanner {
    /// Forgets the previous response (keeping the split-head buffer's memory for the next one).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.partial.clear();
    }

    /// Whether any byte of the current response has arrived.
    #[must_use]
    pub fn started(&self) -> bool {
        self.state != State::Head || !self.partial.is_empty()
    }

    /// Feeds the next bytes of the response.
    ///
    /// # Errors
    ///
    /// A [`FramingError`] when the bytes cannot be a valid response; the connection cannot be reused.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Progress, FramingError> {
        let mut offset = 0;
        while offset < bytes.len() {
            match self.state {
                State::Head => match self.feed_head(&bytes[offset..])? {
                    Some(used) => offset += used,
                    None => return Ok(Progress::Partial),
                },
                State::Body(remaining) => {
                    // At most what is left of `bytes`, so it fits a usize.
                    let taken = remaining.min((bytes.len() - offset) as u64);
                    offset += taken as usize;
                    self.state = match remaining - taken {
                        0 => State::Done,
                        left => State::Body(left),
                    };
                }
                State::UntilClose => return Ok(Progress::Partial),
                State::Done => return Err(FramingError::UnsolicitedBytes),
            }
            if self.state == State::Done {
                self.head.consumed = offset;
                return Ok(Progress::Complete(self.head));
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
        if self.state != State::UntilClose {
            return Err(FramingError::Truncated);
        }
        // `consumed` is still the 0 of the parsed head: the close brought no bytes.
        self.state = State::Done;
        Ok(self.head)
    }

    /// Takes head bytes; returns how many of `bytes` the head used once it is complete. A head that
    /// arrives whole is parsed in place; only one split between reads is copied into `partial`.
    fn feed_head(&mut self, bytes: &[u8]) -> Result<Option<usize>, FramingError> {
        let before = self.partial.len();
        if before > 0 {
            self.partial.extend_from_slice(bytes);
        }
        let buffered = if before > 0 { &self.partial[..] } else { bytes };
        if let Some((length, head, body)) = parse_head(buffered)? {
            (self.head, self.state) = (head, body);
            self.partial.clear();
            return Ok(Some(length - before));
        }
        if before == 0 {
            self.partial.extend_from_slice(bytes);
        }
        if self.partial.len() > MAX_HEAD_BYTES {
            return Err(FramingError::HeadTooLarge);
        }
        Ok(None)
    }
}

/// Parses a head if `bytes` holds a whole one: returns its length, what it says (`consumed` is left
/// 0), and the body's framing, the state the scanner goes to next.
fn parse_head(bytes: &[u8]) -> Result<Option<(usize, Complete, State)>, FramingError> {
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
        let status_line_end = bytes.iter().position(|&byte| byte == b'\n');
        return Err(if bare <= status_line_end.unwrap_or(length) {
            FramingError::BadStatusLine
        } else {
            FramingError::BadHeader
        });
    }
    let (Some(minor), Some(status)) = (response.version, response.code) else {
        return Err(FramingError::BadStatusLine);
    };
    let (mut content_length, mut chunked, mut close, mut keep_alive) = (None, false, false, false);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = parse_length(header.value)?;
            if content_length.is_some_and(|earlier| earlier != length) {
                return Err(FramingError::BadContentLength);
            }
            content_length = Some(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&byte| byte == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if status < 200 {
        return Err(FramingError::UnexpectedInformational);
    }
    if chunked {
        return Err(FramingError::UnsupportedTransferEncoding);
    }
    let bodyless = status == 204 || status == 304;
    let persistent = !close && (minor > 0 || keep_alive);
    let head = Complete {
        consumed: 0,
        status,
        keep_alive: persistent && (content_length.is_some() || bodyless),
    };
    let body = match content_length {
        _ if bodyless || content_length == Some(0) => State::Done,
        Some(length) => State::Body(length),
        None => State::UntilClose,
    };
    Ok(Some((length, head, body)))
}

/// A `Content-Length` value: digits only (surrounding blanks allowed), no overflow.
fn parse_length(value: &[u8]) -> Result<u64, FramingError> {
    let digits = value.trim_ascii();
    // Digits only: `u64::from_str` alone would also take a `+` sign.
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::BadContentLength);
    }
    let text = std::str::from_utf8(digits).map_err(|_| FramingError::BadContentLength)?;
    text.parse().map_err(|_| FramingError::BadContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the response one byte at a time; the result must match feeding it whole.
    fn scan_bytewise(bytes: &[u8]) -> Result<Progress, FramingError> {
        let mut scanner = ResponseScanner::default();
        for (index, byte) in bytes.iter().enumerate() {
            match scanner.feed(std::slice::from_ref(byte))? {
                Progress::Partial => {}
                Progress::Complete(mut done) => {
                    done.consumed += index;
                    return Ok(Progress::Complete(done));
                }
            }
        }
        Ok(Progress::Partial)
    }

    fn check(bytes: &[u8], expected: Result<Progress, FramingError>) {
        let text = String::from_utf8_lossy(bytes);
        let whole = ResponseScanner::default().feed(bytes);
        assert_eq!(whole, expected, "whole: {text:?}");
        assert_eq!(scan_bytewise(bytes), expected, "bytewise: {text:?}");
    }

    fn complete(consumed: usize, status: u16, keep_alive: bool) -> Result<Progress, FramingError> {
        Ok(Progress::Complete(Complete {
            consumed,
            status,
            keep_alive,
        }))
    }

    #[test]
    fn frames_complete_responses() {
        let kept: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            // Header names of any case and length; blanks around the length.
            b"HTTP/1.1 200 OK\r\nX-A-Very-Long-Header-Name-Indeed: 1\r\nCONTENT-length:  3 \r\n\r\nabc",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            // Bodyless statuses need no length.
            b"HTTP/1.1 304 Not Modified\r\n\r\n",
        ];
        for (response, status) in kept.into_iter().zip([200, 200, 200, 304]) {
            check(response, complete(response.len(), status, true));
        }
        // `close` wins; HTTP/1.0 closes unless it says keep-alive.
        let closing: [&[u8]; 2] = [
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        ];
        for response in closing {
            check(response, complete(response.len(), 200, false));
        }
        // Stops at the end of the response.
        let response = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nnoEXTRA";
        check(response, complete(response.len() - 5, 404, true));
    }

    #[test]
    fn every_prefix_is_partial() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for end in 0..response.len() {
            check(&response[..end], Ok(Progress::Partial));
        }
    }

    #[test]
    fn a_close_ends_only_a_body_framed_by_close() {
        let closed = |bytes: &[u8]| {
            let mut scanner = ResponseScanner::default();
            assert_eq!(scanner.feed(bytes), Ok(Progress::Partial));
            scanner.finish_on_close()
        };
        let by_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close";
        let done = closed(by_close).map(|done| (done.consumed, done.status, done.keep_alive));
        assert_eq!(done, Ok((0, 200, false)));
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert_eq!(closed(cut), Err(FramingError::Truncated));
        assert_eq!(closed(b"HTTP/1.1 200 OK\r\n"), Err(FramingError::Truncated));
    }

    #[test]
    fn rejects_malformed_responses() {
        let cases: &[(FramingError, &[&[u8]])] = &[
            (
                FramingError::BadStatusLine,
                &[
                    b"HTTP/2.0 200 OK\r\n\r\n",
                    b"HTTP/1.1 20 OK\r\n\r\n",
                    b"HTTP/1.1 200OK\r\n\r\n",
                    b"HTTP/1.1 200 OK\n\n",
                    b"hello world\r\n\r\n",
                ],
            ),
            (
                FramingError::BadHeader,
                &[
                    b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\n: x\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nA: x\n\r\n",
                ],
            ),
            (
                FramingError::BadContentLength,
                &[
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ],
            ),
            (
                FramingError::UnsupportedTransferEncoding,
                &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
            ),
            (
                FramingError::UnexpectedInformational,
                &[b"HTTP/1.1 100 Continue\r\n\r\n"],
            ),
        ];
        for &(error, responses) in cases {
            for bytes in responses {
                check(bytes, Err(error));
            }
        }
    }

    #[test]
    fn bounds_the_head_and_refuses_unsolicited_bytes() {
        let mut scanner = ResponseScanner::default();
        assert_eq!(scanner.feed(b"HTTP/1.1 200 OK\r\n"), Ok(Progress::Partial));
        let filler = vec![b'a'; MAX_HEAD_BYTES];
        assert_eq!(scanner.feed(&filler), Err(FramingError::HeadTooLarge));

        let mut scanner = ResponseScanner::default();
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(scanner.feed(response), Ok(Progress::Complete(_))));
        assert_eq!(scanner.feed(b"x"), Err(FramingError::UnsolicitedBytes));
    }
}
