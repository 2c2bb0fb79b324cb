//! What is measured and how it is built and started: the step configurations, one `cargo build` for
//! all of them, and each server started through testkit's harness ([`testkit::Server`]: its own
//! process group, `127.0.0.1:0`, the `Listening on` line, `/proc`, stop and reap).
//!
//! Every step follows the project's conventions, which is all this module relies on: `--addr`,
//! `--root`, `--quiet`, a first stdout line `Listening on http://ADDR/`, and a clean exit on `SIGTERM`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
pub use testkit::Server;
use testkit::server::{Launch, StartError};

/// One server configuration to measure: a step binary with its model's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    /// The name shown in tables and charts.
    pub name: &'static str,
    /// The cargo package (and binary) name.
    pub package: &'static str,
    /// Flags besides `--addr`, `--root` and `--quiet` ([`CORES`] stands for the number of cores).
    pub args: &'static [&'static str],
    /// Serves one connection at a time: `c10k` and long keep-alive runs only show it failing.
    pub sequential: bool,
    /// Spends one process or thread per connection: `c10k` caps its connections (see [`C10K_CAP`]).
    pub per_connection_task: bool,
}

/// The most connections `c10k` opens to a server that spends a process or a thread per connection:
/// 10,000 processes or threads would hit this machine's `pid_max` (32,768, shared with everything
/// else running) and gigabytes of memory. `c10k --no-caps` lifts it.
pub const C10K_CAP: usize = 2000;

/// An argument that [`start`] replaces with the number of CPU cores this process may use.
pub const CORES: &str = "{cores}";

const fn sequential(spec: ServerSpec) -> ServerSpec {
    ServerSpec {
        sequential: true,
        ..spec
    }
}

const fn per_connection(spec: ServerSpec) -> ServerSpec {
    ServerSpec {
        per_connection_task: true,
        ..spec
    }
}

const fn spec(
    name: &'static str,
    package: &'static str,
    args: &'static [&'static str],
) -> ServerSpec {
    ServerSpec {
        name,
        package,
        args,
        sequential: false,
        per_connection_task: false,
    }
}

// ANCHOR: configurations
/// Every configuration `compare` measures, in the book's order. Adjust here: one line each.
pub const CONFIGURATIONS: &[ServerSpec] = &[
    sequential(spec("step01", "step01-hello", &[])),
    sequential(spec("step02", "step02-files", &[])),
    per_connection(spec("step03-fork", "step03-process", &[])),
    spec("step03-prefork", "step03-process", &["--prefork", "4"]),
    per_connection(spec("step04-spawn", "step04-thread", &[])),
    spec("step04-pool", "step04-thread", &["--pool", "8"]),
    spec("step05", "step05-coroutine", &["--workers", CORES]),
    spec("step06-spin", "step06-nonblocking", &[]),
    spec("step06-nap", "step06-nonblocking", &["--nap", "100"]),
    spec("step07-1", "step07-epoll", &["--threads", "1"]),
    spec("step07-per-core", "step07-epoll", &["--threads", CORES]),
    // The open-file cache checking each hit by `stat` instead of inotify: what the watch saves.
    spec(
        "step07-1-stat",
        "step07-epoll",
        &["--threads", "1", "--file-cache-check", "stat"],
    ),
    // nginx's process model: 8 worker processes, each with its own descriptor limit (C100K).
    spec("step07-workers", "step07-epoll", &["--workers", "8"]),
    // The same with one listener watched with EPOLLEXCLUSIVE instead of SO_REUSEPORT.
    spec(
        "step07-workers-exclusive",
        "step07-epoll",
        &["--workers", "8", "--share-port", "exclusive"],
    ),
    // Four workers, each way of sharing the port: `c10k --stop-one-worker` stops one of four.
    spec("step07-workers-4", "step07-epoll", &["--workers", "4"]),
    spec(
        "step07-workers-4-exclusive",
        "step07-epoll",
        &["--workers", "4", "--share-port", "exclusive"],
    ),
    spec("step08-1", "step08-uring", &["--threads", "1"]),
    spec("step08-per-core", "step08-uring", &["--threads", CORES]),
    // Step 8's ladder, one tuned feature off per rung (one ring each).
    spec("step08-submit-each", "step08-uring", &["--submit-each"]),
    spec("step08-no-multishot", "step08-uring", &["--no-multishot"]),
    spec(
        "step08-no-buffer-ring",
        "step08-uring",
        &["--no-buffer-ring"],
    ),
];
// ANCHOR_END: configurations

/// Looks configurations up by name (`step07-1`) or by package or step prefix (`step07` gives every
/// step07 configuration).
///
/// # Errors
///
/// When no configuration matches.
pub fn select(names: &[String]) -> anyhow::Result<Vec<ServerSpec>> {
    if names.is_empty() {
        return Ok(CONFIGURATIONS.to_vec());
    }
    let selected: Vec<ServerSpec> = CONFIGURATIONS
        .iter()
        .filter(|spec| {
            names.iter().any(|name| {
                spec.name == name
                    || spec.package == name
                    || spec.name.split('-').next() == Some(name.as_str())
            })
        })
        .copied()
        .collect();
    anyhow::ensure!(!selected.is_empty(), "no configuration matches {names:?}");
    Ok(selected)
}

/// The workspace this crate was built from (where `cargo build` runs and `www/` lives).
#[must_use]
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The step executables by package name, and why the others are missing.
#[derive(Debug, Default)]
pub struct Binaries {
    built: HashMap<String, PathBuf>,
    failure: Option<String>,
}

impl Binaries {
    /// The executable of `package`.
    ///
    /// # Errors
    ///
    /// When it did not build.
    pub fn get(&self, package: &str) -> anyhow::Result<&Path> {
        let why = || self.failure.as_deref().unwrap_or("no executable");
        let built = self.built.get(package).map(PathBuf::as_path);
        built.with_context(|| format!("not built: {}", why()))
    }
}

/// Builds the workspace in release mode with one `cargo build --release --workspace --keep-going`:
/// after the README's `cargo build --release --workspace` everything is fresh and this takes a second
/// (building package by package would unify features differently and rebuild every step). A step that
/// does not build is reported by [`Binaries::get`]; the others still run.
#[must_use]
pub fn build() -> Binaries {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release --workspace");
    let mut command = Command::new(&cargo);
    // Under `cargo run`, bench inherits the variables cargo sets for a package (CARGO_MANIFEST_DIR,
    // CARGO_PKG_NAME…). Build scripts that watch them (ring's does) would see them change and rebuild
    // their crates, a minute here, after every switch between `cargo run -p bench` and the binary.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&&*name)
        {
            command.env_remove(&*name);
        }
    }
    let output = command
        .current_dir(workspace_root())
        .args(["build", "--release", "--workspace", "--keep-going"])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output();
    match output {
        Ok(output) => Binaries {
            built: testkit::server::cargo_executables(&output.stdout),
            failure: (!output.status.success())
                .then(|| format!("cargo build failed ({})", output.status)),
        },
        Err(error) => Binaries {
            built: HashMap::new(),
            failure: Some(format!("cannot run cargo: {error}")),
        },
    }
}

/// Starts `binary --addr 127.0.0.1:0 --quiet --root ROOT ARGS…` in its own process group and waits for
/// its `Listening on http://ADDR/` line.
///
/// # Errors
///
/// A one-line reason when the binary cannot start, exits, or does not announce an address in time.
pub fn start(binary: &Path, root: &Path, args: &[&str]) -> Result<Server, StartError> {
    let root = root.display().to_string();
    let all: Vec<String> = ["--addr", "127.0.0.1:0", "--quiet", "--root", &root]
        .iter()
        .chain(args)
        .map(|&arg| match arg {
            CORES => cores(),
            _ => arg.to_owned(),
        })
        .collect();
    Server::spawn(binary, &all, &Launch::default())
}

/// Starts nginx with `workers` worker processes serving `root` on a free loopback port, in the
/// foreground under the same harness (`bench/nginx/nginx.sh conf` installs it if needed and writes its
/// configuration: the tuning its documentation recommends for static files).
///
/// # Errors
///
/// A one-line reason when the script fails (no nginx and no way to install it…) or nginx does not start.
pub fn start_nginx(workers: u32, root: &Path) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (port_number, workers) = (port.port().to_string(), workers.to_string());
    let output = Command::new("bash")
        .arg(workspace_root().join("bench/nginx/nginx.sh"))
        .args(["conf", "--port", &port_number])
        .args(["--workers", &workers])
        .arg("--root")
        .arg(root)
        .output()
        .context("cannot run nginx.sh")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some((nginx, prefix)) = stdout
        .trim()
        .split_once(' ')
        .filter(|_| output.status.success())
    else {
        let reason = String::from_utf8_lossy(&output.stderr);
        anyhow::bail!(
            "nginx.sh failed: {}",
            reason.trim().lines().last().unwrap_or("")
        );
    };
    let conf = format!("{prefix}/nginx.conf");
    let args = ["-p", prefix, "-c", &conf, "-g", "daemon off;"];
    let launch = Launch {
        silent_on: Some(port),
        ..Launch::default()
    };
    Ok(Server::spawn(nginx, &args, &launch)?)
}

fn cores() -> String {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_configurations() {
        let names = |name: &str| {
            let selection = select(&[name.to_owned()]).unwrap();
            selection.iter().map(|s| s.name).collect::<Vec<_>>()
        };
        assert_eq!(
            names("step07"),
            [
                "step07-1",
                "step07-per-core",
                "step07-1-stat",
                "step07-workers",
                "step07-workers-exclusive",
                "step07-workers-4",
                "step07-workers-4-exclusive"
            ]
        );
        assert_eq!(names("step04-pool"), ["step04-pool"]);
        assert_eq!(names("step08-1"), ["step08-1"]);
        assert_eq!(names("step08-uring").len(), 5);
        assert_eq!(names("step02-files"), ["step02"]);
        assert_eq!(select(&[]).unwrap().len(), CONFIGURATIONS.len());
        assert!(select(&["step9".into()]).is_err());
    }

    #[test]
    fn reports_a_binary_that_exits_at_once() {
        let error = start(Path::new("/bin/true"), Path::new("/"), &[])
            .err()
            .unwrap();
        let error = error.to_string();
        assert!(error.contains("exited before listening"), "{error}");
    }

    #[test]
    fn a_package_that_did_not_build_says_why() {
        let binaries = Binaries {
            built: HashMap::from([("step01-hello".to_owned(), PathBuf::from("/t/step01-hello"))]),
            failure: Some("cargo build failed".into()),
        };
        assert!(binaries.get("step01-hello").is_ok());
        let error = binaries.get("step09").unwrap_err().to_string();
        assert!(error.contains("cargo build failed"), "{error}");
    }
}
