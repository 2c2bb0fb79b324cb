//! Step 8, tuned and with two rings, with its stdout a pipe nobody reads: no ring may wait for
//! the log.
#![cfg(target_os = "linux")]

testkit::stalled_stdout_tests!(
    mod tuned,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &[],
    keep_alive = true
);
testkit::stalled_stdout_tests!(
    mod two_rings,
    bin = env!("CARGO_BIN_EXE_step08-uring"),
    args = &["--threads", "2"],
    keep_alive = true
);

#[test]
fn queued_lines_go_out_at_a_clean_exit() {
    testkit::stalled_stdout::queued_lines_go_out_at_a_clean_exit(&testkit::Target {
        bin: env!("CARGO_BIN_EXE_step08-uring"),
        args: &[],
        keep_alive: true,
    });
}
