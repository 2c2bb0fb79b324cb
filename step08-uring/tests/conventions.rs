//! Step 8 keeps every convention of the other steps (flags, exit codes, signals, a port in use
//! refused in one line), with `--threads N` too.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use testkit::{Server, get};

const BIN: &str = env!("CARGO_BIN_EXE_step08-uring");

testkit::convention_tests!(mod conventions_one_ring, bin = env!("CARGO_BIN_EXE_step08-uring"), args = &[]);
testkit::convention_tests!(
    mod conventions_two_rings,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &["--threads", "2"]
);

#[test]
fn a_second_server_with_two_rings_is_refused_and_the_first_keeps_serving() {
    let first = Server::start(BIN, &["--threads", "2", "--quiet"]);
    let addr = first.addr().to_string();
    for args in [
        &["--threads", "2"][..],
        &["--threads", "4", "--no-multishot"],
        &[],
    ] {
        let output = Command::new(BIN)
            .args(["--addr", &addr, "--quiet"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("in use"), "{stderr}");
    }
    for _ in 0..50 {
        assert_eq!(get(first.addr(), "/").status, 200);
    }
}

#[test]
fn every_rung_of_the_ladder_serves_the_site() {
    for args in [
        &["--submit-each"][..],
        &["--no-multishot"],
        &["--no-buffer-ring"],
        &["--submit-each", "--no-multishot", "--no-buffer-ring"],
    ] {
        let mut all = vec!["--quiet"];
        all.extend_from_slice(args);
        let server = Server::start(BIN, &all);
        for path in ["/", "/docs/", "/hello%20world.txt"] {
            assert_eq!(get(server.addr(), path).status, 200, "{args:?} {path}");
        }
    }
}
