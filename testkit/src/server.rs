//! [`Server`]: a server binary (or nginx) running as a child process, as a user would start it.
//! It is the one harness of the tests and of `bench`: start on `127.0.0.1:0`, read the first line,
//! hold the process in its own process group, read it from `/proc`, and stop and reap it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::PATIENCE;
use crate::procfs;

/// What a child printed on one stream so far.
#[derive(Default)]
struct Printed {
    lines: Vec<String>,
    /// The stream has ended.
    ended: bool,
}

/// A stream's [`Printed`], with a condition variable to wait for more lines (or for the end).
#[derive(Default)]
struct Output {
    printed: Mutex<Printed>,
    grew: Condvar,
}

impl Output {
    fn update(&self, change: impl FnOnce(&mut Printed)) {
        if let Ok(mut printed) = self.printed.lock() {
            change(&mut printed);
        }
        self.grew.notify_all();
    }

    fn lines(&self) -> Vec<String> {
        self.printed
            .lock()
            .map(|printed| printed.lines.clone())
            .unwrap_or_default()
    }

    /// Waits until `done` holds; false if it did not within `timeout`.
    fn wait(&self, timeout: Duration, done: impl Fn(&Printed) -> bool) -> bool {
        let Ok(printed) = self.printed.lock() else {
            return false;
        };
        self.grew
            .wait_timeout_while(printed, timeout, |printed| !done(printed))
            .is_ok_and(|(_, wait)| !wait.timed_out())
    }
}

/// A running server. Dropping it kills the server's whole process group and reaps it.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    /// Every stdout line, the listening line first.
    stdout: Arc<Output>,
    stderr: Arc<Output>,
    /// With [`Launch::unread_stdout`], the pipe, once the listening line is read.
    unread_stdout: Arc<Mutex<Option<ChildStdout>>>,
}

/// How to start a [`Server`] beyond its flags.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Lower the open-descriptor limit (`RLIMIT_NOFILE`) of the server to this value.
    pub nofile_limit: Option<u64>,
    /// The server announces nothing (nginx): it is ready once this address accepts a connection.
    pub silent_on: Option<SocketAddr>,
    /// Read nothing of stdout after the listening line, as when a user pipes the log into `less`
    /// and stops scrolling: the pipe fills. [`Server::read_stdout_now`] reads what it holds.
    pub unread_stdout: bool,
    /// Run the server as `nobody` when the tests run as root, whom no permission stops: for
    /// what only an unprivileged server meets (a root folder it may not list).
    pub as_nobody: bool,
}

/// Makes this process `nobody` if it is root, for a child between fork and exec: only plain
/// system calls, no allocation. Its stdout and stderr pipes are opened to everyone first, because
/// the server reopens them (see the log's sink) and pipes made by root are root's alone.
///
/// # Errors
///
/// As the system calls.
pub(crate) fn become_nobody_if_root() -> nix::Result<()> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    if !Uid::effective().is_root() {
        return Ok(());
    }
    for pipe in [1, 2] {
        // SAFETY: 1 and 2 are this process's stdout and stderr, open for its lifetime.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(pipe) };
        nix::sys::stat::fchmod(fd, nix::sys::stat::Mode::from_bits_truncate(0o666))?;
    }
    setgroups(&[])?;
    setgid(Gid::from_raw(65534))?;
    setuid(Uid::from_raw(65534))
}

/// Why a server did not start (or stopped), with what it wrote on stderr.
#[derive(Debug, Clone)]
pub struct StartError {
    /// What went wrong, on one line.
    pub reason: String,
    /// Everything the server wrote on stderr.
    pub stderr: Vec<String>,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        let mut stderr = self.stderr.iter().rev().map(|line| line.trim());
        match stderr.find(|line| !line.is_empty()) {
            Some(last_words) => write!(f, ": {last_words}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for StartError {}

impl Server {
    /// Starts `bin` with `args`, adding `--addr 127.0.0.1:0` and `--idle-timeout 2s` unless `args`
    /// set them, and waits for its `Listening on http://ADDR/` line.
    ///
    /// # Panics
    ///
    /// Panics when the binary cannot start or prints no listening line within [`PATIENCE`].
    pub fn start(bin: &str, args: &[&str]) -> Server {
        Server::launch(bin, args, &Launch::default())
    }

    /// [`Server::start`] with process-level settings.
    pub fn launch(bin: &str, args: &[&str], launch: &Launch) -> Server {
        let mut all: Vec<&str> = Vec::new();
        if !args.contains(&"--addr") {
            all.extend(["--addr", "127.0.0.1:0"]);
        }
        if !args.contains(&"--idle-timeout") {
            all.extend(["--idle-timeout", "2s"]);
        }
        all.extend_from_slice(args);
        Server::spawn(bin, &all, launch).unwrap_or_else(|error| {
            let stderr = error.stderr.join("\n");
            panic!("{bin} {args:?}: {}; stderr:\n{stderr}", error.reason)
        })
    }

    /// Builds the cargo example `example` (a step's first program) and starts it the way a reader
    /// does, with a plain address argument: `NAME 127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// Panics when the example does not build, start, or print its listening line.
    pub fn example(example: &str) -> Server {
        Server::example_with(example, &[])
    }

    /// [`Server::example`] with more arguments after the address: `NAME 127.0.0.1:0 ARGS…`.
    ///
    /// # Panics
    ///
    /// Panics when the example does not build, start, or print its listening line.
    pub fn example_with(example: &str, args: &[&str]) -> Server {
        let binary = build_example(example);
        let mut all = vec!["127.0.0.1:0"];
        all.extend_from_slice(args);
        Server::spawn(&binary, &all, &Launch::default())
            .unwrap_or_else(|error| panic!("example {example}: {error}"))
    }

    /// Starts `program` with exactly `args` in its own process group and waits until it listens.
    /// The server gets `SIGTERM` if the thread that started it exits first (a harness that dies
    /// leaves no server running unseen).
    ///
    /// # Errors
    ///
    /// When the program cannot start, exits, prints another first line, or is not ready within
    /// [`PATIENCE`].
    pub fn spawn<S: AsRef<OsStr>>(
        program: impl AsRef<OsStr>,
        args: &[S],
        launch: &Launch,
    ) -> Result<Server, StartError> {
        let program = program.as_ref();
        let nofile_limit = launch.nofile_limit;
        let as_nobody = launch.as_nobody;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: stopping it stops every process it forked, and a test can signal
            // the group the way Ctrl-C does. It also keeps a terminal's Ctrl-C away from it, hence
            // the parent-death signal.
            .process_group(0);
        // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
        // calls are allowed: prctl and setrlimit are plain system calls, and nothing allocates.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                if let Some(limit) = nofile_limit {
                    setrlimit(Resource::RLIMIT_NOFILE, limit, limit)?;
                }
                if as_nobody {
                    become_nobody_if_root()?;
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|error| StartError {
            reason: format!("cannot start {}: {error}", program.to_string_lossy()),
            stderr: Vec::new(),
        })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            unreachable!("stdout and stderr are piped");
        };
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout: Arc::default(),
            stderr: Arc::default(),
            unread_stdout: Arc::default(),
        };
        let hold = launch
            .unread_stdout
            .then(|| Arc::clone(&server.unread_stdout));
        read_lines(stdout, Arc::clone(&server.stdout), hold);
        read_lines(stderr, Arc::clone(&server.stderr), None);
        let ready = match launch.silent_on {
            Some(addr) => server.wait_until_accepting(addr),
            None => server.listening_addr(),
        };
        server.addr = ready.map_err(|reason| server.failure(reason))?;
        Ok(server)
    }

    fn listening_addr(&self) -> Result<SocketAddr, String> {
        let settled = self.stdout.wait(PATIENCE, |printed| {
            printed.ended || !printed.lines.is_empty()
        });
        match self.stdout.lines().first() {
            Some(line) => {
                parse_listening_line(line).ok_or_else(|| format!("unexpected first line {line:?}"))
            }
            None if settled => Err("exited before listening".to_owned()),
            None => Err(format!("no `Listening on` line within {PATIENCE:?}")),
        }
    }

    fn wait_until_accepting(&mut self, addr: SocketAddr) -> Result<SocketAddr, String> {
        poll(PATIENCE, || {
            if TcpStream::connect(addr).is_ok() {
                Some(Ok(addr))
            } else if let Ok(Some(_)) = self.child.try_wait() {
                Some(Err("exited before listening".to_owned()))
            } else {
                None
            }
        })
        .unwrap_or_else(|| Err(format!("not accepting on {addr} within {PATIENCE:?}")))
    }

    /// `reason`, with the server's exit status and everything it wrote on stderr (read to the end
    /// first: its last words may still be in the pipe).
    fn failure(&mut self, reason: String) -> StartError {
        let status = self.wait_exit(Duration::from_millis(500));
        self.stderr
            .wait(Duration::from_millis(500), |printed| printed.ended);
        StartError {
            reason: match status {
                Some(status) => format!("{reason} ({status})"),
                None => reason,
            },
            stderr: self.stderr_lines(),
        }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/path` for this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The server's process id (the root of its process tree).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn nix_pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    /// Every stdout line after the listening line (the access log).
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout.lines().into_iter().skip(1).collect()
    }

    /// With [`Launch::unread_stdout`]: what the stdout pipe holds now, without waiting for more.
    pub fn read_stdout_now(&self) -> String {
        let mut text = Vec::new();
        if let Ok(mut held) = self.unread_stdout.lock()
            && let Some(stdout) = held.as_mut()
            && fcntl(&*stdout, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_ok()
        {
            // Ends with WouldBlock once the pipe is empty; what was read stays in `text`.
            let _ = stdout.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// Waits until some access-log line satisfies `predicate`; false if none did within `timeout`.
    pub fn wait_for_log(&self, predicate: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        self.stdout.wait(timeout, |printed| {
            printed.lines.iter().skip(1).any(|line| predicate(line))
        })
    }

    /// Waits until some stderr line contains `needle`; false if none did within `timeout`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.stderr.wait(timeout, |printed| {
            printed.lines.iter().any(|line| line.contains(needle))
        })
    }

    /// Waits until the access log has at least `count` lines; false on timeout.
    pub fn wait_for_log_count(&self, count: usize, timeout: Duration) -> bool {
        // The listening line comes first and is not part of the log.
        self.stdout
            .wait(timeout, |printed| printed.lines.len() > count)
    }

    /// Sends `signal` to the server process alone, as `kill PID` does.
    pub fn signal(&self, signal: i32) {
        self.send(signal, kill::<Signal>);
    }

    /// Sends `signal` to the server's whole process group, as Ctrl-C in a terminal does.
    pub fn signal_group(&self, signal: i32) {
        self.send(signal, killpg::<Signal>);
    }

    fn send(&self, signal: i32, to: fn(Pid, Signal) -> nix::Result<()>) {
        let signal = Signal::try_from(signal).expect("a valid signal number");
        to(self.nix_pid(), signal)
            .unwrap_or_else(|error| panic!("{signal} to {}: {error}", self.pid()));
    }

    /// Waits for the server to exit, reaping it; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll(timeout, || self.child.try_wait().ok().flatten())
    }

    /// Whether the process still runs; if not, why it stopped (its status and last stderr line).
    ///
    /// # Errors
    ///
    /// When the server has exited.
    pub fn check_alive(&mut self) -> Result<(), StartError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(self.failure("server exited".to_owned())),
            Err(error) => Err(self.failure(format!("server state unknown: {error}"))),
        }
    }

    /// Asks the server to stop (`SIGTERM` to its process group), waits up to two seconds, then kills
    /// what is left of the group and reaps the server. Returns whether it exited by itself, with 0.
    pub fn stop(mut self) -> bool {
        let running = matches!(self.child.try_wait(), Ok(None));
        if running {
            let _ = killpg(self.nix_pid(), Signal::SIGTERM);
        }
        // Drop then kills what is left of the group (forked children, a server ignoring SIGTERM).
        running
            && self
                .wait_exit(Duration::from_secs(2))
                .is_some_and(|status| status.success())
    }

    /// Open descriptors of the server process (`/proc/PID/fd`).
    pub fn fd_count(&self) -> usize {
        procfs::fd_count(self.pid())
    }

    /// Threads of the server process.
    pub fn thread_count(&self) -> usize {
        procfs::thread_count(self.pid())
    }

    /// CPU time the server process has used (user + system), its threads included.
    pub fn cpu_time(&self) -> Duration {
        procfs::cpu_time(self.pid())
    }

    /// Processes whose parent is the server.
    pub fn child_pids(&self) -> Vec<u32> {
        procfs::child_pids(self.pid())
    }

    /// Children of the server that have exited and not been reaped.
    pub fn zombie_count(&self) -> usize {
        procfs::zombie_children(self.pid())
    }

    /// Waits until `probe` returns `target` or less, polling; returns the last value seen.
    /// For counts that fall back to a baseline once the server has cleaned up (fds, threads).
    pub fn settle(
        &self,
        target: usize,
        timeout: Duration,
        probe: impl Fn(&Server) -> usize,
    ) -> usize {
        let mut last = probe(self);
        poll(timeout, || {
            last = probe(self);
            (last <= target).then_some(())
        });
        last
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The group is the server's own (process_group(0) makes its pid the group id).
        let _ = killpg(self.nix_pid(), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls `probe` every 10 ms until it gives a value, or `timeout` has passed.
pub(crate) fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the lines of `stream` into `output` until it ends. With `hold`, reads only the first line,
/// one byte at a time so nothing after it leaves the pipe, and leaves the stream in `hold`, unread.
fn read_lines<S: Read + Send + 'static>(
    mut stream: S,
    output: Arc<Output>,
    hold: Option<Arc<Mutex<Option<S>>>>,
) {
    thread::spawn(move || {
        if let Some(hold) = hold {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while matches!(stream.read(&mut byte), Ok(1)) && byte[0] != b'\n' {
                line.push(byte[0]);
            }
            if let Ok(mut hold) = hold.lock() {
                *hold = Some(stream);
            }
            output.update(|printed| printed.lines.push(String::from_utf8_lossy(&line).into()));
        } else {
            // Reading to the end matters: a server blocked on a full stdout pipe would look hung.
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                output.update(|printed| printed.lines.push(line));
            }
        }
        output.update(|printed| printed.ended = true);
    });
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

/// `cargo build --workspace --example EXAMPLE`, then the binary cargo reports: an example gets
/// no `CARGO_BIN_EXE_*` variable.
///
/// Under `cargo test --workspace` the examples are already built, with the same features
/// (`--workspace` resolves them as that command does), and this is quick; it also makes
/// `cargo test -p PACKAGE --test first_program` work alone.
fn build_example(example: &str) -> PathBuf {
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
        "cargo build --workspace --example {example} failed"
    );
    cargo_executables(&output.stdout)
        .remove(example)
        .unwrap_or_else(|| panic!("cargo reported no executable for example {example}"))
}

/// The executables (by target name) in the JSON messages of `cargo build --message-format=json`.
pub fn cargo_executables(messages: &[u8]) -> HashMap<String, PathBuf> {
    messages
        .split(|&byte| byte == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?.to_owned();
            Some((name, PathBuf::from(message["executable"].as_str()?)))
        })
        .collect()
}

/// `Listening on http://127.0.0.1:PORT/` → the address.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    line.trim_end()
        .strip_prefix("Listening on http://")?
        .strip_suffix('/')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str, launch: Launch) -> Result<Server, StartError> {
        Server::spawn("sh", &["-c", script], &launch)
    }

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            parse_listening_line("Listening on http://127.0.0.1:7080/"),
            Some("127.0.0.1:7080".parse().unwrap())
        );
        assert_eq!(
            parse_listening_line("Listening on http://[::1]:80/\n"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_listening_line("hello"), None);
    }

    #[test]
    fn reads_executables_from_cargo_messages() {
        let messages = br#"{"reason":"compiler-artifact","target":{"name":"step01-hello"},"executable":"/t/step01-hello"}
{"reason":"compiler-artifact","target":{"name":"testkit"},"executable":null}
{"reason":"build-finished","success":true}"#;
        let found = cargo_executables(messages);
        assert_eq!(
            found.get("step01-hello"),
            Some(&PathBuf::from("/t/step01-hello"))
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn reports_a_program_that_exits_or_says_something_else() {
        let error = Server::spawn("/bin/true", &[] as &[&str], &Launch::default())
            .err()
            .unwrap();
        assert!(
            error.reason.starts_with("exited before listening"),
            "{error}"
        );
        let error = shell("echo oops >&2; echo hello", Launch::default())
            .err()
            .unwrap();
        assert!(
            error.reason.contains("unexpected first line \"hello\""),
            "{error}"
        );
        assert!(error.to_string().ends_with(": oops"), "{error}");
    }

    #[test]
    fn holds_the_group_samples_it_and_stops_it_whole() {
        // A shell that announces a port, forks a grandchild into its group, and exits 0 on SIGTERM.
        let script = "trap 'exit 0' TERM; sleep 30 & echo 'Listening on http://127.0.0.1:9/'; while :; do sleep 0.05; done";
        let launch = Launch {
            nofile_limit: Some(100),
            ..Launch::default()
        };
        let server = shell(script, launch).unwrap();
        assert_eq!(server.addr(), "127.0.0.1:9".parse().unwrap());
        assert!(
            crate::lifecycle::eventually(|| procfs::sample_tree(server.pid()).processes >= 2),
            "{:?}",
            procfs::sample_tree(server.pid())
        );
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
        assert!(
            limits
                .lines()
                .any(|l| l.starts_with("Max open files") && l.contains(" 100 ")),
            "{limits}"
        );
        let sleeper = server.child_pids();
        assert!(server.stop(), "SIGTERM ends the shell with status 0");
        for pid in sleeper {
            assert!(
                crate::lifecycle::eventually(|| procfs::fd_count(pid) == 0),
                "grandchild {pid} outlived the group"
            );
        }
    }

    #[test]
    fn waits_for_a_silent_server_to_accept() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let silent = || Launch {
            silent_on: Some(port),
            ..Launch::default()
        };
        // The "server" prints nothing and its port starts accepting 200 ms after it starts: the
        // harness must wait for the port, not for a line (no external listener program needed).
        let listening_later = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::net::TcpListener::bind(port).unwrap()
        });
        let server = shell("exec sleep 30", silent()).unwrap();
        assert_eq!(server.addr(), port);
        drop(listening_later.join().unwrap());
        let error = shell("exec true", silent()).err().unwrap().to_string();
        assert!(error.contains("exited before listening"), "{error}");
    }
}
