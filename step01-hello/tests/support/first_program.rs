//! Runs a step's first program (a cargo example) the way a reader does, for the tests that show
//! its flaws: `cargo build --example NAME`, then the binary on `127.0.0.1:0`.
//!
//! Shared by every step's `tests/first_program.rs` through `#[path]`: an example gets no
//! `CARGO_BIN_EXE_*` variable, so the test builds it and asks cargo where the binary is.

// Each step's test uses the part it needs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use testkit::PATIENCE;
use testkit::server::parse_listening_line;

/// A first program running as a child process; dropping it kills its process group and reaps it.
pub struct FirstProgram {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl FirstProgram {
    /// Builds `example` of `package` and starts it on `127.0.0.1:0`; waits for its listening line.
    pub fn start(package: &str, example: &str) -> FirstProgram {
        let binary = build(package, example);
        let mut child = Command::new(&binary)
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that Drop ends the children a forking program leaves.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let errors = BufReader::new(child.stderr.take().unwrap());
        thread::spawn(move || {
            for line in errors.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (sender, receiver) = mpsc::channel();
        let output = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            let mut lines = output.lines().map_while(Result::ok);
            if let Some(addr) = lines.next().as_deref().and_then(parse_listening_line) {
                let _ = sender.send(addr);
            }
            // Keep draining: a program blocked on a full stdout pipe would look hung.
            lines.for_each(drop);
        });
        let addr = match receiver.recv_timeout(PATIENCE) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{example} printed no `Listening on` line first");
            }
        };
        FirstProgram {
            child,
            addr,
            stderr,
        }
    }

    /// Where the program listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` to the program alone.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// How the program ended, if it did within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FirstProgram {
    fn drop(&mut self) {
        // SAFETY: killpg has no memory-safety preconditions; the group is the child's own.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Variables cargo sets for a test binary, not for a cargo run from a shell.
const TEST_ONLY_VARIABLES: &[&str] = &[
    "CARGO_MANIFEST_",
    "CARGO_PKG_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// `cargo build --workspace --example EXAMPLE`, then the binary cargo reports.
///
/// Under `cargo test --workspace` the examples are already built, with the same features
/// (`--workspace` resolves them as that command does), and this is quick; it also makes
/// `cargo test -p PACKAGE --test first_program` work alone. `package` names it in messages.
fn build(package: &str, example: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    // Drop what cargo set for this test: a build script that watches one of these variables
    // (ring's watches CARGO_MANIFEST_DIR) would rebuild, and the next plain build again.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if TEST_ONLY_VARIABLES
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            command.env_remove(&*name);
        }
    }
    let output = command
        .args(["build", "--quiet", "--message-format=json", "--workspace"])
        .args(["--example", example])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build --workspace --example {example} ({package}) failed"
    );
    let wanted = format!("\"name\":\"{example}\"");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("\"reason\":\"compiler-artifact\"") && line.contains(&wanted))
        .find_map(|line| {
            let start = line.find("\"executable\":\"")? + "\"executable\":\"".len();
            let length = line[start..].find('"')?;
            Some(PathBuf::from(&line[start..start + length]))
        })
        .unwrap_or_else(|| panic!("cargo reported no executable for example {example}"))
}
