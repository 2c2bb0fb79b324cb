//! The conventions every server binary follows, whatever its model: flags, the listening line,
//! exit codes, the access log.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::http::{Conn, get};
use crate::server::{Launch, poll};
use crate::{PATIENCE, Server, Target, TestSite};

/// Runs `bin ARGS`, which must exit within [`PATIENCE`], and returns what it printed.
pub(crate) fn run_to_exit(bin: &str, args: &[&str]) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if poll(PATIENCE, || child.try_wait().unwrap()).is_none() {
        let _ = child.kill();
        panic!("{bin} {args:?} should have exited at once");
    }
    child.wait_with_output().unwrap()
}

/// Runs the target with its own flags and `extra`, to its exit.
fn run_target(target: &Target, extra: &[&str]) -> Output {
    run_to_exit(target.bin, &[target.args, extra].concat())
}

fn assert_one_line_error(output: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    assert_eq!(code, Some(1), "exit status; stderr: {stderr}");
    let n_lines = stderr.trim_end().lines().count();
    assert_eq!(n_lines, 1, "one line, no backtrace: {stderr}");
    let mentioned = stderr.contains(mentions);
    assert!(mentioned, "{stderr:?} should mention {mentions:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Runs `bin ARGS --help`, which must exit 0 and mention each of `flags`.
pub(crate) fn assert_help_mentions(bin: &str, args: &[&str], flags: &[&str]) {
    let output = run_to_exit(bin, &[args, &["--help"]].concat());
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in flags {
        let mentioned = help.contains(flag);
        assert!(mentioned, "--help does not mention {flag}:\n{help}");
    }
}

/// `--help` explains the shared flags and exits 0.
pub fn help_lists_common_flags(target: &Target) {
    let flags = ["--addr", "--root", "--idle-timeout", "--quiet", "--help"];
    assert_help_mentions(target.bin, target.args, &flags);
}

/// A port already taken is a one-line error and exit code 1.
pub fn port_in_use_is_a_one_line_error(target: &Target) {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run_target(target, &["--addr", &addr]);
    assert_one_line_error(&output, &addr);
}

/// A missing document root is a one-line error and exit code 1.
pub fn missing_root_is_a_one_line_error(target: &Target) {
    let args = ["--addr", "127.0.0.1:0", "--root", "/no/such/folder"];
    assert_one_line_error(&run_target(target, &args), "/no/such/folder");
}

/// An `--idle-timeout` of zero (every client would be cut off at once), past a day, or so long
/// that adding it to the clock would overflow is a one-line error before `Listening`, the same on
/// every step.
pub fn out_of_range_idle_timeout_is_a_one_line_error(target: &Target) {
    for timeout in ["0s", "2days", "500000000years"] {
        refuses_to_start(target, &["--idle-timeout", timeout], "--idle-timeout");
    }
}

/// Starting the target with `extra` flags must fail before `Listening` with one line on stderr
/// that mentions `mentions`, and exit code 1.
pub fn refuses_to_start(target: &Target, extra: &[&str], mentions: &str) {
    let output = run_target(target, &[&["--addr", "127.0.0.1:0"], extra].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("Listening on"), "{extra:?}: announced");
    assert_one_line_error(&output, mentions);
}

/// How many processes and threads the user may have in [`refuses_more_threads_than_the_limit`].
const THREAD_LIMIT: u64 = 300;

/// Under `ulimit -u` of [`THREAD_LIMIT`], a server asked (by `extra`) for more threads than that
/// refuses to start with one line that `mentions` what it could not start, before announcing
/// itself: no panic, and no server quietly running with fewer threads than asked for. Root is not
/// bound by the limit, so a test run as root runs the server as `nobody`.
pub fn refuses_more_threads_than_the_limit(target: &Target, extra: &[&str], mentions: &str) {
    use std::os::unix::process::CommandExt;
    let site = TestSite::new();
    let bin = site.runnable_by_nobody(target.bin);
    let root = site.root();
    let root = root.to_str().expect("temp paths are UTF-8");
    let args = [
        target.args,
        &["--addr", "127.0.0.1:0", "--root", root],
        extra,
    ]
    .concat();
    let mut command = Command::new(&bin);
    command
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: setrlimit and those of `become_nobody_if_root` are plain system calls,
    // and nothing allocates.
    unsafe {
        command.pre_exec(|| {
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NPROC,
                THREAD_LIMIT,
                THREAD_LIMIT,
            )?;
            crate::server::become_nobody_if_root()?;
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    if poll(PATIENCE, || child.try_wait().unwrap()).is_none() {
        let _ = child.kill();
        panic!("{} {args:?} should have refused to start", bin.display());
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("Listening on"), "{extra:?}: announced");
    assert_one_line_error(&output, mentions);
}

/// Starts the server, has it answer once, `send`s it `signal` and expects exit code 0.
fn signal_exits_zero(target: &Target, signal: i32, send: fn(&Server, i32)) {
    let mut server = target.start_on(&crate::www_root(), &[]);
    assert_eq!(get(server.addr(), "/").status, 200);
    send(&server, signal);
    let status = server
        .wait_exit(PATIENCE)
        .unwrap_or_else(|| panic!("still running 10 s after signal {signal}"));
    assert_eq!(status.code(), Some(0), "{:?}", server.stderr_lines());
}

/// SIGTERM (as from `kill` or a service manager) stops the server with exit code 0.
pub fn sigterm_exits_zero(target: &Target) {
    signal_exits_zero(target, libc::SIGTERM, Server::signal);
}

/// Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops the server with
/// exit code 0.
pub fn ctrl_c_exits_zero(target: &Target) {
    signal_exits_zero(target, libc::SIGINT, Server::signal_group);
}

/// SIGHUP to the whole process group (a closed terminal) is ignored, with one line on stderr: a
/// request whose head was half sent before it is answered once the head is complete (a blocked
/// `read` that the signal interrupts goes on), and the server goes on serving.
pub fn sighup_is_ignored_with_a_note(target: &Target) {
    let mut server = target.start_on(&crate::www_root(), &[]);
    let mut begun = Conn::open(server.addr());
    begun.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    // Time for the server to start reading the head, so the signal finds it blocked in `read`.
    std::thread::sleep(Duration::from_millis(100));
    server.signal_group(libc::SIGHUP);
    let noted = server.wait_for_stderr("SIGHUP", PATIENCE);
    assert!(noted, "no note on stderr: {:?}", server.stderr_lines());
    begun.send(b"\r\n");
    assert_eq!(begun.read_response(false).status, 200);
    assert_eq!(get(server.addr(), "/").status, 200);
    let alive = server.wait_exit(Duration::from_millis(200)).is_none();
    assert!(alive, "SIGHUP stopped the server");
    let lines = server.stderr_lines();
    let notes = lines.iter().filter(|line| line.contains("SIGHUP")).count();
    assert_eq!(notes, 1, "one note per SIGHUP: {lines:?}");
}

/// A second stop signal during a graceful stop: with a download in flight whose client stopped
/// reading and a head half sent (`--idle-timeout 60s`, so neither ends by itself), the server
/// waits no more and exits within 2 s of the second `signal`, with status 0.
///
/// Returns whether a graceful stop was under way (the server still ran 1 s after the first
/// signal); a model that stops abruptly exits on the first one, with status 0 too.
pub fn second_signal_stops_at_once(
    target: &Target,
    extra: &[&str],
    signal: i32,
    send: fn(&Server, i32),
) -> bool {
    let site = TestSite::new();
    // Far larger than the socket buffers of both sides: the server's write blocks.
    site.add_file("large.bin", 32 * 1024 * 1024);
    let args = [&["--quiet", "--idle-timeout", "60s"], extra].concat();
    let mut server = target.start_on(&site.root(), &args);
    // Step 1 (and step 2, one client at a time) is busy reading this head and serves nothing else.
    let mut half_sent = Conn::open(server.addr());
    half_sent.send(b"GET / HTTP/1.1\r\n");
    let mut downloading = Conn::open(server.addr());
    downloading.send(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // Time for the server to begin the download; the client never reads it.
    std::thread::sleep(Duration::from_millis(300));
    send(&server, signal);
    if let Some(status) = server.wait_exit(Duration::from_secs(1)) {
        assert_eq!(status.code(), Some(0), "{:?}", server.stderr_lines());
        return false;
    }
    let second = Instant::now();
    send(&server, signal);
    let status = server
        .wait_exit(PATIENCE)
        .expect("still running 10 s after the second signal");
    let took = second.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after the second signal"
    );
    assert_eq!(status.code(), Some(0), "{:?}", server.stderr_lines());
    true
}

/// A second SIGTERM ends a graceful stop at once (see [`second_signal_stops_at_once`]).
pub fn second_sigterm_stops_at_once(target: &Target) {
    second_signal_stops_at_once(target, &[], libc::SIGTERM, Server::signal);
}

/// A second Ctrl-C ends a graceful stop at once (see [`second_signal_stops_at_once`]).
pub fn second_ctrl_c_stops_at_once(target: &Target) {
    second_signal_stops_at_once(target, &[], libc::SIGINT, Server::signal_group);
}

/// `--quiet` silences the access log.
pub fn quiet_silences_the_log(target: &Target) {
    let server = target.start_on(&crate::www_root(), &["--quiet"]);
    for _ in 0..2 {
        assert_eq!(get(server.addr(), "/").status, 200);
    }
    let logged = server.wait_for_log(|_| true, Duration::from_millis(300));
    assert!(!logged, "{:?}", server.log_lines());
}

/// The descriptor table is grown to the descriptor limit before the first client: in a process
/// with threads, growing it later stalls every thread at each doubling.
pub fn descriptor_table_is_grown_at_start(target: &Target) {
    const LIMIT: usize = 4096;
    let launch = Launch {
        nofile_limit: Some(LIMIT as u64),
        ..Launch::default()
    };
    let server = Server::launch(target.bin, target.args, &launch);
    let size = crate::procfs::fd_table_size(server.pid());
    assert!(size >= LIMIT, "room for {size} descriptors, not {LIMIT}");
}
