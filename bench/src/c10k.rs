//! `c10k`: open N keep-alive connections to one server, keep every one of them sending a request every
//! few seconds, and report how many were established, the errors, the latency, and what holding them
//! costs the server (resident memory, threads, processes) at full load.
//!
//! Models that spend a process or a thread per connection are capped at [`C10K_CAP`] connections
//! (10,000 would exhaust this machine's pid space and memory): the output and the results say so, and
//! `--no-caps` lifts the cap for a reader who wants to see it happen on a machine of their own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::docroot::{DocRoot, SMALL_PATH};
use crate::engine::LoadConfig;
use crate::machine::Header;
use crate::measure::{self, Subject};
use crate::netstat::TcpCounters;
use crate::output::{self, Progress, Results, Spread, or_dash};
use crate::server::{Binaries, C10K_CAP, ServerSpec};
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
    /// Also hold them to a production server, NAME or NAME:N (see `compare --peer`); repeatable.
    #[arg(long = "peer", value_parser = crate::peers::Peer::parse)]
    pub peers: Vec<crate::peers::Peer>,
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
    /// Skip the unrecorded warm-up run (the connections opened once) before the first round.
    #[arg(long)]
    pub no_warmup: bool,
    /// Also write c10k.json and c10k.md into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Spread source addresses over 127.0.0.1..=127.0.0.N.
    #[arg(long, default_value_t = 1)]
    pub source_addresses: u8,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    #[serde(default = "output::first_round")]
    pub round: u32,
    /// The machine's TCP counters over the run: accept-queue overflows and SYN retransmissions
    /// explain a tail of about one second (see [`crate::netstat`]).
    /// `None` in results written before bench recorded them.
    #[serde(default)]
    pub tcp: Option<TcpCounters>,
}

/// Everything `c10k.json` holds.
pub type C10kResults = Results<C10kRecord>;

/// Runs the experiment, writes `c10k.json` and `c10k.md` when asked (recording `command`), and returns
/// the results.
///
/// # Errors
///
/// When nothing matches the selection, or the results cannot be written.
pub fn run(options: &C10kOptions, command: &str) -> anyhow::Result<C10kResults> {
    let header = Header::now(command);
    let root = DocRoot::create().context("cannot create the document root")?;
    let urls = options
        .url
        .iter()
        .map(|url| Subject::External(url.clone(), url.clone()));
    let mut subjects: Vec<Subject> = urls.collect();
    let steps_too = !options.steps.is_empty()
        || (options.url.is_none() && options.nginx_workers.is_empty() && options.peers.is_empty());
    let steps = steps_too.then_some(options.steps.as_slice());
    subjects.extend(Subject::list(steps, &options.nginx_workers)?);
    Subject::add_peers(&mut subjects, &options.peers);
    // Raise the descriptor limit (the servers inherit it) and refuse before building or starting
    // anything when the generator cannot hold the connections.
    let most = subjects
        .iter()
        .map(|subject| connections_for(subject, options).0);
    crate::engine::check_descriptors(most.max().unwrap_or(0))?;
    let binaries = Subject::build(&subjects);
    let mut warmed_up = options.no_warmup;
    let runs = output::interleave(&subjects, options.repeat, 1, |subject, round, progress| {
        if !warmed_up {
            warm_up(subject, root.path(), &binaries, options, progress);
            warmed_up = true;
        }
        let record = hold_subject(subject, root.path(), &binaries, options, progress);
        progress.advance();
        vec![C10kRecord { round, ..record }]
    });
    let results = Results { header, runs };
    if let Some(out) = &options.out {
        output::write(out, "c10k", &results, &markdown(&results))?;
    }
    Ok(results)
}

/// Opens the connections to the first server once, unrecorded. Whichever server runs first in a
/// process pays for the kernel growing its socket caches and the generator touching its memory for
/// the first time: its first requests wait milliseconds where later runs' wait microseconds.
fn warm_up(
    subject: &Subject,
    root: &Path,
    binaries: &Binaries,
    options: &C10kOptions,
    progress: &Progress,
) {
    progress.line(&format!(
        "bench: warm-up run, not recorded: {}",
        subject.name()
    ));
    let ramp_only = C10kOptions {
        hold: Some(Duration::ZERO),
        ..options.clone()
    };
    let _ = hold_subject(subject, root, binaries, &ramp_only, progress);
}

/// How many connections `subject` gets, and why fewer than asked or what to expect of it.
fn connections_for(subject: &Subject, options: &C10kOptions) -> (usize, Option<String>) {
    let asked = options.connections();
    match subject {
        Subject::Step(spec) => step_connections(spec, asked, options.no_caps),
        _ => (asked, None),
    }
}

/// How many connections a step gets, and why fewer than asked (a cap) or what to expect of it.
fn step_connections(spec: &ServerSpec, asked: usize, no_caps: bool) -> (usize, Option<String>) {
    if spec.per_connection_task && !no_caps && asked > C10K_CAP {
        let note = format!(
            "capped at {C10K_CAP}: one process or thread per connection; {asked} would exhaust this \
             machine's pid space and memory (--no-caps lifts the cap)"
        );
        (C10K_CAP, Some(note))
    } else if spec.sequential {
        let note = "serves one connection at a time: the others wait in the backlog";
        (asked, Some(note.to_owned()))
    } else {
        (asked, None)
    }
}

fn hold_subject(
    subject: &Subject,
    root: &Path,
    binaries: &Binaries,
    options: &C10kOptions,
    progress: &Progress,
) -> C10kRecord {
    let name = subject.name();
    let asked = options.connections();
    let (connections, note) = connections_for(subject, options);
    if let Some(note) = &note {
        progress.line(&format!("bench: {name}: {note}"));
    }
    let started = subject
        .start(root, binaries)
        .map_err(|error| format!("{error:#}"));
    let held = started.and_then(|live| {
        // An external server is loaded at its own URL, as given.
        let url = match subject {
            Subject::External(_, url) => url.clone(),
            _ => live.url(SMALL_PATH),
        };
        progress.line(&format!(
            "bench: {name}: opening {connections} connections to {url}"
        ));
        let held = hold(&url, live.pid(), connections, options);
        let _ = live.stop();
        held
    });
    match held {
        Ok(figures) => C10kRecord {
            server: name,
            asked,
            connections,
            note,
            ..figures
        },
        Err(error) => {
            progress.line(&format!("bench: {name}: {error}"));
            C10kRecord {
                server: name,
                asked,
                error: Some(error),
                ..C10kRecord::default()
            }
        }
    }
}

/// Holds `connections` to `url`, each sending a request per interval: the figures of the record.
fn hold(
    url: &str,
    pid: Option<u32>,
    connections: usize,
    options: &C10kOptions,
) -> Result<C10kRecord, String> {
    let target = Target::parse(url).map_err(|error| error.to_string())?;
    let mut config = LoadConfig::new(target, connections, options.interval() + options.hold());
    config.rate = Some(connections as f64 / options.interval().as_secs_f64().max(0.001));
    config.timeout = options.timeout;
    config.source_addresses = options.source_addresses;
    let counters_before = TcpCounters::read();
    let measured = measure::measure(&config, Duration::ZERO, pid);
    let tcp = counters_before.since(TcpCounters::read());
    let (result, cost) = measured.map_err(|error| error.to_string())?;
    Ok(C10kRecord {
        established: result.open_at_end,
        requests: result.report.requests,
        errors: result.report.errors,
        unanswered: result.report.in_flight_at_end,
        latency: result.report.latency,
        server_rss_kib: cost.map(|c| c.peak_rss_kib),
        server_threads: cost.map(|c| c.peak_threads),
        server_processes: cost.map(|c| c.peak_processes),
        server_fds: cost.map(|c| c.peak_fds),
        tcp: Some(tcp),
        ..C10kRecord::default()
    })
}

const TABLE: &str = "| server | connections | established | requests | errors | unanswered | p50 | p99 | max | server RSS MiB | threads | processes | descriptors | SYN retransmits / listen overflows | note |\n\
    |---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

/// The results as a Markdown table (between mdBook anchors named `table`): one row per server, the
/// run with the median p99 when it ran several times, with the p99 spread.
#[must_use]
pub fn markdown(results: &C10kResults) -> String {
    let servers = output::by_server(&results.runs, |run| &run.server);
    let rows = servers.into_iter().filter_map(|(_, runs)| {
        let run = output::median_by(&runs, |run| run.latency.p99_us)?;
        let p99 = Spread::of(runs.iter().map(|run| run.latency.p99_us))
            .map_or_else(String::new, |s| s.show(runs.len(), stats::us));
        Some(row(run, p99))
    });
    results.page("C10K", &output::table(TABLE, rows))
}

fn row(run: &C10kRecord, p99: String) -> Vec<String> {
    let note = run.error.as_ref().or(run.note.as_ref());
    // A run that failed measured no latency: a dash, not 0 µs.
    let latency = |cell: String| {
        if run.error.is_some() {
            "—".to_owned()
        } else {
            cell
        }
    };
    let tcp = run
        .tcp
        .map(|tcp| format!("{} / {}", tcp.syn_retransmits, tcp.listen_overflows));
    vec![
        run.server.clone(),
        run.connections.to_string(),
        run.established.to_string(),
        run.requests.to_string(),
        output::all_errors(&run.errors),
        run.unanswered.to_string(),
        latency(stats::us(run.latency.p50_us)),
        latency(p99),
        latency(stats::us(run.latency.max_us)),
        or_dash(
            run.server_rss_kib
                .map(|kib| format!("{:.1}", kib as f64 / 1024.0)),
        ),
        or_dash(run.server_threads),
        or_dash(run.server_processes),
        or_dash(run.server_fds),
        or_dash(tcp),
        note.map_or_else(String::new, |note| note.replace('|', "/")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_servers_median_p99_and_its_spread() {
        let run = |round, p99_us| C10kRecord {
            server: "step07-1".into(),
            round,
            requests: 10,
            latency: LatencySummary {
                p99_us,
                ..LatencySummary::default()
            },
            ..C10kRecord::default()
        };
        let results = Results {
            header: Header::now("bench c10k --repeat 3"),
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
