//! Step 5 against the shared suites, with the default workers and with a single one.

testkit::conformance_tests!(
    bin = env!("CARGO_BIN_EXE_step05-coroutine"),
    args = &[],
    keep_alive = true
);
testkit::keep_alive_tests!(bin = env!("CARGO_BIN_EXE_step05-coroutine"), args = &[]);
testkit::convention_tests!(bin = env!("CARGO_BIN_EXE_step05-coroutine"), args = &[]);
testkit::fault_tests!(bin = env!("CARGO_BIN_EXE_step05-coroutine"), args = &[]);

testkit::conformance_tests!(mod conformance_one_worker, bin = env!("CARGO_BIN_EXE_step05-coroutine"), args = &["--workers", "1"], keep_alive = true);
testkit::keep_alive_tests!(mod keep_alive_one_worker, bin = env!("CARGO_BIN_EXE_step05-coroutine"), args = &["--workers", "1"]);

/// `may`'s worker threads accept and close descriptors at once: the table is grown before the
/// first client.
#[test]
fn descriptor_table_is_grown_at_start() {
    testkit::conventions::descriptor_table_is_grown_at_start(&testkit::Target {
        bin: env!("CARGO_BIN_EXE_step05-coroutine"),
        args: &[],
        keep_alive: true,
    });
}
