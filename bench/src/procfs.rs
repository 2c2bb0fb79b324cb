//! What a server process (and its children) costs, read from `/proc`: CPU time, memory, threads,
//! processes and open descriptors.
//!
//! **CPU of a process tree.** The CPU time of a server is the sum, over the live process tree rooted at
//! its pid, of `utime + stime + cutime + cstime` from `/proc/PID/stat`. A child that exits and is reaped
//! (`waitpid`) moves its time into its parent's `cutime`/`cstime`, so forked children are counted whether
//! they are alive or already reaped; the difference between two samples is the CPU the tree spent in
//! between. A child reaped automatically (`SIGCHLD` set to `SIG_IGN`) is not added to its parent's
//! `cutime` by Linux and would be missed: the steps reap with `waitpid`.
//!
//! **Memory.** Resident memory is sampled as the sum of `VmRSS` over the tree (shared pages of forked
//! children are counted once per process, so this overstates a forking server), and the peak of a single
//! process is `VmHWM`.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One look at a process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TreeSample {
    /// CPU seconds spent by the tree, reaped children included.
    pub cpu_s: f64,
    /// Sum of resident memory over the tree, KiB.
    pub rss_kib: u64,
    /// Threads over the tree.
    pub threads: u64,
    /// Processes in the tree.
    pub processes: u64,
    /// Open descriptors over the tree.
    pub fds: u64,
}

/// The fields of `/proc/PID/stat` this module uses.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: u32,
    cpu_ticks: u64,
    threads: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32) -> io::Result<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces or parentheses: split after the last ')'.
    let after_name = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field numbers from proc(5), minus 3 (this slice starts at field 3, `state`).
    let field = |number: usize| -> u64 {
        fields
            .get(number - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    Ok(Stat {
        ppid: u32::try_from(field(4)).unwrap_or(0),
        cpu_ticks: field(14) + field(15) + field(16) + field(17),
        threads: field(20),
        rss_pages: field(24),
    })
}

/// The pids of `root` and all its descendants (root first). Empty if `root` is gone.
#[must_use]
pub fn process_tree(root: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid).ok()?.ppid)))
        .collect();
    if !parents.iter().any(|&(pid, _)| pid == root) {
        return Vec::new();
    }
    let mut tree = vec![root];
    let mut at = 0;
    while at < tree.len() {
        let parent = tree[at];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        at += 1;
    }
    tree
}

/// Samples the tree rooted at `root` now.
#[must_use]
pub fn sample_tree(root: u32) -> TreeSample {
    let ticks_per_second = clock_ticks_per_second();
    let page_kib = page_size() / 1024;
    let mut sample = TreeSample::default();
    for pid in process_tree(root) {
        let Ok(stat) = read_stat(pid) else { continue };
        sample.cpu_s += stat.cpu_ticks as f64 / ticks_per_second;
        sample.rss_kib += stat.rss_pages * page_kib;
        sample.threads += stat.threads;
        sample.processes += 1;
        sample.fds += fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64);
    }
    sample
}

/// The peak resident memory of one process (`VmHWM`), KiB.
#[must_use]
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets a process's `VmHWM` to its current RSS (`/proc/PID/clear_refs`, value 5), so that the next
/// [`peak_rss_kib`] is the peak of what follows. Silently does nothing where not permitted.
pub fn reset_peak_rss(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096).max(1024)
}

/// Samples a process tree periodically on a background thread and keeps the maxima.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<Mutex<TreeSample>>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling the tree rooted at `root` every `period`.
    #[must_use]
    pub fn start(root: u32, period: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(Mutex::new(TreeSample::default()));
        let handle = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let now = sample_tree(root);
                    if let Ok(mut peak) = peak.lock() {
                        peak.rss_kib = peak.rss_kib.max(now.rss_kib);
                        peak.threads = peak.threads.max(now.threads);
                        peak.processes = peak.processes.max(now.processes);
                        peak.fds = peak.fds.max(now.fds);
                        peak.cpu_s = peak.cpu_s.max(now.cpu_s);
                    }
                    std::thread::sleep(period);
                }
            })
        };
        Self {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns the maxima seen (each field's own maximum).
    #[must_use]
    pub fn finish(mut self) -> TreeSample {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        self.peak.lock().map(|peak| *peak).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let sample = sample_tree(std::process::id());
        // At least this process (a parallel test may have a child running).
        assert!(sample.processes >= 1);
        assert!(sample.threads >= 1);
        assert!(sample.rss_kib > 0);
        assert!(sample.fds >= 1);
        assert!(peak_rss_kib(std::process::id()).unwrap() >= 1);
    }

    #[test]
    fn counts_children_in_the_tree() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = process_tree(std::process::id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(tree.contains(&child.id()), "{tree:?}");
        assert!(process_tree(u32::MAX).is_empty());
    }
}
