//! One client connection's state machine: connect, send the request, read and frame the response,
//! then tell the worker what comes next ([`Next`]). It counts what it sees (bytes, successes, errors)
//! in the worker's [`Tally`] and never allocates.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

use super::plan::Plan;
use crate::response::{Progress, ResponseScanner};
use crate::stats::{ErrorKind, Tally};

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// No socket and nothing scheduled (the run's request budget is spent).
    Closed,
    /// Connecting; the request is sent as soon as the socket is writable.
    Connecting,
    /// Writing the request.
    Sending,
    /// Reading the response.
    Receiving,
    /// The response is complete and the server announced it closes: waiting for its FIN, so that the
    /// server, which closes first, keeps the TIME_WAIT state and the client's ports stay free.
    Draining,
    /// With `--rate`: waiting for this connection's next slot.
    Idle,
}

/// What the worker does with a connection after it handled an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Nothing until the next event (or its slot, which is already scheduled).
    Wait,
    /// The request ended (counted): start the next one, now or at its next slot.
    Request,
}

/// Per-connection state; deliberately small and allocation-free.
pub(super) struct Connection {
    stream: Option<TcpStream>,
    pub(super) phase: Phase,
    written: usize,
    /// Requests answered on the current socket (for `--requests-per-connection`).
    served: u64,
    /// Requests of this connection that ended (answered or failed) during the run.
    pub(super) ended: u64,
    scanner: ResponseScanner,
    /// Where this request's latency is measured from.
    origin: Instant,
    pub(super) deadline: Instant,
    /// With `--rate`: the intended start of the next request.
    pub(super) slot: Instant,
}

impl Connection {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            stream: None,
            phase: Phase::Closed,
            written: 0,
            served: 0,
            ended: 0,
            scanner: ResponseScanner::default(),
            origin: now,
            deadline: now,
            slot: now,
        }
    }

    /// Whether a socket is open.
    pub(super) fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether it holds an established connection (for the count of connections open at the end): one
    /// that took a write, which moved it past `Connecting`.
    pub(super) fn is_established(&self) -> bool {
        self.stream.is_some() && self.phase != Phase::Connecting
    }

    /// Whether a request is in flight (not one that failed and closed the socket: its phase stays
    /// until the next request begins).
    pub(super) fn in_flight(&self) -> bool {
        let phase = self.phase;
        self.is_open() && matches!(phase, Phase::Connecting | Phase::Sending | Phase::Receiving)
    }

    /// Prepares the next request: latency counts from `origin`, it fails after `deadline`.
    pub(super) fn begin(&mut self, origin: Instant, deadline: Instant) {
        self.origin = origin;
        self.deadline = deadline;
        self.written = 0;
        self.scanner.reset();
        if self.stream.is_some() {
            self.phase = Phase::Sending;
        }
    }

    /// Takes a freshly connecting socket.
    pub(super) fn attach(&mut self, stream: TcpStream) {
        self.stream = Some(stream);
        self.served = 0;
        self.phase = Phase::Connecting;
    }

    /// Closes the socket (which also removes it from the epoll set).
    pub(super) fn close(&mut self) {
        self.stream = None;
    }

    /// Handles a readiness event. A writable-only event (the end of a handshake whose request already
    /// went out) is skipped while reading: a `read` would only say `WouldBlock`.
    pub(super) fn on_event(
        &mut self,
        readable: bool,
        closed: bool,
        plan: &Plan,
        buffer: &mut [u8],
        tally: &mut Tally,
    ) -> Next {
        match self.phase {
            Phase::Connecting | Phase::Sending => self.send(&plan.request, tally),
            Phase::Closed => Next::Wait,
            _ if readable => self.receive(closed, plan, buffer, tally),
            _ => Next::Wait,
        }
    }

    /// Writes what is left of the request. A socket still connecting answers `WouldBlock` (or
    /// `NotConnected`): the writable event that ends the handshake brings us back.
    pub(super) fn send(&mut self, request: &[u8], tally: &mut Tally) -> Next {
        let Some(stream) = self.stream.as_mut() else {
            return Next::Wait;
        };
        while self.written < request.len() {
            match stream.write(&request[self.written..]) {
                // A stream socket never accepts zero bytes of a non-empty buffer; never spin on it.
                Ok(0) => return self.fail(ErrorKind::Reset, tally),
                Ok(n) => {
                    self.written += n;
                    self.phase = Phase::Sending;
                }
                Err(error) => match error.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => return Next::Wait,
                    io::ErrorKind::NotConnected if self.phase == Phase::Connecting => {
                        return Next::Wait;
                    }
                    _ if self.phase == Phase::Connecting => {
                        return self.fail(ErrorKind::Connect, tally);
                    }
                    _ => return self.fail(ErrorKind::Reset, tally),
                },
            }
        }
        self.phase = Phase::Receiving;
        Next::Wait
    }

    /// Reads until the socket is drained, feeding the scanner. `closed` says the event also reported
    /// the peer's FIN, which a short read does not reveal: then reading goes on until end of file.
    fn receive(&mut self, closed: bool, plan: &Plan, buffer: &mut [u8], tally: &mut Tally) -> Next {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Next::Wait;
            };
            let n_bytes = match stream.read(buffer) {
                Ok(0) => return self.on_close(tally),
                Ok(n) => n,
                Err(error) => match error.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Next::Wait,
                    // Only a socket past `Connecting` reads: its errors are resets.
                    _ => return self.fail_or_drop(ErrorKind::Reset, tally),
                },
            };
            tally.bytes += n_bytes as u64;
            if self.phase != Phase::Receiving {
                // Bytes no request asked for: the server answered twice or sent garbage.
                return self.fail_or_drop(ErrorKind::Framing, tally);
            }
            match self.scanner.feed(&buffer[..n_bytes]) {
                Ok(Progress::Partial) => {}
                Ok(Progress::Complete(done)) if done.consumed < n_bytes => {
                    return self.fail(ErrorKind::Framing, tally);
                }
                Ok(Progress::Complete(done)) => {
                    self.record(done.status, tally);
                    self.served += 1;
                    if done.keep_alive {
                        let churn = plan
                            .requests_per_connection
                            .is_some_and(|limit| self.served >= limit);
                        if plan.close || churn {
                            self.close();
                        }
                        return Next::Request;
                    }
                    // Read on, to see the server's FIN.
                    self.phase = Phase::Draining;
                    self.deadline = Instant::now() + plan.timeout;
                }
                Err(_) => return self.fail(ErrorKind::Framing, tally),
            }
            // A read shorter than the buffer emptied the socket: with edge-triggered readiness the
            // next bytes raise a new event, so one more read would only return WouldBlock.
            if n_bytes < buffer.len() && !closed && self.phase == Phase::Receiving {
                return Next::Wait;
            }
        }
    }

    /// The peer closed its side.
    fn on_close(&mut self, tally: &mut Tally) -> Next {
        match self.phase {
            Phase::Receiving if self.scanner.started() => match self.scanner.finish_on_close() {
                Ok(done) => {
                    self.close();
                    self.record(done.status, tally);
                    Next::Request
                }
                Err(_) => self.fail(ErrorKind::Framing, tally),
            },
            Phase::Receiving | Phase::Sending | Phase::Connecting => {
                self.fail(ErrorKind::Reset, tally)
            }
            // A server may close an idle keep-alive connection; the next slot reconnects.
            Phase::Draining | Phase::Idle | Phase::Closed => self.drop_idle(),
        }
    }

    fn record(&mut self, status: u16, tally: &mut Tally) {
        self.ended += 1;
        if (200..300).contains(&status) {
            tally.success_since(self.origin);
        } else {
            tally.errors.add(ErrorKind::Status);
        }
    }

    /// Counts a failed request and closes the connection; the next request follows.
    pub(super) fn fail(&mut self, kind: ErrorKind, tally: &mut Tally) -> Next {
        self.ended += 1;
        tally.errors.add(kind);
        self.close();
        Next::Request
    }

    /// Like [`fail`](Self::fail), except that a connection waiting for its slot (or for the server's
    /// FIN) has no request in flight: it is closed and keeps its place in the schedule. Only bytes no
    /// request asked for count, as `framing`; a reset of such a connection fails no request.
    fn fail_or_drop(&mut self, kind: ErrorKind, tally: &mut Tally) -> Next {
        if self.in_flight() {
            return self.fail(kind, tally);
        }
        if kind == ErrorKind::Framing {
            tally.errors.add(kind);
        }
        self.drop_idle()
    }

    /// Closes a connection with no request in flight. A draining one ends its request (already
    /// counted); one waiting for its slot keeps its place in the schedule.
    fn drop_idle(&mut self) -> Next {
        self.close();
        if self.phase == Phase::Draining {
            Next::Request
        } else {
            Next::Wait
        }
    }

    /// Fails a request past its deadline; gives up waiting for a FIN that does not come.
    pub(super) fn on_deadline(&mut self, now: Instant, tally: &mut Tally) -> Next {
        if self.deadline > now || !self.is_open() {
            Next::Wait
        } else if self.in_flight() {
            self.fail(ErrorKind::Timeout, tally)
        } else if self.phase == Phase::Draining {
            self.drop_idle()
        } else {
            Next::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LoadConfig;
    use crate::target::Target;
    use std::net::TcpListener;
    use std::time::Duration;

    /// A connection to a listener on loopback, its request already sent, and the server's end.
    fn connected(close: bool) -> (Connection, Plan, std::net::TcpStream, Tally) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Target::parse(&format!("http://{addr}/")).unwrap();
        let config = LoadConfig {
            close,
            ..LoadConfig::new(target, 1, Duration::from_secs(1))
        };
        let plan = Plan::new(&config).unwrap();
        let mut connection = Connection::new(Instant::now());
        connection.attach(TcpStream::connect(addr).unwrap());
        let (mut server, _) = listener.accept().unwrap();
        connection.begin(Instant::now(), Instant::now() + Duration::from_secs(5));
        let mut tally = Tally::new();
        while connection.phase != Phase::Receiving {
            assert_eq!(connection.send(&plan.request, &mut tally), Next::Wait);
        }
        // Read the request, so that closing the server's end sends a FIN, not a reset.
        let mut request = vec![0u8; plan.request.len()];
        server.read_exact(&mut request).unwrap();
        (connection, plan, server, tally)
    }

    /// Feeds the connection readable events until it asks for its next request (or 5 s pass).
    fn until_next(connection: &mut Connection, plan: &Plan, tally: &mut Tally) -> Next {
        let mut buffer = [0u8; 64];
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if connection.on_event(true, false, plan, &mut buffer, tally) == Next::Request {
                return Next::Request;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Next::Wait
    }

    /// The connection and its tally once the server answered `answer` (then closed, if `then_close`)
    /// and the connection asked for its next request.
    fn answered(answer: &[u8], then_close: bool) -> (Connection, Tally) {
        let (mut connection, plan, mut server, mut tally) = connected(false);
        server.write_all(answer).unwrap();
        if then_close {
            drop(server);
        }
        let next = until_next(&mut connection, &plan, &mut tally);
        assert_eq!(next, Next::Request);
        (connection, tally)
    }

    #[test]
    fn a_response_framed_by_length_is_a_success_and_keeps_the_socket() {
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
        response.extend([b'x'; 100]);
        let (connection, tally) = answered(&response, false);
        assert_eq!(
            (tally.requests, tally.errors.total(), tally.bytes),
            (1, 0, 140)
        );
        assert!(connection.is_open(), "keep-alive keeps the socket");
    }

    #[test]
    fn connection_close_drains_until_the_servers_fin() {
        let (mut connection, plan, mut server, mut tally) = connected(true);
        server
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let mut buffer = [0u8; 64];
        while connection.phase != Phase::Draining {
            let next = connection.on_event(true, false, &plan, &mut buffer, &mut tally);
            assert_eq!(next, Next::Wait);
        }
        assert_eq!(tally.requests, 1, "counted as soon as it is complete");
        drop(server);
        let next = until_next(&mut connection, &plan, &mut tally);
        assert_eq!(next, Next::Request);
        assert!(!connection.is_open());
    }

    #[test]
    fn extra_bytes_silence_and_a_cut_are_errors_of_their_kind() {
        let (mut connection, tally) =
            answered(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy", false);
        assert_eq!((tally.requests, tally.errors.framing), (0, 1));
        assert!(!connection.is_open());
        // Failed and closed, it waits for its next request: its deadline fails nothing more.
        let late = Instant::now() + Duration::from_secs(6);
        let mut later = Tally::new();
        assert_eq!(connection.on_deadline(late, &mut later), Next::Wait);
        assert_eq!(later.errors.total(), 0);

        let (mut connection, _plan, _server, mut tally) = connected(false);
        let now = Instant::now();
        assert_eq!(connection.on_deadline(now, &mut tally), Next::Wait);
        let late = now + Duration::from_secs(6);
        assert_eq!(connection.on_deadline(late, &mut tally), Next::Request);
        assert_eq!(tally.errors.timeout, 1);

        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        let (_, tally) = answered(cut, true);
        assert_eq!(
            tally.errors.framing, 1,
            "a body cut short is a framing error"
        );
    }
}
