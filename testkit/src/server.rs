//! Defines [`Server`]: a server binary running as a child process, as a user would start it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::PATIENCE;
use crate::procfs;

/// Lines a child printed, with a condition variable to wait for new ones.
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// A running server. Dropping it kills the server's whole process group and reaps it.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
}

/// How to start a [`Server`] beyond its flags.
#[derive(Debug, Default, Clone)]
pub struct Launch {
    /// Lower the open-descriptor limit (`RLIMIT_NOFILE`) of the server to this value.
    pub nofile_limit: Option<u64>,
}

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
        let mut command = Command::new(bin);
        if !args.contains(&"--addr") {
            command.args(["--addr", "127.0.0.1:0"]);
        }
        if !args.contains(&"--idle-timeout") {
            command.args(["--idle-timeout", "2s"]);
        }
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so Drop can kill forked children too, and a test can send
            // a signal to the group the way Ctrl-C does.
            .process_group(0);
        if let Some(limit) = launch.nofile_limit {
            // SAFETY: the closure runs in the child between fork and exec and calls only
            // setrlimit, which is async-signal-safe; it allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {bin}: {error}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_lines = collect_lines(stderr, None);
        let (addr_sender, addr_receiver) = mpsc::channel();
        let stdout_lines = collect_lines(stdout, Some(addr_sender));
        let addr = match addr_receiver.recv_timeout(PATIENCE) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let errors = stderr_lines.lines.lock().unwrap().join("\n");
                panic!("{bin} {args:?} printed no `Listening on` line; stderr:\n{errors}");
            }
        };
        Server {
            child,
            addr,
            stdout: stdout_lines,
            stderr: stderr_lines,
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

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stdout line after the listening line (the access log).
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout.lines.lock().unwrap().clone()
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines.lock().unwrap().clone()
    }

    /// Waits until some stdout line satisfies `predicate`; false if none did within `timeout`.
    pub fn wait_for_log(&self, predicate: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        wait_for_line(&self.stdout, predicate, timeout)
    }

    /// Waits until the access log has at least `count` lines; false on timeout.
    pub fn wait_for_log_count(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut lines = self.stdout.lines.lock().unwrap();
        while lines.len() < count {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return false;
            }
            lines = self.stdout.grew.wait_timeout(lines, remaining).unwrap().0;
        }
        true
    }

    /// Sends `signal` to the server process alone, as `kill PID` does.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        let result = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(result, 0, "kill({}, {signal}) failed", self.child.id());
    }

    /// Sends `signal` to the server's whole process group, as Ctrl-C in a terminal does.
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: as above; the child leads its own process group (process_group(0)).
        let result = unsafe { libc::killpg(self.child.id() as i32, signal) };
        assert_eq!(result, 0, "killpg({}, {signal}) failed", self.child.id());
    }

    /// Waits for the server to exit, reaping it; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on our child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Open descriptors of the server process (`/proc/PID/fd`).
    pub fn fd_count(&self) -> usize {
        procfs::fd_count(self.pid())
    }

    /// Threads of the server process.
    pub fn thread_count(&self) -> usize {
        procfs::thread_count(self.pid())
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        procfs::rss_kib(self.pid())
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
        let deadline = Instant::now() + timeout;
        loop {
            let value = probe(self);
            if value <= target || Instant::now() >= deadline {
                return value;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: killpg has no memory-safety preconditions. The group is the server's own.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_lines(
    stream: impl Read + Send + 'static,
    listening: Option<mpsc::Sender<SocketAddr>>,
) -> Arc<Lines> {
    let lines = Arc::new(Lines::default());
    let sink = Arc::clone(&lines);
    thread::spawn(move || {
        let mut listening = listening;
        // Reading to the end matters: a server blocked on a full stdout pipe would look hung.
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(sender) = listening.take() {
                match parse_listening_line(&line) {
                    Some(addr) => {
                        let _ = sender.send(addr);
                        continue;
                    }
                    None => listening = Some(sender),
                }
            }
            sink.lines.lock().unwrap().push(line);
            sink.grew.notify_all();
        }
    });
    lines
}

/// `Listening on http://127.0.0.1:PORT/` → the address.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("Listening on http://")?
        .strip_suffix('/')?
        .parse()
        .ok()
}

fn wait_for_line(lines: &Lines, predicate: impl Fn(&str) -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut guard = lines.lines.lock().unwrap();
    loop {
        if guard.iter().any(|line| predicate(line)) {
            return true;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        guard = lines.grew.wait_timeout(guard, remaining).unwrap().0;
    }
}
