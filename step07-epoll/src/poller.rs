//! Defines [`Poller`]: the one thing the two backends do differently, telling the loop which
//! sockets are ready; and [`MioPoller`], the default backend.
//!
//! Both backends register every socket once, edge-triggered, for reading and writing. Edge-triggered
//! means an event says "something changed" (bytes arrived, room appeared in the send buffer), not
//! "this socket is ready" over and over as level-triggered polling does. So the loop must use up
//! each event: accept, read or write until the kernel says `WouldBlock`, and remember that it has
//! not yet done so when it stops early on purpose (see
//! [`Connection`](step06_nonblocking::Connection), which keeps that memory).
//!
//! Why register writable interest once instead of only while a response is pending: with
//! level-triggered epoll, a socket registered for writing while it has nothing to write would wake
//! the loop on every call (a send buffer with room is always writable), so the classic loop adds and
//! removes `EPOLLOUT` with `epoll_ctl` around each large response. Edge-triggered, the socket
//! reports "writable" only when room appears after the buffer was full, so keeping the interest
//! costs nothing and saves those `epoll_ctl` calls. tokio registers sockets the same way.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use step06_nonblocking::Readiness;

// ANCHOR: event_watch
/// What a registered descriptor should report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Readable only: a listener, the shutdown signal.
    Read,
    /// Readable and writable: a connection.
    ReadWrite,
    /// Readable, waking only one of the pollers that watch it: a listener that several worker
    /// processes share (`EPOLLEXCLUSIVE`, Linux only).
    ReadExclusive,
}

/// One readiness event: which registration, and what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token given at registration.
    pub token: usize,
    /// What the socket may do now.
    pub readiness: Readiness,
}
// ANCHOR_END: event_watch

// ANCHOR: poller_trait
/// A source of readiness events for registered descriptors: `epoll`, directly or through `mio`.
pub trait Poller {
    /// Watches `fd` (edge-triggered) and reports its events under `token`.
    ///
    /// Closing the descriptor ends the registration: the loop never deregisters explicitly.
    ///
    /// # Errors
    ///
    /// Fails when the kernel refuses (out of memory, or `max_user_watches` reached).
    fn register(&mut self, fd: BorrowedFd<'_>, token: usize, watch: Watch) -> io::Result<()>;

    /// Waits until some registered descriptor is ready or `timeout` passes (`None`: no limit), and
    /// replaces the contents of `events` with what happened. A signal interrupting the wait is not
    /// an error: `events` is then empty.
    ///
    /// # Errors
    ///
    /// Fails only if the wait itself fails, which means the poller is broken.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
}
// ANCHOR_END: poller_trait

/// How many events one wait returns at most; more ready sockets are reported by the next wait.
pub const EVENTS_PER_WAIT: usize = 1024;

// ANCHOR: mio_poller
/// The default backend: `mio`'s `Poll`, which on Linux is `epoll` in edge-triggered mode.
#[derive(Debug)]
pub struct MioPoller {
    poll: Poll,
    events: Events,
}

impl MioPoller {
    /// A new `Poll` (one `epoll` instance).
    ///
    /// # Errors
    ///
    /// Fails when the process is out of descriptors.
    pub fn new() -> io::Result<Self> {
        Ok(MioPoller {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS_PER_WAIT),
        })
    }

    /// `mio` has no `EPOLLEXCLUSIVE`, so the listener is added to its `epoll` instance directly,
    /// through a duplicate of its descriptor. `mio` keeps no list of registrations on Linux: an
    /// event's token is the `epoll` data, whoever added it.
    #[cfg(target_os = "linux")]
    fn register_exclusive(&mut self, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
        use nix::sys::epoll::{Epoll, EpollEvent};
        use std::os::fd::{AsFd, BorrowedFd as Borrowed};
        // SAFETY: the descriptor is `self.poll`'s, open for as long as `self` is borrowed here.
        let mio_epoll = unsafe { Borrowed::borrow_raw(self.poll.as_raw_fd()) };
        let epoll = Epoll(mio_epoll.try_clone_to_owned()?);
        let event = EpollEvent::new(crate::epoll::exclusive_flags(), token as u64);
        epoll.add(fd.as_fd(), event)?;
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn register_exclusive(&mut self, _fd: BorrowedFd<'_>, _token: usize) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

impl Poller for MioPoller {
    fn register(&mut self, fd: BorrowedFd<'_>, token: usize, watch: Watch) -> io::Result<()> {
        let interest = match watch {
            Watch::Read => Interest::READABLE,
            Watch::ReadWrite => Interest::READABLE | Interest::WRITABLE,
            Watch::ReadExclusive => return self.register_exclusive(fd, token),
        };
        let raw_fd = fd.as_raw_fd();
        self.poll
            .registry()
            .register(&mut SourceFd(&raw_fd), Token(token), interest)
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(error) => return Err(error),
        }
        events.extend(self.events.iter().map(|event| {
            // An error or a hang-up is reported to both directions: the next read or write on the
            // socket returns it, and the connection ends.
            let broken = event.is_error();
            let read_closed = event.is_read_closed() || broken;
            Event {
                token: event.token().0,
                readiness: Readiness {
                    readable: event.is_readable() || read_closed,
                    writable: event.is_writable() || event.is_write_closed() || broken,
                    read_closed,
                },
            }
        }));
        Ok(())
    }
}
// ANCHOR_END: mio_poller
