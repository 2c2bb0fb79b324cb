//! Step 6: one thread, non-blocking sockets, and a loop that asks every socket in turn.
//!
//! Run it: `cargo run -p step06-nonblocking`, then open <http://127.0.0.1:7080/>. Then look at it
//! with `top`: even with no client at all, it uses a whole core. `--stats` prints how many passes
//! over the sockets it makes each second; `--nap 1000` sleeps a millisecond whenever a pass found
//! nothing to do.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use step02_files::server::startup::{self, StartupError};
use step02_files::{ListenOptions, ServerArgs, ShutdownSignal};
use step06_nonblocking::{Options, serve};

/// Step 6: one thread serves every client by polling non-blocking sockets in a loop.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Sleep this many microseconds whenever a pass over the sockets found nothing to do
    /// (by default the loop spins, using a whole core).
    #[arg(long, value_name = "MICROS")]
    nap: Option<u64>,

    /// Print on stderr, once a second, how many passes the loop made and what one cost.
    #[arg(long)]
    stats: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    step02_files::server::cli::exit_code(env!("CARGO_PKG_NAME"), run(&args))
}

// ANCHOR: run
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = ShutdownSignal::install().map_err(StartupError::Signals)?;
    let (listener, site) = startup::start(&args.server, ListenOptions::default())?;
    startup::announce(&listener)?;
    let options = Options {
        nap: args.nap.map(Duration::from_micros),
        stats: args.stats,
    };
    serve(listener, &site, &shutdown, options)?;
    Ok(())
}
// ANCHOR_END: run
