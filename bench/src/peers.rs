//! The production servers measured beside the steps (`--peer NAME[:N]`): each one is a model of the
//! book running at work — Apache httpd's `prefork` MPM is step 3's pre-forked pool, its `worker` MPM
//! step 4's pool of threads, `event` a pool with an event loop in front, Caddy a goroutine per
//! connection on a few threads like step 5, lighttpd one event loop like step 7, nginx and h2o a loop
//! per core.
//!
//! Each is started by testkit's harness in the foreground on a port chosen here, from a private
//! prefix under `TMPDIR` that holds the configuration rendered from `bench/peers/NAME.conf` (nginx
//! keeps its own script, `bench/nginx/nginx.sh`), serving the same document root as the steps. A peer
//! that is not installed is refused with one line saying which Debian package has it.

use std::fmt::{self, Write as _};
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use testkit::server::Launch;

use crate::server::{self, Server};

/// What is known of one production server.
#[derive(Debug, PartialEq, Eq)]
pub struct PeerKind {
    /// The name `--peer` takes.
    pub name: &'static str,
    /// The model, in the book's words.
    pub model: &'static str,
    /// The step configuration that runs the same model with one worker, and with several.
    counterpart: (&'static str, &'static str),
    /// What `:N` counts (plural: `threads`).
    pub unit: &'static str,
    /// `N` when `--peer NAME` gives none (0: the number of cores).
    default_workers: u32,
    /// The executable, first found of these.
    binaries: &'static [&'static str],
    /// The Debian package that has it.
    pub package: &'static str,
    /// The configuration template, `bench/peers/FILE` (none for nginx: `bench/nginx/nginx.sh`).
    pub config: Option<(&'static str, &'static str)>,
}

const APACHE: &str = include_str!("../peers/apache.conf");
const APACHE_BINARIES: &[&str] = &["/usr/sbin/apache2", "/usr/sbin/httpd"];

// ANCHOR: peers
/// Every peer `--peer` knows, in the book's order of the models they run.
pub const PEERS: &[PeerKind] = &[
    PeerKind {
        name: "apache-prefork",
        model: "pre-forked processes, one connection each",
        counterpart: ("step03-prefork", "step03-prefork"),
        unit: "processes",
        default_workers: 4,
        binaries: APACHE_BINARIES,
        package: "apache2",
        config: Some(("apache.conf", APACHE)),
    },
    PeerKind {
        name: "apache-worker",
        model: "a pool of threads, one connection each",
        counterpart: ("step04-pool", "step04-pool"),
        unit: "threads",
        default_workers: 8,
        binaries: APACHE_BINARIES,
        package: "apache2",
        config: Some(("apache.conf", APACHE)),
    },
    PeerKind {
        name: "apache-event",
        model: "a pool of threads behind an event loop that holds idle keep-alive connections",
        counterpart: ("step04-pool", "step04-pool"),
        unit: "threads",
        default_workers: 8,
        binaries: APACHE_BINARIES,
        package: "apache2",
        config: Some(("apache.conf", APACHE)),
    },
    PeerKind {
        name: "caddy",
        model: "a goroutine per connection on N threads (Go's scheduler)",
        counterpart: ("step05", "step05"),
        unit: "threads",
        default_workers: 0,
        binaries: &["/usr/bin/caddy"],
        package: "caddy",
        config: Some(("caddy.conf", include_str!("../peers/caddy.conf"))),
    },
    PeerKind {
        name: "lighttpd",
        model: "one event loop (N > 1: that many forked copies)",
        counterpart: ("step07-1", "step07-per-core"),
        unit: "processes",
        default_workers: 1,
        binaries: &["/usr/sbin/lighttpd"],
        package: "lighttpd",
        config: Some(("lighttpd.conf", include_str!("../peers/lighttpd.conf"))),
    },
    PeerKind {
        name: "nginx",
        model: "an event loop per worker process",
        counterpart: ("step07-1", "step07-per-core"),
        unit: "workers",
        default_workers: 1,
        binaries: &["/usr/sbin/nginx"],
        package: "nginx-light",
        config: None,
    },
    PeerKind {
        name: "h2o",
        model: "an event loop per thread",
        counterpart: ("step07-1", "step07-per-core"),
        unit: "threads",
        default_workers: 1,
        binaries: &["/usr/bin/h2o", "/usr/sbin/h2o"],
        package: "h2o",
        config: Some(("h2o.conf", include_str!("../peers/h2o.conf"))),
    },
];
// ANCHOR_END: peers

/// A peer with its number of workers (processes or threads): `--peer h2o:2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Which server.
    pub kind: &'static PeerKind,
    /// How many processes or threads it runs.
    pub workers: u32,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.name, self.workers)
    }
}

impl Peer {
    /// Parses `NAME` or `NAME:N` (N processes or threads; the peer's default without it).
    ///
    /// # Errors
    ///
    /// When the name is not a known peer or N is not a positive number.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (name, workers) = match text.split_once(':') {
            Some((name, workers)) => (name, Some(workers)),
            None => (text, None),
        };
        let kind = PEERS.iter().find(|kind| kind.name == name);
        let known = || PEERS.iter().map(|kind| kind.name).collect::<Vec<_>>();
        let kind =
            kind.with_context(|| format!("unknown peer {name:?}; known: {}", known().join(", ")))?;
        let workers = match workers {
            Some(workers) => workers
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("{text}: expected NAME:N with N ≥ 1"))?,
            None if kind.default_workers == 0 => cores(),
            None => kind.default_workers,
        };
        Ok(Self { kind, workers })
    }

    /// nginx with `workers` worker processes (the older spelling `--nginx N`).
    #[must_use]
    pub fn nginx(workers: u32) -> Self {
        let kind = PEERS.iter().find(|kind| kind.name == "nginx");
        Self {
            // The table above has nginx.
            kind: kind.unwrap_or(&PEERS[0]),
            workers,
        }
    }

    /// The peer a table row names (`h2o-2`), if it is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        let (kind, workers) = name.rsplit_once('-')?;
        Self::parse(&format!("{kind}:{workers}")).ok()
    }

    /// The step configuration that runs the same model.
    #[must_use]
    pub fn counterpart(&self) -> &'static str {
        let (one, many) = self.kind.counterpart;
        if self.workers == 1 { one } else { many }
    }

    /// The installed executable, or why there is none (one line).
    ///
    /// # Errors
    ///
    /// When none of the known places has it.
    pub fn binary(&self) -> anyhow::Result<PathBuf> {
        let found = self.kind.binaries.iter().map(PathBuf::from);
        found
            .into_iter()
            .find(|path| path.is_file())
            .with_context(|| {
                format!(
                    "{}: not installed (Debian: apt-get install --no-install-recommends {})",
                    self.kind.name, self.kind.package
                )
            })
    }

    /// Renders the configuration template for `port`, `root` and `prefix`.
    #[must_use]
    pub fn render(&self, template: &str, port: u16, root: &Path, prefix: &Path) -> String {
        // /proc/self belongs to the effective user.
        let as_root = fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
        // Run as root, Apache and h2o change to an unprivileged user (Apache refuses to serve as
        // root); the document root is readable by everyone.
        let user_line = match self.kind.name {
            "h2o" if as_root => "user: nobody",
            name if as_root && name.starts_with("apache") => "User nobody\nGroup nogroup",
            _ => "",
        };
        let mpm = self.kind.name.strip_prefix("apache-").unwrap_or("");
        template
            .replace("@PORT@", &port.to_string())
            .replace("@ROOT@", &root.display().to_string())
            .replace("@PREFIX@", &prefix.display().to_string())
            .replace("@WORKERS@", &self.workers.to_string())
            .replace("@USER_LINE@", user_line)
            .replace("@MPM@", mpm)
            .replace("@MODULES@", "/usr/lib/apache2/modules")
    }

    /// Starts it serving `root` on a free loopback port, in the foreground under testkit's harness.
    /// The returned directory holds its configuration; it must outlive the server.
    ///
    /// # Errors
    ///
    /// A one-line reason: not installed, the configuration cannot be written, or it did not start.
    pub fn start(&self, root: &Path) -> anyhow::Result<(Server, Option<tempfile::TempDir>)> {
        let binary = self.binary()?;
        let Some((file, template)) = self.kind.config else {
            return Ok((server::start_nginx(self.workers, root)?, None));
        };
        // tempfile honours TMPDIR. Readable by everyone: Apache's children and h2o run as nobody.
        let prefix = tempfile::Builder::new()
            .prefix(&format!("bench-{}-", self.kind.name))
            .tempdir()?;
        for dir in [prefix.path(), root] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        }
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let conf = prefix.path().join(file);
        fs::write(
            &conf,
            self.render(template, addr.port(), root, prefix.path()),
        )?;
        let (program, args) = self.command(&binary, &conf, prefix.path());
        let launch = Launch {
            silent_on: Some(addr),
            ..Launch::default()
        };
        let server = Server::spawn(program, &args, &launch)
            .with_context(|| format!("{self} ({})", conf.display()))?;
        Ok((server, Some(prefix)))
    }

    /// The command line that runs it in the foreground with configuration `conf`.
    fn command(&self, binary: &Path, conf: &Path, prefix: &Path) -> (PathBuf, Vec<String>) {
        let (binary, conf) = (binary.display().to_string(), conf.display().to_string());
        let prefix = prefix.display().to_string();
        match self.kind.name {
            "h2o" => (binary.into(), vec!["-c".into(), conf]),
            "lighttpd" => (binary.into(), vec!["-D".into(), "-f".into(), conf]),
            // `env` execs Caddy (its pid stays the server's): Go's threads and Caddy's data dirs.
            "caddy" => (
                "/usr/bin/env".into(),
                vec![
                    format!("GOMAXPROCS={}", self.workers),
                    format!("XDG_DATA_HOME={prefix}"),
                    format!("XDG_CONFIG_HOME={prefix}"),
                    format!("HOME={prefix}"),
                    binary,
                    "run".into(),
                    "--adapter".into(),
                    "caddyfile".into(),
                    "--config".into(),
                    conf,
                ],
            ),
            _ => (
                binary.into(),
                vec!["-f".into(), conf, "-DFOREGROUND".into()],
            ),
        }
    }
}

fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

/// The Markdown table of `peers`: model, counterpart and configuration file.
#[must_use]
pub fn table(peers: &[Peer]) -> String {
    let mut text = String::from(
        "| peer | model | beside | workers | configuration |\n|---|---|---|---:|---|\n",
    );
    for peer in peers {
        let config = peer
            .kind
            .config
            .map_or("bench/nginx/nginx.sh".to_owned(), |(file, _)| {
                format!("bench/peers/{file}")
            });
        let unit = match peer.workers {
            1 => singular(peer.kind.unit),
            _ => peer.kind.unit,
        };
        let _ = writeln!(
            text,
            "| {peer} | {} | {} | {} {unit} | `{config}` |",
            peer.kind.model,
            peer.counterpart(),
            peer.workers,
        );
    }
    text
}

/// "threads" → "thread", "processes" → "process" (not "proce": only one suffix goes).
fn singular(unit: &str) -> &str {
    unit.strip_suffix("es")
        .filter(|stem| stem.ends_with("ss"))
        .or_else(|| unit.strip_suffix('s'))
        .unwrap_or(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_reads_singular() {
        assert_eq!(singular("processes"), "process");
        assert_eq!(singular("threads"), "thread");
        assert_eq!(singular("workers"), "worker");
        let table = table(&[
            Peer::parse("lighttpd:1").unwrap(),
            Peer::parse("h2o:2").unwrap(),
        ]);
        assert!(table.contains("| 1 process |"), "{table}");
        assert!(table.contains("| 2 threads |"), "{table}");
    }

    #[test]
    fn parses_names_and_counts() {
        let h2o = Peer::parse("h2o:2").unwrap();
        assert_eq!((h2o.kind.name, h2o.workers), ("h2o", 2));
        assert_eq!(h2o.to_string(), "h2o-2");
        assert_eq!(h2o.counterpart(), "step07-per-core");
        assert_eq!(Peer::parse("apache-prefork").unwrap().workers, 4);
        assert_eq!(
            Peer::from_name("apache-worker-8").unwrap().counterpart(),
            "step04-pool"
        );
        assert_eq!(Peer::nginx(1).to_string(), "nginx-1");
        assert!(Peer::from_name("step07-1").is_none());
        let unknown = Peer::parse("iis").unwrap_err().to_string();
        assert!(
            unknown.contains("unknown peer") && unknown.contains("h2o"),
            "{unknown}"
        );
        assert!(Peer::parse("h2o:0").is_err() && Peer::parse("h2o:x").is_err());
    }

    #[test]
    fn renders_every_placeholder() {
        for kind in PEERS {
            let Some((_, template)) = kind.config else {
                continue;
            };
            let peer = Peer { kind, workers: 3 };
            let text = peer.render(template, 4321, Path::new("/r"), Path::new("/p"));
            assert!(!text.contains('@'), "{}: {text}", kind.name);
            assert!(
                text.contains("4321") && text.contains("/r"),
                "{}",
                kind.name
            );
        }
    }
}
