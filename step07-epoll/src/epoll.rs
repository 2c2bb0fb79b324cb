//! Defines [`EpollPoller`]: the same [`Poller`] as `mio`'s, written directly over Linux's `epoll`
//! (through `nix`), to show what `mio` does underneath: `epoll_create1` once, `epoll_ctl(ADD)` with
//! `EPOLLET` per descriptor, and `epoll_wait` with a timeout in milliseconds.
//!
//! Run it with `--backend epoll`. The event loop is the same code for both backends.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use step06_nonblocking::Readiness;

use crate::poller::{EVENTS_PER_WAIT, Event, Poller, Watch};

// ANCHOR: epoll_poller
/// An `epoll` instance and the buffer its events are copied into.
#[derive(Debug)]
pub struct EpollPoller {
    epoll: Epoll,
    ready: Vec<EpollEvent>,
}

impl EpollPoller {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    ///
    /// # Errors
    ///
    /// Fails when the process is out of descriptors.
    pub fn new() -> io::Result<Self> {
        Ok(EpollPoller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            ready: vec![EpollEvent::empty(); EVENTS_PER_WAIT],
        })
    }
}

impl Poller for EpollPoller {
    fn register(&mut self, fd: BorrowedFd<'_>, token: usize, watch: Watch) -> io::Result<()> {
        // EPOLLRDHUP reports a peer's FIN as its own flag, so a short read that came with it is
        // not taken for "socket drained" (the end of stream is still to be read).
        let flags = match watch {
            Watch::Read => EpollFlags::EPOLLET | EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP,
            Watch::ReadWrite => {
                EpollFlags::EPOLLET
                    | EpollFlags::EPOLLIN
                    | EpollFlags::EPOLLRDHUP
                    | EpollFlags::EPOLLOUT
            }
            Watch::ReadExclusive => exclusive_flags(),
        };
        self.epoll.add(fd, EpollEvent::new(flags, token as u64))?;
        Ok(())
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let n_ready = match self.epoll.wait(&mut self.ready, epoll_timeout(timeout)) {
            Ok(n_ready) => n_ready,
            Err(Errno::EINTR) => return Ok(()),
            Err(errno) => return Err(errno.into()),
        };
        events.extend(self.ready[..n_ready].iter().map(|ready| {
            let flags = ready.events();
            let broken = flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
            let read_closed = broken || flags.contains(EpollFlags::EPOLLRDHUP);
            Event {
                token: usize::try_from(ready.data()).unwrap_or(usize::MAX),
                readiness: Readiness {
                    readable: read_closed || flags.contains(EpollFlags::EPOLLIN),
                    writable: broken || flags.contains(EpollFlags::EPOLLOUT),
                    read_closed,
                },
            }
        }));
        Ok(())
    }
}

/// `epoll_wait` counts in whole milliseconds: round up, or a deadline 0.4 ms away would become a
/// zero timeout, and the loop would spin until it passed.
fn epoll_timeout(timeout: Option<Duration>) -> EpollTimeout {
    match timeout {
        None => EpollTimeout::NONE,
        Some(timeout) => {
            let millis = timeout.as_nanos().div_ceil(1_000_000);
            EpollTimeout::try_from(millis).unwrap_or(EpollTimeout::MAX)
        }
    }
}
// ANCHOR_END: epoll_poller

// ANCHOR: exclusive_flags
/// How a listener shared by several processes is watched (`--share-port exclusive`): when a
/// connection arrives, the kernel wakes one of the `epoll` instances waiting on it, not all of
/// them (the thundering herd). The kernel allows only these flags beside `EPOLLEXCLUSIVE`.
pub fn exclusive_flags() -> EpollFlags {
    EpollFlags::EPOLLET | EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE
}
// ANCHOR_END: exclusive_flags

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        let millis = |timeout| i32::from(epoll_timeout(timeout));
        assert_eq!(millis(None), -1);
        assert_eq!(millis(Some(Duration::ZERO)), 0);
        assert_eq!(millis(Some(Duration::from_micros(400))), 1);
        assert_eq!(millis(Some(Duration::from_millis(7))), 7);
        assert_eq!(millis(Some(Duration::from_secs(u64::MAX))), i32::MAX);
    }
}
