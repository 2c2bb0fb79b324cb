//! Defines [`EventLoop`]: one thread, one listener, one [`Poller`], and every connection the
//! listener accepted, each in a slot of a [`Slab`] whose index is its token.
//!
//! The loop sleeps in [`Poller::wait`] until the kernel reports ready sockets or the earliest
//! deadline passes, then does exactly the work those events call for: accept, or move one
//! connection forward, or time one out. Work per wake-up is proportional to what happened, not
//! to how many clients are connected, and an idle server does not run at all.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Instant;

use slab::Slab;
use step02_files::server::log::note;
use step02_files::{ShutdownSignal, Site};
use step06_nonblocking::{ACCEPT_BACKOFF, Connection, Next, Readiness, accept_nonblocking};

use crate::poller::{Event, Poller, Watch};
use crate::timers::{Timer, Timers};

// ANCHOR: event_loop
/// The listener's token.
const LISTENER: usize = 0;
/// The shutdown signal's token.
const SHUTDOWN: usize = 1;
/// Connection tokens are slab keys plus this.
const FIRST_CONNECTION: usize = 2;

/// A connection and its bookkeeping in the loop.
struct Slot {
    conn: Connection<TcpStream>,
    /// Tells this connection apart from earlier ones that used the same slot, for stale timers.
    serial: u64,
    /// The earliest timer queued for this connection (see [`Timers`]), if any.
    timer_at: Option<Instant>,
}

/// One event loop: all of its state, owned by one thread, shared with no other loop.
pub struct EventLoop<'a, P> {
    poller: P,
    site: &'a Site,
    shutdown: &'a ShutdownSignal,
    /// `None` once shutting down.
    listener: Option<TcpListener>,
    connections: Slab<Slot>,
    timers: Timers,
    next_serial: u64,
    /// While out of descriptors, accepting waits until this instant.
    accept_paused_until: Option<Instant>,
    events: Vec<Event>,
}
// ANCHOR_END: event_loop

impl<'a, P: Poller> EventLoop<'a, P> {
    // ANCHOR: event_loop_new
    /// A loop that will serve `listener` with `poller`, until `shutdown` is signalled.
    ///
    /// # Errors
    ///
    /// Fails when the listener cannot be made non-blocking or registered.
    pub fn new(
        poller: P,
        listener: TcpListener,
        site: &'a Site,
        shutdown: &'a ShutdownSignal,
    ) -> io::Result<Self> {
        Self::watching(poller, (listener, Watch::Read), site, shutdown)
    }

    /// [`EventLoop::new`] with the listener watched as `listener.1` says: a listener that
    /// several processes share is watched [`Watch::ReadExclusive`].
    ///
    /// # Errors
    ///
    /// As [`EventLoop::new`].
    pub fn watching(
        mut poller: P,
        (listener, watch): (TcpListener, Watch),
        site: &'a Site,
        shutdown: &'a ShutdownSignal,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        poller.register(listener.as_fd(), LISTENER, watch)?;
        // Every loop registers the same signal socket; it stays readable once signalled, so each
        // loop gets its own event and none is left sleeping.
        poller.register(shutdown.as_fd(), SHUTDOWN, Watch::Read)?;
        Ok(EventLoop {
            poller,
            site,
            shutdown,
            listener: Some(listener),
            connections: Slab::new(),
            timers: Timers::new(),
            next_serial: 0,
            accept_paused_until: None,
            events: Vec::new(),
        })
    }
    // ANCHOR_END: event_loop_new

    // ANCHOR: run
    /// Serves until the shutdown signal, then until the responses in flight are done (each within
    /// the idle timeout).
    ///
    /// # Errors
    ///
    /// Fails only if waiting for events fails; errors of single connections are logged.
    pub fn run(mut self) -> io::Result<()> {
        loop {
            if self.listener.is_none() && self.connections.is_empty() {
                return Ok(());
            }
            self.discard_stale_timers();
            let timeout = self.next_wake_up().map(|at| at - Instant::now().min(at));
            let mut events = std::mem::take(&mut self.events);
            self.poller.wait(&mut events, timeout)?;
            let now = Instant::now();
            for event in &events {
                match event.token {
                    LISTENER => self.accept_all(now),
                    SHUTDOWN => self.on_shutdown_signal(now),
                    token => {
                        self.on_connection_ready(token - FIRST_CONNECTION, event.readiness, now)
                    }
                }
            }
            self.events = events;
            self.expire_timers(now);
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_all(now);
            }
        }
    }
    // ANCHOR_END: run

    // ANCHOR: next_wake_up
    /// When the loop must wake even if no socket is ready: the earliest deadline, or the end of a
    /// pause in accepting.
    fn next_wake_up(&self) -> Option<Instant> {
        match (self.timers.next_due(), self.accept_paused_until) {
            (Some(timer), Some(pause)) => Some(timer.min(pause)),
            (timer, pause) => timer.or(pause),
        }
    }
    // ANCHOR_END: next_wake_up

    // ANCHOR: accept_all
    /// Accepts until the backlog is empty (`WouldBlock`). Edge-triggered, the listener reports a
    /// burst of connections as one event: stopping after one `accept` would leave the rest waiting
    /// until the next client arrives.
    fn accept_all(&mut self, now: Instant) {
        if self.accept_paused_until.is_some_and(|until| now < until) {
            return;
        }
        self.accept_paused_until = None;
        while let Some(listener) = &self.listener {
            match accept_nonblocking(listener) {
                Ok((stream, peer)) => self.add_connection(stream, peer, now),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                // A client that reset before we took it, or a signal: on to the next.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => {
                    // Out of descriptors (EMFILE/ENFILE) or memory. The connection stays in the
                    // backlog and no new event will come for it, so retry on a timer, not on the
                    // listener's readiness; meanwhile, serve the connections already open.
                    note(format_args!("accept failed: {error}"));
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }
    // ANCHOR_END: accept_all

    // ANCHOR: add_connection
    /// Registers a new connection and gives it a slot. It waits for its first readiness event:
    /// registering reports the socket's current state, so bytes that came with the connection
    /// are not missed.
    fn add_connection(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        let entry = self.connections.vacant_entry();
        let token = entry.key() + FIRST_CONNECTION;
        if let Err(error) = self
            .poller
            .register(stream.as_fd(), token, Watch::ReadWrite)
        {
            self.site.log.connection_error(peer, &error);
            return;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let key = entry.key();
        entry.insert(Slot {
            conn: Connection::new(stream, peer, self.site, now),
            serial,
            timer_at: None,
        });
        self.settle(key, Next::Read);
    }
    // ANCHOR_END: add_connection

    // ANCHOR: on_connection_ready
    /// A connection's socket changed: let its state machine read and write all it can.
    fn on_connection_ready(&mut self, key: usize, readiness: Readiness, now: Instant) {
        let Some(slot) = self.connections.get_mut(key) else {
            // An event for a connection closed earlier in this same batch.
            return;
        };
        let next = slot.conn.on_ready(readiness, self.site, now);
        self.settle(key, next);
    }
    // ANCHOR_END: on_connection_ready

    // ANCHOR: settle
    /// After a connection moved: drop it if it is done (closing the socket also removes it from
    /// epoll), else make sure a timer is queued no later than its deadline.
    fn settle(&mut self, key: usize, next: Next) {
        if next == Next::Close {
            self.connections.try_remove(key);
            return;
        }
        let Some(slot) = self.connections.get_mut(key) else {
            return;
        };
        let deadline = slot.conn.deadline();
        if slot.timer_at.is_none_or(|queued| deadline < queued) {
            self.timers.schedule(Timer {
                at: deadline,
                key,
                serial: slot.serial,
            });
            slot.timer_at = Some(deadline);
        }
    }
    // ANCHOR_END: settle

    // ANCHOR: stale_timers
    /// Drops timers of connections that have closed (or that a newer timer replaced) from the top
    /// of the heap, so the loop does not wake up for them: an idle server sleeps until a deadline
    /// that matters.
    fn discard_stale_timers(&mut self) {
        while let Some(timer) = self.timers.peek() {
            if self.is_current(timer) {
                return;
            }
            self.timers.pop();
        }
    }

    /// Whether `timer` is the one queued for a connection that is still open.
    fn is_current(&self, timer: Timer) -> bool {
        self.connections
            .get(timer.key)
            .is_some_and(|slot| slot.serial == timer.serial && slot.timer_at == Some(timer.at))
    }
    // ANCHOR_END: stale_timers

    // ANCHOR: expire_timers
    /// Handles every timer that is due: a connection whose deadline has really passed is timed out;
    /// one whose deadline moved later since the timer was queued gets a new timer.
    fn expire_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            if !self.is_current(timer) {
                continue; // stale: the connection is gone, or an earlier timer replaced this one
            }
            let Some(slot) = self.connections.get_mut(timer.key) else {
                continue;
            };
            slot.timer_at = None;
            let next = slot.conn.on_deadline(self.site, now);
            self.settle(timer.key, next);
        }
    }
    // ANCHOR_END: expire_timers

    // ANCHOR: on_shutdown_signal
    /// SIGINT or SIGTERM: close the listener, let idle connections go, and give the responses in
    /// flight the idle timeout to finish. The loop ends when the last connection has closed.
    fn on_shutdown_signal(&mut self, now: Instant) {
        if !self.shutdown.is_requested() || self.listener.is_none() {
            return;
        }
        self.listener = None;
        self.accept_paused_until = None;
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(slot) = self.connections.get_mut(key) {
                let next = slot
                    .conn
                    .begin_shutdown(self.site.idle_timeout, self.site, now);
                self.settle(key, next);
            }
        }
    }
    // ANCHOR_END: on_shutdown_signal
}
