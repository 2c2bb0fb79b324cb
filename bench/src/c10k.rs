//! `c10k`: open N keep-alive connections to one server, keep every one of them sending a request every
//! few seconds, and report how many were established, the errors, the latency, and what holding them
//! costs the server (resident memory, threads, processes) at full load.
//!
//! Models that spend a process or a thread per connection are capped at [`C10K_CAP`] connections
//! (10,000 would exhaust this machine's pid space and memory): the output and the results say so, and
//! `--no-caps` lifts the cap for a reader who wants to see it happen on a machine of their own.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::docroot::{DocRoot, SMALL_PATH};
use crate::engine::LoadConfig;
use crate::machine::{self, Machine};
use crate::measure;
use crate::nginx::Nginx;
use crate::server::{self, C10K_CAP, RunningServer, ServerSpec};
use crate::stats::{self, ErrorCounts, LatencySummary};
use crate::target::Target;

/// What `c10k` was asked to do.
#[derive(Debug, Clone)]
pub struct C10kOptions {
    /// Connections to open.
    pub connections: usize,
    /// Configurations to run (names, packages or `stepNN`); empty with no `url`: all of them.
    pub steps: Vec<String>,
    /// An external server instead of the steps.
    pub url: Option<String>,
    /// Also nginx with each of these worker counts (started on the same document root).
    pub nginx_workers: Vec<u32>,
    /// A request unanswered after this long fails as `timeout`.
    pub timeout: Duration,
    /// Each connection sends one request per interval (keep it under the servers' 5 s idle timeout).
    pub interval: Duration,
    /// How long to hold the connections after the first interval (which opens them).
    pub hold: Duration,
    /// Do not cap per-connection-process/thread models.
    pub no_caps: bool,
    /// Also write `c10k.json` and `c10k.md` here.
    pub out: Option<PathBuf>,
    /// Spread the generator's source addresses over this many 127.0.0.x addresses.
    pub source_addresses: u8,
    /// The command line, recorded with the results.
    pub command_line: String,
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

/// Runs the experiment, writes `c10k.json` and `c10k.md` when asked, and returns the results.
///
/// # Errors
///
/// When nothing matches the selection, or the results cannot be written.
pub fn run(options: &C10kOptions) -> Result<C10kResults, String> {
    crate::sys::raise_nofile_limit().map_err(|error| format!("RLIMIT_NOFILE: {error}"))?;
    let (_, stamp) = machine::utc_now();
    let mut results = C10kResults {
        machine: Machine::describe(),
        date: stamp,
        command: options.command_line.clone(),
        runs: Vec::new(),
    };
    let root =
        DocRoot::create().map_err(|error| format!("cannot create the document root: {error}"))?;
    if let Some(url) = &options.url {
        let name = url.clone();
        results
            .runs
            .push(hold(&name, url, None, options.connections, None, options));
    }
    let steps_wanted =
        !options.steps.is_empty() || (options.url.is_none() && options.nginx_workers.is_empty());
    if steps_wanted {
        let specs = server::select(&options.steps);
        if specs.is_empty() {
            return Err(format!("no configuration matches {:?}", options.steps));
        }
        let packages: Vec<&str> = specs.iter().map(|spec| spec.package).collect();
        let (binaries, build_errors) = server::build(&packages);
        for spec in &specs {
            let record = match binaries.get(spec.package) {
                Some(binary) => match server::start(binary, root.path(), spec.args) {
                    Ok(running) => run_step(spec, running, options),
                    Err(error) => failed(spec.name, options.connections, &error),
                },
                None => {
                    let reason = build_errors
                        .get(spec.package)
                        .map_or("not built", String::as_str);
                    failed(spec.name, options.connections, &format!("build: {reason}"))
                }
            };
            results.runs.push(record);
        }
    }
    for &workers in &options.nginx_workers {
        let name = format!("nginx-{workers}");
        let record = match Nginx::start(workers, root.path()) {
            Ok(nginx) => hold(
                &name,
                &nginx.url(SMALL_PATH),
                Some(nginx.pid),
                options.connections,
                None,
                options,
            ),
            Err(error) => failed(&name, options.connections, &error),
        };
        results.runs.push(record);
    }
    if let Some(out) = &options.out {
        let io_error = |error: std::io::Error| format!("{}: {error}", out.display());
        fs::create_dir_all(out).map_err(io_error)?;
        let json = serde_json::to_string_pretty(&results).map_err(|error| error.to_string())?;
        fs::write(out.join("c10k.json"), json).map_err(io_error)?;
        fs::write(out.join("c10k.md"), markdown(&results)).map_err(io_error)?;
    }
    Ok(results)
}

fn run_step(spec: &ServerSpec, running: RunningServer, options: &C10kOptions) -> C10kRecord {
    let capped = spec.per_connection_task && !options.no_caps && options.connections > C10K_CAP;
    let connections = if capped {
        C10K_CAP
    } else {
        options.connections
    };
    let note = if capped {
        Some(format!(
            "capped at {C10K_CAP}: one process or thread per connection; {} would exhaust this machine's \
             pid space and memory (--no-caps lifts the cap)",
            options.connections
        ))
    } else if spec.sequential {
        Some("serves one connection at a time: the others wait in the backlog".to_owned())
    } else {
        None
    };
    if let Some(note) = &note {
        eprintln!("bench: {}: {note}", spec.name);
    }
    let url = running.url(SMALL_PATH);
    let record = hold(
        spec.name,
        &url,
        Some(running.pid()),
        connections,
        note,
        options,
    );
    let _ = running.stop();
    record
}

fn hold(
    name: &str,
    url: &str,
    pid: Option<u32>,
    connections: usize,
    note: Option<String>,
    options: &C10kOptions,
) -> C10kRecord {
    eprintln!("bench: {name}: opening {connections} connections to {url}");
    let target = match Target::parse(url) {
        Ok(target) => target,
        Err(error) => return failed(name, options.connections, &error.to_string()),
    };
    let mut config = LoadConfig::new(target, connections, options.interval + options.hold);
    config.rate = Some(connections as f64 / options.interval.as_secs_f64().max(0.001));
    config.timeout = options.timeout;
    config.source_addresses = options.source_addresses;
    match measure::measure(&config, Duration::ZERO, pid) {
        Ok((result, cost)) => C10kRecord {
            server: name.to_owned(),
            asked: options.connections,
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
        },
        Err(error) => failed(name, options.connections, &error.to_string()),
    }
}

fn failed(name: &str, asked: usize, error: &str) -> C10kRecord {
    eprintln!("bench: {name}: {error}");
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
    }
}

/// The results as a Markdown table.
#[must_use]
pub fn markdown(results: &C10kResults) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# C10K\n\n- Machine: {}\n- Date: {}\n- Command: `{}`\n",
        results.machine, results.date, results.command
    );
    let _ = writeln!(
        text,
        "| server | connections | established | requests | errors | unanswered | p50 | p99 | max | server RSS MiB | threads | processes | descriptors | note |"
    );
    let _ = writeln!(
        text,
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let opt = |value: Option<u64>| value.map_or_else(|| "—".to_owned(), |v| v.to_string());
    for run in &results.runs {
        let note = run
            .error
            .clone()
            .or_else(|| run.note.clone())
            .unwrap_or_default()
            .replace('|', "/");
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {note} |",
            run.server,
            run.connections,
            run.established,
            run.requests,
            if run.errors.total() == 0 {
                "0".to_owned()
            } else {
                run.errors.to_string()
            },
            run.unanswered,
            stats::us(run.latency.p50_us),
            stats::us(run.latency.p99_us),
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
    text
}
