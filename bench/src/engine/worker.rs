//! One worker thread's event loop: a `mio` poll over its share of the connections, the `--rate`
//! schedule (a heap of slots and a `timerfd`), the timeout sweep, and the request budget. What happens
//! on one connection is [`Connection`]'s business; the worker only acts on its [`Next`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

use super::connection::{Connection, Next, Phase};
use super::plan::{Plan, WorkerShare};
use crate::stats::{ErrorKind, Tally};
use crate::sys::{self, SlotTimer};

/// Size of each worker's read buffer.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// The poll token of the `--rate` timer (connection tokens are indices, far below this).
const TIMER: Token = Token(usize::MAX);

/// What a worker counted, and how its connections stood when the run ended.
#[derive(Debug, Clone, Default)]
pub(super) struct EndState {
    pub(super) tally: Tally,
    /// Established connections still open.
    pub(super) open: usize,
    /// Requests sent (or being sent) and not answered: neither successes nor errors.
    pub(super) in_flight: u64,
    /// Connections none of whose requests ended during the run.
    pub(super) starved: u64,
    /// CPU time of the worker thread.
    pub(super) cpu: sys::CpuTime,
}

impl EndState {
    /// Adds another worker's.
    pub(super) fn merge(&mut self, other: &Self) {
        self.tally.merge(&other.tally);
        self.open += other.open;
        self.in_flight += other.in_flight;
        self.starved += other.starved;
        self.cpu = self.cpu + other.cpu;
    }
}

pub(super) struct Worker<'a> {
    plan: &'a Plan,
    share: WorkerShare,
    poll: Poll,
    conns: Vec<Connection>,
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
    pub(super) fn new(plan: &'a Plan, share: WorkerShare, end: Instant) -> io::Result<Self> {
        let now = Instant::now();
        let poll = Poll::new()?;
        let timer = share
            .interval
            .map(|_| SlotTimer::new(poll.registry(), TIMER))
            .transpose()?;
        Ok(Self {
            plan,
            poll,
            timer,
            conns: (0..share.connections)
                .map(|_| Connection::new(now))
                .collect(),
            buffer: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            tally: Tally {
                held_from: plan.held_from,
                ..Tally::new()
            },
            ready: Vec::with_capacity(share.connections),
            schedule: BinaryHeap::with_capacity(share.connections),
            started_requests: 0,
            end,
            share,
        })
    }

    /// Runs until the end time or the request budget.
    pub(super) fn run(mut self) -> io::Result<EndState> {
        let cpu_before = sys::thread_cpu_time();
        self.start_all(Instant::now());
        let mut events = Events::with_capacity(1024);
        let sweep_every =
            (self.plan.timeout / 4).clamp(Duration::from_millis(1), Duration::from_millis(100));
        let mut next_sweep = Instant::now() + sweep_every;
        let mut batch = Vec::with_capacity(self.conns.len());
        loop {
            let now = Instant::now();
            let draining = now >= self.end;
            if draining && self.drained(now) || self.budget_spent() {
                break;
            }
            if !draining {
                self.release_due(now);
            }
            if now >= next_sweep {
                for index in 0..self.conns.len() {
                    let next = self.conns[index].on_deadline(now, &mut self.tally);
                    self.follow(index, next);
                }
                next_sweep = now + sweep_every;
            }
            if !draining {
                std::mem::swap(&mut batch, &mut self.ready);
                for index in batch.drain(..) {
                    self.begin_request(index, None);
                }
            } else {
                self.ready.clear();
            }
            let wake = if draining {
                (self.end + self.plan.drain).min(next_sweep)
            } else {
                self.next_wake(next_sweep)?
            };
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
                let index = event.token().0;
                let closed = event.is_read_closed() || event.is_error();
                let readable = event.is_readable() || closed;
                if let Some(conn) = self.conns.get_mut(index) {
                    let (buffer, tally) = (&mut self.buffer, &mut self.tally);
                    let next = conn.on_event(readable, closed, self.plan, buffer, tally);
                    self.follow(index, next);
                }
            }
        }
        let count = |test: fn(&Connection) -> bool| self.conns.iter().filter(|c| test(c)).count();
        let (open, in_flight) = (
            count(Connection::is_established),
            count(Connection::in_flight),
        );
        let starved = count(|conn| conn.ended == 0);
        // Closing the sockets is part of the run's cost: close them before reading the CPU time.
        self.conns.clear();
        Ok(EndState {
            tally: self.tally,
            open,
            in_flight: in_flight as u64,
            starved: starved as u64,
            cpu: sys::thread_cpu_time().since(cpu_before),
        })
    }

    /// Past the end: whether the drain is over (its time is up, or no request is in flight).
    fn drained(&self, now: Instant) -> bool {
        now >= self.end + self.plan.drain || !self.conns.iter().any(Connection::in_flight)
    }

    fn budget_spent(&self) -> bool {
        self.tally.outcomes() >= self.share.requests
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

    /// Starts every connection: at once in a closed loop, staggered over one interval (or the
    /// ramp) with `--rate`.
    fn start_all(&mut self, now: Instant) {
        let count = self.conns.len() as u32;
        for index in 0..self.conns.len() {
            match self.share.interval {
                Some(interval) => {
                    let ramp = self.share.ramp.unwrap_or(interval);
                    self.wait_for_slot(index, now + ramp / count * index as u32);
                }
                None => self.ready.push(index),
            }
        }
    }

    /// Makes a connection wait for its next request's slot.
    fn wait_for_slot(&mut self, index: usize, slot: Instant) {
        self.conns[index].slot = slot;
        self.conns[index].phase = Phase::Idle;
        self.schedule.push(Reverse((slot, index)));
    }

    /// Starts the requests whose slot has come.
    fn release_due(&mut self, now: Instant) {
        while let Some(&Reverse((slot, index))) = self.schedule.peek() {
            if slot > now {
                break;
            }
            self.schedule.pop();
            self.begin_request(index, Some(slot));
        }
    }

    /// Acts on what a connection asked for: its next request, now or at its next slot with `--rate`.
    fn follow(&mut self, index: usize, next: Next) {
        if next == Next::Wait {
            return;
        }
        match self.share.interval {
            Some(interval) => self.wait_for_slot(index, self.conns[index].slot + interval),
            None => self.ready.push(index),
        }
    }

    /// Starts one request on a connection, opening it first if needed. `origin` is the intended start
    /// with `--rate`; otherwise latency counts from now.
    fn begin_request(&mut self, index: usize, origin: Option<Instant>) {
        if self.started_requests >= self.share.requests {
            self.conns[index].close();
            self.conns[index].phase = Phase::Closed;
            return;
        }
        self.started_requests += 1;
        let now = Instant::now();
        self.conns[index].begin(origin.unwrap_or(now), now + self.plan.timeout);
        if !self.conns[index].is_open() {
            self.tally.connects += 1;
            match self.open(index) {
                Ok(stream) => self.conns[index].attach(stream),
                Err(_) => {
                    let next = self.conns[index].fail(ErrorKind::Connect, &mut self.tally);
                    return self.follow(index, next);
                }
            }
        }
        let next = self.conns[index].send(&self.plan.request, &mut self.tally);
        self.follow(index, next);
    }

    /// Opens a non-blocking connection and registers it for both directions (edge-triggered, so it
    /// is registered once and never modified).
    fn open(&mut self, index: usize) -> io::Result<TcpStream> {
        let sources = &self.plan.sources;
        let source = (!sources.is_empty())
            .then(|| sources[(self.share.first_connection + index) % sources.len()]);
        let mut stream = connect(self.plan.addr, source)?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.poll
            .registry()
            .register(&mut stream, Token(index), interest)?;
        Ok(stream)
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
        // Let Linux pick the source port at `connect`, not at `bind`: a port bound without knowing
        // the destination must be unique per address, which would cap each source address at ~28k
        // connections in total instead of per destination.
        setsockopt(&socket, sockopt::IpBindAddressNoPort, &true)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {}
        Err(error) => return Err(error),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(socket)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LoadConfig;
    use crate::target::Target;
    use std::io::{Read, Write};

    /// A loopback server that answers every request on every connection with an empty 204.
    fn answering_server() -> Target {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buffer) {
                        let requests = buffer[..n].windows(4).filter(|w| w == b"\r\n\r\n").count();
                        for _ in 0..requests {
                            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                        }
                        if n == 0 {
                            return;
                        }
                    }
                });
            }
        });
        Target::parse(&format!("http://{addr}/")).unwrap()
    }

    /// Runs one worker over all of `config` until its duration ends.
    fn run_worker(config: &LoadConfig) -> EndState {
        let plan = Plan::new(config).unwrap();
        let end = Instant::now() + config.duration.unwrap();
        let worker = Worker::new(&plan, WorkerShare::new(config, 1, 0), end).unwrap();
        worker.run().unwrap()
    }

    #[test]
    fn runs_a_budget_over_its_connections_then_stops() {
        let config = LoadConfig {
            requests: Some(50),
            ..LoadConfig::new(answering_server(), 3, Duration::from_secs(10))
        };
        let EndState { tally, starved, .. } = run_worker(&config);
        assert_eq!(
            (tally.requests, tally.errors.total(), tally.connects),
            (50, 0, 3)
        );
        assert_eq!(starved, 0, "every connection had requests answered");
    }

    #[test]
    fn paces_requests_at_the_rate_and_counts_refused_connects() {
        let rate = LoadConfig {
            rate: Some(200.0),
            ..LoadConfig::new(answering_server(), 2, Duration::from_millis(500))
        };
        let tally = run_worker(&rate).tally;
        assert!(
            (80..=110).contains(&tally.requests),
            "200/s for 0.5 s gave {}",
            tally.requests
        );

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let target = Target::parse(&format!("http://{port}/")).unwrap();
        let refused = LoadConfig {
            requests: Some(5),
            ..LoadConfig::new(target, 1, Duration::from_secs(5))
        };
        assert_eq!(run_worker(&refused).tally.errors.connect, 5);
    }
}
