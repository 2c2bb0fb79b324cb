//! A port in use is refused by step 7 as by every other step, with `--threads N` too: its loops
//! share a port through `SO_REUSEPORT`, which would otherwise let a second server join the first
//! one's group and silently take part of its traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use testkit::{PATIENCE, Server, get};

const BIN: &str = env!("CARGO_BIN_EXE_step07-epoll");

testkit::convention_tests!(mod conventions_one_loop, bin = env!("CARGO_BIN_EXE_step07-epoll"), args = &[]);
testkit::convention_tests!(
    mod conventions_two_loops,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--threads", "2"]
);

/// Runs the binary to its exit, which must come within [`PATIENCE`].
fn run_to_exit(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_exit(child)
}

fn wait_for_exit(mut child: Child) -> Output {
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("should have exited at once");
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn assert_port_in_use_error(output: &Output, addr: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("Listening on"),
        "a refused server must not announce itself"
    );
}

#[test]
fn a_second_server_with_two_loops_is_refused_and_the_first_keeps_serving() {
    let first = Server::start(BIN, &["--threads", "2", "--quiet"]);
    let addr = first.addr().to_string();
    for args in [
        &["--threads", "2"][..],
        &["--threads", "4", "--backend", "epoll"],
        &[],
    ] {
        let mut all = vec!["--addr", &addr, "--quiet"];
        all.extend_from_slice(args);
        assert_port_in_use_error(&run_to_exit(&all), &addr);
    }
    // Had the second joined the group, part of these would have gone to it, and failed as it
    // exited; every one is answered by the first.
    for _ in 0..50 {
        assert_eq!(get(first.addr(), "/").status, 200);
    }
}

/// A child process killed and reaped when dropped, even if the test panics.
struct Running(Option<Child>);

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("still held")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn of_two_servers_started_at_once_on_one_port_exactly_one_listens() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let start = || {
        Running(Some(
            Command::new(BIN)
                .args(["--addr", &addr, "--threads", "2", "--quiet"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    };
    let mut servers = [start(), start()];
    // The loser exits at once; the winner serves until killed.
    let deadline = Instant::now() + PATIENCE;
    let loser = loop {
        if let Some(index) = servers
            .iter_mut()
            .position(|server| server.child().try_wait().unwrap().is_some())
        {
            break index;
        }
        assert!(Instant::now() < deadline, "neither server was refused");
        thread::sleep(Duration::from_millis(10));
    };
    let output = servers[loser].0.take().unwrap().wait_with_output().unwrap();
    assert_port_in_use_error(&output, &addr);
    let winner = servers[1 - loser].child();
    let mut line = String::new();
    BufReader::new(winner.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim_end(), format!("Listening on http://{addr}/"));
    assert!(
        winner.try_wait().unwrap().is_none(),
        "the winner exited too"
    );
    assert_eq!(get(addr.parse().unwrap(), "/").status, 200);
}
