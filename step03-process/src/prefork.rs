//! Prefork: N worker processes forked at start, each accepting and serving one connection at a
//! time on the listener they all share, with the parent as supervisor (Apache's prefork MPM).
//! The supervisor itself is [`supervise`], which step 7's `--workers` shares.
//!
//! All workers block in `accept()` on the same socket. Linux wakes only one of them per incoming
//! connection (accept waiters are queued "exclusive"), so there is no thundering herd here.

use std::io;
use std::net::TcpListener;
use std::num::NonZeroUsize;

use step02_files::server::startup;
use step02_files::{Persistence, Site, serve_tcp};

use crate::process::{ChildSignals, ParentSignals};
use crate::supervisor::{Pool, Worker, supervise};

/// Keeps `workers` workers alive until SIGINT or SIGTERM, then stops them (at once: SIGTERM has
/// its default action in a step-3 worker).
///
/// # Errors
///
/// Fails when waiting for events fails.
pub fn prefork(
    listener: TcpListener,
    site: &Site,
    signals: ParentSignals,
    workers: NonZeroUsize,
) -> io::Result<()> {
    let pool = Pool {
        workers,
        child_signals: ChildSignals::Default,
    };
    // The server announced itself before forking: the workers' backlog is the listener's.
    supervise(
        signals,
        pool,
        || Ok(()),
        |worker| run_worker(&listener, site, worker),
    )
}

// ANCHOR: run_worker
/// A worker's whole life: accept, serve, repeat, until the parent stops it.
fn run_worker(listener: &TcpListener, site: &Site, mut worker: Worker) -> ! {
    worker.ready();
    loop {
        match listener.accept() {
            Ok((stream, peer)) => serve_tcp(stream, peer, site, Persistence::KeepAlive),
            Err(error) => startup::accept_failed(&error),
        }
    }
}
// ANCHOR_END: run_worker
