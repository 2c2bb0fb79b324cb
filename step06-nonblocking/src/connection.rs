//! Defines [`Connection`]: the state of one client connection in an event loop, and the state
//! machine that moves it forward whenever its socket is ready.
//!
//! A blocking server keeps this state on a thread's stack: where the thread is waiting *is* the
//! state. An event loop serves every connection from one thread, so each connection's progress
//! has to live in a value between calls: the bytes of a request received so far (the core's
//! [`RequestDecoder`]), the response still to send ([`Outgoing`]), and a deadline. Steps 6 and 7
//! share this code; they differ only in how they learn that a socket is ready.
//!
//! The rules it follows, the same as the blocking loop of step 2 (`step02_files::server::blocking`):
//!
//! - requests are answered one at a time, in order; while a response is being sent, nothing more
//!   is read (back-pressure: a client that pipelines without reading cannot make the server buffer
//!   without end);
//! - a client that stays silent past the idle timeout is closed, with a 408 if it was in the middle
//!   of a request; a client that stops reading a response is cut off after the same time;
//! - a client that half-closes (sends FIN) after a complete request still gets its answer;
//! - closing is lingering: FIN first, then the client's last bytes are read and dropped, so the
//!   kernel does not answer them with a reset that could destroy the response in flight (unless
//!   the client asked to close and every byte it sent was used: then there is nothing to drain).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use step02_files::http::decoder::READ_CHUNK;
use step02_files::{
    Persistence, Request, RequestDecoder, Response, Site, StatusCode, error_response, respond,
    status_page, wall_clock,
};

use crate::outgoing::{Flow, Outgoing};
use crate::socket::Socket;

/// How long a closing connection waits for the client to close its side, and how much it reads
/// meanwhile. The same bounds as the blocking loop's lingering close in step 2.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// See [`LINGER_TIME`].
pub const LINGER_BYTES: usize = 64 * 1024;

/// What a connection waits for next: the event loop uses it to decide what to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Call again when the socket is readable (or the deadline passes).
    Read,
    /// Call again when the socket is writable (or the deadline passes).
    Write,
    /// The connection is over: drop it, which closes the socket.
    Close,
}

/// What the event loop learnt about a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Bytes (or end of stream, or an error) are waiting to be read.
    pub readable: bool,
    /// The send buffer has room.
    pub writable: bool,
    /// The peer has closed its sending side (epoll's `EPOLLRDHUP`/`EPOLLHUP`) or the socket has an
    /// error: a read will eventually return 0 or the error, even after a short read.
    pub read_closed: bool,
}

impl Readiness {
    /// "Try everything": what a loop that asks every socket in turn (step 6) passes.
    pub const ALL: Readiness = Readiness {
        readable: true,
        writable: true,
        read_closed: false,
    };
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading requests and answering them.
    Serving,
    /// FIN sent; reading and dropping what the client still sends until it closes too.
    Lingering {
        /// Bytes dropped so far.
        n_drained: usize,
    },
    /// Done; the owner should drop the connection.
    Closed,
}

/// Whether the state machine can go on at once or must wait for the socket.
enum Step {
    Continue,
    Wait(Next),
}

/// One client connection of an event loop.
///
/// The loop calls [`on_ready`](Connection::on_ready) when the socket may have become readable or
/// writable, [`on_deadline`](Connection::on_deadline) once [`deadline`](Connection::deadline)
/// has passed, and drops the connection when either returns [`Next::Close`].
#[derive(Debug)]
pub struct Connection<S> {
    socket: S,
    peer: SocketAddr,
    phase: Phase,
    /// Bytes received and not yet used: part of a request, or requests not yet answered.
    decoder: RequestDecoder,
    /// The response being sent, if any. At most one: the next request waits until it is out.
    output: Option<Outgoing>,
    /// When the connection gives up waiting for the client.
    deadline: Instant,
    /// Set by [`Connection::begin_shutdown`]: no deadline may lie past it.
    shutdown_deadline: Option<Instant>,
    /// The socket may hold bytes to read. Set by readiness, cleared when a read proves the socket
    /// empty, so an edge-triggered loop (step 7) knows to wait for the next event.
    read_ready: bool,
    /// The socket may take bytes. Set by readiness, cleared when the send buffer is full.
    write_ready: bool,
    /// The readiness source said the peer has closed: a short read no longer proves the socket
    /// drained, because the end of stream still waits to be read.
    read_closed_hint: bool,
    /// A read returned 0: the client will send nothing more.
    peer_closed: bool,
    /// Set by [`Connection::begin_shutdown`]: finish the response in flight, answer no more.
    stop_after_response: bool,
    /// Reads and writes that moved bytes, for a loop that wants to know whether a pass did anything.
    n_transfers: u64,
}

impl<S: Socket> Connection<S> {
    /// A connection just accepted at `now`; it waits up to `site.idle_timeout` for a request.
    pub fn new(socket: S, peer: SocketAddr, site: &Site, now: Instant) -> Self {
        Connection {
            socket,
            peer,
            phase: Phase::Serving,
            decoder: RequestDecoder::new(site.limits),
            output: None,
            deadline: now + site.idle_timeout,
            shutdown_deadline: None,
            read_ready: false,
            write_ready: true,
            read_closed_hint: false,
            peer_closed: false,
            stop_after_response: false,
            n_transfers: 0,
        }
    }

    /// The socket, to register it with a poller or to read its descriptor.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// When [`on_deadline`](Connection::on_deadline) should be called, if nothing happens before.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// How many reads and writes have moved bytes so far.
    pub fn transfers(&self) -> u64 {
        self.n_transfers
    }

    /// What the connection is waiting for now, without doing anything.
    pub fn next(&self) -> Next {
        match self.phase {
            Phase::Closed => Next::Close,
            Phase::Lingering { .. } => Next::Read,
            Phase::Serving if self.output.is_some() => Next::Write,
            Phase::Serving => Next::Read,
        }
    }

    // ANCHOR: on_ready
    /// The socket may have become readable and/or writable: make all the progress it allows.
    pub fn on_ready(&mut self, readiness: Readiness, site: &Site, now: Instant) -> Next {
        self.read_ready |= readiness.readable || readiness.read_closed;
        self.read_closed_hint |= readiness.read_closed;
        self.write_ready |= readiness.writable;
        self.advance(site, now)
    }
    // ANCHOR_END: on_ready

    // ANCHOR: on_deadline
    /// Called when the deadline may have passed. Before the deadline it does nothing.
    ///
    /// A client silent in the middle of a request gets `408 Request Timeout`; one silent between
    /// requests is closed without a word; one that stopped reading a response is cut off; a
    /// lingering close ends.
    pub fn on_deadline(&mut self, site: &Site, now: Instant) -> Next {
        if now < self.deadline {
            return self.next();
        }
        match self.phase {
            Phase::Closed => {}
            Phase::Lingering { .. } => self.phase = Phase::Closed,
            Phase::Serving if self.output.is_some() => {
                let error = io::Error::new(io::ErrorKind::TimedOut, "client stopped reading");
                self.fail(site, &error);
            }
            Phase::Serving if self.decoder.has_partial_request() && !self.peer_closed => {
                self.queue(
                    status_page(StatusCode::REQUEST_TIMEOUT, &wall_clock()),
                    None,
                    site,
                    now,
                );
            }
            Phase::Serving => self.start_closing(now),
        }
        self.advance(site, now)
    }
    // ANCHOR_END: on_deadline

    /// The server is stopping: finish the response in flight (if any) within `grace`, answer no
    /// further request, and close.
    pub fn begin_shutdown(&mut self, grace: Duration, site: &Site, now: Instant) -> Next {
        let shutdown_deadline = now + grace;
        self.shutdown_deadline = Some(shutdown_deadline);
        self.deadline = self.deadline.min(shutdown_deadline);
        self.stop_after_response = true;
        self.advance(site, now)
    }

    // ANCHOR: advance
    /// Moves the connection forward until it has to wait for the socket, or is closed.
    fn advance(&mut self, site: &Site, now: Instant) -> Next {
        loop {
            let step = match self.phase {
                Phase::Closed => return Next::Close,
                Phase::Lingering { n_drained } => self.linger(n_drained),
                Phase::Serving if self.output.is_some() => self.send(site, now),
                Phase::Serving => self.receive(site, now),
            };
            if let Step::Wait(next) = step {
                return next;
            }
        }
    }
    // ANCHOR_END: advance

    // ANCHOR: send
    /// Writes the pending response; once it is out, logs it and either waits for the next request
    /// or starts closing.
    fn send(&mut self, site: &Site, now: Instant) -> Step {
        let Some(output) = self.output.as_mut() else {
            return Step::Continue;
        };
        if !self.write_ready {
            return Step::Wait(Next::Write);
        }
        let (n_written, flow) = match output.write_to(&mut self.socket) {
            Ok(progress) => progress,
            Err(error) => {
                self.fail(site, &error);
                return Step::Continue;
            }
        };
        if n_written > 0 {
            self.n_transfers += 1;
            // A client that is reading, however slowly, keeps the connection.
            self.set_deadline(now + site.idle_timeout);
        }
        match flow {
            Flow::Blocked => {
                self.write_ready = false;
                Step::Wait(Next::Write)
            }
            Flow::Done => {
                self.finish_response(site, now);
                Step::Continue
            }
        }
    }
    // ANCHOR_END: send

    // ANCHOR: finish_response
    /// The response is out: log it, then wait for the next request or close.
    fn finish_response(&mut self, site: &Site, now: Instant) {
        let Some(done) = self.output.take() else {
            return;
        };
        site.log
            .record(self.peer, done.request.as_ref(), done.status, done.body_len);
        if done.keep_alive && !self.stop_after_response {
            // The next request has the whole idle timeout to arrive, as in the blocking loop.
            self.set_deadline(now + site.idle_timeout);
        } else if self.decoder.can_close_at_once(done.request.as_ref()) {
            // The client said it was done and left nothing unread: close sends FIN, no linger.
            self.phase = Phase::Closed;
        } else {
            self.start_closing(now);
        }
    }
    // ANCHOR_END: finish_response

    // ANCHOR: receive
    /// Answers the next complete request if one is buffered; otherwise reads more, if the socket
    /// may have some.
    fn receive(&mut self, site: &Site, now: Instant) -> Step {
        match self.decoder.next_request() {
            Ok(Some(request)) => {
                let response = respond(&site.root, &request, Persistence::KeepAlive, &wall_clock());
                self.queue(response, Some(request), site, now);
                return Step::Continue;
            }
            Err(error) => {
                self.queue(error_response(error, &wall_clock()), None, site, now);
                return Step::Continue;
            }
            Ok(None) => {}
        }
        if self.decoder.is_finished() || self.peer_closed || self.stop_after_response {
            // Nothing more will be answered: a client that closed its side mid-request is let go
            // without a word, as the blocking loop does.
            self.start_closing(now);
            return Step::Continue;
        }
        if !self.read_ready {
            return Step::Wait(Next::Read);
        }
        self.read_some(site)
    }
    // ANCHOR_END: receive

    // ANCHOR: read_some
    /// One `read` into the decoder.
    fn read_some(&mut self, site: &Site) -> Step {
        match self.decoder.read_from(&mut self.socket) {
            Ok(0) => {
                self.peer_closed = true;
                self.read_ready = false;
            }
            Ok(n_read) => {
                self.n_transfers += 1;
                // A short read emptied the socket's receive buffer; reading again would only
                // return WouldBlock (epoll(7) says so for stream sockets). Unless the peer has
                // closed: then the end of stream is still to be read.
                if n_read < READ_CHUNK && !self.read_closed_hint {
                    self.read_ready = false;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.read_ready = false;
                return Step::Wait(Next::Read);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => self.fail(site, &error),
        }
        Step::Continue
    }
    // ANCHOR_END: read_some

    /// Makes `response` the pending output; the client then has the idle timeout to take it.
    fn queue(&mut self, response: Response, request: Option<Request>, site: &Site, now: Instant) {
        match Outgoing::new(response, request) {
            Ok(output) => {
                self.output = Some(output);
                self.set_deadline(now + site.idle_timeout);
            }
            Err(error) => self.fail(site, &error),
        }
    }

    // ANCHOR: start_closing
    /// Sends FIN and starts draining what the client still sends, for at most [`LINGER_TIME`].
    /// A client that has already closed its side gets no linger: there is nothing left to drain.
    fn start_closing(&mut self, now: Instant) {
        if self.peer_closed {
            self.phase = Phase::Closed;
            return;
        }
        match self.socket.shutdown_write() {
            Ok(()) => {
                self.phase = Phase::Lingering { n_drained: 0 };
                self.set_deadline(now + LINGER_TIME);
            }
            // The peer is gone already (NotConnected) or the socket is broken: just close.
            Err(_) => self.phase = Phase::Closed,
        }
    }

    /// Reads and drops bytes until the client closes, the socket is empty, or enough was dropped.
    fn linger(&mut self, n_drained: usize) -> Step {
        if !self.read_ready {
            return Step::Wait(Next::Read);
        }
        let mut sink = [0u8; 4096];
        match self.socket.read(&mut sink) {
            Ok(0) => self.phase = Phase::Closed,
            Ok(n_read) if n_drained + n_read >= LINGER_BYTES => self.phase = Phase::Closed,
            Ok(n_read) => {
                self.phase = Phase::Lingering {
                    n_drained: n_drained + n_read,
                };
                if n_read < sink.len() && !self.read_closed_hint {
                    self.read_ready = false;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.read_ready = false;
                return Step::Wait(Next::Read);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // A reset while draining: the client is gone, which is all the linger waited for.
            Err(_) => self.phase = Phase::Closed,
        }
        Step::Continue
    }
    // ANCHOR_END: start_closing

    /// Ends the connection after an I/O error, which is logged: it ends only this connection.
    fn fail(&mut self, site: &Site, error: &io::Error) {
        site.log.connection_error(self.peer, error);
        self.output = None;
        self.phase = Phase::Closed;
    }

    /// Moves the deadline, never past the end of a graceful shutdown.
    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = match self.shutdown_deadline {
            Some(limit) => deadline.min(limit),
            None => deadline,
        };
    }
}

#[cfg(test)]
mod tests;
