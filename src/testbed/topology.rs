//! The namespaces and links of the testbed:
//!
//! ```text
//!              198.18.1.0/24          198.18.3.0/24
//!   client ──ca──────────ac── ra ──as──────────sa──┐
//!     │                                            server (198.18.100.0/24 on lo)
//!     └────cb──────────bc── rb ──bs──────────sb──┘
//!              198.18.2.0/24          198.18.4.0/24
//! ```
//!
//! Routing is symmetric: the server returns traffic for 198.18.1.0/24 via
//! router A and for 198.18.2.0/24 via router B. The client starts with
//! 198.18.100.0/24 via router A. Namespaces are named `gwj<PID>-<n>-<role>`
//! after the process that made them: they are deleted by name when the
//! testbed is dropped, and those of a process that is gone are deleted when
//! a new testbed starts.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use super::TestbedError;
use super::netns::{Netns, sh};

/// The citizen portal's address (HTTP on 80, UDP echo on 7).
pub const PORTAL: &str = "198.18.100.1";
/// The administrative-network application (HTTP on 80).
pub const ADMIN_APP: &str = "198.18.100.2";
/// The mobile-ID API (HTTP on 80).
pub const MOBILE_ID: &str = "198.18.100.3";
/// The data centre's internal DNS server (UDP and TCP 53).
pub const DNS: &str = "198.18.100.53";
/// The service address the traffic meter and the test probes use.
pub const SERVICE: &str = PORTAL;
/// The prefix gwanje steers: everything in the data centre.
pub const SERVICE_PREFIX: &str = "198.18.100.0/24";
/// Router A's address on the client side.
pub const GW_A: &str = "198.18.1.1";
/// Router B's address on the client side.
pub const GW_B: &str = "198.18.2.1";

const PREFIX: &str = "gwj";

/// One of the two routers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    /// The primary, 198.18.1.1 from the client.
    A,
    /// The standby, 198.18.2.1 from the client.
    B,
}

impl Router {
    /// Its interface towards the client (`ac`, `bc`).
    pub fn near_link(self) -> &'static str {
        match self {
            Router::A => "ac",
            Router::B => "bc",
        }
    }

    /// Its interface towards the server (`as`, `bs`).
    pub fn far_link(self) -> &'static str {
        match self {
            Router::A => "as",
            Router::B => "bs",
        }
    }

    /// The server's address on its far-side link (its next hop to the service).
    pub fn next_hop(self) -> &'static str {
        match self {
            Router::A => "198.18.3.2",
            Router::B => "198.18.4.2",
        }
    }

    /// Its address as the client's gateway.
    pub fn gateway(self) -> &'static str {
        match self {
            Router::A => GW_A,
            Router::B => GW_B,
        }
    }

    /// `router-a`, `router-b`.
    pub fn name(self) -> &'static str {
        match self {
            Router::A => "router-a",
            Router::B => "router-b",
        }
    }
}

/// Checks that this machine can build the testbed: root, iproute2, nftables.
pub fn preflight() -> Result<(), TestbedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(TestbedError::Unavailable(
            "network namespaces need root".into(),
        ));
    }
    for (tool, arg, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")] {
        let ok = Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Err(TestbedError::Unavailable(format!(
                "`{tool}` is missing: apt-get install {package}"
            )));
        }
    }
    Ok(())
}

/// Deletes the namespaces of testbeds whose process is gone; returns their names.
pub fn remove_leftovers() -> Result<Vec<String>, TestbedError> {
    let mut removed = Vec::new();
    for line in sh(&["ip", "netns", "list"])?.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = owner(name) else { continue };
        // Another process may be removing the same leftovers: a namespace
        // already gone is fine.
        if !alive(pid) && sh(&["ip", "netns", "del", name]).is_ok() {
            removed.push(name.to_string());
        }
    }
    Ok(removed)
}

/// Whether process `pid` exists (one we may not signal counts too).
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the PID exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The PID in a testbed namespace's name (`gwj<PID>-<n>-<role>`).
pub fn owner(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, tail) = rest.split_once('-')?;
    (tail.contains('-') && pid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| pid.parse().ok())
        .flatten()
        .filter(|p| *p > 0)
}

/// The four namespaces and their links, deleted when dropped.
pub struct Testbed {
    /// Where gwanje runs (the edge of the network).
    pub client: Netns,
    /// The primary router.
    pub ra: Netns,
    /// The standby router.
    pub rb: Netns,
    /// The data centre.
    pub server: Netns,
    /// Whether dropping this handle deletes the namespaces.
    owned: bool,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Testbed {
    /// Builds the topology (after removing leftovers of dead processes).
    pub fn new() -> Result<Self, TestbedError> {
        preflight()?;
        remove_leftovers()?;
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns = |role: &str| Netns(format!("{id}-{role}"));
        let bed = Testbed {
            client: ns("cl"),
            ra: ns("ra"),
            rb: ns("rb"),
            server: ns("sv"),
            owned: true,
        };
        // From here on, a failure drops `bed`, which deletes what exists.
        for n in bed.all() {
            sh(&["ip", "netns", "add", &n.0])?;
        }
        bed.wire()?;
        Ok(bed)
    }

    /// A handle on the running testbed of process `owner` (it stays when
    /// the handle is dropped), if that process has one.
    pub fn of_process(owner_pid: i32) -> Result<Option<Testbed>, TestbedError> {
        let list = sh(&["ip", "netns", "list"])?;
        let client = list.lines().find_map(|l| {
            let name = l.split_whitespace().next()?;
            (owner(name) == Some(owner_pid)).then(|| name.strip_suffix("-cl"))?
        });
        Ok(client.map(|id| {
            let ns = |role: &str| Netns(format!("{id}-{role}"));
            Testbed {
                client: ns("cl"),
                ra: ns("ra"),
                rb: ns("rb"),
                server: ns("sv"),
                owned: false,
            }
        }))
    }

    /// The PIDs of live processes that own testbed namespaces.
    pub fn owners() -> Result<Vec<i32>, TestbedError> {
        let mut pids: Vec<i32> = sh(&["ip", "netns", "list"])?
            .lines()
            .filter_map(|l| owner(l.split_whitespace().next()?))
            .filter(|pid| alive(*pid))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// The four namespaces.
    pub fn all(&self) -> [&Netns; 4] {
        [&self.client, &self.ra, &self.rb, &self.server]
    }

    /// The router namespace for `r`.
    pub fn router(&self, r: Router) -> &Netns {
        match r {
            Router::A => &self.ra,
            Router::B => &self.rb,
        }
    }

    fn wire(&self) -> Result<(), TestbedError> {
        for n in self.all() {
            n.ip(&["link", "set", "lo", "up"])?;
            n.sysctl("net.ipv4.conf.all.rp_filter=0")?;
            n.sysctl("net.ipv4.conf.default.rp_filter=0")?;
        }
        let links = [
            (
                &self.client,
                "ca",
                "198.18.1.2/24",
                &self.ra,
                "ac",
                "198.18.1.1/24",
            ),
            (
                &self.client,
                "cb",
                "198.18.2.2/24",
                &self.rb,
                "bc",
                "198.18.2.1/24",
            ),
            (
                &self.ra,
                "as",
                "198.18.3.1/24",
                &self.server,
                "sa",
                "198.18.3.2/24",
            ),
            (
                &self.rb,
                "bs",
                "198.18.4.1/24",
                &self.server,
                "sb",
                "198.18.4.2/24",
            ),
        ];
        for (a, an, aip, b, bn, bip) in links {
            sh(&[
                "ip", "link", "add", "name", an, "netns", &a.0, "type", "veth", "peer", "name", bn,
                "netns", &b.0,
            ])?;
            a.ip(&["addr", "add", aip, "dev", an])?;
            b.ip(&["addr", "add", bip, "dev", bn])?;
            a.ip(&["link", "set", an, "up"])?;
            b.ip(&["link", "set", bn, "up"])?;
        }
        for addr in [PORTAL, ADMIN_APP, MOBILE_ID, DNS] {
            self.server
                .ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"])?;
        }
        self.server
            .ip(&["route", "add", "198.18.1.0/24", "via", "198.18.3.1"])?;
        self.server
            .ip(&["route", "add", "198.18.2.0/24", "via", "198.18.4.1"])?;
        for r in [Router::A, Router::B] {
            let ns = self.router(r);
            ns.sysctl("net.ipv4.ip_forward=1")?;
            // Linux sends one "time exceeded" a second per destination, and
            // the checks through a broken router spend that on their own
            // echoes: the examination's trace would see the router only by
            // luck. Real routers rate-limit too (the diagnosis then falls
            // back on the gateway's own echo); the testbed's answer every
            // time. ("Unreachable" has its own limit, route.error_cost,
            // which is host-wide and left alone.)
            ns.sysctl("net.ipv4.icmp_ratelimit=0")?;
            ns.ip(&["route", "add", SERVICE_PREFIX, "via", r.next_hop()])?;
        }
        self.client
            .ip(&["route", "add", SERVICE_PREFIX, "via", GW_A])
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        for n in self.all() {
            let _ = Command::new("ip").args(["netns", "del", &n.0]).status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn only_testbed_names_have_an_owner() {
        assert_eq!(owner("gwj123-0-cl"), Some(123));
        assert_eq!(owner("gwj123-4-sv"), Some(123));
        assert_eq!(owner("gwjd123-0-cl"), None);
        assert_eq!(owner("gwj123"), None);
        assert_eq!(owner("gwj0-1-cl"), None);
        assert_eq!(owner("other"), None);
    }
}
