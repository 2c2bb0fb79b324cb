//! An `--idle-timeout` no server could keep (zero, or so long that adding it to the clock would
//! overflow) is refused at start-up with a one-line error, never a panic in the middle of serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_step02-files");

fn refused(timeout: &str) {
    let output = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--idle-timeout", timeout])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{timeout}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{timeout}: {stderr}");
    assert!(stderr.contains("--idle-timeout"), "{timeout}: {stderr}");
    assert!(!stderr.contains("panicked"), "{timeout}: {stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("Listening on"),
        "{timeout}: announced"
    );
}

#[test]
fn an_absurd_idle_timeout_is_a_one_line_error() {
    refused("0s");
    refused("2days");
    refused("500000000years");
}

#[test]
fn the_longest_idle_timeout_accepted_still_serves() {
    let server = testkit::Server::start(BIN, &["--idle-timeout", "1day"]);
    assert_eq!(testkit::get(server.addr(), "/").status, 200);
}
