//! What the experiments measure and how: the servers (a step, nginx, or an external URL), and one
//! measured run — a warm-up, then the load, with the server's CPU and memory read from `/proc` around
//! it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{self, LoadConfig, LoadError, LoadResult};
use crate::server::{self, Binaries, Server, ServerSpec};
use testkit::procfs::{self, Sampler};

/// How often the server's memory and process count are sampled during a run.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// A server to measure.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A step configuration, built and started here.
    Step(ServerSpec),
    /// nginx with this many workers, started here.
    Nginx(u32),
    /// A server someone else runs: its name and URL.
    External(String, String),
}

impl Subject {
    /// The `steps` selected by name (all for none; no step for `None`), then nginx with each of
    /// `nginx_workers`.
    ///
    /// # Errors
    ///
    /// When no configuration matches `steps`.
    pub fn list(steps: Option<&[String]>, nginx_workers: &[u32]) -> anyhow::Result<Vec<Self>> {
        let steps = match steps {
            Some(names) => server::select(names)?,
            None => Vec::new(),
        };
        let nginx = nginx_workers.iter().map(|&workers| Self::Nginx(workers));
        Ok(steps.into_iter().map(Self::Step).chain(nginx).collect())
    }

    /// The steps' executables, built only when `subjects` has a step.
    #[must_use]
    pub fn build(subjects: &[Self]) -> Binaries {
        server::build_if(subjects.iter().any(|s| matches!(s, Self::Step(_))))
    }

    /// The name shown in tables and charts.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Step(spec) => spec.name.to_owned(),
            Self::Nginx(workers) => format!("nginx-{workers}"),
            Self::External(name, _) => name.clone(),
        }
    }

    /// Starts it, serving `root` (an external server is only a URL: its process is not ours).
    ///
    /// # Errors
    ///
    /// When the step did not build, or the server does not start.
    pub fn start(&self, root: &Path, binaries: &Binaries) -> anyhow::Result<Live> {
        Ok(match self {
            Self::Step(spec) => Live::Server(start_step(spec, root, binaries)?),
            Self::Nginx(workers) => Live::Server(server::start_nginx(*workers, root)?),
            Self::External(_, url) => Live::External(url.clone()),
        })
    }
}

/// Starts the step `spec` serving `root`.
///
/// # Errors
///
/// When it did not build or does not start.
pub fn start_step(spec: &ServerSpec, root: &Path, binaries: &Binaries) -> anyhow::Result<Server> {
    Ok(server::start(binaries.get(spec.package)?, root, spec.args)?)
}

/// A [`Subject`] that is running, or an external one.
pub enum Live {
    /// A server started here.
    Server(Server),
    /// An external server's URL.
    External(String),
}

impl Live {
    /// The URL of `path` on it.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        match self {
            Self::Server(server) => server.url(path),
            Self::External(base) => format!("{}{path}", base.trim_end_matches('/')),
        }
    }

    /// Its process, when it is ours.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        match self {
            Self::Server(server) => Some(server.pid()),
            Self::External(_) => None,
        }
    }

    /// Stops a server started here; `false` when it did not exit cleanly on `SIGTERM`.
    #[must_use]
    pub fn stop(self) -> bool {
        match self {
            Self::Server(server) => server.stop(),
            Self::External(_) => true,
        }
    }
}

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
    let peak = sampler.finish().max(after);
    let cpu_s = (after.cpu_s - before.cpu_s).max(0.0);
    let outcomes = result.tally.outcomes().max(1) as f64;
    let cost = ServerCost {
        cpu_s,
        cpu_us_per_request: cpu_s * 1e6 / outcomes,
        peak_rss_kib: peak.rss_kib.max(procfs::peak_rss_kib(pid).unwrap_or(0)),
        peak_threads: peak.threads,
        peak_processes: peak.processes,
        peak_fds: peak.fds,
    };
    Ok((result, Some(cost)))
}
