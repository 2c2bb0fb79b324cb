//! Step 4's first program against step 4's server: threads under clients that send nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use testkit::{PATIENCE, Server, procfs};

const SILENT_CLIENTS: usize = 20;
const POOL: usize = 4;

#[test]
fn silent_clients_hold_a_thread_each_in_the_first_program_not_in_step_4s_pool() {
    let first = Server::example("first-thread");
    let before = procfs::thread_count(first.pid());
    let _silent: Vec<TcpStream> = (0..SILENT_CLIENTS)
        .map(|_| TcpStream::connect(first.addr()).unwrap())
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while procfs::thread_count(first.pid()) < before + SILENT_CLIENTS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        procfs::thread_count(first.pid()),
        before + SILENT_CLIENTS,
        "a thread per silent client"
    );
    // Nothing ever lets them go: no timeout, no limit.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(procfs::thread_count(first.pid()), before + SILENT_CLIENTS);

    let step = Server::start(
        env!("CARGO_BIN_EXE_step04-thread"),
        &["--quiet", "--pool", &POOL.to_string()],
    );
    let _silent: Vec<TcpStream> = (0..SILENT_CLIENTS)
        .map(|_| TcpStream::connect(step.addr()).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(500));
    let threads = step.thread_count();
    assert!(
        threads <= 1 + POOL,
        "step 4 --pool {POOL} should run its main thread and {POOL} workers, not {threads} threads"
    );
}
