//! Defines [`TestSite`]: a temporary document root with a secret planted just outside it.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::www_root;

/// A copy of the bundled site in a temporary folder, plus traps:
///
/// ```text
/// TMP/secret.txt              the secret, outside the root
/// TMP/www/…                   a copy of the repository's www/
/// TMP/www/escape.txt     -> ../secret.txt   (a symlink leading out: must be refused)
/// TMP/www/up             -> ..              (a folder symlink leading out)
/// TMP/www/inside.html    -> index.html      (a symlink that stays inside: may be served)
/// TMP/www/docs/back.html -> ../index.html   (a `..` that stays inside: may be served)
/// TMP/www/absolute.html  -> TMP/www/index.html  (absolute, though inside: refused by openat2)
/// TMP/www/out-and-back.html -> ../www/index.html (steps out and back: refused by openat2)
/// TMP/www/data.unknownext                    (no known media type)
/// TMP/www/empty/                             (a folder without index.html)
/// TMP/www/.env                                (a dotfile holding the secret: answered 404)
/// TMP/www/.well-known/security.txt            (RFC 8615: served)
/// ```
pub struct TestSite {
    dir: TempDir,
    secret: String,
}

impl TestSite {
    /// Builds the site.
    pub fn new() -> TestSite {
        let dir = tempfile::Builder::new()
            .prefix("progressive-servers-")
            .tempdir()
            .unwrap();
        let path_len = dir.path().as_os_str().len();
        let secret = format!("TOP-SECRET-{}-{path_len}", std::process::id());
        fs::write(dir.path().join("secret.txt"), &secret).unwrap();
        let root = dir.path().join("www");
        copy_tree(&www_root(), &root).unwrap();
        symlink("../secret.txt", root.join("escape.txt")).unwrap();
        symlink("..", root.join("up")).unwrap();
        symlink("index.html", root.join("inside.html")).unwrap();
        symlink("../index.html", root.join("docs/back.html")).unwrap();
        symlink(root.join("index.html"), root.join("absolute.html")).unwrap();
        symlink("../www/index.html", root.join("out-and-back.html")).unwrap();
        fs::write(root.join("data.unknownext"), b"\x00\x01binary").unwrap();
        fs::create_dir(root.join("empty")).unwrap();
        fs::write(root.join(".env"), &secret).unwrap();
        fs::create_dir(root.join(".well-known")).unwrap();
        fs::write(
            root.join(".well-known/security.txt"),
            "Contact: mailto:x@x.invalid\n",
        )
        .unwrap();
        TestSite { dir, secret }
    }

    /// `bin` as `nobody` may run it, with this site open to `nobody`, for a server started with
    /// [`Launch::as_nobody`](crate::server::Launch): when the tests run as root, a link to (or
    /// copy of) `bin` inside the site's folder, which is made searchable by everyone; the checkout
    /// may sit where `nobody` cannot reach (`/root`). Otherwise `bin` itself.
    pub fn runnable_by_nobody(&self, bin: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::Uid::effective().is_root() {
            return PathBuf::from(bin);
        }
        let name = Path::new(bin)
            .file_name()
            .expect("a binary's path names a file");
        let linked = self.outside().join(name);
        if !linked.exists() && fs::hard_link(bin, &linked).is_err() {
            fs::copy(bin, &linked).unwrap();
        }
        fs::set_permissions(&linked, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(self.outside(), fs::Permissions::from_mode(0o711)).unwrap();
        linked
    }

    /// The document root to pass as `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// The folder that holds the root and the secret.
    pub fn outside(&self) -> &Path {
        self.dir.path()
    }

    /// The secret's text: no response may ever contain it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Writes a file of `len` pseudo-random bytes at `name` under the root; returns its bytes' hash.
    pub fn add_file(&self, name: &str, len: usize) -> u64 {
        let bytes = pseudo_random_bytes(len);
        fs::write(self.root().join(name), &bytes).unwrap();
        fnv1a(&bytes)
    }
}

impl Default for TestSite {
    fn default() -> Self {
        TestSite::new()
    }
}

/// Copies the folder `from` into `to` (created if missing), recursively; symlinks are followed.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Deterministic filler (xorshift), so a large file needs no randomness crate.
pub fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// FNV-1a, enough to tell a corrupted transfer from an intact one.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}
