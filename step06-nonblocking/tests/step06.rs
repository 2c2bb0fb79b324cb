//! Step 6 as a user meets it: the real binary on 127.0.0.1:0, against the shared conformance and
//! keep-alive suites, then the faults a single-threaded event loop must survive.

use testkit::{Target, load};

const BIN: &str = env!("CARGO_BIN_EXE_step06-nonblocking");
const TARGET: Target = Target {
    bin: BIN,
    args: &[],
    keep_alive: true,
};

testkit::conformance_tests!(
    bin = env!("CARGO_BIN_EXE_step06-nonblocking"),
    args = &[],
    keep_alive = true
);
testkit::keep_alive_tests!(bin = env!("CARGO_BIN_EXE_step06-nonblocking"), args = &[]);
testkit::keep_alive_tests!(mod keep_alive_napping, bin = env!("CARGO_BIN_EXE_step06-nonblocking"), args = &["--nap", "1000"]);

#[test]
fn fresh_client_is_served_among_idle_trickling_and_stalled_clients() {
    load::fresh_client_is_served_among_idle_trickling_and_stalled_clients(&TARGET);
}

#[test]
fn serves_a_200_mib_file_to_ten_clients_in_bounded_memory() {
    load::serves_a_huge_file_to_ten_clients_in_bounded_memory(&TARGET, 200);
}

#[test]
fn survives_clients_that_reset_mid_response() {
    load::survives_clients_that_reset_mid_response(&TARGET);
}

#[test]
fn five_thousand_connections_leave_no_descriptor_behind() {
    load::five_thousand_connections_leave_no_descriptor_behind(&TARGET);
}

#[test]
fn recovers_from_descriptor_exhaustion() {
    // The spinning loop uses a whole core by design, so only recovery is checked here; step 7
    // also checks that running out of descriptors costs no CPU.
    load::recovers_from_descriptor_exhaustion(&TARGET, false);
}

#[test]
fn stops_gracefully_on_sigterm() {
    load::stops_gracefully_finishing_responses_in_flight(&TARGET, libc::SIGTERM);
}

testkit::fault_tests!(bin = env!("CARGO_BIN_EXE_step06-nonblocking"), args = &[]);
testkit::convention_tests!(bin = env!("CARGO_BIN_EXE_step06-nonblocking"), args = &[]);
