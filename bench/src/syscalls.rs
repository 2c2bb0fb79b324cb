//! `compare --syscalls`: system calls per request, from a counted run of its own, never mixed into a
//! timed run. The count comes from `perf stat -e raw_syscalls:sys_enter` where the kernel lets perf
//! read that tracepoint (it barely slows the server, so an event loop batches as it does untraced),
//! else from `strace -c -f`, which also names the calls but makes each one many times dearer (a slowed
//! event loop finds more events per `epoll_wait`, so strace undercounts its waits). Both attach to
//! every process of the server's tree and follow what it forks.
//!
//! On a machine where one system call costs 0.4–0.8 µs, this count explains most of what the models
//! cost per request.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::engine::{self, LoadConfig};

/// How long to wait for strace to have attached to every thread.
const ATTACH_PATIENCE: Duration = Duration::from_secs(10);

/// What one counted run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyscallCount {
    /// The tool that counted (`strace -c -f`).
    pub tool: String,
    /// System calls of the server's process tree during the run.
    pub calls: u64,
    /// Requests that ended during the run.
    pub requests: u64,
    /// `calls / requests`.
    pub per_request: f64,
    /// The most frequent calls, with their counts, most first (at most eight).
    pub top: Vec<(String, u64)>,
}

/// How long perf is given to open its counters on every thread (it says nothing when it has).
const PERF_SETTLE: Duration = Duration::from_millis(500);

/// Whether `perf stat` can count the `raw_syscalls:sys_enter` tracepoint here.
fn perf_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        let probe = Command::new("perf")
            .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        probe.is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stderr).contains("raw_syscalls")
        })
    })
}

/// Runs `config` (a fixed number of requests) with the system calls of the server `pid` counted, by
/// perf where it works, else by strace.
///
/// # Errors
///
/// A one-line reason: neither tool can attach, or the load could not run.
pub fn count(config: &LoadConfig, pid: u32) -> Result<SyscallCount, String> {
    if perf_works() {
        count_with_perf(config, pid)
    } else {
        count_with_strace(config, pid)
    }
}

fn count_with_perf(config: &LoadConfig, pid: u32) -> Result<SyscallCount, String> {
    let processes = tree(pid);
    if processes.is_empty() {
        return Err("the server is gone".to_owned());
    }
    let list: Vec<String> = processes.iter().map(u32::to_string).collect();
    let out = tempfile::NamedTempFile::new().map_err(|error| error.to_string())?;
    let child = Command::new("perf")
        .args([
            "stat",
            "-x,",
            "-e",
            "raw_syscalls:sys_enter",
            "-p",
            &list.join(","),
        ])
        .arg("-o")
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run perf ({error})"))?;
    std::thread::sleep(PERF_SETTLE);
    let load = engine::run(config).map_err(|error| error.to_string());
    interrupt(child.id());
    let status = child
        .wait_with_output()
        .map_err(|error| error.to_string())?;
    let result = load?;
    let text = fs::read_to_string(out.path()).map_err(|error| error.to_string())?;
    let Some(calls) = parse_perf(&text) else {
        let stderr = String::from_utf8_lossy(&status.stderr);
        let why = stderr.lines().last().unwrap_or("no count");
        return Err(format!("perf counted nothing: {why}"));
    };
    let requests = result.tally.outcomes();
    Ok(SyscallCount {
        tool: "perf stat -e raw_syscalls:sys_enter".to_owned(),
        calls,
        requests,
        per_request: calls as f64 / requests.max(1) as f64,
        top: Vec::new(),
    })
}

/// The count of a `perf stat -x,` line such as `398,,raw_syscalls:sys_enter,8327352,100.00,,`.
fn parse_perf(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(',').collect();
        (fields.get(2) == Some(&"raw_syscalls:sys_enter")).then(|| fields[0].parse().ok())?
    })
}

/// SIGINT makes perf and strace detach and write what they counted.
fn interrupt(pid: u32) {
    let _ = kill(
        Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
        Signal::SIGINT,
    );
}

fn count_with_strace(config: &LoadConfig, pid: u32) -> Result<SyscallCount, String> {
    let tasks = tree_tasks(pid);
    if tasks.is_empty() {
        return Err("the server is gone".to_owned());
    }
    let out = tempfile::NamedTempFile::new().map_err(|error| error.to_string())?;
    let mut strace = Command::new("strace");
    strace.args(["-c", "-f", "-qq", "-o"]).arg(out.path());
    for task in &tasks {
        strace.arg("-p").arg(task.to_string());
    }
    let child = strace
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run strace ({error}; Debian: apt-get install strace)"))?;
    let attached = wait_attached(&tasks, child.id());
    let load = attached.and_then(|()| engine::run(config).map_err(|error| error.to_string()));
    interrupt(child.id());
    let status = child
        .wait_with_output()
        .map_err(|error| error.to_string())?;
    let result = load?;
    let text = fs::read_to_string(out.path()).map_err(|error| error.to_string())?;
    let mut calls = parse_summary(&text);
    if calls.is_empty() {
        let stderr = String::from_utf8_lossy(&status.stderr);
        let why = stderr.lines().last().unwrap_or("no summary");
        return Err(format!("strace counted nothing: {why}"));
    }
    calls.sort_by_key(|call| std::cmp::Reverse(call.1));
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    let requests = result.tally.outcomes();
    calls.truncate(8);
    Ok(SyscallCount {
        tool: "strace -c -f".to_owned(),
        calls: total,
        requests,
        per_request: total as f64 / requests.max(1) as f64,
        top: calls,
    })
}

/// `root` and its descendants.
fn tree(root: u32) -> Vec<u32> {
    if !Path::new(&format!("/proc/{root}")).exists() {
        return Vec::new();
    }
    let mut processes = vec![root];
    let mut next = 0;
    while next < processes.len() {
        processes.extend(testkit::procfs::child_pids(processes[next]));
        next += 1;
    }
    processes
}

/// Every thread of `root` and of its descendants.
fn tree_tasks(root: u32) -> Vec<u32> {
    tree(root)
        .iter()
        .flat_map(|pid| {
            let tasks = fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten();
            tasks.filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
        })
        .collect()
}

/// Waits until every one of `tasks` that still exists is traced by `tracer`.
fn wait_attached(tasks: &[u32], tracer: u32) -> Result<(), String> {
    let deadline = Instant::now() + ATTACH_PATIENCE;
    let traced = |task: &u32| {
        let status = fs::read_to_string(format!("/proc/{task}/status"));
        let Ok(status) = status else {
            return true; // gone: nothing to count there
        };
        status
            .lines()
            .find_map(|line| line.strip_prefix("TracerPid:"))
            .is_some_and(|pid| pid.trim() == tracer.to_string())
    };
    while !tasks.iter().all(traced) {
        if Instant::now() >= deadline || !Path::new(&format!("/proc/{tracer}")).exists() {
            return Err("strace did not attach (is ptrace allowed here?)".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The calls of each system call in a `strace -c` summary, e.g.
/// ` 40.00    0.000040          10         4         1 read`.
fn parse_summary(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = *fields.last()?;
            let numbers = &fields[..fields.len() - 1];
            let percent_first = fields.first()?.parse::<f64>().is_ok();
            // % time, seconds, usecs/call, calls [, errors]
            let calls = numbers.get(3)?.parse().ok()?;
            (percent_first && name != "total" && (4..=5).contains(&numbers.len()))
                .then(|| (name.to_owned(), calls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_strace_summary() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
            ------ ----------- ----------- --------- --------- ----------------\n \
            60.00    0.000060          10         6         2 read\n \
            40.00    0.000040          10         4           close\n\
            ------ ----------- ----------- --------- --------- ----------------\n\
            100.00    0.000100          10        10         2 total\n";
        assert_eq!(
            parse_summary(text),
            [("read".to_owned(), 6), ("close".to_owned(), 4)]
        );
    }

    #[test]
    fn reads_a_perf_count() {
        let text = "# started on Mon Dec  7 17:30:54 2026\n\n398,,raw_syscalls:sys_enter,8327352,100.00,,\n";
        assert_eq!(parse_perf(text), Some(398));
        assert_eq!(
            parse_perf("<not counted>,,raw_syscalls:sys_enter,0,0.00,,\n"),
            None
        );
    }

    #[test]
    fn finds_the_threads_of_a_process() {
        let me = std::process::id();
        assert!(tree_tasks(me).contains(&me));
    }
}
