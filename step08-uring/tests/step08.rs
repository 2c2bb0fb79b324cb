//! Step 8 as a user meets it: the real binary on 127.0.0.1:0, tuned, with two rings, and with
//! every tuned feature off, against the shared conformance, keep-alive and fault suites; then what
//! a completion loop must promise besides: no CPU while idle, bounded memory for huge files, a
//! graceful stop that waits for every completion, no descriptor left behind.
#![cfg(target_os = "linux")]

use std::thread;
use std::time::Duration;

use testkit::http::Conn;
use testkit::{Target, load};

const TUNED: Target = Target {
    bin: env!("CARGO_BIN_EXE_step08-uring"),
    args: &[],
    keep_alive: true,
};
const TWO_RINGS: Target = Target {
    bin: env!("CARGO_BIN_EXE_step08-uring"),
    args: &["--threads", "2"],
    keep_alive: true,
};
/// The bottom rung: one system call per operation, no multishot, no shared buffers.
const NAIVE: Target = Target {
    bin: env!("CARGO_BIN_EXE_step08-uring"),
    args: &["--submit-each", "--no-multishot", "--no-buffer-ring"],
    keep_alive: true,
};

testkit::conformance_tests!(
    mod conformance_tuned,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &[],
    keep_alive = true
);
testkit::conformance_tests!(
    mod conformance_two_rings,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &["--threads", "2"],
    keep_alive = true
);
testkit::conformance_tests!(
    mod conformance_naive,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &["--submit-each", "--no-multishot", "--no-buffer-ring"],
    keep_alive = true
);
testkit::keep_alive_tests!(
    mod keep_alive_tuned,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &[]
);
testkit::keep_alive_tests!(
    mod keep_alive_two_rings,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &["--threads", "2"]
);
testkit::keep_alive_tests!(
    mod keep_alive_naive,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &["--submit-each", "--no-multishot", "--no-buffer-ring"]
);
testkit::fault_tests!(
    mod faults_tuned,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &[]
);
testkit::fault_tests!(
    mod faults_naive,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &["--submit-each", "--no-multishot", "--no-buffer-ring"]
);

#[test]
fn fresh_client_is_served_among_idle_trickling_and_stalled_clients() {
    load::fresh_client_is_served_among_idle_trickling_and_stalled_clients(&TUNED);
    load::fresh_client_is_served_among_idle_trickling_and_stalled_clients(&NAIVE);
}

#[test]
fn serves_a_200_mib_file_to_ten_clients_in_bounded_memory() {
    load::serves_a_huge_file_to_ten_clients_in_bounded_memory(&TUNED, 200);
}

#[test]
fn serves_a_200_mib_file_to_ten_clients_from_two_rings() {
    load::serves_a_huge_file_to_ten_clients_in_bounded_memory(&TWO_RINGS, 200);
}

#[test]
fn survives_clients_that_reset_mid_response() {
    load::survives_clients_that_reset_mid_response(&TUNED);
    load::survives_clients_that_reset_mid_response(&NAIVE);
}

#[test]
fn five_thousand_connections_leave_no_descriptor_behind() {
    load::five_thousand_connections_leave_no_descriptor_behind(&TUNED);
}

#[test]
fn five_thousand_connections_to_two_rings_leave_no_descriptor_behind() {
    load::five_thousand_connections_leave_no_descriptor_behind(&TWO_RINGS);
}

#[test]
fn recovers_from_descriptor_exhaustion_without_spinning() {
    load::recovers_from_descriptor_exhaustion(&TUNED, true);
    load::recovers_from_descriptor_exhaustion(&NAIVE, true);
}

#[test]
fn stops_gracefully_on_sigterm() {
    load::stops_gracefully_finishing_responses_in_flight(&TUNED, libc::SIGTERM);
}

#[test]
fn every_ring_stops_gracefully_on_sigint() {
    load::stops_gracefully_finishing_responses_in_flight(&TWO_RINGS, libc::SIGINT);
}

/// An idle server sleeps in `io_uring_enter`: over a quiet second it uses (almost) no CPU, even
/// with idle keep-alive connections, each with a multishot receive armed.
fn idle_server_uses_no_cpu(target: &Target) {
    let server = target.start_on(&testkit::www_root(), &["--idle-timeout", "60s"]);
    let mut conns: Vec<Conn> = (0..20).map(|_| Conn::open(server.addr())).collect();
    for conn in &mut conns {
        let response = conn.exchange(testkit::http::get_request("/index.html").as_bytes());
        assert_eq!(response.status, 200);
    }
    thread::sleep(Duration::from_millis(200));
    let before = server.cpu_time();
    thread::sleep(Duration::from_secs(1));
    let used = server.cpu_time() - before;
    assert!(
        used < Duration::from_millis(50),
        "{:?} used {used:?} of CPU in a quiet second",
        target.args
    );
}

#[test]
fn idle_server_uses_no_cpu_on_any_rung() {
    idle_server_uses_no_cpu(&TUNED);
    idle_server_uses_no_cpu(&TWO_RINGS);
    idle_server_uses_no_cpu(&NAIVE);
}

#[test]
fn two_rings_run_on_two_threads() {
    let server = TWO_RINGS.start_on(&testkit::www_root(), &[]);
    let deadline = std::time::Instant::now() + testkit::PATIENCE;
    while server.thread_count() < 2 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    // At least two: a splice may have started a kernel worker too, but none has run yet.
    assert_eq!(server.thread_count(), 2);
    for _ in 0..20 {
        assert_eq!(testkit::get(server.addr(), "/").status, 200);
    }
}

#[test]
fn descriptor_table_is_grown_at_start() {
    testkit::conventions::descriptor_table_is_grown_at_start(&TWO_RINGS);
}

/// More rings than `ulimit -u` allows threads (or than the locked memory a user may have allows
/// rings, whichever is met first): one line before `Listening`, as in step 7.
#[test]
fn more_rings_than_the_limits_allow_is_a_one_line_error() {
    testkit::conventions::refuses_more_threads_than_the_limit(
        &TUNED,
        &["--threads", "2000"],
        "2000 rings",
    );
}
