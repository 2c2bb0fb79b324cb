//! `bench c10k` refuses, before it builds or starts anything, a count of connections that no
//! configuration can reach, in one line: never a run into a table of zeros.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn c10k(args: &[&str]) -> Output {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("c10k")
        .args(args)
        .output()
        .unwrap();
    // A refusal comes before the steps are built: it takes no build's time.
    assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    output
}

fn assert_refused(output: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(mentions), "{stderr}");
    assert!(
        !stderr.contains("cargo build"),
        "built before refusing: {stderr}"
    );
    assert!(output.stdout.is_empty(), "a table was printed");
}

#[test]
fn refuses_more_connections_than_a_server_or_the_source_addresses_can_hold() {
    // Ten million: more than 127.0.0.1…255 have ports for, whatever the descriptor limit.
    assert_refused(
        &c10k(&["--connections", "10000000", "--step", "step07-workers"]),
        "10000000 connections",
    );
    // One source address has fewer ephemeral ports than 100,000 (28,232 by default).
    assert_refused(
        &c10k(&[
            "--connections",
            "100000",
            "--source-addresses",
            "1",
            "--url",
            "http://127.0.0.1:9/",
        ]),
        "--source-addresses 1 is too few",
    );
}
