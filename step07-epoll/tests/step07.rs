//! Step 7 as a user meets it: the real binary on 127.0.0.1:0, with each backend and with two
//! loops, against the shared conformance and keep-alive suites, then the faults (shared with step 6)
//! and what only an epoll loop promises: no CPU while idle, none while out of descriptors.

use std::thread;
use std::time::Duration;

use testkit::http::Conn;
use testkit::{Target, load};

const MIO: Target = Target {
    bin: env!("CARGO_BIN_EXE_step07-epoll"),
    args: &[],
    keep_alive: true,
};
const EPOLL: Target = Target {
    bin: env!("CARGO_BIN_EXE_step07-epoll"),
    args: &["--backend", "epoll"],
    keep_alive: true,
};
const TWO_LOOPS: Target = Target {
    bin: env!("CARGO_BIN_EXE_step07-epoll"),
    args: &["--threads", "2"],
    keep_alive: true,
};
const EPOLL_TWO_LOOPS: Target = Target {
    bin: env!("CARGO_BIN_EXE_step07-epoll"),
    args: &["--backend", "epoll", "--threads", "2"],
    keep_alive: true,
};

testkit::conformance_tests!(
    mod conformance_mio,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &[],
    keep_alive = true
);
testkit::conformance_tests!(
    mod conformance_epoll,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--backend", "epoll"],
    keep_alive = true
);
testkit::conformance_tests!(
    mod conformance_two_loops,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--threads", "2"],
    keep_alive = true
);
testkit::keep_alive_tests!(
    mod keep_alive_mio,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &[]
);
testkit::keep_alive_tests!(
    mod keep_alive_epoll,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--backend", "epoll"]
);
testkit::keep_alive_tests!(
    mod keep_alive_two_loops,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--threads", "2"]
);
testkit::fault_tests!(
    mod faults_mio,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &[]
);
testkit::fault_tests!(
    mod faults_epoll,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--backend", "epoll"]
);

#[test]
fn fresh_client_is_served_among_idle_trickling_and_stalled_clients() {
    load::fresh_client_is_served_among_idle_trickling_and_stalled_clients(&MIO);
    load::fresh_client_is_served_among_idle_trickling_and_stalled_clients(&EPOLL);
}

#[test]
fn serves_a_200_mib_file_to_ten_clients_in_bounded_memory() {
    load::serves_a_huge_file_to_ten_clients_in_bounded_memory(&MIO, 200);
}

#[test]
fn serves_a_200_mib_file_to_ten_clients_from_two_raw_epoll_loops() {
    load::serves_a_huge_file_to_ten_clients_in_bounded_memory(&EPOLL_TWO_LOOPS, 200);
}

#[test]
fn survives_clients_that_reset_mid_response() {
    load::survives_clients_that_reset_mid_response(&MIO);
    load::survives_clients_that_reset_mid_response(&EPOLL);
}

#[test]
fn five_thousand_connections_leave_no_descriptor_behind() {
    load::five_thousand_connections_leave_no_descriptor_behind(&MIO);
}

#[test]
fn five_thousand_connections_to_two_raw_epoll_loops_leave_no_descriptor_behind() {
    load::five_thousand_connections_leave_no_descriptor_behind(&EPOLL_TWO_LOOPS);
}

#[test]
fn recovers_from_descriptor_exhaustion_without_spinning() {
    load::recovers_from_descriptor_exhaustion(&MIO, true);
    load::recovers_from_descriptor_exhaustion(&EPOLL, true);
}

#[test]
fn stops_gracefully_on_sigterm() {
    load::stops_gracefully_finishing_responses_in_flight(&MIO, libc::SIGTERM);
}

#[test]
fn every_loop_stops_gracefully_on_sigint() {
    load::stops_gracefully_finishing_responses_in_flight(&EPOLL_TWO_LOOPS, libc::SIGINT);
}

/// An idle server sleeps in `epoll_wait`: over a quiet second it uses (almost) no CPU, even with
/// idle keep-alive connections open. Step 6 would use the whole second.
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
fn idle_server_uses_no_cpu_with_each_backend() {
    idle_server_uses_no_cpu(&MIO);
    idle_server_uses_no_cpu(&EPOLL);
    idle_server_uses_no_cpu(&TWO_LOOPS);
}

#[test]
fn two_loops_run_on_two_threads() {
    let server = TWO_LOOPS.start_on(&testkit::www_root(), &[]);
    // One loop runs on the main thread, the other on a thread started just after the listening line.
    let deadline = std::time::Instant::now() + testkit::PATIENCE;
    while server.thread_count() < 2 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.thread_count(), 2);
    for _ in 0..20 {
        assert_eq!(testkit::get(server.addr(), "/").status, 200);
    }
}

/// Loops on several threads accept and close descriptors at once: the table is grown before the
/// first client, or each doubling would stall every loop (see the C10K chapter).
#[test]
fn descriptor_table_is_grown_at_start() {
    testkit::conventions::descriptor_table_is_grown_at_start(&TWO_LOOPS);
    testkit::conventions::descriptor_table_is_grown_at_start(&EPOLL_TWO_LOOPS);
}

/// More loops than `ulimit -u` allows threads: one line before `Listening`, not a server that
/// quietly runs fewer loops than asked for and exits 1 on SIGTERM.
#[test]
fn more_loops_than_the_thread_limit_is_a_one_line_error() {
    testkit::conventions::refuses_more_threads_than_the_limit(
        &MIO,
        &["--threads", "2000"],
        "cannot start 2000 event loops",
    );
}
