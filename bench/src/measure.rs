//! What the experiments measure and how: the servers (a step, a peer, or an external URL), and one
//! measured run — a warm-up, then the load, with the server's CPU and memory read from `/proc` around
//! it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{self, LoadConfig, LoadError, LoadResult};
use crate::peers::Peer;
use crate::server::{self, Binaries, Server, ServerSpec};
use testkit::procfs::{self, Sampler};

/// How often the server's memory and process count are sampled during a run.
const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// A server to measure: a step configuration or a production server (started here), or an external
/// server's name and URL.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    Step(ServerSpec),
    Peer(Peer),
    External(String, String),
}

impl Subject {
    /// The `steps` selected by name (all for none; no step for `None`), then nginx with each of
    /// `nginx_workers` (`--nginx N`, the older spelling of `--peer nginx:N`).
    pub(crate) fn list(
        steps: Option<&[String]>,
        nginx_workers: &[u32],
    ) -> anyhow::Result<Vec<Self>> {
        let steps = match steps {
            Some(names) => server::select(names)?,
            None => Vec::new(),
        };
        let nginx = nginx_workers.iter().map(|&workers| Peer::nginx(workers));
        Ok(steps
            .into_iter()
            .map(Self::Step)
            .chain(nginx.map(Self::Peer))
            .collect())
    }

    /// `peers`, each once (`--peer nginx --nginx 1` starts one nginx).
    pub(crate) fn add_peers(subjects: &mut Vec<Self>, peers: &[Peer]) {
        for &peer in peers {
            let known = |s: &Self| matches!(s, Self::Peer(p) if *p == peer);
            if !subjects.iter().any(known) {
                subjects.push(Self::Peer(peer));
            }
        }
    }

    /// The steps' executables, built only when `subjects` has a step (else only reference servers
    /// are measured).
    pub(crate) fn build(subjects: &[Self]) -> Binaries {
        let has_step = subjects.iter().any(|s| matches!(s, Self::Step(_)));
        if has_step {
            server::build()
        } else {
            Binaries::default()
        }
    }

    /// The name shown in tables and charts.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Step(spec) => spec.name.to_owned(),
            Self::Peer(peer) => peer.to_string(),
            Self::External(name, _) => name.clone(),
        }
    }

    /// Starts it, serving `root` (an external server is only a URL: its process is not ours).
    pub(crate) fn start(&self, root: &Path, binaries: &Binaries) -> anyhow::Result<Live> {
        let (server, prefix) = match self {
            Self::Step(spec) => (start_step(spec, root, binaries)?, None),
            Self::Peer(peer) => peer.start(root)?,
            Self::External(_, url) => {
                let base = url.trim_end_matches('/').to_owned();
                return Ok(Live {
                    base,
                    server: None,
                    _prefix: None,
                });
            }
        };
        let base = server.url("");
        Ok(Live {
            base,
            server: Some(server),
            _prefix: prefix,
        })
    }
}

/// Starts the step `spec` serving `root`.
pub(crate) fn start_step(
    spec: &ServerSpec,
    root: &Path,
    binaries: &Binaries,
) -> anyhow::Result<Server> {
    Ok(server::start(binaries.get(spec.package)?, root, spec.args)?)
}

/// A [`Subject`] once started: where its documents are, and its process when it is ours.
pub(crate) struct Live {
    /// The URL up to the path, e.g. `http://127.0.0.1:7080`.
    base: String,
    pub(crate) server: Option<Server>,
    /// A peer's configuration directory, removed after the server (fields drop in order).
    _prefix: Option<tempfile::TempDir>,
}

impl Live {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Server::pid)
    }

    /// Stops a server started here; `false` when it did not exit cleanly on `SIGTERM`.
    pub(crate) fn stop(self) -> bool {
        self.server.is_none_or(Server::stop)
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
/// An error means the load could not run at all (see [`engine::run`]).
pub(crate) fn measure(
    config: &LoadConfig,
    warmup: Duration,
    server_pid: Option<u32>,
) -> Result<(LoadResult, Option<ServerCost>), LoadError> {
    measure_with(config, warmup, server_pid, engine::run)
}

/// [`measure`] with the load run by `run` (`c10k` spreads it over client processes).
pub(crate) fn measure_with(
    config: &LoadConfig,
    warmup: Duration,
    server_pid: Option<u32>,
    run: impl Fn(&LoadConfig) -> Result<LoadResult, LoadError>,
) -> Result<(LoadResult, Option<ServerCost>), LoadError> {
    if !warmup.is_zero() {
        let warm = LoadConfig {
            duration: Some(warmup),
            requests: None,
            rate: None,
            ..config.clone()
        };
        run(&warm)?;
    }
    let Some(pid) = server_pid else {
        return Ok((run(config)?, None));
    };
    procfs::reset_peak_rss(pid);
    let before = procfs::sample_tree(pid);
    let sampler = Sampler::start(pid, SAMPLE_PERIOD);
    let result = run(config)?;
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
