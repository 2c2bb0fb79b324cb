//! `c10k` end to end against an in-test server standing in for an external target: every round is
//! recorded, the warm-up run is not, and the table has the server's row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bench::c10k::{self, C10kOptions};
use common::{Answer, serve_counting};

const CONNECTIONS: usize = 20;

fn hold_twice(no_warmup: bool) -> (c10k::C10kResults, usize) {
    let (target, accepted) = serve_counting(Answer::Write(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhey",
    ));
    let options = C10kOptions {
        connections: Some(CONNECTIONS),
        url: Some(target.url.clone()),
        interval: Some(Duration::from_millis(200)),
        hold: Some(Duration::from_millis(300)),
        timeout: Duration::from_secs(2),
        repeat: 2,
        no_warmup,
        source_addresses: Some(1),
        ..C10kOptions::default()
    };
    let results = c10k::run(&options, "test").unwrap();
    (results, settled(&accepted))
}

/// The count once the server thread has caught up: the kernel completes a handshake before the
/// server's `accept` returns it, so the last connections may be counted a moment after the run.
fn settled(count: &std::sync::atomic::AtomicUsize) -> usize {
    let give_up = std::time::Instant::now() + Duration::from_secs(2);
    let mut last = count.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = count.load(Ordering::Relaxed);
        if now == last || std::time::Instant::now() > give_up {
            return now;
        }
        last = now;
    }
}

#[test]
fn every_round_is_recorded_and_the_warm_up_is_not() {
    let (results, accepted) = hold_twice(false);
    assert_eq!(results.runs.len(), 2, "--repeat 2: two runs, no warm-up");
    for run in &results.runs {
        assert_eq!(run.established, CONNECTIONS, "{run:?}");
        assert!(run.requests >= CONNECTIONS as u64, "{run:?}");
        assert_eq!(run.errors.total(), 0, "{run:?}");
    }
    assert_eq!(
        accepted,
        3 * CONNECTIONS,
        "the warm-up opened the connections once more"
    );
    let markdown = c10k::markdown(&results);
    assert_eq!(
        markdown
            .matches(&format!("| {CONNECTIONS} | {CONNECTIONS} |"))
            .count(),
        1
    );
}

#[test]
fn no_warmup_opens_the_connections_only_for_the_rounds() {
    let (results, accepted) = hold_twice(true);
    assert_eq!(results.runs.len(), 2);
    assert_eq!(accepted, 2 * CONNECTIONS);
}

#[test]
fn more_connections_than_the_source_addresses_have_ports_for_are_refused_before_any_run() {
    let (target, accepted) = serve_counting(Answer::Write(b"HTTP/1.1 204 No Content\r\n\r\n"));
    let options = C10kOptions {
        connections: Some(100_000_000),
        url: Some(target.url.clone()),
        repeat: 1,
        ..C10kOptions::default()
    };
    let error = c10k::run(&options, "test").unwrap_err().to_string();
    assert!(error.contains("source addresses"), "{error}");
    assert_eq!(accepted.load(Ordering::Relaxed), 0, "no warm-up, no round");
}
