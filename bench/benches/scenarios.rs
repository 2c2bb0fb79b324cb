//! Criterion benchmarks: one group per scenario, one benchmark per server configuration, each
//! iteration a batch of requests from the load generator against a spawned server, so that
//! `target/criterion/` holds the statistical view (distributions, comparisons between runs) of what
//! `bench compare` reports as single figures.
//!
//! `cargo bench -p bench` runs them (filter with `cargo bench -p bench -- step07`);
//! `cargo test -p bench --benches` runs each once as a smoke check. A configuration whose binary does
//! not build or start (a placeholder that exits at once) is skipped with a message, never a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bench::docroot::{BIG_PATH, DocRoot, SMALL_PATH};
use bench::engine::{self, LoadConfig};
use bench::server::{self, Server, ServerSpec};
use bench::target::Target;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, measurement::WallTime};

/// Requests per criterion iteration.
const BATCH: u64 = 2000;

/// A scenario of the benches: (group name, connection per request, connections, path).
const SCENARIOS: &[(&str, bool, usize, &str)] = &[
    ("keep-alive-c16-small", false, 16, SMALL_PATH),
    ("keep-alive-c64-small", false, 64, SMALL_PATH),
    ("close-c16-small", true, 16, SMALL_PATH),
    ("keep-alive-c16-1mib", false, 16, BIG_PATH),
];

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let _ = bench::sys::raise_nofile_limit();
    let root = DocRoot::create().expect("temporary document root");
    let servers = start_servers(&root);
    for &(name, close, connections, path) in SCENARIOS {
        let mut group = criterion.benchmark_group(name);
        group.throughput(Throughput::Elements(BATCH));
        // Each iteration is a whole batch (tens of milliseconds): flat sampling suits long iterations.
        group.sampling_mode(SamplingMode::Flat);
        for (spec, server) in &servers {
            let target = Target::parse(&server.url(path)).expect("the server's own URL");
            bench_one(&mut group, spec, target, close, connections);
        }
        group.finish();
    }
    criterion.final_summary();
}

fn start_servers(root: &DocRoot) -> Vec<(ServerSpec, Server)> {
    let binaries = server::build();
    let mut servers = Vec::new();
    for spec in server::CONFIGURATIONS {
        let started = binaries
            .get(spec.package)
            .and_then(|binary| Ok(server::start(binary, root.path(), spec.args)?));
        match started {
            Ok(running) => servers.push((*spec, running)),
            Err(error) => eprintln!("skipping {}: {error:#}", spec.name),
        }
    }
    servers
}

fn bench_one(
    group: &mut BenchmarkGroup<'_, WallTime>,
    spec: &ServerSpec,
    target: Target,
    close: bool,
    connections: usize,
) {
    let mut config = LoadConfig::new(target, connections, Duration::from_secs(60));
    config.close = close;
    config.timeout = Duration::from_secs(3);
    group.bench_function(spec.name, |bencher| {
        bencher.iter_custom(|iterations| {
            let mut config = config.clone();
            config.requests = Some(iterations * BATCH);
            let started = Instant::now();
            match engine::run(&config) {
                Ok(result) if result.tally.errors.total() > 0 => {
                    eprintln!(
                        "{}: {} errors ({})",
                        spec.name,
                        result.tally.errors.total(),
                        result.tally.errors
                    );
                }
                Ok(_) => {}
                Err(error) => eprintln!("{}: {error}", spec.name),
            }
            started.elapsed()
        });
    });
}
