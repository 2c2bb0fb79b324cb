//! Step 7: event loops on epoll. The kernel says which sockets are ready; an idle server sleeps.
//!
//! Run it: `cargo run -p step07-epoll`, then open <http://127.0.0.1:7080/>. `--backend epoll`
//! uses raw epoll instead of mio (Linux); `--threads 2` runs two independent loops, each with its
//! own listener on the same port (`SO_REUSEPORT`). `--workers 4` runs nginx's model: a master
//! and four worker processes, each with its own loops and descriptor table (Linux).
//! `top` shows it at 0% CPU while no one asks.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use step02_files::server::startup::{self, StartupError};
use step02_files::{ListenOptions, ServerArgs, ShutdownSignal, Site};
#[cfg(target_os = "linux")]
use step07_epoll::workers::{SharePort, WorkerOptions, serve_workers};
use step07_epoll::{Backend, Loop, run_loops};

/// Step 7: serve every client from event loops driven by epoll.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Where readiness events come from: mio (portable) or raw epoll (Linux).
    #[arg(long, value_enum, default_value_t = Backend::Mio)]
    backend: Backend,

    /// How many independent event loops (threads) to run, each with its own listener. With
    /// --workers, in each worker.
    #[arg(long, default_value = "1")]
    threads: NonZeroUsize,

    /// Run N worker processes under a master that serves nothing, restarts a worker that dies
    /// and passes SIGINT/SIGTERM on for a graceful stop (nginx's process model). Each worker
    /// has its own event loops (--threads) and its own descriptor limit.
    #[cfg(target_os = "linux")]
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,

    /// How --workers share the port: `reuseport`, a listener per loop in one SO_REUSEPORT group
    /// (the kernel picks one by a hash of the client's address); `exclusive`, one listener that
    /// every loop watches with EPOLLEXCLUSIVE (the kernel wakes one waiting loop). Default:
    /// reuseport.
    #[cfg(target_os = "linux")]
    #[arg(long, value_enum, value_name = "HOW")]
    share_port: Option<SharePort>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    step02_files::server::cli::exit_code(env!("CARGO_PKG_NAME"), run(&args))
}

// ANCHOR: run
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(target_os = "linux")]
    match (args.workers, args.share_port) {
        (Some(workers), share) => return run_workers(args, workers, share.unwrap_or_default()),
        (None, Some(_)) => return Err("--share-port applies only with --workers N".into()),
        (None, None) => {}
    }
    let shutdown = ShutdownSignal::install().map_err(StartupError::Signals)?;
    let options = ListenOptions {
        reuse_port: args.threads.get() > 1,
    };
    let (first, site) = startup::start(&args.server, options)?;
    // With port 0 the first listener picked the port; the others join it there. The first claimed
    // the port alone: a port another server holds was refused above, however many loops it runs.
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..args.threads.get() {
        let listener =
            startup::join(&listeners[0]).map_err(|source| StartupError::Listen { addr, source })?;
        listeners.push(listener);
    }
    // Each loop gets its own open-file cache, as each nginx worker has its own: the loops share
    // the document root's descriptor, the signal socket and stdout, but no lock.
    let sites: Vec<Site> = listeners
        .iter()
        .map(|_| site.with_own_file_cache())
        .collect();
    let loops = listeners
        .into_iter()
        .zip(&sites)
        .map(|(listener, site)| Loop::new(args.backend, listener, site, &shutdown))
        .collect::<Result<Vec<_>, _>>()?;
    // Announced only once every loop has its thread: a test that counts descriptors or threads
    // as soon as it reads this line sees the server's steady state.
    run_loops(loops, || startup::announce_addr(addr))?;
    Ok(())
}
// ANCHOR_END: run

// ANCHOR: run_workers
/// `--workers N`: bind every listener, then fork (the master has no thread yet), and announce
/// once every worker is ready.
#[cfg(target_os = "linux")]
fn run_workers(
    args: &Args,
    workers: NonZeroUsize,
    share: SharePort,
) -> Result<(), Box<dyn std::error::Error>> {
    let signals = step03_process::ParentSignals::install().map_err(StartupError::Signals)?;
    let options = WorkerOptions {
        workers,
        threads: args.threads,
        share,
        backend: args.backend,
    };
    let listen = ListenOptions {
        reuse_port: options.listener_count() > 1,
    };
    let (first, site) = startup::start(&args.server, listen)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..options.listener_count() {
        let listener =
            startup::join(&listeners[0]).map_err(|source| StartupError::Listen { addr, source })?;
        listeners.push(listener);
    }
    serve_workers(listeners, &site, signals, options, || {
        startup::announce_addr(addr)
    })?;
    Ok(())
}
// ANCHOR_END: run_workers
