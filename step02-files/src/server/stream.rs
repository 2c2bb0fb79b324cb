//! Defines [`Stream`], the one byte-stream trait every server loop is generic over, and the two
//! ways a file body leaves through it: [`send_file`] (zero-copy `sendfile(2)` on Linux) and
//! [`send_head`] (the head, marked "more follows" so it shares a segment with the body's start).
//!
//! The blocking loop of steps 2–5 serves a std `TcpStream` or step 5's `may` socket; the event loops
//! of steps 6–7 serve non-blocking `TcpStream`s; unit tests serve scripted stand-ins. All of them
//! implement [`Stream`]. A stand-in has no descriptor, so its file bodies go through `pread` and
//! `write`, the portable path every platform without `sendfile` takes too.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

// ANCHOR: linger
/// How long a closing connection waits for the client to close its side, and how much it reads
/// and drops meanwhile (a "lingering close"). The blocking loop and the event loops use the same
/// bounds.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// See [`LINGER_TIME`].
pub const LINGER_BYTES: usize = 64 * 1024;
// ANCHOR_END: linger

// ANCHOR: stream
/// A byte stream a server can serve: a socket, or a scripted stand-in in tests.
///
/// Blocking or not is the stream's affair: on a blocking socket `read` and `write` wait (up to
/// their timeouts); on a non-blocking one they return `WouldBlock`, and the event loop waits.
pub trait Stream: Read + Write {
    /// Sends FIN: no more bytes will be written, reading goes on.
    ///
    /// # Errors
    ///
    /// Fails when the peer is already gone (`NotConnected`).
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Bounds how long the next `read` may block; `None` waits for ever. Only the blocking loop
    /// calls it: a non-blocking socket never waits in `read`.
    ///
    /// # Errors
    ///
    /// Fails when the underlying socket rejects the option.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Bounds how long the next `write` (or `sendfile`) may block; `None` waits for ever. Only
    /// the blocking loop calls it, to keep one deadline over a whole response.
    ///
    /// # Errors
    ///
    /// Fails when the underlying socket rejects the option.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// The socket's descriptor, which lets a file body go out through `sendfile` and a head carry
    /// `MSG_MORE`. `None` (the default, for stand-ins) sends file bodies through `pread` + `write`.
    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Whether the descriptor is non-blocking under a blocking interface (step 5's `may` socket):
    /// then a system call made on it directly can find the socket full (`EAGAIN`) at any time, and
    /// the blocking loop must let the stream's own `write` do the waiting. A plain blocking socket
    /// reports `EAGAIN` only once its write timeout has passed.
    fn blocking_is_emulated(&self) -> bool {
        false
    }
}
// ANCHOR_END: stream

impl Stream for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

// ANCHOR: send_file
/// Sends up to `count` bytes of `file`, from byte `offset` on, straight from the page cache to the
/// socket: `sendfile(2)` with an explicit offset, so the file's own position is neither used nor
/// moved (the descriptor may be shared). The bytes never enter this process.
///
/// Returns `None` when zero-copy is not available (a stream without a descriptor, or a platform
/// without `sendfile`): the caller then reads the file into a buffer and writes that. Otherwise
/// the bytes sent, `Ok(0)` when `offset` is at or past the end of the file (it shrank), or the
/// error: `WouldBlock` when a non-blocking socket is full.
pub fn send_file<S: Stream + ?Sized>(
    stream: &S,
    file: &File,
    offset: u64,
    count: u64,
) -> Option<io::Result<usize>> {
    let socket = stream.socket_fd()?;
    sendfile_at(socket, file, offset, count)
}

#[cfg(target_os = "linux")]
fn sendfile_at(
    socket: BorrowedFd<'_>,
    file: &File,
    offset: u64,
    count: u64,
) -> Option<io::Result<usize>> {
    /// Linux sends at most this much per call (sendfile(2)); asking for more is no error.
    const MAX_PER_CALL: u64 = 0x7fff_f000;
    let Ok(mut offset) = nix::libc::off_t::try_from(offset) else {
        return Some(Err(io::ErrorKind::InvalidInput.into()));
    };
    // count <= MAX_PER_CALL, which fits a usize on every Linux target.
    let count = count.min(MAX_PER_CALL) as usize;
    Some(
        nix::sys::sendfile::sendfile(socket, file, Some(&mut offset), count)
            .map_err(io::Error::from),
    )
}

#[cfg(not(target_os = "linux"))]
fn sendfile_at(
    _socket: BorrowedFd<'_>,
    _file: &File,
    _offset: u64,
    _count: u64,
) -> Option<io::Result<usize>> {
    None
}
// ANCHOR_END: send_file

// ANCHOR: send_head
/// Writes (part of) a response head that a file body will follow at once, telling the kernel so
/// (`MSG_MORE`): the head waits in the socket and leaves in the same TCP segment as the first body
/// bytes, instead of a segment of its own (the socket has Nagle's algorithm off, so without the
/// flag a lone head would leave at once). One flag on a call made anyway, where `TCP_CORK` would
/// cost two `setsockopt` calls per response.
///
/// Without a descriptor (or off Linux) it is a plain `write`.
///
/// # Errors
///
/// As `write`: `WouldBlock` when a non-blocking socket is full.
pub fn send_head<S: Stream + ?Sized>(stream: &mut S, head: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    if let Some(socket) = stream.socket_fd() {
        use nix::sys::socket::{MsgFlags, send};
        use std::os::fd::AsRawFd;
        // nix names no MSG_MORE; the bit is libc's. MSG_NOSIGNAL: a peer that is gone gives EPIPE,
        // never SIGPIPE.
        let flags = MsgFlags::from_bits_retain(nix::libc::MSG_MORE) | MsgFlags::MSG_NOSIGNAL;
        return send(socket.as_raw_fd(), head, flags).map_err(io::Error::from);
    }
    stream.write(head)
}
// ANCHOR_END: send_head
