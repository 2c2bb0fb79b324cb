//! The event-driven load engine: each worker thread drives its share of the connections with one `mio`
//! poll, in the spirit of `wrk` (closed loop: each connection sends its next request as soon as the
//! previous answer is in) and `wrk2` (`--rate`: each connection sends on a fixed schedule and latency is
//! measured from when a request *should* have started, so a stalled server cannot hide its stalls by
//! slowing the generator down — the "coordinated omission" correction).
//!
//! Efficiency is part of the contract: the generator shares two cores with the server, so every
//! microsecond it spends is taken from the server it measures. The hot loop therefore never allocates:
//! the request bytes are serialized once, responses are scanned incrementally from one read buffer per
//! thread (no per-connection buffers, which also keeps 10,000 idle connections cheap), and a read
//! shorter than the buffer is taken as "drained" instead of paying for one more `read` that would
//! return `WouldBlock`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::response::{Complete, Progress, ResponseScanner};
use crate::stats::{ErrorKind, LatencySummary, Report, Tally};
use crate::sys;
use crate::target::Target;
use crate::timer::SlotTimer;

/// Size of each worker's read buffer.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// The poll token of the `--rate` timer (connection tokens are indices, far below this).
const TIMER: Token = Token(usize::MAX);
/// Descriptors the process needs besides the connections (std streams, epoll, a spawned server's pipes).
const SPARE_DESCRIPTORS: u64 = 32;

/// Everything a load run needs to know.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The URL to request.
    pub target: Target,
    /// Connections (each with at most one request in flight).
    pub connections: usize,
    /// Worker threads; connections are split evenly.
    pub threads: usize,
    /// Stop after this long (at least one of `duration` and `requests` must be set).
    pub duration: Option<Duration>,
    /// Stop after this many requests have ended (successfully or not).
    pub requests: Option<u64>,
    /// Extra request headers, each `Name: value`.
    pub headers: Vec<String>,
    /// Open a new connection for every request and ask the server to close it (`Connection: close`).
    pub close: bool,
    /// A request (connection set-up included) that takes longer than this fails with `timeout`.
    pub timeout: Duration,
    /// Send at this constant total rate (requests per second) instead of as fast as possible.
    pub rate: Option<f64>,
    /// Spread source addresses over `127.0.0.1 ..= 127.0.0.N` (loopback targets only; 0 or 1: let the
    /// kernel choose). Each address has its own ~28k ephemeral ports.
    pub source_addresses: u8,
    /// Close each keep-alive connection after this many requests and open a new one (connection churn).
    pub requests_per_connection: Option<u64>,
}

impl LoadConfig {
    /// A closed-loop keep-alive run of `connections` connections on one thread for `duration`.
    #[must_use]
    pub fn new(target: Target, connections: usize, duration: Duration) -> Self {
        Self {
            target,
            connections,
            threads: 1,
            duration: Some(duration),
            requests: None,
            headers: Vec::new(),
            close: false,
            timeout: Duration::from_secs(5),
            rate: None,
            source_addresses: 1,
            requests_per_connection: None,
        }
    }
}

/// Why a run could not start.
#[derive(Debug)]
pub enum LoadError {
    /// Occurs when the options contradict each other or exceed what this machine allows.
    Config(String),
    /// Occurs when a worker's poll fails.
    Io(io::Error),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(message) => f.write_str(message),
            Self::Io(error) => write!(f, "load generator: {error}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<io::Error> for LoadError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// What a run measured: the summary and the merged tallies (with the full latency histogram).
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// The printable, serializable summary.
    pub report: Report,
    /// Raw counts and the latency histogram of all workers.
    pub tally: Tally,
    /// Connections that were open when the run ended.
    pub open_at_end: usize,
}

/// How a worker's connections stood when the run ended.
#[derive(Debug, Clone, Copy, Default)]
struct EndState {
    /// Established connections still open.
    open: usize,
    /// Requests sent (or being sent) and not answered: neither successes nor errors.
    in_flight: u64,
    /// CPU time of the worker thread.
    cpu: sys::CpuTime,
}

/// Runs the load described by `config` and waits for it to finish.
///
/// # Errors
///
/// [`LoadError::Config`] for impossible options (including more connections than the descriptor limit
/// allows), [`LoadError::Io`] when the event loop itself fails. Failed requests are not errors: they are
/// counted in the result.
pub fn run(config: &LoadConfig) -> Result<LoadResult, LoadError> {
    let plan = Plan::new(config)?;
    let threads = config.threads.clamp(1, config.connections);
    let started = Instant::now();
    let end = config
        .duration
        .map_or(started + Duration::from_secs(365 * 24 * 3600), |d| {
            started + d
        });
    let results: Vec<Result<(Tally, EndState), io::Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let share = WorkerShare::new(config, threads, thread);
                let plan = &plan;
                scope.spawn(move || Worker::new(plan, share, end)?.run())
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("load worker panicked")))
            })
            .collect()
    });
    let wall = started.elapsed();
    let mut cpu = sys::CpuTime::default();
    let mut tally = Tally::new();
    let mut open_at_end = 0;
    let mut in_flight = 0;
    for result in results {
        let (worker_tally, end_state) = result?;
        tally.merge(&worker_tally);
        open_at_end += end_state.open;
        cpu = cpu + end_state.cpu;
        in_flight += end_state.in_flight;
    }
    let mut report = summarize(config, threads, &tally, wall, cpu);
    report.in_flight_at_end = in_flight;
    Ok(LoadResult {
        report,
        tally,
        open_at_end,
    })
}

fn summarize(
    config: &LoadConfig,
    threads: usize,
    tally: &Tally,
    wall: Duration,
    cpu: sys::CpuTime,
) -> Report {
    let seconds = wall.as_secs_f64().max(1e-9);
    let outcomes = tally.outcomes().max(1) as f64;
    Report {
        url: config.target.url.clone(),
        mode: if config.close { "close" } else { "keep-alive" }.to_owned(),
        connections: config.connections,
        threads,
        target_rate: config.rate,
        duration_s: wall.as_secs_f64(),
        requests: tally.requests,
        errors: tally.errors,
        requests_per_s: tally.requests as f64 / seconds,
        bytes_per_s: tally.bytes as f64 / seconds,
        bytes: tally.bytes,
        connects: tally.connects,
        latency: LatencySummary::from_histogram(&tally.latency),
        client_cpu_user_s: cpu.user.as_secs_f64(),
        client_cpu_system_s: cpu.system.as_secs_f64(),
        client_cpu_us_per_request: cpu.total().as_secs_f64() * 1e6 / outcomes,
        in_flight_at_end: 0,
    }
}

/// The read-only part of a run, shared by all workers.
struct Plan {
    addr: SocketAddr,
    request: Vec<u8>,
    close: bool,
    timeout: Duration,
    requests_per_connection: Option<u64>,
    sources: Vec<IpAddr>,
}

impl Plan {
    fn new(config: &LoadConfig) -> Result<Self, LoadError> {
        if config.connections == 0 {
            return Err(LoadError::Config("need at least one connection".into()));
        }
        if config.duration.is_none() && config.requests.is_none() {
            return Err(LoadError::Config(
                "give a duration or a request count".into(),
            ));
        }
        if config
            .rate
            .is_some_and(|rate| !(rate > 0.0 && rate.is_finite()))
        {
            return Err(LoadError::Config(
                "the rate must be a positive number".into(),
            ));
        }
        if let Some(bad) = config
            .headers
            .iter()
            .find(|h| !h.contains(':') || h.bytes().any(|b| b.is_ascii_control()))
        {
            return Err(LoadError::Config(format!(
                "header {bad:?} is not `Name: value` on one line"
            )));
        }
        check_descriptors(config.connections)?;
        Ok(Self {
            addr: config.target.addr,
            request: config.target.request_bytes(&config.headers, config.close),
            close: config.close,
            timeout: config.timeout,
            requests_per_connection: config.requests_per_connection,
            sources: source_addresses(config)?,
        })
    }
}

/// Raises the descriptor limit and fails clearly when it cannot hold every connection.
fn check_descriptors(connections: usize) -> Result<(), LoadError> {
    let limit = sys::raise_nofile_limit()?;
    let needed = connections as u64 + SPARE_DESCRIPTORS;
    if needed > limit.soft {
        return Err(LoadError::Config(format!(
            "{connections} connections need about {needed} descriptors, but this process may open only {} \
             (RLIMIT_NOFILE soft {}, hard {}); the hard limit can only be raised by root \
             (`ulimit -Hn`, /etc/security/limits.conf or the container's settings): use fewer connections \
             or run several generators",
            limit.soft, limit.soft, limit.hard
        )));
    }
    Ok(())
}

fn source_addresses(config: &LoadConfig) -> Result<Vec<IpAddr>, LoadError> {
    if config.source_addresses <= 1 {
        return Ok(Vec::new());
    }
    if !config.target.addr.ip().is_loopback() || !config.target.addr.is_ipv4() {
        return Err(LoadError::Config(
            "source addresses can only be spread for a 127.0.0.x target".into(),
        ));
    }
    Ok((1..=config.source_addresses)
        .map(|host| IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
        .collect())
}

/// One worker's share of the run.
struct WorkerShare {
    first_connection: usize,
    connections: usize,
    requests: Option<u64>,
    /// Time between two requests of one connection, with `--rate`.
    interval: Option<Duration>,
}

impl WorkerShare {
    fn new(config: &LoadConfig, threads: usize, thread: usize) -> Self {
        let connections = split_for(config.connections, threads, thread);
        let first_connection = (0..thread)
            .map(|t| split_for(config.connections, threads, t))
            .sum();
        let split = |total: u64| {
            total / threads as u64 + u64::from((thread as u64) < total % threads as u64)
        };
        let interval = config.rate.map(|rate| {
            let per_connection = rate / config.connections as f64;
            Duration::from_secs_f64(1.0 / per_connection)
        });
        Self {
            first_connection,
            connections,
            requests: config.requests.map(split),
            interval,
        }
    }
}

fn split_for(total: usize, parts: usize, part: usize) -> usize {
    total / parts + usize::from(part < total % parts)
}

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
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

/// What an event says about a socket.
#[derive(Debug, Clone, Copy)]
struct Readiness {
    /// There may be bytes (or an end of file, or an error) to read.
    readable: bool,
    /// The peer has closed its side (or the socket failed).
    closed: bool,
}

/// Per-connection state; deliberately small and allocation-free.
struct Conn {
    stream: Option<TcpStream>,
    phase: Phase,
    established: bool,
    written: usize,
    served: u64,
    scanner: ResponseScanner,
    /// Where this request's latency is measured from.
    origin: Instant,
    deadline: Instant,
    /// With `--rate`: the intended start of the next request.
    slot: Instant,
}

struct Worker<'a> {
    plan: &'a Plan,
    share: WorkerShare,
    poll: Poll,
    conns: Vec<Conn>,
    buffer: Box<[u8]>,
    tally: Tally,
    /// Connections ready to start their next request, handled after the current batch of events.
    ready: Vec<usize>,
    /// With `--rate`: connections waiting for their slot, soonest first.
    schedule: BinaryHeap<Reverse<(Instant, usize)>>,
    /// With `--rate`: wakes the loop at the next slot, finer than the poll's millisecond timeout.
    timer: Option<SlotTimer>,
    started_requests: u64,
    end: Instant,
}

impl<'a> Worker<'a> {
    fn new(plan: &'a Plan, share: WorkerShare, end: Instant) -> io::Result<Self> {
        let now = Instant::now();
        let conns = (0..share.connections)
            .map(|_| Conn {
                stream: None,
                phase: Phase::Closed,
                established: false,
                written: 0,
                served: 0,
                scanner: ResponseScanner::new(),
                origin: now,
                deadline: now,
                slot: now,
            })
            .collect();
        let poll = Poll::new()?;
        let timer = match share.interval {
            Some(_) => Some(SlotTimer::new(poll.registry(), TIMER)?),
            None => None,
        };
        Ok(Self {
            plan,
            poll,
            timer,
            conns,
            buffer: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            tally: Tally::new(),
            ready: Vec::with_capacity(share.connections),
            schedule: BinaryHeap::with_capacity(share.connections),
            started_requests: 0,
            end,
            share,
        })
    }

    /// Runs until the end time or the request budget; returns the tallies and the open connections.
    fn run(mut self) -> io::Result<(Tally, EndState)> {
        let cpu_before = sys::thread_cpu_time();
        self.start_all(Instant::now());
        let mut events = Events::with_capacity(1024);
        let sweep_every =
            (self.plan.timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(100));
        let mut next_sweep = Instant::now() + sweep_every;
        let mut batch = Vec::with_capacity(self.conns.len());
        loop {
            let now = Instant::now();
            if now >= self.end || self.budget_spent() {
                break;
            }
            self.release_due(now);
            if now >= next_sweep {
                self.sweep_timeouts(now);
                next_sweep = now + sweep_every;
            }
            std::mem::swap(&mut batch, &mut self.ready);
            for conn_idx in batch.drain(..) {
                self.begin_request(conn_idx, None);
            }
            let wake = self.next_wake(next_sweep)?;
            let timeout = if self.ready.is_empty() {
                wake.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            for event in &events {
                if event.token() == TIMER {
                    if let Some(timer) = self.timer.as_mut() {
                        timer.acknowledge();
                    }
                    continue;
                }
                let readiness = Readiness {
                    readable: event.is_readable() || event.is_read_closed() || event.is_error(),
                    closed: event.is_read_closed() || event.is_error(),
                };
                self.on_event(event.token().0, readiness);
            }
        }
        let open = self
            .conns
            .iter()
            .filter(|conn| conn.stream.is_some() && conn.established)
            .count();
        let in_flight = self
            .conns
            .iter()
            .filter(|conn| {
                matches!(
                    conn.phase,
                    Phase::Connecting | Phase::Sending | Phase::Receiving
                )
            })
            .count() as u64;
        // Closing the sockets is part of the run's cost: close them before reading the CPU time.
        self.conns.clear();
        let cpu = sys::thread_cpu_time().since(cpu_before);
        let end_state = EndState {
            open,
            in_flight,
            cpu,
        };
        Ok((self.tally, end_state))
    }

    fn budget_spent(&self) -> bool {
        self.share
            .requests
            .is_some_and(|budget| self.tally.outcomes() >= budget)
    }

    /// When the poll must return at the latest: the end, the next timeout sweep, and (without the
    /// timer) the next slot. With the timer, it is armed for the next slot instead.
    fn next_wake(&mut self, next_sweep: Instant) -> io::Result<Instant> {
        let mut wake = self.end.min(next_sweep);
        if let Some(&Reverse((slot, _))) = self.schedule.peek() {
            match self.timer.as_mut() {
                Some(timer) => timer.arm(slot)?,
                None => wake = wake.min(slot),
            }
        }
        Ok(wake)
    }

    /// Starts every connection: at once in a closed loop, staggered over one interval with `--rate`.
    fn start_all(&mut self, now: Instant) {
        let count = self.conns.len() as u32;
        for conn_idx in 0..self.conns.len() {
            match self.share.interval {
                Some(interval) => {
                    let slot = now + interval / count.max(1) * conn_idx as u32;
                    self.conns[conn_idx].slot = slot;
                    self.conns[conn_idx].phase = Phase::Idle;
                    self.schedule.push(Reverse((slot, conn_idx)));
                }
                None => self.ready.push(conn_idx),
            }
        }
    }

    /// Starts the requests whose slot has come.
    fn release_due(&mut self, now: Instant) {
        while let Some(&Reverse((slot, conn_idx))) = self.schedule.peek() {
            if slot > now {
                break;
            }
            self.schedule.pop();
            self.begin_request(conn_idx, Some(slot));
        }
    }

    /// Marks a connection ready for its next request (now, or at its next slot with `--rate`).
    fn next(&mut self, conn_idx: usize) {
        match self.share.interval {
            Some(interval) => {
                let conn = &mut self.conns[conn_idx];
                conn.slot += interval;
                conn.phase = Phase::Idle;
                self.schedule.push(Reverse((conn.slot, conn_idx)));
            }
            None => self.ready.push(conn_idx),
        }
    }

    /// Starts one request on a connection, opening it first if needed. `origin` is the intended start
    /// with `--rate`; otherwise latency counts from now.
    fn begin_request(&mut self, conn_idx: usize, origin: Option<Instant>) {
        if self
            .share
            .requests
            .is_some_and(|budget| self.started_requests >= budget)
        {
            self.close(conn_idx);
            self.conns[conn_idx].phase = Phase::Closed;
            return;
        }
        self.started_requests += 1;
        let now = Instant::now();
        let conn = &mut self.conns[conn_idx];
        conn.origin = origin.unwrap_or(now);
        conn.deadline = now + self.plan.timeout;
        conn.written = 0;
        conn.scanner.reset();
        if conn.stream.is_some() {
            conn.phase = Phase::Sending;
        } else if let Err(kind) = self.open(conn_idx) {
            self.fail(conn_idx, kind);
            return;
        }
        self.try_send(conn_idx);
    }

    /// Opens a non-blocking connection and registers it for both directions (edge-triggered, so it is
    /// registered once and never modified).
    fn open(&mut self, conn_idx: usize) -> Result<(), ErrorKind> {
        self.tally.connects += 1;
        let source = match self.plan.sources.len() {
            0 => None,
            n => Some(self.plan.sources[(self.share.first_connection + conn_idx) % n]),
        };
        let mut stream = connect(self.plan.addr, source).map_err(|_| ErrorKind::Connect)?;
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(conn_idx),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|_| ErrorKind::Connect)?;
        let conn = &mut self.conns[conn_idx];
        conn.stream = Some(stream);
        conn.established = false;
        conn.served = 0;
        conn.phase = Phase::Connecting;
        Ok(())
    }

    /// Handles readiness. A writable-only event (the end of a handshake whose request already went out)
    /// is skipped while reading: a `read` would only say `WouldBlock`.
    fn on_event(&mut self, conn_idx: usize, readiness: Readiness) {
        let Some(conn) = self.conns.get(conn_idx) else {
            return;
        };
        match conn.phase {
            Phase::Connecting | Phase::Sending => self.try_send(conn_idx),
            Phase::Receiving | Phase::Draining | Phase::Idle if readiness.readable => {
                self.on_readable(conn_idx, readiness.closed);
            }
            Phase::Receiving | Phase::Draining | Phase::Idle | Phase::Closed => {}
        }
    }

    /// Writes what is left of the request. A socket still connecting answers `WouldBlock` (or
    /// `NotConnected`): the writable event that ends the handshake brings us back.
    fn try_send(&mut self, conn_idx: usize) {
        let request = &self.plan.request;
        let conn = &mut self.conns[conn_idx];
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        while conn.written < request.len() {
            match stream.write(&request[conn.written..]) {
                // A stream socket never accepts zero bytes of a non-empty buffer; never spin on it.
                Ok(0) => return self.fail(conn_idx, ErrorKind::Reset),
                Ok(n) => {
                    conn.written += n;
                    conn.established = true;
                    conn.phase = Phase::Sending;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::NotConnected && !conn.established => {
                    return;
                }
                Err(_) => {
                    let kind = if conn.established {
                        ErrorKind::Reset
                    } else {
                        ErrorKind::Connect
                    };
                    self.fail(conn_idx, kind);
                    return;
                }
            }
        }
        conn.phase = Phase::Receiving;
    }

    /// Reads until the socket is drained, feeding the scanner. `closed` says the event also reported the
    /// peer's FIN, which a short read does not reveal: then reading goes on until end of file.
    fn on_readable(&mut self, conn_idx: usize, closed: bool) {
        loop {
            let conn = &mut self.conns[conn_idx];
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            let n_bytes = match stream.read(&mut self.buffer) {
                Ok(0) => return self.on_close(conn_idx),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    let refused =
                        error.kind() == io::ErrorKind::ConnectionRefused && !conn.established;
                    let kind = if refused {
                        ErrorKind::Connect
                    } else {
                        ErrorKind::Reset
                    };
                    return self.fail_or_drop(conn_idx, kind);
                }
            };
            self.tally.bytes += n_bytes as u64;
            conn.established = true;
            if conn.phase != Phase::Receiving {
                // Bytes no request asked for: the server answered twice or sent garbage.
                return self.fail_or_drop(conn_idx, ErrorKind::Framing);
            }
            match conn.scanner.feed(&self.buffer[..n_bytes]) {
                Ok(Progress::Partial) => {}
                Ok(Progress::Complete(done)) if done.consumed < n_bytes => {
                    return self.fail(conn_idx, ErrorKind::Framing);
                }
                Ok(Progress::Complete(done)) => {
                    if !self.on_complete(conn_idx, done) {
                        return;
                    }
                }
                Err(_) => return self.fail(conn_idx, ErrorKind::Framing),
            }
            // A read shorter than the buffer emptied the socket: with edge-triggered readiness the next
            // bytes raise a new event, so one more read would only return WouldBlock.
            if n_bytes < self.buffer.len()
                && !closed
                && self.conns[conn_idx].phase == Phase::Receiving
            {
                return;
            }
        }
    }

    /// The peer closed its side.
    fn on_close(&mut self, conn_idx: usize) {
        let conn = &mut self.conns[conn_idx];
        match conn.phase {
            Phase::Receiving if conn.scanner.started() => match conn.scanner.finish_on_close() {
                Ok(done) => {
                    self.close(conn_idx);
                    self.record(conn_idx, done.status);
                    self.next(conn_idx);
                }
                Err(_) => self.fail(conn_idx, ErrorKind::Framing),
            },
            Phase::Receiving | Phase::Sending | Phase::Connecting => {
                self.fail(conn_idx, ErrorKind::Reset)
            }
            Phase::Draining => {
                self.close(conn_idx);
                self.next(conn_idx);
            }
            // A server may close an idle keep-alive connection; the next slot reconnects.
            Phase::Idle | Phase::Closed => self.close(conn_idx),
        }
    }

    /// A response is complete; returns whether to keep reading this socket (to see the server's FIN).
    fn on_complete(&mut self, conn_idx: usize, done: Complete) -> bool {
        self.record(conn_idx, done.status);
        let plan = self.plan;
        let conn = &mut self.conns[conn_idx];
        conn.served += 1;
        let churn = plan
            .requests_per_connection
            .is_some_and(|limit| conn.served >= limit);
        if !done.keep_alive {
            conn.phase = Phase::Draining;
            conn.deadline = Instant::now() + plan.timeout;
            return true;
        }
        if plan.close || churn {
            self.close(conn_idx);
        }
        self.next(conn_idx);
        false
    }

    fn record(&mut self, conn_idx: usize, status: u16) {
        if (200..300).contains(&status) {
            self.tally.success(self.conns[conn_idx].origin.elapsed());
        } else {
            self.tally.errors.add(ErrorKind::Status);
        }
    }

    /// Counts a failed request, closes its connection, and moves on to the next request.
    fn fail(&mut self, conn_idx: usize, kind: ErrorKind) {
        self.tally.errors.add(kind);
        self.close(conn_idx);
        self.next(conn_idx);
    }

    /// Like [`fail`](Self::fail), except that a connection waiting for its slot (or for the server's
    /// FIN) has no request in flight: it is closed (and keeps its place in the schedule). Only bytes
    /// that no request asked for count, as `framing`; a reset of such a connection fails no request.
    fn fail_or_drop(&mut self, conn_idx: usize, kind: ErrorKind) {
        let phase = self.conns[conn_idx].phase;
        if !matches!(phase, Phase::Idle | Phase::Draining) {
            return self.fail(conn_idx, kind);
        }
        if kind == ErrorKind::Framing {
            self.tally.errors.add(kind);
        }
        self.close(conn_idx);
        if phase == Phase::Draining {
            self.next(conn_idx);
        }
    }

    fn close(&mut self, conn_idx: usize) {
        // Dropping the stream closes the descriptor, which also removes it from the epoll set.
        self.conns[conn_idx].stream = None;
        self.conns[conn_idx].established = false;
    }

    /// Fails every request past its deadline; gives up waiting for a FIN that does not come.
    fn sweep_timeouts(&mut self, now: Instant) {
        for conn_idx in 0..self.conns.len() {
            let conn = &self.conns[conn_idx];
            if conn.deadline > now {
                continue;
            }
            match conn.phase {
                Phase::Connecting | Phase::Sending | Phase::Receiving => {
                    self.fail(conn_idx, ErrorKind::Timeout)
                }
                Phase::Draining => {
                    self.close(conn_idx);
                    self.next(conn_idx);
                }
                Phase::Idle | Phase::Closed => {}
            }
        }
    }
}

/// Starts a non-blocking connect, optionally from a chosen source address.
fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_nodelay(true)?;
    if let Some(source) = source {
        bind_address_no_port(&socket)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(error) => return Err(error),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(socket)))
}

/// Asks Linux to pick the source port at `connect`, not at `bind`: a port bound without knowing the
/// destination must be unique per address, which would cap each source address at ~28k connections in
/// total instead of per destination.
fn bind_address_no_port(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let enable: libc::c_int = 1;
    // SAFETY: the descriptor is owned by `socket` and open; the option value is a valid c_int whose size
    // is passed alongside.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const enable).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
