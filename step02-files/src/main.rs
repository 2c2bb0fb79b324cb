//! Step 2: a static-file server that handles one connection at a time.
//!
//! What changed since step 1: the request is parsed for real (method, target, headers, limits),
//! and the answer is a file from the document root, with the right status for everything else:
//! 404 for a missing file, 301 for a folder without its slash, 400/405/414/431/505 for requests it
//! refuses. That logic lives in this crate's library, which every later step reuses.
//!
//! What to watch for: it is still sequential. While one client is connected, the next waits. Try
//! `nc 127.0.0.1 7080` in one terminal (and type nothing), then `curl http://127.0.0.1:7080/` in
//! another: curl hangs until nc's idle timeout (5 s) runs out.
//!
//! Run it: `cargo run -p step02-files`, then open <http://127.0.0.1:7080/>.

use std::process::ExitCode;

use clap::Parser;
use step02_files::server::startup::{self, StartupError};
use step02_files::{ListenOptions, ServerArgs, ShutdownSignal, serve};

/// Step 2: serve files from a folder, one connection at a time.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
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
    serve(&listener, &site, &shutdown)?;
    Ok(())
}
// ANCHOR_END: run
