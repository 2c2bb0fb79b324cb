//! The plan of a load run: the options ([`LoadConfig`]), checked once, and how connections, requests
//! and the `--rate` schedule are split over the worker threads.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::sys;
use crate::target::Target;

/// Descriptors the process needs besides the connections (std streams, epoll, a spawned server's pipes).
const SPARE_DESCRIPTORS: u64 = 32;

/// Everything a load run needs to know; also the options of `bench load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadConfig {
    /// The URL to request, e.g. http://127.0.0.1:7080/index.html.
    #[arg(value_name = "URL", value_parser = Target::parse)]
    pub target: Target,
    /// Connections to keep open (at most one request in flight on each).
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,
    /// Worker threads (each drives its share of the connections with one event loop).
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// How long to run, e.g. 10s or 1m (`bench load`: 10s unless -n is given).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests have ended (successfully or not).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// An extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// A new connection for every request (`Connection: close`): measures accept/fork/spawn cost.
    #[arg(long)]
    pub close: bool,
    /// A request (connection set-up included) that takes longer than this fails as `timeout`.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Constant total rate in requests per second; latency then counts from each request's intended
    /// start (the coordinated-omission correction of wrk2).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Spread source addresses over 127.0.0.1..=127.0.0.N (each has ~28k ephemeral ports; 0 or 1:
    /// let the kernel choose).
    #[arg(long, default_value_t = 1)]
    pub source_addresses: u8,
    /// Close each keep-alive connection after this many requests (connection churn).
    #[arg(long)]
    pub requests_per_connection: Option<u64>,
    /// With --rate: open the connections (their first requests) over this long instead of over
    /// one interval, so that a hundred thousand of them do not arrive in a few seconds.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ramp: Option<Duration>,
    /// At the end, start no more requests and wait up to this long for those in flight to be
    /// answered, so that "unanswered" counts only requests the server really left waiting.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub drain: Option<Duration>,
    /// Also report the latency of the requests that start this long after the run does
    /// (`c10k`: once every connection is open, the requests made while all are held).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub held_after: Option<Duration>,
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
            ramp: None,
            drain: None,
            held_after: None,
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

/// The read-only part of a run, shared by all workers.
pub(super) struct Plan {
    pub(super) addr: SocketAddr,
    pub(super) request: Vec<u8>,
    pub(super) close: bool,
    pub(super) timeout: Duration,
    pub(super) drain: Duration,
    pub(super) requests_per_connection: Option<u64>,
    pub(super) sources: Vec<IpAddr>,
    /// When the requests of the held latency begin (`--held-after` from now).
    pub(super) held_from: Option<std::time::Instant>,
}

impl Plan {
    pub(super) fn new(config: &LoadConfig) -> Result<Self, LoadError> {
        let bad_rate = config
            .rate
            .is_some_and(|rate| !(rate > 0.0 && rate.is_finite()));
        let endless = config.duration.is_none() && config.requests.is_none();
        let refusals = [
            (config.connections == 0, "need at least one connection"),
            (endless, "give a duration or a request count"),
            (bad_rate, "the rate must be a positive number"),
        ];
        if let Some(&(_, why)) = refusals.iter().find(|(refused, _)| *refused) {
            return Err(LoadError::Config(why.to_owned()));
        }
        let one_line = |h: &String| h.contains(':') && !h.bytes().any(|b| b.is_ascii_control());
        if let Some(bad) = config.headers.iter().find(|h| !one_line(h)) {
            let why = format!("header {bad:?} is not `Name: value` on one line");
            return Err(LoadError::Config(why));
        }
        check_descriptors(config.connections)?;
        Ok(Self {
            addr: config.target.addr,
            request: config.target.request_bytes(&config.headers, config.close),
            close: config.close,
            timeout: config.timeout,
            drain: config.drain.unwrap_or(Duration::ZERO),
            held_from: config
                .held_after
                .map(|after| std::time::Instant::now() + after),
            requests_per_connection: config.requests_per_connection,
            sources: source_addresses(config)?,
        })
    }
}

/// Raises the descriptor limit and fails clearly when it cannot hold every connection.
///
/// # Errors
///
/// [`LoadError::Config`] when the hard limit is too low, [`LoadError::Io`] when it cannot be read or
/// set.
pub fn check_descriptors(connections: usize) -> Result<(), LoadError> {
    // The soft limit is now the hard one, which only root can raise.
    let limit = sys::raise_nofile_limit()?;
    let needed = connections as u64 + SPARE_DESCRIPTORS;
    if needed > limit {
        return Err(LoadError::Config(format!(
            "{connections} connections need about {needed} descriptors, but this process may open only {limit} \
             (RLIMIT_NOFILE soft {limit}, hard {limit}); the hard limit can only be raised by root \
             (`ulimit -Hn`, /etc/security/limits.conf or the container's settings): use fewer connections \
             or run several generators"
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
pub(super) struct WorkerShare {
    pub(super) first_connection: usize,
    pub(super) connections: usize,
    /// The requests this worker may start (`u64::MAX`: no budget).
    pub(super) requests: u64,
    /// Time between two requests of one connection, with `--rate`.
    pub(super) interval: Option<Duration>,
    /// With `--rate`, how long the first requests are spread over (default: one interval).
    pub(super) ramp: Option<Duration>,
}

impl WorkerShare {
    pub(super) fn new(config: &LoadConfig, threads: usize, thread: usize) -> Self {
        let share_of = |total: u64, thread: usize| {
            let threads = threads as u64;
            total / threads + u64::from((thread as u64) < total % threads)
        };
        let connections = config.connections as u64;
        Self {
            first_connection: (0..thread).map(|t| share_of(connections, t) as usize).sum(),
            connections: share_of(connections, thread) as usize,
            requests: config
                .requests
                .map_or(u64::MAX, |total| share_of(total, thread)),
            // Each connection sends every `connections / rate` seconds.
            interval: config
                .rate
                .map(|rate| Duration::from_secs_f64(connections as f64 / rate)),
            ramp: config.ramp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(connections: usize) -> LoadConfig {
        let target = Target::parse("http://127.0.0.1:9/").unwrap();
        LoadConfig::new(target, connections, Duration::from_secs(1))
    }

    #[test]
    fn refuses_impossible_options() {
        let refused = |change: fn(&mut LoadConfig)| {
            let mut config = config(1);
            change(&mut config);
            matches!(Plan::new(&config), Err(LoadError::Config(_)))
        };
        assert!(refused(|config| config.connections = 0));
        assert!(refused(|config| config.duration = None));
        assert!(refused(|config| config.rate = Some(0.0)));
        assert!(refused(|config| config.rate = Some(f64::NAN)));
        assert!(refused(|config| config.headers = vec!["no colon".into()]));
        assert!(refused(
            |config| config.headers = vec!["A: b\r\nC: d".into()]
        ));
        let too_many = |config: &mut LoadConfig| config.connections = 100_000_000;
        assert!(refused(too_many), "more connections than descriptors");
        let mut spread = config(1);
        spread.source_addresses = 3;
        assert_eq!(Plan::new(&spread).unwrap().sources.len(), 3);
    }

    #[test]
    fn splits_connections_requests_and_rate_over_threads() {
        let config = LoadConfig {
            requests: Some(10),
            rate: Some(100.0),
            ..config(7)
        };
        let shares: Vec<WorkerShare> = (0..3)
            .map(|thread| WorkerShare::new(&config, 3, thread))
            .collect();
        let connections: Vec<usize> = shares.iter().map(|s| s.connections).collect();
        assert_eq!(connections, [3, 2, 2]);
        let firsts: Vec<usize> = shares.iter().map(|s| s.first_connection).collect();
        assert_eq!(firsts, [0, 3, 5]);
        assert_eq!(shares.iter().map(|s| s.requests).sum::<u64>(), 10);
        // 100 requests/s over 7 connections: each sends every 70 ms.
        let interval = shares[0].interval.unwrap().as_secs_f64();
        assert!((interval - 0.07).abs() < 1e-9, "{interval}");
    }
}
