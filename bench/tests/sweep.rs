//! `c10k --sweep` end to end against in-test servers standing in for external targets: every
//! point is recorded, a server that breaks is not run at the larger counts, and sweep.json,
//! sweep.md and the four charts are written (and redrawn by `replot`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bench::c10k::C10kOptions;
use bench::sweep::{self, Outcome};
use common::{Answer, serve};

fn sweep_of(answer: Answer, name: &str) -> (sweep::SweepResults, std::path::PathBuf) {
    let target = serve(answer);
    let out = std::env::temp_dir().join(format!("bench-sweep-{name}-{}", std::process::id()));
    let options = C10kOptions {
        sweep: vec![50, 20],
        url: Some(target.url.clone()),
        interval: Some(Duration::from_millis(200)),
        hold: Some(Duration::from_millis(300)),
        timeout: Duration::from_millis(500),
        no_warmup: true,
        source_addresses: Some(1),
        out: Some(out.clone()),
        ..C10kOptions::default()
    };
    let (results, written) = sweep::run(&options, "test").unwrap();
    assert_eq!(written, out);
    (results, out)
}

#[test]
fn a_tiny_sweep_holds_every_count_and_writes_the_table_and_charts() {
    let (results, out) = sweep_of(
        Answer::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhey"),
        "held",
    );
    let asked: Vec<usize> = results.runs.iter().map(|point| point.asked).collect();
    assert_eq!(asked, [20, 50], "smallest first, one point each");
    for point in &results.runs {
        assert_eq!(point.outcome, Outcome::Held, "{point:?}");
        let run = &point.runs[0];
        assert_eq!(run.established, point.asked, "{run:?}");
        let held = run.held_latency.as_ref().expect("latency while held");
        assert!(
            held.p99_us > 0.0 && run.requests >= point.asked as u64,
            "{run:?}"
        );
    }
    let markdown = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(markdown.contains("<!-- ANCHOR: sweep -->"), "{markdown}");
    assert_eq!(markdown.matches("| held |").count(), 2, "{markdown}");
    for chart in sweep::CHARTS {
        std::fs::remove_file(out.join(chart)).unwrap();
    }
    sweep::replot(&out).unwrap();
    for chart in sweep::CHARTS {
        assert!(out.join(chart).is_file(), "replot redrew {chart}");
    }
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn a_server_that_breaks_is_not_run_at_larger_counts() {
    let (results, out) = sweep_of(Answer::Stall, "stall");
    let outcomes: Vec<&Outcome> = results.runs.iter().map(|point| &point.outcome).collect();
    assert!(
        matches!(
            outcomes[..],
            [Outcome::Broke { .. }, Outcome::BrokeBefore { at: 20 }]
        ),
        "{outcomes:?}"
    );
    assert!(
        results.runs[1].runs.is_empty(),
        "not run past its breaking point"
    );
    let markdown = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(markdown.contains("broke at 20: ") && markdown.contains("not run: broke at 20"));
    std::fs::remove_dir_all(out).unwrap();
}
