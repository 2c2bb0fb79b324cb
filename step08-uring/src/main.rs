//! Step 8: rings on io_uring. The loop queues the I/O itself and is told when it is done.
//!
//! Run it: `cargo run -p step08-uring`, then open <http://127.0.0.1:7080/>. `--threads 2` runs two
//! rings, each with its own listener on the same port (`SO_REUSEPORT`); `--submit-each`,
//! `--no-multishot`, `--no-buffer-ring` and `--sqpoll` are the rungs of the ladder the book
//! measures. Linux only; where io_uring is refused it says why and exits 1.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use step02_files::ServerArgs;

/// Step 8: serve every client from io_uring rings, one per thread.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// How many independent rings (threads) to run, each with its own listener.
    #[arg(long, default_value = "1")]
    threads: NonZeroUsize,

    /// Submit every operation on its own (one system call each), not a batch per wait.
    #[arg(long)]
    submit_each: bool,

    /// Re-arm accept and receive after every completion instead of multishot.
    #[arg(long)]
    no_multishot: bool,

    /// Give every connection its own receive buffer instead of a shared provided-buffer ring.
    #[arg(long)]
    no_buffer_ring: bool,

    /// Let a kernel thread poll the submission queue (IORING_SETUP_SQPOLL).
    #[arg(long)]
    sqpoll: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    step02_files::server::cli::exit_code(env!("CARGO_PKG_NAME"), run(&args))
}

#[cfg(not(target_os = "linux"))]
fn run(_args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    Err("io_uring is Linux's: step 8 runs on Linux only".into())
}

// ANCHOR: run
#[cfg(target_os = "linux")]
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    use step02_files::server::startup::{self, StartupError};
    use step02_files::{ListenOptions, ShutdownSignal, Site};
    use step08_uring::{Options, RingLoop, refusal, run_loops};

    let options = Options {
        submit_each: args.submit_each,
        multishot: !args.no_multishot,
        buffer_ring: !args.no_buffer_ring,
        sqpoll: args.sqpoll,
    };
    let shutdown = ShutdownSignal::install().map_err(StartupError::Signals)?;
    let listen = ListenOptions {
        reuse_port: args.threads.get() > 1,
    };
    let (first, site) = startup::start(&args.server, listen)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..args.threads.get() {
        let listener =
            startup::join(&listeners[0]).map_err(|source| StartupError::Listen { addr, source })?;
        listeners.push(listener);
    }
    // Each ring gets its own open-file cache, as each of step 7's loops does.
    let sites: Vec<Site> = listeners
        .iter()
        .map(|_| site.with_own_file_cache())
        .collect();
    let n_rings = listeners.len();
    let loops = listeners
        .into_iter()
        .zip(&sites)
        .enumerate()
        .map(|(ring_idx, (listener, site))| {
            RingLoop::new(options, listener, site, &shutdown).map_err(|error| {
                // Rings cost locked memory: the thousandth may be refused where the first was not.
                refusal(&error).unwrap_or_else(|| {
                    format!("cannot set up {n_rings} rings (ring {ring_idx}): {error}")
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    run_loops(loops, || startup::announce_addr(addr))?;
    Ok(())
}
// ANCHOR_END: run
