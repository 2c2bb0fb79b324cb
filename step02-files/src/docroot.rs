//! Defines [`DocRoot`]: maps a decoded URL path to a file under the document root, and refuses
//! every path that would leave it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The folder a server publishes. Nothing outside it is ever opened.
#[derive(Debug, Clone)]
pub struct DocRoot {
    /// Canonical (absolute, symlink-free), so that "inside" is a plain prefix test.
    root: PathBuf,
}

/// A file found under the root, opened and ready to stream.
#[derive(Debug)]
pub struct FoundFile {
    /// The open file.
    pub file: File,
    /// Its length, from the open descriptor rather than the path, so it matches what will be read.
    pub len: u64,
    /// Its media type, from the file name's extension.
    pub content_type: &'static str,
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
}

impl DocRoot {
    /// Opens `path` as a document root.
    ///
    /// # Errors
    ///
    /// Fails when `path` does not exist or is not a folder.
    pub fn open(path: &Path) -> io::Result<DocRoot> {
        let root = fs::canonicalize(path)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(DocRoot { root })
    }

    /// The root's canonical path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    // ANCHOR: resolve
    /// Finds what a percent-decoded URL path names under the root.
    pub fn resolve(&self, url_path: &str) -> Resolved {
        let Some(relative) = relative_path(url_path) else {
            return Resolved::BadPath;
        };
        let metadata = match self.walk(&relative) {
            Ok(metadata) => metadata,
            Err(refusal) => return refusal,
        };
        let (path, metadata) = if metadata.is_dir() {
            if !url_path.ends_with('/') {
                return Resolved::MissingSlash;
            }
            let index = relative.join("index.html");
            match self.walk(&index) {
                Ok(metadata) => (index, metadata),
                Err(refusal) => return refusal,
            }
        } else if url_path.ends_with('/') {
            // `/index.html/` names a folder that is not there.
            return Resolved::NotFound;
        } else {
            (relative, metadata)
        };
        if !metadata.is_file() {
            // Opening a FIFO or a device could block the server or read without end.
            return Resolved::NotFound;
        }
        open_file(&self.root.join(&path))
    }
    // ANCHOR_END: resolve

    /// Checks each component of `relative` in turn, following a symlink only when it stays inside
    /// the root, and returns the metadata of the last one.
    ///
    /// Production note: a symlink swapped in between this check and the `open` would not be seen;
    /// a server that publishes folders others can write to would use `openat2` with
    /// `RESOLVE_BENEATH` (Linux 5.6) to make the check and the open one step.
    fn walk(&self, relative: &Path) -> Result<fs::Metadata, Resolved> {
        let mut current = self.root.clone();
        let mut metadata = fs::symlink_metadata(&current).map_err(refusal)?;
        for component in relative.components() {
            current.push(component);
            metadata = fs::symlink_metadata(&current).map_err(refusal)?;
            if metadata.file_type().is_symlink() {
                let target = fs::canonicalize(&current).map_err(refusal)?;
                if !target.starts_with(&self.root) {
                    return Err(Resolved::Forbidden);
                }
                metadata = fs::metadata(&target).map_err(refusal)?;
                current = target;
            }
        }
        Ok(metadata)
    }
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

fn refusal(error: io::Error) -> Resolved {
    match error.kind() {
        io::ErrorKind::PermissionDenied => Resolved::Forbidden,
        _ => Resolved::NotFound,
    }
}

fn open_file(path: &Path) -> Resolved {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) => return refusal(error),
    };
    match file.metadata() {
        Ok(metadata) if metadata.is_file() => Resolved::File(FoundFile {
            file,
            len: metadata.len(),
            content_type: content_type(path),
        }),
        Ok(_) => Resolved::NotFound,
        Err(error) => refusal(error),
    }
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
