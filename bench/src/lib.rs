//! `bench`: the load generator and the harness that runs every step of progressive-servers under the
//! same load, as its own process, and reports throughput, latency, CPU and memory side by side.
//!
//! The library is what the `bench` binary and the criterion benches share:
//! - [`engine`] drives connections with `mio` ([`engine::run`] with a [`engine::LoadConfig`]);
//! - [`response`] frames responses with a scanner written independently of the servers;
//! - [`stats`] holds the HDR histogram and the [`stats::Report`] printed or written as JSON;
//! - [`server`] builds, starts and stops the step binaries; [`procfs`] reads their CPU and memory;
//! - [`compare`], [`c10k`] and [`soak`] are the three experiments; [`charts`] draws SVG charts.
#![deny(missing_docs)]

pub mod engine;
pub mod procfs;
pub mod response;
pub mod server;
pub mod stats;
pub mod sys;
pub mod target;
