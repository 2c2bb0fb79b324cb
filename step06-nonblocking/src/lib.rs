//! Step 6: one thread serves every client, with non-blocking sockets and a loop that asks every
//! socket in turn whether it can make progress.
//!
//! What changed since step 5: no thread or coroutine waits for a client any more. Every socket is
//! non-blocking, so a `read` or `write` that cannot proceed returns `WouldBlock` at once, and each
//! connection keeps its progress in a [`Connection`] (bytes read so far, the response still to send,
//! its deadline). The loop in [`serve`] tries `accept`, then tries every connection, forever.
//!
//! What to watch for: it works, and it spins. An idle server burns a whole core asking sockets that
//! have nothing to say, and every pass costs more as idle clients pile up (`--stats` shows the
//! passes per second). `--nap MICROS` sleeps when a pass found nothing to do: less CPU, more
//! latency. Step 7 hands the question "which socket is ready?" to the kernel instead.
//!
//! The [`Connection`] state machine is written once here and reused by step 7.

pub mod connection;
pub mod outgoing;
pub mod socket;

use std::io;
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use step02_files::server::log::note;
use step02_files::server::startup::accept_failed_then;
use step02_files::{ShutdownSignal, Site};

pub use connection::{Connection, Next, Readiness};
pub use socket::accept_nonblocking;

/// How long accepting pauses after `accept` failed for lack of descriptors or memory (the core's
/// one accept-error policy). Retrying at once cannot succeed, and the waiting connection keeps the
/// listener ready, so a loop that did not pause would spin at 100% CPU; meanwhile the connections
/// already open are served as usual.
pub use step02_files::server::startup::ACCEPT_BACKOFF;

/// How the loop behaves when a pass finds nothing to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Sleep this long after a pass that moved no bytes and accepted nothing; `None` spins.
    pub nap: Option<Duration>,
    /// Print on stderr, once a second, how many passes the loop made and what one cost.
    pub stats: bool,
}

// ANCHOR: server
/// The listener and every open connection: all the state of the server, owned by one thread.
struct Server {
    /// `None` once shutting down: no new connections are accepted.
    listener: Option<TcpListener>,
    connections: Vec<Connection<std::net::TcpStream>>,
    /// While out of descriptors, accepting waits until this instant.
    accept_paused_until: Option<Instant>,
}
// ANCHOR_END: server

// ANCHOR: serve
/// Serves every client from this thread until SIGINT or SIGTERM, then lets the responses in
/// flight finish (for at most `site.idle_timeout`) and returns.
///
/// # Errors
///
/// Fails only if the listener cannot be made non-blocking; errors of single connections are logged.
pub fn serve(
    listener: TcpListener,
    site: &Site,
    shutdown: &ShutdownSignal,
    options: Options,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut server = Server {
        listener: Some(listener),
        connections: Vec::new(),
        accept_paused_until: None,
    };
    let mut stats = PassStats::new(Instant::now());
    loop {
        let now = Instant::now();
        if server.listener.is_some() && shutdown.is_requested() {
            server.begin_shutdown(site, now);
        }
        if server.listener.is_none() && server.connections.is_empty() {
            return Ok(());
        }
        let accepted = server.accept_all(site, now);
        let moved = server.poll_every_connection(site, now);
        if options.stats {
            stats.count(now, server.connections.len());
        }
        if !accepted && !moved {
            if let Some(nap) = options.nap {
                thread::sleep(nap);
            }
        }
    }
}
// ANCHOR_END: serve

impl Server {
    // ANCHOR: accept_all
    /// Accepts every connection waiting in the backlog; returns whether there was any.
    fn accept_all(&mut self, site: &Site, now: Instant) -> bool {
        let Some(listener) = &self.listener else {
            return false;
        };
        if self.accept_paused_until.is_some_and(|until| now < until) {
            return false;
        }
        self.accept_paused_until = None;
        let mut accepted = false;
        loop {
            match accept_nonblocking(listener) {
                Ok((stream, peer)) => {
                    self.connections
                        .push(Connection::new(stream, peer, site, now));
                    accepted = true;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return accepted,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // A shortage pauses accepting, not the thread. Any other error concerns one
                    // connection (it was reset before we took it): the next pass goes on with the
                    // rest of the backlog.
                    let paused_until = &mut self.accept_paused_until;
                    accept_failed_then(&error, |pause| *paused_until = Some(now + pause));
                    return accepted;
                }
            }
        }
    }
    // ANCHOR_END: accept_all

    // ANCHOR: poll_every_connection
    /// Asks every connection to make progress, and drops those that are done. Returns whether
    /// any of them moved a byte or closed.
    ///
    /// This is the step's lesson: the loop cannot know which sockets are ready, so it tries them
    /// all, and an idle client costs a failed `read` (a system call) on every pass.
    fn poll_every_connection(&mut self, site: &Site, now: Instant) -> bool {
        let mut moved = false;
        let mut conn_idx = 0;
        while conn_idx < self.connections.len() {
            let conn = &mut self.connections[conn_idx];
            let transfers_before = conn.transfers();
            let mut next = conn.on_ready(Readiness::ALL, site, now);
            if next != Next::Close && now >= conn.deadline() {
                next = conn.on_deadline(site, now);
            }
            moved |= conn.transfers() != transfers_before;
            if next == Next::Close {
                // Dropping the connection closes its socket. Order does not matter here.
                self.connections.swap_remove(conn_idx);
                moved = true;
            } else {
                conn_idx += 1;
            }
        }
        moved
    }
    // ANCHOR_END: poll_every_connection

    // ANCHOR: server_begin_shutdown
    /// Stops accepting (closing the listener, so new clients are refused at once) and asks every
    /// connection to finish its response in flight within the idle timeout.
    fn begin_shutdown(&mut self, site: &Site, now: Instant) {
        self.listener = None;
        self.connections
            .retain_mut(|conn| conn.begin_shutdown(site.idle_timeout, site, now) != Next::Close);
    }
    // ANCHOR_END: server_begin_shutdown
}

/// Counts passes of the loop and prints a line a second (`--stats`).
struct PassStats {
    since: Instant,
    passes: u64,
}

impl PassStats {
    fn new(now: Instant) -> Self {
        PassStats {
            since: now,
            passes: 0,
        }
    }

    fn count(&mut self, now: Instant, n_connections: usize) {
        self.passes += 1;
        let elapsed = now.duration_since(self.since);
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let per_pass = elapsed / u32::try_from(self.passes).unwrap_or(u32::MAX);
        note(format_args!(
            "stats: {} passes in {:.2?} ({:.2?} per pass), {n_connections} connections",
            self.passes, elapsed, per_pass,
        ));
        *self = PassStats::new(now);
    }
}
