//! `bench`: the load generator and the harness that runs every step of progressive-servers under the
//! same load, as its own process, and reports throughput, latency, CPU and memory side by side.
//!
//! The library is what the `bench` binary and the criterion benches share:
//! - [`engine`] drives connections with `mio` ([`engine::run`] with a [`engine::LoadConfig`]);
//! - [`response`] frames responses with a scanner written independently of the servers;
//! - [`stats`] holds the HDR histogram and the [`stats::Report`] printed or written as JSON;
//! - [`server`] builds the steps and starts them, and nginx, through testkit's harness
//!   ([`testkit::Server`], which also reads their CPU and memory from `/proc`);
//!   [`server::CONFIGURATIONS`] is the table of what is measured, and [`measure`] wraps one run;
//! - [`compare`], [`c10k`] and [`soak`] are the experiments ([`clients`] spreads `c10k`'s
//!   connections over client processes and source addresses); [`charts`] draws their SVG charts.
#![deny(missing_docs)]

pub mod balance;
pub mod c10k;
pub mod charts;
pub mod clients;
pub mod compare;
pub mod docroot;
pub mod engine;
pub mod machine;
pub mod measure;
pub mod netstat;
pub mod output;
pub mod peers;
pub mod response;
pub mod server;
pub mod soak;
pub mod stats;
pub mod sweep;
pub mod sys;
pub mod syscalls;
pub mod target;
