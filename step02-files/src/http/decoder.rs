//! Defines [`RequestDecoder`]: the per-connection buffer that turns a byte stream into requests.
//!
//! A connection carries requests back to back (keep-alive, pipelining), each possibly followed by a
//! body the server discards. The decoder owns that bookkeeping so every shell, blocking or not,
//! frames requests the same way: feed it the bytes you read, then ask for the next request.

use std::io::{self, Read};

use crate::http::error::HttpError;
use crate::http::limits::Limits;
use crate::http::request::{Parsed, Request, parse_request};

/// How many bytes [`RequestDecoder::read_from`] asks the source for at a time.
pub const READ_CHUNK: usize = 4096;

/// Frames the requests of one connection.
///
/// ```
/// use step02_files::{Limits, RequestDecoder};
///
/// let mut decoder = RequestDecoder::new(Limits::default());
/// decoder.feed(b"GET / HTTP/1.1\r\nHost: a\r\n");
/// assert_eq!(decoder.next_request(), Ok(None)); // the blank line has not arrived yet
/// decoder.feed(b"\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n");
/// assert_eq!(decoder.next_request().unwrap().unwrap().path, "/");
/// assert_eq!(decoder.next_request().unwrap().unwrap().path, "/b");
/// ```
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    /// Bytes received and not yet used: the start of the next head, perhaps more requests after it.
    buf: Vec<u8>,
    /// Body bytes of the last request still to arrive; they are dropped, never parsed as a request.
    body_to_skip: u64,
    /// Set when bytes arrived that could complete a head, so a trickling client does not make
    /// the decoder rescan the same partial head on every byte.
    worth_parsing: bool,
    /// Set once no further request may be read: after an error, or after a request whose body the
    /// server will not read, since its body could otherwise be parsed as a request (smuggling).
    finished: bool,
}

impl RequestDecoder {
    /// An empty decoder that enforces `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            buf: Vec::new(),
            body_to_skip: 0,
            worth_parsing: false,
            finished: false,
        }
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.note_arrival(bytes.len());
    }

    /// Reads once from `source` into the decoder's buffer and returns how many bytes came;
    /// 0 means the peer closed its side.
    ///
    /// # Errors
    ///
    /// Returns the source's error unchanged: `WouldBlock` from a non-blocking socket means "come
    /// back when it is readable", not failure.
    pub fn read_from<R: Read + ?Sized>(&mut self, source: &mut R) -> io::Result<usize> {
        let old_len = self.buf.len();
        self.buf.resize(old_len + READ_CHUNK, 0);
        let result = source.read(&mut self.buf[old_len..]);
        let n_bytes = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old_len + n_bytes);
        self.note_arrival(n_bytes);
        result
    }

    fn note_arrival(&mut self, n_bytes: usize) {
        let fresh = &self.buf[self.buf.len() - n_bytes..];
        if fresh.contains(&b'\n')
            || self.buf.len() >= self.limits.max_head_bytes.min(self.limits.max_target_bytes)
        {
            self.worth_parsing = true;
        }
        self.discard_body();
    }

    // ANCHOR: next_request
    /// The next complete request, `Ok(None)` if more bytes are needed first.
    ///
    /// # Errors
    ///
    /// Returns the [`HttpError`] that the buffered bytes make certain. The decoder then yields
    /// nothing more: the caller answers with the error's status and closes the connection.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        if self.finished || self.body_to_skip > 0 || !self.worth_parsing {
            return Ok(None);
        }
        match parse_request(&self.buf, &self.limits) {
            Ok(Parsed::Partial) => {
                self.worth_parsing = false;
                Ok(None)
            }
            Ok(Parsed::Complete(request, head_len)) => {
                self.consume(head_len, &request);
                Ok(Some(request))
            }
            Err(error) => {
                self.finished = true;
                Err(error)
            }
        }
    }
    // ANCHOR_END: next_request

    // ANCHOR: consume
    fn consume(&mut self, head_len: usize, request: &Request) {
        self.buf.drain(..head_len);
        if request.method.is_supported() {
            self.body_to_skip = request.content_length;
            self.discard_body();
        } else {
            self.finished = true;
        }
        if !request.keep_alive {
            self.finished = true;
        }
        // Bytes after this head may already hold the next, pipelined, request.
        self.worth_parsing = !self.buf.is_empty();
        self.release_idle_buffer();
    }

    fn discard_body(&mut self) {
        let n_bytes = usize::try_from(self.body_to_skip)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        self.buf.drain(..n_bytes);
        self.body_to_skip -= n_bytes as u64;
    }
    // ANCHOR_END: consume

    /// An idle keep-alive connection should cost almost nothing: once every byte received has been
    /// used, the buffer goes back to the allocator. Keeping it would cost each idle connection at
    /// least [`READ_CHUNK`] bytes (40 MiB at ten thousand connections); getting it back for the next
    /// request costs one allocation, a few tens of nanoseconds beside the `read` that fills it.
    fn release_idle_buffer(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
    }

    /// Whether part of a request has arrived: a head not yet complete, or a body not yet skipped.
    /// A timeout or end of stream in this state cut a request short; otherwise the connection was idle.
    pub fn has_partial_request(&self) -> bool {
        !self.buf.is_empty() || self.body_to_skip > 0
    }

    // ANCHOR: can_close_at_once
    /// Whether the connection can be closed right after the response to `last` without a
    /// lingering close: the client itself said it would send nothing more (`Connection: close`,
    /// or HTTP/1.0 without keep-alive), and every byte it sent has been used.
    ///
    /// Then no unread byte can sit in the kernel's receive buffer, so `close` sends FIN, not RST,
    /// and waiting for the client's FIN would only cost a wake-up and two system calls per
    /// connection. This is nginx's rule too: it lingers only when unread input may remain.
    pub fn can_close_at_once(&self, last: Option<&Request>) -> bool {
        let client_is_done =
            last.is_some_and(|request| !request.keep_alive && request.method.is_supported());
        client_is_done && !self.has_partial_request()
    }
    // ANCHOR_END: can_close_at_once

    /// Whether the decoder will yield no more requests on this connection.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}
