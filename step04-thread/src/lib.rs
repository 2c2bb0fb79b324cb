//! Step 4's server: each connection runs on an OS thread, either a new thread per connection or
//! one of a fixed pool, and a shutdown that lets requests in progress finish.
//!
//! The connection itself is step 2's blocking loop ([`serve_tcp`]) with keep-alive: a thread
//! blocks in `read` and `write` exactly as step 2's only thread did. What this crate adds is who
//! runs that loop ([`Model`]) and how the server stops ([`serve`], [`Connections`]).

#![deny(missing_docs)]

pub mod connections;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::thread;
use std::time::Duration;

use step02_files::server::log::note;
use step02_files::server::startup::{self, ACCEPT_BACKOFF, is_resource_shortage};
use step02_files::{Accepted, Persistence, ShutdownSignal, Site, serve_tcp};
use threadpool::ThreadPool;

pub use connections::{Connections, Registration};

/// Who runs each connection's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// A new OS thread per connection, ended when the connection ends.
    ThreadPerConnection,
    /// A fixed pool of this many threads; connections wait in a queue for a free one.
    Pool(NonZeroUsize),
}

/// How step 4 serves.
#[derive(Debug)]
pub struct Options {
    /// The threads connections run on.
    pub threads: Threads,
    /// After a shutdown signal, how long requests in progress may take before the server exits
    /// anyway.
    pub shutdown_timeout: Duration,
}

// ANCHOR: serve
/// Serves until SIGINT or SIGTERM, then stops gracefully: no new connection is accepted, idle
/// keep-alive connections are closed at once, and responses being sent get up to
/// `options.shutdown_timeout` to finish.
///
/// # Errors
///
/// Fails only if waiting for connections itself fails; errors of single connections are logged.
pub fn serve(
    listener: &TcpListener,
    site: &Site,
    shutdown: &ShutdownSignal,
    options: Options,
) -> io::Result<()> {
    let connections = Connections::default();
    let Threads(mut runner) = options.threads;
    let accepted = accept_loop(listener, site, shutdown, &connections, &mut runner);
    drain(&connections, options.shutdown_timeout);
    accepted
}
// ANCHOR_END: serve

// ANCHOR: accept_loop
/// Accepts until the shutdown signal, handing each connection to a thread; fails only if
/// waiting for connections fails.
fn accept_loop(
    listener: &TcpListener,
    site: &Site,
    shutdown: &ShutdownSignal,
    connections: &Connections,
    runner: &mut Runner,
) -> io::Result<()> {
    loop {
        let (stream, peer) = match shutdown.accept(listener)? {
            Accepted::Connection(stream, peer) => (stream, peer),
            Accepted::Shutdown => return Ok(()),
            Accepted::Failed(error) => {
                startup::accept_failed(&error);
                continue;
            }
        };
        let registration = match connections.register(&stream) {
            Ok(registration) => registration,
            Err(error) => {
                dropped(peer, "cannot keep a handle on the connection", &error);
                continue;
            }
        };
        let site = site.clone();
        runner.run(peer, move || {
            // Dropped when the connection ends, or with the job if it never runs.
            let _registration = registration;
            serve_tcp(stream, peer, &site, Persistence::KeepAlive);
        });
    }
}
// ANCHOR_END: accept_loop

// ANCHOR: drain
/// Closes idle connections now and gives the busy ones `timeout` to finish their response.
fn drain(connections: &Connections, timeout: Duration) {
    if connections.is_empty() {
        return;
    }
    connections.stop_reading();
    let still_open = connections.wait_until_all_closed(timeout);
    if still_open > 0 {
        note(format_args!(
            "shutdown: {still_open} connection(s) still busy after {}; closing them",
            humantime::format_duration(timeout)
        ));
        connections.close_all();
    }
}
// ANCHOR_END: drain

/// The threads connections run on, as the [`Model`] says: for a pool, all of them started, so that
/// a system that refuses threads (`ulimit -u`, memory) is found before the server announces
/// itself.
#[derive(Debug)]
pub struct Threads(Runner);

impl Threads {
    /// Starts the pool's threads, if the model has a pool.
    ///
    /// # Errors
    ///
    /// Fails when the system refuses one of the pool's threads.
    pub fn start(model: Model) -> io::Result<Threads> {
        Runner::new(model).map(Threads)
    }
}

/// Starts connection jobs according to the [`Model`].
#[derive(Debug)]
enum Runner {
    /// Counts connections to name threads `conn-1`, `conn-2`, … (visible in `ps -L` and `top -H`).
    PerConnection {
        n_started: u64,
    },
    Pool(ThreadPool),
}

impl Runner {
    fn new(model: Model) -> io::Result<Self> {
        match model {
            Model::ThreadPerConnection => Ok(Runner::PerConnection { n_started: 0 }),
            Model::Pool(n_threads) => start_pool(n_threads).map(Runner::Pool),
        }
    }

    // ANCHOR: run
    /// Runs `job` on a thread: a new one, or the pool's next free one.
    fn run(&mut self, peer: SocketAddr, job: impl FnOnce() + Send + 'static) {
        match self {
            Runner::PerConnection { n_started } => {
                *n_started += 1;
                let spawned = thread::Builder::new()
                    .name(format!("conn-{n_started}"))
                    .spawn(job);
                // On failure the job is dropped unrun, which closes its connection.
                if let Err(error) = spawned {
                    dropped(peer, "cannot start a thread", &error);
                }
            }
            // The pool queues the job until one of its threads is free.
            Runner::Pool(pool) => pool.execute(job),
        }
    }
    // ANCHOR_END: run
}

/// A pool of `n_threads` threads, every one started.
///
/// `threadpool` starts them all at once and panics if the system refuses one; the threads
/// already started then see their queue gone and end.
fn start_pool(n_threads: NonZeroUsize) -> io::Result<ThreadPool> {
    startup::start_threads(format_args!("a pool of {n_threads} threads"), || {
        threadpool::Builder::new()
            .num_threads(n_threads.get())
            .thread_name("pool".to_owned())
            .build()
    })
}

/// Logs a connection closed because a resource ran out, and pauses if the system is out of
/// threads (`EAGAIN`), descriptors or memory: the next connection would fail the same way.
fn dropped(peer: SocketAddr, what_failed: &str, error: &io::Error) {
    note(format_args!(
        "{peer}: {what_failed} ({error}); connection dropped"
    ));
    let out_of_threads = error.kind() == io::ErrorKind::WouldBlock;
    if out_of_threads || is_resource_shortage(error) {
        thread::sleep(ACCEPT_BACKOFF);
    }
}
