//! What one load run measured: counts, errors by kind, an HDR latency histogram, and the summary that
//! is printed or written as JSON.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The longest latency the histogram records exactly, in nanoseconds (one hour); longer ones saturate.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// The kinds of failure the generator counts. Every request ends either as a success or as exactly one
/// of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Occurs when a connection cannot be established (refused, unreachable, no descriptor left).
    Connect,
    /// Occurs when an established connection is reset or closed before any byte of the response.
    Reset,
    /// Occurs when a response (or a connection attempt) takes longer than the timeout.
    Timeout,
    /// Occurs when a well-framed response has a status outside 2xx.
    Status,
    /// Occurs when a response is malformed, truncated, or followed by unsolicited bytes.
    Framing,
}

/// How many requests ended in each [`ErrorKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// See [`ErrorKind::Connect`].
    pub connect: u64,
    /// See [`ErrorKind::Reset`].
    pub reset: u64,
    /// See [`ErrorKind::Timeout`].
    pub timeout: u64,
    /// See [`ErrorKind::Status`].
    pub status: u64,
    /// See [`ErrorKind::Framing`].
    pub framing: u64,
}

impl ErrorCounts {
    /// Counts one error.
    pub fn add(&mut self, kind: ErrorKind) {
        let counter = match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Reset => &mut self.reset,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Status => &mut self.status,
            ErrorKind::Framing => &mut self.framing,
        };
        *counter += 1;
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &Self) {
        self.connect += other.connect;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.status += other.status;
        self.framing += other.framing;
    }

    /// Each kind's name (as in the JSON) and count, in the order of [`ErrorKind`].
    #[must_use]
    pub const fn by_kind(&self) -> [(&'static str, u64); 5] {
        [
            ("connect", self.connect),
            ("reset", self.reset),
            ("timeout", self.timeout),
            ("status", self.status),
            ("framing", self.framing),
        ]
    }

    /// All errors together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.by_kind().iter().map(|&(_, count)| count).sum()
    }
}

/// Every kind with its count: `connect 0, reset 2, timeout 0, status 0, framing 0`.
impl fmt::Display for ErrorCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (kind, count)) in self.by_kind().into_iter().enumerate() {
            let separator = if index == 0 { "" } else { ", " };
            write!(f, "{separator}{kind} {count}")?;
        }
        Ok(())
    }
}

/// The raw tallies of one worker thread (or of all of them, merged).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Successful (2xx, well-framed) responses.
    pub requests: u64,
    /// Failures by kind.
    pub errors: ErrorCounts,
    /// Bytes received.
    pub bytes: u64,
    /// Connections opened (successfully or not).
    pub connects: u64,
    /// Latency of every successful request, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Latency of the successful requests that started at or after [`Self::held_from`]
    /// (`c10k`: once every connection is open), in nanoseconds.
    pub held_latency: Histogram<u64>,
    /// When the requests [`Self::held_latency`] counts begin; `None`: it counts none.
    pub held_from: Option<std::time::Instant>,
}

impl Tally {
    /// Empty tallies.
    #[must_use]
    pub fn new() -> Self {
        // The bounds are constants that `new_with_bounds` accepts (low ≥ 1, high ≥ 2 × low, 3 digits).
        #[allow(clippy::expect_used)]
        let latency =
            Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant bounds are valid");
        Self {
            requests: 0,
            errors: ErrorCounts::default(),
            bytes: 0,
            connects: 0,
            held_latency: latency.clone(),
            latency,
            held_from: None,
        }
    }

    /// Records a success with its latency.
    pub fn success(&mut self, latency: Duration) {
        self.requests += 1;
        let nanos = u64::try_from(latency.as_nanos())
            .unwrap_or(MAX_LATENCY_NS)
            .max(1);
        self.latency.saturating_record(nanos);
    }

    /// Records a success whose request started at `origin`: also in [`Self::held_latency`] when
    /// it started at or after [`Self::held_from`].
    pub fn success_since(&mut self, origin: std::time::Instant) {
        let latency = origin.elapsed();
        self.success(latency);
        if self.held_from.is_some_and(|from| origin >= from) {
            let nanos = u64::try_from(latency.as_nanos())
                .unwrap_or(MAX_LATENCY_NS)
                .max(1);
            self.held_latency.saturating_record(nanos);
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.errors.merge(&other.errors);
        self.bytes += other.bytes;
        self.connects += other.connects;
        // Both histograms share the same bounds, so adding cannot fail; saturate regardless.
        let _ = self.latency.add(&other.latency);
        let _ = self.held_latency.add(&other.held_latency);
    }

    /// Requests that ended, successfully or not.
    #[must_use]
    pub fn outcomes(&self) -> u64 {
        self.requests + self.errors.total()
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// Latency percentiles of successful requests, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Fastest.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest.
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarizes a nanosecond histogram.
    #[must_use]
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let us = |nanos: u64| nanos as f64 / 1000.0;
        Self {
            min_us: us(histogram.min()),
            mean_us: histogram.mean() / 1000.0,
            p50_us: us(histogram.value_at_quantile(0.5)),
            p90_us: us(histogram.value_at_quantile(0.9)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// The summary of one load run, as printed and as written by `--json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The URL under load.
    pub url: String,
    /// `keep-alive` or `close` (a new connection per request).
    pub mode: String,
    /// Connections kept open (or in flight, with `close`).
    pub connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// The constant request rate asked for, if any (requests per second).
    pub target_rate: Option<f64>,
    /// Wall-clock length of the run in seconds.
    pub duration_s: f64,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Successful requests per second.
    pub requests_per_s: f64,
    /// Bytes received per second.
    pub bytes_per_s: f64,
    /// Bytes received.
    pub bytes: u64,
    /// Connections opened.
    pub connects: u64,
    /// Latency of successful requests (from the intended start with `--rate`).
    pub latency: LatencySummary,
    /// User CPU seconds of the generator's worker threads.
    pub client_cpu_user_s: f64,
    /// System CPU seconds of the generator's worker threads.
    pub client_cpu_system_s: f64,
    /// The generator's CPU microseconds per request that ended (success or error): when this times the
    /// rate approaches the cores it has, the generator, not the server, is the limit.
    pub client_cpu_us_per_request: f64,
    /// Requests still unanswered when the run ended: neither successes nor errors. Many of them mean
    /// the server had stopped answering (the timeout is longer than what was left of the run).
    #[serde(default)]
    pub in_flight_at_end: u64,
    /// Connections that never had a request end (neither answered nor failed) during the whole run:
    /// the server starved them (a pool or prefork busy with the others). The rate is the others'.
    /// Absent from results recorded before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starved_connections: Option<u64>,
    /// With `--held-after`: latency of the requests that started after it (all connections open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_latency: Option<LatencySummary>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.latency;
        writeln!(
            f,
            "{} {} connections over {} threads ({}), {:.2} s{}",
            self.url,
            self.connections,
            self.threads,
            self.mode,
            self.duration_s,
            self.target_rate
                .map(|rate| format!(", constant rate {rate:.0} req/s"))
                .unwrap_or_default()
        )?;
        writeln!(
            f,
            "  requests   {} ok, {:.0} req/s, {}/s ({} connections opened)",
            self.requests,
            self.requests_per_s,
            human_bytes(self.bytes_per_s),
            self.connects
        )?;
        f.write_str("  latency   ")?;
        let points = [("min", l.min_us), ("p50", l.p50_us), ("p90", l.p90_us)];
        let tail = [("p99", l.p99_us), ("p99.9", l.p999_us), ("max", l.max_us)];
        for (name, micros) in points.into_iter().chain(tail) {
            write!(f, " {name} {}", us(micros))?;
        }
        writeln!(f)?;
        writeln!(f, "  errors     {} ({})", self.errors.total(), self.errors)?;
        // A closed loop always ends with a request in flight on every connection; with `--rate` the
        // figure shows requests a stalled server left unanswered.
        if self.target_rate.is_some() && self.in_flight_at_end > 0 {
            writeln!(
                f,
                "  unanswered {} requests were in flight when the run ended",
                self.in_flight_at_end
            )?;
        }
        if let Some(starved) = self.starved_connections.filter(|&starved| starved > 0) {
            writeln!(
                f,
                "  starved    {} of {} connections never had a request answered",
                starved, self.connections
            )?;
        }
        write!(
            f,
            "  client CPU {:.2} s user + {:.2} s system = {:.2} µs per request",
            self.client_cpu_user_s, self.client_cpu_system_s, self.client_cpu_us_per_request
        )
    }
}

/// Formats microseconds with a readable unit.
#[must_use]
pub fn us(micros: f64) -> String {
    if micros >= 1_000_000.0 {
        format!("{:.2}s", micros / 1_000_000.0)
    } else if micros >= 1000.0 {
        format!("{:.2}ms", micros / 1000.0)
    } else {
        format!("{micros:.0}µs")
    }
}

/// Formats a byte count with a binary unit.
#[must_use]
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
