//! The document root every measured server serves: a temporary copy of the repository's `www/` plus
//! `big.bin`, a 1 MiB file for the large-file scenarios. It is removed when dropped.

use std::fs;
use std::io;
use std::path::Path;

use crate::server::workspace_root;

/// The small page of the scenarios.
pub const SMALL_PATH: &str = "/index.html";
/// The 1 MiB file of the scenarios.
pub const BIG_PATH: &str = "/big.bin";
/// Size of [`BIG_PATH`].
pub const BIG_BYTES: usize = 1024 * 1024;

/// A temporary document root.
#[derive(Debug)]
pub struct DocRoot(tempfile::TempDir);

impl DocRoot {
    /// Copies `www/` (or writes a minimal `index.html` if the checkout has none) and adds `big.bin`.
    ///
    /// # Errors
    ///
    /// When the temporary directory cannot be written.
    pub fn create() -> io::Result<Self> {
        let root = Self(tempfile::Builder::new().prefix("bench-root-").tempdir()?);
        let www = workspace_root().join("www");
        if www.is_dir() {
            testkit::site::copy_tree(&www, root.path())?;
        }
        let index = root.path().join(SMALL_PATH.trim_start_matches('/'));
        if !index.exists() {
            fs::write(
                index,
                "<!doctype html>\n<title>bench</title>\n<p>Hello from bench.</p>\n",
            )?;
        }
        // A fixed, incompressible-looking pattern (not zeros) so no layer can shortcut it.
        let big = testkit::site::pseudo_random_bytes(BIG_BYTES);
        fs::write(root.path().join(BIG_PATH.trim_start_matches('/')), big)?;
        Ok(root)
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_removes_the_root() {
        let root = DocRoot::create().unwrap();
        let path = root.path().to_path_buf();
        assert!(path.join("index.html").is_file());
        assert_eq!(
            fs::metadata(path.join("big.bin")).unwrap().len(),
            BIG_BYTES as u64
        );
        drop(root);
        assert!(!path.exists());
    }
}
