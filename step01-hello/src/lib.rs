//! Step 1 as a library: the smallest honest HTTP server.
//!
//! One listening socket, one client at a time: accept, read the request head, answer a fixed page,
//! close. No parsing beyond finding the blank line that ends the head, which is the one thing even
//! the smallest server must get right (see [`read_head`]), and no project crate: `std`'s sockets,
//! and `signal-hook` to hear Ctrl-C.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

// ANCHOR: page
/// The whole answer: a status line, headers, a blank line, the body.
///
/// `Content-Length` tells the client where the body ends; `Connection: close` tells it not to
/// send another request on this connection.
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 20\r\n\
Connection: close\r\n\
\r\n\
<h1>hello world</h1>";
// ANCHOR_END: page

// ANCHOR: limits
/// A head larger than this is refused; a client cannot make the server buffer without end.
pub const MAX_HEAD: usize = 16 * 1024;

/// The answer to a head larger than [`MAX_HEAD`].
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 24\r\n\
Connection: close\r\n\
\r\n\
request head too large.\n";
// ANCHOR_END: limits

/// How the server behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long a client may take to send its request head.
    pub idle_timeout: Duration,
    /// Print nothing per request.
    pub quiet: bool,
    /// Print every request head in full, not just its first line.
    pub show_headers: bool,
}

// ANCHOR: serve
/// Answers clients one at a time until `stop` is set (see [`stop_on_signals`]).
///
/// A client's errors end that client alone; a failed `accept` is reported and retried.
pub fn serve(listener: &TcpListener, options: &Options, stop: &AtomicBool) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                if let Err(error) = handle_client(stream, peer, options) {
                    if !options.quiet {
                        eprintln!("{peer}: {error}");
                    }
                }
            }
            Err(error) => {
                eprintln!("accept failed: {error}");
                // Out of descriptors (EMFILE), retrying at once would fail at once, forever:
                // pause so the loop does not burn a core while clients leave.
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: stop_on_signals
/// Sets the returned flag on SIGINT (Ctrl-C) or SIGTERM, then connects to `listener` once.
///
/// `accept` does not return because a signal arrived (the handler restarts it), so the wake-up
/// is a connection: `serve` accepts it, sees the flag and returns. A client being served is
/// answered first; a second SIGINT or SIGTERM does not wait for it and exits at once, with
/// status 0. SIGHUP (a closed terminal) is ignored, with a line on stderr: there is nothing to
/// reload, and by default it would kill the server with status 129.
///
/// # Errors
///
/// Fails when the signal handlers cannot be installed.
pub fn stop_on_signals(listener: &TcpListener) -> io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let wake_at = listener.local_addr()?;
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let flag = Arc::clone(&stop);
    thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGHUP {
                eprintln!(
                    "SIGHUP ignored: nothing to reload (stop the server with Ctrl-C or SIGTERM)"
                );
                continue;
            }
            // The second stop request: the user does not want to wait for the client.
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(0);
            }
            if TcpStream::connect(wake_at).is_err() {
                // No way to wake `accept` (the backlog is full): leave without it.
                std::process::exit(0);
            }
        }
    });
    Ok(stop)
}
// ANCHOR_END: stop_on_signals

// ANCHOR: handle_client
/// Reads one request head, answers the fixed page, closes.
fn handle_client(mut stream: TcpStream, peer: SocketAddr, options: &Options) -> io::Result<()> {
    let answer = match read_head(&mut stream, options.idle_timeout)? {
        Head::Complete(head) => {
            log_request(peer, &head, options);
            RESPONSE
        }
        Head::TooLarge => TOO_LARGE,
        // The client went away or went quiet before finishing: there is no one to answer.
        Head::Incomplete => return Ok(()),
    };
    stream.write_all(answer)?;
    // Shut the write side first, then wait for the client to close: see `close_gracefully`.
    close_gracefully(&mut stream)
}
// ANCHOR_END: handle_client

// ANCHOR: close_gracefully
/// Closes after an answer without destroying it.
///
/// Closing a socket that still has unread bytes (a request body, a pipelined request) makes
/// the kernel send a reset, and a reset can discard the answer before the client has read it.
/// So: shut down the write side (the client sees the end of the answer), read and discard what
/// the client still sends until it closes, for at most two seconds or 64 KiB, then close.
///
/// # Errors
///
/// Fails only if the socket rejects the shutdown; errors while draining end the drain quietly.
pub fn close_gracefully(stream: &mut TcpStream) -> io::Result<()> {
    match stream.shutdown(Shutdown::Write) {
        Ok(()) => {}
        // The client is already gone: nothing left to protect.
        Err(error) if error.kind() == io::ErrorKind::NotConnected => return Ok(()),
        Err(error) => return Err(error),
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 512];
    let mut drained = 0;
    while drained < 64 * 1024 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(remaining))?;
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n_read) => drained += n_read,
        }
    }
    Ok(())
}
// ANCHOR_END: close_gracefully

// ANCHOR: head
/// What arrived before the blank line, the size cap, or the deadline.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// Everything up to and including the blank line.
    Complete(Vec<u8>),
    /// No blank line within [`MAX_HEAD`] bytes.
    TooLarge,
    /// The client closed, or sent nothing more before the deadline.
    Incomplete,
}
// ANCHOR_END: head

// ANCHOR: read_head
/// Reads until the blank line that ends a request head.
///
/// One `read` is not enough: TCP is a byte stream, and a head can arrive in many pieces. And the
/// whole head must be read before answering: closing a socket that still has unread bytes makes
/// the kernel send a reset (RST), and the client may lose the answer it has not read yet.
///
/// # Errors
///
/// Returns read errors other than the timeout.
pub fn read_head<R: Read + ?Sized + SetTimeout>(
    stream: &mut R,
    timeout: Duration,
) -> io::Result<Head> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = blank_line_end(&head) {
            head.truncate(end);
            return Ok(Head::Complete(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Head::Incomplete);
        }
        stream.set_timeout(remaining)?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(Head::Incomplete),
            Ok(n_read) => head.extend_from_slice(&chunk[..n_read]),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Head::Incomplete);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: read_head

// ANCHOR: blank_line_end
/// The end of the first blank line (`\r\n\r\n`, or `\n\n` from a client that sends bare LFs).
fn blank_line_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4);
    let lf = bytes
        .windows(2)
        .position(|window| window == b"\n\n")
        .map(|at| at + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
// ANCHOR_END: blank_line_end

// ANCHOR: set_timeout
/// A stream whose reads can be bounded in time; implemented for `TcpStream`.
pub trait SetTimeout {
    /// Bounds how long the next read may block.
    ///
    /// # Errors
    ///
    /// Fails when the socket rejects the option.
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()>;
}

impl SetTimeout for TcpStream {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))
    }
}
// ANCHOR_END: set_timeout

// ANCHOR: log_request
/// Prints the request: its first line, or with `--show-headers` the whole head.
///
/// Production note: this is a blocking write to stdout, so a stdout nobody reads (a pipe into a
/// paused `less`) stops this server once the pipe's 64 KiB are full. From step 2 on, the core's
/// access log never waits: lines it cannot write are dropped and counted.
fn log_request(peer: SocketAddr, head: &[u8], options: &Options) {
    if options.quiet {
        return;
    }
    let text = String::from_utf8_lossy(head);
    let request_line = text.lines().next().unwrap_or("").escape_debug().to_string();
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{peer} \"{request_line}\" 200 20");
    if options.show_headers {
        for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
            let _ = writeln!(out, "    {}", line.escape_debug());
        }
    }
}
// ANCHOR_END: log_request

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted stream: hands out its pieces one `read` at a time, then end of stream.
    struct Pieces(Vec<&'static [u8]>);

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = self.0.remove(0);
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    impl SetTimeout for Pieces {
        fn set_timeout(&mut self, _: Duration) -> io::Result<()> {
            Ok(())
        }
    }

    fn read(pieces: Vec<&'static [u8]>) -> Head {
        read_head(&mut Pieces(pieces), Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn a_head_in_pieces_is_read_whole() {
        let head = read(vec![b"GET / HT", b"TP/1.1\r\nHost: a\r", b"\n\r", b"\n"]);
        assert_eq!(
            head,
            Head::Complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec())
        );
    }

    #[test]
    fn bare_lf_heads_end_too() {
        assert_eq!(
            read(vec![b"GET / HTTP/1.0\n\n"]),
            Head::Complete(b"GET / HTTP/1.0\n\n".to_vec())
        );
    }

    #[test]
    fn a_client_that_leaves_early_is_incomplete() {
        assert_eq!(read(vec![b"GET / HTTP/1.1\r\n"]), Head::Incomplete);
    }

    #[test]
    fn an_endless_head_is_refused() {
        let filler: &'static [u8] = &[b'a'; 1024];
        assert_eq!(read(vec![filler; 20]), Head::TooLarge);
    }

    #[test]
    fn the_page_announces_its_length() {
        let split = RESPONSE
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .unwrap()
            + 4;
        assert_eq!(&RESPONSE[split..], b"<h1>hello world</h1>");
        assert!(
            std::str::from_utf8(&RESPONSE[..split])
                .unwrap()
                .contains("Content-Length: 20\r\n")
        );
    }
}
