//! The `bench` command: `load` (a wrk-like load generator), `compare` (every step side by side),
//! `c10k` (ten thousand connections to one server) and `soak` (a bounded run with connection churn).
//!
//! Try `cargo run -p bench --release -- load -c 64 -d 5s http://127.0.0.1:7080/` against a running step,
//! or `cargo run -p bench --release -- compare --quick`. Every command explains itself with `--help`.

use std::process::ExitCode;
use std::time::Duration;

use bench::engine::{self, LoadConfig};
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
        println!("{json}");
    } else {
        println!("{}", result.report);
    }
    Ok(())
}
