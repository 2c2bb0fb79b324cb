//! Step 7, each backend and two loops, with its stdout a pipe nobody reads: no loop may wait for
//! the log.

testkit::stalled_stdout_tests!(
    mod mio,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &[],
    keep_alive = true
);
testkit::stalled_stdout_tests!(
    mod epoll,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--backend", "epoll"],
    keep_alive = true
);
testkit::stalled_stdout_tests!(
    mod two_loops,
    bin = env!("CARGO_BIN_EXE_step07-epoll"),
    args = &["--threads", "2"],
    keep_alive = true
);

#[test]
fn queued_lines_go_out_at_a_clean_exit() {
    testkit::stalled_stdout::queued_lines_go_out_at_a_clean_exit(&testkit::Target {
        bin: env!("CARGO_BIN_EXE_step07-epoll"),
        args: &[],
        keep_alive: true,
    });
}
