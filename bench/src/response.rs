//! An incremental, allocation-free scanner for HTTP/1.x responses.
//!
//! The load generator only needs to know where each response ends and whether it succeeded, so this is
//! a scanner, not a parser: it validates the status line, reads `Content-Length`, `Connection` and
//! `Transfer-Encoding`, skips every other header, and counts body bytes without copying them. It is
//! written independently of the servers' request parser on purpose: a client that shared the servers'
//! code would share their bugs, and would be a weaker oracle.
//!
//! Bytes may arrive split anywhere (the state survives between calls to [`ResponseScanner::feed`]), and
//! the scanner is strict where a lenient client would hide a server bug: line endings must be CRLF, the
//! status line must be `HTTP/1.x NNN …`, and a body must be framed by `Content-Length` or by closing the
//! connection.

use std::fmt;

/// The most bytes a response head may take before the scanner calls it malformed.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

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

/// Which header's value is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    ContentLength,
    Connection,
    TransferEncoding,
    Other,
}

/// Where in the response the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matching the literal `HTTP/1.` at this offset.
    Version(u8),
    /// Expecting the minor version digit.
    Minor,
    /// Expecting the space after the version.
    SpaceBeforeStatus,
    /// Reading the n-th digit of the status code.
    StatusDigit(u8),
    /// Expecting the space (or CR) after the status code.
    AfterStatus,
    /// Skipping the reason phrase up to CR.
    Reason,
    /// Expecting the LF that ends a line.
    LineFeed,
    /// At the start of a header line (or of the blank line that ends the head).
    LineStart,
    /// Expecting the LF of the blank line that ends the head.
    FinalLineFeed,
    /// Reading a header name.
    Name,
    /// Reading a header value.
    Value(Header),
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
    head_bytes: usize,
    minor_version: u8,
    status: u16,
    content_length: Option<u64>,
    transfer_encoding: bool,
    close_token: bool,
    keep_alive_token: bool,
    // The current header name, lowercased, and the current `Connection` token; both are short and only
    // compared against a few known words, so fixed arrays avoid any allocation.
    name: [u8; 20],
    name_len: u8,
    token: [u8; 12],
    token_len: u8,
    digits: Option<u64>,
    bytes_seen: u64,
    // Kept out of `State` on purpose: a u64 payload made the enum 16 bytes, and copying it on every
    // head byte cost a store-forwarding stall that `perf annotate` showed as 80 % of this scanner.
    remaining: u64,
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
            state: State::Version(0),
            head_bytes: 0,
            minor_version: 1,
            status: 0,
            content_length: None,
            transfer_encoding: false,
            close_token: false,
            keep_alive_token: false,
            name: [0; 20],
            name_len: 0,
            token: [0; 12],
            token_len: 0,
            digits: None,
            bytes_seen: 0,
            remaining: 0,
        }
    }

    /// Forgets the previous response.
    pub fn reset(&mut self) {
        *self = Self::new();
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
                _ => {
                    let head_end = self.scan_head(&bytes[offset..])?;
                    offset += head_end.unwrap_or(bytes.len() - offset);
                    if head_end.is_some() {
                        self.state = self.body_state()?;
                        self.remaining = self.content_length.unwrap_or(0);
                        if self.state == State::Done {
                            return Ok(Progress::Complete(self.complete(offset)));
                        }
                    }
                }
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

    fn complete(&self, consumed: usize) -> Complete {
        let keep_alive = match self.minor_version {
            0 => self.keep_alive_token && !self.close_token,
            _ => !self.close_token,
        };
        Complete {
            consumed,
            status: self.status,
            keep_alive: keep_alive && (self.content_length.is_some() || self.bodyless()),
        }
    }

    const fn bodyless(&self) -> bool {
        self.status == 204 || self.status == 304
    }

    fn body_state(&self) -> Result<State, FramingError> {
        if self.status < 200 {
            return Err(FramingError::UnexpectedInformational);
        }
        if self.transfer_encoding {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
        if self.bodyless() {
            return Ok(State::Done);
        }
        Ok(match self.content_length {
            Some(0) => State::Done,
            Some(_) => State::Body,
            None => State::UntilClose,
        })
    }

    /// Scans head bytes; returns the offset just past the blank line once the head is complete.
    ///
    /// Two fast paths do the common case a line at a time; the byte-at-a-time state machine
    /// ([`step`](Self::step)) handles whatever they leave, in particular lines split between reads.
    fn scan_head(&mut self, bytes: &[u8]) -> Result<Option<usize>, FramingError> {
        let mut index = 0;
        while index < bytes.len() {
            let rest = &bytes[index..];
            match self.state {
                // A whole header line in this chunk: classify its name once instead of per byte.
                State::LineStart => {
                    if let Some(line_end) = self.whole_header_line(rest)? {
                        index += line_end;
                        continue;
                    }
                }
                // The reason phrase and the values of headers this client ignores: skip them in one
                // pass up to the next control byte (CR, or an invalid one), which `step` handles.
                State::Reason | State::Value(Header::Other) => {
                    let skipped = rest
                        .iter()
                        .position(|&byte| is_control(byte))
                        .unwrap_or(rest.len());
                    self.count_head_bytes(skipped)?;
                    index += skipped;
                    if index == bytes.len() {
                        break;
                    }
                }
                _ => {}
            }
            self.count_head_bytes(1)?;
            if self.step(bytes[index])? {
                return Ok(Some(index + 1));
            }
            index += 1;
        }
        Ok(None)
    }

    /// If `rest` holds a complete, non-empty header line (`name: value` CRLF), takes it in one go and
    /// returns its length with the CRLF. The checks are those of the state machine: token characters
    /// in the name, no control byte in the value.
    fn whole_header_line(&mut self, rest: &[u8]) -> Result<Option<usize>, FramingError> {
        let Some(cr) = rest.iter().position(|&byte| byte == b'\r') else {
            return Ok(None);
        };
        if cr == 0 || cr + 1 >= rest.len() {
            // The blank line that ends the head, or a CR whose LF has not arrived: byte by byte.
            return Ok(None);
        }
        if rest[cr + 1] != b'\n' {
            return Err(FramingError::BadHeader);
        }
        let line = &rest[..cr];
        let colon = line
            .iter()
            .position(|&byte| byte == b':')
            .ok_or(FramingError::BadHeader)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&byte| is_tchar(byte)) {
            return Err(FramingError::BadHeader);
        }
        self.count_head_bytes(cr + 2)?;
        let header = classify(name);
        self.digits = None;
        self.token_len = 0;
        if header == Header::Other {
            if value.iter().any(|&byte| is_control(byte)) {
                return Err(FramingError::BadHeader);
            }
        } else {
            for &byte in value {
                self.value_byte(header, byte)?;
            }
            self.end_value(header)?;
        }
        Ok(Some(cr + 2))
    }

    fn count_head_bytes(&mut self, count: usize) -> Result<(), FramingError> {
        self.head_bytes += count;
        if self.head_bytes > MAX_HEAD_BYTES {
            return Err(FramingError::HeadTooLarge);
        }
        Ok(())
    }

    /// Advances the head state machine by one byte; true when the head is complete.
    fn step(&mut self, byte: u8) -> Result<bool, FramingError> {
        const VERSION: &[u8] = b"HTTP/1.";
        self.state = match (self.state, byte) {
            (State::Version(at), _) if byte == VERSION[usize::from(at)] => {
                if usize::from(at) + 1 == VERSION.len() {
                    State::Minor
                } else {
                    State::Version(at + 1)
                }
            }
            (State::Version(_), _) => return Err(FramingError::BadStatusLine),
            (State::Minor, b'0' | b'1') => {
                self.minor_version = byte - b'0';
                State::SpaceBeforeStatus
            }
            (State::SpaceBeforeStatus, b' ') => State::StatusDigit(0),
            (State::StatusDigit(n), b'0'..=b'9') => {
                self.status = self.status * 10 + u16::from(byte - b'0');
                if n == 2 {
                    State::AfterStatus
                } else {
                    State::StatusDigit(n + 1)
                }
            }
            (State::AfterStatus, b' ') => State::Reason,
            (State::AfterStatus | State::Reason, b'\r') => State::LineFeed,
            (State::Reason, b'\n') => return Err(FramingError::BadStatusLine),
            (State::Reason, _) => State::Reason,
            (
                State::Minor
                | State::SpaceBeforeStatus
                | State::StatusDigit(_)
                | State::AfterStatus,
                _,
            ) => {
                return Err(FramingError::BadStatusLine);
            }
            (State::LineFeed, b'\n') => State::LineStart,
            (State::LineFeed, _) => return Err(FramingError::BadHeader),
            (State::LineStart, b'\r') => State::FinalLineFeed,
            (State::FinalLineFeed, b'\n') => return Ok(true),
            (State::FinalLineFeed, _) => return Err(FramingError::BadHeader),
            (State::LineStart, _) => {
                self.name_len = 0;
                self.push_name(byte)?;
                State::Name
            }
            (State::Name, b':') => self.start_value()?,
            (State::Name, _) => {
                self.push_name(byte)?;
                State::Name
            }
            (State::Value(header), b'\r') => {
                self.end_value(header)?;
                State::LineFeed
            }
            (State::Value(_), b'\n') => return Err(FramingError::BadHeader),
            (State::Value(header), _) => {
                self.value_byte(header, byte)?;
                State::Value(header)
            }
            (State::Body | State::UntilClose | State::Done, _) => self.state,
        };
        Ok(false)
    }

    fn push_name(&mut self, byte: u8) -> Result<(), FramingError> {
        if !is_tchar(byte) {
            return Err(FramingError::BadHeader);
        }
        let at = usize::from(self.name_len);
        if at < self.name.len() {
            self.name[at] = byte.to_ascii_lowercase();
        }
        self.name_len = self.name_len.saturating_add(1);
        Ok(())
    }

    fn start_value(&mut self) -> Result<State, FramingError> {
        // A name longer than the buffer was truncated: it is none of the three we look for.
        let header = match self.name.get(..usize::from(self.name_len)) {
            Some([]) => return Err(FramingError::BadHeader),
            Some(name) => classify(name),
            None => Header::Other,
        };
        self.digits = None;
        self.token_len = 0;
        Ok(State::Value(header))
    }

    fn value_byte(&mut self, header: Header, byte: u8) -> Result<(), FramingError> {
        if is_control(byte) {
            return Err(FramingError::BadHeader);
        }
        match header {
            Header::Other => {}
            Header::ContentLength => self.length_byte(byte)?,
            Header::Connection => self.token_byte(byte),
            Header::TransferEncoding => {
                if byte != b' ' && byte != b'\t' {
                    self.transfer_encoding = true;
                }
            }
        }
        Ok(())
    }

    fn length_byte(&mut self, byte: u8) -> Result<(), FramingError> {
        match byte {
            b'0'..=b'9' if self.token_len == 0 => {
                let value = self.digits.unwrap_or(0);
                let value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(byte - b'0')));
                self.digits = Some(value.ok_or(FramingError::BadContentLength)?);
            }
            // Whitespace ends the number; `token_len` marks "trailing whitespace seen".
            b' ' | b'\t' => {
                if self.digits.is_some() {
                    self.token_len = 1;
                }
            }
            _ => return Err(FramingError::BadContentLength),
        }
        Ok(())
    }

    fn token_byte(&mut self, byte: u8) {
        if byte == b',' {
            self.end_token();
        } else if byte != b' ' && byte != b'\t' {
            let at = usize::from(self.token_len);
            if at < self.token.len() {
                self.token[at] = byte.to_ascii_lowercase();
            }
            self.token_len = self.token_len.saturating_add(1);
        }
    }

    fn end_token(&mut self) {
        match self.token.get(..usize::from(self.token_len)).unwrap_or(b"") {
            b"close" => self.close_token = true,
            b"keep-alive" => self.keep_alive_token = true,
            _ => {}
        }
        self.token_len = 0;
    }

    fn end_value(&mut self, header: Header) -> Result<(), FramingError> {
        match header {
            Header::ContentLength => {
                let value = self.digits.ok_or(FramingError::BadContentLength)?;
                if self
                    .content_length
                    .is_some_and(|previous| previous != value)
                {
                    return Err(FramingError::BadContentLength);
                }
                self.content_length = Some(value);
            }
            Header::Connection => self.end_token(),
            Header::TransferEncoding | Header::Other => {}
        }
        Ok(())
    }
}

/// Which of the headers this scanner reads `name` is (compared without regard to case).
fn classify(name: &[u8]) -> Header {
    if name.eq_ignore_ascii_case(b"content-length") {
        Header::ContentLength
    } else if name.eq_ignore_ascii_case(b"connection") {
        Header::Connection
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        Header::TransferEncoding
    } else {
        Header::Other
    }
}

/// RFC 9110 token characters; anything else (space, control, separators) is malformed in a name.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Control bytes, which may not appear in a reason phrase or a header value (tab excepted).
const fn is_control(byte: u8) -> bool {
    byte < b' ' && byte != b'\t' || byte == 0x7f
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
