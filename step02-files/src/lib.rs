//! The HTTP core every step reuses, and the blocking shell of step 2.
//!
//! The core is sans-I/O: [`parse_request`] and [`RequestDecoder`] turn bytes into a [`Request`],
//! [`respond`] turns a request into a [`Response`] (opening a file under the [`DocRoot`] is its only
//! contact with the outside), and nothing in it touches a socket. That is what lets the blocking
//! steps (2–5) and the event loops (6–7) share one parser and one set of answers.
//!
//! | module | role |
//! |---|---|
//! | [`request`], [`decoder`] | bytes → requests, with every limit enforced ([`Limits`]) |
//! | [`error`], [`status`] | why a request was refused, and the status that says so |
//! | [`docroot`] | URL path → file, never outside the root |
//! | [`respond`], [`response`] | request → response head and body |
//! | [`blocking`] | the read–answer loop of steps 2–5, generic over [`Transport`] |
//! | [`cli`], [`startup`], [`shutdown`], [`log`] | what every server binary shares: flags, binding, signals, the access log |
//!
//! The step-2 server itself is [`serve`]: one connection at a time, closed after each response.

pub mod blocking;
pub mod cli;
pub mod decoder;
pub mod docroot;
pub mod error;
pub mod limits;
pub mod log;
pub mod request;
pub mod respond;
pub mod response;
pub mod shutdown;
pub mod startup;
pub mod status;

use std::io;
use std::net::TcpListener;

pub use blocking::{Transport, handle_connection, serve_tcp};
pub use cli::ServerArgs;
pub use decoder::RequestDecoder;
pub use docroot::{DocRoot, Resolved};
pub use error::HttpError;
pub use limits::Limits;
pub use log::AccessLog;
pub use request::{Method, Parsed, Request, Version, parse_request};
pub use respond::{error_response, respond, status_page};
pub use response::{Body, Persistence, Response};
pub use shutdown::ShutdownSignal;
pub use startup::{ListenOptions, Site, StartupError, start};
pub use status::StatusCode;

// ANCHOR: serve
/// Serves connections one after another until SIGINT or SIGTERM: accept, answer one request,
/// close, accept the next. While one client is being served, the next waits in the kernel's
/// accept queue.
///
/// # Errors
///
/// Fails only if waiting for connections itself fails; errors of single connections are logged.
pub fn serve(listener: &TcpListener, site: &Site, shutdown: &ShutdownSignal) -> io::Result<()> {
    loop {
        match shutdown.accept(listener) {
            Ok(Some((stream, peer))) => serve_tcp(stream, peer, site, Persistence::CloseAfterEach),
            Ok(None) => return Ok(()),
            Err(error) => startup::accept_failed(&error),
        }
    }
}
// ANCHOR_END: serve
