//! Kernel routes and policy rules over netlink (rtnetlink), behind a small
//! surface so the pre-1.0 crate stays replaceable.
//!
//! Routes gwanje installs carry its own protocol number, so `ip route` shows
//! who owns them (`proto 77`).

use std::net::IpAddr;

use futures_util::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};
use tokio::sync::mpsc;

/// The routing protocol number on gwanje's routes.
pub const GWANJE_PROTOCOL: u8 = 77;
/// Priority of the `fwmark → table` rules gwanje installs.
pub const RULE_PRIORITY: u32 = 1000;

/// Errors from the kernel.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// Opening the netlink socket failed.
    #[error("opening a netlink socket: {0}")]
    Socket(std::io::Error),
    /// The kernel refused a request.
    #[error("{what}: {source}")]
    Request {
        /// What was asked.
        what: String,
        /// The kernel's answer.
        source: rtnetlink::Error,
    },
    /// An interface name is unknown.
    #[error("no interface named {0}")]
    NoInterface(String),
    /// A route could not be expressed.
    #[error("invalid route: {0}")]
    Invalid(String),
}

/// Where a route points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// The gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface index, if any.
    pub oif: Option<u32>,
}

/// A netlink connection.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |source| NetlinkError::Request { what, source }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Netlink {
    /// Opens a connection (its I/O runs on a spawned task).
    pub fn connect() -> Result<Self, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The index of interface `name`.
    pub async fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) | Err(_) => Err(NetlinkError::NoInterface(name.to_string())),
        }
    }

    fn message(
        prefix: IpNet,
        hop: &NextHop,
        table: Option<u32>,
    ) -> Result<RouteMessage, NetlinkError> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(prefix.addr(), prefix.prefix_len())
            .map_err(|e| NetlinkError::Invalid(e.to_string()))?;
        if let Some(gw) = hop.gateway {
            b = b
                .gateway(gw)
                .map_err(|e| NetlinkError::Invalid(e.to_string()))?;
        }
        if let Some(oif) = hop.oif {
            b = b.output_interface(oif);
        }
        if let Some(t) = table {
            b = b.table_id(t);
        }
        Ok(b.protocol(RouteProtocol::Other(GWANJE_PROTOCOL)).build())
    }

    /// Points `prefix` (main table, or `table`) at `hop`, replacing what was there.
    pub async fn replace_route(
        &self,
        prefix: IpNet,
        hop: &NextHop,
        table: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let msg = Self::message(prefix, hop, table)?;
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(request(format!("replacing the route to {prefix}")))
    }

    /// Deletes gwanje's route to `prefix` in `table`.
    pub async fn delete_route(
        &self,
        prefix: IpNet,
        hop: &NextHop,
        table: Option<u32>,
    ) -> Result<(), NetlinkError> {
        let msg = Self::message(prefix, hop, table)?;
        self.handle
            .route()
            .del(msg)
            .execute()
            .await
            .map_err(request(format!("deleting the route to {prefix}")))
    }

    /// Where the main table's route for exactly `prefix` points, if there is one.
    pub async fn route_for(&self, prefix: IpNet) -> Result<Option<NextHop>, NetlinkError> {
        let query = match prefix {
            IpNet::V4(_) => RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            IpNet::V6(_) => RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        };
        let mut routes = self.handle.route().get(query).execute();
        while let Some(route) = routes.try_next().await.map_err(request("listing routes"))? {
            let table = route
                .attributes
                .iter()
                .find_map(|a| {
                    if let RouteAttribute::Table(t) = a {
                        Some(*t)
                    } else {
                        None
                    }
                })
                .unwrap_or(u32::from(route.header.table));
            if table != 254 || route.header.destination_prefix_length != prefix.prefix_len() {
                continue;
            }
            let dst = route.attributes.iter().find_map(|a| {
                if let RouteAttribute::Destination(d) = a {
                    addr(d)
                } else {
                    None
                }
            });
            if dst != Some(prefix.addr()) {
                continue;
            }
            let gateway = route.attributes.iter().find_map(|a| {
                if let RouteAttribute::Gateway(g) = a {
                    addr(g)
                } else {
                    None
                }
            });
            let oif = route.attributes.iter().find_map(|a| {
                if let RouteAttribute::Oif(i) = a {
                    Some(*i)
                } else {
                    None
                }
            });
            return Ok(Some(NextHop { gateway, oif }));
        }
        Ok(None)
    }

    /// Adds `fwmark → table` (replacing an identical rule left by a crash).
    pub async fn add_rule(&self, fwmark: u32, table: u32, v6: bool) -> Result<(), NetlinkError> {
        let _ = self.delete_rule(fwmark, table, v6).await;
        // The action must be set: rtnetlink leaves it unspecified, which the
        // kernel accepts but then fails every lookup through the rule (EINVAL).
        let add = self
            .handle
            .rule()
            .add()
            .fw_mark(fwmark)
            .table_id(table)
            .priority(RULE_PRIORITY)
            .action(RuleAction::ToTable);
        let what = format!("adding rule fwmark {fwmark} lookup {table}");
        if v6 {
            add.v6().execute().await.map_err(request(what))
        } else {
            add.v4().execute().await.map_err(request(what))
        }
    }

    /// Deletes the `fwmark → table` rule, if present.
    pub async fn delete_rule(&self, fwmark: u32, table: u32, v6: bool) -> Result<(), NetlinkError> {
        let version = if v6 { IpVersion::V6 } else { IpVersion::V4 };
        let mut rules = self.handle.rule().get(version).execute();
        while let Some(rule) = rules.try_next().await.map_err(request("listing rules"))? {
            let mark = rule
                .attributes
                .iter()
                .any(|a| matches!(a, RuleAttribute::FwMark(m) if *m == fwmark));
            let tab = rule
                .attributes
                .iter()
                .any(|a| matches!(a, RuleAttribute::Table(t) if *t == table))
                || u32::from(rule.header.table) == table;
            if mark && tab {
                self.handle
                    .rule()
                    .del(rule)
                    .execute()
                    .await
                    .map_err(request(format!(
                        "deleting rule fwmark {fwmark} lookup {table}"
                    )))?;
            }
        }
        Ok(())
    }

    /// Sends `()` whenever the kernel reports a route change (any route:
    /// the receiver re-reads the ones it cares about).
    pub fn watch_routes() -> Result<mpsc::Receiver<()>, NetlinkError> {
        use rtnetlink::MulticastGroup;
        let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
        ])
        .map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while messages.next().await.is_some() {
                // A full channel already holds a pending notification.
                if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
