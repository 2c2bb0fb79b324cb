//! `compare`: every step (and optional reference servers) under the same scenarios, one after the
//! other, each server as its own process; writes `results.json`, `results.md` and SVG charts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::charts;
use crate::docroot::{BIG_PATH, DocRoot, SMALL_PATH};
use crate::engine::LoadConfig;
use crate::machine::{self, Machine};
use crate::measure::{self, ServerCost};
use crate::nginx::Nginx;
use crate::server::{self, RunningServer, ServerSpec};
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
        return vec![
            Scenario {
                close: false,
                connections: 16,
                big: false,
            },
            Scenario {
                close: true,
                connections: 16,
                big: false,
            },
            Scenario {
                close: false,
                connections: 16,
                big: true,
            },
        ];
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

/// What `compare` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Three scenarios, short runs: under two minutes.
    pub quick: bool,
    /// Only these configurations (names, packages or `stepNN` prefixes); empty: all.
    pub only: Vec<String>,
    /// No step at all, only the reference servers.
    pub no_steps: bool,
    /// External servers, `(name, base URL)`; they must serve `/index.html` and a 1 MiB `/big.bin`.
    pub targets: Vec<(String, String)>,
    /// Start nginx with each of these worker counts as a reference.
    pub nginx_workers: Vec<u32>,
    /// Where to write; default `bench/results/<date>/`.
    pub out: Option<PathBuf>,
    /// Measured time per run (default 5 s, 1 s with `quick`).
    pub duration: Option<Duration>,
    /// Warm-up per run (default 1 s, 0.25 s with `quick`).
    pub warmup: Option<Duration>,
    /// Generator threads.
    pub threads: usize,
    /// Only these scenarios, by key (`keep-alive-c64-small`, `close-c256-1mib`…); empty: the matrix.
    pub scenarios: Vec<String>,
    /// The command line, recorded with the results.
    pub command_line: String,
}

/// One server under one scenario.
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
    /// What the generator measured, unless the run could not happen.
    pub load: Option<Report>,
    /// What the server spent, when its process is known.
    pub server_cost: Option<ServerCost>,
    /// Why the run failed or is incomplete.
    pub error: Option<String>,
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
    /// Every run.
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
}

/// A server that is running (or an external one, whose process we do not own).
enum Live {
    Step(RunningServer),
    Nginx(Nginx),
    External(String),
}

impl Live {
    fn url(&self, path: &str) -> String {
        match self {
            Self::Step(server) => server.url(path),
            Self::Nginx(nginx) => nginx.url(path),
            Self::External(base) => format!("{}{path}", base.trim_end_matches('/')),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Step(server) => Some(server.pid()),
            Self::Nginx(nginx) => Some(nginx.pid),
            Self::External(_) => None,
        }
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self {
            Self::Step(server) => server.check_alive(),
            Self::Nginx(_) | Self::External(_) => Ok(()),
        }
    }
}

/// Runs the comparison and returns the directory it wrote.
///
/// # Errors
///
/// When nothing can be measured or the results cannot be written. A server that fails to build, start
/// or answer is recorded in the results, not an error.
pub fn run(options: &CompareOptions) -> Result<PathBuf, String> {
    crate::sys::raise_nofile_limit().map_err(|error| format!("RLIMIT_NOFILE: {error}"))?;
    let subjects = subjects(options)?;
    let root =
        DocRoot::create().map_err(|error| format!("cannot create the document root: {error}"))?;
    let packages: Vec<&str> = subjects
        .iter()
        .filter_map(|subject| match subject {
            Subject::Step(spec) => Some(spec.package),
            _ => None,
        })
        .collect();
    let (binaries, build_errors) = server::build(&packages);
    let scenarios = select_scenarios(options)?;
    let duration = options.duration.unwrap_or(if options.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    });
    let warmup = options.warmup.unwrap_or(if options.quick {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(1)
    });
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
    for subject in &subjects {
        let records = measure_subject(subject, &plan, &binaries, &build_errors);
        results.runs.extend(records);
    }
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| server::workspace_root().join("bench/results").join(date));
    write_results(&out, &results, &scenarios)?;
    Ok(out)
}

fn select_scenarios(options: &CompareOptions) -> Result<Vec<Scenario>, String> {
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
        return Err(format!(
            "unknown scenario in {:?}; known: {}",
            options.scenarios,
            keys.join(", ")
        ));
    }
    Ok(chosen)
}

fn subjects(options: &CompareOptions) -> Result<Vec<Subject>, String> {
    let mut subjects: Vec<Subject> = Vec::new();
    if !options.no_steps {
        let selected = server::select(&options.only);
        if selected.is_empty() {
            return Err(format!("no configuration matches {:?}", options.only));
        }
        subjects.extend(selected.into_iter().map(Subject::Step));
    }
    subjects.extend(
        options
            .nginx_workers
            .iter()
            .map(|&workers| Subject::Nginx(workers)),
    );
    subjects.extend(
        options
            .targets
            .iter()
            .map(|(name, url)| Subject::External(name.clone(), url.clone())),
    );
    if subjects.is_empty() {
        return Err("nothing to measure".into());
    }
    Ok(subjects)
}

/// The fixed parameters of every run.
struct RunPlan<'a> {
    scenarios: &'a [Scenario],
    duration: Duration,
    warmup: Duration,
    threads: usize,
    root: &'a Path,
}

fn measure_subject(
    subject: &Subject,
    plan: &RunPlan<'_>,
    binaries: &HashMap<String, PathBuf>,
    build_errors: &HashMap<String, String>,
) -> Vec<RunRecord> {
    let name = subject.name();
    let mut live = match start_subject(subject, plan.root, binaries, build_errors) {
        Ok(live) => Some(live),
        Err(error) => {
            eprintln!("bench: {name}: {error}");
            return plan
                .scenarios
                .iter()
                .map(|s| failed(&name, s, &error))
                .collect();
        }
    };
    let mut records = Vec::new();
    for scenario in plan.scenarios {
        // A server that died in an earlier scenario is restarted once per scenario.
        if let Some(Err(error)) = live.as_mut().map(Live::check_alive) {
            eprintln!("bench: {name}: {error}; restarting");
            live = start_subject(subject, plan.root, binaries, build_errors).ok();
        }
        let record = match live.as_ref() {
            Some(server) => measure_scenario(&name, server, scenario, plan),
            None => failed(&name, scenario, "server could not be restarted"),
        };
        print_progress(&record);
        records.push(record);
    }
    if let Some(Live::Step(server)) = live
        && !server.stop()
    {
        eprintln!("bench: {name}: did not exit cleanly on SIGTERM");
    }
    records
}

fn start_subject(
    subject: &Subject,
    root: &Path,
    binaries: &HashMap<String, PathBuf>,
    build_errors: &HashMap<String, String>,
) -> Result<Live, String> {
    match subject {
        Subject::Step(spec) => {
            let Some(binary) = binaries.get(spec.package) else {
                let reason = build_errors
                    .get(spec.package)
                    .map_or("not built", String::as_str);
                return Err(format!("build: {reason}"));
            };
            server::start(binary, root, spec.args).map(Live::Step)
        }
        Subject::Nginx(workers) => Nginx::start(*workers, root).map(Live::Nginx),
        Subject::External(_, url) => Ok(Live::External(url.clone())),
    }
}

fn measure_scenario(
    name: &str,
    server: &Live,
    scenario: &Scenario,
    plan: &RunPlan<'_>,
) -> RunRecord {
    let url = server.url(scenario.path());
    let target = match Target::parse(&url) {
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
        load: None,
        server_cost: None,
        error: (!error.is_empty()).then(|| error.to_owned()),
    }
}

fn print_progress(record: &RunRecord) {
    let figures = match (&record.load, &record.server_cost) {
        (Some(load), cost) => format!(
            "{:>9.0} req/s  p99 {:>8}  errors {:>5}  server {}",
            load.requests_per_s,
            stats::us(load.latency.p99_us),
            load.errors.total(),
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
    eprintln!(
        "{:<16} {:<22} {figures}{error}",
        record.server, record.scenario
    );
}

/// Redraws `results.md` and the charts of a directory written by [`run`] from its `results.json` (after
/// a change to the charts or the table, without measuring again).
///
/// # Errors
///
/// When `results.json` cannot be read or parsed, or the outputs cannot be written.
pub fn replot(out: &Path) -> Result<(), String> {
    let path = out.join("results.json");
    let text = fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    let results: CompareResults =
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
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
    write_results(out, &results, &scenarios)
}

fn write_results(
    out: &Path,
    results: &CompareResults,
    scenarios: &[Scenario],
) -> Result<(), String> {
    let io_error = |error: std::io::Error| format!("{}: {error}", out.display());
    fs::create_dir_all(out).map_err(io_error)?;
    let json = serde_json::to_string_pretty(results).map_err(|error| error.to_string())?;
    fs::write(out.join("results.json"), json).map_err(io_error)?;
    fs::write(out.join("results.md"), markdown(results, scenarios)).map_err(io_error)?;
    for scenario in scenarios {
        let runs: Vec<&RunRecord> = results
            .runs
            .iter()
            .filter(|r| r.scenario == scenario.key())
            .collect();
        let bars: Vec<(String, f64)> = runs
            .iter()
            .map(|r| {
                (
                    r.server.clone(),
                    r.load.as_ref().map_or(0.0, |l| l.requests_per_s),
                )
            })
            .collect();
        let title = scenario.title();
        charts::throughput(
            &out.join(format!("throughput-{}.svg", scenario.key())),
            &title,
            &bars,
        )?;
        let lines: Vec<(String, stats::LatencySummary)> = runs
            .iter()
            .filter_map(|r| {
                Some((
                    r.server.clone(),
                    r.load.as_ref().filter(|l| l.requests > 0)?.latency,
                ))
            })
            .collect();
        let latency_title = format!("latency: {title}");
        charts::latency(
            &out.join(format!("latency-{}.svg", scenario.key())),
            &latency_title,
            &lines,
        )?;
    }
    Ok(())
}

/// The Markdown report: one table per scenario.
#[must_use]
pub fn markdown(results: &CompareResults, scenarios: &[Scenario]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# Comparison of the servers\n");
    let _ = writeln!(text, "- Machine: {}", results.machine);
    let _ = writeln!(text, "- Date: {}", results.date);
    let _ = writeln!(text, "- Command: `{}`", results.command);
    let _ = writeln!(
        text,
        "- Each run: {:.2} s warm-up, then {:.2} s measured; generator: `bench load` with {} thread(s) \
         on the same machine.",
        results.warmup_s, results.duration_s, results.generator_threads
    );
    let _ = writeln!(
        text,
        "- Server CPU is user + system time of the server's whole process tree (reaped children \
         included) from /proc; peak RSS is the largest sampled sum of VmRSS over the tree (or VmHWM).\n"
    );
    for scenario in scenarios {
        let _ = writeln!(text, "## {}\n", scenario.title());
        let _ = writeln!(
            text,
            "| server | req/s | MiB/s | p50 | p99 | p99.9 | errors | server CPU µs/req | client CPU µs/req | \
             peak RSS MiB | threads | processes | note |"
        );
        let _ = writeln!(
            text,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for run in results.runs.iter().filter(|r| r.scenario == scenario.key()) {
            let _ = writeln!(text, "{}", table_row(run));
        }
        let _ = writeln!(
            text,
            "\n![requests per second](throughput-{0}.svg)\n![latency](latency-{0}.svg)\n",
            scenario.key()
        );
    }
    text
}

fn table_row(run: &RunRecord) -> String {
    let dash = || "—".to_owned();
    let note = run.error.clone().unwrap_or_default().replace('|', "/");
    let Some(load) = &run.load else {
        return format!(
            "| {} | — | — | — | — | — | — | — | — | — | — | — | {note} |",
            run.server
        );
    };
    let cost = run.server_cost;
    format!(
        "| {} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {note} |",
        run.server,
        load.requests_per_s,
        load.bytes_per_s / (1024.0 * 1024.0),
        stats::us(load.latency.p50_us),
        stats::us(load.latency.p99_us),
        stats::us(load.latency.p999_us),
        error_cell(load),
        cost.map_or_else(dash, |c| format!("{:.1}", c.cpu_us_per_request)),
        load.client_cpu_us_per_request,
        cost.map_or_else(dash, |c| format!("{:.1}", c.peak_rss_kib as f64 / 1024.0)),
        cost.map_or_else(dash, |c| c.peak_threads.to_string()),
        cost.map_or_else(dash, |c| c.peak_processes.to_string()),
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
    }
}
