//! Defines [`ServerArgs`]: the flags every server in the project takes, and the exit-code rules.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The bundled site, `www/` at the top of the repository.
pub const DEFAULT_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../www");

/// Flags shared by every step. A step flattens them into its own `clap` parser:
///
/// ```
/// use clap::Parser;
///
/// /// A server.
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     server: step02_files::ServerArgs,
///     /// Worker threads.
///     #[arg(long, default_value_t = 4)]
///     pool: usize,
/// }
///
/// let args = Args::parse_from(["step", "--addr", "127.0.0.1:0", "--idle-timeout", "250ms"]);
/// assert_eq!(args.server.idle_timeout, std::time::Duration::from_millis(250));
/// ```
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on, as IP:PORT. Port 0 lets the system pick a free port; the
    /// `Listening on` line shows which.
    #[arg(long, default_value = "127.0.0.1:7080")]
    pub addr: SocketAddr,

    /// Folder to serve files from. Nothing outside it is ever read.
    #[arg(long, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,

    /// How long a client may take to send a request, and how long an idle keep-alive
    /// connection is kept (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Do not print the access log.
    #[arg(long)]
    pub quiet: bool,

    /// Resolve and open every requested file anew, instead of reusing what was found for the
    /// same path while nothing on the way to it has changed.
    #[arg(long)]
    pub no_file_cache: bool,

    /// How the open-file cache knows a file it holds is unchanged: `watch` (inotify would have
    /// said: one `read` per hit) or `stat` (one `stat` of the path per hit), to compare the two.
    #[arg(long, value_name = "HOW", default_value = "watch", value_parser = ["watch", "stat"])]
    pub file_cache_check: String,
}

/// Maps the result of a server's `run` to its exit code: 0, or 1 with a one-line reason on stderr.
///
/// Operator mistakes (a port in use, a missing root) are errors, not panics: no backtrace.
/// Log lines still queued for a stdout nobody was reading get a bounded chance to go out first.
pub fn exit_code<E: Display>(program: &str, result: Result<(), E>) -> ExitCode {
    crate::server::log::flush(crate::server::log::EXIT_FLUSH);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: error: {error}");
            ExitCode::FAILURE
        }
    }
}
