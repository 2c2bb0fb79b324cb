//! Defines [`RequestDecoder`]: the per-connection buffer that turns a byte stream into requests.
//!
//! A connection carries requests back to back (keep-alive, pipelining), each possibly followed by a
//! body the server discards. The decoder owns that bookkeeping so every shell, blocking or not,
//! frames requests the same way: feed it the bytes you read, then ask for the next request.

use std::cell::Cell;
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
    /// `buf[..len]`: bytes received and not yet used, the start of the next head, perhaps more
    /// requests after it. `buf[len..]` is room that earlier reads already initialized: the next
    /// read reuses it rather than zero-filling [`READ_CHUNK`] bytes again.
    buf: Vec<u8>,
    len: usize,
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
            len: 0,
            body_to_skip: 0,
            worth_parsing: false,
            finished: false,
        }
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        self.room_up_to(end).copy_from_slice(bytes);
        self.len = end;
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
        let result = source.read(self.room_up_to(self.len + READ_CHUNK));
        // A reader that claims more than it was offered is not believed.
        let n_bytes = result
            .as_ref()
            .map_or(0, |&n_bytes| n_bytes.min(READ_CHUNK));
        self.len += n_bytes;
        self.note_arrival(n_bytes);
        result
    }

    /// The room between the bytes held and `end`, initialized: zero-filled only the first time
    /// the buffer grows that far. A buffer released earlier on this thread is taken back first.
    fn room_up_to(&mut self, end: usize) -> &mut [u8] {
        if self.buf.capacity() == 0 {
            self.buf = take_spare();
        }
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        &mut self.buf[self.len..end]
    }

    fn note_arrival(&mut self, n_bytes: usize) {
        let fresh = &self.buf[self.len - n_bytes..self.len];
        if fresh.contains(&b'\n')
            || self.len >= self.limits.max_head_bytes.min(self.limits.max_target_bytes)
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
        match parse_request(&self.buf[..self.len], &self.limits) {
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
        self.drop_front(head_len);
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
        self.worth_parsing = self.len > 0;
        self.release_idle_buffer();
    }

    fn discard_body(&mut self) {
        let n_bytes = usize::try_from(self.body_to_skip)
            .unwrap_or(usize::MAX)
            .min(self.len);
        self.drop_front(n_bytes);
        self.body_to_skip -= n_bytes as u64;
    }
    // ANCHOR_END: consume

    /// Forgets the first `n_bytes` held; the rest (a pipelined request) moves to the front.
    fn drop_front(&mut self, n_bytes: usize) {
        self.buf.copy_within(n_bytes..self.len, 0);
        self.len -= n_bytes;
    }

    /// An idle keep-alive connection should cost almost nothing: once every byte received has been
    /// used, the buffer leaves the connection. Keeping it would cost each idle connection at least
    /// [`READ_CHUNK`] bytes (40 MiB at ten thousand connections).
    ///
    /// It is not freed, though, but parked as the thread's one spare buffer, which the next
    /// connection on this thread to read takes (see [`take_spare`]). An event loop answers its
    /// connections one at a time, so one spare serves them all: a busy connection pays neither an
    /// allocation nor a zero-fill per request, and idle ones hold nothing. A thread that serves one
    /// connection (steps 2–5) holds one buffer, as it did while it waited in `read`.
    fn release_idle_buffer(&mut self) {
        if self.len == 0 && self.buf.capacity() > 0 {
            park_spare(std::mem::take(&mut self.buf));
        }
    }

    /// Whether part of a request has arrived: a head not yet complete, or a body not yet skipped.
    /// A timeout or end of stream in this state cut a request short; otherwise the connection was idle.
    pub fn has_partial_request(&self) -> bool {
        self.len > 0 || self.body_to_skip > 0
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

impl Drop for RequestDecoder {
    fn drop(&mut self) {
        if self.buf.capacity() > 0 {
            park_spare(std::mem::take(&mut self.buf));
        }
    }
}

/// A buffer larger than this (a long head made it grow) is freed rather than parked.
const MAX_SPARE: usize = 2 * READ_CHUNK;

thread_local! {
    /// The read buffer last released on this thread, its bytes already initialized.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The thread's spare read buffer, or an empty one (no allocation) if there is none.
fn take_spare() -> Vec<u8> {
    SPARE.try_with(Cell::take).unwrap_or_default()
}

/// Keeps `buf` as the thread's spare; its contents are stale and never read again, only
/// overwritten. Any previous spare is freed.
fn park_spare(buf: Vec<u8>) {
    if buf.capacity() <= MAX_SPARE {
        // During thread exit the slot may be gone: the buffer is then simply freed.
        let _ = SPARE.try_with(|spare| spare.set(buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads from a script of chunks, one chunk per `read`.
    struct Chunks<'a>(std::slice::Iter<'a, &'a [u8]>);

    impl Read for Chunks<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let chunk = self.0.next().copied().unwrap_or_default();
            out[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }

    #[test]
    fn an_idle_decoder_holds_no_buffer_and_the_next_one_reuses_it() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(3000));
        let mut first = RequestDecoder::new(Limits::default());
        first
            .read_from(&mut Chunks([long.as_bytes()].iter()))
            .unwrap();
        assert!(first.next_request().unwrap().is_some());
        assert_eq!(first.buf.capacity(), 0, "idle, it holds nothing");
        // A second connection on this thread gets the spare, stale bytes and all: a partial head
        // shorter than what is left over must still be only what this client sent.
        let mut second = RequestDecoder::new(Limits::default());
        let script: [&[u8]; 2] = [b"GET /b HTTP/1.1\r\n", b"Host: a\r\n\r\n"];
        let mut chunks = Chunks(script.iter());
        second.read_from(&mut chunks).unwrap();
        assert!(second.buf.capacity() >= long.len(), "the spare was reused");
        assert_eq!(second.next_request(), Ok(None));
        assert!(second.has_partial_request());
        second.read_from(&mut chunks).unwrap();
        let request = second.next_request().unwrap().unwrap();
        assert_eq!(
            (request.path.as_str(), request.header("host")),
            ("/b", Some("a"))
        );
        assert!(!second.has_partial_request());
    }

    #[test]
    fn pipelined_bytes_survive_reads_into_reused_room() {
        let mut decoder = RequestDecoder::new(Limits::default());
        let script: [&[u8]; 3] = [
            b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HT",
            b"TP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHo",
            b"st: a\r\n\r\n",
        ];
        let mut chunks = Chunks(script.iter());
        let mut paths = Vec::new();
        for _ in 0..3 {
            decoder.read_from(&mut chunks).unwrap();
            while let Some(request) = decoder.next_request().unwrap() {
                paths.push(request.path);
            }
        }
        assert_eq!(paths, ["/1", "/2", "/3"]);
        assert!(!decoder.has_partial_request());
    }
}
