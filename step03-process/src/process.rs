//! The process plumbing of step 3: `fork` with sane signal handling in the child, SIGCHLD turned
//! into a readable socket, and one `poll` over everything the parent waits for.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::unistd::{ForkResult, fork};
use signal_hook::consts::SIGCHLD;
use step02_files::ShutdownSignal;

/// The signals the parent handles itself. A child must not run the parent's handlers for them.
const PARENT_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD];

/// The parent ignores SIGHUP with a note on stderr; a child ignores it silently, so a hangup of
/// the whole process group (a closed terminal) leaves one line, not one per child.
const IGNORED_SIGNALS: [Signal; 1] = [Signal::SIGHUP];

/// What a forked child does with the signals the parent handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildSignals {
    /// Back to the default actions: SIGTERM or SIGINT ends the child at once (step 3).
    Default,
    /// SIGINT, SIGTERM and SIGQUIT stay blocked, with `signal-hook`'s handler still in place, for
    /// the child to drop the parent's actions ([`ParentSignals::forget`]), register its own and
    /// then call [`unblock_stop_signals`]: a signal that arrives meanwhile waits, and is not lost.
    /// A worker that stops gracefully (step 7's `--workers`) starts this way.
    Own,
}

/// The signals a child with [`ChildSignals::Own`] keeps blocked until it has its own actions.
const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGQUIT];

/// Unblocks what [`ChildSignals::Own`] left blocked in the child.
///
/// # Errors
///
/// Returns `sigprocmask`'s error, which these fixed arguments cannot cause.
pub fn unblock_stop_signals() -> nix::Result<()> {
    let stop: SigSet = STOP_SIGNALS.into_iter().collect();
    sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&stop), None)
}

// ANCHOR: fork_child
/// Forks, and in the child puts SIGINT, SIGTERM and SIGCHLD back to their default actions (and
/// SIGHUP to "ignore").
///
/// The child inherits the parent's signal handlers, and the handlers installed by `signal-hook`
/// write into the parent's self-pipes, whose write ends the child inherits too. Left alone, a
/// `kill -TERM CHILD_PID` would make the *parent* shut down. So the signals are blocked across
/// `fork` (a signal arriving in between cannot run the inherited handler), reset in the child,
/// and unblocked in both.
///
/// # Errors
///
/// Returns `fork`'s error: `EAGAIN` (too many processes for this user, `ulimit -u`) or `ENOMEM`.
pub fn fork_child() -> nix::Result<ForkResult> {
    fork_child_with(ChildSignals::Default)
}
/// [`fork_child`], choosing what the child does with the parent's signals.
///
/// # Errors
///
/// As [`fork_child`].
pub fn fork_child_with(child_signals: ChildSignals) -> nix::Result<ForkResult> {
    let parent_signals: SigSet = PARENT_SIGNALS
        .into_iter()
        .chain(IGNORED_SIGNALS)
        .chain(STOP_SIGNALS)
        .collect();
    let mut old_mask = SigSet::empty();
    sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&parent_signals),
        Some(&mut old_mask),
    )?;
    // SAFETY: the server's process is single-threaded (no part of it starts a thread, and
    // `signal-hook`'s handlers need none), so no other thread can hold a lock (the allocator's,
    // stdout's, the access log's) that the child would find locked for ever. That makes the child's use of the
    // allocator and of std sound. Adding a thread to this process (a logger, a pool) would break
    // this: the child could then only call async-signal-safe functions until `exec`.
    let forked = unsafe { fork() };
    let mut mask = old_mask;
    if let Ok(ForkResult::Child) = forked {
        restore_default_signals(child_signals);
        if child_signals == ChildSignals::Own {
            STOP_SIGNALS.into_iter().for_each(|stop| mask.add(stop));
        }
    }
    // Unblocking in the child delivers nothing stale: `fork` starts the child's pending set empty.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
    forked
}
// ANCHOR_END: fork_child

/// Ignores SIGHUP without a note: in a worker, so that a hangup of the whole process group
/// leaves one line (the master's), not one per worker.
pub fn silence_hangups() {
    for ignored in IGNORED_SIGNALS {
        // SAFETY: `SigIgn` installs no handler code, so nothing can run in signal context.
        let _ = unsafe { signal(ignored, SigHandler::SigIgn) };
    }
}

fn restore_default_signals(child_signals: ChildSignals) {
    for parent_signal in PARENT_SIGNALS {
        if child_signals == ChildSignals::Own && parent_signal != Signal::SIGCHLD {
            continue;
        }
        // SAFETY: `SigDfl` installs no handler code, so nothing can run in signal context. The
        // call cannot fail for these signals (only SIGKILL and SIGSTOP are refused).
        let _ = unsafe { signal(parent_signal, SigHandler::SigDfl) };
    }
    for ignored in IGNORED_SIGNALS {
        // SAFETY: as above, `SigIgn` installs no handler code.
        let _ = unsafe { signal(ignored, SigHandler::SigIgn) };
    }
}

// ANCHOR: parent_signals
/// What the parent waits for besides connections: a request to stop, and children exiting.
///
/// Installed before the server announces itself, so everything the server will hold is open by
/// the time anyone reads its `Listening on` line.
#[derive(Debug)]
pub struct ParentSignals {
    /// SIGINT or SIGTERM.
    pub shutdown: ShutdownSignal,
    /// SIGCHLD.
    pub child_exits: ChildExits,
}

impl ParentSignals {
    /// Installs the handlers for SIGINT, SIGTERM and SIGCHLD.
    ///
    /// # Errors
    ///
    /// Fails when a socket pair cannot be created or a handler cannot be installed.
    pub fn install() -> io::Result<ParentSignals> {
        Ok(ParentSignals {
            shutdown: ShutdownSignal::install()?,
            child_exits: ChildExits::install()?,
        })
    }

    /// In a child forked with [`ChildSignals::Own`]: drops the child's copies of the parent's
    /// signal actions and sockets, so that a signal sent to the child never wakes the parent.
    pub fn forget(self) {
        self.shutdown.forget();
        signal_hook::low_level::unregister(self.child_exits.action);
    }
}
// ANCHOR_END: parent_signals

// ANCHOR: child_exits
/// Becomes readable when a child has exited (SIGCHLD), through the same self-pipe trick as
/// [`ShutdownSignal`]. Unlike a shutdown, child exits recur: [`ChildExits::clear`] empties the
/// pipe once the parent has reaped.
#[derive(Debug)]
pub struct ChildExits {
    receiver: UnixStream,
    action: signal_hook::SigId,
}

impl ChildExits {
    /// Installs a SIGCHLD handler that writes to the pipe.
    ///
    /// # Errors
    ///
    /// Fails when the socket pair cannot be created or the handler cannot be installed.
    pub fn install() -> io::Result<ChildExits> {
        let (receiver, sender) = UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        sender.set_nonblocking(true)?;
        let action = signal_hook::low_level::pipe::register(SIGCHLD, sender)?;
        Ok(ChildExits { receiver, action })
    }

    /// Reads away the bytes the handler wrote. Call it before reaping, so an exit that happens
    /// while reaping leaves a fresh byte and wakes the next wait.
    pub fn clear(&self) {
        let mut bytes = [0u8; 64];
        // The socket is non-blocking: this stops at `WouldBlock` once the pipe is empty.
        while let Ok(n_read) = (&self.receiver).read(&mut bytes) {
            if n_read == 0 {
                break;
            }
        }
    }
}

impl AsFd for ChildExits {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.receiver.as_fd()
    }
}
// ANCHOR_END: child_exits

/// What woke the parent. Several can be true at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct Wakeup {
    /// A connection is waiting to be accepted.
    pub connection: bool,
    /// SIGINT or SIGTERM arrived.
    pub stop: bool,
    /// A child exited.
    pub child_exited: bool,
}

// ANCHOR: wait_for
/// Blocks until a connection arrives on `listener` (if given), a child exits, or a shutdown
/// signal arrives; or until `timeout` passes.
///
/// Passing no listener is how the parent stops accepting: at the `--max-children` cap, new
/// connections wait in the kernel's backlog until a child exits.
///
/// # Errors
///
/// Returns `poll`'s error (`EINTR` is not one: a signal is a reason to look again).
pub fn wait_for(
    listener: Option<BorrowedFd<'_>>,
    signals: &ParentSignals,
    timeout: PollTimeout,
) -> io::Result<Wakeup> {
    let mut fds = vec![
        PollFd::new(signals.shutdown.as_fd(), PollFlags::POLLIN),
        PollFd::new(signals.child_exits.as_fd(), PollFlags::POLLIN),
    ];
    if let Some(listener) = listener {
        fds.push(PollFd::new(listener, PollFlags::POLLIN));
    }
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(errno) => return Err(errno.into()),
    }
    let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|events| !events.is_empty());
    Ok(Wakeup {
        stop: signals.shutdown.is_requested(),
        child_exited: ready(&fds[1]),
        connection: fds.get(2).is_some_and(ready),
    })
}
// ANCHOR_END: wait_for
