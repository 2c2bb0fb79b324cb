//! Step 5 on one worker thread, with its stdout a pipe nobody reads: a log write that blocked
//! would stall the worker and every coroutine on it.

testkit::stalled_stdout_tests!(
    bin = env!("CARGO_BIN_EXE_step05-coroutine"),
    args = &["--workers", "1"],
    keep_alive = true
);
