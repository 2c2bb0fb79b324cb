//! The kernel's TCP counters (`/proc/net/netstat`, `/proc/net/snmp`) that say why a connection was
//! slow to open: a full accept queue drops the client's final ACK (`ListenOverflows`), and the
//! client, hearing nothing, sends its SYN again after the initial retransmission timeout of one
//! second (`TCPSynRetrans`). A latency tail of about one second is that signature.
//!
//! The counters are the whole machine's, which is what a run on loopback wants: the generator and
//! the server are both on it. Reading them before and after a run gives that run's share.

use serde::{Deserialize, Serialize};

/// The counters that explain slow connection set-up, as deltas over one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCounters {
    /// Connections whose final ACK arrived while the accept queue was full (`TcpExt:ListenOverflows`).
    pub listen_overflows: u64,
    /// Connection attempts dropped at a listener, overflows included (`TcpExt:ListenDrops`).
    pub listen_drops: u64,
    /// SYNs (and SYN-ACKs) sent again after a timeout (`TcpExt:TCPSynRetrans`).
    pub syn_retransmits: u64,
    /// Segments of any kind sent again (`Tcp:RetransSegs`).
    pub retransmitted_segments: u64,
}

impl TcpCounters {
    /// The counters now, or zeros where the kernel does not expose them.
    pub(crate) fn read() -> TcpCounters {
        let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
        TcpCounters {
            listen_overflows: counter(&netstat, "TcpExt:", "ListenOverflows"),
            listen_drops: counter(&netstat, "TcpExt:", "ListenDrops"),
            syn_retransmits: counter(&netstat, "TcpExt:", "TCPSynRetrans"),
            retransmitted_segments: counter(&snmp, "Tcp:", "RetransSegs"),
        }
    }

    /// What happened between `self` (read before) and `later`.
    pub(crate) fn since(self, later: TcpCounters) -> TcpCounters {
        TcpCounters {
            listen_overflows: later.listen_overflows.saturating_sub(self.listen_overflows),
            listen_drops: later.listen_drops.saturating_sub(self.listen_drops),
            syn_retransmits: later.syn_retransmits.saturating_sub(self.syn_retransmits),
            retransmitted_segments: later
                .retransmitted_segments
                .saturating_sub(self.retransmitted_segments),
        }
    }
}

/// One named counter from a `/proc/net` file: a line of names after `prefix`, then a line of values.
fn counter(text: &str, prefix: &str, name: &str) -> u64 {
    let mut lines = text.lines().filter(|line| line.starts_with(prefix));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let found = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(field, _)| *field == name);
        if let Some((_, value)) = found {
            return value.parse().unwrap_or(0);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETSTAT: &str = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans\n\
                           TcpExt: 0 12 14 30\n\
                           IpExt: InNoRoutes\n\
                           IpExt: 0\n";

    #[test]
    fn reads_a_counter_by_name_from_its_pair_of_lines() {
        assert_eq!(counter(NETSTAT, "TcpExt:", "ListenOverflows"), 12);
        assert_eq!(counter(NETSTAT, "TcpExt:", "TCPSynRetrans"), 30);
        assert_eq!(counter(NETSTAT, "TcpExt:", "NoSuchCounter"), 0);
        assert_eq!(counter(NETSTAT, "IpExt:", "InNoRoutes"), 0);
    }

    #[test]
    fn the_kernel_names_every_counter_read_here() {
        let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap();
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap();
        for name in ["ListenOverflows", "ListenDrops", "TCPSynRetrans"] {
            assert!(
                netstat.split_whitespace().any(|field| field == name),
                "{name}"
            );
        }
        assert!(snmp.split_whitespace().any(|field| field == "RetransSegs"));
        let now = TcpCounters::read();
        assert_eq!(now.since(now), TcpCounters::default());
    }
}
