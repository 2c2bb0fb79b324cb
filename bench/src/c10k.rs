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

use crate::clients::{self, ClientSpread, MachineLimits};
use crate::docroot::{DocRoot, SMALL_PATH};
use crate::engine::LoadConfig;
use crate::machine::Header;
use crate::measure::{self, Subject};
use crate::netstat::TcpCounters;
use crate::output::{self, Progress, Results, Spread, or_dash};
use crate::peers::Peer;
use crate::server::{Binaries, C10K_CAP, ServerSpec};
use crate::stats::{self, ErrorCounts, LatencySummary};
use crate::target::Target;

/// What `c10k` was asked to do; also its command-line options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct C10kOptions {
    /// Connections to hold (default 10000; 1000 with --quick).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Configurations to run (default: all), by name (step07-1, step07-per-core, step07-workers:
    /// a master and 8 worker processes, the one that holds 100000) or prefix; repeatable.
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
    /// (default 2s, 1s with --quick; longer past 50000 connections, up to 4s, to stay at 25000
    /// requests per second).
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
    /// Spread source addresses over 127.0.0.1..=127.0.0.N (default: as many as the connections
    /// need, one per ~28k ephemeral ports). The client processes are computed from the
    /// descriptor limit.
    #[arg(long)]
    pub source_addresses: Option<u8>,
    /// Run every configuration at each of these counts, e.g. 1000,2000,5000,10000,20000,50000,100000,
    /// smallest first, and draw the charts (see bench/README.md). A configuration is not run past a
    /// cap ("capped at N"), a count it cannot hold ("cannot hold: …") or the count where it broke
    /// ("broke at N"). Each point is short: --interval defaults to 1s (up to 4s past 25000
    /// connections), --hold to 3s (at least one interval); writes sweep.json, sweep.md and
    /// sweep-*.svg into --out (default target/bench-results/DATE-sweep/).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["connections", "stop_one_worker"])]
    pub sweep: Vec<usize>,
    /// The balancing lesson, for the --workers configurations (step07-workers-4 and
    /// step07-workers-4-exclusive by default): once every connection is open, SIGSTOP the worker
    /// holding the most connections for --stop-for, then SIGCONT; reports the latency of the requests
    /// made during the stop, the connections stuck on the stopped worker, and how many of a burst of
    /// new connections made during the stop were answered within 1 s. Replaces --hold.
    #[arg(long)]
    pub stop_one_worker: bool,
    /// How long --stop-one-worker keeps the worker stopped (at least --interval, so that every
    /// connection asks during the stop).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub stop_for: Duration,
}

impl C10kOptions {
    pub(crate) fn connections(&self) -> usize {
        self.connections
            .unwrap_or(if self.quick { 1000 } else { 10_000 })
    }

    pub(crate) fn interval(&self) -> Duration {
        let least = Duration::from_secs(if self.quick { 1 } else { 2 });
        // Past 50,000 connections, longer, so that the machine does not spend its two cores on
        // requests alone; never as long as the servers' 5 s idle timeout.
        let spread = Duration::from_secs_f64(self.connections() as f64 / REQUESTS_PER_SECOND);
        self.interval
            .unwrap_or(spread.clamp(least, Duration::from_secs(4)))
    }

    /// How long the connections are held once open; under `--stop-one-worker`, the settling time
    /// and the stop.
    pub(crate) fn hold(&self) -> Duration {
        if self.stop_one_worker {
            return crate::balance::SETTLE + self.stop_for;
        }
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
    /// How the generator was spread: client processes and source addresses.
    #[serde(default)]
    pub spread: Option<ClientSpread>,
    /// Server user memory per established connection, bytes: growth of the resident memory of
    /// the server's process tree from before the connections to its peak while they are held.
    #[serde(default)]
    pub user_bytes_per_connection: Option<f64>,
    /// Kernel memory per established connection, bytes: growth of `SUnreclaim` in
    /// `/proc/meminfo` (machine-wide, so both ends of each loopback connection) over the same
    /// span.
    #[serde(default)]
    pub kernel_bytes_per_connection: Option<f64>,
    /// Descriptors each server process (each worker, under a master) gained while the
    /// connections were held, at the moment the tree held the most: connections per worker.
    #[serde(default)]
    pub held_per_worker: Vec<u64>,
    /// Latency of the requests made once every connection was open (while all were held; under
    /// `--stop-one-worker`, during the stop). `None` in results written before it was measured.
    #[serde(default)]
    pub held_latency: Option<LatencySummary>,
    /// What `--stop-one-worker` measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<crate::balance::StopFigures>,
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
    // Before the steps are built: the build may replace this very executable, and the path of
    // the running one then reads "… (deleted)".
    bench_exe();
    let header = Header::now(command);
    let root = DocRoot::create().context("cannot create the document root")?;
    let mut subjects = subjects(options)?;
    if options.stop_one_worker {
        for subject in &subjects {
            crate::balance::plan_stop(subject, options).map_err(anyhow::Error::msg)?;
        }
    }
    // Raise the descriptor limit (the servers inherit it) and refuse, in one line, before building
    // or starting anything, a count that a server or the generator cannot reach. A configuration
    // that only came with the default selection is skipped instead, with its one line.
    let limits = MachineLimits::of_this_machine()
        .context("cannot read the descriptor limit or the ephemeral port range")?;
    let mut skipped = Vec::new();
    let chosen =
        |subject: &Subject| !matches!(subject, Subject::Step(_)) || !options.steps.is_empty();
    for subject in &subjects {
        match spread_for(subject, options, limits) {
            Ok(_) => {}
            Err(why) if chosen(subject) => anyhow::bail!(why),
            Err(why) => {
                eprintln!("bench: skipping {}: {why}", subject.name());
                skipped.push(C10kRecord {
                    server: subject.name(),
                    asked: options.connections(),
                    note: Some(format!("not run: {why}")),
                    error: Some(format!("cannot hold: {why}")),
                    ..C10kRecord::default()
                });
            }
        }
    }
    subjects.retain(|subject| spread_for(subject, options, limits).is_ok());
    let binaries = Subject::build(&subjects);
    let mut warmed_up = options.no_warmup;
    let runs = output::interleave(&subjects, options.repeat, 1, |subject, round, progress| {
        if !warmed_up {
            warm_up(subject, root.path(), &binaries, options, limits, progress);
            warmed_up = true;
        }
        let record = hold_subject(subject, root.path(), &binaries, options, limits, progress);
        progress.advance();
        vec![C10kRecord { round, ..record }]
    });
    let runs = runs.into_iter().chain(skipped).collect();
    let results = Results { header, runs };
    if let Some(out) = &options.out {
        output::write(out, "c10k", &results, &markdown(&results))?;
    }
    Ok(results)
}

/// The servers selected by `options`: the steps (all when nothing else is named, or by `--step`;
/// with `--stop-one-worker`, by default the four-worker configurations; with `--sweep`, by default
/// one configuration per model, beside nginx and the peers), `--url`, nginx, peers.
pub(crate) fn subjects(options: &C10kOptions) -> anyhow::Result<Vec<Subject>> {
    let urls = options
        .url
        .iter()
        .map(|url| Subject::External(url.clone(), url.clone()));
    let mut subjects: Vec<Subject> = urls.collect();
    let sweeping = !options.sweep.is_empty();
    // A sweep draws every model beside nginx and the peers, so they do not replace the steps.
    let steps_too = !options.steps.is_empty()
        || (options.url.is_none()
            && (sweeping || (options.nginx_workers.is_empty() && options.peers.is_empty())));
    let balancing = crate::balance::DEFAULT_STEPS.map(str::to_owned);
    let one_per_model = crate::sweep::DEFAULT_STEPS.map(str::to_owned);
    let steps = match (steps_too, options.steps.is_empty()) {
        (false, _) => None,
        (true, true) if options.stop_one_worker => Some(&balancing[..]),
        (true, true) if sweeping => Some(&one_per_model[..]),
        (true, _) => Some(options.steps.as_slice()),
    };
    subjects.extend(Subject::list(steps, &options.nginx_workers)?);
    Subject::add_peers(&mut subjects, &options.peers);
    Ok(subjects)
}

/// Opens the connections to the first server once, unrecorded. Whichever server runs first in a
/// process pays for the kernel growing its socket caches and the generator touching its memory for
/// the first time: its first requests wait milliseconds where later runs' wait microseconds.
pub(crate) fn warm_up(
    subject: &Subject,
    root: &Path,
    binaries: &Binaries,
    options: &C10kOptions,
    limits: MachineLimits,
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
    let _ = hold_subject(subject, root, binaries, &ramp_only, limits, progress);
}

// ANCHOR: spread_for
/// How `subject`'s connections are spread over client processes and source addresses, or the
/// one line saying why the count cannot be reached.
pub(crate) fn spread_for(
    subject: &Subject,
    options: &C10kOptions,
    limits: MachineLimits,
) -> Result<ClientSpread, String> {
    let (connections, _) = connections_for(subject, options);
    let name = subject.name();
    let server = match subject {
        // A process or a thread per connection is capped well below the limit; step 7's
        // --workers and nginx hold their connections in so many processes.
        Subject::Step(spec) if spec.per_connection_task => None,
        Subject::Step(spec) => Some((name.as_str(), server_processes(spec), None)),
        Subject::Peer(peer) => {
            peer_capacity(peer).map(|(processes, own_cap)| (name.as_str(), processes, own_cap))
        }
        Subject::External(..) => None,
    };
    ClientSpread::plan(connections, limits, options.source_addresses, server)
}
// ANCHOR_END: spread_for

/// nginx's `worker_connections` in `bench/nginx/nginx.sh`: what one nginx worker holds at most.
const NGINX_WORKER_CONNECTIONS: u64 = 16_384;

/// How many processes a peer holds its connections in, and how many each takes at most by its
/// configuration (`bench/peers/`); `None` for a process per connection (Apache's prefork),
/// capped like the steps that work that way.
fn peer_capacity(peer: &Peer) -> Option<(u64, Option<u64>)> {
    let workers = u64::from(peer.workers);
    match peer.kind.name {
        "apache-prefork" => None,
        "nginx" => Some((workers, Some(NGINX_WORKER_CONNECTIONS))),
        "lighttpd" => Some((workers, Some(10_000))),
        "h2o" => Some((1, Some(16_384))),
        _ => Some((1, None)),
    }
}

/// How many processes `subject` holds its connections in (`None`: a process per connection, or
/// not known).
pub(crate) fn worker_processes(subject: &Subject) -> Option<u64> {
    match subject {
        Subject::Step(spec) if spec.per_connection_task => None,
        Subject::Step(spec) => Some(server_processes(spec)),
        Subject::Peer(peer) => peer_capacity(peer).map(|(processes, _)| processes),
        Subject::External(..) => None,
    }
}

/// How many processes a step configuration holds its connections in: step 7's `--workers N`,
/// else one.
fn server_processes(spec: &ServerSpec) -> u64 {
    let workers = spec
        .args
        .iter()
        .position(|arg| *arg == "--workers")
        .filter(|_| spec.package == "step07-epoll")
        .and_then(|at| spec.args.get(at + 1))
        .and_then(|n| n.parse().ok());
    workers.unwrap_or(1)
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

pub(crate) fn hold_subject(
    subject: &Subject,
    root: &Path,
    binaries: &Binaries,
    options: &C10kOptions,
    limits: MachineLimits,
    progress: &Progress,
) -> C10kRecord {
    let name = subject.name();
    let spread = match spread_for(subject, options, limits) {
        Ok(spread) => spread,
        Err(error) => {
            return C10kRecord {
                server: name,
                asked: options.connections(),
                error: Some(error),
                ..C10kRecord::default()
            };
        }
    };
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
            "bench: {name}: opening {connections} connections to {url} from {} client \
             process(es) and {} source address(es)",
            spread.processes, spread.sources
        ));
        let held = hold(&url, live.pid(), connections, options, spread);
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
    spread: ClientSpread,
) -> Result<C10kRecord, String> {
    let target = Target::parse(url).map_err(|error| error.to_string())?;
    let ramp = ramp_for(connections, options.interval());
    let mut config = LoadConfig::new(target, connections, ramp + options.hold());
    config.rate = Some(connections as f64 / options.interval().as_secs_f64().max(0.001));
    config.ramp = Some(ramp);
    // The requests in flight at the end get their answer (or their timeout): "unanswered" is
    // then what the server left waiting, not what the clock cut.
    config.drain = Some(options.timeout);
    config.timeout = options.timeout;
    config.source_addresses = spread.sources;
    // The requests made once every connection is open: while all are held (or, stopping a
    // worker, during the stop).
    let settle = if options.stop_one_worker {
        crate::balance::SETTLE
    } else {
        Duration::ZERO
    };
    config.held_after = Some(ramp + settle);
    let bench_exe =
        bench_exe().ok_or("cannot find the bench executable for the client processes")?;
    let counters_before = TcpCounters::read();
    let memory = pid.map(MemorySampler::start);
    let stopper = pid
        .filter(|_| options.stop_one_worker)
        .map(|pid| crate::balance::Stopper::start(pid, url, ramp + settle, options.stop_for));
    let measured = measure::measure_with(&config, Duration::ZERO, pid, |config| {
        clients::run_spread(config, spread.processes, bench_exe)
    });
    let memory = memory.map(MemorySampler::finish);
    let tcp = counters_before.since(TcpCounters::read());
    let (result, cost) = measured.map_err(|error| error.to_string())?;
    let stop = stopper
        .map(|stopper| stopper.finish(&result.tally.held_latency))
        .transpose()?;
    let established = result.open_at_end.max(1) as f64;
    let user_bytes_per_connection = memory.as_ref().zip(cost).map(|(memory, cost)| {
        cost.peak_rss_kib.saturating_sub(memory.rss_before_kib) as f64 * 1024.0 / established
    });
    let kernel_bytes_per_connection = memory
        .as_ref()
        .map(|memory| memory.kernel_growth_kib as f64 * 1024.0 / established);
    Ok(C10kRecord {
        spread: Some(spread),
        user_bytes_per_connection,
        kernel_bytes_per_connection,
        held_per_worker: memory
            .map(|memory| memory.held_per_worker)
            .unwrap_or_default(),
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
        held_latency: result.report.held_latency,
        stop,
        ..C10kRecord::default()
    })
}

/// This executable, which runs the client processes (`bench c10k-client`), as found at start.
pub(crate) fn bench_exe() -> Option<&'static Path> {
    static BENCH_EXE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BENCH_EXE
        .get_or_init(|| std::env::current_exe().ok())
        .as_deref()
}

/// The total request rate the default interval stays under, past 50,000 connections.
pub(crate) const REQUESTS_PER_SECOND: f64 = 25_000.0;

/// How fast connections are opened at most: 100,000 of them at once would be a flood of
/// handshakes that two cores (both the server's and the generator's) spend seconds on, and every
/// request of the ramp would wait for it.
const OPENS_PER_SECOND: f64 = 10_000.0;

/// How long the connections take to open: one interval, or longer at [`OPENS_PER_SECOND`].
fn ramp_for(connections: usize, interval: Duration) -> Duration {
    interval.max(Duration::from_secs_f64(
        connections as f64 / OPENS_PER_SECOND,
    ))
}

const TABLE: &str = "| server | connections | established | requests | errors | unanswered | p50 | p99 | max | server RSS MiB | user B / conn | kernel B / conn | held per worker | threads | processes | descriptors | SYN retransmits / listen overflows | clients × sources | note |\n\
    |---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

/// How the memory columns are measured, under the table.
pub(crate) const MEMORY_NOTE: &str = "User memory per connection: growth of the server's resident memory \
    (its whole process tree, from `/proc`) from before the connections to its peak while they are \
    held, over the connections established. Kernel memory per connection: growth of `SUnreclaim` \
    in `/proc/meminfo` over the same span, machine-wide: on loopback it holds both ends of each \
    connection, and whatever else the machine did meanwhile. Held per worker: descriptors each \
    server process gained, min–max over the processes.";

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
    let table = format!("{}\n{MEMORY_NOTE}\n", output::table(TABLE, rows));
    let mut page = results.page("C10K", &table);
    let stops: Vec<Vec<String>> = results.runs.iter().filter_map(stop_row).collect();
    if !stops.is_empty() {
        page += &format!(
            "\n{}",
            output::anchored("stop", &output::table(STOP_TABLE, stops))
        );
    }
    page
}

const STOP_TABLE: &str = "| server | round | stopped for | held per worker | stuck on the stopped one | their requests answered after > 1 s | new connections | their requests | answered within 1 s | unanswered | errors | p99 of new |\n\
    |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n";

/// One `--stop-one-worker` run as a row of the stop table.
fn stop_row(run: &C10kRecord) -> Option<Vec<String>> {
    let stop = run.stop.as_ref()?;
    Some(vec![
        run.server.clone(),
        run.round.to_string(),
        format!("{:.1} s", stop.stopped_for_s),
        or_dash(held_per_worker(&stop.held_per_worker)),
        stop.stuck.to_string(),
        format!("{} of {}", stop.held_waited_over_1s, stop.held_requests),
        stop.new_connections.to_string(),
        stop.new_requests.to_string(),
        stop.new_answered_within_1s.to_string(),
        stop.new_unanswered.to_string(),
        output::all_errors(&stop.new_errors),
        stats::us(stop.new_latency.p99_us),
    ])
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
        or_dash(run.user_bytes_per_connection.map(|b| format!("{b:.0}"))),
        or_dash(run.kernel_bytes_per_connection.map(|b| format!("{b:.0}"))),
        or_dash(held_per_worker(&run.held_per_worker)),
        or_dash(run.server_threads),
        or_dash(run.server_processes),
        or_dash(run.server_fds),
        or_dash(tcp),
        or_dash(
            run.spread
                .map(|spread| format!("{} × {}", spread.processes, spread.sources)),
        ),
        note.map_or_else(String::new, |note| note.replace('|', "/")),
    ]
}

/// `12480–12530`, or the one figure of a single process.
pub(crate) fn held_per_worker(held: &[u64]) -> Option<String> {
    let (least, most) = (held.iter().min()?, held.iter().max()?);
    Some(if least == most {
        least.to_string()
    } else {
        format!("{least}–{most}")
    })
}

/// What the memory columns need, sampled beside the load: the server tree's resident memory
/// before it, the machine's unreclaimable slab before and at its peak, and the descriptors of each
/// server process.
#[derive(Debug, Clone, Default)]
struct MemoryFigures {
    rss_before_kib: u64,
    kernel_growth_kib: u64,
    held_per_worker: Vec<u64>,
}

/// Samples [`MemoryFigures`] on a thread until [`MemorySampler::finish`].
struct MemorySampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<MemoryFigures>,
}

/// How often the slab and the workers' descriptors are read.
const MEMORY_PERIOD: Duration = Duration::from_millis(250);

impl MemorySampler {
    fn start(pid: u32) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let rss_before_kib = testkit::procfs::sample_tree(pid).rss_kib;
        let slab_before = unreclaimable_slab_kib().unwrap_or(0);
        let fds_before: Vec<(u32, usize)> = server_processes_of(pid)
            .into_iter()
            .map(|p| (p, testkit::procfs::fd_count(p)))
            .collect();
        let thread = std::thread::spawn(move || {
            let mut figures = MemoryFigures {
                rss_before_kib,
                ..MemoryFigures::default()
            };
            let mut most_held = 0;
            while !stopping.load(Ordering::Relaxed) {
                let slab = unreclaimable_slab_kib().unwrap_or(slab_before);
                figures.kernel_growth_kib = figures
                    .kernel_growth_kib
                    .max(slab.saturating_sub(slab_before));
                let held: Vec<u64> = server_processes_of(pid)
                    .into_iter()
                    .map(|p| {
                        let before = fds_before
                            .iter()
                            .find(|(q, _)| *q == p)
                            .map_or(0, |(_, n)| *n);
                        testkit::procfs::fd_count(p).saturating_sub(before) as u64
                    })
                    .collect();
                if held.iter().sum::<u64>() > most_held {
                    most_held = held.iter().sum();
                    figures.held_per_worker = held;
                }
                std::thread::sleep(MEMORY_PERIOD);
            }
            figures
        });
        Self { stop, thread }
    }

    fn finish(self) -> MemoryFigures {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The processes that hold connections: the workers under a master, or the server itself.
fn server_processes_of(pid: u32) -> Vec<u32> {
    let children = testkit::procfs::child_pids(pid);
    if children.is_empty() {
        vec![pid]
    } else {
        children
    }
}

/// `SUnreclaim` of `/proc/meminfo`, KiB: where the kernel's socket structures live.
fn unreclaimable_slab_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("SUnreclaim:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caps `peer_capacity` states are the ones the peers' configurations set.
    #[test]
    fn peer_caps_are_those_of_their_configurations() {
        let conf = |file: &str| std::fs::read_to_string(format!("peers/{file}")).unwrap();
        let cap = |name: &str| peer_capacity(&Peer::parse(name).unwrap()).and_then(|(_, cap)| cap);
        assert!(conf("lighttpd.conf").contains(&format!(
            "server.max-connections = {}",
            cap("lighttpd").unwrap()
        )));
        assert!(conf("h2o.conf").contains(&format!("max-connections: {}", cap("h2o").unwrap())));
        let nginx = std::fs::read_to_string("nginx/nginx.sh").unwrap();
        assert!(nginx.contains(&format!("worker_connections {}", cap("nginx").unwrap())));
        assert_eq!(
            peer_capacity(&Peer::parse("nginx:4").unwrap()).map(|(p, _)| p),
            Some(4)
        );
        assert_eq!(peer_capacity(&Peer::parse("apache-prefork").unwrap()), None);
    }

    #[test]
    fn a_sweep_runs_one_configuration_per_model_beside_nginx() {
        let names = |options: &C10kOptions| -> Vec<String> {
            subjects(options)
                .unwrap()
                .iter()
                .map(Subject::name)
                .collect()
        };
        let sweep = C10kOptions {
            sweep: vec![1000, 2000],
            nginx_workers: vec![8],
            ..C10kOptions::default()
        };
        let swept = names(&sweep);
        assert_eq!(
            swept.len(),
            crate::sweep::DEFAULT_STEPS.len() + 1,
            "{swept:?}"
        );
        assert!(swept.contains(&"step08-1".to_owned()) && swept.contains(&"nginx-8".to_owned()));
        let one = C10kOptions {
            steps: vec!["step07-1".into()],
            ..sweep.clone()
        };
        assert_eq!(names(&one), ["step07-1", "nginx-8"]);
        let nginx_alone = C10kOptions {
            sweep: Vec::new(),
            ..sweep
        };
        assert_eq!(names(&nginx_alone), ["nginx-8"]);
    }

    #[test]
    fn a_stopped_worker_gets_a_table_of_its_own() {
        let plain = C10kRecord {
            server: "step07-workers-4".into(),
            ..C10kRecord::default()
        };
        let stopped = C10kRecord {
            stop: Some(crate::balance::StopFigures {
                stopped_for_s: 3.0,
                held_per_worker: vec![2400, 2600],
                stuck: 2600,
                held_requests: 5200,
                held_waited_over_1s: 2600,
                new_connections: 200,
                ..crate::balance::StopFigures::default()
            }),
            ..plain.clone()
        };
        let results = |runs| C10kResults {
            header: Header::now("bench c10k --stop-one-worker"),
            runs,
        };
        assert!(!markdown(&results(vec![plain])).contains("ANCHOR: stop"));
        let page = markdown(&results(vec![stopped]));
        let stop = page.split("<!-- ANCHOR: stop -->").nth(1).unwrap();
        assert!(
            stop.contains(
                "| step07-workers-4 | 0 | 3.0 s | 2400–2600 | 2600 | 2600 of 5200 | 200 |"
            ),
            "{stop}"
        );
    }

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
