//! Every failure the testbed can inject, each with its repair.

use std::fmt;

use super::TestbedError;
use super::topology::{Router, SERVICE_PREFIX, Testbed};

/// A failure of one part of the testbed. `apply` breaks it, `repair` mends
/// it; both are idempotent enough to run from another process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The router's link towards the data centre is cut; the router itself
    /// still answers pings from the client.
    FarSideCut(Router),
    /// The router stops forwarding (it still answers pings to itself).
    NoForwarding(Router),
    /// The router's link towards the client goes down.
    NearLinkDown(Router),
    /// The router drops forwarded packets of `min_bytes` and more (damaged
    /// ports: small pings stay green).
    LargePacketDrop {
        /// Which router.
        router: Router,
        /// The smallest IP packet length dropped.
        min_bytes: u16,
    },
    /// The router's far-side link gets a smaller MTU: full-size packets with
    /// don't-fragment are refused with "fragmentation needed".
    MtuLimit {
        /// Which router.
        router: Router,
        /// The far-side link's MTU.
        mtu: u16,
    },
    /// The router drops this share of forwarded packets at random, both ways.
    RandomLoss {
        /// Which router.
        router: Router,
        /// Percent of packets dropped (0–100).
        percent: u8,
    },
    /// The data centre refuses TCP connections to `addr:port` on every path
    /// (a service failure, not a path failure).
    ServiceRefuses {
        /// The service address.
        addr: &'static str,
        /// The TCP port.
        port: u16,
    },
}

impl Failure {
    /// Breaks the testbed this way.
    pub fn apply(self, bed: &Testbed) -> Result<(), TestbedError> {
        match self {
            Failure::FarSideCut(r) => bed.router(r).ip(&["link", "set", r.far_link(), "down"]),
            Failure::NoForwarding(r) => bed.router(r).sysctl("net.ipv4.ip_forward=0"),
            Failure::NearLinkDown(r) => bed.router(r).ip(&["link", "set", r.near_link(), "down"]),
            Failure::LargePacketDrop { router, min_bytes } => bed.router(router).nft_rule(
                &self.table(),
                "forward",
                &format!("meta length >= {min_bytes} drop"),
            ),
            Failure::MtuLimit { router, mtu } => {
                bed.router(router)
                    .ip(&["link", "set", router.far_link(), "mtu", &mtu.to_string()])
            }
            Failure::RandomLoss { router, percent } => bed.router(router).nft_rule(
                &self.table(),
                "forward",
                &format!("numgen random mod 100 < {} drop", percent.min(100)),
            ),
            Failure::ServiceRefuses { addr, port } => bed.server.nft_rule(
                &self.table(),
                "input",
                &format!("ip daddr {addr} tcp dport {port} reject with tcp reset"),
            ),
        }
    }

    /// Undoes [`Failure::apply`].
    pub fn repair(self, bed: &Testbed) -> Result<(), TestbedError> {
        match self {
            Failure::FarSideCut(r) => {
                let ns = bed.router(r);
                ns.ip(&["link", "set", r.far_link(), "up"])?;
                // The kernel flushed the route through the link when it went down.
                ns.ip(&["route", "replace", SERVICE_PREFIX, "via", r.next_hop()])
            }
            Failure::NoForwarding(r) => bed.router(r).sysctl("net.ipv4.ip_forward=1"),
            Failure::NearLinkDown(r) => bed.router(r).ip(&["link", "set", r.near_link(), "up"]),
            Failure::MtuLimit { router, .. } => {
                bed.router(router)
                    .ip(&["link", "set", router.far_link(), "mtu", "1500"])
            }
            Failure::LargePacketDrop { router, .. } | Failure::RandomLoss { router, .. } => {
                bed.router(router).nft_drop_table(&self.table())
            }
            Failure::ServiceRefuses { .. } => bed.server.nft_drop_table(&self.table()),
        }
    }

    /// The nftables table of a failure made of rules (one per failure, so
    /// repairing one leaves the others).
    fn table(self) -> String {
        match self {
            Failure::LargePacketDrop { .. } => "gwj_large".into(),
            Failure::RandomLoss { .. } => "gwj_loss".into(),
            Failure::ServiceRefuses { addr, port } => {
                format!("gwj_svc_{}_{port}", addr.replace('.', "_"))
            }
            Failure::FarSideCut(_)
            | Failure::NoForwarding(_)
            | Failure::NearLinkDown(_)
            | Failure::MtuLimit { .. } => "gwj_none".into(),
        }
    }

    /// Packet size a traffic meter needs to see this failure (large-packet
    /// drops pass small datagrams).
    pub fn meter_payload(self) -> usize {
        match self {
            Failure::LargePacketDrop { min_bytes, .. } => usize::from(min_bytes),
            _ => 64,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::FarSideCut(r) => write!(f, "{}: far-side link cut", r.name()),
            Failure::NoForwarding(r) => write!(f, "{}: stops forwarding", r.name()),
            Failure::NearLinkDown(r) => write!(f, "{}: client-side link down", r.name()),
            Failure::LargePacketDrop { router, min_bytes } => {
                write!(
                    f,
                    "{}: drops packets of {min_bytes} bytes and more",
                    router.name()
                )
            }
            Failure::RandomLoss { router, percent } => {
                write!(f, "{}: {percent}% random loss", router.name())
            }
            Failure::MtuLimit { router, mtu } => {
                write!(f, "{}: far-side link MTU {mtu}", router.name())
            }
            Failure::ServiceRefuses { addr, port } => {
                write!(f, "service {addr}:{port} refuses connections")
            }
        }
    }
}
