//! Step 3: a process per connection, or a pool of pre-forked processes.
//!
//! The model: the parent process accepts a connection and `fork`s a child to serve it, so a slow
//! or idle client blocks only its own process. With `--prefork N`, N worker processes are forked
//! at start and each blocks in `accept()` on the shared listening socket, serving one connection
//! at a time, while the parent only supervises (Apache's prefork).
//!
//! What changed since step 2: many clients at once, and connections are kept alive between
//! requests (until `--idle-timeout`). The parent closes its copy of each client socket, the child
//! its copy of the listener; the parent reaps every child so no zombie remains, and stops
//! accepting at `--max-children` live children.
//!
//! What to watch for: `ps -o pid,ppid,stat,rss,cmd --ppid PID` shows one child per open
//! connection, gone (and not `<defunct>`) when the client leaves. Ctrl-C reaches the whole
//! foreground process group: every child dies at once with the default action and the parent
//! reaps them and exits 0; SIGTERM to the parent alone is passed on to the children. Stopping is
//! abrupt in this step; step 4 lets responses in progress finish.
//!
//! Run it: `cargo run -p step03-process` (or `-- --prefork 4`), then open
//! <http://127.0.0.1:7080/>.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use step02_files::server::startup::{self, StartupError};
use step02_files::{ListenOptions, ServerArgs};
use step03_process::{Model, ParentSignals, serve};

/// Step 3: serve files with a process per connection, or a pool of pre-forked processes.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Fork N worker processes at start, each accepting and serving one connection at a time,
    /// instead of a process per connection. An idle keep-alive connection holds its worker, so
    /// with N of them open the next client waits in the kernel's backlog. Its --idle-timeout
    /// starts only when a worker accepts it: behind other idle clients it can wait several.
    #[arg(long, value_name = "N")]
    prefork: Option<NonZeroUsize>,

    /// With a process per connection, the most children alive at once. At the cap the server
    /// stops accepting until a child exits; new clients wait in the kernel's backlog.
    #[arg(
        long,
        value_name = "N",
        default_value = "256",
        conflicts_with = "prefork"
    )]
    max_children: NonZeroUsize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    step02_files::server::cli::exit_code(env!("CARGO_PKG_NAME"), run(&args))
}

// ANCHOR: run
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let signals = ParentSignals::install().map_err(StartupError::Signals)?;
    let (listener, site) = startup::start(&args.server, ListenOptions::default())?;
    let model = match args.prefork {
        Some(workers) => Model::Prefork { workers },
        None => Model::ForkPerConnection {
            max_children: args.max_children,
        },
    };
    startup::announce(&listener)?;
    serve(listener, &site, signals, model)?;
    Ok(())
}
// ANCHOR_END: run
