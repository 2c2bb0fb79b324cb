//! Prefork: N worker processes forked at start, each accepting and serving one connection at a
//! time on the listener they all share, with the parent as supervisor (Apache's prefork MPM).
//!
//! All workers block in `accept()` on the same socket. Linux wakes only one of them per incoming
//! connection (accept waiters are queued "exclusive"), so there is no thundering herd here.

use std::io;
use std::net::TcpListener;
use std::num::NonZeroUsize;

use nix::poll::PollTimeout;
use nix::unistd::{ForkResult, Pid, getpid, getppid};
use step02_files::server::log::note;
use step02_files::server::startup;
use step02_files::{Persistence, Site, serve_tcp};

use crate::children::{Children, Exited};
use crate::exit_child;
use crate::process::{ParentSignals, fork_child, wait_for};

/// How long (in milliseconds) the parent waits before trying again when a worker could not be
/// forked.
const RETRY_FORK_MS: u16 = 1000;

// ANCHOR: supervise
/// The parent's loop: keep `workers` workers alive until SIGINT or SIGTERM, then stop them.
///
/// # Errors
///
/// Fails when waiting for events fails.
pub fn supervise(
    listener: TcpListener,
    site: &Site,
    signals: ParentSignals,
    workers: NonZeroUsize,
) -> io::Result<()> {
    let parent = getpid();
    let mut children = Children::default();
    loop {
        signals.child_exits.clear();
        children.reap().iter().for_each(log_worker_exit);
        while children.len() < workers.get() {
            match fork_child() {
                Ok(ForkResult::Child) => run_worker(listener, signals, site, parent),
                Ok(ForkResult::Parent { child }) => children.insert(child, "worker".to_owned()),
                Err(errno) => {
                    note(format_args!("cannot fork a worker ({errno}); retrying"));
                    break;
                }
            }
        }
        let timeout = if children.len() < workers.get() {
            PollTimeout::from(RETRY_FORK_MS)
        } else {
            PollTimeout::NONE
        };
        // The parent does not accept: it only waits for a worker to die or for a signal.
        if wait_for(None, &signals, timeout)?.stop {
            break;
        }
    }
    children.stop_all();
    Ok(())
}
// ANCHOR_END: supervise

// ANCHOR: run_worker
/// A worker's whole life: accept, serve, repeat, until the parent stops it.
fn run_worker(listener: TcpListener, signals: ParentSignals, site: &Site, parent: Pid) -> ! {
    drop(signals);
    exit_with_parent(parent);
    loop {
        match listener.accept() {
            Ok((stream, peer)) => serve_tcp(stream, peer, site, Persistence::KeepAlive),
            Err(error) => startup::accept_failed(&error),
        }
    }
}
// ANCHOR_END: run_worker

// ANCHOR: exit_with_parent
/// Makes the kernel send this worker SIGTERM when the parent dies, even by SIGKILL, which
/// gives the parent no chance to stop its workers. Without this, orphaned workers would go on
/// accepting on the port for ever.
fn exit_with_parent(parent: Pid) {
    #[cfg(target_os = "linux")]
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).is_err() {
        exit_child();
    }
    // The parent may have died between `fork` and the line above; the worker was then adopted
    // by another process and the death signal will never come.
    if getppid() != parent {
        exit_child();
    }
}
// ANCHOR_END: exit_with_parent

/// A worker exits only when killed or crashed, since its loop never ends: say so, as it is
/// about to be replaced.
fn log_worker_exit(exited: &Exited) {
    note(format_args!(
        "worker {} {}; starting another",
        exited.pid,
        exited.how()
    ));
}
