//! Step 4, a thread per connection and a pool, with its stdout a pipe nobody reads: the access
//! log must not stop it answering, nor pile up threads.

testkit::stalled_stdout_tests!(
    mod thread_per_connection,
    bin = env!("CARGO_BIN_EXE_step04-thread"),
    args = &[],
    keep_alive = true
);
testkit::stalled_stdout_tests!(
    mod pool,
    bin = env!("CARGO_BIN_EXE_step04-thread"),
    args = &["--pool", "8"],
    keep_alive = true
);

#[test]
fn queued_lines_go_out_at_a_clean_exit() {
    testkit::stalled_stdout::queued_lines_go_out_at_a_clean_exit(&testkit::Target {
        bin: env!("CARGO_BIN_EXE_step04-thread"),
        args: &[],
        keep_alive: true,
    });
}
