//! Step 1: the smallest honest web server.
//!
//! The model: one thread, one client at a time. `accept` waits for a client, the server reads its
//! request head up to the blank line, answers a fixed `<h1>hello world</h1>` page and closes.
//! While it does that, the next client waits in the kernel's accept queue.
//!
//! What to watch for: the server reads the *whole* head before answering and shuts down its write
//! side before closing. Skip either and some clients get "connection reset" instead of the page
//! (`examples/first-hello.rs` skips both).
//!
//! Run it: `cargo run -p step01-hello`, then `curl -v http://127.0.0.1:7080/` or open it in a browser.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use step01_hello::{Options, serve, stop_on_signals};

/// Step 1: answer every request with one fixed page, one client at a time.
///
/// --root is accepted like every step's, and checked, but this step serves no files.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on, as IP:PORT. Port 0 lets the system pick a free port; the
    /// `Listening on` line shows which.
    #[arg(long, default_value = "127.0.0.1:7080")]
    addr: SocketAddr,

    /// Folder to serve files from (must exist; this step serves only its fixed page).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))]
    root: PathBuf,

    /// How long a client may take to send its request head (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,

    /// Do not print the access log.
    #[arg(long)]
    quiet: bool,

    /// Print every request head in full, not just its first line.
    #[arg(long)]
    show_headers: bool,
}

/// The longest `--idle-timeout` accepted, as in steps 2–7: a zero timeout would reset every
/// client, and a deadline far in the future could overflow the clock.
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, no backtrace: a port in use or a missing folder is not a bug.
            eprintln!("{}: error: {error}", env!("CARGO_PKG_NAME"));
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: run
fn run(args: &Args) -> Result<(), String> {
    if args.idle_timeout.is_zero() || args.idle_timeout > MAX_IDLE_TIMEOUT {
        return Err(format!(
            "--idle-timeout {} is out of range: it must be more than 0s and at most {}",
            humantime::format_duration(args.idle_timeout),
            humantime::format_duration(MAX_IDLE_TIMEOUT),
        ));
    }
    if !args.root.is_dir() {
        return Err(format!(
            "cannot serve {}: not a folder",
            args.root.display()
        ));
    }
    let listener = TcpListener::bind(args.addr)
        .map_err(|error| format!("cannot listen on {}: {error}", args.addr))?;
    let stop = stop_on_signals(&listener)
        .map_err(|error| format!("cannot install signal handlers: {error}"))?;
    // The real port (the system picks one for port 0); `println!` flushes at the newline.
    let local = listener.local_addr().map_err(|error| error.to_string())?;
    println!("Listening on http://{local}/");
    let options = Options {
        idle_timeout: args.idle_timeout,
        quiet: args.quiet,
        show_headers: args.show_headers,
    };
    serve(&listener, &options, &stop);
    Ok(())
}
// ANCHOR_END: run
