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
pub use step02_files::server::stream::{LINGER_BYTES, LINGER_TIME};
use step02_files::{
    Persistence, Request, RequestDecoder, Response, Site, StatusCode, Stream, error_response,
    respond, status_page, wall_clock,
};

use crate::outgoing::{Flow, Outgoing};

// ANCHOR: next_readiness
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
// ANCHOR_END: next_readiness

// ANCHOR: state
/// What a connection is doing, with what that needs.
#[derive(Debug)]
enum State {
    /// Waiting for a request, or reading one; answering those already buffered.
    Reading,
    /// Sending a response. Nothing more is read until it is out: a client that pipelines without
    /// reading cannot make the server buffer without end.
    Sending(Outgoing),
    /// FIN sent; reading and dropping what the client still sends until it closes too.
    Lingering {
        /// Bytes dropped so far.
        n_drained: usize,
    },
    /// Done; the owner should drop the connection.
    Closed,
}
// ANCHOR_END: state

// ANCHOR: socket_state
/// What is known about the socket, from readiness events and from the calls made on it. An
/// edge-triggered loop (step 7) reports a change once, so the connection remembers it until a
/// call proves it over.
#[derive(Debug, Clone, Copy)]
struct SocketState {
    /// It may hold bytes to read. Cleared when a read proves it empty.
    readable: bool,
    /// It may take bytes. Cleared when the send buffer is full.
    writable: bool,
    /// The readiness source said the peer has closed: a short read no longer proves the socket
    /// drained, because the end of stream still waits to be read.
    close_reported: bool,
    /// A read returned 0: the client will send nothing more.
    at_eof: bool,
}

/// Whether the state machine can go on at once or must wait for the socket.
enum Step {
    Continue,
    Wait(Next),
}
// ANCHOR_END: socket_state

// ANCHOR: connection
/// One client connection of an event loop.
///
/// The loop calls [`on_ready`](Connection::on_ready) when the socket may have become readable or
/// writable, [`on_deadline`](Connection::on_deadline) once [`deadline`](Connection::deadline)
/// has passed, and drops the connection when either returns [`Next::Close`].
#[derive(Debug)]
pub struct Connection<S> {
    socket: S,
    peer: SocketAddr,
    state: State,
    /// What the socket allows, as far as anyone knows.
    known: SocketState,
    /// Bytes received and not yet used: part of a request, or requests not yet answered.
    decoder: RequestDecoder,
    /// When the connection gives up waiting for the client.
    deadline: Instant,
    /// Set by [`Connection::begin_shutdown`]: finish the response in flight, answer no more, and
    /// let no deadline lie past this one.
    shutdown_deadline: Option<Instant>,
    /// Reads and writes that moved bytes, for a loop that wants to know whether a pass did anything.
    n_transfers: u64,
}
// ANCHOR_END: connection

impl<S: Stream> Connection<S> {
    // ANCHOR: connection_new
    /// A connection just accepted at `now`; it waits up to `site.idle_timeout` for a request.
    pub fn new(socket: S, peer: SocketAddr, site: &Site, now: Instant) -> Self {
        Connection {
            socket,
            peer,
            state: State::Reading,
            known: SocketState {
                readable: false,
                writable: true,
                close_reported: false,
                at_eof: false,
            },
            decoder: RequestDecoder::new(site.limits),
            deadline: now + site.idle_timeout,
            shutdown_deadline: None,
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
        match self.state {
            State::Reading | State::Lingering { .. } => Next::Read,
            State::Sending(_) => Next::Write,
            State::Closed => Next::Close,
        }
    }
    // ANCHOR_END: connection_new

    // ANCHOR: on_ready
    /// The socket may have become readable and/or writable: make all the progress it allows.
    pub fn on_ready(&mut self, readiness: Readiness, site: &Site, now: Instant) -> Next {
        self.known.readable |= readiness.readable || readiness.read_closed;
        self.known.close_reported |= readiness.read_closed;
        self.known.writable |= readiness.writable;
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
        match self.state {
            State::Closed => {}
            State::Lingering { .. } => self.state = State::Closed,
            State::Sending(_) => {
                let error = io::Error::new(io::ErrorKind::TimedOut, "client stopped reading");
                self.fail(site, &error);
            }
            State::Reading if self.decoder.has_partial_request() && !self.known.at_eof => {
                self.queue(
                    status_page(StatusCode::REQUEST_TIMEOUT, &wall_clock()),
                    None,
                    site,
                    now,
                );
            }
            State::Reading => self.start_closing(now),
        }
        self.advance(site, now)
    }
    // ANCHOR_END: on_deadline

    // ANCHOR: begin_shutdown
    /// The server is stopping: finish the response in flight (if any) within `grace`, answer no
    /// further request, and close.
    pub fn begin_shutdown(&mut self, grace: Duration, site: &Site, now: Instant) -> Next {
        let shutdown_deadline = now + grace;
        self.shutdown_deadline = Some(shutdown_deadline);
        self.deadline = self.deadline.min(shutdown_deadline);
        self.advance(site, now)
    }
    // ANCHOR_END: begin_shutdown

    // ANCHOR: advance
    /// Moves the connection forward until it has to wait for the socket, or is closed.
    fn advance(&mut self, site: &Site, now: Instant) -> Next {
        loop {
            let step = match self.state {
                State::Reading => self.receive(site, now),
                State::Sending(_) => self.send(site, now),
                State::Lingering { n_drained } => self.linger(n_drained),
                State::Closed => return Next::Close,
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
        if !self.known.writable {
            return Step::Wait(Next::Write);
        }
        let State::Sending(output) = &mut self.state else {
            return Step::Continue;
        };
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
                self.known.writable = false;
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
        let State::Sending(done) = std::mem::replace(&mut self.state, State::Reading) else {
            return;
        };
        site.log
            .record(self.peer, done.request.as_ref(), done.status, done.body_len);
        if done.keep_alive && self.shutdown_deadline.is_none() {
            // The next request has the whole idle timeout to arrive, as in the blocking loop.
            self.set_deadline(now + site.idle_timeout);
        } else if self.decoder.can_close_at_once(done.request.as_ref()) {
            // The client said it was done and left nothing unread: close sends FIN, no linger.
            self.state = State::Closed;
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
        if self.decoder.is_finished() || self.known.at_eof || self.shutdown_deadline.is_some() {
            // Nothing more will be answered: a client that closed its side mid-request is let go
            // without a word, as the blocking loop does.
            self.start_closing(now);
            return Step::Continue;
        }
        if !self.known.readable {
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
                self.known.at_eof = true;
                self.known.readable = false;
            }
            Ok(n_read) => {
                self.n_transfers += 1;
                // A short read emptied the socket's receive buffer; reading again would only
                // return WouldBlock (epoll(7) says so for stream sockets). Unless the peer has
                // closed: then the end of stream is still to be read.
                if n_read < READ_CHUNK && !self.known.close_reported {
                    self.known.readable = false;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.known.readable = false;
                return Step::Wait(Next::Read);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => self.fail(site, &error),
        }
        Step::Continue
    }
    // ANCHOR_END: read_some

    // ANCHOR: queue
    /// Makes `response` the pending output; the client then has the idle timeout to take it.
    fn queue(&mut self, response: Response, request: Option<Request>, site: &Site, now: Instant) {
        match Outgoing::new(response, request) {
            Ok(output) => {
                self.state = State::Sending(output);
                self.set_deadline(now + site.idle_timeout);
            }
            Err(error) => self.fail(site, &error),
        }
    }
    // ANCHOR_END: queue

    // ANCHOR: start_closing
    /// Sends FIN and starts draining what the client still sends, for at most [`LINGER_TIME`].
    /// A client that has already closed its side gets no linger: there is nothing left to drain.
    fn start_closing(&mut self, now: Instant) {
        if self.known.at_eof {
            self.state = State::Closed;
            return;
        }
        match self.socket.shutdown_write() {
            Ok(()) => {
                self.state = State::Lingering { n_drained: 0 };
                self.set_deadline(now + LINGER_TIME);
            }
            // The peer is gone already (NotConnected) or the socket is broken: just close.
            Err(_) => self.state = State::Closed,
        }
    }

    /// Reads and drops bytes until the client closes, the socket is empty, or enough was dropped.
    fn linger(&mut self, n_drained: usize) -> Step {
        if !self.known.readable {
            return Step::Wait(Next::Read);
        }
        let mut sink = [0u8; 4096];
        match self.socket.read(&mut sink) {
            Ok(0) => self.state = State::Closed,
            Ok(n_read) if n_drained + n_read >= LINGER_BYTES => self.state = State::Closed,
            Ok(n_read) => {
                self.state = State::Lingering {
                    n_drained: n_drained + n_read,
                };
                if n_read < sink.len() && !self.known.close_reported {
                    self.known.readable = false;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.known.readable = false;
                return Step::Wait(Next::Read);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // A reset while draining: the client is gone, which is all the linger waited for.
            Err(_) => self.state = State::Closed,
        }
        Step::Continue
    }
    // ANCHOR_END: start_closing

    // ANCHOR: fail
    /// Ends the connection after an I/O error, which is logged: it ends only this connection.
    fn fail(&mut self, site: &Site, error: &io::Error) {
        site.log.connection_error(self.peer, error);
        self.state = State::Closed;
    }

    /// Moves the deadline, never past the end of a graceful shutdown.
    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = match self.shutdown_deadline {
            Some(limit) => deadline.min(limit),
            None => deadline,
        };
    }
    // ANCHOR_END: fail
}

#[cfg(test)]
mod tests;
