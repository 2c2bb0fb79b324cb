//! Defines [`AccessLog`]: one line on stdout per answered request.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;

use crate::http::request::Request;
use crate::http::status::StatusCode;

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
        let line = match request {
            Some(request) => format!(
                "{peer} \"{} {} {}\" {} {body_bytes}\n",
                request.method.as_str(),
                Escaped(&request.target),
                request.version.as_str(),
                status.as_u16(),
            ),
            None => format!("{peer} \"-\" {} {body_bytes}\n", status.as_u16()),
        };
        // The line is built first and handed over in one `write_all`, which stdout's line buffer
        // passes to the kernel as one `write`. `writeln!` would pass each formatted piece on its
        // own, and a line longer than the buffer (a long target) would reach the kernel in
        // several `write`s, which the processes of step 3, sharing one stdout, could interleave.
        // (A pipe keeps a single `write` whole up to PIPE_BUF, 4 KiB on Linux.)
        // A closed stdout must not take the server down: the log is best effort.
        let _ = io::stdout().lock().write_all(line.as_bytes());
    }

    /// Reports a connection that ended in an I/O error (a reset, a timeout while writing), on
    /// stderr so it never mixes with the access log.
    pub fn connection_error(&self, peer: SocketAddr, error: &io::Error) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "{peer}: connection ended: {error}");
        }
    }
}

/// A target as the log shows it: a `"` or `\` the client put in it is written as `\x22` or
/// `\x5c` (as nginx does), so it cannot end the quoted field early and forge the rest of the line.
/// The parser has already refused control characters, so newlines cannot get this far.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in self.0.split_inclusive(['"', '\\']) {
            match piece.strip_suffix('"') {
                Some(rest) => write!(f, "{rest}\\x22")?,
                None => match piece.strip_suffix('\\') {
                    Some(rest) => write!(f, "{rest}\\x5c")?,
                    None => f.write_str(piece)?,
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn quotes_and_backslashes_cannot_forge_a_log_field() {
        assert_eq!(
            Escaped(r#"/a" 200 0 "x\y"#).to_string(),
            r"/a\x22 200 0 \x22x\x5cy"
        );
        assert_eq!(Escaped("/plain/path?q=1").to_string(), "/plain/path?q=1");
    }
}
