//! Step 7: one thread per event loop, and the kernel says which sockets are ready (`epoll`).
//!
//! What changed since step 6: the loop no longer asks every socket in turn. Each socket is
//! registered once with `epoll`, and the thread sleeps in `epoll_wait` until the kernel hands it
//! the list of sockets whose state changed, or until the earliest connection deadline. The
//! per-connection state machine is step 6's [`Connection`](step06_nonblocking::Connection),
//! unchanged; only the source of readiness differs.
//!
//! - [`Backend::Mio`] (the default) gets readiness from `mio`, the portable layer under tokio.
//! - [`Backend::Epoll`] (Linux) gets it from raw `epoll` through `nix`, to show what `mio` does.
//! - [`run_loops`] runs N independent loops, each with its own listener on the same port
//!   (`SO_REUSEPORT`: the kernel spreads new connections among them). They share nothing. The
//!   first listener claims the port alone before the others join it, so a second server on a
//!   taken port is refused (see [`join`](step02_files::server::startup::join)).
//! - `workers` (Linux) runs nginx's model, `--workers N`: a master on step 3's supervisor and N
//!   worker processes, each with its own loops and its own descriptor table.
//!
//! Try it: `cargo run -p step07-epoll --release -- --quiet --threads 2`, then load it with
//! `cargo run -p bench --release -- load -c 64 -d 5s http://127.0.0.1:7080/index.html`; `top`
//! shows it idle at 0% between runs.

pub mod event_loop;
pub mod poller;
pub mod timers;

#[cfg(target_os = "linux")]
pub mod epoll;
#[cfg(target_os = "linux")]
pub mod workers;

use std::io;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use step02_files::{ShutdownSignal, Site};

pub use event_loop::EventLoop;
pub use poller::{MioPoller, Poller, Watch};

/// Where readiness events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// `mio::Poll` (epoll on Linux, kqueue on the BSDs and macOS).
    #[default]
    Mio,
    /// Raw `epoll` through `nix`, edge-triggered (Linux only).
    #[cfg(target_os = "linux")]
    Epoll,
}

// ANCHOR: serve
/// One event loop with the chosen backend, ready to run: its poller is created and its listener
/// registered, so a server can announce itself only once it can really serve.
pub enum Loop<'a> {
    /// A loop over `mio`.
    Mio(EventLoop<'a, MioPoller>),
    /// A loop over raw `epoll`.
    #[cfg(target_os = "linux")]
    Epoll(EventLoop<'a, epoll::EpollPoller>),
}

impl<'a> Loop<'a> {
    /// Creates the poller and registers `listener` and the shutdown signal with it.
    ///
    /// # Errors
    ///
    /// Fails when the poller cannot be created (out of descriptors) or the listener registered.
    pub fn new(
        backend: Backend,
        listener: TcpListener,
        site: &'a Site,
        shutdown: &'a ShutdownSignal,
    ) -> io::Result<Self> {
        Self::watching(backend, (listener, Watch::Read), site, shutdown)
    }

    /// [`Loop::new`], with the listener watched as given (see [`EventLoop::watching`]).
    ///
    /// # Errors
    ///
    /// As [`Loop::new`].
    pub fn watching(
        backend: Backend,
        listener: (TcpListener, Watch),
        site: &'a Site,
        shutdown: &'a ShutdownSignal,
    ) -> io::Result<Self> {
        Ok(match backend {
            Backend::Mio => Loop::Mio(EventLoop::watching(
                MioPoller::new()?,
                listener,
                site,
                shutdown,
            )?),
            #[cfg(target_os = "linux")]
            Backend::Epoll => Loop::Epoll(EventLoop::watching(
                epoll::EpollPoller::new()?,
                listener,
                site,
                shutdown,
            )?),
        })
    }

    /// Serves until SIGINT or SIGTERM and the responses in flight are done.
    ///
    /// # Errors
    ///
    /// Fails only if waiting for events fails; errors of single connections are logged.
    pub fn run(self) -> io::Result<()> {
        match self {
            Loop::Mio(event_loop) => event_loop.run(),
            #[cfg(target_os = "linux")]
            Loop::Epoll(event_loop) => event_loop.run(),
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: run_loops
/// Runs every loop until SIGINT or SIGTERM, one per thread (the last on this thread), and returns
/// when all have finished. They share nothing: each has its own listener, poller and connections.
///
/// Every thread is started before `ready` (which announces the server) and before any loop
/// runs: a system that refuses a thread (`ulimit -u`, memory) makes the server refuse to start,
/// with one line, rather than serve with fewer loops than asked for.
///
/// # Errors
///
/// Fails when a thread cannot be started or `ready` fails, before any loop has run; otherwise
/// returns the first loop's error, after every loop has ended.
pub fn run_loops(loops: Vec<Loop<'_>>, ready: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    run_on_threads(loops, ("event loops", "loop"), Loop::run, ready)
}
// ANCHOR_END: run_loops

/// [`run_loops`] for any kind of loop (step 8's rings use it too): `names` gives the loops'
/// plural for the error ("event loops") and their threads' name ("loop", as in `loop-0`).
///
/// # Errors
///
/// As [`run_loops`].
pub fn run_on_threads<L: Send>(
    mut loops: Vec<L>,
    (plural, thread_name): (&str, &str),
    run: fn(L) -> io::Result<()>,
    ready: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let Some(last) = loops.pop() else {
        return ready();
    };
    let n_loops = loops.len() + 1;
    thread::scope(|scope| {
        let mut started = Vec::with_capacity(loops.len());
        for (loop_idx, event_loop) in loops.into_iter().enumerate() {
            let (go, gate) = mpsc::channel::<()>();
            let spawned = thread::Builder::new()
                .name(format!("{thread_name}-{loop_idx}"))
                // Without a go (its sender dropped) the thread ends without running its loop.
                .spawn_scoped(scope, move || {
                    gate.recv().map_or(Ok(()), |()| run(event_loop))
                });
            match spawned {
                Ok(handle) => started.push((go, handle)),
                // Returning drops every go: the threads started so far end unrun.
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("cannot start {n_loops} {plural}, a thread each: {error}"),
                    ));
                }
            }
        }
        ready()?;
        for (go, _) in &started {
            // A thread cannot have ended before its go: the send cannot fail.
            let _ = go.send(());
        }
        let mut result = run(last);
        for (_, handle) in started {
            let joined = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other(format!("one of the {plural} panicked"))));
            result = result.and(joined);
        }
        result
    })
}
