//! The `bench` command: `load` (a wrk-like load generator), `compare` (every step side by side),
//! `c10k` (ten thousand connections to one server) and `soak` (a bounded run with connection churn).
//!
//! Try `cargo run -p bench --release -- load -c 64 -d 5s http://127.0.0.1:7080/` against a running step,
//! or `cargo run -p bench --release -- compare --quick`. Every command explains itself with `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bench::c10k::{self, C10kOptions};
use bench::compare::{self, CompareOptions};
use bench::engine::{self, LoadConfig};
use bench::soak::{self, SoakOptions};
use bench::target::Target;
use clap::{Args, Parser, Subcommand};

/// Measure the servers of progressive-servers (and any HTTP/1.1 server on 127.0.0.1).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate load against one URL and print (or write as JSON) what was measured.
    Load(LoadArgs),
    /// Build and start every step, run the scenario matrix against each, and write results.json,
    /// results.md and SVG charts.
    Compare(CompareArgs),
    /// Hold N keep-alive connections to each step (or a URL) and report what it costs the server.
    C10k(C10kArgs),
    /// A bounded run per step with connection churn, then check that nothing leaked.
    Soak(SoakArgs),
    /// Redraw results.md and the charts of a `compare` output directory from its results.json.
    Replot {
        /// The directory `compare` wrote.
        dir: PathBuf,
    },
}

/// Options of `compare`.
#[derive(Debug, Args)]
struct CompareArgs {
    /// Three scenarios and short runs (under two minutes once built).
    #[arg(long)]
    quick: bool,
    /// Only these configurations (e.g. step07, step04-pool, step02-files); repeatable.
    #[arg(long = "only")]
    only: Vec<String>,
    /// Measure only the reference servers (--nginx, --target), no step.
    #[arg(long)]
    no_steps: bool,
    /// An external server NAME=URL (e.g. nginx=http://127.0.0.1:8088/); it must serve /index.html and
    /// a 1 MiB /big.bin. Repeatable.
    #[arg(long = "target", value_parser = parse_target)]
    targets: Vec<(String, String)>,
    /// Start nginx (installed from Debian if missing) with this many workers on the same document
    /// root, as a reference. Repeatable: --nginx 1 --nginx 2.
    #[arg(long = "nginx")]
    nginx_workers: Vec<u32>,
    /// Output directory (default bench/results/DATE/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measured time per run (default 5s; 1s with --quick).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Warm-up per run (default 1s; 250ms with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    warmup: Option<Duration>,
    /// Generator threads.
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// Only this scenario of the full matrix, e.g. keep-alive-c64-small or close-c256-1mib
    /// (repeatable).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
}

/// Options of `c10k`.
#[derive(Debug, Args)]
struct C10kArgs {
    /// Connections to hold.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Configurations to run (default: all); repeatable.
    #[arg(long = "step")]
    steps: Vec<String>,
    /// An external server (then no step runs unless --step is also given).
    #[arg(long)]
    url: Option<String>,
    /// Also hold the connections to nginx with this many workers (then no step runs unless --step is
    /// also given). Repeatable.
    #[arg(long = "nginx")]
    nginx_workers: Vec<u32>,
    /// A request unanswered after this long fails as `timeout`.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Each connection sends one request per interval (stay under the servers' 5 s idle timeout).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How long to hold the connections once open.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Do not cap the process- and thread-per-connection models (may exhaust the machine).
    #[arg(long)]
    no_caps: bool,
    /// Also write c10k.json and c10k.md into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Spread source addresses over 127.0.0.1..=127.0.0.N.
    #[arg(long, default_value_t = 1)]
    source_addresses: u8,
}

/// Options of `soak`.
#[derive(Debug, Args)]
struct SoakArgs {
    /// Configurations to soak (default: all); repeatable.
    #[arg(long = "step")]
    steps: Vec<String>,
    /// Load time per configuration.
    #[arg(short = 'd', long, default_value = "3m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 32)]
    connections: usize,
    /// Also write soak.json and soak.md into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_target(text: &str) -> Result<(String, String), String> {
    let (name, url) = text.split_once('=').ok_or("expected NAME=URL")?;
    Target::parse(url).map_err(|error| error.to_string())?;
    Ok((name.to_owned(), url.to_owned()))
}

/// Options of `load`.
#[derive(Debug, Args)]
struct LoadArgs {
    /// The URL to request, e.g. http://127.0.0.1:7080/index.html.
    url: String,
    /// Connections to keep open (at most one request in flight on each).
    #[arg(short = 'c', long, default_value_t = 10)]
    connections: usize,
    /// Worker threads (each drives its share of the connections with one event loop).
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// How long to run, e.g. 10s or 1m (default 10s unless -n is given).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many requests have ended.
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// An extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// A new connection for every request (`Connection: close`): measures accept/fork/spawn cost.
    #[arg(long)]
    close: bool,
    /// A request that takes longer than this fails as `timeout`.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Constant total rate in requests per second; latency then counts from each request's intended
    /// start (the coordinated-omission correction of wrk2).
    #[arg(long)]
    rate: Option<f64>,
    /// Spread source addresses over 127.0.0.1..=127.0.0.N (each has ~28k ephemeral ports).
    #[arg(long, default_value_t = 1)]
    source_addresses: u8,
    /// Close each keep-alive connection after this many requests (connection churn).
    #[arg(long)]
    requests_per_connection: Option<u64>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load(args) => load(&args),
        Command::Compare(args) => compare(args),
        Command::C10k(args) => c10k(args),
        Command::Soak(args) => soak(args),
        Command::Replot { dir } => compare::replot(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &LoadArgs) -> Result<(), String> {
    let target = Target::parse(&args.url).map_err(|error| error.to_string())?;
    let duration = match (args.duration, args.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (duration, _) => duration,
    };
    let config = LoadConfig {
        target,
        connections: args.connections,
        threads: args.threads,
        duration,
        requests: args.requests,
        headers: args.headers.clone(),
        close: args.close,
        timeout: args.timeout,
        rate: args.rate,
        source_addresses: args.source_addresses,
        requests_per_connection: args.requests_per_connection,
    };
    let result = engine::run(&config).map_err(|error| error.to_string())?;
    if args.json {
        let json =
            serde_json::to_string_pretty(&result.report).map_err(|error| error.to_string())?;
        emit(&json)?;
    } else {
        emit(&result.report.to_string())?;
    }
    Ok(())
}

/// Prints a line on stdout; a reader that went away (`bench … | head`) is not an error.
fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("stdout: {error}"))
        }
        _ => Ok(()),
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run -p bench --release -- {}", args.join(" "))
}

fn compare(args: CompareArgs) -> Result<(), String> {
    let options = CompareOptions {
        quick: args.quick,
        only: args.only,
        no_steps: args.no_steps,
        targets: args.targets,
        nginx_workers: args.nginx_workers,
        out: args.out,
        duration: args.duration,
        warmup: args.warmup,
        threads: args.threads,
        scenarios: args.scenarios,
        command_line: command_line(),
    };
    let out = compare::run(&options)?;
    emit(&format!("results: {}", out.display()))?;
    Ok(())
}

fn c10k(args: C10kArgs) -> Result<(), String> {
    let options = C10kOptions {
        connections: args.connections,
        steps: args.steps,
        url: args.url,
        nginx_workers: args.nginx_workers,
        timeout: args.timeout,
        interval: args.interval,
        hold: args.hold,
        no_caps: args.no_caps,
        out: args.out,
        source_addresses: args.source_addresses,
        command_line: command_line(),
    };
    let out = options.out.clone();
    let results = c10k::run(&options)?;
    emit(&c10k::markdown(&results))?;
    match out {
        Some(out) => emit(&format!("wrote {}", out.display())),
        None => Ok(()),
    }
}

fn soak(args: SoakArgs) -> Result<(), String> {
    let options = SoakOptions {
        steps: args.steps,
        duration: args.duration,
        connections: args.connections,
        out: args.out,
        command_line: command_line(),
    };
    let out = options.out.clone();
    let results = soak::run(&options)?;
    emit(&soak::markdown(&results))?;
    match out {
        Some(out) => emit(&format!("wrote {}", out.display())),
        None => Ok(()),
    }
}
