//! Defines [`serve_workers`]: step 7 as nginx runs it, a master process and N worker processes,
//! each with its own event loops and its own descriptor table (`--workers N`).
//!
//! Why processes when threads already give a loop per core: a process's descriptor limit
//! (`RLIMIT_NOFILE`) is per process, so N workers hold N times as many connections; and a worker
//! that crashes takes only its own connections down, the master forks another. The master is
//! step 3's supervisor ([`step03_process::supervise`]), the one in the workspace.
//!
//! Two ways to share the port, chosen by `--share-port`:
//! - [`SharePort::Reuseport`]: each worker loop has its own listener in one `SO_REUSEPORT` group,
//!   bound by the master before it forks; the kernel hashes each new connection to one of them
//!   (nginx's `listen … reuseport`). Even spread, but a stalled worker's queue waits for it.
//! - [`SharePort::Exclusive`]: one listener, which every loop watches with `EPOLLEXCLUSIVE`; the
//!   kernel wakes one waiting loop per connection (nginx's default since 1.11.3). A busy worker
//!   is not woken, but the spread follows who is waiting.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::net::TcpListener;
use std::num::NonZeroUsize;

use step02_files::server::log::note;
use step02_files::server::startup;
use step02_files::{ShutdownSignal, Site};
use step03_process::{
    ChildSignals, ParentSignals, Pool, Worker, exit_child, exit_child_with, supervise,
    unblock_stop_signals,
};

use crate::{Backend, Loop, Watch, run_loops};

/// How worker processes share the listening port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SharePort {
    /// A listener per loop in one `SO_REUSEPORT` group: the kernel picks the listener.
    #[default]
    Reuseport,
    /// One listener watched by every loop with `EPOLLEXCLUSIVE`: the kernel wakes one loop.
    Exclusive,
}

/// The shape of a `--workers` server.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// How many worker processes.
    pub workers: NonZeroUsize,
    /// How many event loops (threads) in each worker.
    pub threads: NonZeroUsize,
    /// How they share the port.
    pub share: SharePort,
    /// Where the loops get readiness from.
    pub backend: Backend,
}

impl WorkerOptions {
    /// How many listening sockets the master binds before it forks: one per loop with
    /// `SO_REUSEPORT`, one in all with `EPOLLEXCLUSIVE`.
    pub fn listener_count(&self) -> usize {
        match self.share {
            SharePort::Reuseport => self.workers.get() * self.threads.get(),
            SharePort::Exclusive => 1,
        }
    }
}

// ANCHOR: serve_workers
/// The master: forks the workers after `listeners` are bound and before any thread exists, calls
/// `on_ready` once every worker can serve, replaces a worker that dies, and on SIGINT or SIGTERM
/// passes the stop on and returns when every worker has finished its responses in flight.
///
/// `listeners` are [`WorkerOptions::listener_count`] sockets: the master keeps them for the
/// whole run, so a replacement worker takes over its slot's listeners and their queued clients.
///
/// # Errors
///
/// Fails when the master's wait fails, or when a worker dies before it is ready.
pub fn serve_workers(
    listeners: Vec<TcpListener>,
    site: &Site,
    signals: ParentSignals,
    options: WorkerOptions,
    on_ready: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let pool = Pool {
        workers: options.workers,
        child_signals: ChildSignals::Own,
    };
    let listeners = RefCell::new(listeners);
    supervise(signals, pool, on_ready, |worker| {
        let own = own_listeners(&mut listeners.borrow_mut(), worker.slot, options);
        run_worker(own, site, options, worker)
    })
}
// ANCHOR_END: serve_workers

/// In a worker: takes this slot's listeners and closes the others (this process's copies only).
fn own_listeners(
    listeners: &mut Vec<TcpListener>,
    slot: usize,
    options: WorkerOptions,
) -> Vec<io::Result<TcpListener>> {
    let all = std::mem::take(listeners);
    match options.share {
        SharePort::Reuseport => {
            let per_worker = options.threads.get();
            all.into_iter()
                .skip(slot * per_worker)
                .take(per_worker)
                .map(Ok)
                .collect()
        }
        // Every loop of every worker watches the same socket; each loop gets its own descriptor.
        SharePort::Exclusive => all
            .first()
            .map(|shared| {
                (0..options.threads.get())
                    .map(|_| shared.try_clone())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

// ANCHOR: run_worker
/// A worker's whole life: its own shutdown signal (SIGQUIT from the master, or SIGINT and
/// SIGTERM sent to it), its own loops, then exit when they are done.
fn run_worker(
    listeners: Vec<io::Result<TcpListener>>,
    site: &Site,
    options: WorkerOptions,
    mut worker: Worker,
) -> Infallible {
    let shutdown = match ShutdownSignal::install_in_worker() {
        Ok(shutdown) => shutdown,
        Err(error) => fail_worker(&error),
    };
    step03_process::silence_hangups();
    if let Err(errno) = unblock_stop_signals() {
        fail_worker(&errno.into());
    }
    let watch = match options.share {
        SharePort::Reuseport => Watch::Read,
        SharePort::Exclusive => Watch::ReadExclusive,
    };
    let listeners: Vec<TcpListener> = match listeners.into_iter().collect() {
        Ok(listeners) => listeners,
        Err(error) => fail_worker(&error),
    };
    if let Some(first) = listeners.first() {
        // `fork` copied only as much of the table as was in use: grow this worker's own.
        startup::grow_descriptor_table(first);
    }
    let sites: Vec<Site> = listeners
        .iter()
        .map(|_| site.with_own_file_cache())
        .collect();
    let loops = listeners
        .into_iter()
        .zip(&sites)
        .map(|(listener, site)| Loop::watching(options.backend, (listener, watch), site, &shutdown))
        .collect::<io::Result<Vec<_>>>();
    let loops = match loops {
        Ok(loops) => loops,
        Err(error) => fail_worker(&error),
    };
    // Ready once every loop has its thread: a worker that cannot start them all fails instead.
    let ready = || {
        worker.ready();
        Ok(())
    };
    match run_loops(loops, ready) {
        Ok(()) => exit_child(),
        Err(error) => fail_worker(&error),
    }
}
// ANCHOR_END: run_worker

/// Ends a worker that cannot go on, with one line saying why.
fn fail_worker(error: &io::Error) -> ! {
    note(format_args!("worker {}: {error}", std::process::id()));
    exit_child_with(1)
}
