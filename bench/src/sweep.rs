//! `c10k --sweep 1000,2000,…,100000`: every model at every count, smallest first, up to where it
//! stops, and the picture of it: three charts, one line per model, connections asked on a
//! logarithmic axis.
//!
//! Each cell (a server at a count) is either run as `c10k --connections COUNT` runs it, with a
//! shorter hold, or not run, for a stated reason, never left as a row of zeros: above the cap of a
//! model that spends a process or a thread per connection ([`C10K_CAP`]), past what its processes'
//! descriptors (or the generator's source ports) hold (the up-front refusal of
//! [`ClientSpread::plan`]), or past the count where it broke — where a run ended with errors,
//! unanswered requests or connections not established: a measured breaking point.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::c10k::{self, C10kOptions, C10kRecord};
use crate::charts;
use crate::clients::{ClientSpread, MachineLimits};
use crate::docroot::DocRoot;
use crate::machine::Header;
use crate::measure::Subject;
use crate::output::{self, Progress, Results, or_dash};
use crate::server::{self, C10K_CAP};
use crate::stats::{self, LatencySummary};

/// The configurations `--sweep` runs when no `--step` is given: one per model (and step 7's
/// process model), so that the sweep of every model stays within a quarter of an hour here.
pub const DEFAULT_STEPS: [&str; 12] = [
    "step01",
    "step02",
    "step03-fork",
    "step03-prefork",
    "step04-spawn",
    "step04-pool",
    "step05",
    "step06-nap",
    "step07-1",
    "step07-per-core",
    "step07-workers",
    "step08-1",
];

/// How long each point holds its connections once open, unless `--hold` says otherwise (and at
/// least one interval, so that every connection asks while all are held).
pub const SWEEP_HOLD: Duration = Duration::from_secs(3);

/// The least interval between a connection's requests in the sweep (longer past 25,000
/// connections: see [`point_options`]).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What became of one server at one count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every connection established, every request answered, no error.
    Held,
    /// Ran and broke: what it reached is in its run.
    Broke {
        /// What went wrong, in one line.
        why: String,
    },
    /// Not run: above the cap of a model with a process or a thread per connection.
    Capped {
        /// The cap.
        at: usize,
    },
    /// Not run: the server's processes (descriptors) or the generator (ports) cannot hold it.
    CannotHold {
        /// The one-line refusal.
        why: String,
    },
    /// Not run: the server broke at a smaller count.
    BrokeBefore {
        /// The count where it broke.
        at: usize,
    },
}

impl Outcome {
    /// One line for the table and the progress lines.
    #[must_use]
    pub fn describe(&self, asked: usize) -> String {
        match self {
            Self::Held => "held".to_owned(),
            Self::Broke { why } => format!("broke at {asked}: {why}"),
            Self::Capped { at } => format!(
                "capped at {at}: one process or thread per connection (--no-caps lifts the cap)"
            ),
            Self::CannotHold { why } => format!("cannot hold: {why}"),
            Self::BrokeBefore { at } => format!("not run: broke at {at}"),
        }
    }
}

/// One server at one count: what became of it, and its runs (none when it was not run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Server name.
    pub server: String,
    /// Connections asked for.
    pub asked: usize,
    /// Held, broke, or why it was not run.
    pub outcome: Outcome,
    /// Every round's run (`--repeat`).
    pub runs: Vec<C10kRecord>,
}

impl SweepPoint {
    /// The run shown in the table and the charts: the one with the median p99 while held.
    fn shown(&self) -> Option<&C10kRecord> {
        let runs: Vec<&C10kRecord> = self.runs.iter().collect();
        output::median_by(&runs, |run| held_p99(run).unwrap_or(f64::MAX))
    }
}

/// Everything `sweep.json` holds.
pub type SweepResults = Results<SweepPoint>;

/// The options of one point of the sweep: `count` connections, a short hold, and an interval that
/// keeps the machine under [`c10k::REQUESTS_PER_SECOND`].
#[must_use]
pub fn point_options(options: &C10kOptions, count: usize) -> C10kOptions {
    let spread = Duration::from_secs_f64(count as f64 / c10k::REQUESTS_PER_SECOND);
    let interval = options
        .interval
        .unwrap_or(spread.clamp(SWEEP_INTERVAL, Duration::from_secs(4)));
    let hold = options.hold.unwrap_or(SWEEP_HOLD.max(interval));
    C10kOptions {
        connections: Some(count),
        interval: Some(interval),
        hold: Some(hold),
        sweep: Vec::new(),
        ..options.clone()
    }
}

// ANCHOR: refusal
/// Why `subject` is not run at the count of `at` (the options of that point), or `None` to run it.
pub(crate) fn refusal(
    subject: &Subject,
    at: &C10kOptions,
    limits: MachineLimits,
) -> Option<Outcome> {
    let asked = at.connections();
    if let Subject::Step(spec) = subject
        && spec.per_connection_task
        && !at.no_caps
        && asked > C10K_CAP
    {
        return Some(Outcome::Capped { at: C10K_CAP });
    }
    c10k::spread_for(subject, at, limits)
        .err()
        .map(|why| Outcome::CannotHold { why })
}
// ANCHOR_END: refusal

/// The cells decided before anything runs: every subject at every count, `None` where it is to
/// be run.
pub(crate) fn plan(
    subjects: &[Subject],
    counts: &[usize],
    options: &C10kOptions,
    limits: MachineLimits,
) -> Vec<(String, usize, Option<Outcome>)> {
    let mut cells = Vec::new();
    for &count in counts {
        let at = point_options(options, count);
        for subject in subjects {
            cells.push((subject.name(), count, refusal(subject, &at, limits)));
        }
    }
    cells
}

/// Why a run counts as broken (one line), or `None` when it held every connection and answered
/// every request.
#[must_use]
pub fn broke(run: &C10kRecord) -> Option<String> {
    if let Some(error) = &run.error {
        return Some(error.clone());
    }
    let mut why = Vec::new();
    if run.established < run.connections {
        why.push(format!(
            "{} of {} established",
            run.established, run.connections
        ));
    }
    let errors = run.errors.total();
    if errors > 0 {
        why.push(format!("{errors} errors ({})", run.errors));
    }
    if run.unanswered > 0 {
        why.push(format!("{} unanswered", run.unanswered));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// The counts of `--sweep`, smallest first, each once.
fn counts(asked: &[usize]) -> anyhow::Result<Vec<usize>> {
    let mut counts = asked.to_vec();
    counts.sort_unstable();
    counts.dedup();
    anyhow::ensure!(
        counts.first().is_some_and(|&least| least > 0),
        "--sweep needs counts of at least one connection, e.g. --sweep 1000,10000"
    );
    Ok(counts)
}

/// Runs the sweep, writes `sweep.json`, `sweep.md` and the charts into `--out` (default
/// `target/bench-results/DATE-sweep/`), and returns the results and that directory.
///
/// # Errors
///
/// When nothing matches the selection, the counts are empty, or the results cannot be written.
pub fn run(options: &C10kOptions, command: &str) -> anyhow::Result<(SweepResults, PathBuf)> {
    // Before the steps are built (see `c10k::run`).
    c10k::bench_exe();
    let header = Header::now(command);
    let counts = counts(&options.sweep)?;
    let root = DocRoot::create().context("cannot create the document root")?;
    let subjects = c10k::subjects(options)?;
    let limits = MachineLimits::of_this_machine()
        .context("cannot read the descriptor limit or the ephemeral port range")?;
    let to_run = plan(&subjects, &counts, options, limits)
        .iter()
        .filter(|(_, _, refused)| refused.is_none())
        .count();
    let binaries = Subject::build(&subjects);
    let progress = Progress::new(to_run * options.repeat.max(1) as usize);
    let mut broke_at: HashMap<String, usize> = HashMap::new();
    let mut warmed_up = options.no_warmup;
    let mut points = Vec::new();
    for &count in &counts {
        let at = point_options(options, count);
        for subject in &subjects {
            let name = subject.name();
            let refused = match broke_at.get(&name) {
                Some(&at) => Some(Outcome::BrokeBefore { at }),
                None => refusal(subject, &at, limits),
            };
            let mut record = |server: String, outcome: Outcome, runs: Vec<C10kRecord>| {
                progress.line(&format!(
                    "bench: {server} at {count}: {}",
                    outcome.describe(count)
                ));
                points.push(SweepPoint {
                    server,
                    asked: count,
                    outcome,
                    runs,
                });
            };
            if let Some(outcome) = refused {
                record(name, outcome, Vec::new());
                continue;
            }
            if !warmed_up {
                c10k::warm_up(subject, root.path(), &binaries, &at, limits, &progress);
                warmed_up = true;
            }
            let runs: Vec<C10kRecord> = (1..=options.repeat.max(1))
                .map(|round| {
                    let run =
                        c10k::hold_subject(subject, root.path(), &binaries, &at, limits, &progress);
                    progress.advance();
                    C10kRecord { round, ..run }
                })
                .collect();
            let outcome = match runs.iter().find_map(broke) {
                Some(why) => {
                    broke_at.insert(name.clone(), count);
                    Outcome::Broke { why }
                }
                None => Outcome::Held,
            };
            record(name, outcome, runs);
        }
    }
    drop(progress);
    let out = options.out.clone().unwrap_or_else(|| {
        let results_dir = server::workspace_root().join("target/bench-results");
        results_dir.join(format!("{}-sweep", header.day()))
    });
    let results = Results {
        header,
        runs: points,
    };
    write(&out, &results)?;
    Ok((results, out))
}

/// Writes `sweep.json`, `sweep.md` and the charts into `dir`.
fn write(dir: &Path, results: &SweepResults) -> anyhow::Result<()> {
    output::write(dir, "sweep", results, &markdown(results))?;
    write_charts(dir, results)
}

/// Redraws `sweep.md` and the charts of `dir` from its `sweep.json`.
///
/// # Errors
///
/// When the JSON cannot be read or parsed, or a file cannot be written.
pub fn replot(dir: &Path) -> anyhow::Result<()> {
    let results: SweepResults = output::read(dir, "sweep")?;
    write(dir, &results)
}

/// The p99 of the requests made while all connections were held (the whole run's, in results
/// that did not measure it apart).
fn held_p99(run: &C10kRecord) -> Option<f64> {
    let latency = run.held_latency.as_ref().unwrap_or(&run.latency);
    (run.requests > 0 && latency.p99_us > 0.0).then_some(latency.p99_us)
}

fn held(run: &C10kRecord) -> &LatencySummary {
    run.held_latency.as_ref().unwrap_or(&run.latency)
}

const TABLE: &str = "| server | connections | established | requests | errors | unanswered | p50 while held | p99 while held | max while held | user B / conn | kernel B / conn | held per worker | clients × sources | outcome |\n\
    |---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

/// What the columns mean, under the table.
const NOTE: &str = "Each point holds its connections for a few seconds once all are open; the \
    latency columns are those of the requests made then. A configuration is not run above its cap, \
    at a count its processes' descriptors or the generator's source ports cannot hold, or past the \
    count where it broke (errors, unanswered requests, or connections not established).";

/// The results as a Markdown table between mdBook anchors named `sweep`: one row per server and
/// count, every point, run or not.
#[must_use]
pub fn markdown(results: &SweepResults) -> String {
    let rows = results.runs.iter().map(row);
    let table = format!(
        "{}\n{NOTE} {}\n",
        output::table(TABLE, rows),
        c10k::MEMORY_NOTE
    );
    format!(
        "{}\n{}",
        results.header.preamble("C10K to C100K: the sweep"),
        output::anchored("sweep", &table)
    )
}

fn row(point: &SweepPoint) -> Vec<String> {
    let outcome = point.outcome.describe(point.asked).replace('|', "/");
    let Some(run) = point.shown() else {
        let mut cells = vec![point.server.clone(), point.asked.to_string()];
        cells.extend(std::iter::repeat_n("—".to_owned(), 11));
        cells.push(outcome);
        return cells;
    };
    let latency = |cell: f64| {
        if run.error.is_some() || run.requests == 0 {
            "—".to_owned()
        } else {
            stats::us(cell)
        }
    };
    vec![
        point.server.clone(),
        point.asked.to_string(),
        run.established.to_string(),
        run.requests.to_string(),
        output::all_errors(&run.errors),
        run.unanswered.to_string(),
        latency(held(run).p50_us),
        latency(held(run).p99_us),
        latency(held(run).max_us),
        or_dash(run.user_bytes_per_connection.map(|b| format!("{b:.0}"))),
        or_dash(run.kernel_bytes_per_connection.map(|b| format!("{b:.0}"))),
        or_dash(c10k::held_per_worker(&run.held_per_worker)),
        or_dash(
            run.spread
                .map(|spread: ClientSpread| format!("{} × {}", spread.processes, spread.sources)),
        ),
        outcome,
    ]
}

/// The chart files, in the order the chapter shows them.
pub const CHARTS: [&str; 4] = [
    "sweep-established.svg",
    "sweep-user-memory.svg",
    "sweep-kernel-memory.svg",
    "sweep-p99.svg",
];

/// A server's line on a chart: its name and its (connections asked, figure) points.
type Line = (String, Vec<(f64, f64)>);

/// One line per server through the points where `figure` has a positive value.
fn lines(results: &SweepResults, figure: impl Fn(&C10kRecord) -> Option<f64>) -> Vec<Line> {
    output::by_server(&results.runs, |point| &point.server)
        .into_iter()
        .map(|(server, points)| {
            let xy = points.iter().filter_map(|point| {
                let value = figure(point.shown()?)?;
                (value > 0.0 && value.is_finite()).then_some((point.asked as f64, value))
            });
            (server, xy.collect())
        })
        .collect()
}

/// Draws the four charts of [`CHARTS`] into `dir`.
fn write_charts(dir: &Path, results: &SweepResults) -> anyhow::Result<()> {
    let counts: Vec<f64> = results.runs.iter().map(|p| p.asked as f64).collect();
    let held_at_all = |run: &C10kRecord| run.established > 0 && run.error.is_none();
    // Nothing established is drawn at the axis' floor (1), not left out: a log axis has no 0.
    let established = lines(results, |run| {
        run.error
            .is_none()
            .then_some((run.established as f64).max(1.0))
    });
    let user = lines(results, |run| {
        run.user_bytes_per_connection.filter(|_| held_at_all(run))
    });
    let kernel = lines(results, |run| {
        run.kernel_bytes_per_connection.filter(|_| held_at_all(run))
    });
    let p99 = lines(results, |run| held_p99(run).filter(|_| held_at_all(run)));
    let x = "connections asked for (log scale)";
    let charts: [(&str, &str, &str, &[Line], bool); 4] = [
        (
            CHARTS[0],
            "Connections established out of those asked for",
            "connections established (log scale)",
            &established,
            true,
        ),
        (
            CHARTS[1],
            "Server user memory per connection",
            "bytes per connection: RSS growth (log scale)",
            &user,
            false,
        ),
        (
            CHARTS[2],
            "Kernel memory per connection (both ends, machine-wide)",
            "bytes per connection: SUnreclaim growth (log scale)",
            &kernel,
            false,
        ),
        (
            CHARTS[3],
            "p99 latency of the requests made while all are held",
            "p99 latency (µs, log scale)",
            &p99,
            false,
        ),
    ];
    for (file, title, y, lines, diagonal) in charts {
        let axes = charts::LogAxes { x, y, diagonal };
        charts::log_lines(&dir.join(file), title, &axes, &counts, lines)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Peer;
    use crate::server::select;

    const HERE: MachineLimits = MachineLimits {
        descriptors: 20_000,
        ports_per_source: 28_232,
    };

    fn step(name: &str) -> Subject {
        Subject::Step(select(&[name.to_owned()]).unwrap()[0])
    }

    #[test]
    fn plans_caps_and_descriptor_walls_before_anything_runs() {
        let subjects = [
            step("step04-spawn"),
            step("step07-1"),
            step("step07-workers"),
            Subject::Peer(Peer::nginx(1)),
        ];
        let counts = [1000, 5000, 20_000, 100_000];
        let cells = plan(&subjects, &counts, &C10kOptions::default(), HERE);
        let cell = |server: &str, count| {
            cells
                .iter()
                .find(|(s, c, _)| s == server && *c == count)
                .unwrap()
                .2
                .clone()
        };
        assert_eq!(cells.len(), 16, "every subject at every count");
        assert_eq!(cell("step04-spawn", 1000), None);
        assert_eq!(
            cell("step04-spawn", 5000),
            Some(Outcome::Capped { at: C10K_CAP })
        );
        assert_eq!(cell("step07-1", 5000), None);
        // One process holds at most 20,000 - 128 descriptors' worth.
        let one = cell("step07-1", 20_000);
        assert!(
            matches!(&one, Some(Outcome::CannotHold { why }) if why.contains("1 process(es)")),
            "{one:?}"
        );
        assert_eq!(cell("step07-workers", 100_000), None);
        // nginx-1: worker_connections 16,384.
        assert!(matches!(
            cell("nginx-1", 20_000),
            Some(Outcome::CannotHold { .. })
        ));
        assert_eq!(cell("nginx-1", 5000), None);
        // --no-caps runs the per-connection model at every count it can hold.
        let no_caps = C10kOptions {
            no_caps: true,
            ..C10kOptions::default()
        };
        let lifted = plan(&subjects[..1], &[5000], &no_caps, HERE);
        assert_eq!(lifted[0].2, None);
        let described = Outcome::Capped { at: C10K_CAP }.describe(5000);
        assert!(described.starts_with("capped at 2000"), "{described}");
        assert_eq!(
            Outcome::BrokeBefore { at: 2000 }.describe(5000),
            "not run: broke at 2000"
        );
    }

    #[test]
    fn short_points_with_a_longer_interval_past_25000() {
        let at = |count| {
            let options = point_options(&C10kOptions::default(), count);
            (options.interval(), options.hold())
        };
        assert_eq!(at(1000), (SWEEP_INTERVAL, SWEEP_HOLD));
        assert_eq!(
            at(100_000),
            (Duration::from_secs(4), Duration::from_secs(4))
        );
        assert!(counts(&[]).is_err() && counts(&[0, 5]).is_err());
        assert_eq!(counts(&[50, 20, 50]).unwrap(), [20, 50]);
    }

    #[test]
    fn a_run_breaks_on_errors_unanswered_or_missing_connections() {
        let held = C10kRecord {
            connections: 100,
            established: 100,
            requests: 300,
            ..C10kRecord::default()
        };
        assert_eq!(broke(&held), None);
        let short = C10kRecord {
            established: 90,
            unanswered: 3,
            ..held.clone()
        };
        assert_eq!(
            broke(&short).as_deref(),
            Some("90 of 100 established, 3 unanswered")
        );
        let failed = C10kRecord {
            error: Some("not built".into()),
            ..held
        };
        assert_eq!(broke(&failed).as_deref(), Some("not built"));
    }

    #[test]
    fn every_point_has_a_row_and_the_charts_redraw_from_the_json() {
        let run = |asked, p99_us| C10kRecord {
            server: "step07-1".into(),
            asked,
            connections: asked,
            established: asked,
            requests: 10,
            user_bytes_per_connection: Some(800.0),
            kernel_bytes_per_connection: Some(3900.0),
            held_latency: Some(LatencySummary {
                p99_us,
                ..LatencySummary::default()
            }),
            ..C10kRecord::default()
        };
        let results = Results {
            header: Header::now("bench c10k --sweep 1000,20000"),
            runs: vec![
                SweepPoint {
                    server: "step07-1".into(),
                    asked: 1000,
                    outcome: Outcome::Held,
                    runs: vec![run(1000, 1500.0)],
                },
                SweepPoint {
                    server: "step07-1".into(),
                    asked: 20_000,
                    outcome: Outcome::CannotHold {
                        why: "step07-1 cannot hold 20000 connections".into(),
                    },
                    runs: Vec::new(),
                },
            ],
        };
        let text = markdown(&results);
        assert!(text.contains("<!-- ANCHOR: sweep -->"), "{text}");
        assert!(text.contains("| step07-1 | 1000 | 1000 |"), "{text}");
        assert!(text.contains("| 1.50ms |"), "{text}");
        assert!(
            text.contains("| step07-1 | 20000 | — |")
                && text.contains("cannot hold: step07-1 cannot hold 20000"),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        output::write(dir.path(), "sweep", &results, "stale").unwrap();
        replot(dir.path()).unwrap();
        for chart in CHARTS {
            let svg = std::fs::read_to_string(dir.path().join(chart)).unwrap();
            assert!(svg.contains("<svg") && svg.contains("step07-1"), "{chart}");
        }
        let md = std::fs::read_to_string(dir.path().join("sweep.md")).unwrap();
        assert_eq!(md, text);
    }
}
