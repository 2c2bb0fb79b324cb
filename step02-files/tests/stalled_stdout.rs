//! Step 2 with its stdout a pipe nobody reads: the access log must not stop it answering.

testkit::stalled_stdout_tests!(
    bin = env!("CARGO_BIN_EXE_step02-files"),
    args = &[],
    keep_alive = false
);
