//! The test harness every step uses: run the real server binary, talk raw HTTP to it, read its
//! process state from `/proc`, and the conformance suite that every step passes.
//!
//! A step's integration test needs only a few lines:
//!
//! ```ignore
//! testkit::conformance_tests!(bin = env!("CARGO_BIN_EXE_step04-thread"), args = &[], keep_alive = true);
//! testkit::keep_alive_tests!(bin = env!("CARGO_BIN_EXE_step04-thread"), args = &[]);
//! ```
//!
//! Everything here is test code: it panics with a clear message instead of returning errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod byteranges;
pub mod clients;
pub mod concurrency;
pub mod conformance;
pub mod conventions;
pub mod faults;
pub mod first_programs;
pub mod http;
pub mod keep_alive;
pub mod lifecycle;
pub mod load;
pub mod procfs;
pub mod server;
pub mod site;
pub mod stalled_stdout;
pub mod traversal;

pub use http::{Conn, RawResponse, get, send_raw};
pub use server::Server;
pub use site::TestSite;

use std::path::PathBuf;
use std::time::Duration;

/// A server binary under test, and how to start it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The binary, usually `env!("CARGO_BIN_EXE_<name>")`.
    pub bin: &'static str,
    /// Extra flags for the model under test (`--pool 4`, `--backend epoll` …).
    pub args: &'static [&'static str],
    /// Whether the server keeps connections alive (steps 3–7) or closes after each response.
    pub keep_alive: bool,
}

impl Target {
    /// Starts the server on `root` with the target's flags and `extra` ones.
    pub fn start_on(&self, root: &std::path::Path, extra: &[&str]) -> Server {
        self.launch_on(root, extra, &server::Launch::default())
    }

    /// [`Target::start_on`] with the process-level `launch` settings.
    pub fn launch_on(
        &self,
        root: &std::path::Path,
        extra: &[&str],
        launch: &server::Launch,
    ) -> Server {
        let root = root.to_str().expect("temp paths are UTF-8");
        let args = [&["--root", root], self.args, extra].concat();
        Server::launch(self.bin, &args, launch)
    }
}

/// The repository's bundled site, `www/`.
pub fn www_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))
}

/// How long any single wait in a test may take before the test fails rather than hangs.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A module of tests for one server binary (named `mod NAME,` by the caller, else the suite's
/// default): one `#[test]` per `module::function [as test_name]`, calling the function with `TARGET`.
#[doc(hidden)]
#[macro_export]
macro_rules! target_tests {
    (@module $name:ident, $target:expr, [$($module:ident :: $function:ident $(as $test:ident)?),* $(,)?]) => {
        mod $name {
            const TARGET: $crate::Target = $target;
            $($crate::target_tests!(@test $module $function $($test)?);)*
        }
    };
    (@test $module:ident $function:ident) => {
        $crate::target_tests!(@test $module $function $function);
    };
    (@test $module:ident $function:ident $test:ident) => {
        #[test]
        fn $test() {
            $crate::$module::$function(&TARGET);
        }
    };
    ($default:ident $name:ident, $($rest:tt)*) => {
        $crate::target_tests!(@module $name, $($rest)*);
    };
    ($default:ident, $($rest:tt)*) => {
        $crate::target_tests!(@module $default, $($rest)*);
    };
}

/// Generates the conformance tests for one server binary, in a module (default `conformance`).
///
/// ```ignore
/// testkit::conformance_tests!(bin = env!("CARGO_BIN_EXE_step02-files"), args = &[], keep_alive = false);
/// testkit::conformance_tests!(mod epoll, bin = env!("CARGO_BIN_EXE_step07-epoll"), args = &["--backend", "epoll"], keep_alive = true);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($(mod $name:ident,)? bin = $bin:expr, args = $args:expr, keep_alive = $keep_alive:expr $(,)?) => {
        $crate::target_tests!(conformance $($name)?, $crate::Target { bin: $bin, args: $args, keep_alive: $keep_alive }, [
            conformance::contract_table,
            conformance::request_cut_short_gets_408,
            conformance::partial_head_is_not_an_error,
            conformance::body_after_refused_request_is_never_parsed,
            conformance::streams_a_large_file_intact,
            conformance::streams_several_ranges_of_a_large_file,
            traversal::traversal_corpus as traversal_corpus_never_escapes_the_root,
            clients::curl_fetches_site as serves_curl,
            clients::ureq_fetches_site as serves_a_rust_http_client,
            clients::chromium_loads_site as headless_chromium_loads_the_whole_site,
            conformance::access_log_has_one_line_per_request,
            conformance::file_cache_follows_the_disk,
            conformance::an_edited_file_is_never_not_modified,
            conformance::a_root_symlink_swapped_by_a_deploy_is_followed,
            conformance::a_root_that_may_not_be_listed_is_served,
            conformance::future_file_is_not_modified_after_the_date,
            conformance::curl_resumes_a_download,
            conformance::curl_revalidates_its_copy,
        ]);
    };
}

/// Generates the keep-alive tests (steps 3–7) for one server binary, in a module (default `keep_alive`).
#[macro_export]
macro_rules! keep_alive_tests {
    ($(mod $name:ident,)? bin = $bin:expr, args = $args:expr $(,)?) => {
        $crate::target_tests!(keep_alive $($name)?, $crate::Target { bin: $bin, args: $args, keep_alive: true }, [
            keep_alive::answers_pipelined_requests_in_order,
            keep_alive::connection_close_is_honoured,
            keep_alive::http10_closes_unless_asked_to_keep_alive,
            keep_alive::idle_timeout_closes_the_connection,
            keep_alive::head_and_bodies_keep_framing,
            conformance::conditional_answers_keep_framing,
            conformance::failed_precondition_keeps_the_connection,
        ]);
    };
}

/// Generates the tests of the conventions every server binary follows (flags, exit codes,
/// signals, `--quiet`), in a module (default `conventions`).
#[macro_export]
macro_rules! convention_tests {
    ($(mod $name:ident,)? bin = $bin:expr, args = $args:expr $(,)?) => {
        $crate::target_tests!(conventions $($name)?, $crate::Target { bin: $bin, args: $args, keep_alive: false }, [
            conventions::help_lists_common_flags,
            conventions::port_in_use_is_a_one_line_error,
            conventions::missing_root_is_a_one_line_error,
            conventions::out_of_range_idle_timeout_is_a_one_line_error,
            conventions::sigterm_exits_zero,
            conventions::ctrl_c_exits_zero,
            conventions::sighup_is_ignored_with_a_note,
            conventions::second_sigterm_stops_at_once,
            conventions::second_ctrl_c_stops_at_once,
            conventions::quiet_silences_the_log,
        ]);
    };
}

/// Generates the fault tests every server must pass whatever its model (files changing under a
/// response, clients vanishing mid-response), in a module (default `faults`).
#[macro_export]
macro_rules! fault_tests {
    ($(mod $name:ident,)? bin = $bin:expr, args = $args:expr $(,)?) => {
        $crate::target_tests!(faults $($name)?, $crate::Target { bin: $bin, args: $args, keep_alive: true }, [
            faults::deleted_file_is_still_sent_whole,
            faults::replaced_file_is_sent_whole_and_the_next_request_sees_the_new,
            faults::truncated_file_ends_the_connection_not_the_server,
            faults::vanishing_clients_never_kill_the_server,
            faults::a_client_that_stops_reading_is_dropped_after_the_idle_timeout,
            faults::a_full_file_cache_leaves_descriptors_for_clients,
        ]);
    };
}
