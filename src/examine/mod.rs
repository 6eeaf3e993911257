//! Examining a down path at the core's request (`Effect::ExaminePath`):
//! which packet sizes pass and which hop is the last to answer. The answer
//! goes back to the core as `Input::PathExamined`, which decides the
//! diagnosis, so a replay reaches the same words.

mod raw;

use std::net::IpAddr;

use futures_util::future::BoxFuture;

pub use raw::{LADDER, MAX_PACKETS, MAX_TTL};

use crate::core::Examination;
use crate::plan::{Plan, ProbeSpec, Source};

/// The longest an examination may take: its ladder and trace wait at most
/// about 5 s; past this it answers that it timed out.
pub const EXAMINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs examinations; tests can answer from a model instead.
pub trait Examiner: Send + Sync + 'static {
    /// Examines the path `source` selects (first hop `gateway`) towards
    /// `destination`: the packet-size ladder, and the hops when `trace`.
    fn examine(
        &self,
        destination: IpAddr,
        gateway: IpAddr,
        source: Source,
        trace: bool,
    ) -> BoxFuture<'static, Examination>;
}

/// Examines with real packets (a raw ICMP socket: CAP_NET_RAW).
pub struct NetExaminer;

impl Examiner for NetExaminer {
    fn examine(
        &self,
        destination: IpAddr,
        gateway: IpAddr,
        source: Source,
        trace: bool,
    ) -> BoxFuture<'static, Examination> {
        Box::pin(async move {
            let IpAddr::V4(v4) = destination else {
                return Examination {
                    destination: destination.to_string(),
                    error: Some("IPv6 paths are not examined yet".into()),
                    ..Examination::default()
                };
            };
            let gateway = match gateway {
                IpAddr::V4(g) => Some(g),
                IpAddr::V6(_) => None,
            };
            tokio::task::spawn_blocking(move || raw::examine(v4, gateway, &source, trace))
                .await
                .unwrap_or_else(|e| Examination {
                    destination: destination.to_string(),
                    error: Some(format!("the examination failed: {e}")),
                    ..Examination::default()
                })
        })
    }
}

/// Why a path cannot be examined.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The path left the plan (a reload) before the examination started.
    #[error("path {0} is not planned")]
    UnknownPath(String),
    /// Only an ICMP check's host is known to answer echoes.
    #[error(
        "no ICMP check goes through path {0}: packet sizes and hops are examined towards an ICMP check's host"
    )]
    NoIcmpCheck(String),
    /// The check's host did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// Resolving took too long.
    #[error("resolving {0} took more than 5 s")]
    ResolveTimeout(String),
    /// The host resolved to nothing.
    #[error("{0} has no address")]
    NoAddress(String),
}

/// Where to examine `path` towards: the host of the first ICMP check of a
/// group using it (towards a web or DNS server that ignores ping, every
/// size would look lost), the path's gateway, and the binding that sends
/// packets through the path.
pub async fn target_of(plan: &Plan, path: &str) -> Result<(IpAddr, IpAddr, Source), TargetError> {
    let spec = plan
        .paths
        .iter()
        .find(|p| p.name.as_str() == path)
        .ok_or_else(|| TargetError::UnknownPath(path.to_string()))?;
    let source = Source {
        address: spec.source,
        interface: spec.interface.clone(),
        mark: spec.fwmark,
    };
    let host = plan
        .groups
        .iter()
        .filter(|g| g.core.paths.iter().any(|p| p.as_str() == path))
        .flat_map(|g| &g.core.checks)
        .filter_map(|c| plan.targets.iter().find(|t| t.key == *c))
        .find_map(|t| match &t.probe {
            ProbeSpec::Icmp(s) => Some(
                s.host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            ),
            _ => None,
        })
        .ok_or_else(|| TargetError::NoIcmpCheck(path.to_string()))?;
    let gateway = spec.gateway;
    if let Ok(ip) = host.parse() {
        return Ok((ip, gateway, source));
    }
    let addrs: Vec<IpAddr> = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((host.as_str(), 0)),
    )
    .await
    .map_err(|_| TargetError::ResolveTimeout(host.clone()))?
    .map_err(|source| TargetError::Resolve {
        host: host.clone(),
        source,
    })?
    .map(|a| a.ip())
    .collect();
    // IPv4 first: IPv6 paths are not examined yet.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| (*a, gateway, source))
        .ok_or(TargetError::NoAddress(host))
}
