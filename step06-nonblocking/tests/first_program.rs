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

#[test]
fn write_all_cuts_a_large_file_short_in_the_first_program_the_fixed_one_sends_it_whole() {
    testkit::first_programs::write_all_cuts_a_large_file_short(
        "first-nonblocking",
        "fixed-nonblocking",
    );
}
