//! Step 8: one thread per ring, and the kernel does the I/O (`io_uring`): the loop hands it
//! operations and is told when each is done.
//!
//! What changed since step 7: readiness became completion. Step 7 waits to hear "this socket can
//! be read" and then makes the `read` itself; every request costs the wait and a system call per
//! read and write. Here the loop queues the operations themselves on a submission ring shared
//! with the kernel — a multishot accept that stays armed for every connection to come, a
//! multishot receive per connection that takes its buffer from a ring of provided buffers only
//! when bytes arrive, a send of the head and small body, a splice of a large file through a pipe
//! — and one `io_uring_enter` submits all that a batch of completions called for and waits for
//! the next batch. The HTTP core is step 2's and the deadline heap step 7's, unchanged.
//!
//! The ladder: `--submit-each` makes one system call per operation, `--no-multishot` re-arms
//! accept and receive after each completion, `--no-buffer-ring` gives every connection its own
//! receive buffer, `--sqpoll` lets a kernel thread pick submissions up. Each turns one of the
//! tuned features off (or, for SQPOLL, on), so a benchmark can measure what each one is worth.
//!
//! Linux only (io_uring is Linux's). Where the kernel refuses io_uring (a container's seccomp
//! profile, `kernel.io_uring_disabled`, a kernel older than 6.1), the server says so in one line
//! and exits 1.

#[cfg(target_os = "linux")]
pub mod buf_ring;
#[cfg(target_os = "linux")]
pub mod connection;
#[cfg(target_os = "linux")]
pub mod event_loop;

#[cfg(target_os = "linux")]
pub use event_loop::RingLoop;

// ANCHOR: options
/// Which of io_uring's features a ring uses: the rungs of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Submit each operation as soon as it is queued (one system call each), instead of all of
    /// a batch's operations in the `io_uring_enter` that also waits.
    pub submit_each: bool,
    /// Multishot accept and receive: one submission for many completions.
    pub multishot: bool,
    /// Receive into a ring of buffers shared by all connections, taken only when bytes arrive;
    /// without it, each connection has a buffer of its own for as long as it is open.
    pub buffer_ring: bool,
    /// A kernel thread polls the submission ring (`IORING_SETUP_SQPOLL`).
    pub sqpoll: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            submit_each: false,
            multishot: true,
            buffer_ring: true,
            sqpoll: false,
        }
    }
}
// ANCHOR_END: options

// ANCHOR: refused
/// Why the kernel refused io_uring, in words an operator can act on; `None` if it did not.
///
/// `error` is what setting up the ring returned.
pub fn refusal(error: &std::io::Error) -> Option<String> {
    let reason = match error.raw_os_error()? {
        1 /* EPERM */ => match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
            Ok(value) if value.trim() != "0" => format!(
                "io_uring is disabled on this system (kernel.io_uring_disabled = {})",
                value.trim()
            ),
            _ => "io_uring is not permitted here (a seccomp profile or a security module)".into(),
        },
        38 /* ENOSYS */ => {
            "io_uring is refused: the kernel has no io_uring, or a seccomp profile blocks it".into()
        }
        22 /* EINVAL */ => {
            "io_uring is refused: this kernel lacks a feature step 8 needs (Linux 6.1 or newer)"
                .into()
        }
        _ => return None,
    };
    Some(reason)
}
// ANCHOR_END: refused

// ANCHOR: run_loops
/// Runs every loop until SIGINT or SIGTERM, one per thread (the last on this thread), and returns
/// when all have finished. They share nothing: each has its own listener, ring and connections.
///
/// As in step 7, every thread is started before `ready` (which announces the server) and before
/// any ring runs: a system that refuses a thread makes the server refuse to start, with one line.
///
/// # Errors
///
/// Fails when a thread cannot be started or `ready` fails, before any ring has run; otherwise
/// returns the first loop's error, after every loop has ended.
#[cfg(target_os = "linux")]
pub fn run_loops(
    loops: Vec<RingLoop<'_>>,
    ready: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
    step07_epoll::run_on_threads(loops, ("rings", "ring"), RingLoop::run, ready)
}
// ANCHOR_END: run_loops

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_says_which_in_one_line() {
        for errno in [38, 22] {
            let reason = refusal(&std::io::Error::from_raw_os_error(errno)).unwrap_or_default();
            assert!(reason.starts_with("io_uring is refused"), "{reason}");
            assert!(!reason.contains('\n'));
        }
        let eperm = refusal(&std::io::Error::from_raw_os_error(1)).unwrap_or_default();
        assert!(eperm.contains("io_uring"), "{eperm}");
        // Anything else is not a refusal but an ordinary failure (out of memory, of descriptors).
        assert_eq!(refusal(&std::io::Error::from_raw_os_error(24)), None);
    }
}
