//! Fuzzes the document root: whatever path is asked for, a file that comes back lies inside the
//! root. The root holds a few files and symlinks (one leading out); a secret sits beside it.
#![no_main]

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use step02_files::{DocRoot, Resolved};

struct Fixture {
    _dir: tempfile::TempDir,
    root: DocRoot,
    inside: HashSet<(u64, u64)>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::write(root.join("index.html"), "home").unwrap();
    fs::write(root.join("docs/index.html"), "docs").unwrap();
    fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    symlink("../secret.txt", root.join("out.txt")).unwrap();
    symlink("..", root.join("up")).unwrap();
    symlink("index.html", root.join("in.html")).unwrap();
    let inside = ["index.html", "docs/index.html"]
        .iter()
        .map(|name| {
            let metadata = fs::metadata(root.join(name)).unwrap();
            (metadata.dev(), metadata.ino())
        })
        .collect();
    Fixture { root: DocRoot::open(&root).unwrap(), _dir: dir, inside }
});

fuzz_target!(|path: &str| {
    let fixture = &*FIXTURE;
    if let Resolved::File(found) = fixture.root.resolve(path) {
        let metadata = found.file().unwrap().metadata().unwrap();
        assert!(fixture.inside.contains(&(metadata.dev(), metadata.ino())), "{path:?} escaped the root");
    }
});
