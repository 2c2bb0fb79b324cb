//! Defines [`FileCache`]: what the document root found, remembered, so that a request for a file
//! served a moment ago costs one `read` of an empty inotify queue instead of `openat2`, `fstat`, a
//! `read` and `close`.
//!
//! nginx's `open_file_cache` removes those calls too, but trusts an entry for
//! `open_file_cache_valid` seconds: a file edited within that window is still answered "not
//! modified", with its old `ETag`. This cache trusts nothing the kernel has not vouched for. An
//! entry is kept only while a [`Watch`] covers everything its path goes through, and every hit
//! first drains the watch's queue: any change there (the file replaced, truncated, appended to,
//! edited in place, removed, a folder or symlink on the way moved) empties the cache, and the
//! request resolves the path again exactly as an uncached request would. Where inotify cannot
//! vouch (a network filesystem, a kernel that refuses another queue), the hit `stat`s the file's
//! path instead (through the root's path as configured, so through a swapped root symlink too) and
//! serves the entry only if the file there is still the very version it holds ([`Identity`]:
//! device, inode, size, and both timestamps to the nanosecond).
//!
//! It holds only what [`DocRoot::resolve`] produced, the `openat2(RESOLVE_BENEATH)` resolution:
//! there is no other way in. A version changed less than [`SETTLE`] ago is served but not
//! remembered, because a second change within the same tick of the kernel's file clock could
//! leave its identity unchanged.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::http::docroot::{DocRoot, FileContent, FoundFile, Identity, Resolved, SETTLE};
use crate::http::response::SMALL_BODY;
use crate::http::watch::Watch;

// ANCHOR: config
/// The cache's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCacheConfig {
    /// How many paths it remembers at most. Each entry for a large file holds a descriptor open.
    pub max_entries: usize,
    /// How many bytes of small files it holds in memory at most.
    pub max_bytes: usize,
    /// Files up to this size are kept as bytes (and their descriptor closed); larger ones keep
    /// the open descriptor. The default is [`SMALL_BODY`]: the files whose bytes would join the
    /// response head in one `write` anyway.
    pub max_file_in_memory: u64,
    /// A version changed less than this long ago is served but not remembered: [`SETTLE`],
    /// except in tests that need every file cached at once.
    pub settle: Duration,
    /// How many descriptors the entries of every cache in this process may hold open together.
    /// Clients need descriptors too: the server sets this from its descriptor limit, so that a
    /// cache full of large files never leaves none for `accept` (see [`HELD_DESCRIPTORS`]).
    pub max_descriptors: usize,
    /// How a hit is known to be the file on disk: [`HitCheck::Watch`], except to measure the
    /// other.
    pub check: HitCheck,
}

/// How the cache knows, on a hit, that the file it holds is still the one on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitCheck {
    /// inotify would have said otherwise: one `read` that finds the queue empty. Where inotify
    /// cannot vouch for a file, that entry is checked by `stat`.
    Watch,
    /// One `stat` of the path, compared with the version held.
    Stat,
}

/// Descriptors held open by the entries of every [`FileCache`] in this process. The descriptor
/// limit is the process's, shared by all its loops and threads, so the count is too: N loops
/// with a cache each may not hold N budgets.
static HELD_DESCRIPTORS: AtomicUsize = AtomicUsize::new(0);

impl Default for FileCacheConfig {
    fn default() -> Self {
        FileCacheConfig {
            max_entries: 1000,
            max_bytes: 16 * 1024 * 1024,
            max_file_in_memory: SMALL_BODY,
            settle: SETTLE,
            max_descriptors: usize::MAX,
            check: HitCheck::Watch,
        }
    }
}
// ANCHOR_END: config

/// A bounded map from URL path to what resolving it found, each entry checked against the disk
/// on every hit.
///
/// One lock guards it; a hit holds the lock to drain the watch's queue, for a hash lookup and
/// three reference-count increments (and `stat`s the path after letting it go, where it must).
pub struct FileCache {
    config: FileCacheConfig,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Keyed by the percent-decoded URL path, which decides the resolution alone.
    entries: HashMap<String, Entry>,
    /// Bytes held by in-memory entries.
    bytes: usize,
    /// Counts lookups, to find the least recently used entry.
    clock: u64,
    /// What vouches for the entries that are not checked by `stat`: made with the cache, so that
    /// its descriptor is there from the start, and made anew after each change it reports. `None`
    /// when checking by `stat`, or when the kernel would not make one.
    watch: Option<Watch>,
}

struct Entry {
    found: FoundFile,
    /// The path to `stat` on a hit: [`DocRoot::path_of`].
    path: Arc<Path>,
    /// Whether the [`Watch`] covers it, so that a hit needs no `stat`.
    watched: bool,
    last_used: u64,
}

impl Entry {
    fn holds_descriptor(&self) -> bool {
        matches!(self.found.content, FileContent::Open(_))
    }

    fn bytes(&self) -> usize {
        match &self.found.content {
            FileContent::InMemory(bytes) => bytes.len(),
            FileContent::Open(_) => 0,
        }
    }
}

impl fmt::Debug for FileCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCache")
            .field("config", &self.config)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl FileCache {
    /// An empty cache with these bounds.
    pub fn new(config: FileCacheConfig) -> FileCache {
        let watch = match config.check {
            HitCheck::Watch if config.max_entries > 0 => Watch::new(),
            _ => None,
        };
        FileCache {
            config,
            inner: Mutex::new(Inner {
                watch,
                ..Inner::default()
            }),
        }
    }

    /// The bounds it was made with.
    pub fn config(&self) -> FileCacheConfig {
        self.config
    }

    /// How many paths it remembers now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether it remembers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many bytes of file content it holds now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing in the critical sections can panic half-way through an update that matters:
        // a poisoned cache is still a consistent one.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ANCHOR: lookup
    /// What `url_path` names under `root` at `now`: the remembered file if it is still the one
    /// on disk, otherwise a fresh [`DocRoot::resolve`], remembered if it is a file.
    pub fn lookup(&self, root: &DocRoot, url_path: &str, now: SystemTime) -> Resolved {
        if let Some(found) = self.unchanged_entry(url_path) {
            return Resolved::File(found);
        }
        let resolved = match root.resolve(url_path) {
            // Out of descriptors: give back the ones this cache holds and try once more, so
            // that a full cache never turns into 503s for everyone.
            Resolved::Unavailable if self.shed_descriptors() => root.resolve(url_path),
            resolved => resolved,
        };
        match resolved {
            Resolved::File(fresh) => Resolved::File(self.remember(root, url_path, fresh, now)),
            refusal => {
                self.forget(url_path);
                refusal
            }
        }
    }
    // ANCHOR_END: lookup

    // ANCHOR: unchanged_entry
    /// The hit path: one lock to drain the watch's queue, for a hash lookup and clones of three
    /// `Arc`s. `None` unless the path still leads to the version remembered: when the queue holds
    /// a change, every entry goes.
    fn unchanged_entry(&self, url_path: &str) -> Option<FoundFile> {
        let (found, path) = {
            let mut inner = self.lock();
            if inner.forget_all_if_changed() {
                return None;
            }
            inner.clock += 1;
            let clock = inner.clock;
            let entry = inner.entries.get_mut(url_path)?;
            entry.last_used = clock;
            if entry.watched {
                return Some(entry.found.clone());
            }
            (entry.found.clone(), Arc::clone(&entry.path))
        };
        // Not covered by the watch: `stat` the path, outside the lock.
        is_on_disk(&path, &found).then_some(found)
    }
    // ANCHOR_END: unchanged_entry

    /// Stores what a fresh resolution found, in place of what was remembered for the path, and
    /// returns what to serve.
    fn remember(
        &self,
        root: &DocRoot,
        url_path: &str,
        fresh: FoundFile,
        now: SystemTime,
    ) -> FoundFile {
        let found = self.load(fresh);
        let path = root.path_of(url_path).map(Arc::<Path>::from);
        let mut inner = self.lock();
        inner.forget_all_if_changed();
        inner.remove(url_path);
        let Some(path) = path else {
            return found;
        };
        if !found.identity.settled(self.config.settle, now) {
            // Served, and resolved again next time, until a change is sure to show.
            return found;
        }
        inner.clock += 1;
        let mut entry = Entry {
            found: found.clone(),
            path,
            watched: false,
            last_used: inner.clock,
        };
        if self.config.max_entries == 0 || entry.bytes() > self.config.max_bytes {
            return found;
        }
        entry.watched = inner.cover(&entry.path);
        // A change between the resolution and the watch would never be queued: look once more.
        if entry.watched && !is_on_disk(&entry.path, &found) {
            return found;
        }
        while inner.entries.len() >= self.config.max_entries
            || inner.bytes + entry.bytes() > self.config.max_bytes
        {
            if !inner.evict_least_recently_used(|_| true) {
                break;
            }
        }
        if entry.holds_descriptor() && !self.reserve_descriptor(&mut inner) {
            // Served from its own descriptor, which closes with the response.
            return found;
        }
        inner.bytes += entry.bytes();
        inner.entries.insert(url_path.to_owned(), entry);
        found
    }

    /// A small file's bytes are read once, and its descriptor closed; a large one keeps it.
    fn load(&self, fresh: FoundFile) -> FoundFile {
        let FileContent::Open(file) = &fresh.content else {
            return fresh;
        };
        if fresh.len > self.config.max_file_in_memory {
            return fresh;
        }
        // len <= max_file_in_memory, a small number.
        let mut bytes = vec![0u8; fresh.len as usize];
        match file.read_exact_at(&mut bytes, 0) {
            Ok(()) => FoundFile {
                content: FileContent::InMemory(bytes.into()),
                ..fresh
            },
            // It shrank since the `fstat`: serve the descriptor; sending will notice.
            Err(_) => fresh,
        }
    }

    fn forget(&self, url_path: &str) {
        self.lock().remove(url_path);
    }

    /// Counts one more held descriptor against the process's budget, evicting this cache's
    /// least recently used descriptor entry first when the budget is spent; `false` when there
    /// is none to evict (other caches hold the budget).
    fn reserve_descriptor(&self, inner: &mut Inner) -> bool {
        let max = self.config.max_descriptors;
        loop {
            let reserved =
                HELD_DESCRIPTORS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                    (held < max).then_some(held + 1)
                });
            if reserved.is_ok() {
                return true;
            }
            if !inner.evict_least_recently_used(Entry::holds_descriptor) {
                return false;
            }
        }
    }

    /// Drops every entry that holds a descriptor (they hold no bytes); `true` if there was one.
    fn shed_descriptors(&self) -> bool {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|_, entry| !entry.holds_descriptor());
        let shed = before - inner.entries.len();
        HELD_DESCRIPTORS.fetch_sub(shed, Ordering::Relaxed);
        shed > 0
    }
}

/// Whether the file at `path` is still the version `found` holds, by one `stat`.
fn is_on_disk(path: &Path, found: &FoundFile) -> bool {
    fs::metadata(path).is_ok_and(|on_disk| Identity::of(&on_disk) == found.identity)
}

impl Drop for FileCache {
    fn drop(&mut self) {
        self.inner
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Inner {
    /// Drains the watch's queue, and drops every entry if what it covers may have changed, or if
    /// it was made by the parent of this forked process (which drains the same queue): `true` then.
    /// The watch goes with them (closing its queue drops every watch at once), and a new, empty one
    /// takes its place.
    fn forget_all_if_changed(&mut self) -> bool {
        let Some(watch) = &mut self.watch else {
            return false;
        };
        let changed = !watch.is_own() || watch.saw_change();
        if changed {
            self.clear();
            self.watch = Watch::new();
        }
        changed
    }

    /// Has the watch cover `path`; `false` if there is none or it cannot.
    fn cover(&mut self, path: &Path) -> bool {
        self.watch.as_mut().is_some_and(|watch| watch.cover(path))
    }

    /// Drops every entry and gives back what they held.
    fn clear(&mut self) {
        let held = self
            .entries
            .values()
            .filter(|e| e.holds_descriptor())
            .count();
        HELD_DESCRIPTORS.fetch_sub(held, Ordering::Relaxed);
        self.entries.clear();
        self.bytes = 0;
    }

    /// Drops the entry used longest ago among those `eligible`; `false` if there is none. A
    /// scan, but only on a miss with a full cache, and the cache is small.
    fn evict_least_recently_used(&mut self, eligible: impl Fn(&Entry) -> bool) -> bool {
        let Some(oldest) = self
            .entries
            .iter()
            .filter(|(_, entry)| eligible(entry))
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(path, _)| path.clone())
        else {
            return false;
        };
        self.remove(&oldest);
        true
    }

    /// Removes `url_path`'s entry, if any, and gives back what it held.
    fn remove(&mut self, url_path: &str) {
        if let Some(old) = self.entries.remove(url_path) {
            self.bytes -= old.bytes();
            if old.holds_descriptor() {
                HELD_DESCRIPTORS.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Arc;

    fn root_with(files: &[(&str, usize)]) -> (tempfile::TempDir, DocRoot) {
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in files {
            fs::write(dir.path().join(name), vec![b'x'; *len]).unwrap();
        }
        let root = DocRoot::open(dir.path()).unwrap();
        (dir, root)
    }

    fn config(max_entries: usize, max_bytes: usize) -> FileCacheConfig {
        FileCacheConfig {
            max_entries,
            max_bytes,
            max_file_in_memory: 100,
            settle: Duration::ZERO,
            max_descriptors: usize::MAX,
            check: HitCheck::Watch,
        }
    }

    const CHECKS: [HitCheck; 2] = [HitCheck::Watch, HitCheck::Stat];

    fn checked_by(check: HitCheck) -> FileCache {
        FileCache::new(FileCacheConfig {
            check,
            ..config(10, 1000)
        })
    }

    fn bytes_of(cache: &FileCache, root: &DocRoot, path: &str) -> Vec<u8> {
        match content(cache.lookup(root, path, SystemTime::now())) {
            FileContent::InMemory(bytes) => bytes.to_vec(),
            FileContent::Open(file) => {
                let mut read = Vec::new();
                std::io::Read::read_to_end(&mut &*file, &mut read).unwrap();
                read
            }
        }
    }

    fn content(resolved: Resolved) -> FileContent {
        match resolved {
            Resolved::File(found) => found.content,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn small_files_are_held_as_bytes_and_large_ones_as_descriptors() {
        let (_dir, root) = root_with(&[("small", 10), ("large", 1000)]);
        let cache = FileCache::new(config(10, 1000));
        let now = SystemTime::now();
        assert!(matches!(
            content(cache.lookup(&root, "/small", now)),
            FileContent::InMemory(bytes) if bytes.len() == 10
        ));
        assert!(matches!(
            content(cache.lookup(&root, "/large", now)),
            FileContent::Open(_)
        ));
        assert_eq!((cache.len(), cache.bytes()), (2, 10));
    }

    #[test]
    fn the_entry_bound_evicts_the_least_recently_used() {
        let (_dir, root) = root_with(&[("a", 1), ("b", 1), ("c", 1)]);
        let cache = FileCache::new(config(2, 1000));
        let now = SystemTime::now();
        cache.lookup(&root, "/a", now);
        cache.lookup(&root, "/b", now);
        cache.lookup(&root, "/a", now);
        cache.lookup(&root, "/c", now);
        assert_eq!(cache.len(), 2);
        let inner = cache.lock();
        assert!(inner.entries.contains_key("/a") && inner.entries.contains_key("/c"));
    }

    #[test]
    fn the_byte_bound_is_kept() {
        let (_dir, root) = root_with(&[("a", 60), ("b", 60), ("c", 30)]);
        let cache = FileCache::new(config(10, 100));
        let now = SystemTime::now();
        for path in ["/a", "/b", "/c"] {
            cache.lookup(&root, path, now);
            assert!(cache.bytes() <= 100, "{} bytes", cache.bytes());
        }
        assert_eq!(cache.bytes(), 90);
    }

    fn in_memory(resolved: Resolved) -> Arc<[u8]> {
        match content(resolved) {
            FileContent::InMemory(bytes) => bytes,
            FileContent::Open(_) => panic!("held as a descriptor"),
        }
    }

    /// Past one tick of the kernel's file clock, so that the next write shows in `ctime`.
    fn let_the_file_clock_tick() {
        std::thread::sleep(SETTLE);
    }

    #[test]
    fn a_hit_serves_the_same_content_and_a_refusal_is_not_remembered() {
        let (dir, root) = root_with(&[("a", 10)]);
        let cache = FileCache::new(config(10, 1000));
        let now = SystemTime::now();
        let first = in_memory(cache.lookup(&root, "/a", now));
        let again = in_memory(cache.lookup(&root, "/a", now));
        assert!(Arc::ptr_eq(&first, &again), "an unchanged file is a hit");
        fs::remove_file(dir.path().join("a")).unwrap();
        assert!(matches!(cache.lookup(&root, "/a", now), Resolved::NotFound));
        assert!(cache.is_empty(), "a missing file is forgotten");
        assert!(matches!(
            cache.lookup(&root, "/missing", now),
            Resolved::NotFound
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn every_change_to_a_cached_file_is_seen_at_the_next_lookup() {
        for check in CHECKS {
            let (dir, root) = root_with(&[("a", 10), ("b", 1000)]);
            let (a, b) = (dir.path().join("a"), dir.path().join("b"));
            let cache = checked_by(check);
            let bytes_of = |path: &str| bytes_of(&cache, &root, path);
            assert_eq!(bytes_of("/a"), vec![b'x'; 10]);
            let_the_file_clock_tick();
            fs::write(&a, [b'y'; 10]).unwrap();
            assert_eq!(
                bytes_of("/a"),
                vec![b'y'; 10],
                "{check:?}: edited, same size"
            );
            let_the_file_clock_tick();
            fs::OpenOptions::new()
                .append(true)
                .open(&a)
                .unwrap()
                .set_len(3)
                .unwrap();
            assert_eq!(bytes_of("/a"), b"yyy", "{check:?}: truncated");
            let_the_file_clock_tick();
            fs::write(dir.path().join("new"), "renamed").unwrap();
            fs::rename(dir.path().join("new"), &a).unwrap();
            assert_eq!(bytes_of("/a"), b"renamed", "{check:?}: replaced by rename");
            assert_eq!(bytes_of("/b").len(), 1000);
            let_the_file_clock_tick();
            std::io::Write::write_all(
                &mut fs::OpenOptions::new().append(true).open(&b).unwrap(),
                b"z",
            )
            .unwrap();
            let Resolved::File(found) = cache.lookup(&root, "/b", SystemTime::now()) else {
                panic!("found")
            };
            assert_eq!(found.len, 1001, "{check:?}: appended to");
            assert!(cache.lock().entries.contains_key("/b"), "remembered again");
            fs::remove_file(&a).unwrap();
            assert!(matches!(
                cache.lookup(&root, "/a", SystemTime::now()),
                Resolved::NotFound
            ));
        }
    }

    #[test]
    fn a_folder_or_root_symlink_moved_on_the_way_is_seen() {
        for check in CHECKS {
            let dir = tempfile::tempdir().unwrap();
            for release in ["1", "2"] {
                fs::create_dir_all(dir.path().join(release).join("docs")).unwrap();
                let page = dir.path().join(release).join("docs/a");
                fs::write(page, format!("release {release}")).unwrap();
            }
            let current = dir.path().join("current");
            std::os::unix::fs::symlink("1", &current).unwrap();
            let root = DocRoot::open(&current).unwrap();
            let cache = checked_by(check);
            assert_eq!(bytes_of(&cache, &root, "/docs/a"), b"release 1");
            // A deploy: the root symlink swapped by rename.
            std::os::unix::fs::symlink("2", dir.path().join("next")).unwrap();
            fs::rename(dir.path().join("next"), &current).unwrap();
            assert_eq!(
                bytes_of(&cache, &root, "/docs/a"),
                b"release 2",
                "{check:?}"
            );
            // A folder on the way moved aside, and another put in its place.
            let docs = dir.path().join("2/docs");
            fs::rename(&docs, dir.path().join("2/old")).unwrap();
            fs::create_dir(&docs).unwrap();
            fs::write(docs.join("a"), "release 3").unwrap();
            assert_eq!(
                bytes_of(&cache, &root, "/docs/a"),
                b"release 3",
                "{check:?}"
            );
        }
    }

    #[test]
    fn a_write_through_another_hard_link_is_seen() {
        for check in CHECKS {
            let (dir, root) = root_with(&[("a", 10)]);
            let elsewhere = tempfile::tempdir().unwrap();
            let link = elsewhere.path().join("link");
            fs::hard_link(dir.path().join("a"), &link).unwrap();
            let cache = checked_by(check);
            assert_eq!(bytes_of(&cache, &root, "/a"), vec![b'x'; 10]);
            let_the_file_clock_tick();
            fs::write(&link, [b'w'; 10]).unwrap();
            assert_eq!(bytes_of(&cache, &root, "/a"), vec![b'w'; 10], "{check:?}");
        }
    }

    #[test]
    fn the_watch_covers_an_entry_and_ignores_changes_it_does_not_depend_on() {
        let (dir, root) = root_with(&[("a", 10)]);
        let cache = checked_by(HitCheck::Watch);
        let first = in_memory(cache.lookup(&root, "/a", SystemTime::now()));
        assert!(cache.lock().entries["/a"].watched, "a hit needs no stat");
        // Beside the file, and beside the root (in the temporary folder every program uses).
        fs::write(dir.path().join("other"), "x").unwrap();
        let beside = tempfile::NamedTempFile::new().unwrap();
        let again = in_memory(cache.lookup(&root, "/a", SystemTime::now()));
        assert!(Arc::ptr_eq(&first, &again), "still a hit");
        drop(beside);
    }
    #[test]
    fn a_version_younger_than_the_settling_time_is_served_but_not_remembered() {
        let (_dir, root) = root_with(&[("a", 10)]);
        let cache = FileCache::new(FileCacheConfig {
            settle: Duration::from_secs(3600),
            ..config(10, 1000)
        });
        assert!(matches!(
            cache.lookup(&root, "/a", SystemTime::now()),
            Resolved::File(_)
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn no_entries_means_no_caching() {
        let (_dir, root) = root_with(&[("a", 10)]);
        let cache = FileCache::new(config(0, 1000));
        assert!(matches!(
            cache.lookup(&root, "/a", SystemTime::now()),
            Resolved::File(_)
        ));
        assert!(cache.is_empty());
    }
}
