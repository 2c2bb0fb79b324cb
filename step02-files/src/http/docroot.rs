//! Defines [`DocRoot`]: maps a decoded URL path to a file under the document root, and refuses
//! every path that would leave it.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::http::file_cache::FileCache;
use crate::http::validators::Validators;

/// The folder a server publishes. Nothing outside it is ever opened.
#[derive(Debug, Clone)]
pub struct DocRoot {
    /// The path as the operator gave it, made absolute but with its symlinks kept: a root that
    /// is a symlink (`current -> releases/2`, swapped by a deploy) is followed anew, see
    /// [`DocRoot::tree`].
    configured: PathBuf,
    /// The folder `configured` led to when last looked at, shared by every clone.
    tree: Arc<RwLock<Arc<Tree>>>,
    /// Use the portable check-then-open even where `openat2` exists.
    portable: bool,
    /// What [`DocRoot::lookup`] remembers of earlier resolutions, if anything.
    cache: Option<Arc<FileCache>>,
}

/// The folder a root's path leads to, held open.
#[derive(Debug)]
struct Tree {
    /// Canonical (absolute, symlink-free), so that "inside" is a plain prefix test.
    canonical: PathBuf,
    /// The folder itself, held open with `O_PATH`: on Linux files are opened relative to it with
    /// `openat2`. `O_PATH` needs no read permission, so a root of mode 711 (files readable, the
    /// listing not) is served, as by any server that opens files by their full path.
    #[cfg(target_os = "linux")]
    dir: std::os::fd::OwnedFd,
    /// Device and inode, to notice that `configured` now leads elsewhere.
    id: (u64, u64),
}

impl Tree {
    fn open(path: &Path) -> io::Result<Tree> {
        let canonical = fs::canonicalize(path)?;
        let metadata = fs::metadata(&canonical)?;
        if !metadata.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        #[cfg(target_os = "linux")]
        let dir = {
            use nix::fcntl::{OFlag, open};
            use nix::sys::stat::Mode;
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            open(&canonical, flags, Mode::empty()).map_err(io::Error::from)?
        };
        Ok(Tree {
            #[cfg(target_os = "linux")]
            dir,
            id: (metadata.dev(), metadata.ino()),
            canonical,
        })
    }
}

/// A file found under the root, ready to send.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// Its bytes, or the open file that holds them.
    pub content: FileContent,
    /// Its length, from the open descriptor rather than the path, so it matches what will be read.
    pub len: u64,
    /// Its media type, from the file name's extension.
    pub content_type: &'static str,
    /// What identifies this version of it: `ETag` and `Last-Modified`.
    pub validators: Validators,
    /// What tells this version of the file from any other, to the nanosecond.
    pub identity: Identity,
}

// ANCHOR: identity
/// Which file, and which version of it: what the open-file cache compares on every hit.
///
/// A file replaced by rename has another inode; one written in place, truncated or appended to
/// has another size or change time (`ctime` moves with every write, and with every change of
/// mode or owner, and no program can set it back, unlike `mtime`, which `touch -d` and `tar`
/// do). What cannot be told apart is two writes of the same size within one tick of the
/// kernel's file clock: see [`Identity::settled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    device: u64,
    inode: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}
// ANCHOR_END: identity

/// How long after a change a file's identity is trusted to show the next change. Linux stamps
/// `ctime` from a clock that ticks once a jiffy (1 to 10 ms) unless someone looked at the
/// timestamp since the last change (multigrain timestamps, Linux 6.13, on ext4, XFS, Btrfs and
/// tmpfs); two ticks is beyond both. Git calls the same problem a "racily clean" index entry.
pub const SETTLE: Duration = Duration::from_millis(20);

impl Identity {
    /// The identity of the file `metadata` describes.
    pub fn of(metadata: &fs::Metadata) -> Identity {
        Identity {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    /// Whether the last change is at least `settle` older than `now`, so that a change after
    /// `now` is sure to show as another identity. A file changed later than `now` (a clock set
    /// back) has not settled either.
    pub fn settled(&self, settle: Duration, now: SystemTime) -> bool {
        let (seconds, nanos) = self.changed;
        let Ok(seconds) = u64::try_from(seconds) else {
            return true;
        };
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(seconds, u32::try_from(nanos).unwrap_or(0).min(999_999_999));
        changed
            .checked_add(settle)
            .is_some_and(|settled_at| settled_at <= now)
    }
}

/// Where a found file's bytes are.
#[derive(Debug, Clone)]
pub enum FileContent {
    /// In the open file, shared (the open-file cache hands one descriptor to many responses).
    Open(Arc<File>),
    /// In memory: a small file the open-file cache read once.
    InMemory(Arc<[u8]>),
}

impl FoundFile {
    /// The open file, unless the bytes are held in memory instead.
    pub fn file(&self) -> Option<&File> {
        match &self.content {
            FileContent::Open(file) => Some(file),
            FileContent::InMemory(_) => None,
        }
    }
}

/// What a URL path names.
#[derive(Debug)]
pub enum Resolved {
    /// A regular file (for a folder, its `index.html`).
    File(FoundFile),
    /// A folder named without its trailing slash: redirect to the same path with a slash, so
    /// that relative links inside its index page resolve against the folder.
    MissingSlash,
    /// Nothing there, or nothing that may be served (a folder without `index.html`, a device).
    NotFound,
    /// Something that exists but is not to be served: a symlink leading out of the root, or a file
    /// the server may not read.
    Forbidden,
    /// A path that no honest client sends: a `..` segment, a backslash.
    BadPath,
    /// The file could not be opened for want of a descriptor or memory (`EMFILE`, `ENFILE`,
    /// `ENOMEM`): the server's trouble, not the client's, and it may pass.
    Unavailable,
}

impl DocRoot {
    /// Opens `path` as a document root.
    ///
    /// # Errors
    ///
    /// Fails when `path` does not exist or is not a folder.
    pub fn open(path: &Path) -> io::Result<DocRoot> {
        let tree = Tree::open(path)?;
        Ok(DocRoot {
            configured: std::path::absolute(path)?,
            tree: Arc::new(RwLock::new(Arc::new(tree))),
            portable: false,
            cache: None,
        })
    }

    /// Opens `path` as a document root that always uses the portable resolution (a check of each
    /// component, then `open`), even on Linux. For tests, which run both ways.
    ///
    /// # Errors
    ///
    /// As [`DocRoot::open`].
    pub fn open_portable(path: &Path) -> io::Result<DocRoot> {
        Ok(DocRoot {
            portable: true,
            ..DocRoot::open(path)?
        })
    }

    /// This root, answering [`DocRoot::lookup`] through `cache`. Clones share the cache.
    pub fn with_cache(self, cache: FileCache) -> DocRoot {
        DocRoot {
            cache: Some(Arc::new(cache)),
            ..self
        }
    }

    /// This root with a cache of its own, empty, bounded as this one's is: for a shell that
    /// wants no cache shared between its event loops (as nginx's workers share none).
    pub fn with_own_cache(&self) -> DocRoot {
        match &self.cache {
            Some(cache) => self.clone().with_cache(FileCache::new(cache.config())),
            None => self.clone(),
        }
    }

    /// The open-file cache, if this root has one.
    pub fn cache(&self) -> Option<&FileCache> {
        self.cache.as_deref()
    }

    // ANCHOR: lookup
    /// What a percent-decoded URL path names, through the open-file cache when there is one,
    /// at `now`. The cache answers only with a file it has just checked is still the one there,
    /// so the answer is the same as [`DocRoot::resolve`]'s, without its system calls.
    pub fn lookup(&self, url_path: &str, now: SystemTime) -> Resolved {
        match &self.cache {
            Some(cache) => cache.lookup(self, url_path, now),
            None => self.resolve(url_path),
        }
    }
    // ANCHOR_END: lookup

    /// Where the file a URL path names would be, through the root's path as configured (so
    /// through a root symlink swapped since): what the cache checks a hit against. `None` for a
    /// path [`DocRoot::resolve`] refuses.
    pub fn path_of(&self, url_path: &str) -> Option<PathBuf> {
        let relative = relative_path(url_path)?;
        let path = self.configured.join(relative);
        Some(if url_path.ends_with('/') {
            path.join("index.html")
        } else {
            path
        })
    }

    // ANCHOR: tree
    /// The folder the root's path leads to now. A root given as a symlink that a deploy has
    /// since pointed elsewhere (`ln -sfn releases/2 current.tmp && mv -T current.tmp current`)
    /// is opened anew, so the next request is served from the new release; a root that is gone
    /// for a moment keeps serving the folder it was. One `stat` per resolution.
    fn tree(&self) -> Arc<Tree> {
        let current = Arc::clone(&self.tree.read().unwrap_or_else(PoisonError::into_inner));
        let moved = fs::metadata(&self.configured)
            .is_ok_and(|now| now.is_dir() && (now.dev(), now.ino()) != current.id);
        if !moved {
            return current;
        }
        match Tree::open(&self.configured) {
            Ok(tree) => {
                let tree = Arc::new(tree);
                *self.tree.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&tree);
                tree
            }
            Err(_) => current,
        }
    }
    // ANCHOR_END: tree

    // ANCHOR: resolve
    /// Finds what a percent-decoded URL path names under the root, now: no cache.
    pub fn resolve(&self, url_path: &str) -> Resolved {
        let Some(relative) = relative_path(url_path) else {
            return Resolved::BadPath;
        };
        if names_a_hidden_file(&relative) {
            return Resolved::NotFound;
        }
        let tree = self.tree();
        let opened = Opener {
            tree: &tree,
            portable: self.portable,
        };
        if url_path.ends_with('/') {
            // A folder's page, opened directly: the folder itself is never opened, so it need not
            // be readable (a root of mode 711), and `/index.html/`, a folder that is not there,
            // fails as `ENOTDIR`.
            let index = relative.join("index.html");
            return match opened.open_beneath(&index) {
                Ok((file, metadata)) => found(file, &metadata, &index),
                Err(refusal) => refusal,
            };
        }
        match opened.open_beneath(&relative) {
            Ok((_, metadata)) if metadata.is_dir() => Resolved::MissingSlash,
            Ok((file, metadata)) => found(file, &metadata, &relative),
            Err(refusal) => refusal,
        }
    }
    // ANCHOR_END: resolve
}

/// Opens files beneath one [`Tree`]: the root as it was when the resolution began.
struct Opener<'a> {
    tree: &'a Tree,
    portable: bool,
}

impl Opener<'_> {
    // ANCHOR: open_beneath
    /// Opens `relative` under the root, refusing any path that would resolve outside it.
    ///
    /// On Linux, `openat2` with `RESOLVE_BENEATH` makes the kernel do the refusing, in the same
    /// step as the open: symlinks are followed only while they stay beneath the root, and there is
    /// no window between a check and the open for someone to swap a symlink in. Where `openat2`
    /// is missing (another OS, a kernel before 5.6, a seccomp filter), [`DocRoot::walk`] checks each
    /// component first.
    // The error is a refusal, never the large `Resolved::File`; boxing would not make it smaller.
    #[allow(clippy::result_large_err)]
    fn open_beneath(&self, relative: &Path) -> Result<(File, fs::Metadata), Resolved> {
        #[cfg(target_os = "linux")]
        if !self.portable {
            if let Some(opened) = self.openat2(relative) {
                let file = opened?;
                let metadata = file.metadata().map_err(refusal)?;
                return Ok((file, metadata));
            }
        }
        let metadata = self.walk(relative)?;
        if !metadata.is_file() && !metadata.is_dir() {
            // Opening a FIFO would block the server until someone writes to it.
            return Err(Resolved::NotFound);
        }
        let file = File::open(self.tree.canonical.join(relative)).map_err(refusal)?;
        Ok((file, metadata))
    }
    // ANCHOR_END: open_beneath

    /// `openat2(root, relative, RESOLVE_BENEATH)`; `None` when the system does not offer it.
    #[cfg(target_os = "linux")]
    fn openat2(&self, relative: &Path) -> Option<Result<File, Resolved>> {
        use nix::errno::Errno;
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
        use std::sync::atomic::{AtomicBool, Ordering};

        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let path = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        // O_NONBLOCK: opening a FIFO must not wait for a writer. It changes nothing for reads of
        // regular files.
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(&self.tree.dir, path, how) {
            Ok(fd) => Some(Ok(File::from(fd))),
            Err(Errno::ENOSYS | Errno::E2BIG) => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                None
            }
            // EXDEV: the path leads out of the root. ELOOP: too many symlinks, or a /proc magic link.
            Err(errno) if is_shortage(errno as i32) => Some(Err(Resolved::Unavailable)),
            Err(Errno::EXDEV | Errno::ELOOP | Errno::EACCES | Errno::EPERM) => {
                Some(Err(Resolved::Forbidden))
            }
            Err(_) => Some(Err(Resolved::NotFound)),
        }
    }

    /// Checks each component of `relative` in turn, following a symlink only when it stays inside
    /// the root, and returns the metadata of the last one. The portable fallback of
    /// [`DocRoot::open_beneath`].
    ///
    /// Production note: a symlink swapped in between this check and the `open` that follows would
    /// not be seen; that race is why Linux servers use `openat2`.
    #[allow(clippy::result_large_err)]
    fn walk(&self, relative: &Path) -> Result<fs::Metadata, Resolved> {
        let root = &self.tree.canonical;
        let mut current = root.clone();
        let mut metadata = fs::symlink_metadata(&current).map_err(refusal)?;
        for component in relative.components() {
            current.push(component);
            metadata = fs::symlink_metadata(&current).map_err(refusal)?;
            if metadata.file_type().is_symlink() {
                let target = fs::canonicalize(&current).map_err(refusal)?;
                if !target.starts_with(root) {
                    return Err(Resolved::Forbidden);
                }
                metadata = fs::metadata(&target).map_err(refusal)?;
                current = target;
            }
        }
        Ok(metadata)
    }
}

/// A regular file is served; anything else (a FIFO, a device, a folder as `index.html`) is not.
fn found(file: File, metadata: &fs::Metadata, path: &Path) -> Resolved {
    if !metadata.is_file() {
        return Resolved::NotFound;
    }
    Resolved::File(FoundFile {
        content: FileContent::Open(Arc::new(file)),
        len: metadata.len(),
        content_type: content_type(path),
        validators: Validators::of(metadata),
        identity: Identity::of(metadata),
    })
}

// ANCHOR: relative_path
/// Turns `/a/b/c.html` into `a/b/c.html`, refusing what could climb out of the root.
///
/// `..` is refused rather than resolved: browsers and curl remove dot-segments before sending
/// (RFC 3986 §5.2.4), so a `..` that arrives was put there on purpose. A backslash is a path
/// separator on Windows and has no business in a Unix file name requested over HTTP.
fn relative_path(url_path: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for segment in url_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            _ if segment.contains(['\\', '\0']) => return None,
            _ => relative.push(segment),
        }
    }
    Some(relative)
}
// ANCHOR_END: relative_path

/// Whether a component of `relative` is a dotfile or dot-folder (`.env`, `.git/`, `.htpasswd`),
/// other than `.well-known` (RFC 8615). Such names are left in a site's folder by tools, not
/// published, and often hold secrets; they are answered as missing, as if they were not there.
fn names_a_hidden_file(relative: &Path) -> bool {
    relative.components().any(|component| {
        let name = component.as_os_str().as_encoded_bytes();
        name.starts_with(b".") && name != b".well-known"
    })
}

fn refusal(error: io::Error) -> Resolved {
    if error.raw_os_error().is_some_and(is_shortage) {
        return Resolved::Unavailable;
    }
    match error.kind() {
        io::ErrorKind::PermissionDenied => Resolved::Forbidden,
        _ => Resolved::NotFound,
    }
}

/// `EMFILE`, `ENFILE`, `ENOMEM`: out of descriptors or memory, not a fact about the file.
fn is_shortage(errno: i32) -> bool {
    use nix::errno::Errno;
    matches!(
        Errno::from_raw(errno),
        Errno::EMFILE | Errno::ENFILE | Errno::ENOMEM
    )
}

/// The `Content-Type` for a file name. Text types say they are UTF-8, so that a browser does not
/// guess the encoding of a page with non-ASCII letters.
pub fn content_type(path: &Path) -> &'static str {
    let guess = mime_guess::from_path(path).first_raw();
    match guess {
        Some("text/html") => "text/html; charset=utf-8",
        Some("text/css") => "text/css; charset=utf-8",
        Some("text/plain") => "text/plain; charset=utf-8",
        Some("text/markdown") => "text/markdown; charset=utf-8",
        Some("application/javascript" | "text/javascript") => "text/javascript; charset=utf-8",
        Some("application/json") => "application/json",
        Some(other) => other,
        None => "application/octet-stream",
    }
}
