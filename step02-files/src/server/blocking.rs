//! The blocking connection loop that steps 2 to 5 share: read a request, answer it, repeat.
//!
//! It is written once, generic over [`Stream`], so the chapters on processes, threads and
//! coroutines show only what they change: how many of these loops run at once.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::http::decoder::RequestDecoder;
use crate::http::error::HttpError;
use crate::http::request::Request;
use crate::http::respond::{error_response, respond, status_page};
use crate::http::response::{
    FileRange, Persistence, Response, Segment, file_shrank, recycle_buffer,
};
use crate::http::status::StatusCode;
use crate::server::clock::wall_clock;
use crate::server::startup::Site;
use crate::server::stream::{LINGER_BYTES, LINGER_TIME, Stream, send_file, send_head};

pub use crate::http::response::SMALL_BODY;

/// Where a file cannot go out through `sendfile` (see [`send_file`]), it is copied through a buffer
/// of this size, so memory per connection stays bounded whatever the file's size. The buffer lives
/// on the heap: coroutine stacks (step 5) are small.
pub const COPY_CHUNK: usize = 64 * 1024;

// ANCHOR: serve_tcp
/// Serves one accepted TCP connection until it ends, logging rather than returning its errors:
/// one client's failure never reaches the accept loop.
pub fn serve_tcp(mut stream: TcpStream, peer: SocketAddr, site: &Site, persistence: Persistence) {
    if let Err(error) = configure(&stream, site) {
        site.log.connection_error(peer, &error);
        return;
    }
    if let Err(error) = handle_connection(&mut stream, peer, site, persistence) {
        site.log.connection_error(peer, &error);
    }
}

fn configure(stream: &TcpStream, site: &Site) -> io::Result<()> {
    // Responses are written whole; Nagle's algorithm would only delay the last segment of each.
    stream.set_nodelay(true)?;
    // A client that stops reading must not hold this connection's worker for ever.
    stream.set_write_timeout(Some(site.idle_timeout))
}
// ANCHOR_END: serve_tcp

// ANCHOR: handle_connection
/// Reads requests from `stream` and answers each, until the client or the response closes the
/// connection, the client stays idle for `site.idle_timeout`, or a request is refused.
///
/// # Errors
///
/// Returns the I/O error that ended the connection early (a reset, a write timeout). Refused
/// requests are not errors: they are answered with their status.
pub fn handle_connection<T: Stream>(
    stream: &mut T,
    peer: SocketAddr,
    site: &Site,
    persistence: Persistence,
) -> io::Result<()> {
    let mut decoder = RequestDecoder::new(site.limits);
    loop {
        let (request, response) = match read_request(stream, &mut decoder, site.idle_timeout)? {
            Incoming::Request(request) => {
                let response = respond(&site.root, &request, persistence, &wall_clock());
                (Some(request), response)
            }
            Incoming::Refused(error) => (None, error_response(error, &wall_clock())),
            Incoming::TimedOutMidRequest => (
                None,
                status_page(StatusCode::REQUEST_TIMEOUT, &wall_clock()),
            ),
            // Nothing is owed to a client that closed or went quiet between requests, and no
            // unread bytes can be waiting: a plain close sends FIN, no lingering needed.
            Incoming::Closed => return Ok(()),
        };
        let status = response.status();
        let keep_alive = response.keep_alive();
        let body_bytes = write_response(stream, response, site.idle_timeout)?;
        site.log.record(peer, request.as_ref(), status, body_bytes);
        if !keep_alive && decoder.can_close_at_once(request.as_ref()) {
            return Ok(());
        }
        if !keep_alive {
            return close_gracefully(stream);
        }
        // The next request on this thread parses into this one's strings: no allocation.
        if let Some(request) = request {
            request.recycle();
        }
    }
}
// ANCHOR_END: handle_connection

/// What the client sent next.
#[derive(Debug)]
pub enum Incoming {
    /// A complete request head.
    Request(Request),
    /// Bytes that cannot be a valid request.
    Refused(HttpError),
    /// Part of a request, then nothing until the deadline.
    TimedOutMidRequest,
    /// The client closed, or stayed idle past the deadline, between requests.
    Closed,
}

// ANCHOR: read_request
/// Reads until `decoder` holds a whole request head, for at most `timeout` in all.
///
/// The deadline covers the whole head, not each `read`: a client trickling one byte every few
/// seconds (slowloris) is cut off after `timeout` like an idle one.
///
/// # Errors
///
/// Returns read errors other than the timeout, which is an answer ([`Incoming::TimedOutMidRequest`]
/// or [`Incoming::Closed`]), not a failure.
pub fn read_request<T: Stream>(
    stream: &mut T,
    decoder: &mut RequestDecoder,
    timeout: Duration,
) -> io::Result<Incoming> {
    let deadline = Instant::now() + timeout;
    loop {
        match decoder.next_request() {
            Ok(Some(request)) => return Ok(Incoming::Request(request)),
            Ok(None) if decoder.is_finished() => return Ok(Incoming::Closed),
            Ok(None) => {}
            Err(error) => return Ok(Incoming::Refused(error)),
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(timed_out(decoder));
        }
        stream.set_read_timeout(Some(remaining))?;
        match decoder.read_from(stream) {
            Ok(0) => return Ok(Incoming::Closed),
            Ok(_) => {}
            Err(error) if is_timeout(&error) => return Ok(timed_out(decoder)),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: read_request

fn timed_out(decoder: &RequestDecoder) -> Incoming {
    if decoder.has_partial_request() {
        Incoming::TimedOutMidRequest
    } else {
        Incoming::Closed
    }
}

/// A read timeout shows up as `WouldBlock` on Unix and `TimedOut` on Windows.
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

// ANCHOR: write_response
/// Writes the head and then exactly `response.body_len` body bytes; returns the body bytes sent.
///
/// A small body goes out in the same `write` as the head. A large file follows a head marked
/// "more follows" ([`send_head`]) and leaves through `sendfile` ([`send_file`]): from the page
/// cache to the socket, never through this process's memory. Without `sendfile` it is copied in
/// [`COPY_CHUNK`] pieces, never read whole into memory.
///
/// # Errors
///
/// Fails when the peer goes away, the write times out, or the file ends early (it was truncated
/// while being served): the head has promised a length the server can no longer keep, so the
/// only honest thing left is to close.
pub fn write_response<S: Stream + ?Sized>(
    stream: &mut S,
    response: Response,
    timeout: Duration,
) -> io::Result<u64> {
    let body_len = response.body_len();
    let wire = response.into_wire()?;
    let mut deadline = WriteDeadline::new(timeout);
    // A head marked "more follows" must be followed: an empty range gets a plain write.
    if wire.more_follows_first() {
        write_head(stream, &wire.first, &mut deadline)?;
    } else {
        write_all(stream, &wire.first, &mut deadline)?;
    }
    if let Some(range) = &wire.rest {
        send_range(stream, range, &mut deadline)?;
    }
    send_segments(stream, &wire.then, &mut deadline)?;
    stream.flush()?;
    deadline.restore(stream)?;
    recycle_buffer(wire.first);
    Ok(body_len)
}
// ANCHOR_END: write_response

/// Sends what follows a large file part in a `multipart/byteranges` body: each part's boundary
/// and headers ("more follows", as a head is), each part through [`send_range`] as a single
/// range is sent, and last the closing boundary, written plainly so that it leaves at once.
fn send_segments<S: Stream + ?Sized>(
    stream: &mut S,
    segments: &[Segment],
    deadline: &mut WriteDeadline,
) -> io::Result<()> {
    for (at, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Bytes(bytes) if at + 1 < segments.len() => {
                write_head(stream, bytes, deadline)?;
            }
            Segment::Bytes(bytes) => write_all(stream, bytes, deadline)?,
            Segment::File(range) => send_range(stream, range, deadline)?,
        }
    }
    Ok(())
}

// ANCHOR: write_deadline
/// How much a client must take of a response, before its write deadline, for the deadline to
/// start again; and the most one `sendfile` call is asked to send, for the same reason.
const PROGRESS: u64 = 256 * 1024;

/// One response's write deadline: the idle timeout, counted from the start of the response or
/// from the last time the client took [`PROGRESS`] more bytes in time.
///
/// The socket's own write timeout (`SO_SNDTIMEO`) bounds each wait inside one call, not the
/// call: a `sendfile` of a large file to a client that has stopped reading goes on for several
/// timeouts while the client's kernel still opens its window by a little now and then, and the
/// next call starts a whole timeout again. So calls send at most [`PROGRESS`] bytes, the socket
/// is given only what is left of the deadline, and a call that comes back after the deadline
/// ends the response, whatever it sent. A client reading slowly but steadily keeps its download.
struct WriteDeadline {
    timeout: Duration,
    deadline: Instant,
    since_restart: u64,
    /// The timeout the socket has now: the whole one unless a call was given less.
    socket_timeout: Duration,
}

impl WriteDeadline {
    fn new(timeout: Duration) -> WriteDeadline {
        WriteDeadline {
            timeout,
            deadline: Instant::now() + timeout,
            since_restart: 0,
            socket_timeout: timeout,
        }
    }

    /// Counts `n_bytes` just sent, with more to send: fails once the deadline has passed, and
    /// bounds the next call by what is left of it.
    fn sent_part<S: Stream + ?Sized>(&mut self, stream: &mut S, n_bytes: u64) -> io::Result<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.since_restart += n_bytes;
        if self.since_restart >= PROGRESS {
            self.since_restart = 0;
            self.deadline = now + self.timeout;
        }
        let left = self.deadline - now;
        // Within a hundredth of the socket's timeout: not worth a system call per part.
        if left + self.timeout / 100 < self.socket_timeout || left > self.socket_timeout {
            stream.set_write_timeout(Some(left))?;
            self.socket_timeout = left;
        }
        Ok(())
    }

    /// Gives the socket its whole timeout back, if a part-sent call shortened it.
    fn restore<S: Stream + ?Sized>(&self, stream: &mut S) -> io::Result<()> {
        if self.socket_timeout != self.timeout {
            stream.set_write_timeout(Some(self.timeout))?;
        }
        Ok(())
    }
}
// ANCHOR_END: write_deadline

/// `write_all`, within `deadline`.
fn write_all<S: Stream + ?Sized>(
    stream: &mut S,
    mut bytes: &[u8],
    deadline: &mut WriteDeadline,
) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n_bytes) => bytes = &bytes[n_bytes..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
        if !bytes.is_empty() {
            deadline.sent_part(stream, 0)?;
        }
    }
    Ok(())
}

/// Writes all of a head that a file body follows, with `MSG_MORE` where the stream allows it.
fn write_head<S: Stream + ?Sized>(
    stream: &mut S,
    head: &[u8],
    deadline: &mut WriteDeadline,
) -> io::Result<()> {
    let mut n_sent = 0;
    while n_sent < head.len() {
        match send_head(stream, &head[n_sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n_bytes) => n_sent += n_bytes,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // The socket under `may` is full: its own `write` parks the coroutine until it is not.
            Err(error)
                if error.kind() == io::ErrorKind::WouldBlock && stream.blocking_is_emulated() =>
            {
                return write_all(stream, &head[n_sent..], deadline);
            }
            // On a blocking socket, WouldBlock means the write timeout passed.
            Err(error) => return Err(error),
        }
        if n_sent < head.len() {
            deadline.sent_part(stream, 0)?;
        }
    }
    Ok(())
}

// ANCHOR: send_range
/// Sends exactly the bytes of `range`: through `sendfile` while the stream allows it, else one
/// [`COPY_CHUNK`] at a time through `pread` and `write`. Reads at explicit offsets: the file may be
/// shared.
///
/// Under `may` (step 5) the socket is non-blocking underneath, so `sendfile` returns `EAGAIN`
/// when the socket is full. `may` offers no wait for "writable" that honours the write timeout,
/// so that one chunk goes through the stream's own `write`, which parks the coroutine (not the
/// worker thread) until the socket takes it, or the timeout passes; then `sendfile` resumes.
fn send_range<S: Stream + ?Sized>(
    stream: &mut S,
    range: &FileRange,
    deadline: &mut WriteDeadline,
) -> io::Result<()> {
    let mut chunk = Vec::new();
    let mut n_sent = 0u64;
    while n_sent < range.len {
        let offset = range.offset + n_sent;
        let remaining = range.len - n_sent;
        let n_bytes = match send_file(stream, &range.file, offset, remaining.min(PROGRESS)) {
            Some(Ok(n_bytes)) => n_bytes as u64,
            Some(Err(error)) if error.kind() == io::ErrorKind::Interrupted => continue,
            Some(Err(error))
                if error.kind() == io::ErrorKind::WouldBlock && stream.blocking_is_emulated() =>
            {
                copy_chunk(stream, range, n_sent, &mut chunk, deadline)?
            }
            Some(Err(error)) => return Err(error),
            None => copy_chunk(stream, range, n_sent, &mut chunk, deadline)?,
        };
        if n_bytes == 0 {
            return Err(file_shrank());
        }
        n_sent += n_bytes;
        if n_sent < range.len {
            deadline.sent_part(stream, n_bytes)?;
        }
    }
    Ok(())
}
// ANCHOR_END: send_range

/// Copies up to one [`COPY_CHUNK`] of `range`, after its first `n_sent` bytes, to `sink` through
/// `chunk`, which is allocated on first use. Returns the bytes copied; 0 when the file ended early.
///
/// Not `io::copy`: that keeps an 8 KiB buffer on the stack, a quarter of a `may` coroutine's
/// default stack, and (where it uses `sendfile`) reads from the file's own position, which a
/// shared descriptor must not use.
fn copy_chunk<S: Stream + ?Sized>(
    sink: &mut S,
    range: &FileRange,
    n_sent: u64,
    chunk: &mut Vec<u8>,
    deadline: &mut WriteDeadline,
) -> io::Result<u64> {
    let n_read = range.read_chunk(n_sent, COPY_CHUNK, chunk)?;
    write_all(sink, &chunk[..n_read], deadline)?;
    Ok(n_read as u64)
}

// ANCHOR: close_gracefully
/// Sends FIN, then reads (and drops) what the client still sends until it closes too, for at most
/// a couple of seconds.
///
/// Closing a socket whose receive buffer holds unread bytes makes the kernel send RST instead of
/// FIN, and a client that gets RST may throw away the response it has not read yet. Draining first
/// (a "lingering close", as Apache and nginx do) lets the answer arrive intact.
///
/// # Errors
///
/// Fails only if the socket rejects the shutdown; errors while draining end the drain quietly.
pub fn close_gracefully<T: Stream + ?Sized>(stream: &mut T) -> io::Result<()> {
    match stream.shutdown_write() {
        Ok(()) => {}
        // The peer is already gone: nothing left to protect.
        Err(error) if error.kind() == io::ErrorKind::NotConnected => return Ok(()),
        Err(error) => return Err(error),
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = [0u8; 512];
    let mut n_drained = 0;
    while n_drained < LINGER_BYTES {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(remaining))?;
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n_read) => n_drained += n_read,
        }
    }
    Ok(())
}
// ANCHOR_END: close_gracefully

#[cfg(test)]
mod tests {
    //! `send_range` on real sockets: a range from mid-file, on a blocking socket and on a socket
    //! whose blocking is emulated over a non-blocking descriptor, as `may`'s is.

    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsFd, BorrowedFd};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use super::send_range;
    use crate::http::response::FileRange;
    use crate::server::stream::Stream;

    /// A non-blocking socket whose `write` waits (by retrying) like `may`'s: `sendfile` on its
    /// descriptor finds it full, and the loop must fall back to `write` for that chunk. Counts
    /// its writes.
    struct Emulated(TcpStream, usize);

    impl Read for Emulated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Emulated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1 += 1;
            loop {
                match self.0.write(buf) {
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1));
                    }
                    result => return result,
                }
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Stream for Emulated {
        fn shutdown_write(&mut self) -> io::Result<()> {
            self.0.shutdown(std::net::Shutdown::Write)
        }

        fn set_write_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
            Ok(())
        }

        fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
            Ok(())
        }

        fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
            Some(self.0.as_fd())
        }

        fn blocking_is_emulated(&self) -> bool {
            true
        }
    }

    fn contents() -> Vec<u8> {
        (0..12_000_000u32).map(|n| (n * 13 % 251) as u8).collect()
    }

    /// Serves `range` of a file holding [`contents`] through a stream made from the server side of
    /// a connection, shows the stream to `after`, and returns what a slow client received.
    fn serve_range<S: Stream>(
        make: impl FnOnce(TcpStream) -> S,
        offset: u64,
        len: u64,
        after: impl FnOnce(&S),
    ) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, contents()).unwrap();
        let range = FileRange {
            file: Arc::new(File::open(&path).unwrap()),
            offset,
            len,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        let reader = thread::spawn(move || {
            let mut received = Vec::new();
            // Slow at first, so the server's socket fills and sendfile meets EAGAIN.
            thread::sleep(Duration::from_millis(200));
            client.read_to_end(&mut received).unwrap();
            received
        });
        let mut stream = make(server);
        send_range(
            &mut stream,
            &range,
            &mut super::WriteDeadline::new(Duration::from_secs(5)),
        )
        .unwrap();
        after(&stream);
        drop(stream);
        reader.join().unwrap()
    }

    #[test]
    fn a_range_from_mid_file_arrives_exactly_on_a_blocking_socket() {
        let received = serve_range(|socket| socket, 3_333_333, 8_000_000, |_| {});
        assert!(received == contents()[3_333_333..11_333_333], "wrong bytes");
    }

    #[test]
    fn a_full_socket_under_emulated_blocking_falls_back_to_write_and_loses_nothing() {
        let mut n_writes = 0;
        let received = serve_range(
            |socket| {
                socket.set_nonblocking(true).unwrap();
                Emulated(socket, 0)
            },
            1_000_001,
            10_000_000,
            |stream| n_writes = stream.1,
        );
        assert!(received == contents()[1_000_001..11_000_001], "wrong bytes");
        assert!(
            n_writes > 0,
            "the socket never filled: the fallback went untested"
        );
    }
}
