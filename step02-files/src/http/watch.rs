//! Defines [`Watch`]: the kernel's word that nothing a cached file depends on has changed, so
//! that a hit of the open-file cache costs one `read` of an empty inotify queue (about a third of
//! a `stat` that walks the path, measured on this project's machine) and is still never stale.
//!
//! inotify queues an event before the system call that made the change returns. So a change
//! made before a request arrived is in the queue when the server reads that request, and the
//! cache drains the queue before it answers from memory. What a cached path depends on is
//! watched: the file itself (so a write through another hard link shows too), and every folder
//! from `/` down to it, along the path as configured and along the real path it leads to (so a
//! renamed folder, a swapped symlink or a file replaced by `rename` shows), each folder for
//! the one name in it that the path goes through (a temporary file created in `/tmp` changes
//! nothing cached).
//!
//! What inotify cannot see, the cache checks by `stat` instead: files on network filesystems,
//! changed by another machine. Two changes go unseen either way, as they do for nginx: a mount
//! over a folder on the path, and a write through a shared memory map, which shows only when the
//! kernel writes the page back.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::statfs::{FsType, statfs};

/// inotify watches on what the cached paths go through, in one queue of this process.
#[derive(Debug)]
pub struct Watch {
    inotify: Inotify,
    /// For each watched folder, the names in it that a cached path goes through.
    names: HashMap<WatchDescriptor, HashSet<OsString>>,
    /// The watched files: any event on one is a change.
    files: HashSet<WatchDescriptor>,
    /// The folders already watched, by path, so that the next file in a folder costs no call.
    folders: HashMap<PathBuf, WatchDescriptor>,
    /// [`forks`] when the queue was made: a forked child shares the queue with its parent, and
    /// must not drain the events the parent needs.
    forks: usize,
}

const FILE_EVENTS: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);

const FOLDER_EVENTS: AddWatchFlags = FILE_EVENTS
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);

impl Watch {
    /// A new, empty queue; `None` if the kernel refuses one (`fs.inotify.max_user_instances`
    /// reached), and the cache then checks by `stat`.
    pub fn new() -> Option<Watch> {
        let forks = forks();
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        Some(Watch {
            inotify,
            names: HashMap::new(),
            files: HashSet::new(),
            folders: HashMap::new(),
            forks,
        })
    }

    /// Whether this queue was made by the process using it, not inherited through `fork`.
    pub fn is_own(&self) -> bool {
        self.forks == forks()
    }

    /// Watches everything `path` depends on; `false` if some watch was refused (the path is on
    /// a network filesystem, `fs.inotify.max_user_watches` is reached, a folder is not
    /// readable), and the entry must then be checked by `stat`.
    pub fn cover(&mut self, path: &Path) -> bool {
        let Ok(path) = std::path::absolute(path) else {
            return false;
        };
        let Ok(real) = fs::canonicalize(&path) else {
            return false;
        };
        if !seen_by_inotify(&real) {
            return false;
        }
        self.watch_file(&real) && self.watch_folders(&path) && self.watch_folders(&real)
    }

    /// Drains the queue: `true` if anything watched may have changed since the last drain.
    pub fn saw_change(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.inotify.read_events() {
                Ok(events) => {
                    changed |= events.iter().any(|event| {
                        event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                            || self.files.contains(&event.wd)
                            || match (&event.name, self.names.get(&event.wd)) {
                                (Some(name), Some(names)) => names.contains(name),
                                // The folder itself, or a watch not known: count it.
                                _ => true,
                            }
                    });
                }
                Err(Errno::EAGAIN) => return changed,
                Err(Errno::EINTR) => {}
                Err(_) => return true,
            }
        }
    }

    fn watch_file(&mut self, real: &Path) -> bool {
        match self.inotify.add_watch(real, FILE_EVENTS) {
            Ok(wd) => {
                self.files.insert(wd);
                true
            }
            Err(_) => false,
        }
    }

    /// Watches each folder on `path` for the name in it that `path` goes through.
    fn watch_folders(&mut self, path: &Path) -> bool {
        let mut folder = PathBuf::new();
        for component in path.components() {
            let name = match component {
                Component::Normal(name) => name,
                // `..` is resolved by the real path, which is watched too.
                Component::ParentDir => return true,
                _ => {
                    folder.push(component);
                    continue;
                }
            };
            let wd = match self.folders.get(&folder) {
                Some(wd) => *wd,
                None => match self.inotify.add_watch(&folder, FOLDER_EVENTS) {
                    Ok(wd) => {
                        self.folders.insert(folder.clone(), wd);
                        wd
                    }
                    Err(_) => return false,
                },
            };
            self.names.entry(wd).or_default().insert(name.to_owned());
            folder.push(name);
        }
        true
    }
}

/// Whether a change to `path` is sure to be queued by this kernel: not when another machine
/// makes it, on a network filesystem (or FUSE, which may be one).
fn seen_by_inotify(path: &Path) -> bool {
    const REMOTE: [i64; 10] = [
        0x6969,      // NFS
        0x517B,      // SMB
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x6573_5546, // FUSE (sshfs, virtiofs, …)
        0x0102_1997, // 9P (WSL, QEMU shares)
        0x00C3_6400, // Ceph
        0x5346_414F, // AFS
        0x0116_1970, // GFS2
        0x7461_636F, // OCFS2
    ];
    match statfs(path) {
        Ok(fs) => {
            let FsType(kind) = fs.filesystem_type();
            !REMOTE.contains(&kind)
        }
        Err(_) => false,
    }
}

static FORKS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// How many times this process's ancestry has forked since it began counting: a number that
/// differs in a child from what its parent had when it forked.
fn forks() -> usize {
    static COUNTING: Once = Once::new();
    COUNTING.call_once(|| {
        // SAFETY: the handler only increments an atomic integer, which is async-signal-safe, as a
        // handler run in the child of a multi-threaded process must be.
        unsafe { nix::libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
    });
    FORKS.load(Ordering::Relaxed)
}
