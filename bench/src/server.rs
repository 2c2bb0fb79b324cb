//! Building, starting and stopping the servers under test: the step binaries (built in release mode
//! and started on `127.0.0.1:0`), and nginx as a reference.
//!
//! Every step follows the project's conventions, which is all this module relies on: `--addr`,
//! `--root`, `--quiet`, a first stdout line `Listening on http://ADDR/`, and a clean exit on `SIGTERM`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One server configuration to measure: a step binary with its model's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    /// The name shown in tables and charts.
    pub name: &'static str,
    /// The cargo package (and binary) name.
    pub package: &'static str,
    /// Flags besides `--addr`, `--root` and `--quiet` ([`CORES`] stands for the number of cores).
    pub args: &'static [&'static str],
    /// Serves one connection at a time: `c10k` and long keep-alive runs only show it failing.
    pub sequential: bool,
    /// Spends one process or thread per connection: `c10k` caps its connections (see [`C10K_CAP`]).
    pub per_connection_task: bool,
}

/// The most connections `c10k` opens to a server that spends a process or a thread per connection:
/// 10,000 processes or threads would hit this machine's `pid_max` (32,768, shared with everything
/// else running) and gigabytes of memory. `c10k --no-caps` lifts it.
pub const C10K_CAP: usize = 2000;

/// An argument that [`start`] replaces with the number of CPU cores this process may use.
pub const CORES: &str = "{cores}";

const fn sequential(spec: ServerSpec) -> ServerSpec {
    ServerSpec {
        sequential: true,
        ..spec
    }
}

const fn per_connection(spec: ServerSpec) -> ServerSpec {
    ServerSpec {
        per_connection_task: true,
        ..spec
    }
}

const fn spec(
    name: &'static str,
    package: &'static str,
    args: &'static [&'static str],
) -> ServerSpec {
    ServerSpec {
        name,
        package,
        args,
        sequential: false,
        per_connection_task: false,
    }
}

// ANCHOR: configurations
/// Every configuration `compare` measures, in the book's order. Adjust here: one line each.
pub const CONFIGURATIONS: &[ServerSpec] = &[
    sequential(spec("step01", "step01-hello", &[])),
    sequential(spec("step02", "step02-files", &[])),
    per_connection(spec("step03-fork", "step03-process", &[])),
    spec("step03-prefork", "step03-process", &["--prefork", "4"]),
    per_connection(spec("step04-spawn", "step04-thread", &[])),
    spec("step04-pool", "step04-thread", &["--pool", "8"]),
    spec("step05", "step05-coroutine", &["--workers", CORES]),
    spec("step06-spin", "step06-nonblocking", &[]),
    spec("step06-nap", "step06-nonblocking", &["--nap", "100"]),
    spec("step07-1", "step07-epoll", &["--threads", "1"]),
    spec("step07-per-core", "step07-epoll", &["--threads", CORES]),
];
// ANCHOR_END: configurations

/// Looks configurations up by name (`step07-1`) or by package or step prefix (`step07` gives every
/// step07 configuration).
#[must_use]
pub fn select(names: &[String]) -> Vec<ServerSpec> {
    if names.is_empty() {
        return CONFIGURATIONS.to_vec();
    }
    CONFIGURATIONS
        .iter()
        .filter(|spec| {
            names.iter().any(|name| {
                spec.name == name
                    || spec.package == name
                    || spec.name.split('-').next() == Some(name.as_str())
            })
        })
        .copied()
        .collect()
}

/// The workspace this crate was built from (where `cargo build` runs and `www/` lives).
#[must_use]
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Builds `packages` in release mode, one at a time so that one that fails does not hide the others,
/// and returns the executable of each package that built (by package name), plus the errors of the
/// others.
#[must_use]
pub fn build(packages: &[&str]) -> (HashMap<String, PathBuf>, HashMap<String, String>) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut built = HashMap::new();
    let mut failed = HashMap::new();
    let mut unique: Vec<&str> = packages.to_vec();
    unique.dedup();
    for package in unique {
        if built.contains_key(package) || failed.contains_key(package) {
            continue;
        }
        eprintln!("bench: building {package} (release)");
        let output = Command::new(&cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "--message-format=json-render-diagnostics",
                "-p",
                package,
            ])
            .stderr(Stdio::inherit())
            .output();
        match output {
            Ok(output) if output.status.success() => match executable_of(&output.stdout, package) {
                Some(path) => {
                    built.insert(package.to_owned(), path);
                }
                None => {
                    failed.insert(package.to_owned(), "no executable built".to_owned());
                }
            },
            Ok(output) => {
                failed.insert(
                    package.to_owned(),
                    format!("cargo build failed ({})", output.status),
                );
            }
            Err(error) => {
                failed.insert(package.to_owned(), format!("cannot run cargo: {error}"));
            }
        }
    }
    (built, failed)
}

/// Finds the executable named after `package` in cargo's JSON messages.
fn executable_of(messages: &[u8], package: &str) -> Option<PathBuf> {
    messages
        .split(|&byte| byte == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == package)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

/// A server process started by [`start`]; stopped (with its whole process group) when dropped.
#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

/// How long a server may take to print its `Listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `binary --addr 127.0.0.1:0 --root ROOT --quiet ARGS…` in its own process group and waits for
/// its `Listening on http://ADDR/` line.
///
/// # Errors
///
/// A one-line reason when the binary cannot start, exits, or does not announce an address in time (a
/// placeholder that exits at once is reported, not fatal).
pub fn start(binary: &Path, root: &Path, args: &[&str]) -> Result<RunningServer, String> {
    let mut command = Command::new(binary);
    command
        .args(["--addr", "127.0.0.1:0", "--quiet", "--root"])
        .arg(root)
        .args(args.iter().map(|&arg| {
            if arg == CORES {
                cores()
            } else {
                arg.to_owned()
            }
        }))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that stopping it also stops every process it forked. That also
        // keeps a terminal's Ctrl-C from reaching it, hence the parent-death signal below.
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe calls
    // are allowed: prctl is one, and the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            // If bench dies (Ctrl-C, a panic, kill), the server gets SIGTERM and exits cleanly instead
            // of running on unseen. Linux sends it when the *thread* that spawned the child exits:
            // every caller spawns servers from its main thread.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
    let stderr = Arc::new(Mutex::new(String::new()));
    if let Some(pipe) = child.stderr.take() {
        keep_tail(pipe, Arc::clone(&stderr));
    }
    let (sender, receiver) = mpsc::channel();
    if let Some(pipe) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut lines = BufReader::new(pipe).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = sender.send(first);
            // Keep draining so that a chatty server never blocks on a full pipe.
            for _ in lines {}
        });
    }
    let mut server = RunningServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        stderr,
    };
    match receiver.recv_timeout(START_TIMEOUT) {
        Ok(Some(line)) => match parse_listening(&line) {
            Some(addr) => {
                server.addr = addr;
                Ok(server)
            }
            None => Err(format!(
                "unexpected first line {line:?}{}",
                server.exit_note()
            )),
        },
        Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(format!("exited before listening{}", server.exit_note()))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("no `Listening on` line within {START_TIMEOUT:?}"))
        }
    }
}

fn keep_tail(mut pipe: impl Read + Send + 'static, tail: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if let Ok(mut tail) = tail.lock() {
                tail.push_str(&String::from_utf8_lossy(&chunk[..n]));
                if tail.len() > 2000 {
                    let cut = tail.len() - 1000;
                    let cut = (cut..tail.len())
                        .find(|&i| tail.is_char_boundary(i))
                        .unwrap_or(0);
                    tail.drain(..cut);
                }
            }
        }
    });
}

fn cores() -> String {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .to_string()
}

/// Parses `Listening on http://127.0.0.1:PORT/`.
#[must_use]
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.trim()
        .strip_prefix("Listening on http://")?
        .trim_end_matches('/')
        .parse()
        .ok()
}

impl RunningServer {
    /// The server's process id (the root of its process tree).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR/path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Whether the process is still running; if not, why it stopped.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("server exited ({status}){}", self.stderr_note())),
            Err(error) => Err(format!("server state unknown: {error}")),
        }
    }

    fn exit_note(&mut self) -> String {
        // Give a crashing process a moment to finish writing its reason.
        let deadline = Instant::now() + Duration::from_millis(500);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                _ if Instant::now() >= deadline => break None,
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let status = status
            .map(|status| format!(" ({status})"))
            .unwrap_or_default();
        format!("{status}{}", self.stderr_note())
    }

    fn stderr_note(&self) -> String {
        let tail = self
            .stderr
            .lock()
            .map(|tail| tail.trim().to_owned())
            .unwrap_or_default();
        match tail.lines().last() {
            Some(line) => format!(": {line}"),
            None => String::new(),
        }
    }

    /// Asks the server to stop (`SIGTERM` to its process group), waits up to two seconds, then kills
    /// the group. Returns whether it exited by itself and successfully.
    pub fn stop(mut self) -> bool {
        self.terminate()
    }

    fn terminate(&mut self) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            signal_group(self.child.id(), libc::SIGKILL);
            return false;
        }
        signal_group(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        let clean = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break false,
            }
        };
        // Whatever is left in the group (forked children, a server that ignored SIGTERM) goes now.
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
        clean
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        } else {
            signal_group(self.child.id(), libc::SIGKILL);
        }
    }
}

fn signal_group(pid: u32, signal: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions; the group is the one this process created
        // for its child (process_group(0) makes the child's pid its group id).
        unsafe { libc::kill(-pgid, signal) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            parse_listening("Listening on http://127.0.0.1:7080/"),
            Some("127.0.0.1:7080".parse().unwrap())
        );
        assert_eq!(
            parse_listening("Listening on http://[::1]:80/\n"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_listening("hello"), None);
    }

    #[test]
    fn selects_configurations() {
        let names =
            |selection: Vec<ServerSpec>| selection.iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(select(&["step07".into()])),
            ["step07-1", "step07-per-core"]
        );
        assert_eq!(names(select(&["step04-pool".into()])), ["step04-pool"]);
        assert_eq!(names(select(&["step02-files".into()])), ["step02"]);
        assert_eq!(select(&[]).len(), CONFIGURATIONS.len());
    }

    #[test]
    fn reports_a_binary_that_exits_at_once() {
        let error = start(Path::new("/bin/true"), Path::new("/"), &[]).unwrap_err();
        assert!(error.contains("exited before listening"), "{error}");
    }

    #[test]
    fn reads_the_executable_from_cargo_messages() {
        let messages = br#"{"reason":"compiler-artifact","target":{"name":"step01-hello"},"executable":"/t/step01-hello"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable_of(messages, "step01-hello"),
            Some(PathBuf::from("/t/step01-hello"))
        );
        assert_eq!(executable_of(messages, "other"), None);
    }
}
