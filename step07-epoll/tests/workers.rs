//! Step 7's `--workers N` as a user meets it: a master and N worker processes, with each way of
//! sharing the port, against the shared suites; then what only a master promises: a worker
//! killed is replaced, a stop is passed on and graceful, a taken port is refused.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use testkit::{PATIENCE, Server, Target, get, load};

const BIN: &str = env!("CARGO_BIN_EXE_step07-epoll");

const REUSEPORT: Target = Target {
    bin: BIN,
    args: &["--workers", "2"],
    keep_alive: true,
};
const EXCLUSIVE: Target = Target {
    bin: BIN,
    args: &["--workers", "2", "--share-port", "exclusive"],
    keep_alive: true,
};

testkit::conformance_tests!(
    mod conformance_reuseport,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2"],
    keep_alive = true
);
testkit::conformance_tests!(
    mod conformance_exclusive,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2", "--share-port", "exclusive", "--backend", "epoll"],
    keep_alive = true
);
testkit::keep_alive_tests!(
    mod keep_alive_reuseport,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2"]
);
testkit::keep_alive_tests!(
    mod keep_alive_exclusive_two_loops_each,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2", "--threads", "2", "--share-port", "exclusive"]
);
testkit::convention_tests!(
    mod conventions_reuseport,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2"]
);
testkit::convention_tests!(
    mod conventions_exclusive,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2", "--share-port", "exclusive"]
);
testkit::fault_tests!(
    mod faults_reuseport,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2"]
);
testkit::stalled_stdout_tests!(
    mod stalled_stdout_reuseport,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--workers", "2"],
    keep_alive = true
);

/// Waits until the master has `count` workers, none of them in `gone`; returns them.
fn workers_settle(server: &Server, count: usize, gone: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let workers = server.child_pids();
        if workers.len() == count && workers.iter().all(|pid| !gone.contains(pid)) {
            return workers;
        }
        assert!(
            Instant::now() < deadline,
            "workers: {workers:?}, gone: {gone:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn runs_a_master_and_n_single_threaded_workers() {
    let server = Target {
        args: &["--workers", "3"],
        ..REUSEPORT
    }
    .start_on(&testkit::www_root(), &[]);
    let workers = workers_settle(&server, 3, &[]);
    // The master forks after binding and before any thread: it stays single-threaded, which is
    // what makes its later forks (replacements) sound.
    assert_eq!(server.thread_count(), 1);
    for worker in &workers {
        let status = std::fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
        assert!(status.contains("Threads:\t1\n"), "{status}");
    }
    for _ in 0..30 {
        assert_eq!(get(server.addr(), "/").status, 200);
    }
}

#[test]
fn workers_and_threads_combine_into_loops_per_worker() {
    let server = Target {
        args: &["--workers", "2", "--threads", "3"],
        ..REUSEPORT
    }
    .start_on(&testkit::www_root(), &[]);
    for worker in workers_settle(&server, 2, &[]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = std::fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
            if status.contains("Threads:\t3\n") {
                break;
            }
            assert!(Instant::now() < deadline, "{status}");
            thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(get(server.addr(), "/").status, 200);
}

fn a_killed_worker_is_replaced(target: &Target) {
    let server = target.start_on(&testkit::www_root(), &[]);
    let workers = workers_settle(&server, 2, &[]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(workers[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let replaced = workers_settle(&server, 2, &workers[..1]);
    assert!(
        replaced.contains(&workers[1]),
        "the other worker was left alone"
    );
    let noted = server.wait_for_stderr("starting another", PATIENCE);
    assert!(noted, "{:?}", server.stderr_lines());
    assert_eq!(server.zombie_count(), 0);
    // Every connection is answered: the replacement took over the dead worker's listener.
    for _ in 0..50 {
        assert_eq!(get(server.addr(), "/").status, 200);
    }
}

#[test]
fn a_killed_worker_is_replaced_with_reuseport() {
    a_killed_worker_is_replaced(&REUSEPORT);
}

#[test]
fn a_killed_worker_is_replaced_with_exclusive() {
    a_killed_worker_is_replaced(&EXCLUSIVE);
}

#[test]
fn sigterm_to_the_master_stops_every_worker_gracefully() {
    load::stops_gracefully_finishing_responses_in_flight(&REUSEPORT, libc::SIGTERM);
}

#[test]
fn sigint_to_the_master_stops_every_worker_gracefully_with_exclusive() {
    load::stops_gracefully_finishing_responses_in_flight(&EXCLUSIVE, libc::SIGINT);
}

#[test]
fn a_second_server_with_workers_is_refused_and_the_first_keeps_serving() {
    let first = REUSEPORT.start_on(&testkit::www_root(), &["--quiet"]);
    let addr = first.addr().to_string();
    for share in ["reuseport", "exclusive"] {
        let output = Command::new(BIN)
            .args(["--addr", &addr, "--workers", "2", "--share-port", share])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{share}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{share}: {stderr}");
        assert!(stderr.contains("in use"), "{share}: {stderr}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains("Listening"));
    }
    for _ in 0..50 {
        assert_eq!(get(first.addr(), "/").status, 200);
    }
}

#[test]
fn share_port_without_workers_is_refused() {
    testkit::conventions::refuses_to_start(
        &Target {
            args: &["--share-port", "exclusive"],
            ..REUSEPORT
        },
        &[],
        "--workers",
    );
}
