//! Carrying out route changes: netlink routes, an exec hook, a webhook, or
//! nothing (observe). Also reading the kernel's current route per group, and
//! installing per-path policy routing.

mod error;
pub mod netlink;

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;

pub use error::ActuateError;
pub use netlink::{Netlink, NetlinkError, NextHop};

use crate::core::{PathName, SwitchReason};
use crate::plan::{Action, GroupSpec, PathSpec};

/// Where the engine moves and reads routes: the [`Actuator`] in
/// production, an in-memory table in paused-time tests.
pub trait RouteTable: Send + Sync + 'static {
    /// Moves `group`'s prefixes to `to` (in a cluster, by the leader's
    /// order with `fence`).
    fn change<'a>(
        &'a self,
        group: &'a GroupSpec,
        from: Option<&'a PathSpec>,
        to: &'a PathSpec,
        reason: &'a SwitchReason,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), ActuateError>>;

    /// Which path the kernel's route for `group` uses now.
    fn observe<'a>(
        &'a self,
        group: &'a GroupSpec,
        paths: &'a [PathSpec],
    ) -> BoxFuture<'a, Result<Option<PathName>, ActuateError>>;

    /// A signal for every change of the kernel's routes, when the table
    /// can watch them.
    fn watch(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
}

impl RouteTable for Actuator {
    fn change<'a>(
        &'a self,
        group: &'a GroupSpec,
        from: Option<&'a PathSpec>,
        to: &'a PathSpec,
        reason: &'a SwitchReason,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), ActuateError>> {
        Box::pin(Actuator::change(self, group, from, to, reason, fence))
    }

    fn observe<'a>(
        &'a self,
        group: &'a GroupSpec,
        paths: &'a [PathSpec],
    ) -> BoxFuture<'a, Result<Option<PathName>, ActuateError>> {
        Box::pin(Actuator::observe(self, group, paths))
    }

    fn watch(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        match Netlink::watch_routes() {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::error!(
                    "watching kernel routes: {e}; external route changes will not be seen"
                );
                None
            }
        }
    }
}

/// Carries out route changes for every group.
#[derive(Clone)]
pub struct Actuator {
    netlink: Option<Netlink>,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct ChangeBody<'a> {
    group: &'a str,
    from: Option<&'a str>,
    to: &'a str,
    reason: String,
    prefixes: Vec<String>,
    gateway: String,
    interface: Option<&'a str>,
    /// The ordering leader's fence, in a cluster: a receiver can refuse an
    /// order older than one it has carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    fence: Option<u64>,
}

impl Actuator {
    /// An actuator; `netlink` is needed by groups with `action: route` and by
    /// paths that manage policy routing.
    pub fn new(netlink: Option<Netlink>) -> Self {
        Actuator {
            netlink,
            http: crate::alert::http_client(),
        }
    }

    fn netlink(&self) -> Result<&Netlink, ActuateError> {
        self.netlink.as_ref().ok_or(ActuateError::NoNetlink)
    }

    async fn next_hop(&self, path: &PathSpec) -> Result<NextHop, ActuateError> {
        let oif = match &path.interface {
            Some(name) => Some(self.netlink()?.link_index(name).await?),
            None => None,
        };
        Ok(NextHop {
            gateway: Some(path.gateway),
            oif,
        })
    }

    /// Moves `group`'s prefixes to `to`; a hook or webhook also gets the
    /// leader's `fence` in a cluster.
    pub async fn change(
        &self,
        group: &GroupSpec,
        from: Option<&PathSpec>,
        to: &PathSpec,
        reason: &SwitchReason,
        fence: Option<u64>,
    ) -> Result<(), ActuateError> {
        match &group.action {
            Action::Observe => Ok(()),
            Action::Route => {
                let hop = self.next_hop(to).await?;
                for prefix in &group.routes {
                    self.netlink()?.replace_route(*prefix, &hop, None).await?;
                }
                Ok(())
            }
            Action::Exec { command, timeout } => {
                let prefixes: Vec<String> = group.routes.iter().map(ToString::to_string).collect();
                let mut cmd = tokio::process::Command::new(&command[0]);
                cmd.args(&command[1..])
                    .env("GWANJE_GROUP", group.name().as_str())
                    .env("GWANJE_FROM", from.map_or("", |p| p.name.as_str()))
                    .env("GWANJE_TO", to.name.as_str())
                    .env("GWANJE_REASON", reason.label())
                    .env("GWANJE_PREFIXES", prefixes.join(" "))
                    .env("GWANJE_GATEWAY", to.gateway.to_string())
                    .env("GWANJE_INTERFACE", to.interface.as_deref().unwrap_or(""))
                    .env(
                        "GWANJE_FENCE",
                        fence.map_or(String::new(), |f| f.to_string()),
                    )
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                let mut child = cmd.spawn().map_err(|source| ActuateError::HookStart {
                    command: command[0].clone(),
                    source,
                })?;
                let (out, err) = (child.stdout.take(), child.stderr.take());
                // Both pipes are read to the end (so the hook never blocks on a
                // full pipe), keeping only their first bytes.
                let ran = tokio::time::timeout(*timeout, async {
                    let (_, err, status) = tokio::join!(capped(out), capped(err), child.wait());
                    (err, status)
                })
                .await
                .map_err(|_| ActuateError::HookTimeout {
                    command: command[0].clone(),
                    timeout: humantime::format_duration(*timeout).to_string(),
                })?;
                let (stderr, status) = ran;
                let status = status.map_err(|source| ActuateError::HookStart {
                    command: command[0].clone(),
                    source,
                })?;
                // Its stderr goes to the log only, escaped (never to the
                // journal or an alert: it may hold anything).
                if !stderr.is_empty() {
                    let text = String::from_utf8_lossy(&stderr);
                    let hook = crate::logging::escape(&command[0]);
                    let stderr = crate::logging::escape(&text);
                    if status.success() {
                        tracing::info!(%hook, %stderr, "the hook wrote to stderr");
                    } else {
                        tracing::warn!(%hook, %stderr, "the hook failed; its stderr");
                    }
                }
                if status.success() {
                    Ok(())
                } else {
                    Err(ActuateError::HookFailed {
                        command: command[0].clone(),
                        status,
                    })
                }
            }
            Action::Webhook { url, timeout } => {
                let body = ChangeBody {
                    group: group.name().as_str(),
                    from: from.map(|p| p.name.as_str()),
                    to: to.name.as_str(),
                    reason: reason.to_string(),
                    prefixes: group.routes.iter().map(ToString::to_string).collect(),
                    gateway: to.gateway.to_string(),
                    interface: to.interface.as_deref(),
                    fence,
                };
                let resp = self
                    .http
                    .post(url.clone())
                    .timeout(*timeout)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|source| ActuateError::Webhook {
                        url: url.origin().ascii_serialization(),
                        source: source.without_url(),
                    })?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(ActuateError::WebhookStatus {
                        url: url.origin().ascii_serialization(),
                        status: resp.status(),
                    })
                }
            }
        }
    }

    /// Which path the kernel's route for `group` uses now (`None`: absent or
    /// via no configured path). Only `route` groups have kernel state.
    pub async fn observe(
        &self,
        group: &GroupSpec,
        paths: &[PathSpec],
    ) -> Result<Option<PathName>, ActuateError> {
        if group.action != Action::Route {
            return Ok(None);
        }
        let nl = self.netlink()?;
        let Some(prefix) = group.routes.first() else {
            return Ok(None);
        };
        let Some(hop) = nl.route_for(*prefix).await? else {
            return Ok(None);
        };
        for p in paths.iter().filter(|p| group.core.paths.contains(&p.name)) {
            if hop.gateway != Some(p.gateway) {
                continue;
            }
            let oif_matches = match &p.interface {
                Some(name) => Some(nl.link_index(name).await?) == hop.oif,
                None => true,
            };
            if oif_matches {
                return Ok(Some(p.name.clone()));
            }
        }
        Ok(None)
    }

    /// Installs `fwmark → table` and the table's default route for each path
    /// that asks for it.
    pub async fn install_policy_routing(&self, paths: &[PathSpec]) -> Result<(), ActuateError> {
        for p in paths.iter().filter(|p| p.manage_policy_routing) {
            let (Some(mark), Some(table)) = (p.fwmark, p.table) else {
                continue;
            };
            let nl = self.netlink()?;
            let v6 = p.gateway.is_ipv6();
            nl.add_rule(mark, table, v6).await?;
            let hop = self.next_hop(p).await?;
            nl.replace_route(default_route(p.gateway), &hop, Some(table))
                .await?;
        }
        Ok(())
    }

    /// Removes what [`Actuator::install_policy_routing`] installed.
    pub async fn remove_policy_routing(&self, paths: &[PathSpec]) {
        for p in paths.iter().filter(|p| p.manage_policy_routing) {
            let (Some(mark), Some(table), Ok(nl)) = (p.fwmark, p.table, self.netlink()) else {
                continue;
            };
            if let Err(e) = nl.delete_rule(mark, table, p.gateway.is_ipv6()).await {
                tracing::warn!(path = %p.name, "removing policy rule: {e}");
            }
            if let Ok(hop) = self.next_hop(p).await
                && let Err(e) = nl
                    .delete_route(default_route(p.gateway), &hop, Some(table))
                    .await
            {
                tracing::warn!(path = %p.name, "removing the path's default route: {e}");
            }
        }
    }
}

fn default_route(gateway: IpAddr) -> ipnet::IpNet {
    match gateway {
        IpAddr::V4(_) => "0.0.0.0/0".parse().expect("valid prefix"),
        IpAddr::V6(_) => "::/0".parse().expect("valid prefix"),
    }
}

/// How long the route watcher waits for the kernel to settle before re-reading.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(50);

/// The most of a hook's stdout or stderr gwanje keeps.
const HOOK_OUTPUT_BYTES: usize = 4096;

/// Reads `pipe` to its end, keeping its first [`HOOK_OUTPUT_BYTES`].
async fn capped(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = HOOK_OUTPUT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
    kept
}
