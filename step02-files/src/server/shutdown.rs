//! Defines [`ShutdownSignal`]: SIGINT and SIGTERM turned into something an accept loop can wait on.
//!
//! A signal handler may do almost nothing (only async-signal-safe calls), so it cannot stop a
//! server itself. The classic answer is the self-pipe trick: the handler writes a byte into a
//! socket pair, and the server watches the other end beside its listener, with `poll`, `epoll` or
//! `mio`. `signal-hook` provides the handler; this module provides the waiting.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::os::fd::AsRawFd;

/// What [`ShutdownSignal::accept`] waited for.
#[derive(Debug)]
pub enum Accepted {
    /// A new connection, and who opened it.
    Connection(TcpStream, SocketAddr),
    /// SIGINT or SIGTERM arrived: stop accepting.
    Shutdown,
    /// `accept` failed; log it, perhaps pause, and go on.
    Failed(io::Error),
}

/// Becomes readable, for good, once SIGINT or SIGTERM has arrived.
#[derive(Debug)]
pub struct ShutdownSignal {
    receiver: UnixStream,
}

impl ShutdownSignal {
    /// Installs handlers for SIGINT and SIGTERM.
    ///
    /// # Errors
    ///
    /// Fails when the socket pair cannot be created or a handler cannot be installed.
    pub fn install() -> io::Result<ShutdownSignal> {
        let (receiver, sender) = UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        sender.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(SIGINT, sender.try_clone()?)?;
        signal_hook::low_level::pipe::register(SIGTERM, sender)?;
        Ok(ShutdownSignal { receiver })
    }

    /// Whether a shutdown signal has arrived.
    ///
    /// The byte the handler wrote is peeked at, never read, so the socket stays readable and every
    /// thread or event loop watching it wakes, not only the first.
    pub fn is_requested(&self) -> bool {
        let mut byte = [0u8; 1];
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        matches!(recv(self.receiver.as_raw_fd(), &mut byte, flags), Ok(1))
    }

    // ANCHOR: accept
    /// Waits for the next connection, or for the shutdown signal.
    ///
    /// # Errors
    ///
    /// Fails when waiting itself fails (`poll`: out of memory), which no retry can be expected to
    /// fix, so the server should stop. A failed `accept` is not an error here but
    /// [`Accepted::Failed`]: that one concerns a single connection or a passing shortage, and the
    /// server goes on (see [`accept_failed`](crate::server::startup::accept_failed)).
    pub fn accept(&self, listener: &TcpListener) -> io::Result<Accepted> {
        loop {
            if self.is_requested() {
                return Ok(Accepted::Shutdown);
            }
            let mut fds = [
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.receiver.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
            if self.is_requested() {
                return Ok(Accepted::Shutdown);
            }
            match listener.accept() {
                // Some systems hand a non-blocking listener's flag down to accepted sockets.
                Ok((stream, peer)) => match stream.set_nonblocking(false) {
                    Ok(()) => return Ok(Accepted::Connection(stream, peer)),
                    Err(error) => return Ok(Accepted::Failed(error)),
                },
                // The client that made the listener readable may have gone already.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => return Ok(Accepted::Failed(error)),
            }
        }
    }
    // ANCHOR_END: accept
}

impl AsFd for ShutdownSignal {
    /// The descriptor to watch for readability in an event loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.receiver.as_fd()
    }
}
