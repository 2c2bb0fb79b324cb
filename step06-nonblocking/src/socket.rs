//! Defines [`accept_nonblocking`], which hands out sockets already in non-blocking mode.
//!
//! What a [`Connection`](crate::Connection) needs from its socket is the core's
//! [`Stream`](step02_files::Stream) trait, the same one the blocking loop of steps 2–5 serves: a
//! `TcpStream` is one, and so are the unit tests' scripted stand-ins.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

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
