//! `compare`: every step (and optional production servers, `--peer`) under the same scenarios, one
//! after the other, each server as its own process; writes `results.json`, `results.md` and SVG
//! charts. `--syscalls` adds a counted run per server and scenario (see [`crate::syscalls`]).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::charts;
use crate::docroot::{BIG_PATH, DocRoot, SMALL_PATH};
use crate::engine::LoadConfig;
use crate::machine::Header;
use crate::measure::{self, Live, ServerCost, Subject};
use crate::output::{self, Progress, Spread, or_dash};
use crate::peers::{self, Peer};
use crate::server::{self, Binaries};
use crate::stats::{self, Report};
use crate::syscalls::{self, SyscallCount};
use crate::target::Target;

/// One cell of the scenario matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// A new connection per request (`Connection: close`) instead of keep-alive.
    pub close: bool,
    /// Concurrent connections.
    pub connections: usize,
    /// The 1 MiB file instead of the small page.
    pub big: bool,
}

impl Scenario {
    /// A file-name-friendly key, e.g. `keep-alive-c64-small`.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}-c{}-{}", self.mode(), self.connections, self.file())
    }

    /// A human title, e.g. `keep-alive, 64 connections, small page`.
    fn title(&self) -> String {
        let file = if self.big { "1 MiB file" } else { "small page" };
        format!("{}, {} connections, {file}", self.mode(), self.connections)
    }

    fn mode(&self) -> &'static str {
        if self.close { "close" } else { "keep-alive" }
    }

    fn file(&self) -> &'static str {
        if self.big { "1mib" } else { "small" }
    }

    fn path(&self) -> &'static str {
        if self.big { BIG_PATH } else { SMALL_PATH }
    }
}

// ANCHOR: matrix
/// The scenarios: {keep-alive, connection per request} × {1, 16, 64, 256 connections} × {small page,
/// 1 MiB file}; `quick` keeps three of them, at 16 connections.
#[must_use]
pub fn matrix(quick: bool) -> Vec<Scenario> {
    let mut scenarios = Vec::new();
    for big in [false, true] {
        for close in [false, true] {
            for connections in [1, 16, 64, 256] {
                scenarios.push(Scenario {
                    close,
                    connections,
                    big,
                });
            }
        }
    }
    if quick {
        scenarios.retain(|s| s.connections == 16 && !(s.close && s.big));
    }
    scenarios
}
// ANCHOR_END: matrix

/// What `compare` was asked to do; also its command-line options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CompareOptions {
    /// Three scenarios and short runs (under a minute once the workspace is built).
    #[arg(long)]
    pub quick: bool,
    /// Only these configurations (e.g. step07, step04-pool, step02-files); repeatable.
    #[arg(long = "only")]
    pub only: Vec<String>,
    /// Measure only the reference servers (--peer, --nginx, --target), no step.
    #[arg(long)]
    pub no_steps: bool,
    /// A production server started beside the steps on the same document root, NAME or NAME:N
    /// (N processes or threads): nginx, h2o, lighttpd, apache-prefork, apache-worker, apache-event,
    /// caddy. Repeatable: --peer h2o --peer h2o:2.
    #[arg(long = "peer", value_parser = Peer::parse)]
    pub peers: Vec<Peer>,
    /// An external server NAME=URL (e.g. nginx=http://127.0.0.1:8088/); it must serve /index.html and
    /// a 1 MiB /big.bin. Repeatable.
    #[arg(long = "target", value_parser = parse_target)]
    pub targets: Vec<(String, String)>,
    /// Start nginx (installed from Debian if missing) with this many workers on the same document
    /// root, as a reference: the same as --peer nginx:N. Repeatable: --nginx 1 --nginx 2.
    #[arg(long = "nginx")]
    pub nginx_workers: Vec<u32>,
    /// Output directory (default target/bench-results/DATE/, which git ignores).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measured time per run (default 5s; 1s with --quick).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Warm-up per run (default 1s; 250ms with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Generator threads.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Only this scenario of the full matrix, e.g. keep-alive-c64-small or close-c256-1mib
    /// (repeatable).
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Run everything N times, interleaved (every server once, then again…): the tables show the
    /// median with the min–max spread, results.json keeps every run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Also count system calls per request: after each timed run of the first round, a separate run
    /// of a fixed number of requests counted by `perf stat -e raw_syscalls:sys_enter` (else
    /// `strace -c -f`).
    #[arg(long)]
    pub syscalls: bool,
}

fn parse_target(text: &str) -> anyhow::Result<(String, String)> {
    let (name, url) = text.split_once('=').context("expected NAME=URL")?;
    Target::parse(url)?;
    Ok((name.to_owned(), url.to_owned()))
}

/// One server under one scenario, in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Server configuration name.
    pub server: String,
    /// Scenario key.
    pub scenario: String,
    /// `keep-alive` or `close`.
    pub mode: String,
    /// Connections.
    pub connections: usize,
    /// `small` or `1mib`.
    pub file: String,
    /// Which of the `--repeat` rounds (1-based).
    #[serde(default = "output::first_round")]
    pub round: u32,
    /// What the generator measured, unless the run could not happen.
    pub load: Option<Report>,
    /// What the server spent, when its process is known.
    pub server_cost: Option<ServerCost>,
    /// Why the run failed or is incomplete.
    pub error: Option<String>,
    /// With `--syscalls`, in the first round: the separate counted run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<SyscallCount>,
}

impl RunRecord {
    /// The record of `server` under `scenario` in `round`: what was measured, or why nothing was.
    fn new(
        server: &str,
        scenario: &Scenario,
        round: u32,
        measured: Result<(Report, Option<ServerCost>), String>,
    ) -> Self {
        let (load, server_cost, error) = match measured {
            Ok((load, cost)) => {
                let error = (load.requests == 0).then(|| "no successful request".to_owned());
                (Some(load), cost, error)
            }
            Err(error) => (None, None, Some(error)),
        };
        Self {
            server: server.to_owned(),
            scenario: scenario.key(),
            mode: scenario.mode().to_owned(),
            connections: scenario.connections,
            file: scenario.file().to_owned(),
            round,
            load,
            server_cost,
            error,
            syscalls: None,
        }
    }
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareResults {
    /// Where, when and how.
    #[serde(flatten)]
    pub header: Header,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds per run.
    pub warmup_s: f64,
    /// Generator threads.
    pub generator_threads: usize,
    /// Every run of every round.
    pub runs: Vec<RunRecord>,
}

/// The fixed parameters of every run.
struct RunPlan<'a> {
    scenarios: &'a [Scenario],
    duration: Duration,
    warmup: Duration,
    threads: usize,
    root: &'a Path,
    binaries: Binaries,
    syscalls: bool,
}

/// Runs the comparison, recording `command` with the results, and returns the directory it wrote.
///
/// # Errors
///
/// When nothing can be measured or the results cannot be written. A server that fails to build, start
/// or answer is recorded in the results, not an error.
pub fn run(options: &CompareOptions, command: &str) -> anyhow::Result<PathBuf> {
    crate::sys::raise_nofile_limit().context("RLIMIT_NOFILE")?;
    let subjects = subjects(options)?;
    let scenarios = select_scenarios(options)?;
    let root = DocRoot::create().context("cannot create the document root")?;
    let quick_or = |quick, full| if options.quick { quick } else { full };
    let plan = RunPlan {
        scenarios: &scenarios,
        duration: options
            .duration
            .unwrap_or(quick_or(Duration::from_secs(1), Duration::from_secs(5))),
        warmup: options
            .warmup
            .unwrap_or(quick_or(Duration::from_millis(250), Duration::from_secs(1))),
        threads: options.threads.max(1),
        root: root.path(),
        binaries: Subject::build(&subjects),
        syscalls: options.syscalls,
    };
    let header = Header::now(command);
    let runs = output::interleave(
        &subjects,
        options.repeat.max(1),
        scenarios.len(),
        |subject, round, progress| measure_subject(subject, &plan, round, progress),
    );
    let results = CompareResults {
        header,
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        generator_threads: plan.threads,
        runs,
    };
    let out = options.out.clone().unwrap_or_else(|| {
        let results_dir = server::workspace_root().join("target/bench-results");
        results_dir.join(results.header.day())
    });
    output::write(&out, "results", &results, &markdown(&results, &scenarios))?;
    write_charts(&out, &results, &scenarios)?;
    Ok(out)
}

fn select_scenarios(options: &CompareOptions) -> anyhow::Result<Vec<Scenario>> {
    if options.scenarios.is_empty() {
        return Ok(matrix(options.quick));
    }
    let all = matrix(false);
    let keys: Vec<String> = all.iter().map(Scenario::key).collect();
    let chosen: Vec<Scenario> = all
        .into_iter()
        .filter(|s| options.scenarios.contains(&s.key()))
        .collect();
    anyhow::ensure!(
        chosen.len() == options.scenarios.len(),
        "unknown scenario in {:?}; known: {}",
        options.scenarios,
        keys.join(", ")
    );
    Ok(chosen)
}

fn subjects(options: &CompareOptions) -> anyhow::Result<Vec<Subject>> {
    let steps = (!options.no_steps).then_some(options.only.as_slice());
    let mut subjects = Subject::list(steps, &options.nginx_workers)?;
    Subject::add_peers(&mut subjects, &options.peers);
    let externals = options.targets.iter().cloned();
    subjects.extend(externals.map(|(name, url)| Subject::External(name, url)));
    anyhow::ensure!(!subjects.is_empty(), "nothing to measure");
    Ok(subjects)
}

fn measure_subject(
    subject: &Subject,
    plan: &RunPlan<'_>,
    round: u32,
    progress: &Progress,
) -> Vec<RunRecord> {
    let name = subject.name();
    let start = || subject.start(plan.root, &plan.binaries);
    let mut live = start();
    let mut records = Vec::new();
    for scenario in plan.scenarios {
        // A server that died in an earlier scenario is restarted once per scenario.
        if let Some(server) = live.as_mut().ok().and_then(|live| live.server.as_mut())
            && let Err(error) = server.check_alive()
        {
            progress.line(&format!("bench: {name}: {error}; restarting"));
            live = start();
        }
        let measured = match &live {
            Ok(live) => measure_scenario(live, scenario, plan),
            Err(error) => Err(format!("{error:#}")),
        };
        let mut record = RunRecord::new(&name, scenario, round, measured);
        if let (true, 1, Ok(live)) = (plan.syscalls, round, &live) {
            match count_syscalls(live, scenario, plan) {
                Ok(count) => record.syscalls = Some(count),
                Err(error) => {
                    let error = format!("syscalls not counted: {error}");
                    record.error.get_or_insert(error);
                }
            }
        }
        progress.line(&progress_line(&record));
        progress.advance();
        records.push(record);
    }
    if let Ok(live) = live
        && !live.stop()
    {
        progress.line(&format!("bench: {name}: did not exit cleanly on SIGTERM"));
    }
    records
}

fn measure_scenario(
    live: &Live,
    scenario: &Scenario,
    plan: &RunPlan<'_>,
) -> Result<(Report, Option<ServerCost>), String> {
    let target = Target::parse(&live.url(scenario.path())).map_err(|error| error.to_string())?;
    let mut config = LoadConfig::new(target, scenario.connections, plan.duration);
    config.threads = plan.threads;
    config.close = scenario.close;
    config.timeout = Duration::from_secs(3);
    let (result, cost) =
        measure::measure(&config, plan.warmup, live.pid()).map_err(|error| error.to_string())?;
    Ok((result.report, cost))
}

/// The counted run of `--syscalls`: a fixed number of requests (fewer of the 1 MiB file), counted,
/// at most 30 s.
fn count_syscalls(
    live: &Live,
    scenario: &Scenario,
    plan: &RunPlan<'_>,
) -> Result<SyscallCount, String> {
    let pid = live.pid().ok_or("not our process")?;
    let target = Target::parse(&live.url(scenario.path())).map_err(|error| error.to_string())?;
    let mut config = LoadConfig::new(target, scenario.connections, Duration::from_secs(30));
    config.threads = plan.threads;
    config.close = scenario.close;
    config.timeout = Duration::from_secs(10);
    config.requests = Some(if scenario.big { 200 } else { 2000 });
    syscalls::count(&config, pid)
}

fn progress_line(record: &RunRecord) -> String {
    let figures = record.load.as_ref().map_or_else(String::new, |load| {
        format!(
            "{:>9.0} req/s  p99 {:>8}  errors {:>5}  starved {:>3}  server {}",
            load.requests_per_s,
            stats::us(load.latency.p99_us),
            load.errors.total(),
            or_dash(load.starved_connections),
            or_dash(
                record
                    .server_cost
                    .map(|c| format!("{:.1} µs/req", c.cpu_us_per_request))
            ),
        )
    });
    let error = record
        .error
        .as_deref()
        .map(|e| format!("  ({e})"))
        .unwrap_or_default();
    let syscalls = (record.syscalls.as_ref())
        .map(|count| format!("  syscalls {:.1}/req", count.per_request))
        .unwrap_or_default();
    format!(
        "{:<16} {:<22} #{} {figures}{syscalls}{error}",
        record.server, record.scenario, record.round
    )
}

/// Redraws `results.md` and the charts of a directory written by [`run`] from its `results.json` (after
/// a change to the charts or the table, without measuring again; `results.json` is left as it was).
///
/// # Errors
///
/// When `results.json` cannot be read or parsed, or the outputs cannot be written.
pub fn replot(out: &Path) -> anyhow::Result<()> {
    let results: CompareResults = output::read(out, "results")?;
    let measured = |s: &Scenario| results.runs.iter().any(|run| run.scenario == s.key());
    let scenarios: Vec<Scenario> = matrix(false).into_iter().filter(measured).collect();
    fs::write(out.join("results.md"), markdown(&results, &scenarios))?;
    write_charts(out, &results, &scenarios)
}

fn write_charts(
    out: &Path,
    results: &CompareResults,
    scenarios: &[Scenario],
) -> anyhow::Result<()> {
    for scenario in scenarios {
        let rows = summarize(results, scenario);
        let medians: Vec<_> = rows.iter().map(|row| (&row.server, row.median())).collect();
        let bars: Vec<(String, f64)> = (medians.iter())
            .map(|&(server, load)| (server.clone(), load.map_or(0.0, |load| load.requests_per_s)))
            .collect();
        let lines: Vec<(String, stats::LatencySummary)> = (medians.iter())
            .filter_map(|&(server, load)| {
                Some((server.clone(), load.filter(|l| l.requests > 0)?.latency))
            })
            .collect();
        let (key, title) = (scenario.key(), scenario.title());
        charts::throughput(&out.join(format!("throughput-{key}.svg")), &title, &bars)?;
        let latency_title = format!("latency: {title}");
        charts::latency(
            &out.join(format!("latency-{key}.svg")),
            &latency_title,
            &lines,
        )?;
    }
    Ok(())
}

/// One server's runs of one scenario, over every round.
struct Row<'a> {
    server: String,
    runs: Vec<&'a RunRecord>,
}

impl<'a> Row<'a> {
    fn measured(&self) -> Vec<&'a RunRecord> {
        let measured = self.runs.iter().filter(|run| run.load.is_some());
        measured.copied().collect()
    }

    /// The run with the median rate: its latencies and costs stand for the row.
    fn median_run(&self) -> Option<&'a RunRecord> {
        output::median_by(&self.measured(), |run| {
            run.load.as_ref().map_or(0.0, |load| load.requests_per_s)
        })
    }

    fn median(&self) -> Option<&'a Report> {
        self.median_run()?.load.as_ref()
    }

    /// A figure of the median run, with its min–max over the rounds when there are several.
    fn spread(&self, figure: fn(&RunRecord) -> Option<f64>, format: fn(f64) -> String) -> String {
        let measured = self.measured();
        Spread::of(measured.iter().filter_map(|run| figure(run)))
            .map_or_else(|| "—".to_owned(), |s| s.show(measured.len(), format))
    }

    fn rate(&self) -> String {
        self.spread(
            |run| Some(run.load.as_ref()?.requests_per_s),
            |v| format!("{v:.0}"),
        )
    }

    /// System calls per request of the counted run, if there was one.
    fn syscalls(&self) -> String {
        let count = self.runs.iter().find_map(|run| run.syscalls.as_ref());
        or_dash(count.map(|count| format!("{:.1}", count.per_request)))
    }

    /// The server's name; a peer's with the step it stands beside.
    fn label(&self) -> String {
        match Peer::from_name(&self.server) {
            Some(peer) => format!("{} (beside {})", self.server, peer.counterpart()),
            None => self.server.clone(),
        }
    }

    fn server_cpu(&self) -> String {
        self.spread(
            |run| Some(run.server_cost?.cpu_us_per_request),
            |v| format!("{v:.1}"),
        )
    }
}

/// The rows of a scenario's table, servers in the order they were measured.
fn summarize<'a>(results: &'a CompareResults, scenario: &Scenario) -> Vec<Row<'a>> {
    let runs = results.runs.iter().filter(|r| r.scenario == scenario.key());
    let groups = output::by_server(runs, |run| &run.server);
    groups
        .into_iter()
        .map(|(server, runs)| Row { server, runs })
        .collect()
}

const SCENARIO_TABLE: &str = "| server | req/s | MiB/s | p50 | p99 | p99.9 | errors | starved | server CPU µs/req | client CPU µs/req | \
    peak RSS MiB | threads | processes | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

/// [`SCENARIO_TABLE`] with a system calls column after server CPU.
const SCENARIO_TABLE_SYSCALLS: &str = "| server | req/s | MiB/s | p50 | p99 | p99.9 | errors | starved | server CPU µs/req | syscalls/req | \
    client CPU µs/req | peak RSS MiB | threads | processes | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

const SERVER_TABLE: &str = "| scenario | req/s | p99 | server CPU µs/req | errors | starved |\n\
    |---|---:|---:|---:|---:|---:|\n";

/// The Markdown report: one table per scenario, each between mdBook anchors named by its key.
fn markdown(results: &CompareResults, scenarios: &[Scenario]) -> String {
    let rounds = results.runs.iter().map(|run| run.round).max().unwrap_or(1);
    let mut text = results.header.preamble("Comparison of the servers");
    let _ = writeln!(
        text,
        "- Each run: {:.2} s warm-up, then {:.2} s measured; generator: `bench load` with {} thread(s) \
         on the same machine{}.",
        results.warmup_s,
        results.duration_s,
        results.generator_threads,
        if rounds > 1 {
            format!(
                "; {rounds} interleaved rounds: each row is the round with the median req/s, ranges are min–max over the rounds"
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        text,
        "- Server CPU is user + system time of the server's whole process tree (reaped children \
         included) from /proc; peak RSS is the largest sampled sum of VmRSS over the tree (or VmHWM).\n\
         - \"starved\": connections none of whose requests ended during the run (the server left them \
         waiting); the rate is then that of the other connections only.\n"
    );
    let counted = results.runs.iter().find_map(|run| run.syscalls.as_ref());
    let with_syscalls = counted.is_some();
    if let Some(count) = counted {
        let _ = writeln!(
            text,
            "- syscalls/req: system calls of the server's process tree per request in a separate run \
             of the first round (2,000 requests, 200 of the 1 MiB file) counted by `{}`, never in a \
             timed run.\n",
            count.tool
        );
    }
    text.push_str(&peers_section(results));
    for scenario in scenarios {
        let key = scenario.key();
        let rows = summarize(results, scenario)
            .iter()
            .map(|row| scenario_row(row, with_syscalls))
            .collect::<Vec<_>>();
        let header = if with_syscalls {
            SCENARIO_TABLE_SYSCALLS
        } else {
            SCENARIO_TABLE
        };
        let _ = writeln!(text, "## {}\n", scenario.title());
        text.push_str(&output::anchored(&key, &output::table(header, rows)));
        let _ = writeln!(
            text,
            "\n![requests per second](throughput-{key}.svg)\n![latency](latency-{key}.svg)\n"
        );
    }
    text.push_str(&server_tables(results, scenarios));
    text
}

/// The production servers measured, each with its model and the step it stands beside (empty when
/// there was none).
fn peers_section(results: &CompareResults) -> String {
    let servers = output::by_server(&results.runs, |run| &run.server);
    let peers: Vec<Peer> = (servers.iter())
        .filter_map(|(server, _)| Peer::from_name(server))
        .collect();
    if peers.is_empty() {
        return String::new();
    }
    let table = output::anchored("peers", &peers::table(&peers));
    format!("## The production servers beside the steps\n\n{table}\n")
}

/// One table per server and file size, the scenarios as rows: what a step's chapter shows of its
/// own server. Anchored `SERVER-small` and `SERVER-1mib`.
fn server_tables(results: &CompareResults, scenarios: &[Scenario]) -> String {
    let mut text = String::from("## Server by server\n\n");
    for (server, _) in output::by_server(&results.runs, |run| &run.server) {
        for big in [false, true] {
            let rows = scenarios
                .iter()
                .filter(|s| s.big == big)
                .filter_map(|scenario| {
                    let rows = summarize(results, scenario);
                    let row = rows.iter().find(|row| row.server == server)?;
                    Some(server_row(&scenario.title(), row))
                });
            let key = format!("{server}-{}", if big { "1mib" } else { "small" });
            let _ = writeln!(text, "### {key}\n");
            text.push_str(&output::anchored(&key, &output::table(SERVER_TABLE, rows)));
            text.push('\n');
        }
    }
    text
}

fn server_row(title: &str, row: &Row<'_>) -> Vec<String> {
    let Some(load) = row.median() else {
        return [title, "—", "—", "—", "—", "—"].map(str::to_owned).into();
    };
    vec![
        title.to_owned(),
        row.rate(),
        stats::us(load.latency.p99_us),
        row.server_cpu(),
        error_cell(load),
        or_dash(load.starved_connections),
    ]
}

fn scenario_row(row: &Row<'_>, with_syscalls: bool) -> Vec<String> {
    let note = row.runs.iter().find_map(|run| run.error.clone());
    let mut note = note.unwrap_or_default().replace('|', "/");
    let (Some(run), Some(load)) = (row.median_run(), row.median()) else {
        let dashes = std::iter::repeat_n("—".to_owned(), 12 + usize::from(with_syscalls));
        return std::iter::once(row.label())
            .chain(dashes)
            .chain([note])
            .collect();
    };
    if let Some(starved) = load.starved_connections.filter(|&starved| starved > 0) {
        let connections = load.connections;
        note = format!("{starved} of {connections} connections starved; {note}");
    }
    let cost = run.server_cost;
    let mut cells = vec![
        row.label(),
        row.rate(),
        format!("{:.1}", load.bytes_per_s / (1024.0 * 1024.0)),
        stats::us(load.latency.p50_us),
        stats::us(load.latency.p99_us),
        stats::us(load.latency.p999_us),
        error_cell(load),
        or_dash(load.starved_connections),
        row.server_cpu(),
        format!("{:.1}", load.client_cpu_us_per_request),
        or_dash(cost.map(|c| format!("{:.1}", c.peak_rss_kib as f64 / 1024.0))),
        or_dash(cost.map(|c| c.peak_threads)),
        or_dash(cost.map(|c| c.peak_processes)),
        note.trim_end_matches("; ").to_owned(),
    ];
    if with_syscalls {
        cells.insert(9, row.syscalls());
    }
    cells
}

/// The kinds of error that happened, e.g. `3 timeout, 1 reset`, or `0`.
fn error_cell(load: &Report) -> String {
    let parts: Vec<String> = load
        .errors
        .by_kind()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(command: &str, runs: Vec<RunRecord>) -> CompareResults {
        CompareResults {
            header: Header::now(command),
            duration_s: 1.0,
            warmup_s: 0.0,
            generator_threads: 1,
            runs,
        }
    }

    #[test]
    fn the_matrix_has_every_combination() {
        let full = matrix(false);
        assert_eq!(full.len(), 16);
        let keys: std::collections::HashSet<String> = full.iter().map(Scenario::key).collect();
        assert_eq!(keys.len(), 16);
        assert!(keys.contains("close-c256-1mib") && keys.contains("keep-alive-c1-small"));
        assert_eq!(matrix(true).len(), 3);
    }

    #[test]
    fn failed_runs_appear_in_the_table() {
        let scenario = matrix(true)[0];
        let error = "exited before listening (exit status: 1)".to_owned();
        let failed = RunRecord::new("step09", &scenario, 1, Err(error));
        let text = markdown(&results("bench compare", vec![failed]), &[scenario]);
        assert!(text.contains("| step09 | — |"), "{text}");
        assert!(text.contains("exited before listening"));
        // The server-by-server table names the scenario on its row, under the server's own anchor.
        let own = text
            .split("<!-- ANCHOR: step09-small -->")
            .nth(1)
            .unwrap_or_default();
        assert!(
            own.starts_with("\n| scenario |") || own.starts_with("| scenario |"),
            "{text}"
        );
        assert!(
            own.contains(&format!("| {} | — |", scenario.title())),
            "{text}"
        );
        assert!(text.contains("<!-- ANCHOR_END: step09-small -->"));
    }

    #[test]
    fn repeated_rounds_show_the_median_the_spread_and_starved_connections() {
        let scenario = matrix(true)[0];
        let run = |round: u32, rate: f64, starved: u64| {
            let load = Report {
                requests: 10,
                requests_per_s: rate,
                connections: 16,
                starved_connections: Some(starved),
                ..Report::default()
            };
            RunRecord::new("step04-pool", &scenario, round, Ok((load, None)))
        };
        let runs = vec![run(1, 100.0, 0), run(2, 300.0, 0), run(3, 200.0, 12)];
        let text = markdown(&results("bench compare --repeat 3", runs), &[scenario]);
        let key = scenario.key();
        assert!(
            text.contains(&format!("<!-- ANCHOR: {key} -->"))
                && text.contains(&format!("<!-- ANCHOR_END: {key} -->"))
        );
        assert!(text.contains("| step04-pool | 200 (100–300) |"), "{text}");
        assert!(text.contains("12 of 16 connections starved"), "{text}");
        assert!(text.contains("3 interleaved rounds"), "{text}");
    }
}
