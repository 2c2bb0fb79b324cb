//! Step 6's first program against its fixed version and step 6's server: CPU used with no client
//! at all, and a file larger than the socket buffers.
//!
//! Over about a second, `/proc/PID/schedstat` says how long the program's thread ran and how long
//! it waited for a core: a loop that never sleeps is one or the other all the time, however busy
//! the machine is (on a busy machine it waits more and runs less). `/proc/PID/stat` says how much
//! CPU it used: a loop that sleeps between empty passes uses almost none.
//!
//! `write_all` on a non-blocking socket stops at `WouldBlock`: a file larger than the socket
//! buffers arrives cut short. The fixed first program (`examples/fixed-nonblocking.rs`) naps when a
//! pass finds nothing and sends the whole file.
//!
//! The first program's other flaw, `remove` inside the walk over the clients, skips one client
//! for one pass: in a loop that passes again a microsecond later nothing outside can see it, so it
//! is shown in the chapter, not here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use testkit::{Server, procfs};

/// Over about a second: the share of one core `pid` used, and the share of the time its main
/// thread was running or ready to run (not sleeping).
fn core_and_runnable_shares(pid: u32) -> (f64, f64) {
    let cpu_before = procfs::cpu_time(pid);
    let runnable_before = runnable_time(pid);
    let started = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let wall = started.elapsed().as_secs_f64();
    let cpu = procfs::cpu_time(pid).saturating_sub(cpu_before);
    let runnable = runnable_time(pid).saturating_sub(runnable_before);
    (cpu.as_secs_f64() / wall, runnable.as_secs_f64() / wall)
}

/// Time on a core plus time waiting for one, from `/proc/PID/schedstat` (`ns_run ns_wait slices`).
fn runnable_time(pid: u32) -> Duration {
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    let nanos: u64 = schedstat
        .split_whitespace()
        .take(2)
        .map(|field| field.parse::<u64>().unwrap())
        .sum();
    Duration::from_nanos(nanos)
}

#[test]
fn the_first_program_burns_cpu_with_no_client_step_6_with_a_nap_does_not() {
    let first = Server::example("first-nonblocking");
    let (share, runnable) = core_and_runnable_shares(first.pid());
    eprintln!(
        "first-nonblocking, no client: {:.0} % of a core, runnable {:.0} % of the time",
        share * 100.0,
        runnable * 100.0
    );
    assert!(
        runnable > 0.9,
        "the first program's loop should never sleep, even with no client: runnable {:.0} % of the time",
        runnable * 100.0
    );

    let step = Server::start(
        env!("CARGO_BIN_EXE_step06-nonblocking"),
        &["--quiet", "--nap", "1000"],
    );
    let (share, _) = core_and_runnable_shares(step.pid());
    eprintln!(
        "step06-nonblocking --nap 1000, no client: {:.0} % of a core",
        share * 100.0
    );
    assert!(
        share < 0.15,
        "step 6 with --nap 1000 should nap when a pass finds nothing: {:.0} % of a core",
        share * 100.0
    );
}

#[test]
fn the_fixed_program_naps_when_a_pass_finds_nothing() {
    let fixed = Server::example("fixed-nonblocking");
    let (share, _) = core_and_runnable_shares(fixed.pid());
    eprintln!(
        "fixed-nonblocking, no client: {:.0} % of a core",
        share * 100.0
    );
    assert!(
        share < 0.15,
        "the fixed program should nap when a pass finds nothing: {:.0} % of a core",
        share * 100.0
    );
}

/// A folder holding one file larger than the socket buffers of both ends of a loopback
/// connection can hold: `write_all` on a non-blocking socket must meet `WouldBlock` with it.
fn site_with_a_large_file() -> (tempfile::TempDir, usize) {
    const SIZE: usize = 64 * 1024 * 1024;
    let site = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..SIZE).map(|at| (at % 251) as u8).collect();
    std::fs::write(site.path().join("large.bin"), &bytes).unwrap();
    (site, SIZE)
}

/// Asks for `/large.bin`, reads nothing for half a second (the server's writes fill the socket
/// buffers meanwhile), then reads until the body is whole or nothing comes for a second. Returns
/// how many body bytes arrived, and whether they are the file's bytes in order.
fn large_file_received(addr: SocketAddr) -> (usize, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /large.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let head_end = |received: &[u8]| {
        received
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|end| end + 4)
    };
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(count) => received.extend_from_slice(&chunk[..count]),
        }
        let whole = head_end(&received)
            .is_some_and(|end| received.len() - end >= content_length(&received[..end]));
        if whole {
            break;
        }
    }
    let body = &received[head_end(&received).expect("a response head")..];
    let intact = body
        .iter()
        .enumerate()
        .all(|(at, &byte)| byte == (at % 251) as u8);
    (body.len(), intact)
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn write_all_cuts_a_large_file_short_in_the_first_program_the_fixed_one_sends_it_whole() {
    let (site, size) = site_with_a_large_file();
    let root = site.path().to_str().unwrap();

    let first = Server::example_with("first-nonblocking", &[root]);
    let (received, _) = large_file_received(first.addr());
    eprintln!("first-nonblocking sent {received} of {size} bytes");
    assert!(
        received < size,
        "the first program's write_all should stop at WouldBlock and drop the rest"
    );

    let fixed = Server::example_with("fixed-nonblocking", &[root]);
    assert_eq!(large_file_received(fixed.addr()), (size, true));
}
