//! The load generator against tiny in-test servers that answer fixed bytes: correct responses must be
//! framed right (by length and by close, keep-alive and connection-per-request), and every kind of
//! failure must be counted under its own kind, never as a success.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{Answer, serve};

use bench::engine::{self, LoadConfig, LoadResult};
use bench::stats::{ErrorCounts, Report, Tally};
use bench::target::Target;

fn config(target: Target, connections: usize, requests: u64) -> LoadConfig {
    let mut config = LoadConfig::new(target, connections, Duration::from_secs(10));
    config.requests = Some(requests);
    config
}

/// One second at a constant `rate` over `connections` connections.
fn paced(answer: Answer, connections: usize, rate: f64) -> LoadResult {
    let mut config = LoadConfig::new(serve(answer), connections, Duration::from_secs(1));
    config.rate = Some(rate);
    run(&config)
}

fn run(config: &LoadConfig) -> LoadResult {
    engine::run(config).unwrap()
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";

/// Runs `config`, checks that every request succeeded over `connects` connections, returns the tally.
fn all_succeed(config: &LoadConfig, connects: u64, why: &str) -> Tally {
    let tally = run(config).tally;
    let requests = config.requests.unwrap();
    assert_eq!(tally.requests, requests);
    assert_eq!(tally.errors, ErrorCounts::default());
    assert_eq!(tally.connects, connects, "{why}");
    assert_eq!(tally.latency.len(), requests);
    tally
}

#[test]
fn keep_alive_responses_are_framed_by_length() {
    let config = config(serve(Answer::Write(OK)), 4, 400);
    let tally = all_succeed(&config, 4, "keep-alive must reuse connections");
    assert_eq!(tally.bytes, 400 * OK.len() as u64);
}

#[test]
fn responses_framed_by_close_succeed() {
    let answer =
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body ends when the server closes";
    let config = config(serve(Answer::WriteAndClose(answer)), 3, 60);
    all_succeed(&config, 60, "a close-framed response ends its connection");
}

#[test]
fn close_mode_opens_a_connection_per_request() {
    let answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let mut config = config(serve(Answer::WriteAndClose(answer)), 2, 50);
    config.close = true;
    all_succeed(&config, 50, "one connection per request");
}

#[test]
fn churn_reopens_connections() {
    // One connection, so that every connection carries exactly ten requests.
    let mut config = config(serve(Answer::Write(OK)), 1, 100);
    config.requests_per_connection = Some(10);
    all_succeed(&config, 10, "ten requests per connection");
}

/// `n` errors of the kind named `kind`, none of the others.
fn only(n: u64, kind: &str) -> [(&'static str, u64); 5] {
    ErrorCounts::default()
        .by_kind()
        .map(|(name, _)| (name, if name == kind { n } else { 0 }))
}

#[test]
fn each_failure_counts_under_its_kind_never_as_a_success() {
    let cases: [(Answer, &str); 5] = [
        (
            Answer::Write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"),
            "status",
        ),
        (
            Answer::Write(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"),
            "framing",
        ),
        // Truncated.
        (
            Answer::WriteAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"),
            "framing",
        ),
        // Extra bytes after a response.
        (
            Answer::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"),
            "framing",
        ),
        // Closing without an answer.
        (Answer::WriteAndClose(b""), "reset"),
    ];
    for (index, (answer, kind)) in cases.into_iter().enumerate() {
        let mut config = config(serve(answer), 2, 20);
        config.timeout = Duration::from_millis(200);
        let tally = run(&config).tally;
        assert_eq!(tally.requests, 0, "case {index}: no failure is a success");
        assert_eq!(tally.latency.len(), 0);
        assert_eq!(tally.errors.by_kind(), only(20, kind), "case {index}");
    }
}

#[test]
fn silence_counts_as_timeout() {
    let mut config = config(serve(Answer::Stall), 2, 4);
    config.timeout = Duration::from_millis(100);
    let result = run(&config);
    assert_eq!(result.tally.requests, 0);
    assert_eq!(result.tally.errors.by_kind(), only(4, "timeout"));
}

#[test]
fn refused_connections_count_as_connect() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let result = run(&config(target, 2, 10));
    assert_eq!(result.tally.requests, 0);
    assert_eq!(result.tally.errors.by_kind(), only(10, "connect"));
}

#[test]
fn constant_rate_paces_requests() {
    let result = paced(Answer::Write(OK), 4, 200.0);
    // 200 requests per second for one second; the first slots of each connection start at once.
    assert!(
        (180..=210).contains(&result.tally.requests),
        "requests: {}",
        result.tally.requests
    );
    assert_eq!(result.tally.errors, ErrorCounts::default());
}

/// Counts the successful requests slower than 100 ms.
fn slow_requests(result: &LoadResult) -> u64 {
    result.tally.latency.count_between(100_000_000, u64::MAX)
}

#[test]
fn constant_rate_shows_the_requests_a_stall_delayed() {
    const PAUSE: Duration = Duration::from_millis(300);
    let answer = Answer::PauseBefore(10, PAUSE, OK);
    // Closed loop: the generator waits out the pause and records one slow request.
    let closed = run(&config(serve(answer), 1, 40));
    assert_eq!(closed.tally.requests, 40);
    assert_eq!(slow_requests(&closed), 1);
    // Constant rate, one request every 10 ms: the ~30 requests due during the pause are late, and
    // each is measured from when it should have started (the coordinated-omission correction).
    let paced = paced(answer, 1, 100.0);
    assert_eq!(paced.tally.errors, ErrorCounts::default());
    assert!(
        slow_requests(&paced) >= 15,
        "slow: {}",
        slow_requests(&paced)
    );
    assert!(paced.tally.latency.max() >= 250_000_000);
}

#[test]
fn source_addresses_are_spread_over_loopback() {
    let mut config = config(serve(Answer::Write(OK)), 4, 40);
    config.source_addresses = 4;
    all_succeed(&config, 4, "keep-alive reuses connections");
}

#[test]
fn json_output_parses() {
    let target = serve(Answer::Write(OK));
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["load", "-c", "2", "-n", "50", "--json", &target.url])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Report = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.requests, 50);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(report.mode, "keep-alive");
    assert!(report.latency.p50_us > 0.0 && report.latency.p50_us <= report.latency.max_us);
}

#[test]
fn headers_are_sent_and_checked() {
    let mut config = config(serve(Answer::Write(OK)), 1, 3);
    config.headers = vec!["X-Bench: yes".to_owned()];
    assert_eq!(run(&config).tally.requests, 3);
    config.headers = vec!["X-Bench: yes\r\nInjected: 1".to_owned()];
    assert!(engine::run(&config).is_err());
    config.headers = vec!["no colon".to_owned()];
    assert!(engine::run(&config).is_err());
}

#[test]
fn too_many_connections_is_a_clear_error() {
    let target = Target::parse("http://127.0.0.1:9/").unwrap();
    let error = engine::run(&config(target, 10_000_000, 1)).unwrap_err();
    assert!(error.to_string().contains("RLIMIT_NOFILE"), "{error}");
}
