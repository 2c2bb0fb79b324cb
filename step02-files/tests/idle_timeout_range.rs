//! The longest `--idle-timeout` a server accepts still serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const BIN: &str = env!("CARGO_BIN_EXE_step02-files");

// Out-of-range values are refused on every step: `out_of_range_idle_timeout_is_a_one_line_error`
// in the shared convention suite.

#[test]
fn the_longest_idle_timeout_accepted_still_serves() {
    let server = testkit::Server::start(BIN, &["--idle-timeout", "1day"]);
    assert_eq!(testkit::get(server.addr(), "/").status, 200);
}
