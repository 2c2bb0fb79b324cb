//! Defines [`ShutdownSignal`]: SIGINT and SIGTERM turned into something an accept loop can wait on.
//!
//! A signal handler may do almost nothing (only async-signal-safe calls), so it cannot stop a
//! server itself. The classic answer is the self-pipe trick: the handler writes a byte into a
//! socket pair, and the server watches the other end beside its listener, with `poll`, `epoll` or
//! `mio`. `signal-hook` provides the handler; this module provides the waiting.
//!
//! Two more signals have a fixed answer here, the same in every step. A second SIGINT or SIGTERM,
//! while a graceful stop is still waiting for responses in flight, means "stop now": the process
//! exits at once with status 0 (lines of the access log still queued are lost). SIGHUP, which
//! by default kills a process with status 129, is ignored: the server has no configuration to
//! reload, and a closed terminal should not take it down. It says so in one line on stderr.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};
use signal_hook::SigId;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::server::log::LineSink;

/// The line SIGHUP leaves on stderr.
pub const HANGUP_NOTE: &str =
    "SIGHUP ignored: nothing to reload (stop the server with Ctrl-C or SIGTERM)\n";

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
    /// The actions registered with `signal-hook`, so that a forked worker can drop its copies
    /// ([`ShutdownSignal::forget`]) and install its own.
    actions: Vec<SigId>,
}

impl ShutdownSignal {
    // ANCHOR: install
    /// Installs handlers for SIGINT and SIGTERM (the first asks for a graceful stop, the second
    /// ends the process at once with status 0), and for SIGHUP (ignored, with a note).
    ///
    /// # Errors
    ///
    /// Fails when the socket pair cannot be created or a handler cannot be installed.
    pub fn install() -> io::Result<ShutdownSignal> {
        ShutdownSignal::install_with(&[])
    }

    /// The handlers of [`ShutdownSignal::install`], and for each of `graceful_only` a handler
    /// that asks for a graceful stop and nothing more.
    fn install_with(graceful_only: &[i32]) -> io::Result<ShutdownSignal> {
        let (receiver, sender) = UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        sender.set_nonblocking(true)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let mut actions = Vec::new();
        for signal in [SIGINT, SIGTERM] {
            // The actions run in the order they are registered: the exit looks at the flag before
            // this signal sets it, so it ends the process only when a stop is already under way.
            actions.push(signal_hook::flag::register_conditional_shutdown(
                signal,
                0,
                Arc::clone(&stopping),
            )?);
            actions.push(signal_hook::low_level::pipe::register(
                signal,
                sender.try_clone()?,
            )?);
            actions.push(signal_hook::flag::register(signal, Arc::clone(&stopping))?);
        }
        for &signal in graceful_only {
            // No exit here: only a SIGINT or SIGTERM after it ends the process at once.
            actions.push(signal_hook::low_level::pipe::register(
                signal,
                sender.try_clone()?,
            )?);
            actions.push(signal_hook::flag::register(signal, Arc::clone(&stopping))?);
        }
        actions.push(ignore_hangups()?);
        Ok(ShutdownSignal { receiver, actions })
    }
    // ANCHOR_END: install

    // ANCHOR: install_in_worker
    /// [`ShutdownSignal::install`] for a worker process that a master supervises: SIGQUIT too
    /// asks for a graceful stop, but never counts as the second signal that ends the process at
    /// once. The master passes a stop on as SIGQUIT (nginx's "graceful shutdown" signal), so a
    /// worker that also got the terminal's Ctrl-C itself does not take the master's as a second.
    ///
    /// # Errors
    ///
    /// As [`ShutdownSignal::install`].
    pub fn install_in_worker() -> io::Result<ShutdownSignal> {
        ShutdownSignal::install_with(&[SIGQUIT])
    }
    // ANCHOR_END: install_in_worker

    /// Drops this process's copies of the signal actions, in a child forked from the process that
    /// installed them, so that the child can install its own. The handlers stay in place; the
    /// caller keeps the signals blocked until its own actions are registered.
    pub fn forget(self) {
        for action in self.actions {
            signal_hook::low_level::unregister(action);
        }
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

/// Replaces SIGHUP's default action (terminate) with a note on stderr.
///
/// A handler may not take a lock or allocate, so it cannot call
/// [`note`](crate::server::log::note); it makes one non-blocking write of a fixed line to the
/// same stderr instead ([`LineSink::write_from_signal_handler`]).
fn ignore_hangups() -> io::Result<SigId> {
    // Opened here, outside the handler, which must find it ready.
    let stderr = LineSink::stderr();
    // SAFETY: the action is async-signal-safe: it reads an atomic flag and makes one `write` or
    // `send` system call on a descriptor opened above, with no lock and no allocation.
    unsafe {
        signal_hook::low_level::register(SIGHUP, move || {
            stderr.write_from_signal_handler(HANGUP_NOTE.as_bytes());
        })
    }
}

impl AsFd for ShutdownSignal {
    /// The descriptor to watch for readability in an event loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.receiver.as_fd()
    }
}
