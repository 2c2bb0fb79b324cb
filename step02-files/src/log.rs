//! Defines [`AccessLog`]: one line on stdout per answered request.

use std::io::{self, Write};
use std::net::SocketAddr;

use crate::request::Request;
use crate::status::StatusCode;

/// Writes the access log: `PEER "METHOD TARGET VERSION" STATUS BYTES`, one line per response.
///
/// A request the parser refused has no request line to show and is logged as `"-"`.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog {
    quiet: bool,
}

impl AccessLog {
    /// A log that prints, unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        AccessLog { quiet }
    }

    /// Whether lines are dropped (`--quiet`).
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Records one response of `status` with `body_bytes` bytes of body.
    pub fn record(
        &self,
        peer: SocketAddr,
        request: Option<&Request>,
        status: StatusCode,
        body_bytes: u64,
    ) {
        if self.quiet {
            return;
        }
        let mut out = io::stdout().lock();
        // A closed stdout must not take the server down: the log is best effort.
        let _ = match request {
            Some(request) => writeln!(
                out,
                "{peer} \"{} {} {}\" {} {body_bytes}",
                request.method.as_str(),
                request.target,
                request.version.as_str(),
                status.as_u16(),
            ),
            None => writeln!(out, "{peer} \"-\" {} {body_bytes}", status.as_u16()),
        };
    }

    /// Reports a connection that ended in an I/O error (a reset, a timeout while writing), on
    /// stderr so it never mixes with the access log.
    pub fn connection_error(&self, peer: SocketAddr, error: &io::Error) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "{peer}: connection ended: {error}");
        }
    }
}
