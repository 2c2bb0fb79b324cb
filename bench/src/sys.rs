//! The few system calls the generator needs that `std` lacks: resource limits and CPU usage.

use std::io;
use std::time::Duration;

/// The descriptor limits after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit, which only root can raise.
    pub hard: u64,
}

/// Raises this process's `RLIMIT_NOFILE` soft limit to its hard limit. Child processes (the servers
/// `compare` starts) inherit the raised limit.
///
/// # Errors
///
/// When `getrlimit` or `setrlimit` fails.
pub fn raise_nofile_limit() -> io::Result<NofileLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit struct for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit struct; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(NofileLimit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
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

/// The CPU time of the calling thread so far, from `getrusage(RUSAGE_THREAD)`. The load generator sums
/// it over its worker threads, so that other threads of the process (the `/proc` sampler of `compare`)
/// do not count as load-generation cost.
#[must_use]
pub fn thread_cpu_time() -> CpuTime {
    rusage(libc::RUSAGE_THREAD)
}

/// The CPU time of this whole process (all threads) so far, from `getrusage(RUSAGE_SELF)`.
#[must_use]
pub fn process_cpu_time() -> CpuTime {
    rusage(libc::RUSAGE_SELF)
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

fn rusage(who: libc::c_int) -> CpuTime {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage struct; with a valid pointer and a valid `who`
    // (RUSAGE_SELF or RUSAGE_THREAD) getrusage cannot fail.
    unsafe { libc::getrusage(who, &raw mut usage) };
    let to_duration = |tv: libc::timeval| {
        Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    CpuTime {
        user: to_duration(usage.ru_utime),
        system: to_duration(usage.ru_stime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_uses_cpu() {
        let before = thread_cpu_time();
        let deadline = std::time::Instant::now() + Duration::from_millis(30);
        let mut spins = 0u64;
        while std::time::Instant::now() < deadline {
            spins = std::hint::black_box(spins + 1);
        }
        let spent = thread_cpu_time().since(before).total();
        assert!(spent >= Duration::from_millis(10), "{spent:?}");
        assert!(process_cpu_time().total() >= spent);
    }
}
