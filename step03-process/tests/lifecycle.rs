//! Processes come and go cleanly: no zombie, no leak, no orphan, and signals mean what they say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::thread;
use std::time::Duration;

use testkit::concurrency::{idle_client, idle_clients};
use testkit::lifecycle::{eventually, thousand_connections};
use testkit::{Conn, PATIENCE, Server};

const BIN: &str = env!("CARGO_BIN_EXE_step03-process");

/// Whether `pid` is gone, or dead and waiting for whoever adopted it to reap it.
fn is_dead(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// `fork` is sound only in a single-threaded process; this holds the server to it.
#[test]
fn the_parent_is_single_threaded() {
    for args in [&[][..], &["--prefork", "2"][..]] {
        let server = Server::start(BIN, args);
        assert_eq!(testkit::get(server.addr(), "/").status, 200);
        assert_eq!(server.thread_count(), 1, "{args:?}");
    }
}

#[test]
fn no_zombie_and_no_leak_after_a_thousand_connections() {
    let server = Server::start(BIN, &["--quiet"]);
    let fds = server.fd_count();
    thousand_connections(&server);
    let children = server.settle(0, PATIENCE, |server| server.child_pids().len());
    assert_eq!(children, 0, "children left");
    assert_eq!(server.zombie_count(), 0);
    assert_eq!(
        server.settle(fds, PATIENCE, Server::fd_count),
        fds,
        "descriptors leaked"
    );
}

#[test]
fn prefork_workers_serve_a_thousand_connections_and_leak_nothing() {
    let server = Server::start(BIN, &["--quiet", "--prefork", "4"]);
    // The workers are forked just after the `Listening` line.
    assert!(eventually(|| server.child_pids().len() == 4));
    let mut workers = server.child_pids();
    workers.sort_unstable();
    assert_eq!(workers.len(), 4);
    let fds = server.fd_count();
    thousand_connections(&server);
    let mut after = server.child_pids();
    after.sort_unstable();
    assert_eq!(after, workers, "the same workers should still be serving");
    for &worker in &workers {
        let worker_fds = testkit::procfs::fd_count(worker);
        assert!(
            worker_fds < fds + 8,
            "worker {worker} holds {worker_fds} descriptors"
        );
    }
    assert_eq!(server.fd_count(), fds);
}

/// The parent replaces a worker that dies, and reaps it.
#[test]
fn prefork_replaces_a_dead_worker() {
    let server = Server::start(BIN, &["--prefork", "3"]);
    assert!(eventually(|| server.child_pids().len() == 3));
    let victim = server.child_pids()[0];
    // SAFETY: kill has no memory-safety preconditions; the pid is the server's child.
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    assert!(
        eventually(|| {
            let workers = server.child_pids();
            workers.len() == 3 && !workers.contains(&victim)
        }),
        "not replaced: {:?}",
        server.child_pids()
    );
    assert_eq!(server.zombie_count(), 0);
    assert!(
        server.wait_for_stderr(&format!("worker {victim} killed by SIGKILL"), PATIENCE),
        "{:?}",
        server.stderr_lines()
    );
    assert_eq!(testkit::get(server.addr(), "/").status, 200);
}

/// The children inherit the parent's signal handlers, which write into the parent's self-pipe:
/// unless the child resets them, `kill CHILD` stops the whole server.
#[test]
fn sigterm_to_a_child_ends_only_that_child() {
    let mut server = Server::start(BIN, &["--idle-timeout", "20s"]);
    let mut idle = idle_client(&server);
    let child = server.child_pids()[0];
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child as i32, libc::SIGTERM) }, 0);
    assert!(idle.is_closed_by_peer(PATIENCE));
    assert!(
        server.wait_exit(Duration::from_millis(300)).is_none(),
        "the parent stopped"
    );
    assert_eq!(testkit::get(server.addr(), "/").status, 200);
    assert_eq!(server.settle(0, PATIENCE, Server::zombie_count), 0);
}

/// Stopping leaves nothing behind: every child is stopped and reaped before the parent exits 0.
fn stop_leaves_no_child(args: &[&str], stop: impl FnOnce(&Server)) {
    let mut server = Server::start(BIN, args);
    let _idle: Vec<Conn> = idle_clients(&server, 3);
    let children = server.child_pids();
    assert!(children.len() >= 3, "{children:?}");
    stop(&server);
    let status = server.wait_exit(PATIENCE).expect("still running");
    assert_eq!(status.code(), Some(0));
    for child in children {
        assert!(is_dead(child), "child {child} outlived the server");
    }
}

#[test]
fn ctrl_c_stops_every_child_and_exits_zero() {
    stop_leaves_no_child(&["--idle-timeout", "20s"], |server| {
        server.signal_group(libc::SIGINT);
    });
}

#[test]
fn sigterm_stops_every_child_and_exits_zero() {
    stop_leaves_no_child(&["--idle-timeout", "20s"], |server| {
        server.signal(libc::SIGTERM);
    });
}

#[test]
fn sigterm_stops_every_worker_and_exits_zero() {
    stop_leaves_no_child(&["--idle-timeout", "20s", "--prefork", "4"], |server| {
        server.signal(libc::SIGTERM);
    });
}

/// A parent killed with SIGKILL cannot stop its workers; the kernel does (PR_SET_PDEATHSIG), so
/// no orphan goes on accepting on the port.
#[test]
fn workers_die_with_a_killed_parent() {
    let mut server = Server::start(BIN, &["--prefork", "3"]);
    assert!(eventually(|| server.child_pids().len() == 3));
    let workers = server.child_pids();
    server.signal(libc::SIGKILL);
    server.wait_exit(PATIENCE).expect("SIGKILL did not kill");
    assert!(
        eventually(|| workers.iter().all(|&worker| is_dead(worker))),
        "orphaned workers live on"
    );
}

/// Children write the access log to the stdout they share with the parent and each other. Each
/// line is one `write`, so lines never interleave, even lines longer than stdout's 1 KiB buffer.
#[test]
fn concurrent_children_never_interleave_log_lines() {
    let server = Server::start(BIN, &[]);
    let long_target = format!("/{}", "x".repeat(3000));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr();
            let target = long_target.clone();
            thread::spawn(move || {
                for _ in 0..25 {
                    assert_eq!(testkit::get(addr, &target).status, 404);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert!(server.wait_for_log_count(200, PATIENCE));
    let expected_tail = format!("\"GET {long_target} HTTP/1.1\" 404 ");
    for line in server.log_lines() {
        assert!(
            line.starts_with("127.0.0.1:") && line.contains(&expected_tail),
            "a torn log line: {line:?}"
        );
    }
}

#[test]
fn help_explains_the_model_flags() {
    testkit::lifecycle::help_mentions(BIN, &["--prefork", "--max-children"]);
}
