//! `c10k --stop-one-worker`: the balancing lesson. With several worker processes, what happens to
//! the clients of one that stops answering (a `SIGSTOP` stands for a worker stuck in a long
//! computation, a page fault storm, a debugger)?
//!
//! Once every connection is open, the worker holding the most connections is stopped for a few
//! seconds and then continued. Its connections are its own whichever way the port is shared: every
//! one of them waits for the stop to end. New connections differ: with a `SO_REUSEPORT` listener
//! per worker, the kernel hashes each to one listener, and those hashed to the stopped worker's
//! wait in its accept queue; with one listener waited on with `EPOLLEXCLUSIVE`, a worker that is
//! awake takes them. So during the stop a burst of new connections is made, and those answered
//! within a second are counted.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::c10k::C10kOptions;
use crate::engine::{self, LoadConfig};
use crate::measure::Subject;
use crate::stats::{ErrorCounts, LatencySummary};
use crate::target::Target;

/// The configurations `--stop-one-worker` runs when no `--step` is given: four workers, each way
/// of sharing the port.
pub const DEFAULT_STEPS: [&str; 2] = ["step07-workers-4", "step07-workers-4-exclusive"];

/// How long after the last connection opened the worker is stopped: the ramp's last requests
/// answered, the load steady.
pub const SETTLE: Duration = Duration::from_secs(1);

/// New connections made during the stop, each sending a request or two.
pub const PROBE_CONNECTIONS: usize = 200;

/// A new connection's request answered within this long counts as answered during the stop.
const ANSWERED_WITHIN: Duration = Duration::from_secs(1);

/// What one stop measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopFigures {
    /// How long the worker was stopped, seconds.
    pub stopped_for_s: f64,
    /// Connections each worker held when one was stopped (descriptors it gained).
    pub held_per_worker: Vec<u64>,
    /// Connections held by the stopped worker: each asked during the stop and waited for its end.
    pub stuck: u64,
    /// Requests of the held connections made during the stop (answered, by the end of the run).
    pub held_requests: u64,
    /// Of those, answered after more than one second: the stuck connections' requests.
    pub held_waited_over_1s: u64,
    /// New connections made during the stop.
    pub new_connections: u64,
    /// Their successful requests.
    pub new_requests: u64,
    /// Of those, answered within one second.
    pub new_answered_within_1s: u64,
    /// Their failed requests by kind.
    pub new_errors: ErrorCounts,
    /// Their requests still unanswered at the end.
    pub new_unanswered: u64,
    /// Their latency.
    pub new_latency: LatencySummary,
}

/// How many worker processes `subject` has, or the one line saying why `--stop-one-worker`
/// cannot run on it.
///
/// # Errors
///
/// A server with one process, or a stop shorter than the interval between a connection's requests.
pub(crate) fn plan_stop(subject: &Subject, options: &C10kOptions) -> Result<u64, String> {
    let name = subject.name();
    let workers = crate::c10k::worker_processes(subject).unwrap_or(1);
    if workers < 2 {
        return Err(format!(
            "--stop-one-worker needs worker processes: {name} has one; try {}",
            DEFAULT_STEPS.join(" or ")
        ));
    }
    if options.stop_for < options.interval() {
        return Err(format!(
            "--stop-for {} is shorter than the interval {}: some connections would not ask \
             during the stop",
            humantime::format_duration(options.stop_for),
            humantime::format_duration(options.interval())
        ));
    }
    Ok(workers)
}

/// A worker stopped with `SIGSTOP`; continued when dropped, whatever happens meanwhile.
struct Stopped(Pid);

impl Stopped {
    fn stop(pid: u32) -> Result<Self, String> {
        let pid = Pid::from_raw(i32::try_from(pid).map_err(|error| error.to_string())?);
        kill(pid, Signal::SIGSTOP).map_err(|error| format!("cannot stop worker {pid}: {error}"))?;
        Ok(Self(pid))
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

/// Stops one worker of a server on a thread, beside the load: see [`Stopper::start`].
pub(crate) struct Stopper {
    thread: std::thread::JoinHandle<Result<StopFigures, String>>,
}

impl Stopper {
    /// After `after`, stops the worker of `server` (a master's child) that holds the most
    /// connections for `stop_for`, and meanwhile opens [`PROBE_CONNECTIONS`] new ones to `url`.
    pub(crate) fn start(server: u32, url: &str, after: Duration, stop_for: Duration) -> Self {
        let url = url.to_owned();
        let fds_before: Vec<(u32, usize)> = testkit::procfs::child_pids(server)
            .into_iter()
            .map(|pid| (pid, testkit::procfs::fd_count(pid)))
            .collect();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(after);
            let held: Vec<(u32, u64)> = testkit::procfs::child_pids(server)
                .into_iter()
                .map(|pid| {
                    let before = fds_before
                        .iter()
                        .find(|(p, _)| *p == pid)
                        .map_or(0, |(_, n)| *n);
                    let now = testkit::procfs::fd_count(pid);
                    (pid, now.saturating_sub(before) as u64)
                })
                .collect();
            let &(worker, stuck) = held
                .iter()
                .max_by_key(|(_, n)| *n)
                .ok_or("the server has no worker processes")?;
            let stopped = Stopped::stop(worker)?;
            let started = Instant::now();
            let probe = probe_config(&url, stop_for)?;
            let measured = std::thread::scope(|scope| {
                let probing = scope.spawn(|| engine::run(&probe));
                std::thread::sleep(stop_for);
                drop(stopped);
                probing.join()
            });
            let stopped_for_s = started.elapsed().as_secs_f64();
            let probe = measured
                .map_err(|_| "the probe panicked".to_owned())?
                .map_err(|error| format!("the probe could not run: {error}"))?;
            Ok(StopFigures {
                stopped_for_s,
                held_per_worker: held.iter().map(|(_, n)| *n).collect(),
                stuck,
                new_connections: probe.report.connects,
                new_requests: probe.report.requests,
                new_answered_within_1s: answered_within(&probe.tally.latency, ANSWERED_WITHIN),
                new_errors: probe.report.errors,
                new_unanswered: probe.report.in_flight_at_end,
                new_latency: probe.report.latency,
                ..StopFigures::default()
            })
        });
        Self { thread }
    }

    /// The figures, completed with what the held connections' requests made during the stop
    /// measured (`held`: their latency histogram, in nanoseconds).
    pub(crate) fn finish(self, held: &Histogram<u64>) -> Result<StopFigures, String> {
        let figures = self
            .thread
            .join()
            .map_err(|_| "the stopper panicked".to_owned())??;
        let requests = held.len();
        Ok(StopFigures {
            held_requests: requests,
            held_waited_over_1s: requests - answered_within(held, ANSWERED_WITHIN),
            ..figures
        })
    }
}

/// The new connections of the stop: opened over its first half, each asking once per half, each
/// request given the whole stop and more to be answered (so a request that waited for the stop's
/// end is measured, not cut off).
fn probe_config(url: &str, stop_for: Duration) -> Result<LoadConfig, String> {
    let target = Target::parse(url).map_err(|error| error.to_string())?;
    let half = (stop_for / 2).max(Duration::from_millis(10));
    let mut config = LoadConfig::new(target, PROBE_CONNECTIONS, stop_for);
    config.rate = Some(PROBE_CONNECTIONS as f64 / half.as_secs_f64());
    config.ramp = Some(half);
    config.timeout = stop_for + Duration::from_secs(2);
    config.drain = Some(config.timeout);
    Ok(config)
}

/// How many of the latencies in `histogram` (nanoseconds) are at most `within`.
fn answered_within(histogram: &Histogram<u64>, within: Duration) -> u64 {
    let limit = u64::try_from(within.as_nanos()).unwrap_or(u64::MAX);
    histogram
        .iter_recorded()
        .filter(|value| value.value_iterated_to() <= limit)
        .map(|value| value.count_at_value())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::select;

    fn step(name: &str) -> Subject {
        Subject::Step(select(&[name.to_owned()]).unwrap()[0])
    }

    #[test]
    fn stops_only_a_worker_of_several_and_long_enough_for_every_connection_to_ask() {
        let options = C10kOptions {
            stop_one_worker: true,
            stop_for: Duration::from_secs(3),
            ..C10kOptions::default()
        };
        assert_eq!(plan_stop(&step("step07-workers-4"), &options), Ok(4));
        assert_eq!(
            plan_stop(&step("step07-workers-4-exclusive"), &options),
            Ok(4)
        );
        assert_eq!(plan_stop(&step("step07-workers"), &options), Ok(8));
        let one = plan_stop(&step("step07-1"), &options).unwrap_err();
        assert!(
            one.contains("step07-1 has one") && !one.contains('\n'),
            "{one}"
        );
        let short = C10kOptions {
            stop_for: Duration::from_millis(500),
            ..options.clone()
        };
        let why = plan_stop(&step("step07-workers-4"), &short).unwrap_err();
        assert!(why.contains("shorter than the interval"), "{why}");
        // The default selection is the two four-worker configurations, both of which exist.
        for name in DEFAULT_STEPS {
            assert_eq!(plan_stop(&step(name), &options), Ok(4));
        }
    }

    #[test]
    fn counts_what_was_answered_within_a_second() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        histogram.record_n(2_000_000, 9).unwrap();
        histogram.record(2_500_000_000).unwrap();
        assert_eq!(answered_within(&histogram, ANSWERED_WITHIN), 9);
        let probe = probe_config("http://127.0.0.1:9/", Duration::from_secs(3)).unwrap();
        assert!(
            probe.timeout > Duration::from_secs(3),
            "a stuck request is waited for"
        );
        assert_eq!(probe.connections, PROBE_CONNECTIONS);
    }
}
