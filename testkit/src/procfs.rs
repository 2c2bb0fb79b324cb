//! Reads a process's state from `/proc` (Linux): descriptors, threads, memory, CPU time, children.

use std::fs;
use std::time::Duration;

/// Open descriptors of `pid`.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Threads of `pid`.
pub fn thread_count(pid: u32) -> usize {
    status_field(pid, "Threads:").unwrap_or(0) as usize
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:").unwrap_or(0)
}

/// The fields of `/proc/PID/stat` after the command name (which may contain spaces).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU time of `pid` (all its threads).
pub fn cpu_time(pid: u32) -> Duration {
    let Some(fields) = stat_fields(pid) else {
        return Duration::ZERO;
    };
    // Fields 14 and 15 of stat(5) are utime and stime; `fields` starts at field 3 (state).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&at| fields.get(at)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / ticks_per_second)
}

/// `(pid, state)` of every process whose parent is `parent`.
fn children(parent: u32) -> Vec<(u32, char)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let fields = stat_fields(pid)?;
            let state = fields.first()?.chars().next()?;
            let ppid: u32 = fields.get(1)?.parse().ok()?;
            (ppid == parent).then_some((pid, state))
        })
        .collect()
}

/// Processes whose parent is `parent`.
pub fn child_pids(parent: u32) -> Vec<u32> {
    children(parent).into_iter().map(|(pid, _)| pid).collect()
}

/// Children of `parent` that have exited and are waiting to be reaped.
pub fn zombie_children(parent: u32) -> usize {
    children(parent)
        .into_iter()
        .filter(|&(_, state)| state == 'Z')
        .count()
}
