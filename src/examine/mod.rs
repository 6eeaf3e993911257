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

/// Where to examine `path` towards: the host of the first check of a group
/// using it (an ICMP check's host first, since it is a bare address), the
/// path's gateway, and the binding that sends packets through the path.
pub async fn target_of(plan: &Plan, path: &str) -> Result<(IpAddr, IpAddr, Source), String> {
    let spec = plan
        .paths
        .iter()
        .find(|p| p.name.as_str() == path)
        .ok_or_else(|| format!("path {path} is not planned"))?;
    let source = Source {
        address: spec.source,
        interface: spec.interface.clone(),
        mark: spec.fwmark,
    };
    let mut hosts: Vec<(u8, String)> = Vec::new();
    for g in plan
        .groups
        .iter()
        .filter(|g| g.core.paths.iter().any(|p| p.as_str() == path))
    {
        for c in &g.core.checks {
            let Some(t) = plan.targets.iter().find(|t| t.key == *c) else {
                continue;
            };
            let host = match &t.probe {
                ProbeSpec::Icmp(s) => (0, s.host.clone()),
                ProbeSpec::Tcp(s) => (1, s.host.clone()),
                ProbeSpec::Http(s) => (1, s.url.host_str().unwrap_or_default().to_string()),
                ProbeSpec::Identity(s) => {
                    (1, s.base_url.host_str().unwrap_or_default().to_string())
                }
                ProbeSpec::Dns(s) => (2, s.server.ip().to_string()),
            };
            hosts.push(host);
        }
    }
    hosts.sort();
    let (_, host) = hosts
        .into_iter()
        .next()
        .ok_or_else(|| format!("no check goes through path {path}"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let gateway = spec.gateway;
    if let Ok(ip) = host.parse() {
        return Ok((ip, gateway, source));
    }
    let mut addrs = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    addrs
        .next()
        .map(|a| (a.ip(), gateway, source))
        .ok_or_else(|| format!("{host} has no address"))
}
