//! The system calls the generator needs beyond `std`, through `nix`: the descriptor limit, per-thread
//! CPU time, and a `timerfd` for the `--rate` schedule.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use nix::sys::time::{TimeSpec, TimeVal, TimeValLike};
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Raises this process's `RLIMIT_NOFILE` soft limit to its hard limit (which only root can raise) and
/// returns it. Child processes (the servers `compare` starts) inherit the raised limit.
///
/// # Errors
///
/// When `getrlimit` or `setrlimit` fails.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel.
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    #[must_use]
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The time spent since `earlier`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

impl std::ops::Add for CpuTime {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }
}

/// The CPU time of the calling thread so far (`getrusage(RUSAGE_THREAD)`). The load generator sums it
/// over its worker threads, so other threads of the process (the `/proc` sampler of `compare`) do not
/// count as load-generation cost.
#[must_use]
pub fn thread_cpu_time() -> CpuTime {
    let to_duration =
        |tv: TimeVal| Duration::from_micros(u64::try_from(tv.num_microseconds()).unwrap_or(0));
    // getrusage fails only for an invalid `who`, which the enum rules out.
    getrusage(UsageWho::RUSAGE_THREAD).map_or_else(
        |_| CpuTime::default(),
        |usage| CpuTime {
            user: to_duration(usage.user_time()),
            system: to_duration(usage.system_time()),
        },
    )
}

/// A one-shot monotonic timer for the `--rate` schedule, readable when it expires. `epoll_wait` takes
/// its timeout in whole milliseconds (mio rounds up), which would add up to a millisecond to every
/// latency measured from a request's intended start — more than a loopback round trip. A timer
/// descriptor in the same poll wakes the loop at the slot itself, with nanosecond resolution.
#[derive(Debug)]
pub struct SlotTimer {
    timer: TimerFd,
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
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags)?;
        let raw = timer.as_fd().as_raw_fd();
        registry.register(&mut SourceFd(&raw), token, Interest::READABLE)?;
        Ok(Self { timer, armed: None })
    }

    /// Makes the timer fire at `at` (at once if `at` has passed), unless already armed for it.
    ///
    /// # Errors
    ///
    /// When `timerfd_settime` fails.
    pub fn arm(&mut self, at: Instant) -> io::Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        // A zero delay would disarm the timer: a slot already due fires after one nanosecond.
        let delay = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let expiration = Expiration::OneShot(TimeSpec::from_duration(delay));
        self.timer.set(expiration, TimerSetTimeFlags::empty())?;
        self.armed = Some(at);
        Ok(())
    }

    /// Acknowledges an expiry (reads the counter so the descriptor stops being readable).
    pub fn acknowledge(&mut self) {
        // On a non-blocking timer a read before expiry fails with EAGAIN: harmless.
        let _ = self.timer.wait();
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_uses_cpu() {
        let before = thread_cpu_time();
        let deadline = Instant::now() + Duration::from_millis(30);
        let mut spins = 0u64;
        while Instant::now() < deadline {
            spins = std::hint::black_box(spins + 1);
        }
        let spent = thread_cpu_time().since(before).total();
        assert!(spent >= Duration::from_millis(10), "{spent:?}");
        let limit = raise_nofile_limit().unwrap();
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (limit, limit));
    }

    #[test]
    fn the_slot_timer_wakes_the_poll_at_its_slot() {
        let mut poll = mio::Poll::new().unwrap();
        let mut timer = SlotTimer::new(poll.registry(), Token(7)).unwrap();
        let started = Instant::now();
        timer.arm(started + Duration::from_millis(20)).unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            events.iter().next().map(mio::event::Event::token),
            Some(Token(7))
        );
        assert!(
            started.elapsed() >= Duration::from_millis(19),
            "{:?}",
            started.elapsed()
        );
        timer.acknowledge();
    }
}
