//! Step 2 against the shared conformance suite: the contract table, the traversal corpus and real
//! clients, on the real binary. Step 2 closes after every response.

testkit::conformance_tests!(
    bin = env!("CARGO_BIN_EXE_step02-files"),
    args = &[],
    keep_alive = false
);
testkit::convention_tests!(bin = env!("CARGO_BIN_EXE_step02-files"), args = &[]);
testkit::fault_tests!(bin = env!("CARGO_BIN_EXE_step02-files"), args = &[]);
