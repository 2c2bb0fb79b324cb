//! Step 5's server: a stackful coroutine per connection (`may`), scheduled on a few threads.
//!
//! The connection is step 2's blocking loop, unchanged: [`handle_connection`] calls `read` and
//! `write` and waits for them. On a `may` socket those calls do not block the thread: when the
//! socket is not ready, the coroutine saves its registers, its stack stays where it is, and the
//! worker thread runs another coroutine until `epoll` says the socket is ready. Blocking-style code,
//! with an event loop underneath.
//!
//! `may`'s rules, and how this crate keeps them:
//! - Spawning is `unsafe` because the compiler cannot check the next two rules; see the SAFETY
//!   comment in [`spawn_connection`].
//! - Thread-local storage: a coroutine can move to another worker thread at any point where it
//!   may yield (any socket call), so a thread-local read before that point and used after it may
//!   belong to another coroutine. The handler keeps no thread-local across a socket call.
//! - Blocking calls that `may` does not intercept stall the whole worker thread, and with it
//!   every coroutine waiting on it: `std::thread::sleep`, `std` sockets, mutexes held long, and
//!   file I/O. This server reads files with plain `std::fs` (fast from the page cache, a stall on
//!   a cold disk); its log writes never block (when stdout falls behind, lines are dropped and
//!   counted). Production note: a real server would move file reads off the workers.
//! - The stack does not grow: it is a fixed `mmap`ed region with a guard page below it. Running
//!   into the guard page does not end the process: `may` prints "coroutine … has overflowed its
//!   stack" and abandons that coroutine, so its socket is never closed and any lock it held stays
//!   held. The core keeps big buffers on the heap ([`step02_files::server::blocking::COPY_CHUNK`]);
//!   [`DEFAULT_STACK_SIZE`] says how much stack was measured.

#![deny(missing_docs)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd};
use std::os::unix::io::FromRawFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use step02_files::server::log::note;
use step02_files::server::startup;
use step02_files::{Persistence, ShutdownSignal, Site, Stream, handle_connection};

// ANCHOR: stack_size
/// The coroutine stack size used unless `--stack-size` says otherwise: 64 KiB.
///
/// Measured with `--report-stack-usage` over every kind of request the core answers (each status,
/// a 3 MB file, pipelining, HEAD, HTTP/1.0, a 408 after a cut-off head): the deepest connection
/// used 3,319 words (26 KiB) in a debug build and 979 words (8 KiB) in a release build. `may`'s
/// own default, 32 KiB, leaves a debug build little margin; 64 KiB of address space costs only
/// the pages a coroutine touches. The measurement assumes [`warm_up`] ran: compiling the core's
/// regex inside a coroutine overflowed even 64 KiB in a debug build.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;
// ANCHOR_END: stack_size

/// The `--stack-size` values accepted: from `may`'s own default, which holds the deepest request
/// path measured above, to 64 MiB, past which a few thousand connections would reserve more
/// address space than a machine has. Outside it, a stack either overflows on the first request
/// (its connection hangs, its descriptor is never closed) or cannot be allocated at all.
pub const STACK_SIZES: std::ops::RangeInclusive<usize> = 32 * 1024..=64 * 1024 * 1024;

/// `size` if it is within [`STACK_SIZES`], else the one-line reason a server refuses to start.
///
/// # Errors
///
/// When `size` is below or above [`STACK_SIZES`].
pub fn check_stack_size(size: usize) -> Result<usize, String> {
    if STACK_SIZES.contains(&size) {
        Ok(size)
    } else {
        Err(format!(
            "--stack-size {size} is out of range: it must be from {} to {} bytes",
            STACK_SIZES.start(),
            STACK_SIZES.end()
        ))
    }
}

/// How step 5 serves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Worker threads that run the coroutines.
    pub workers: NonZeroUsize,
    /// Bytes of stack per coroutine.
    pub stack_size: usize,
    /// Make `may` print each coroutine's stack use when it ends (slow: every stack is filled
    /// with a pattern when allocated, so every page of it becomes resident).
    pub report_stack_usage: bool,
}

// ANCHOR: configure
/// Sets `may`'s worker count and stack size. It must run before anything starts `may`'s
/// scheduler (the first spawn, or the first `may` socket); later calls have no effect.
pub fn configure(options: &Options) {
    let word = std::mem::size_of::<usize>();
    // `may` counts the stack in words. An odd count is its signal to fill the whole stack with a
    // pattern and report, when the coroutine ends, how much of the pattern was overwritten.
    let mut words = options.stack_size.div_ceil(word).max(2) & !1;
    if options.report_stack_usage {
        words += 1;
    }
    may::config()
        .set_workers(options.workers.get())
        .set_stack_size(words);
}
// ANCHOR_END: configure

// ANCHOR: serve
/// Serves until SIGINT or SIGTERM: an accept loop runs as a coroutine, and this (ordinary) thread
/// waits for the signal, then returns, so the caller can exit. Connections in progress end with
/// the process.
///
/// # Errors
///
/// Fails when the accept coroutine cannot be started or waiting for the signal fails.
pub fn serve(
    listener: may::net::TcpListener,
    site: &Site,
    shutdown: &ShutdownSignal,
) -> io::Result<()> {
    warm_up(site);
    let site = site.clone();
    // SAFETY: the accept loop keeps no thread-local state across a socket call, and its calls
    // (accept, spawn, a log line) are shallow next to a connection's, which were measured (see
    // DEFAULT_STACK_SIZE).
    let _accepting = unsafe {
        may::coroutine::Builder::new()
            .name("accept".to_owned())
            // `-> ()`: the loop never returns (`!`), but `spawn` needs a concrete result type.
            .spawn(move || -> () {
                let _guard = AbortIfUnwound;
                accept_loop(&listener, &site);
            })
    }?;
    wait_for_shutdown(shutdown)
}
// ANCHOR_END: serve

// ANCHOR: warm_up
/// Parses one request here, on the main thread, before any coroutine runs.
///
/// The core compiles its request-line regex the first time it parses (a `LazyLock`), and
/// compiling a regex is by far the deepest call the server makes: in a debug build it alone
/// overflowed a 64 KiB coroutine stack. Done here, it runs on the main thread's 8 MiB stack, and
/// every coroutine finds the regex ready.
fn warm_up(site: &Site) {
    let _ = step02_files::parse_request(b"GET / HTTP/1.1\r\nHost: warm-up\r\n\r\n", &site.limits);
}
// ANCHOR_END: warm_up

// ANCHOR: into_may_listener
/// Hands the listening socket to `may`: non-blocking, and registered with its `epoll`. This
/// starts `may`'s scheduler (its worker and timer threads), so call [`configure`] first.
///
/// # Errors
///
/// `may` panics when the system refuses one of its threads (`ulimit -u`, memory), or when
/// `epoll_ctl` fails; that is an operator's limit, not a bug, so the panic is caught (its message
/// kept off stderr) and returned as a one-line error, before the server announces itself.
pub fn into_may_listener(listener: TcpListener) -> io::Result<may::net::TcpListener> {
    let fd = listener.into_raw_fd();
    let what = format!(
        "the coroutine scheduler ({} worker threads)",
        may::config().get_workers()
    );
    // SAFETY: `fd` is an open listening socket whose ownership `into_raw_fd` has just given up,
    // so the new listener is its only owner.
    startup::start_threads(what, || unsafe { may::net::TcpListener::from_raw_fd(fd) })
}
// ANCHOR_END: into_may_listener

// ANCHOR: wait_for_shutdown
/// Blocks this thread (not a `may` worker) until the shutdown signal.
fn wait_for_shutdown(shutdown: &ShutdownSignal) -> io::Result<()> {
    while !shutdown.is_requested() {
        let mut fds = [PollFd::new(shutdown.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}
// ANCHOR_END: wait_for_shutdown

/// Ends the process if dropped, which can only happen while the accept loop unwinds from a panic
/// (inside `may`: a stack that cannot be mapped). A server that can no longer accept should not
/// linger looking healthy; aborting lets a supervisor restart it.
struct AbortIfUnwound;

impl Drop for AbortIfUnwound {
    fn drop(&mut self) {
        std::process::abort();
    }
}

// ANCHOR: accept_loop
/// Accepts for ever, a coroutine per connection.
fn accept_loop(listener: &may::net::TcpListener, site: &Site) -> ! {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => spawn_connection(stream, peer, site.clone()),
            Err(error) => accept_failed(&error),
        }
    }
}
// ANCHOR_END: accept_loop

// ANCHOR: accept_failed
/// The core's accept-error policy, pausing with `may`'s sleep: the core's own
/// [`accept_failed`](step02_files::server::startup::accept_failed) calls `std::thread::sleep`,
/// which would stall a worker thread and every coroutine on it.
fn accept_failed(error: &io::Error) {
    startup::accept_failed_then(error, may::coroutine::sleep);
}
// ANCHOR_END: accept_failed

// ANCHOR: spawn_connection
/// Starts a coroutine that serves one connection.
fn spawn_connection(stream: may::net::TcpStream, peer: SocketAddr, site: Site) {
    // SAFETY: `may` asks two things of a coroutine the compiler cannot check.
    // 1. No thread-local state held across a point where it may yield (a socket call), since it
    //    may resume on another thread. The handler uses none; the one lock it takes (the access
    //    log's) is taken and released around a `write` that can neither block nor yield.
    // 2. Its stack must suffice: it cannot grow. The deepest path was measured (see
    //    DEFAULT_STACK_SIZE), and `serve` warmed up the one deep initialisation first. An
    //    overflow hits the guard page, so it cannot corrupt other memory, but the coroutine is
    //    abandoned with its socket open.
    let spawned = unsafe {
        may::coroutine::Builder::new()
            .name("conn".to_owned())
            .spawn(move || serve_connection(stream, peer, &site))
    };
    // `may` reports no error here today (it panics if a stack cannot be mapped); should it ever,
    // the connection closes, as when a thread cannot be spawned in step 4.
    if let Err(error) = spawned {
        note(format_args!(
            "{peer}: cannot start a coroutine ({error}); connection dropped"
        ));
    }
}
// ANCHOR_END: spawn_connection

// ANCHOR: serve_connection
/// Serves one connection with step 2's blocking loop; the same as `serve_tcp`, on a `may` socket.
fn serve_connection(stream: may::net::TcpStream, peer: SocketAddr, site: &Site) {
    let mut stream = CoStream(stream);
    let result = stream
        .configure(site)
        .and_then(|()| handle_connection(&mut stream, peer, site, Persistence::KeepAlive));
    if let Err(error) = result {
        site.log.connection_error(peer, &error);
    }
}
// ANCHOR_END: serve_connection

// ANCHOR: transport
/// A `may` socket as a [`Stream`]: reads and writes that park the coroutine, not the thread.
///
/// Its descriptor is non-blocking underneath, which the blocking loop needs to know: a file body
/// leaves through `sendfile` on that descriptor, and when the socket is full (`EAGAIN`), the next
/// chunk goes through `may`'s own `write`, which parks this coroutine until the socket drains or
/// the write timeout passes (a blocking `sendfile` would stall the whole worker thread).
#[derive(Debug)]
pub struct CoStream(pub may::net::TcpStream);

impl CoStream {
    /// The same settings as `serve_tcp` gives a std socket.
    fn configure(&self, site: &Site) -> io::Result<()> {
        self.0.set_nodelay(true)?;
        self.0.set_write_timeout(Some(site.idle_timeout))
    }
}

impl Read for CoStream {
    fn read(&mut self, bytes: &mut [u8]) -> io::Result<usize> {
        self.0.read(bytes)
    }
}

impl Write for CoStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Stream for CoStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // `may` times the wait itself: its timer wakes the coroutine.
        self.0.set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }

    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.inner().as_fd())
    }

    fn blocking_is_emulated(&self) -> bool {
        true
    }
}
// ANCHOR_END: transport

/// Parses a size in bytes, with an optional binary suffix: `65536`, `64K`, `64KiB`, `1M`, `1MiB`.
///
/// # Errors
///
/// Returns a message for anything else, or a size that overflows.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    let multiplier: usize = match suffix.trim() {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1024,
        "M" | "MiB" => 1024 * 1024,
        other => return Err(format!("unknown size suffix {other:?} (use K or M)")),
    };
    let count: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 65536 or 64K"))?;
    count
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_and_without_suffixes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("").is_err());
        assert!(parse_size("64G").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999K").is_err());
    }

    #[test]
    fn stack_sizes_out_of_range_are_refused() {
        use super::{DEFAULT_STACK_SIZE, check_stack_size};
        assert_eq!(check_stack_size(DEFAULT_STACK_SIZE), Ok(DEFAULT_STACK_SIZE));
        for size in [0, 1024, 32 * 1024 - 1, 64 * 1024 * 1024 + 1, usize::MAX] {
            assert!(check_stack_size(size).is_err(), "{size}");
        }
    }
}
