//! `soak`: a bounded run per step with connection churn (keep-alive connections closed after a few
//! requests, alternating with a connection per request), then a check that the server is back to its
//! baseline: no descriptor, thread or process left behind, and resident memory where it was.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use testkit::procfs::{self, TreeSample};

use crate::docroot::{DocRoot, SMALL_PATH};
use crate::engine::{self, LoadConfig};
use crate::machine::Header;
use crate::measure::{Live, Subject};
use crate::output::{self, Progress, Results};
use crate::peers::Peer;
use crate::stats::{ErrorCounts, Tally};
use crate::target::Target;

/// Length of each phase (keep-alive with churn, then connection per request).
const PHASE: Duration = Duration::from_secs(10);
/// Requests per keep-alive connection before it is closed and replaced.
const CHURN: u64 = 20;
/// How long to wait for the server to return to its baseline (its idle timeout is 5 s).
const SETTLE: Duration = Duration::from_secs(12);
/// RSS growth tolerated as noise (allocator caches, lazily mapped pages): 25 % or 2 MiB.
const RSS_SLACK_KIB: u64 = 2048;

/// What `soak` was asked to do; also its command-line options.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakOptions {
    /// Configurations to soak (default: all, unless --peer is given); repeatable.
    #[arg(long = "step")]
    pub steps: Vec<String>,
    /// A production server to soak too, NAME or NAME:N (see `compare --peer`); repeatable.
    #[arg(long = "peer", value_parser = Peer::parse)]
    pub peers: Vec<Peer>,
    /// Load time per configuration.
    #[arg(short = 'd', long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 32)]
    pub connections: usize,
    /// Also write soak.json and soak.md into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One server's soak.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakRecord {
    /// Server name.
    pub server: String,
    /// Seconds under load.
    pub duration_s: f64,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Connections opened.
    pub connects: u64,
    /// The server before the load (after a warm-up and the idle timeout).
    pub before: Option<TreeSample>,
    /// The server after the load and the idle timeout.
    pub after: Option<TreeSample>,
    /// What did not return to baseline; empty when nothing leaked.
    pub leaks: Vec<String>,
    /// Why the run failed.
    pub error: Option<String>,
}

/// Everything `soak.json` holds.
pub type SoakResults = Results<SoakRecord>;

/// Runs the soak for every selected configuration, writes `soak.json` and `soak.md` when asked
/// (recording `command`), and returns the results.
///
/// # Errors
///
/// When nothing matches, or the results cannot be written.
pub fn run(options: &SoakOptions, command: &str) -> anyhow::Result<SoakResults> {
    crate::sys::raise_nofile_limit().context("RLIMIT_NOFILE")?;
    let steps_too = !options.steps.is_empty() || options.peers.is_empty();
    let mut subjects = Subject::list(steps_too.then_some(options.steps.as_slice()), &[])?;
    Subject::add_peers(&mut subjects, &options.peers);
    let root = DocRoot::create().context("cannot create the document root")?;
    let binaries = Subject::build(&subjects);
    let header = Header::now(command);
    let runs = output::interleave(&subjects, 1, 1, |subject, _, progress| {
        let name = subject.name();
        let started = subject.start(root.path(), &binaries);
        let soaked = started
            .map_err(|error| format!("{error:#}"))
            .and_then(|running| soak_one(&name, running, options, progress));
        let record = soaked.unwrap_or_else(|error| failed(&name, &error));
        let (errors, leaks) = (record.errors.total(), leaks_text(&record.leaks));
        progress.line(&format!(
            "bench: {}: {} requests, errors {errors}, leaks: {leaks}",
            record.server, record.requests
        ));
        progress.advance();
        vec![record]
    });
    let results = Results { header, runs };
    if let Some(out) = &options.out {
        output::write(out, "soak", &results, &markdown(&results))?;
    }
    Ok(results)
}

fn soak_one(
    name: &str,
    mut running: Live,
    options: &SoakOptions,
    progress: &Progress,
) -> Result<SoakRecord, String> {
    let pid = running.pid().ok_or("not our process")?;
    let target = Target::parse(&running.url(SMALL_PATH)).map_err(|error| error.to_string())?;
    // Warm up first, so that lazily created pools and buffers are part of the baseline.
    let mut warm = LoadConfig::new(
        target.clone(),
        options.connections.min(8),
        Duration::from_secs(1),
    );
    warm.timeout = Duration::from_secs(3);
    engine::run(&warm).map_err(|error| error.to_string())?;
    let before = settle(pid, None);
    progress.line(&format!(
        "bench: {name}: soaking for {:?}",
        options.duration
    ));
    let started = Instant::now();
    let mut tally = Tally::new();
    let mut close = false;
    while started.elapsed() < options.duration {
        let phase = PHASE
            .min(options.duration.saturating_sub(started.elapsed()))
            .max(Duration::from_millis(100));
        let mut config = LoadConfig::new(target.clone(), options.connections, phase);
        config.close = close;
        config.requests_per_connection = Some(CHURN);
        config.timeout = Duration::from_secs(3);
        let result = engine::run(&config).map_err(|error| error.to_string())?;
        tally.merge(&result.tally);
        close = !close;
    }
    let duration_s = started.elapsed().as_secs_f64();
    let after = settle(pid, Some(&before));
    let mut leaks = leaks(&before, &after);
    if let Some(Err(error)) = running.server.as_mut().map(|server| server.check_alive()) {
        leaks.push(error.to_string());
    }
    let _ = running.stop();
    Ok(SoakRecord {
        server: name.to_owned(),
        duration_s,
        requests: tally.requests,
        errors: tally.errors,
        connects: tally.connects,
        before: Some(before),
        after: Some(after),
        leaks,
        error: None,
    })
}

/// Waits until the server is idle (no more descriptors, threads or processes than `baseline`, or, for
/// the baseline itself, until two samples agree), at most [`SETTLE`]; returns the last sample.
fn settle(pid: u32, baseline: Option<&TreeSample>) -> TreeSample {
    let counts = |sample: &TreeSample| [sample.fds, sample.threads, sample.processes];
    let deadline = Instant::now() + SETTLE;
    let mut last = procfs::sample_tree(pid);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = procfs::sample_tree(pid);
        let settled = match baseline {
            Some(base) => counts(&now)
                .iter()
                .zip(counts(base))
                .all(|(now, base)| *now <= base),
            None => counts(&now) == counts(&last),
        };
        last = now;
        if settled || Instant::now() >= deadline {
            return last;
        }
    }
}

fn leaks(before: &TreeSample, after: &TreeSample) -> Vec<String> {
    let mut leaks = Vec::new();
    let mut check = |what: &str, before: u64, after: u64| {
        if after > before {
            leaks.push(format!("{what} {before} → {after}"));
        }
    };
    check("descriptors", before.fds, after.fds);
    check("threads", before.threads, after.threads);
    check("processes", before.processes, after.processes);
    let allowed = before.rss_kib + (before.rss_kib / 4).max(RSS_SLACK_KIB);
    if after.rss_kib > allowed {
        leaks.push(format!(
            "RSS {} KiB → {} KiB",
            before.rss_kib, after.rss_kib
        ));
    }
    leaks
}

/// What leaked, `none` when nothing did.
fn leaks_text(leaks: &[String]) -> String {
    if leaks.is_empty() {
        "none".to_owned()
    } else {
        leaks.join("; ")
    }
}

fn failed(name: &str, error: &str) -> SoakRecord {
    eprintln!("bench: {name}: {error}");
    SoakRecord {
        server: name.to_owned(),
        error: Some(error.to_owned()),
        ..SoakRecord::default()
    }
}

const TABLE: &str = "| server | seconds | requests | connections | errors | descriptors | threads | processes | RSS MiB | leaks |\n\
    |---|---:|---:|---:|---|---|---|---|---|---|\n";

/// The results as a Markdown table.
#[must_use]
pub fn markdown(results: &SoakResults) -> String {
    let rows = results.runs.iter().map(|run| {
        let (b, a) = (run.before.as_ref(), run.after.as_ref());
        let pair = |field: fn(&TreeSample) -> String| match (b, a) {
            (Some(b), Some(a)) => format!("{} → {}", field(b), field(a)),
            _ => "—".to_owned(),
        };
        let verdict = run.error.clone().unwrap_or_else(|| leaks_text(&run.leaks));
        vec![
            run.server.clone(),
            format!("{:.0}", run.duration_s),
            run.requests.to_string(),
            run.connects.to_string(),
            output::all_errors(&run.errors),
            pair(|s| s.fds.to_string()),
            pair(|s| s.threads.to_string()),
            pair(|s| s.processes.to_string()),
            pair(|s| format!("{:.1}", s.rss_kib as f64 / 1024.0)),
            verdict.replace('|', "/"),
        ]
    });
    results.page("Soak", &output::table(TABLE, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_did_not_return_to_baseline() {
        let before = TreeSample {
            cpu_s: 0.0,
            rss_kib: 10_000,
            threads: 3,
            processes: 1,
            fds: 8,
        };
        let within_slack = TreeSample {
            rss_kib: 11_000,
            ..before
        };
        assert!(leaks(&before, &within_slack).is_empty());
        let after = TreeSample {
            fds: 9,
            threads: 4,
            rss_kib: 40_000,
            ..before
        };
        assert_eq!(leaks(&before, &after).len(), 3);
    }
}
