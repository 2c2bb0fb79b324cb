//! A file the server cannot open for want of a descriptor is the server's trouble (503), not a
//! missing file (404). In its own test binary: it lowers this process's descriptor limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use step02_files::{DocRoot, Resolved};

#[test]
fn out_of_descriptors_is_unavailable_not_missing() {
    let root = DocRoot::open(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))).unwrap();
    let portable =
        DocRoot::open_portable(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))).unwrap();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    // The kernel hands out the lowest free number; a limit at that number leaves none free.
    let lowest_free = fs::File::open("/dev/null").unwrap().as_raw_fd() as u64;
    setrlimit(Resource::RLIMIT_NOFILE, lowest_free, hard).unwrap();
    let outcomes = [root.resolve("/index.html"), portable.resolve("/index.html")];
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    for outcome in outcomes {
        assert!(matches!(outcome, Resolved::Unavailable), "{outcome:?}");
    }
    assert!(
        matches!(root.resolve("/index.html"), Resolved::File(_)),
        "fine again once descriptors free up"
    );
}
