//! Step 1: the smallest honest web server.
//!
//! The model: one thread, one client at a time. `accept` waits for a client, the server reads its
//! request head up to the blank line, answers a fixed `<h1>hello world</h1>` page and closes.
//! While it does that, the next client waits in the kernel's accept queue.
//!
//! What to watch for: the server reads the *whole* head before answering and shuts down its write
//! side before closing. Skip either and some clients get "connection reset" instead of the page.
//!
//! Run it: `cargo run -p step01-hello`, then `curl -v http://127.0.0.1:7080/` or open it in a browser.

use std::process::ExitCode;

use clap::Parser;
use step01_hello::{Options, serve};
use step02_files::server::startup::{self, StartupError};
use step02_files::{ListenOptions, ServerArgs, ShutdownSignal};

/// Step 1: answer every request with one fixed page, one client at a time.
///
/// --root is accepted like every step's, and checked, but this step serves no files.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Print every request head in full, not just its first line.
    #[arg(long)]
    show_headers: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    step02_files::server::cli::exit_code(env!("CARGO_PKG_NAME"), run(&args))
}

// ANCHOR: run
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = ShutdownSignal::install().map_err(StartupError::Signals)?;
    let (listener, _site) = startup::start(&args.server, ListenOptions::default())?;
    startup::announce(&listener)?;
    let options = Options {
        idle_timeout: args.server.idle_timeout,
        quiet: args.server.quiet,
        show_headers: args.show_headers,
    };
    serve(&listener, &options, &shutdown)?;
    Ok(())
}
// ANCHOR_END: run
