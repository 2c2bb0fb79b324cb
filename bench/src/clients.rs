//! C100K from one machine: one load spread over several client processes and source addresses.
//!
//! Two walls stand between one generator process and 100,000 connections on loopback. A process
//! may open at most `RLIMIT_NOFILE` descriptors (here 20,000, a hard limit that only a process
//! with `CAP_SYS_RESOURCE` may raise), so the connections are split over as many client processes
//! as that needs, each the `bench` binary itself running [`client_main`]. And one source address
//! has only the ephemeral port range (`net.ipv4.ip_local_port_range`, 28,232 ports by default) to
//! reach one server port, so the connections are spread over 127.0.0.1 … 127.0.0.N, each socket
//! bound before `connect` with `IP_BIND_ADDRESS_NO_PORT` (see the engine's `connect`). Both counts
//! are computed from the connections asked for ([`ClientSpread::plan`]), and a configuration that
//! cannot reach the count is refused before anything starts, in one line.

use std::io::{self, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::engine::{self, LoadConfig, LoadError, LoadResult};
use crate::stats::{LatencySummary, Report, Tally};
use crate::sys;

/// Descriptors a client process keeps for itself besides its connections (std streams, `epoll`,
/// the engine's own), with room to spare.
pub const CLIENT_SPARE_DESCRIPTORS: u64 = 64;

/// Descriptors a server process keeps for itself besides its connections (listeners, `epoll`,
/// the signal socket, the open-file cache's few entries in this experiment).
pub const SERVER_SPARE_DESCRIPTORS: u64 = 128;

/// The most source addresses: 127.0.0.1 … 127.0.0.255.
pub const MAX_SOURCES: u64 = 255;

/// What this machine allows one process and one source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineLimits {
    /// `RLIMIT_NOFILE` (hard: the soft limit is raised to it), for this process and the servers
    /// it starts.
    pub descriptors: u64,
    /// Ephemeral ports of one source address toward one server address and port.
    pub ports_per_source: u64,
}

impl MachineLimits {
    /// Raises this process's soft descriptor limit to the hard one and reads both limits.
    ///
    /// # Errors
    ///
    /// When the limit cannot be read or set, or the port range cannot be read.
    pub fn of_this_machine() -> io::Result<Self> {
        let descriptors = sys::raise_nofile_limit()?;
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")?;
        let bounds: Vec<u64> = range
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let ports_per_source = match bounds[..] {
            [low, high] if high >= low => high - low + 1,
            _ => return Err(io::Error::other(format!("unreadable port range {range:?}"))),
        };
        Ok(Self {
            descriptors,
            ports_per_source,
        })
    }

    /// Ports of one source address that `connect` finds quickly. Linux gives `connect` the
    /// ports of one parity first (the other half is `bind`'s): past half the range, each
    /// `connect` scans that whole half before it finds a free port, and the generator's CPU goes
    /// to the scan (with four addresses nearly full, the clients spent most of this machine's CPU
    /// in the kernel). So a source address takes at most three quarters of half its range.
    pub fn comfortable_ports(self) -> u64 {
        self.ports_per_source / 2 * 3 / 4
    }

    /// Connections one process can hold when it keeps `spare` descriptors for itself.
    fn per_process(self, spare: u64) -> u64 {
        self.descriptors.saturating_sub(spare)
    }
}

/// How one load is spread: over how many client processes and source addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSpread {
    /// Client processes, each with its own descriptor table.
    pub processes: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.N (1: the kernel picks, from 127.0.0.1).
    pub sources: u8,
}

impl ClientSpread {
    // ANCHOR: plan_spread
    /// The fewest client processes and source addresses that hold `connections`, or with
    /// `sources` given, that many addresses; `server_processes` is how many processes the server
    /// holds them in (`None`: unknown, not checked) and `server_per_process` how many each may
    /// hold (its own cap, such as nginx's `worker_connections`, or else the descriptor limit).
    ///
    /// # Errors
    ///
    /// One line saying which wall the configuration hits and what would get through it.
    pub fn plan(
        connections: usize,
        limits: MachineLimits,
        sources: Option<u8>,
        server: Option<(&str, u64, Option<u64>)>,
    ) -> Result<Self, String> {
        let wanted = connections as u64;
        if let Some((name, processes, own_cap)) = server {
            let per_process = own_cap
                .unwrap_or(u64::MAX)
                .min(limits.per_process(SERVER_SPARE_DESCRIPTORS));
            let most = processes * per_process;
            if wanted > most {
                return Err(format!(
                    "{name} cannot hold {connections} connections: {processes} process(es) × \
                     {per_process} descriptors (RLIMIT_NOFILE {}) = {most}; ask for fewer, or \
                     choose a configuration with more processes (step07-workers, --nginx N)",
                    limits.descriptors
                ));
            }
        }
        let needed_sources = wanted.div_ceil(limits.ports_per_source.max(1)).max(1);
        let comfortable_sources = wanted.div_ceil(limits.comfortable_ports().max(1)).max(1);
        let sources = match sources {
            Some(given) if u64::from(given.max(1)) < needed_sources => {
                return Err(format!(
                    "{connections} connections need at least {needed_sources} source addresses \
                     ({} ephemeral ports each toward one server port, \
                     net.ipv4.ip_local_port_range); --source-addresses {given} is too few",
                    limits.ports_per_source
                ));
            }
            Some(given) => given.max(1),
            None if needed_sources > MAX_SOURCES => {
                return Err(format!(
                    "{connections} connections need {needed_sources} source addresses, more \
                     than 127.0.0.1 … 127.0.0.{MAX_SOURCES}"
                ));
            }
            // At most 255 (else as many as there are: the hard wall was checked just above).
            None => u8::try_from(comfortable_sources.min(MAX_SOURCES)).unwrap_or(u8::MAX),
        };
        let per_client = limits.per_process(CLIENT_SPARE_DESCRIPTORS).max(1);
        let processes = usize::try_from(wanted.div_ceil(per_client).max(1)).unwrap_or(usize::MAX);
        Ok(Self { processes, sources })
    }
    // ANCHOR_END: plan_spread
}

/// What one client process reports to the one that started it: its summary, the connections
/// still open at the end, and its latency histogram as (value, count) pairs.
#[derive(Debug, Serialize, Deserialize)]
struct PartResult {
    report: Report,
    open_at_end: usize,
    latency_ns: Vec<(u64, u64)>,
    /// The same for the requests made once all were held (`--held-after`).
    #[serde(default)]
    held_latency_ns: Vec<(u64, u64)>,
}

/// The hidden `bench c10k-client` command: runs `config` in this process and prints a
/// [`PartResult`] as one JSON line for the process that started it.
///
/// # Errors
///
/// When the load cannot run or the line cannot be written.
pub fn client_main(config: &LoadConfig) -> anyhow::Result<()> {
    let result = engine::run(config)?;
    let latency_ns = result
        .tally
        .latency
        .iter_recorded()
        .map(|value| (value.value_iterated_to(), value.count_at_value()))
        .collect();
    let held_latency_ns = result
        .tally
        .held_latency
        .iter_recorded()
        .map(|value| (value.value_iterated_to(), value.count_at_value()))
        .collect();
    let part = PartResult {
        report: result.report,
        open_at_end: result.open_at_end,
        latency_ns,
        held_latency_ns,
    };
    println!("{}", serde_json::to_string(&part)?);
    Ok(())
}

/// Client processes, killed and reaped if the run is abandoned.
struct Clients(Vec<Child>);

impl Drop for Clients {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ANCHOR: run_spread
/// Runs `config` over `processes` client processes (`bench_exe c10k-client`, this program),
/// each with its share of the connections and of the rate, and merges what they measured as if
/// one generator had. With one process, runs it here.
///
/// # Errors
///
/// When a client cannot start or reports no result; [`LoadError::Config`] as [`engine::run`].
pub fn run_spread(
    config: &LoadConfig,
    processes: usize,
    bench_exe: &Path,
) -> Result<LoadResult, LoadError> {
    if processes <= 1 {
        return engine::run(config);
    }
    let processes = processes.min(config.connections.max(1));
    let mut clients = Clients(Vec::new());
    for part in 0..processes {
        let connections = share(config.connections, processes, part);
        let args = client_args(config, connections);
        let child = Command::new(bench_exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        clients.0.push(child);
    }
    let mut parts = Vec::new();
    for child in &mut clients.0 {
        let mut line = String::new();
        if let Some(stdout) = child.stdout.as_mut() {
            stdout.read_to_string(&mut line)?;
        }
        let status = child.wait()?;
        let part: PartResult = serde_json::from_str(line.trim()).map_err(|error| {
            LoadError::Io(io::Error::other(format!(
                "a client process ({status}) reported no result: {error}"
            )))
        })?;
        parts.push(part);
    }
    clients.0.clear();
    Ok(merge(config, &parts))
}
// ANCHOR_END: run_spread

/// Part `part` of `total` split as evenly as can be over `parts`.
fn share(total: usize, parts: usize, part: usize) -> usize {
    total / parts + usize::from(part < total % parts)
}

/// The command line of one client process holding `connections` of `config`'s.
fn client_args(config: &LoadConfig, connections: usize) -> Vec<String> {
    let mut args = vec![
        "c10k-client".to_owned(),
        config.target.url.clone(),
        "--connections".to_owned(),
        connections.to_string(),
        "--threads".to_owned(),
        "1".to_owned(),
        "--timeout".to_owned(),
        format!("{}ms", config.timeout.as_millis().max(1)),
        "--source-addresses".to_owned(),
        config.source_addresses.to_string(),
    ];
    if let Some(duration) = config.duration {
        args.extend([
            "--duration".to_owned(),
            format!("{}ms", duration.as_millis()),
        ]);
    }
    if let Some(drain) = config.drain {
        args.extend(["--drain".to_owned(), format!("{}ms", drain.as_millis())]);
    }
    if let Some(ramp) = config.ramp {
        args.extend(["--ramp".to_owned(), format!("{}ms", ramp.as_millis())]);
    }
    if let Some(after) = config.held_after {
        args.extend([
            "--held-after".to_owned(),
            format!("{}ms", after.as_millis()),
        ]);
    }
    if let Some(rate) = config.rate {
        let rate = rate * connections as f64 / config.connections.max(1) as f64;
        args.extend(["--rate".to_owned(), format!("{rate}")]);
    }
    args
}

/// The parts' figures as one run's.
fn merge(config: &LoadConfig, parts: &[PartResult]) -> LoadResult {
    let mut tally = Tally::new();
    let mut report = Report {
        url: config.target.url.clone(),
        mode: "keep-alive".to_owned(),
        target_rate: config.rate,
        starved_connections: Some(0),
        ..Report::default()
    };
    let mut open_at_end = 0;
    for part in parts {
        let r = &part.report;
        for &(value, count) in &part.latency_ns {
            tally.latency.saturating_record_n(value, count);
        }
        for &(value, count) in &part.held_latency_ns {
            tally.held_latency.saturating_record_n(value, count);
        }
        tally.requests += r.requests;
        tally.errors.merge(&r.errors);
        tally.bytes += r.bytes;
        tally.connects += r.connects;
        open_at_end += part.open_at_end;
        report.connections += r.connections;
        report.threads += r.threads;
        report.duration_s = report.duration_s.max(r.duration_s);
        report.client_cpu_user_s += r.client_cpu_user_s;
        report.client_cpu_system_s += r.client_cpu_system_s;
        report.in_flight_at_end += r.in_flight_at_end;
        report.starved_connections =
            Some(report.starved_connections.unwrap_or(0) + r.starved_connections.unwrap_or(0));
    }
    let seconds = report.duration_s.max(1e-9);
    report.requests = tally.requests;
    report.errors = tally.errors;
    report.bytes = tally.bytes;
    report.connects = tally.connects;
    report.requests_per_s = tally.requests as f64 / seconds;
    report.bytes_per_s = tally.bytes as f64 / seconds;
    report.latency = LatencySummary::from_histogram(&tally.latency);
    report.held_latency = config
        .held_after
        .map(|_| LatencySummary::from_histogram(&tally.held_latency));
    let cpu = report.client_cpu_user_s + report.client_cpu_system_s;
    report.client_cpu_us_per_request = cpu * 1e6 / tally.outcomes().max(1) as f64;
    LoadResult {
        report,
        tally,
        open_at_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: MachineLimits = MachineLimits {
        descriptors: 20_000,
        ports_per_source: 28_232,
    };

    #[test]
    fn spreads_c100k_over_processes_and_source_addresses() {
        let spread = ClientSpread::plan(100_000, HERE, None, Some(("step07-workers", 8, None)));
        // 100,000 / (20,000 - 64) → 6 processes; 100,000 / (28,232 / 2 × 3/4) → 10 addresses.
        assert_eq!(
            spread,
            Ok(ClientSpread {
                processes: 6,
                sources: 10
            })
        );
        // Given, fewer addresses are taken as long as their ports suffice.
        let given = ClientSpread::plan(100_000, HERE, Some(4), None);
        assert_eq!(given.map(|spread| spread.sources), Ok(4));
        let small = ClientSpread::plan(1000, HERE, None, Some(("step07-1", 1, None)));
        assert_eq!(
            small,
            Ok(ClientSpread {
                processes: 1,
                sources: 1
            })
        );
    }

    #[test]
    fn refuses_counts_no_configuration_can_reach_in_one_line() {
        let one_line = |refused: Result<ClientSpread, String>, mentions: &str| {
            let why = refused.expect_err("should be refused");
            assert!(!why.contains('\n') && why.contains(mentions), "{why}");
        };
        // The server side: descriptors × processes.
        one_line(
            ClientSpread::plan(100_000, HERE, None, Some(("step07-1", 1, None))),
            "step07-1 cannot hold 100000",
        );
        one_line(
            ClientSpread::plan(100_000, HERE, None, Some(("nginx-4", 4, Some(16_384)))),
            "4 process(es) × 16384",
        );
        // The client side: ports × sources.
        one_line(
            ClientSpread::plan(100_000, HERE, Some(2), None),
            "at least 4 source addresses",
        );
        one_line(
            ClientSpread::plan(10_000_000, HERE, None, None),
            "more than 127.0.0.1",
        );
    }

    #[test]
    fn merged_parts_add_up_and_keep_the_tail() {
        let part = |requests, tail_ns| PartResult {
            report: Report {
                connections: 10,
                threads: 1,
                requests,
                duration_s: 2.0,
                ..Report::default()
            },
            open_at_end: 10,
            latency_ns: vec![(1000, requests - 1), (tail_ns, 1)],
            held_latency_ns: vec![(tail_ns, 1)],
        };
        let target = crate::target::Target::parse("http://127.0.0.1:9/").unwrap();
        let config = LoadConfig::new(target, 20, std::time::Duration::from_secs(2));
        let merged = merge(&config, &[part(100, 5_000_000), part(100, 9_000_000)]);
        assert_eq!(merged.report.requests, 200);
        assert_eq!(merged.open_at_end, 20);
        assert_eq!(merged.report.connections, 20);
        assert!(
            merged.report.latency.max_us >= 8_990.0,
            "{:?}",
            merged.report.latency
        );
        assert_eq!(
            share(10, 3, 0) + share(10, 3, 1) + share(10, 3, 2),
            10,
            "every connection has a process"
        );
    }
}
