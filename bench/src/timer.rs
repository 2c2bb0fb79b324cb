//! A `timerfd` for the `--rate` schedule: `epoll_wait` takes its timeout in whole milliseconds (mio
//! rounds up), which would add up to a millisecond to every latency measured from a request's intended
//! start — more than a whole loopback round trip. A timer descriptor in the same poll wakes the loop at
//! the slot itself, with nanosecond resolution.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// A one-shot monotonic timer that becomes readable when it expires.
#[derive(Debug)]
pub struct SlotTimer {
    fd: OwnedFd,
    /// The instant the timer is armed for, if any.
    armed: Option<Instant>,
}

impl SlotTimer {
    /// Creates the timer and registers it in `registry` under `token`.
    ///
    /// # Errors
    ///
    /// When `timerfd_create` or the registration fails.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Self> {
        // SAFETY: timerfd_create takes no pointers; the result is checked before use.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just created and own; nothing else will close it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
        Ok(Self { fd, armed: None })
    }

    /// Makes the timer fire at `at` (at once if `at` has passed), unless it is already armed for that
    /// instant.
    ///
    /// # Errors
    ///
    /// When `timerfd_settime` fails.
    pub fn arm(&mut self, at: Instant) -> io::Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        // A zero it_value would disarm the timer: a slot already due fires after one nanosecond.
        let delay = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let value = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(delay.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(delay.subsec_nanos()),
            },
        };
        // SAFETY: the descriptor is open (owned by self); `value` is a valid itimerspec and the old
        // value pointer may be null.
        let result = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                0,
                &raw const value,
                std::ptr::null_mut(),
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = Some(at);
        Ok(())
    }

    /// Acknowledges an expiry (reads the counter so the descriptor stops being readable).
    pub fn acknowledge(&mut self) {
        let mut expirations = [0u8; 8];
        // SAFETY: the descriptor is open and `expirations` is a writable 8-byte buffer, the size a
        // timerfd read requires. A failed read (nothing expired yet) is harmless.
        let _ = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                expirations.as_mut_ptr().cast(),
                expirations.len(),
            )
        };
        self.armed = None;
    }
}
