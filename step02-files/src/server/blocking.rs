//! The blocking connection loop that steps 2 to 5 share: read a request, answer it, repeat.
//!
//! It is written once, generic over [`Transport`], so the chapters on processes, threads and
//! coroutines show only what they change: how many of these loops run at once.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use crate::http::decoder::RequestDecoder;
use crate::http::error::HttpError;
use crate::http::request::Request;
use crate::http::respond::{error_response, respond, status_page};
use crate::http::response::{FileRange, Persistence, Response, file_shrank};
use crate::http::status::StatusCode;
use crate::server::clock::wall_clock;
use crate::server::startup::Site;

pub use crate::http::response::SMALL_BODY;

/// Larger files are streamed through a buffer of this size, so memory per connection stays bounded
/// whatever the file's size. It lives on the heap: coroutine stacks (step 5) are small.
pub const COPY_CHUNK: usize = 64 * 1024;

/// How long a closing connection waits for the client to close its side, and how much it reads
/// meanwhile (see [`close_gracefully`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// A byte stream the blocking loop can serve: a socket, or a scripted stand-in in tests.
pub trait Transport: Read + Write {
    /// Bounds how long the next `read` may block; `None` waits for ever.
    ///
    /// # Errors
    ///
    /// Fails when the underlying socket rejects the option.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sends FIN: no more bytes will be written, reading goes on.
    ///
    /// # Errors
    ///
    /// Fails when the peer is already gone.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

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
pub fn handle_connection<T: Transport>(
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
        let body_bytes = write_response(stream, response)?;
        site.log.record(peer, request.as_ref(), status, body_bytes);
        if !keep_alive && decoder.can_close_at_once(request.as_ref()) {
            return Ok(());
        }
        if !keep_alive {
            return close_gracefully(stream);
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
pub fn read_request<T: Transport>(
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
/// A small body goes out in the same `write` as the head. A file is streamed in [`COPY_CHUNK`]
/// pieces, never read whole into memory.
///
/// # Errors
///
/// Fails when the peer goes away, the write times out, or the file ends early (it was truncated
/// while being served): the head has promised a length the server can no longer keep, so the
/// only honest thing left is to close.
pub fn write_response<W: Write + ?Sized>(stream: &mut W, response: Response) -> io::Result<u64> {
    let body_len = response.body_len();
    let wire = response.into_wire()?;
    stream.write_all(&wire.first)?;
    if let Some(range) = wire.rest {
        let n_copied = copy_range(&range, stream)?;
        ensure_whole(n_copied, range.len)?;
    }
    stream.flush()?;
    Ok(body_len)
}
// ANCHOR_END: write_response

fn ensure_whole(n_bytes: u64, expected: u64) -> io::Result<()> {
    if n_bytes == expected {
        Ok(())
    } else {
        Err(file_shrank())
    }
}

/// Copies `range` to `sink` through a heap buffer, reading at explicit offsets (the file may be
/// shared). Not `io::copy`: it keeps an 8 KiB buffer on the stack, a quarter of a `may`
/// coroutine's default stack.
fn copy_range<W: Write + ?Sized>(range: &FileRange, sink: &mut W) -> io::Result<u64> {
    let mut chunk = vec![0u8; COPY_CHUNK.min(usize::try_from(range.len).unwrap_or(COPY_CHUNK))];
    let mut n_copied = 0u64;
    while n_copied < range.len {
        let wanted = usize::try_from(range.len - n_copied)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        let n_read = match range
            .file
            .read_at(&mut chunk[..wanted], range.offset + n_copied)
        {
            Ok(0) => return Ok(n_copied),
            Ok(n_read) => n_read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        sink.write_all(&chunk[..n_read])?;
        n_copied += n_read as u64;
    }
    Ok(n_copied)
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
pub fn close_gracefully<T: Transport + ?Sized>(stream: &mut T) -> io::Result<()> {
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
