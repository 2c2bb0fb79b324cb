//! Defines [`Children`]: the parent's list of live child processes, and reaping them.
//!
//! A child that exits stays in the process table as a *zombie* (`Z` in `ps`, `<defunct>`) until
//! its parent collects its exit status with `waitpid`. A parent that forgets fills the table and,
//! at `ulimit -u`, cannot fork any more.

use std::collections::HashMap;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The live children and what each one does (for log lines such as "worker 1234 died").
#[derive(Debug, Default)]
pub struct Children {
    live: HashMap<Pid, String>,
}

/// A child that has exited and been reaped.
#[derive(Debug)]
pub struct Exited {
    /// Its process id.
    pub pid: Pid,
    /// What it was doing, as given to [`Children::insert`].
    pub role: String,
    /// How it ended.
    pub status: WaitStatus,
}

impl Exited {
    /// Whether it ended by itself with exit code 0; otherwise it failed, crashed or was killed.
    pub fn is_clean(&self) -> bool {
        matches!(self.status, WaitStatus::Exited(_, 0))
    }

    /// How it ended, for a log line: "exited with code 1", "killed by SIGSEGV".
    pub fn how(&self) -> String {
        match self.status {
            WaitStatus::Exited(_, code) => format!("exited with code {code}"),
            WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
            other => format!("{other:?}"),
        }
    }
}

impl Children {
    /// Records a child just forked.
    pub fn insert(&mut self, pid: Pid, role: String) {
        self.live.insert(pid, role);
    }

    /// How many children are alive (or exited and not yet reaped).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    // ANCHOR: reap
    /// Collects every child that has exited, without blocking.
    pub fn reap(&mut self) -> Vec<Exited> {
        let mut exited = Vec::new();
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return exited,
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        let role = self.live.remove(&pid).unwrap_or_default();
                        exited.push(Exited { pid, role, status });
                    }
                }
                Err(Errno::EINTR) => {}
                // Only EINVAL is left, which these fixed arguments cannot cause.
                Err(_) => return exited,
            }
        }
    }
    // ANCHOR_END: reap

    // ANCHOR: stop_all
    /// Sends SIGTERM to every child and waits for each to exit, so none is left behind as an
    /// orphan or a zombie.
    ///
    /// A child has SIGTERM's default action, so it dies at once, in the middle of a response if
    /// it was sending one. Step 4 shows a gentler shutdown.
    pub fn stop_all(&mut self) {
        self.stop_all_with(Signal::SIGTERM);
    }
    // ANCHOR_END: stop_all

    /// [`Children::stop_all`] with another signal: step 7's workers take SIGQUIT as "finish the
    /// responses in flight, then exit".
    pub fn stop_all_with(&mut self, signal: Signal) {
        for &pid in self.live.keys() {
            // ESRCH: it exited already and is waiting to be reaped, which comes next.
            let _ = kill(pid, signal);
        }
        for (pid, _) in self.live.drain() {
            while let Err(Errno::EINTR) = waitpid(pid, None) {}
        }
    }
}
