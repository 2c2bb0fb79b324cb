//! `compare` end to end against an in-test server standing in for an external target: every scenario is
//! measured and results.json, results.md and the charts are written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bench::compare::{self, CompareOptions, CompareResults};
use common::{Answer, serve};

#[test]
fn compare_writes_every_output_for_an_external_target() {
    let target = serve(Answer::Write(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhey",
    ));
    let base = target.url.trim_end_matches("/index.html").to_owned();
    let out = std::env::temp_dir().join(format!("bench-compare-test-{}", std::process::id()));
    let options = CompareOptions {
        quick: true,
        no_steps: true,
        targets: vec![("tiny".to_owned(), base)],
        out: Some(out.clone()),
        duration: Some(Duration::from_millis(200)),
        warmup: Some(Duration::ZERO),
        threads: 1,
        repeat: 2,
        ..CompareOptions::default()
    };
    let written = compare::run(&options, "test").unwrap();
    assert_eq!(written, out);
    let results: CompareResults =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        results.runs.len(),
        2 * compare::matrix(true).len(),
        "--repeat 2 keeps every run"
    );
    assert!(results.runs.iter().any(|run| run.round == 2));
    for run in &results.runs {
        let load = run.load.as_ref().unwrap();
        assert!(load.requests > 0, "{run:?}");
        assert_eq!(load.errors.total(), 0, "{run:?}");
        assert!(
            run.server_cost.is_none(),
            "an external server's process is unknown"
        );
    }
    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert_eq!(
        markdown.matches("| tiny |").count(),
        compare::matrix(true).len(),
        "one row per scenario"
    );
    assert!(markdown.contains("2 interleaved rounds"));
    for scenario in compare::matrix(true) {
        assert!(
            out.join(format!("throughput-{}.svg", scenario.key()))
                .is_file()
        );
        assert!(
            out.join(format!("latency-{}.svg", scenario.key()))
                .is_file()
        );
    }
    std::fs::remove_dir_all(out).unwrap();
}
