//! The conventions every server binary follows, whatever its model: flags, the listening line,
//! exit codes, the access log.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Duration;

use crate::http::get;
use crate::{PATIENCE, Server, Target};

fn run_to_exit(target: &Target, extra: &[&str]) -> Output {
    let mut command = Command::new(target.bin);
    command.args(target.args).args(extra);
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} {extra:?} should have exited at once", target.bin);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn assert_one_line_error(output: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit status; stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    assert!(
        stderr.contains(mentions),
        "{stderr:?} should mention {mentions:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `--help` explains the shared flags and exits 0.
pub fn help_lists_common_flags(target: &Target) {
    let output = run_to_exit(target, &["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--addr", "--root", "--idle-timeout", "--quiet", "--help"] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

/// A port already taken is a one-line error and exit code 1.
pub fn port_in_use_is_a_one_line_error(target: &Target) {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run_to_exit(target, &["--addr", &addr]);
    assert_one_line_error(&output, &addr);
}

/// A missing document root is a one-line error and exit code 1.
pub fn missing_root_is_a_one_line_error(target: &Target) {
    let output = run_to_exit(
        target,
        &["--addr", "127.0.0.1:0", "--root", "/no/such/folder"],
    );
    assert_one_line_error(&output, "/no/such/folder");
}

/// SIGTERM (as from `kill` or a service manager) stops the server with exit code 0.
pub fn sigterm_exits_zero(target: &Target) {
    let mut server = target.start_on(&crate::www_root(), &[]);
    assert_eq!(get(server.addr(), "/").status, 200);
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(PATIENCE)
        .expect("still running 10 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "{:?}", server.stderr_lines());
}

/// Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops the server with
/// exit code 0.
pub fn ctrl_c_exits_zero(target: &Target) {
    let mut server = target.start_on(&crate::www_root(), &[]);
    assert_eq!(get(server.addr(), "/").status, 200);
    server.signal_group(libc::SIGINT);
    let status = server
        .wait_exit(PATIENCE)
        .expect("still running 10 s after Ctrl-C");
    assert_eq!(status.code(), Some(0), "{:?}", server.stderr_lines());
}

/// `--quiet` silences the access log.
pub fn quiet_silences_the_log(target: &Target) {
    let server: Server = target.start_on(&crate::www_root(), &["--quiet"]);
    assert_eq!(get(server.addr(), "/").status, 200);
    assert_eq!(get(server.addr(), "/").status, 200);
    assert!(
        !server.wait_for_log(|_| true, Duration::from_millis(300)),
        "{:?}",
        server.log_lines()
    );
}
