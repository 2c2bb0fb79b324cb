//! Step 3, forking per connection and preforked, with its stdout a pipe nobody reads: the access
//! log must not stop it answering.

testkit::stalled_stdout_tests!(
    mod fork_per_connection,
    bin = env!("CARGO_BIN_EXE_step03-process"),
    args = &[],
    keep_alive = true
);
testkit::stalled_stdout_tests!(
    mod prefork,
    bin = env!("CARGO_BIN_EXE_step03-process"),
    args = &["--prefork", "4"],
    keep_alive = true
);
