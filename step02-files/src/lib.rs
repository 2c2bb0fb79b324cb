//! The HTTP core every step reuses, and the blocking shell of step 2.
//!
//! The core is sans-I/O: [`parse_request`] and [`RequestDecoder`] turn bytes into a [`Request`],
//! [`respond`] turns a request into a [`Response`] (opening a file under the [`DocRoot`] is its only
//! contact with the outside; the time is an argument, a [`Now`]), and nothing in it touches a
//! socket. That is what lets the blocking steps (2–5) and the event loops (6–7) share one parser
//! and one set of answers.
//!
//! The crate has two layers, one directory each:
//!
//! | module | role |
//! |---|---|
//! | [`http`] | the sans-I/O core: request parsing and framing, the document root, responses |
//! | [`server`] | the shell around it that every binary shares: flags, binding, signals, the access log, the blocking loop of steps 2–5 |
//!
//! The step-2 server itself is [`serve`]: one connection at a time, closed after each response.

pub mod http;
pub mod server;

use std::io;
use std::net::TcpListener;

pub use http::date::Now;
pub use http::decoder::RequestDecoder;
pub use http::docroot::{DocRoot, Identity, Resolved, SETTLE};
pub use http::error::HttpError;
pub use http::file_cache::{FileCache, FileCacheConfig, HitCheck};
pub use http::limits::Limits;
pub use http::request::{Method, Parsed, Request, Version, parse_request};
pub use http::respond::{error_response, respond, status_page};
pub use http::response::{Body, Persistence, Response};
pub use http::status::StatusCode;
pub use server::blocking::{handle_connection, serve_tcp};
pub use server::cli::ServerArgs;
pub use server::clock::wall_clock;
pub use server::log::AccessLog;
pub use server::shutdown::{Accepted, ShutdownSignal};
pub use server::startup::{ListenOptions, Site, StartupError, start};
pub use server::stream::Stream;

// ANCHOR: serve
/// Serves connections one after another until SIGINT or SIGTERM: accept, answer one request,
/// close, accept the next. While one client is being served, the next waits in the kernel's
/// accept queue.
///
/// # Errors
///
/// Fails only if waiting for connections itself fails; a failed `accept` and errors of single
/// connections are logged.
pub fn serve(listener: &TcpListener, site: &Site, shutdown: &ShutdownSignal) -> io::Result<()> {
    loop {
        match shutdown.accept(listener)? {
            Accepted::Connection(stream, peer) => {
                serve_tcp(stream, peer, site, Persistence::CloseAfterEach);
            }
            Accepted::Shutdown => return Ok(()),
            Accepted::Failed(error) => server::startup::accept_failed(&error),
        }
    }
}
// ANCHOR_END: serve
