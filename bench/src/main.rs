//! The `bench` command: `load` (a wrk-like load generator), `compare` (every step side by side),
//! `c10k` (ten thousand connections to one server) and `soak` (a bounded run with connection churn).
//!
//! Try `cargo run -p bench --release -- load -c 64 -d 5s http://127.0.0.1:7080/` against a running step,
//! or `cargo run -p bench --release -- compare --quick`. Every command explains itself with `--help`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bench::c10k::{self, C10kOptions};
use bench::compare::{self, CompareOptions};
use bench::engine::{self, LoadConfig};
use bench::output;
use bench::soak::{self, SoakOptions};
use bench::sweep;
use clap::{Parser, Subcommand};

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
    Load {
        #[command(flatten)]
        config: LoadConfig,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Build and start every step, run the scenario matrix against each, and write results.json,
    /// results.md and SVG charts.
    Compare(CompareOptions),
    /// Hold N keep-alive connections to each step (or a URL) and report what it costs the server;
    /// with --sweep, at each of several counts, with charts; with --stop-one-worker, stop a worker.
    C10k(C10kOptions),
    /// A bounded run per step with connection churn, then check that nothing leaked.
    Soak(SoakOptions),
    /// One client process of a `c10k` run spread over several (started by `c10k` itself).
    #[command(hide = true)]
    C10kClient {
        #[command(flatten)]
        config: LoadConfig,
    },
    /// Redraw the tables and charts of a `compare`, `c10k`, `c10k --sweep` or `soak` output
    /// directory from its JSON.
    Replot {
        /// The directory `compare`, `c10k`, `c10k --sweep` or `soak` wrote.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command_line = format!("cargo run -p bench --release -- {}", args.join(" "));
    match command {
        Command::Load { mut config, json } => {
            if config.duration.is_none() && config.requests.is_none() {
                config.duration = Some(Duration::from_secs(10));
            }
            let report = engine::run(&config)?.report;
            emit(&if json {
                serde_json::to_string_pretty(&report)?
            } else {
                report.to_string()
            })
        }
        Command::Compare(options) => {
            let out = compare::run(&options, &command_line)?;
            emit(&format!("results: {}", out.display()))
        }
        Command::C10k(options) if !options.sweep.is_empty() => {
            let (results, out) = sweep::run(&options, &command_line)?;
            emit_table(&sweep::markdown(&results), Some(&out))
        }
        Command::C10k(options) => {
            let results = c10k::run(&options, &command_line)?;
            emit_table(&c10k::markdown(&results), options.out.as_deref())
        }
        Command::C10kClient { config } => bench::clients::client_main(&config),
        Command::Soak(options) => {
            let results = soak::run(&options, &command_line)?;
            emit_table(&soak::markdown(&results), options.out.as_deref())
        }
        Command::Replot { dir } if dir.join("sweep.json").is_file() => sweep::replot(&dir),
        Command::Replot { dir } if dir.join("c10k.json").is_file() => {
            output::rewrite_markdown(&dir, "c10k", c10k::markdown)
        }
        Command::Replot { dir } if dir.join("soak.json").is_file() => {
            output::rewrite_markdown(&dir, "soak", soak::markdown)
        }
        Command::Replot { dir } => compare::replot(&dir),
    }
}

/// Prints a results page without the mdBook anchor lines (only the book needs them), then where it
/// was written.
fn emit_table(markdown: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let lines: Vec<&str> = markdown
        .lines()
        .filter(|line| !line.starts_with("<!-- ANCHOR"))
        .collect();
    emit(&lines.join("\n"))?;
    out.map_or(Ok(()), |out| emit(&format!("wrote {}", out.display())))
}

/// Prints a line on stdout; a reader that went away (`bench … | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
