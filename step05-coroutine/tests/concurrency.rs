//! Many clients at once on a few threads: idle, trickling and stuck clients cost a coroutine
//! each, not a thread, and do not delay a fresh client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;

use testkit::concurrency::{
    LONG_IDLE, client_that_stops_reading, fresh_client_is_served_promptly, idle_clients,
};
use testkit::{PATIENCE, Server, TestSite};

const BIN: &str = env!("CARGO_BIN_EXE_step05-coroutine");

/// One worker thread, 50 idle connections: each is a parked coroutine, and the thread count
/// does not move.
#[test]
fn fifty_idle_clients_on_one_worker_do_not_delay_a_fresh_one() {
    let server = Server::start(
        BIN,
        &["--workers", "1", "--idle-timeout", LONG_IDLE, "--quiet"],
    );
    let first = idle_clients(&server, 1);
    let threads = server.thread_count();
    let idle = idle_clients(&server, 49);
    assert_eq!(server.thread_count(), threads, "a thread per connection?");
    fresh_client_is_served_promptly(&server);
    drop((first, idle));
}

/// Slowloris on one worker: 50 half-sent heads, a fresh client served, and a 408 for each
/// half-sent request at the idle timeout.
#[test]
fn fifty_trickling_clients_do_not_delay_a_fresh_one_and_time_out() {
    testkit::concurrency::fifty_trickling_clients_do_not_delay_a_fresh_one_and_time_out(
        BIN,
        &["--workers", "1"],
    );
}

/// A client that stops reading a large file parks its coroutine in `write`; the only worker
/// thread goes on serving others.
#[test]
fn a_client_that_stops_reading_stalls_only_itself_even_on_one_worker() {
    let site = TestSite::new();
    site.add_file("large.bin", 32 * 1024 * 1024);
    let root = site.root();
    let server = Server::start(
        BIN,
        &[
            "--workers",
            "1",
            "--root",
            root.to_str().unwrap(),
            "--quiet",
        ],
    );
    let (stuck, first) = client_that_stops_reading(&server);
    fresh_client_is_served_promptly(&server);
    // And the stuck client's response is still whole-able: it resumes when read.
    let mut rest = Vec::new();
    stuck.shutdown_write();
    stuck.stream().set_read_timeout(Some(PATIENCE)).unwrap();
    stuck.stream().read_to_end(&mut rest).unwrap();
    assert!(rest.len() >= 32 * 1024 * 1024 - first.len());
}
