//! The actuator: watches the leader's orders in etcd and applies each one
//! whose fence is at least the highest it has applied (kept on disk), then
//! reads the route back and records what it did under `applied/`.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::KeyValue;
use tokio::sync::{mpsc, watch};

use super::{Applied, CoordError, Desired, FenceFile, MAX_RECORD_BYTES};
use crate::actuate::RouteTable;
use crate::core::{GroupName, PathName, SwitchReason};
use crate::metrics::Metrics;
use crate::plan::{ClusterSpec, Plan};

/// What the actuator tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// An order was carried out (or failed: `error`).
    Applied {
        /// The group.
        group: GroupName,
        /// The path.
        to: PathName,
        /// The order's fence.
        fence: u64,
        /// The change's error, if it failed.
        error: Option<String>,
    },
    /// No actuator has applied anything for the group yet (replicas
    /// without a co-located actuator: the cluster has no route for it).
    Unrouted {
        /// The group.
        group: GroupName,
    },
    /// An order was refused.
    Refused {
        /// The group, as its key names it.
        group: GroupName,
        /// Its fence, when readable.
        fence: Option<u64>,
        /// The highest fence applied.
        highest: u64,
    },
}

/// Applies the cluster's orders until the engine goes away; reconnects to
/// etcd with backoff. A fence file that cannot be read stops it (and the
/// daemon): an actuator that cannot tell old orders from new must not act.
pub async fn actuate(
    spec: ClusterSpec,
    plans: watch::Receiver<Arc<Plan>>,
    routes: Arc<dyn RouteTable>,
    reports: mpsc::Sender<Report>,
    metrics: Arc<Metrics>,
) -> Result<(), CoordError> {
    let mut fence = FenceFile::open(&spec.fence_file)?;
    metrics
        .cluster
        .fence_applied
        .set(i64::try_from(fence.highest()).unwrap_or(i64::MAX));
    let mut backoff = Duration::from_millis(250);
    loop {
        match follow(&spec, &plans, &routes, &reports, &metrics, &mut fence).await {
            Ok(()) => return Ok(()),
            Err(CoordError::Fence { path, source }) => {
                return Err(CoordError::Fence { path, source });
            }
            Err(e) => tracing::warn!(cluster = %spec.name, "actuator: {}; reconnecting", e.chain()),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Applies every current order, then each new one.
async fn follow(
    spec: &ClusterSpec,
    plans: &watch::Receiver<Arc<Plan>>,
    routes: &Arc<dyn RouteTable>,
    reports: &mpsc::Sender<Report>,
    metrics: &Metrics,
    fence: &mut FenceFile,
) -> Result<(), CoordError> {
    let prefix = format!("{}desired/", super::prefix(&spec.name));
    let mut orders = super::changes::Changes::open(spec, &prefix).await?;
    loop {
        let (kv, _) = orders.next().await?;
        let Some(done) = apply(spec, plans, routes, metrics, fence, &prefix, &kv).await? else {
            continue;
        };
        if reports.send(done).await.is_err() {
            return Ok(());
        }
    }
}

/// Applies one order if its fence allows; says what happened (nothing for
/// an order it applied before, read back after a restart or a reconnect).
#[allow(clippy::too_many_arguments)]
async fn apply(
    spec: &ClusterSpec,
    plans: &watch::Receiver<Arc<Plan>>,
    routes: &Arc<dyn RouteTable>,
    metrics: &Metrics,
    fence: &mut FenceFile,
    prefix: &str,
    kv: &KeyValue,
) -> Result<Option<Report>, CoordError> {
    let name = String::from_utf8_lossy(kv.key().strip_prefix(prefix.as_bytes()).unwrap_or(b""))
        .into_owned();
    let group = GroupName::new(&name);
    if fence.applied(&name, kv.mod_revision()) {
        return Ok(None);
    }
    let highest = fence.highest();
    let refuse = |fence: Option<u64>, reason: &str| {
        metrics
            .cluster
            .fence_rejections
            .with_label_values(&[reason])
            .inc();
        tracing::error!(
            group = %crate::logging::escape(&name),
            fence,
            highest,
            reason,
            "refused a route order"
        );
        Some(Report::Refused {
            group: group.clone(),
            fence,
            highest,
        })
    };
    let plan = plans.borrow().clone();
    let desired = (kv.value().len() <= MAX_RECORD_BYTES)
        .then(|| serde_json::from_slice::<Desired>(kv.value()).ok())
        .flatten();
    let spec_of = desired.as_ref().and_then(|d| {
        let g = plan.groups.iter().find(|g| g.name().as_str() == name)?;
        let to = plan.paths.iter().find(|p| p.name.as_str() == d.path)?;
        g.core
            .paths
            .contains(&to.name)
            .then(|| (g.clone(), to.clone()))
    });
    let (Some(d), Some((g, to))) = (desired, spec_of) else {
        return Ok(refuse(None, "unreadable"));
    };
    if d.fence < highest {
        return Ok(refuse(Some(d.fence), "stale_fence"));
    }
    // On disk before the route moves: a crash after it never lets an older order in.
    fence.record(&name, d.fence, kv.mod_revision())?;
    metrics
        .cluster
        .fence_applied
        .set(i64::try_from(d.fence).unwrap_or(i64::MAX));
    let from = d
        .from
        .as_ref()
        .and_then(|f| plan.paths.iter().find(|p| p.name.as_str() == f.as_str()));
    let Some(reason) = reason_of(&d.reason) else {
        return Ok(refuse(Some(d.fence), "unreadable"));
    };
    let mut error = routes
        .change(&g, from, &to, &reason, Some(d.fence))
        .await
        .err()
        .map(|e| e.to_string());
    // Read back: a route that did not land is a failure, not a success.
    if error.is_none() && g.action == crate::plan::Action::Route {
        match routes.observe(&g, &plan.paths).await {
            Ok(Some(p)) if p == to.name => {}
            Ok(other) => {
                error = Some(format!(
                    "the kernel routes via {} after the change",
                    other.as_ref().map_or("no configured path", |p| p.as_str())
                ))
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    let applied = Applied {
        path: to.name.to_string(),
        fence: d.fence,
        revision: kv.mod_revision(),
        error: error.clone(),
    };
    match &error {
        None => {
            tracing::info!(group = %name, path = %to.name, fence = d.fence, "applied a route order")
        }
        Some(e) => {
            tracing::error!(group = %name, path = %to.name, fence = d.fence, "a route order failed: {e}")
        }
    }
    record(spec, &name, &applied).await;
    Ok(Some(Report::Applied {
        group,
        to: to.name.clone(),
        fence: d.fence,
        error,
    }))
}

/// The switch reason an order names (its label); a hook sees the label.
fn reason_of(label: &str) -> Option<SwitchReason> {
    Some(match label {
        "initial" => SwitchReason::Initial,
        "path_failed" => SwitchReason::PathFailed {
            why: crate::core::PathReason::None,
        },
        "failback" => SwitchReason::Failback,
        "pinned" => SwitchReason::Pinned,
        "drift_corrected" => SwitchReason::DriftCorrected,
        _ => return None,
    })
}

/// Records what this replica's actuator applied (best effort: the
/// leader's completion does not wait on it).
async fn record(spec: &ClusterSpec, group: &str, applied: &Applied) {
    let key = format!(
        "{}applied/{}/{group}",
        super::prefix(&spec.name),
        spec.replica
    );
    let value = serde_json::to_vec(applied).expect("an applied record serialises");
    let put = async {
        let mut client = super::connect(spec).await?;
        client.put(key, value, None).await.map_err(CoordError::Etcd)
    };
    if let Ok(Err(e)) | Err(e) = tokio::time::timeout(super::REQUEST_TIMEOUT, put)
        .await
        .map_err(|_| CoordError::Timeout)
        .map(|r| r.map(|_| ()))
    {
        tracing::warn!(cluster = %spec.name, "recording the applied route: {e}");
    }
}
