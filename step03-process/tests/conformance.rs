//! Step 3 against the shared suites, in both models: a process per connection, and prefork.
//!
//! Prefork has 8 workers here: headless Chromium opens up to 6 connections to one host and keeps
//! them alive, and fewer workers would make its page load wait for idle timeouts.

testkit::conformance_tests!(mod conformance_fork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &[], keep_alive = true);
testkit::keep_alive_tests!(mod keep_alive_fork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &[]);
testkit::convention_tests!(mod conventions_fork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &[]);
testkit::fault_tests!(mod faults_fork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &[]);

testkit::conformance_tests!(mod conformance_prefork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &["--prefork", "8"], keep_alive = true);
testkit::keep_alive_tests!(mod keep_alive_prefork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &["--prefork", "8"]);
testkit::convention_tests!(mod conventions_prefork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &["--prefork", "8"]);
testkit::fault_tests!(mod faults_prefork, bin = env!("CARGO_BIN_EXE_step03-process"), args = &["--prefork", "8"]);
