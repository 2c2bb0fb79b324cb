//! Step 3's first program against step 3's server: what is left of the children.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use testkit::{PATIENCE, Server, procfs};

const REQUESTS: usize = 5;

/// One request per connection, read to the end: each child has finished when this returns.
fn get_index(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
}

/// Polls the zombie children of `pid` until `done` holds for their count, or `PATIENCE` passes.
fn zombies_until(pid: u32, done: impl Fn(usize) -> bool) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let zombies = procfs::zombie_children(pid);
        if done(zombies) || Instant::now() >= deadline {
            return zombies;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_first_program_leaves_a_zombie_per_client_step_3_none() {
    let first = Server::example("first-process");
    for _ in 0..REQUESTS {
        get_index(first.addr());
    }
    let zombies = zombies_until(first.pid(), |zombies| zombies >= REQUESTS);
    assert_eq!(
        zombies, REQUESTS,
        "every child of the first program stays a zombie"
    );
    // Still there a moment later: nothing will ever reap them.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(procfs::zombie_children(first.pid()), REQUESTS);

    let step = Server::start(env!("CARGO_BIN_EXE_step03-process"), &["--quiet"]);
    for _ in 0..REQUESTS {
        get_index(step.addr());
    }
    assert_eq!(zombies_until(step.pid(), |zombies| zombies == 0), 0);
    assert_eq!(step.settle(0, PATIENCE, |step| step.child_pids().len()), 0);
}
