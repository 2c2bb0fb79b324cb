//! One measured run: a warm-up, then the load, with the server's CPU and memory read from `/proc`
//! around it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{self, LoadConfig, LoadError, LoadResult};
use testkit::procfs::{self, Sampler};

/// How often the server's memory and process count are sampled during a run.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// What serving the load cost the server (its whole process tree).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerCost {
    /// CPU seconds (user + system, reaped children included) during the measured run.
    pub cpu_s: f64,
    /// CPU microseconds per request that ended during the run.
    pub cpu_us_per_request: f64,
    /// Peak resident memory in KiB: the largest sampled sum of `VmRSS` over the tree, or the main
    /// process's `VmHWM` (reset before the run) if larger.
    pub peak_rss_kib: u64,
    /// Most threads seen at once (over the tree).
    pub peak_threads: u64,
    /// Most processes seen at once.
    pub peak_processes: u64,
    /// Most open descriptors seen at once (over the tree).
    pub peak_fds: u64,
}

/// A warm-up of `warmup` (not recorded), then `config` measured; with `server_pid`, the server's cost.
///
/// # Errors
///
/// When the load cannot run at all (see [`engine::run`]).
pub fn measure(
    config: &LoadConfig,
    warmup: Duration,
    server_pid: Option<u32>,
) -> Result<(LoadResult, Option<ServerCost>), LoadError> {
    if !warmup.is_zero() {
        let warm = LoadConfig {
            duration: Some(warmup),
            requests: None,
            rate: None,
            ..config.clone()
        };
        engine::run(&warm)?;
    }
    let Some(pid) = server_pid else {
        return Ok((engine::run(config)?, None));
    };
    procfs::reset_peak_rss(pid);
    let before = procfs::sample_tree(pid);
    let sampler = Sampler::start(pid, SAMPLE_PERIOD);
    let result = engine::run(config)?;
    let after = procfs::sample_tree(pid);
    let peak = sampler.finish();
    let cpu_s = (after.cpu_s - before.cpu_s).max(0.0);
    let outcomes = result.tally.outcomes().max(1) as f64;
    let cost = ServerCost {
        cpu_s,
        cpu_us_per_request: cpu_s * 1e6 / outcomes,
        peak_rss_kib: peak
            .rss_kib
            .max(after.rss_kib)
            .max(procfs::peak_rss_kib(pid).unwrap_or(0)),
        peak_threads: peak.threads.max(after.threads),
        peak_processes: peak.processes.max(after.processes),
        peak_fds: peak.fds.max(after.fds),
    };
    Ok((result, Some(cost)))
}
