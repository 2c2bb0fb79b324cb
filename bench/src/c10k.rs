//! `c10k`: open N keep-alive connections to one server, keep every one of them sending a request every
//! few seconds, and report how many were established, the errors, the latency, and what holding them
//! costs the server (resident memory, threads, processes) at full load.
//!
//! Models that spend a process or a thread per connection are capped at [`C10K_CAP`] connections
//! (10,000 would exhaust this machine's pid space and memory): the output and the results say so, and
//! `--no-caps` lifts the cap for a reader who wants to see it happen on a machine of their own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::docroot::{DocRoot, SMALL_PATH};
use crate::engine::LoadConfig;
use crate::machine::{self, Machine};
use crate::measure;
use crate::netstat::TcpCounters;
use crate::output::{self, Progress, Spread};
use crate::server::{self, Binaries, C10K_CAP, ServerSpec};
use crate::stats::{self, ErrorCounts, LatencySummary};
use crate::target::Target;

/// What `c10k` was asked to do; also its command-line options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct C10kOptions {
    /// Connections to hold (default 10000; 1000 with --quick).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Configurations to run (default: all); repeatable.
    #[arg(long = "step")]
    pub steps: Vec<String>,
    /// An external server (then no step runs unless --step is also given).
    #[arg(long)]
    pub url: Option<String>,
    /// Also hold the connections to nginx with this many workers (then no step runs unless --step is
    /// also given). Repeatable.
    #[arg(long = "nginx")]
    pub nginx_workers: Vec<u32>,
    /// A request unanswered after this long fails as `timeout`.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Each connection sends one request per interval, staying under the servers' 5 s idle timeout
    /// (default 2s; 1s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,
    /// How long to hold the connections once open (default 20s; 2s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub hold: Option<Duration>,
    /// Fewer connections, held briefly: every configuration in under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Run every server N times, interleaved: the table shows the run with the median p99 and the
    /// min–max spread of p99; c10k.json keeps every run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Do not cap the process- and thread-per-connection models (may exhaust the machine).
    #[arg(long)]
    pub no_caps: bool,
    /// Also write c10k.json and c10k.md into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Spread source addresses over 127.0.0.1..=127.0.0.N.
    #[arg(long, default_value_t = 1)]
    pub source_addresses: u8,
    /// The command line, recorded with the results.
    #[arg(skip)]
    pub command_line: String,
}

impl C10kOptions {
    fn connections(&self) -> usize {
        self.connections
            .unwrap_or(if self.quick { 1000 } else { 10_000 })
    }

    fn interval(&self) -> Duration {
        self.interval
            .unwrap_or(Duration::from_secs(if self.quick { 1 } else { 2 }))
    }

    fn hold(&self) -> Duration {
        self.hold
            .unwrap_or(Duration::from_secs(if self.quick { 2 } else { 20 }))
    }
}

/// One server at N connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C10kRecord {
    /// Server name.
    pub server: String,
    /// Connections asked for.
    pub asked: usize,
    /// Connections opened (after any cap).
    pub connections: usize,
    /// Why fewer connections than asked (a cap), or what to expect of this model.
    pub note: Option<String>,
    /// Connections open when the run ended.
    pub established: usize,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Requests still unanswered when the run ended (younger than the timeout).
    #[serde(default)]
    pub unanswered: u64,
    /// Latency of the successful requests.
    pub latency: LatencySummary,
    /// Server peak resident memory at full load, KiB.
    pub server_rss_kib: Option<u64>,
    /// Server threads at full load.
    pub server_threads: Option<u64>,
    /// Server processes at full load.
    pub server_processes: Option<u64>,
    /// Server open descriptors at full load.
    pub server_fds: Option<u64>,
    /// Why the run failed.
    pub error: Option<String>,
    /// Which of the `--repeat` rounds (1-based).
    #[serde(default = "first_round")]
    pub round: u32,
    /// The machine's TCP counters over the run: accept-queue overflows and SYN retransmissions
    /// explain a tail of about one second (see [`crate::netstat`]).
    /// `None` in results written before bench recorded them.
    #[serde(default)]
    pub tcp: Option<TcpCounters>,
}

const fn first_round() -> u32 {
    1
}

/// Everything `c10k.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C10kResults {
    /// The machine.
    pub machine: Machine,
    /// When (UTC).
    pub date: String,
    /// The exact command.
    pub command: String,
    /// Every server.
    pub runs: Vec<C10kRecord>,
}

/// A server to hold connections to.
enum Subject {
    Url(String),
    Step(ServerSpec),
    Nginx(u32),
}

/// Runs the experiment, writes `c10k.json` and `c10k.md` when asked, and returns the results.
///
/// # Errors
///
/// When nothing matches the selection, or the results cannot be written.
pub fn run(options: &C10kOptions) -> anyhow::Result<C10kResults> {
    crate::sys::raise_nofile_limit().context("RLIMIT_NOFILE")?;
    let (_, stamp) = machine::utc_now();
    let mut results = C10kResults {
        machine: Machine::describe(),
        date: stamp,
        command: options.command_line.clone(),
        runs: Vec::new(),
    };
    let root = DocRoot::create().context("cannot create the document root")?;
    let mut subjects: Vec<Subject> = options.url.iter().cloned().map(Subject::Url).collect();
    if !options.steps.is_empty() || (options.url.is_none() && options.nginx_workers.is_empty()) {
        subjects.extend(
            server::select(&options.steps)?
                .into_iter()
                .map(Subject::Step),
        );
    }
    subjects.extend(
        options
            .nginx_workers
            .iter()
            .map(|&workers| Subject::Nginx(workers)),
    );
    let binaries = server::build_if(subjects.iter().any(|s| matches!(s, Subject::Step(_))));
    let progress = Progress::new(subjects.len() * options.repeat as usize);
    for round in 1..=options.repeat {
        for subject in &subjects {
            let record = hold_subject(subject, root.path(), &binaries, options, &progress);
            progress.advance();
            results.runs.push(C10kRecord { round, ..record });
        }
    }
    drop(progress);
    if let Some(out) = &options.out {
        output::write(out, "c10k", &results, &markdown(&results))?;
    }
    Ok(results)
}

fn hold_subject(
    subject: &Subject,
    root: &Path,
    binaries: &Binaries,
    options: &C10kOptions,
    progress: &Progress,
) -> C10kRecord {
    let asked = options.connections();
    let (name, started, connections, note) = match subject {
        Subject::Url(url) => return hold(url, url, None, asked, None, options, progress),
        Subject::Nginx(workers) => (
            format!("nginx-{workers}"),
            server::start_nginx(*workers, root),
            asked,
            None,
        ),
        Subject::Step(spec) => {
            let capped = spec.per_connection_task && !options.no_caps && asked > C10K_CAP;
            let note = if capped {
                Some(format!(
                    "capped at {C10K_CAP}: one process or thread per connection; {asked} would exhaust this \
                     machine's pid space and memory (--no-caps lifts the cap)"
                ))
            } else if spec.sequential {
                Some("serves one connection at a time: the others wait in the backlog".to_owned())
            } else {
                None
            };
            let started = binaries
                .get(spec.package)
                .and_then(|binary| Ok(server::start(binary, root, spec.args)?));
            (
                spec.name.to_owned(),
                started,
                if capped { C10K_CAP } else { asked },
                note,
            )
        }
    };
    if let Some(note) = &note {
        progress.line(&format!("bench: {name}: {note}"));
    }
    match started {
        Ok(running) => {
            let record = hold(
                &name,
                &running.url(SMALL_PATH),
                Some(running.pid()),
                connections,
                note,
                options,
                progress,
            );
            let _ = running.stop();
            record
        }
        Err(error) => failed(&name, asked, &format!("{error:#}"), progress),
    }
}

fn hold(
    name: &str,
    url: &str,
    pid: Option<u32>,
    connections: usize,
    note: Option<String>,
    options: &C10kOptions,
    progress: &Progress,
) -> C10kRecord {
    progress.line(&format!(
        "bench: {name}: opening {connections} connections to {url}"
    ));
    let target = match Target::parse(url) {
        Ok(target) => target,
        Err(error) => return failed(name, options.connections(), &error.to_string(), progress),
    };
    let mut config = LoadConfig::new(target, connections, options.interval() + options.hold());
    config.rate = Some(connections as f64 / options.interval().as_secs_f64().max(0.001));
    config.timeout = options.timeout;
    config.source_addresses = options.source_addresses;
    let counters_before = TcpCounters::read();
    let measured = measure::measure(&config, Duration::ZERO, pid);
    let tcp = counters_before.since(TcpCounters::read());
    match measured {
        Ok((result, cost)) => C10kRecord {
            server: name.to_owned(),
            asked: options.connections(),
            connections,
            note,
            established: result.open_at_end,
            requests: result.report.requests,
            errors: result.report.errors,
            unanswered: result.report.in_flight_at_end,
            latency: result.report.latency,
            server_rss_kib: cost.map(|c| c.peak_rss_kib),
            server_threads: cost.map(|c| c.peak_threads),
            server_processes: cost.map(|c| c.peak_processes),
            server_fds: cost.map(|c| c.peak_fds),
            error: None,
            round: 1,
            tcp: Some(tcp),
        },
        Err(error) => failed(name, options.connections(), &error.to_string(), progress),
    }
}

fn failed(name: &str, asked: usize, error: &str, progress: &Progress) -> C10kRecord {
    progress.line(&format!("bench: {name}: {error}"));
    C10kRecord {
        server: name.to_owned(),
        asked,
        connections: 0,
        note: None,
        established: 0,
        requests: 0,
        errors: ErrorCounts::default(),
        unanswered: 0,
        latency: LatencySummary::default(),
        server_rss_kib: None,
        server_threads: None,
        server_processes: None,
        server_fds: None,
        error: Some(error.to_owned()),
        round: 1,
        tcp: None,
    }
}

/// The results as a Markdown table (between mdBook anchors named `table`): one row per server, the
/// run with the median p99 when it ran several times, with the p99 spread.
#[must_use]
pub fn markdown(results: &C10kResults) -> String {
    let mut servers: Vec<&str> = Vec::new();
    for run in &results.runs {
        if !servers.contains(&run.server.as_str()) {
            servers.push(&run.server);
        }
    }
    let mut table = String::from(
        "| server | connections | established | requests | errors | unanswered | p50 | p99 | max | server RSS MiB | threads | processes | descriptors | SYN retransmits / listen overflows | note |\n\
         |---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let opt = |value: Option<u64>| value.map_or_else(|| "—".to_owned(), |v| v.to_string());
    for server in servers {
        let runs: Vec<&C10kRecord> = results
            .runs
            .iter()
            .filter(|run| run.server == server)
            .collect();
        let Some(run) = output::median_index(&runs, |run| run.latency.p99_us).map(|at| runs[at])
        else {
            continue;
        };
        let p99 = Spread::of(runs.iter().map(|run| run.latency.p99_us))
            .map_or_else(String::new, |s| s.show(runs.len(), stats::us));
        let note = run
            .error
            .clone()
            .or_else(|| run.note.clone())
            .unwrap_or_default()
            .replace('|', "/");
        let tcp = run.tcp.map_or_else(
            || "—".to_owned(),
            |tcp| format!("{} / {}", tcp.syn_retransmits, tcp.listen_overflows),
        );
        let errors = if run.errors.total() == 0 {
            "0".to_owned()
        } else {
            run.errors.to_string()
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {errors} | {} | {} | {p99} | {} | {} | {} | {} | {} | {tcp} | {note} |",
            run.server,
            run.connections,
            run.established,
            run.requests,
            run.unanswered,
            stats::us(run.latency.p50_us),
            stats::us(run.latency.max_us),
            run.server_rss_kib.map_or_else(
                || "—".to_owned(),
                |kib| format!("{:.1}", kib as f64 / 1024.0)
            ),
            opt(run.server_threads),
            opt(run.server_processes),
            opt(run.server_fds),
        );
    }
    let preamble = output::preamble("C10K", &results.machine, &results.date, &results.command);
    format!("{preamble}\n{}", output::anchored("table", &table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_servers_median_p99_and_its_spread() {
        let progress = Progress::new(0);
        let run = |round, p99_us| C10kRecord {
            round,
            error: None,
            requests: 10,
            latency: LatencySummary {
                p99_us,
                ..LatencySummary::default()
            },
            ..failed("step07-1", 10_000, "", &progress)
        };
        let results = C10kResults {
            machine: Machine::describe(),
            date: "2026-01-01T00:00:00Z".into(),
            command: "bench c10k --repeat 3".into(),
            runs: vec![run(1, 1000.0), run(2, 989_000.0), run(3, 1760.0)],
        };
        let mut with_counters = results.clone();
        with_counters.runs[2].tcp = Some(TcpCounters {
            syn_retransmits: 41,
            listen_overflows: 40,
            ..TcpCounters::default()
        });
        assert!(markdown(&with_counters).contains("| 41 / 40 |"));
        let text = markdown(&results);
        assert!(
            text.contains("<!-- ANCHOR: table -->") && text.contains("<!-- ANCHOR_END: table -->")
        );
        assert_eq!(text.matches("| step07-1 |").count(), 1, "{text}");
        assert!(text.contains("| 1.76ms (1.00ms–989.00ms) |"), "{text}");
        let quick = C10kOptions {
            quick: true,
            ..C10kOptions::default()
        };
        assert_eq!(
            (quick.connections(), quick.interval(), quick.hold()),
            (1000, Duration::from_secs(1), Duration::from_secs(2))
        );
    }
}
