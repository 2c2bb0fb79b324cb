//! What the experiments share in their output: interleaved rounds under a progress bar with an ETA,
//! result files with a common header whose tables the book includes by name (mdBook anchors), and
//! the median and spread of repeated runs.

use std::fmt::Display;
use std::fs;
use std::path::Path;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::machine::Header;
use crate::stats::ErrorCounts;

/// Progress over a known number of runs, with an ETA: a bar on a terminal, plain lines otherwise
/// (a log or a pipe gets one line per run and no escape codes).
#[derive(Debug)]
pub(crate) struct Progress(ProgressBar);

impl Progress {
    /// A bar for `runs` runs.
    pub(crate) fn new(runs: usize) -> Self {
        let bar = ProgressBar::new(runs as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{wide_bar} {pos}/{len} runs, {elapsed} elapsed, about {eta} left",
        ) {
            bar.set_style(style);
        }
        Self(bar)
    }

    /// Prints a line above the bar (or on stderr when there is no bar).
    pub(crate) fn line(&self, text: &str) {
        if self.0.is_hidden() {
            eprintln!("{text}");
        } else {
            self.0.println(text);
        }
    }

    /// One more run done.
    pub(crate) fn advance(&self) {
        self.0.inc(1);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Measures every subject `repeat` times, interleaved (every subject once, then again…), so that a
/// drift of the machine spreads over all of them; `measure` gets the round (1-based) and advances
/// the progress bar, which counts `runs_per_subject` runs per subject and round.
///
/// Each round starts one subject further along the list (A B C, then B C A, then C A B), so no
/// subject always runs first or always after the same neighbour: the first run of a process pays
/// for warming the kernel's socket caches, and a run pays for the ports the previous one left in
/// `TIME_WAIT`.
pub(crate) fn interleave<S, R>(
    subjects: &[S],
    repeat: u32,
    runs_per_subject: usize,
    mut measure: impl FnMut(&S, u32, &Progress) -> Vec<R>,
) -> Vec<R> {
    let progress = Progress::new(subjects.len() * runs_per_subject * repeat as usize);
    let mut runs = Vec::new();
    for round in 1..=repeat {
        for subject in rotated(subjects, round as usize - 1) {
            runs.extend(measure(subject, round, &progress));
        }
    }
    runs
}

/// `subjects` starting at `start` (modulo their number) and wrapping around.
fn rotated<S>(subjects: &[S], start: usize) -> impl Iterator<Item = &S> {
    let (before, after) = subjects.split_at(start % subjects.len().max(1));
    after.iter().chain(before)
}

/// The round of a run recorded before `--repeat` existed.
pub(crate) const fn first_round() -> u32 {
    1
}

/// A results file of `c10k` or `soak`: the header, then every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results<R> {
    /// Where, when and how.
    #[serde(flatten)]
    pub header: Header,
    /// Every run.
    pub runs: Vec<R>,
}

impl<R> Results<R> {
    /// The results page: the preamble, then `table` anchored as `table`.
    pub(crate) fn page(&self, title: &str, table: &str) -> String {
        format!(
            "{}\n{}",
            self.header.preamble(title),
            anchored("table", table)
        )
    }
}

/// Wraps a Markdown fragment in mdBook anchors, so a page can `{{#include results.md:NAME}}` it and
/// still get the right rows after any rerun.
pub(crate) fn anchored(name: &str, fragment: &str) -> String {
    format!(
        "<!-- ANCHOR: {name} -->\n{}\n<!-- ANCHOR_END: {name} -->\n",
        fragment.trim_end()
    )
}

/// A Markdown table: `head` (the header and alignment lines), then one line per row of cells.
pub(crate) fn table(head: &str, rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut text = head.to_owned();
    for row in rows {
        text += &format!("| {} |\n", row.join(" | "));
    }
    text
}

/// A table cell: the value, or a dash where there is none.
pub(crate) fn or_dash(value: Option<impl Display>) -> String {
    value.map_or_else(|| "—".to_owned(), |value| value.to_string())
}

/// A table cell with every kind of error, or `0` when there were none.
pub(crate) fn all_errors(errors: &ErrorCounts) -> String {
    if errors.total() == 0 {
        "0".to_owned()
    } else {
        errors.to_string()
    }
}

/// `runs` grouped by server, servers in the order they first appear.
pub(crate) fn by_server<'a, R>(
    runs: impl IntoIterator<Item = &'a R>,
    server: impl Fn(&R) -> &str,
) -> Vec<(String, Vec<&'a R>)> {
    let mut groups: Vec<(String, Vec<&R>)> = Vec::new();
    for run in runs {
        match groups.iter_mut().find(|(name, _)| name == server(run)) {
            Some((_, group)) => group.push(run),
            None => groups.push((server(run).to_owned(), vec![run])),
        }
    }
    groups
}

/// Writes `STEM.json` and `STEM.md` into `dir` (creating it).
pub(crate) fn write(
    dir: &Path,
    stem: &str,
    results: &impl Serialize,
    markdown: &str,
) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(results)?;
    for (extension, text) in [("json", json.as_str()), ("md", markdown)] {
        let path = dir.join(format!("{stem}.{extension}"));
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Reads `STEM.json` in `dir`.
pub(crate) fn read<T: DeserializeOwned>(dir: &Path, stem: &str) -> anyhow::Result<T> {
    let path = dir.join(format!("{stem}.json"));
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}", path.display()))
}

/// Rewrites `STEM.md` in `dir` from its `STEM.json` (after a change to the tables).
///
/// # Errors
///
/// When the JSON cannot be read or parsed, or the Markdown cannot be written.
pub fn rewrite_markdown<T: DeserializeOwned>(
    dir: &Path,
    stem: &str,
    markdown: fn(&T) -> String,
) -> anyhow::Result<()> {
    let results = read(dir, stem)?;
    Ok(fs::write(
        dir.join(format!("{stem}.md")),
        markdown(&results),
    )?)
}

/// The median of some figures (the lower middle one for an even count) and their range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    /// The spread of `figures`; `None` when there are none.
    pub(crate) fn of(figures: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut sorted: Vec<f64> = figures.into_iter().collect();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median: *sorted.get((sorted.len().checked_sub(1)?) / 2)?,
            min: *sorted.first()?,
            max: *sorted.last()?,
        })
    }

    /// `median` alone for one run, `median (min–max)` for several, each through `format`.
    pub(crate) fn show(&self, runs: usize, format: impl Fn(f64) -> String) -> String {
        if runs <= 1 {
            return format(self.median);
        }
        format!(
            "{} ({}–{})",
            format(self.median),
            format(self.min),
            format(self.max)
        )
    }
}

/// The one among `items` whose `key` is the median (see [`Spread`]).
pub(crate) fn median_by<'a, T>(items: &[&'a T], key: impl Fn(&T) -> f64) -> Option<&'a T> {
    let mut sorted = items.to_vec();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_markdown_from_the_json() {
        let dir = tempfile::tempdir().unwrap();
        let results = serde_json::json!({ "runs": 3 });
        write(dir.path(), "soak", &results, "old").unwrap();
        let markdown = |results: &serde_json::Value| format!("runs: {}", results["runs"]);
        rewrite_markdown(dir.path(), "soak", markdown).unwrap();
        let text = fs::read_to_string(dir.path().join("soak.md")).unwrap();
        assert_eq!(text, "runs: 3");
        assert!(rewrite_markdown(dir.path(), "c10k", markdown).is_err());
    }

    #[test]
    fn each_round_starts_one_subject_further() {
        let order = interleave(&['a', 'b', 'c'], 4, 1, |subject, round, _| {
            vec![format!("{round}{subject}")]
        });
        assert_eq!(
            order.join(" "),
            "1a 1b 1c 2b 2c 2a 3c 3a 3b 4a 4b 4c",
            "every subject takes every place in turn"
        );
        assert!(interleave(&[] as &[char], 2, 1, |_, _, _| vec![()]).is_empty());
    }

    #[test]
    fn medians_and_spreads() {
        let spread = Spread::of([3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(
            spread,
            Spread {
                median: 2.0,
                min: 1.0,
                max: 10.0
            }
        );
        assert_eq!(spread.show(4, |v| format!("{v:.0}")), "2 (1–10)");
        assert_eq!(spread.show(1, |v| format!("{v:.0}")), "2");
        assert_eq!(Spread::of([]), None);
        assert_eq!(median_by(&[&5, &1, &9], |&v| f64::from(v)), Some(&5));
    }

    #[test]
    fn anchors_a_fragment_and_writes_both_files() {
        assert_eq!(
            anchored("t", "| a |\n"),
            "<!-- ANCHOR: t -->\n| a |\n<!-- ANCHOR_END: t -->\n"
        );
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("x"), "r", &vec![1, 2], "# r\n").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("x/r.md")).unwrap(),
            "# r\n"
        );
        assert!(
            fs::read_to_string(dir.path().join("x/r.json"))
                .unwrap()
                .contains('2')
        );
    }
}
