//! A description of the machine and the moment, written next to every figure.

use std::fs;
use std::time::SystemTime;

use procfs::{CpuInfo, Current, Meminfo};
use serde::{Deserialize, Serialize};

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cpus: usize,
    /// The CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory in GiB.
    pub memory_gib: u64,
    /// The kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine's description.
    fn describe() -> Self {
        const GIB: u64 = 1 << 30;
        let memory_bytes = Meminfo::current().map_or(0, |meminfo| meminfo.mem_total);
        let cpu_model = CpuInfo::current()
            .ok()
            .and_then(|cpus| Some(cpus.model_name(0)?.to_owned()));
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpu_model.unwrap_or_else(|| "unknown".into()),
            memory_gib: (memory_bytes + GIB / 2) / GIB,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cores ({}), {} GiB, Linux {}",
            self.cpus, self.cpu_model, self.memory_gib, self.kernel
        )
    }
}

/// What every results file starts with (flattened into it): where, when and how it was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The machine.
    pub machine: Machine,
    /// When (UTC), as `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// The exact command.
    pub command: String,
}

impl Header {
    /// This machine, now, and `command`.
    pub(crate) fn now(command: &str) -> Self {
        let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        Self {
            machine: Machine::describe(),
            date,
            command: command.to_owned(),
        }
    }

    /// The day of [`Self::date`], `YYYY-MM-DD`.
    pub(crate) fn day(&self) -> &str {
        self.date.get(..10).unwrap_or(&self.date)
    }

    /// The start of a results page: its title, then the machine, the date and the command.
    pub(crate) fn preamble(&self, title: &str) -> String {
        format!(
            "# {title}\n\n- Machine: {}\n- Date: {}\n- Command: `{}`\n",
            self.machine, self.date, self.command
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_machine_and_the_date() {
        let header = Header::now("bench");
        let machine = &header.machine;
        assert!(machine.cpus >= 1 && !machine.kernel.is_empty(), "{machine}");
        // MemTotal is read in bytes: a KiB/bytes mix-up would say 0 GiB or thousands.
        assert!((1..=65_536).contains(&machine.memory_gib), "{machine}");
        let (date, stamp) = (header.day(), &header.date);
        assert_eq!((date.len(), stamp.len()), (10, 20), "{stamp}");
        assert!(stamp.starts_with(date) && stamp.ends_with('Z') && date.starts_with("20"));
        assert!(header.preamble("T").starts_with("# T\n\n- Machine: "));
    }
}
