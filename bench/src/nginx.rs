//! nginx as a reference server, started and stopped through `bench/nginx/nginx.sh` (which installs it
//! from Debian when missing).

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::server::workspace_root;

/// A running nginx on 127.0.0.1, stopped when dropped.
#[derive(Debug)]
pub struct Nginx {
    port: u16,
    /// The master process (its workers are its children).
    pub pid: u32,
}

impl Nginx {
    /// Starts nginx with `workers` worker processes serving `root` on a free loopback port.
    ///
    /// # Errors
    ///
    /// A one-line reason when the script fails (no nginx and no way to install it, port taken…).
    pub fn start(workers: u32, root: &Path) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| format!("no free port: {error}"))?
            .port();
        let output = script()
            .args([
                "start",
                "--port",
                &port.to_string(),
                "--workers",
                &workers.to_string(),
                "--root",
            ])
            .arg(root)
            .output()
            .map_err(|error| format!("cannot run nginx.sh: {error}"))?;
        if !output.status.success() {
            let reason = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "nginx.sh failed: {}",
                reason.trim().lines().last().unwrap_or("")
            ));
        }
        let pid_file = format!("/tmp/bench-nginx-{port}/nginx.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| format!("nginx started but {pid_file} is unreadable"))?;
        Ok(Self { port, pid })
    }

    /// `http://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = script()
            .args(["stop", "--port", &self.port.to_string()])
            .output();
    }
}

fn script() -> Command {
    let mut command = Command::new("bash");
    command.arg(workspace_root().join("bench/nginx/nginx.sh"));
    command
}
