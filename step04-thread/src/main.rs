//! Step 4: a thread per connection, or a fixed pool of threads.
//!
//! The model: the main thread accepts; each connection's blocking read–answer loop runs on its own
//! OS thread (`conn-1`, `conn-2`, …), or with `--pool N` on one of N threads that take
//! connections from a queue. Threads share one address space, so a connection costs a stack
//! (mostly untouched virtual memory) instead of a whole process.
//!
//! What changed since step 3: threads instead of processes, and a graceful shutdown. On Ctrl-C or
//! SIGTERM the server stops accepting, closes idle keep-alive connections at once, lets responses
//! in progress finish (up to `--shutdown-timeout`), and exits 0; a second Ctrl-C or SIGTERM stops
//! waiting and exits 0 at once.
//!
//! What to watch for: `ps -L -p PID` or `top -H -p PID` shows one thread per open connection,
//! gone when the client leaves. With `--pool 2`, open two idle connections (`nc 127.0.0.1 7080`
//! twice, type nothing) and a third client waits until one of them times out.
//!
//! Run it: `cargo run -p step04-thread` (or `-- --pool 4`), then open <http://127.0.0.1:7080/>.

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use step02_files::server::startup::{self, StartupError};
use step02_files::{ListenOptions, ServerArgs, ShutdownSignal};
use step04_thread::{Model, Options, Threads, serve};

/// Step 4: serve files with a thread per connection, or a fixed pool of threads.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Serve with a fixed pool of N threads instead of a new thread per connection. An idle
    /// keep-alive connection holds its thread, so with N of them open the next client waits in
    /// the queue for a thread. Its --idle-timeout starts only when a thread takes it: behind
    /// other idle clients it can wait several idle timeouts.
    #[arg(long, value_name = "N")]
    pool: Option<NonZeroUsize>,

    /// On Ctrl-C or SIGTERM, how long responses in progress may take to finish before the server
    /// exits anyway. Idle connections are closed at once; a second Ctrl-C or SIGTERM exits at once.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    step02_files::server::cli::exit_code(env!("CARGO_PKG_NAME"), run(&args))
}

// ANCHOR: run
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = ShutdownSignal::install().map_err(StartupError::Signals)?;
    let (listener, site) = startup::start(&args.server, ListenOptions::default())?;
    let model = match args.pool {
        Some(n_threads) => Model::Pool(n_threads),
        None => Model::ThreadPerConnection,
    };
    let options = Options {
        threads: Threads::start(model)?,
        shutdown_timeout: args.shutdown_timeout,
    };
    startup::announce(&listener)?;
    serve(&listener, &site, &shutdown, options)?;
    Ok(())
}
// ANCHOR_END: run
