//! Step 5: a stackful coroutine per connection, on a few worker threads (`may`).
//!
//! The model: each connection gets a coroutine with its own small, fixed stack, running step 2's
//! blocking loop. When a socket call would block, `may` switches the worker thread to another
//! coroutine and waits for the socket with `epoll`; `--workers N` threads (default: one per core)
//! run any number of coroutines.
//!
//! What changed since step 4: a connection costs a coroutine (a stack of `--stack-size` bytes,
//! of which only the touched pages are memory) instead of an OS thread, and the thread count
//! stays at `--workers` plus `may`'s timer thread however many clients connect. The connection
//! code is the same; its socket is `may`'s.
//!
//! What to watch for: `ps -L -p PID` shows the same few threads with 1 or 1,000 clients
//! connected. A coroutine's stack cannot grow: with too small a `--stack-size`, `may` prints
//! "coroutine … has overflowed its stack" and abandons the connection with its socket still open.
//! `--report-stack-usage` prints each coroutine's stack use when it ends. And a call
//! that blocks a thread (a slow disk, say) stalls every coroutine on that worker.
//! On Ctrl-C or SIGTERM the server stops and exits 0; connections in progress end with it.
//!
//! Run it: `cargo run -p step05-coroutine` (or `-- --workers 1`), then open
//! <http://127.0.0.1:7080/>.

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::thread;

use clap::Parser;
use step02_files::server::startup::{self, StartupError};
use step02_files::{ListenOptions, ServerArgs, ShutdownSignal};
use step05_coroutine::{
    DEFAULT_STACK_SIZE, Options, check_stack_size, configure, into_may_listener, parse_size, serve,
};

/// Step 5: serve files with a coroutine per connection, on a few threads.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Worker threads that run the coroutines [default: one per CPU core].
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,

    /// Stack of each connection's coroutine, in bytes (suffixes K and M allowed). It cannot
    /// grow: a coroutine that overflows it is abandoned, its connection left open.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_STACK_SIZE, value_parser = parse_size)]
    stack_size: usize,

    /// Print each coroutine's stack use (in words of 8 bytes) when it ends, to find the
    /// stack size a site needs. Slow: every stack page becomes resident.
    #[arg(long)]
    report_stack_usage: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    step02_files::server::cli::exit_code(env!("CARGO_PKG_NAME"), run(&args))
}

// ANCHOR: run
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let stack_size = check_stack_size(args.stack_size)?;
    let shutdown = ShutdownSignal::install().map_err(StartupError::Signals)?;
    let (listener, site) = startup::start(&args.server, ListenOptions::default())?;
    let workers = args
        .workers
        .or_else(|| thread::available_parallelism().ok())
        .unwrap_or(NonZeroUsize::MIN);
    configure(&Options {
        workers,
        stack_size,
        report_stack_usage: args.report_stack_usage,
    });
    let listener = into_may_listener(listener)?;
    startup::announce(listener.inner())?;
    serve(listener, &site, &shutdown)?;
    Ok(())
}
// ANCHOR_END: run
