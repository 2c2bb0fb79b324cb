//! Defines [`Socket`], what a [`Connection`](crate::Connection) needs from its byte stream, and
//! [`accept_nonblocking`], which hands out sockets already in non-blocking mode.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

/// A non-blocking byte stream: `read` and `write` return `WouldBlock` instead of waiting.
///
/// The connection state machine is generic over it so that unit tests can drive it with scripted
/// streams (one byte at a time, writes that take one byte, resets) instead of real sockets.
pub trait Socket: Read + Write {
    /// Sends FIN: no more bytes will be written, reading goes on.
    ///
    /// # Errors
    ///
    /// Fails when the peer is already gone (`NotConnected`).
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

// ANCHOR: accept_nonblocking
/// Accepts one connection from a non-blocking listener and returns it in non-blocking mode, ready
/// for an event loop, with Nagle's algorithm off (a response is written whole, or in chunks that
/// should leave at once).
///
/// On Linux `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` sets the mode in the same system call;
/// elsewhere a second call (`fcntl`) does it.
///
/// # Errors
///
/// `WouldBlock` when no connection is waiting; `EMFILE`/`ENFILE` when the process or the system
/// is out of descriptors (see
/// [`is_resource_shortage`](step02_files::server::startup::is_resource_shortage)); anything else `accept`
/// can report.
pub fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = accept_raw(listener)?;
    stream.set_nodelay(true)?;
    Ok((stream, peer))
}
// ANCHOR_END: accept_nonblocking

#[cfg(target_os = "linux")]
fn accept_raw(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let (socket, addr) = socket2::SockRef::from(listener).accept4(flags)?;
    let peer = addr.as_socket().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP connection")
    })?;
    Ok((socket.into(), peer))
}

#[cfg(not(target_os = "linux"))]
fn accept_raw(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept()?;
    stream.set_nonblocking(true)?;
    Ok((stream, peer))
}
