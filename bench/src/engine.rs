//! The event-driven load engine, in three parts: [`plan`] checks the options and splits the work,
//! [`worker`] is one thread's event loop, [`connection`] one connection's state machine. Each worker
//! thread drives its share of the connections with one `mio` poll, in the spirit of `wrk` (closed
//! loop: each connection sends its next request as soon as the previous answer is in) and `wrk2`
//! (`--rate`: each connection sends on a fixed schedule and latency is measured from when a request
//! *should* have started, so a stalled server cannot hide its stalls by slowing the generator down —
//! the "coordinated omission" correction).
//!
//! Efficiency is part of the contract: the generator shares two cores with the server, so every
//! microsecond it spends is taken from the server it measures. The hot loop therefore never allocates:
//! the request bytes are serialized once, responses are scanned incrementally from one read buffer per
//! thread (no per-connection buffers, which also keeps 10,000 idle connections cheap), and a read
//! shorter than the buffer is taken as "drained" instead of paying for one more `read` that would
//! return `WouldBlock`.

mod connection;
mod plan;
mod worker;

use std::io;
use std::time::{Duration, Instant};

pub use plan::{LoadConfig, LoadError, check_descriptors};
use plan::{Plan, WorkerShare};
use worker::{EndState, Worker};

use crate::stats::{LatencySummary, Report, Tally};

/// What a run measured: the summary and the merged tallies (with the full latency histogram).
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// The printable, serializable summary.
    pub report: Report,
    /// Raw counts and the latency histogram of all workers.
    pub tally: Tally,
    /// Connections that were open when the run ended.
    pub open_at_end: usize,
}

/// Runs the load described by `config` and waits for it to finish.
///
/// # Errors
///
/// [`LoadError::Config`] for impossible options (including more connections than the descriptor limit
/// allows), [`LoadError::Io`] when the event loop itself fails. Failed requests are not errors: they are
/// counted in the result.
pub fn run(config: &LoadConfig) -> Result<LoadResult, LoadError> {
    let plan = Plan::new(config)?;
    let threads = config.threads.clamp(1, config.connections);
    let started = Instant::now();
    let end = started
        + config
            .duration
            .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let mut total = EndState::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let share = WorkerShare::new(config, threads, thread);
                let plan = &plan;
                scope.spawn(move || Worker::new(plan, share, end)?.run())
            })
            .collect();
        for handle in handles {
            let panicked = |_| Err(io::Error::other("load worker panicked"));
            total.merge(&handle.join().unwrap_or_else(panicked)?);
        }
        Ok::<_, io::Error>(())
    })?;
    let wall = started.elapsed();
    Ok(LoadResult {
        report: summarize(config, threads, &total, wall),
        open_at_end: total.open,
        tally: total.tally,
    })
}

fn summarize(config: &LoadConfig, threads: usize, total: &EndState, wall: Duration) -> Report {
    let (tally, cpu) = (&total.tally, total.cpu);
    let seconds = wall.as_secs_f64().max(1e-9);
    let outcomes = tally.outcomes().max(1) as f64;
    Report {
        url: config.target.url.clone(),
        mode: if config.close { "close" } else { "keep-alive" }.to_owned(),
        connections: config.connections,
        threads,
        target_rate: config.rate,
        duration_s: wall.as_secs_f64(),
        requests: tally.requests,
        errors: tally.errors,
        requests_per_s: tally.requests as f64 / seconds,
        bytes_per_s: tally.bytes as f64 / seconds,
        bytes: tally.bytes,
        connects: tally.connects,
        latency: LatencySummary::from_histogram(&tally.latency),
        client_cpu_user_s: cpu.user.as_secs_f64(),
        client_cpu_system_s: cpu.system.as_secs_f64(),
        client_cpu_us_per_request: cpu.total().as_secs_f64() * 1e6 / outcomes,
        in_flight_at_end: total.in_flight,
        starved_connections: Some(total.starved),
        held_latency: config
            .held_after
            .map(|_| LatencySummary::from_histogram(&tally.held_latency)),
    }
}
