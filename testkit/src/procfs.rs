//! Reads a process (or a whole process tree) from `/proc` (Linux): descriptors, threads, memory, CPU
//! time, children, parsed by the `procfs` crate. The tests and `bench` read servers through this one
//! module.
//!
//! **CPU of a process tree.** [`sample_tree`] sums `utime + stime + cutime + cstime` over the live tree
//! rooted at a pid. A child that exits and is reaped (`waitpid`) moves its time into its parent's
//! `cutime`/`cstime`, so forked children count whether alive or already reaped; the difference between
//! two samples is the CPU the tree spent in between. (A child reaped automatically, `SIGCHLD` set to
//! `SIG_IGN`, is not added to its parent's `cutime` by Linux: the steps reap with `waitpid`.)
//!
//! **Memory.** Resident memory is the sum of `VmRSS` over the tree (shared pages of forked children
//! count once per process, so this overstates a forking server); the peak of one process is `VmHWM`.

use std::fs;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ::procfs::process::{self, Process, Stat, Status};
use serde::{Deserialize, Serialize};

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

fn stat(pid: u32) -> Option<Stat> {
    process(pid)?.stat().ok()
}

fn status(pid: u32) -> Option<Status> {
    process(pid)?.status().ok()
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / ::procfs::ticks_per_second() as f64
}

/// Open descriptors of `pid` (0 once it is gone).
pub fn fd_count(pid: u32) -> usize {
    process(pid)
        .and_then(|process| process.fd_count().ok())
        .unwrap_or(0)
}

/// How many descriptors `pid`'s descriptor table has room for (`FDSize`), 0 once it is gone.
pub fn fd_table_size(pid: u32) -> usize {
    status(pid).map_or(0, |status| status.fdsize as usize)
}

/// Threads of `pid`.
pub fn thread_count(pid: u32) -> usize {
    stat(pid).map_or(0, |stat| stat.num_threads.try_into().unwrap_or(0))
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status(pid).and_then(|status| status.vmrss).unwrap_or(0)
}

/// The peak resident memory of one process (`VmHWM`), KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status(pid)?.vmhwm
}

/// Resets a process's `VmHWM` to its current RSS (`/proc/PID/clear_refs`, value 5), so the next
/// [`peak_rss_kib`] is the peak of what follows. Silently does nothing where not permitted.
pub fn reset_peak_rss(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// User + system CPU time of `pid` (all its threads, not its children).
pub fn cpu_time(pid: u32) -> Duration {
    let ticks = stat(pid).map_or(0, |stat| stat.utime + stat.stime);
    Duration::from_secs_f64(ticks_to_seconds(ticks))
}

/// `(pid, parent's pid, state)` of every process on the machine.
fn all_processes() -> Vec<(u32, u32, char)> {
    let Ok(processes) = process::all_processes() else {
        return Vec::new();
    };
    processes
        .filter_map(|process| {
            let stat = process.ok()?.stat().ok()?;
            Some((
                stat.pid.try_into().ok()?,
                stat.ppid.try_into().ok()?,
                stat.state,
            ))
        })
        .collect()
}

/// The pids among `processes` whose parent is `parent`.
fn children(processes: &[(u32, u32, char)], parent: u32) -> impl Iterator<Item = u32> + '_ {
    let children = processes
        .iter()
        .filter(move |&&(_, ppid, _)| ppid == parent);
    children.map(|&(pid, _, _)| pid)
}

/// Processes whose parent is `parent`.
pub fn child_pids(parent: u32) -> Vec<u32> {
    children(&all_processes(), parent).collect()
}

/// Children of `parent` that have exited and are waiting to be reaped.
pub fn zombie_children(parent: u32) -> usize {
    all_processes()
        .iter()
        .filter(|&&(_, ppid, state)| ppid == parent && state == 'Z')
        .count()
}

/// The pids of `root` and all its descendants (root first). Empty if `root` is gone.
fn process_tree(root: u32) -> Vec<u32> {
    let processes = all_processes();
    if !processes.iter().any(|&(pid, _, _)| pid == root) {
        return Vec::new();
    }
    let mut tree = vec![root];
    let mut at = 0;
    while let Some(&parent) = tree.get(at) {
        tree.extend(children(&processes, parent));
        at += 1;
    }
    tree
}

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

impl TreeSample {
    /// Each field's maximum of the two.
    #[must_use]
    pub fn max(self, other: Self) -> Self {
        Self {
            cpu_s: self.cpu_s.max(other.cpu_s),
            rss_kib: self.rss_kib.max(other.rss_kib),
            threads: self.threads.max(other.threads),
            processes: self.processes.max(other.processes),
            fds: self.fds.max(other.fds),
        }
    }
}

/// Samples the tree rooted at `root` now.
pub fn sample_tree(root: u32) -> TreeSample {
    let page_kib = ::procfs::page_size() / 1024;
    let mut sample = TreeSample::default();
    for pid in process_tree(root) {
        let Some(stat) = stat(pid) else { continue };
        let children_ticks = u64::try_from(stat.cutime + stat.cstime).unwrap_or(0);
        sample.cpu_s += ticks_to_seconds(stat.utime + stat.stime + children_ticks);
        sample.rss_kib += stat.rss * page_kib;
        sample.threads += u64::try_from(stat.num_threads).unwrap_or(0);
        sample.processes += 1;
        sample.fds += fd_count(pid) as u64;
    }
    sample
}

/// Samples a process tree periodically on a background thread and keeps the maxima.
#[derive(Debug)]
pub struct Sampler {
    /// Dropping it stops the thread (at its next sample).
    stop: mpsc::Sender<()>,
    peak: JoinHandle<TreeSample>,
}

impl Sampler {
    /// Starts sampling the tree rooted at `root` every `period`.
    pub fn start(root: u32, period: Duration) -> Self {
        let (stop, stopped) = mpsc::channel();
        let peak = std::thread::spawn(move || {
            let mut peak = TreeSample::default();
            loop {
                peak = peak.max(sample_tree(root));
                if stopped.recv_timeout(period) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return peak;
                }
            }
        });
        Self { stop, peak }
    }

    /// Stops sampling and returns the maxima seen (each field's own maximum).
    pub fn finish(self) -> TreeSample {
        drop(self.stop);
        self.peak.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let me = std::process::id();
        let sample = sample_tree(me);
        assert!(sample.processes >= 1 && sample.threads >= 1 && sample.fds >= 1);
        assert!(sample.rss_kib > 0 && rss_kib(me) > 0);
        assert!(peak_rss_kib(me).unwrap() >= 1);
        assert!(thread_count(me) >= 1 && fd_count(me) >= 1);
        assert_eq!(fd_count(u32::MAX), 0);
    }

    #[test]
    fn finds_children_and_zombies_in_the_tree() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut quick = std::process::Command::new("true").spawn().unwrap();
        let zombie = crate::lifecycle::eventually(|| zombie_children(std::process::id()) >= 1);
        let tree = process_tree(std::process::id());
        let children = child_pids(std::process::id());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        quick.wait().unwrap();
        assert!(zombie, "an unreaped `true` is a zombie");
        assert!(
            tree.contains(&sleeper.id()) && children.contains(&sleeper.id()),
            "{tree:?}"
        );
        assert!(process_tree(u32::MAX).is_empty());
    }

    #[test]
    fn a_sampler_keeps_the_maxima() {
        let sampler = Sampler::start(std::process::id(), Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(30));
        let peak = sampler.finish();
        assert!(
            peak.threads >= 2,
            "the sampler's own thread counts: {peak:?}"
        );
    }
}
