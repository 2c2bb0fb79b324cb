//! Step 4 against the shared suites, in both models: a thread per connection, and a pool.
//!
//! The pool has 8 threads here: headless Chromium opens up to 6 connections to one host and
//! keeps them alive, and a smaller pool would make its page load wait for idle timeouts.

testkit::conformance_tests!(mod conformance_thread, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &[], keep_alive = true);
testkit::keep_alive_tests!(mod keep_alive_thread, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &[]);
testkit::convention_tests!(mod conventions_thread, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &[]);
testkit::fault_tests!(mod faults_thread, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &[]);

testkit::conformance_tests!(mod conformance_pool, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &["--pool", "8"], keep_alive = true);
testkit::keep_alive_tests!(mod keep_alive_pool, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &["--pool", "8"]);
testkit::convention_tests!(mod conventions_pool, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &["--pool", "8"]);
testkit::fault_tests!(mod faults_pool, bin = env!("CARGO_BIN_EXE_step04-thread"), args = &["--pool", "8"]);

/// Threads accept and close descriptors at once: the table is grown before the first client.
#[test]
fn descriptor_table_is_grown_at_start() {
    for args in [&[][..], &["--pool", "8"]] {
        testkit::conventions::descriptor_table_is_grown_at_start(&testkit::Target {
            bin: env!("CARGO_BIN_EXE_step04-thread"),
            args,
            keep_alive: true,
        });
    }
}
