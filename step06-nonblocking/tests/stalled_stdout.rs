//! Step 6 with its stdout a pipe nobody reads: its one thread must never wait for the log.

testkit::stalled_stdout_tests!(
    bin = env!("CARGO_BIN_EXE_step06-nonblocking"),
    args = &[],
    keep_alive = true
);
