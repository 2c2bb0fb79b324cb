//! `compare`: every step (and optional reference servers) under the same scenarios, one after the
//! other, each server as its own process; writes `results.json`, `results.md` and SVG charts.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::charts;
use crate::docroot::{BIG_PATH, DocRoot, SMALL_PATH};
use crate::engine::LoadConfig;
use crate::machine::{self, Machine};
use crate::measure::{self, ServerCost};
use crate::output::{self, Progress, Spread};
use crate::server::{self, Binaries, Server, ServerSpec};
use crate::stats::{self, Report};
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
    #[must_use]
    pub fn title(&self) -> String {
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
/// 1 MiB file}; `quick` keeps three of them.
#[must_use]
pub fn matrix(quick: bool) -> Vec<Scenario> {
    if quick {
        let at_16 = |close, big| Scenario {
            close,
            connections: 16,
            big,
        };
        return vec![at_16(false, false), at_16(true, false), at_16(false, true)];
    }
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
    /// Measure only the reference servers (--nginx, --target), no step.
    #[arg(long)]
    pub no_steps: bool,
    /// An external server NAME=URL (e.g. nginx=http://127.0.0.1:8088/); it must serve /index.html and
    /// a 1 MiB /big.bin. Repeatable.
    #[arg(long = "target", value_parser = parse_target)]
    pub targets: Vec<(String, String)>,
    /// Start nginx (installed from Debian if missing) with this many workers on the same document
    /// root, as a reference. Repeatable: --nginx 1 --nginx 2.
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
    /// The command line, recorded with the results.
    #[arg(skip)]
    pub command_line: String,
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
    #[serde(default = "first_round")]
    pub round: u32,
    /// What the generator measured, unless the run could not happen.
    pub load: Option<Report>,
    /// What the server spent, when its process is known.
    pub server_cost: Option<ServerCost>,
    /// Why the run failed or is incomplete.
    pub error: Option<String>,
}

const fn first_round() -> u32 {
    1
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareResults {
    /// The machine.
    pub machine: Machine,
    /// When (UTC).
    pub date: String,
    /// The exact command.
    pub command: String,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds per run.
    pub warmup_s: f64,
    /// Generator threads.
    pub generator_threads: usize,
    /// Every run of every round.
    pub runs: Vec<RunRecord>,
}

/// A server to measure.
enum Subject {
    Step(ServerSpec),
    Nginx(u32),
    External(String, String),
}

impl Subject {
    fn name(&self) -> String {
        match self {
            Self::Step(spec) => spec.name.to_owned(),
            Self::Nginx(workers) => format!("nginx-{workers}"),
            Self::External(name, _) => name.clone(),
        }
    }

    /// Starts it (an external server is only a URL: its process is not ours).
    fn start(&self, root: &Path, binaries: &Binaries) -> anyhow::Result<Live> {
        Ok(match self {
            Self::Step(spec) => {
                Live::Server(server::start(binaries.get(spec.package)?, root, spec.args)?)
            }
            Self::Nginx(workers) => Live::Server(server::start_nginx(*workers, root)?),
            Self::External(_, url) => Live::External(url.trim_end_matches('/').to_owned()),
        })
    }
}

/// A server that is running, or an external one.
enum Live {
    Server(Server),
    External(String),
}

impl Live {
    fn url(&self, path: &str) -> String {
        match self {
            Self::Server(server) => server.url(path),
            Self::External(base) => format!("{base}{path}"),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Server(server) => Some(server.pid()),
            Self::External(_) => None,
        }
    }
}

/// The fixed parameters of every run.
struct RunPlan<'a> {
    scenarios: &'a [Scenario],
    duration: Duration,
    warmup: Duration,
    threads: usize,
    root: &'a Path,
}

/// Runs the comparison and returns the directory it wrote.
///
/// # Errors
///
/// When nothing can be measured or the results cannot be written. A server that fails to build, start
/// or answer is recorded in the results, not an error.
pub fn run(options: &CompareOptions) -> anyhow::Result<PathBuf> {
    crate::sys::raise_nofile_limit().context("RLIMIT_NOFILE")?;
    let subjects = subjects(options)?;
    let scenarios = select_scenarios(options)?;
    let root = DocRoot::create().context("cannot create the document root")?;
    let binaries = server::build_if(subjects.iter().any(|s| matches!(s, Subject::Step(_))));
    let default = |quick, full| if options.quick { quick } else { full };
    let duration = options
        .duration
        .unwrap_or(default(Duration::from_secs(1), Duration::from_secs(5)));
    let warmup = options
        .warmup
        .unwrap_or(default(Duration::from_millis(250), Duration::from_secs(1)));
    let (date, stamp) = machine::utc_now();
    let mut results = CompareResults {
        machine: Machine::describe(),
        date: stamp,
        command: options.command_line.clone(),
        duration_s: duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        generator_threads: options.threads.max(1),
        runs: Vec::new(),
    };
    let plan = RunPlan {
        scenarios: &scenarios,
        duration,
        warmup,
        threads: options.threads.max(1),
        root: root.path(),
    };
    let progress = Progress::new(subjects.len() * scenarios.len() * options.repeat.max(1) as usize);
    for round in 1..=options.repeat.max(1) {
        for subject in &subjects {
            results
                .runs
                .extend(measure_subject(subject, &plan, &binaries, round, &progress));
        }
    }
    drop(progress);
    let out = options.out.clone().unwrap_or_else(|| {
        server::workspace_root()
            .join("target/bench-results")
            .join(date)
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
    let chosen: Vec<Scenario> = all
        .iter()
        .filter(|s| options.scenarios.contains(&s.key()))
        .copied()
        .collect();
    if chosen.len() < options.scenarios.len() {
        let keys: Vec<String> = all.iter().map(Scenario::key).collect();
        anyhow::bail!(
            "unknown scenario in {:?}; known: {}",
            options.scenarios,
            keys.join(", ")
        );
    }
    Ok(chosen)
}

fn subjects(options: &CompareOptions) -> anyhow::Result<Vec<Subject>> {
    let mut subjects: Vec<Subject> = Vec::new();
    if !options.no_steps {
        subjects.extend(
            server::select(&options.only)?
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
    let externals = options
        .targets
        .iter()
        .map(|(name, url)| Subject::External(name.clone(), url.clone()));
    subjects.extend(externals);
    anyhow::ensure!(!subjects.is_empty(), "nothing to measure");
    Ok(subjects)
}

fn measure_subject(
    subject: &Subject,
    plan: &RunPlan<'_>,
    binaries: &Binaries,
    round: u32,
    progress: &Progress,
) -> Vec<RunRecord> {
    let name = subject.name();
    let mut live = subject.start(plan.root, binaries);
    let mut records = Vec::new();
    for scenario in plan.scenarios {
        // A server that died in an earlier scenario is restarted once per scenario.
        if let Ok(Live::Server(server)) = &mut live
            && let Err(error) = server.check_alive()
        {
            progress.line(&format!("bench: {name}: {error}; restarting"));
            live = subject.start(plan.root, binaries);
        }
        let record = match &live {
            Ok(server) => measure_scenario(&name, server, scenario, plan),
            Err(error) => failed(&name, scenario, &format!("{error:#}")),
        };
        progress.line(&progress_line(&record, round));
        progress.advance();
        records.push(RunRecord { round, ..record });
    }
    if let Ok(Live::Server(server)) = live
        && !server.stop()
    {
        progress.line(&format!("bench: {name}: did not exit cleanly on SIGTERM"));
    }
    records
}

fn measure_scenario(
    name: &str,
    server: &Live,
    scenario: &Scenario,
    plan: &RunPlan<'_>,
) -> RunRecord {
    let target = match Target::parse(&server.url(scenario.path())) {
        Ok(target) => target,
        Err(error) => return failed(name, scenario, &error.to_string()),
    };
    let mut config = LoadConfig::new(target, scenario.connections, plan.duration);
    config.threads = plan.threads;
    config.close = scenario.close;
    config.timeout = Duration::from_secs(3);
    match measure::measure(&config, plan.warmup, server.pid()) {
        Ok((result, cost)) => {
            let error = (result.report.requests == 0).then(|| "no successful request".to_owned());
            RunRecord {
                load: Some(result.report),
                server_cost: cost,
                error,
                ..failed(name, scenario, "")
            }
        }
        Err(error) => failed(name, scenario, &error.to_string()),
    }
}

fn failed(name: &str, scenario: &Scenario, error: &str) -> RunRecord {
    RunRecord {
        server: name.to_owned(),
        scenario: scenario.key(),
        mode: scenario.mode().to_owned(),
        connections: scenario.connections,
        file: scenario.file().to_owned(),
        round: 1,
        load: None,
        server_cost: None,
        error: (!error.is_empty()).then(|| error.to_owned()),
    }
}

fn progress_line(record: &RunRecord, round: u32) -> String {
    let figures = match (&record.load, &record.server_cost) {
        (Some(load), cost) => format!(
            "{:>9.0} req/s  p99 {:>8}  errors {:>5}  starved {:>3}  server {}",
            load.requests_per_s,
            stats::us(load.latency.p99_us),
            load.errors.total(),
            load.starved_connections
                .map_or_else(|| "—".to_owned(), |n| n.to_string()),
            cost.map_or_else(
                || "—".to_owned(),
                |c| format!("{:.1} µs/req", c.cpu_us_per_request)
            ),
        ),
        (None, _) => String::new(),
    };
    let error = record
        .error
        .as_deref()
        .map(|e| format!("  ({e})"))
        .unwrap_or_default();
    format!(
        "{:<16} {:<22} #{round} {figures}{error}",
        record.server, record.scenario
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
    let mut scenarios: Vec<Scenario> = Vec::new();
    for run in &results.runs {
        let scenario = Scenario {
            close: run.mode == "close",
            connections: run.connections,
            big: run.file == "1mib",
        };
        if !scenarios.contains(&scenario) {
            scenarios.push(scenario);
        }
    }
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
        let bars: Vec<(String, f64)> = rows
            .iter()
            .map(|row| {
                (
                    row.server.clone(),
                    row.median().map_or(0.0, |l| l.requests_per_s),
                )
            })
            .collect();
        let title = scenario.title();
        charts::throughput(
            &out.join(format!("throughput-{}.svg", scenario.key())),
            &title,
            &bars,
        )?;
        let lines: Vec<(String, stats::LatencySummary)> = rows
            .iter()
            .filter_map(|row| {
                Some((
                    row.server.clone(),
                    row.median().filter(|l| l.requests > 0)?.latency,
                ))
            })
            .collect();
        charts::latency(
            &out.join(format!("latency-{}.svg", scenario.key())),
            &format!("latency: {title}"),
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

impl Row<'_> {
    fn measured(&self) -> Vec<&RunRecord> {
        self.runs
            .iter()
            .copied()
            .filter(|run| run.load.is_some())
            .collect()
    }

    /// The run with the median rate: its latencies and costs stand for the row.
    fn median_run(&self) -> Option<&RunRecord> {
        let measured = self.measured();
        let index = output::median_index(&measured, |run| {
            run.load.as_ref().map_or(0.0, |l| l.requests_per_s)
        })?;
        Some(measured[index])
    }

    fn median(&self) -> Option<&Report> {
        self.median_run()?.load.as_ref()
    }
}

/// The rows of a scenario's table, servers in the order they were measured.
fn summarize<'a>(results: &'a CompareResults, scenario: &Scenario) -> Vec<Row<'a>> {
    let mut rows: Vec<Row<'a>> = Vec::new();
    for run in results.runs.iter().filter(|r| r.scenario == scenario.key()) {
        match rows.iter_mut().find(|row| row.server == run.server) {
            Some(row) => row.runs.push(run),
            None => rows.push(Row {
                server: run.server.clone(),
                runs: vec![run],
            }),
        }
    }
    rows
}

/// The Markdown report: one table per scenario, each between mdBook anchors named by its key.
#[must_use]
pub fn markdown(results: &CompareResults, scenarios: &[Scenario]) -> String {
    let rounds = results.runs.iter().map(|run| run.round).max().unwrap_or(1);
    let mut text = output::preamble(
        "Comparison of the servers",
        &results.machine,
        &results.date,
        &results.command,
    );
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
    for scenario in scenarios {
        let _ = writeln!(text, "## {}\n", scenario.title());
        let mut table = String::from(
            "| server | req/s | MiB/s | p50 | p99 | p99.9 | errors | starved | server CPU µs/req | client CPU µs/req | \
             peak RSS MiB | threads | processes | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for row in summarize(results, scenario) {
            let _ = writeln!(table, "{}", table_row(&row));
        }
        text.push_str(&output::anchored(&scenario.key(), &table));
        let _ = writeln!(
            text,
            "\n![requests per second](throughput-{0}.svg)\n![latency](latency-{0}.svg)\n",
            scenario.key()
        );
    }
    text.push_str(&server_tables(results, scenarios));
    text
}

/// One table per server and file size, the scenarios as rows: what a step's chapter shows of its
/// own server. Anchored `SERVER-small` and `SERVER-1mib`.
fn server_tables(results: &CompareResults, scenarios: &[Scenario]) -> String {
    let mut servers: Vec<&str> = Vec::new();
    for run in &results.runs {
        if !servers.contains(&run.server.as_str()) {
            servers.push(&run.server);
        }
    }
    let mut text = String::from("## Server by server\n\n");
    for server in servers {
        for big in [false, true] {
            let mut table = String::from(
                "| scenario | req/s | p99 | server CPU µs/req | errors | starved |\n|---|---:|---:|---:|---:|---:|\n",
            );
            for scenario in scenarios.iter().filter(|scenario| scenario.big == big) {
                let rows = summarize(results, scenario);
                let Some(row) = rows.iter().find(|row| row.server == server) else {
                    continue;
                };
                let _ = writeln!(table, "{}", server_row(&scenario.title(), row));
            }
            let key = format!("{server}-{}", if big { "1mib" } else { "small" });
            let _ = writeln!(text, "### {key}\n");
            text.push_str(&output::anchored(&key, &table));
            text.push('\n');
        }
    }
    text
}

fn server_row(title: &str, row: &Row<'_>) -> String {
    let (Some(_), Some(load)) = (row.median_run(), row.median()) else {
        return format!("| {title} | — | — | — | — | — |");
    };
    let measured = row.measured();
    let spread = |figure: fn(&RunRecord) -> Option<f64>, format: fn(f64) -> String| {
        Spread::of(measured.iter().filter_map(|run| figure(run)))
            .map_or_else(|| "—".to_owned(), |s| s.show(measured.len(), format))
    };
    format!(
        "| {title} | {} | {} | {} | {} | {} |",
        spread(
            |run| Some(run.load.as_ref()?.requests_per_s),
            |v| format!("{v:.0}")
        ),
        stats::us(load.latency.p99_us),
        spread(
            |run| Some(run.server_cost?.cpu_us_per_request),
            |v| format!("{v:.1}")
        ),
        error_cell(load),
        load.starved_connections
            .map_or_else(|| "—".to_owned(), |n| n.to_string()),
    )
}

fn table_row(row: &Row<'_>) -> String {
    let dash = || "—".to_owned();
    let notes: Vec<String> = row
        .runs
        .iter()
        .filter_map(|run| run.error.clone())
        .collect();
    let mut note = notes.first().cloned().unwrap_or_default().replace('|', "/");
    let (Some(run), Some(load)) = (row.median_run(), row.median()) else {
        return format!(
            "| {} | — | — | — | — | — | — | — | — | — | — | — | — | {note} |",
            row.server
        );
    };
    let measured = row.measured();
    let spread = |figure: fn(&RunRecord) -> Option<f64>, format: fn(f64) -> String| {
        Spread::of(measured.iter().filter_map(|run| figure(run)))
            .map_or_else(dash, |s| s.show(measured.len(), format))
    };
    let rate = spread(
        |run| Some(run.load.as_ref()?.requests_per_s),
        |v| format!("{v:.0}"),
    );
    let server_cpu = spread(
        |run| Some(run.server_cost?.cpu_us_per_request),
        |v| format!("{v:.1}"),
    );
    if let Some(starved) = load.starved_connections.filter(|&starved| starved > 0) {
        note = format!(
            "{starved} of {} connections starved; {note}",
            load.connections
        );
    }
    let cost = run.server_cost;
    format!(
        "| {} | {rate} | {:.1} | {} | {} | {} | {} | {} | {server_cpu} | {:.1} | {} | {} | {} | {} |",
        row.server,
        load.bytes_per_s / (1024.0 * 1024.0),
        stats::us(load.latency.p50_us),
        stats::us(load.latency.p99_us),
        stats::us(load.latency.p999_us),
        error_cell(load),
        load.starved_connections
            .map_or_else(dash, |n| n.to_string()),
        load.client_cpu_us_per_request,
        cost.map_or_else(dash, |c| format!("{:.1}", c.peak_rss_kib as f64 / 1024.0)),
        cost.map_or_else(dash, |c| c.peak_threads.to_string()),
        cost.map_or_else(dash, |c| c.peak_processes.to_string()),
        note.trim_end_matches("; "),
    )
}

fn error_cell(load: &Report) -> String {
    let errors = &load.errors;
    if errors.total() == 0 {
        return "0".to_owned();
    }
    let kinds = [
        ("connect", errors.connect),
        ("reset", errors.reset),
        ("timeout", errors.timeout),
        ("status", errors.status),
        ("framing", errors.framing),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let results = CompareResults {
            machine: Machine::describe(),
            date: "2026-01-01T00:00:00Z".into(),
            command: "bench compare".into(),
            duration_s: 1.0,
            warmup_s: 0.0,
            generator_threads: 1,
            runs: vec![failed(
                "step09",
                &scenario,
                "exited before listening (exit status: 1)",
            )],
        };
        let text = markdown(&results, &[scenario]);
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
        let run = |round: u32, rate: f64, starved: u64| RunRecord {
            round,
            load: Some(Report {
                requests: 10,
                requests_per_s: rate,
                connections: 16,
                starved_connections: Some(starved),
                ..Report::default()
            }),
            ..failed("step04-pool", &scenario, "")
        };
        let results = CompareResults {
            machine: Machine::describe(),
            date: "2026-01-01T00:00:00Z".into(),
            command: "bench compare --repeat 3".into(),
            duration_s: 1.0,
            warmup_s: 0.0,
            generator_threads: 1,
            runs: vec![run(1, 100.0, 0), run(2, 300.0, 0), run(3, 200.0, 12)],
        };
        let text = markdown(&results, &[scenario]);
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
