//! The status snapshot served at `/api/v1/status`, and operator commands.

use serde::Serialize;
use tokio::sync::oneshot;

use crate::core::{Core, PathState};

/// One path as the status API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PathView {
    /// Name.
    pub name: String,
    /// up, down or unknown.
    pub state: &'static str,
    /// Why, in words.
    pub reason: String,
    /// Since when (Unix ms).
    pub since_ms: u64,
    /// While down: what is broken, with the evidence.
    pub diagnosis: Option<DiagnosisView>,
}

/// A down path's diagnosis as the status API shows it: the facts, and the
/// renderer's words for them.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosisView {
    /// What is broken (the `kind` label of `gwanje_path_diagnosis`).
    pub kind: crate::core::DiagnosisKind,
    /// The same in plain words, with the evidence.
    pub summary: String,
    /// The numbers and addresses behind it (`max_passing_payload`, `mtu`,
    /// `last_hop`, …), beside `kind` as before.
    #[serde(flatten)]
    pub evidence: crate::core::Evidence,
}

/// One group as the status API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    /// Name.
    pub name: String,
    /// The path the route uses now.
    pub active_path: Option<String>,
    /// Paths in order of preference, with their states.
    pub paths: Vec<PathView>,
    /// A route change in progress, as "to (reason)".
    pub pending_change: Option<String>,
    /// Operator pin, as "path until <ms> by <who>".
    pub pinned: Option<String>,
    /// Frozen by the flap guard until (Unix ms).
    pub frozen_until_ms: Option<u64>,
    /// Checks failing through every path.
    pub services_down: Vec<String>,
    /// Checks losing more than the tolerated share through every path,
    /// with each path's one-way loss (per mille) when it was raised.
    pub services_degraded: Vec<DegradedView>,
    /// Each path's failback dampening.
    pub dampening: Vec<DampeningView>,
    /// No healthy path to fail over to.
    pub failover_impossible: bool,
    /// Every path went down at once.
    pub monitor_isolated: bool,
    /// How changes are carried out.
    pub action: &'static str,
}

/// A check degraded through every path.
#[derive(Debug, Clone, Serialize)]
pub struct DegradedView {
    /// The check, `service/target`.
    pub check: String,
    /// Each path's one-way loss, per mille.
    pub loss_permille: std::collections::BTreeMap<String, u16>,
}

/// One path's route-flap dampening in a group.
#[derive(Debug, Clone, Serialize)]
pub struct DampeningView {
    /// The path.
    pub path: String,
    /// Its penalty now (each failure adds one penalty; it halves every half-life).
    pub penalty: u32,
    /// Above this it is no failback target.
    pub reuse: u32,
    /// The earliest time (Unix ms) it could be failed back to if it stays
    /// clean (stable period, dwell time and penalty); null while it is not
    /// up or failback is manual.
    pub failback_not_before_ms: Option<u64>,
}

/// One firing alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    /// Id to acknowledge it with.
    pub id: String,
    /// Alert name.
    pub name: &'static str,
    /// Severity.
    pub severity: &'static str,
    /// Identifying labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// One line.
    pub summary: String,
    /// What it means and what to do, with the evidence.
    pub description: String,
    /// Since when (Unix ms).
    pub starts_at_ms: u64,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// Whether it escalated.
    pub escalated: bool,
}

impl From<&crate::core::Alert> for AlertView {
    fn from(a: &crate::core::Alert) -> Self {
        AlertView {
            id: a.id.clone(),
            name: a.name().as_str(),
            severity: a.severity().as_str(),
            labels: a.labels(),
            summary: crate::core::render::summary(&a.kind),
            description: crate::core::render::description(&a.kind),
            starts_at_ms: a.starts_at.0,
            acknowledged_by: a.acknowledged.as_ref().map(|(by, _)| by.clone()),
            escalated: a.escalated,
        }
    }
}

/// The whole snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Alerts firing now.
    pub alerts: Vec<AlertView>,
    /// Every failover group.
    pub groups: Vec<GroupView>,
    /// Number of probe jobs running.
    pub jobs: usize,
    /// This instance as a vantage; with peers, every vantage and every
    /// target's verdict with its votes.
    pub vantage: Option<VantageStatus>,
    /// This replica's place in its cluster, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// The cluster section of the status.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// The cluster's name.
    pub name: String,
    /// This replica's name.
    pub replica: String,
    /// `leader`, `follower` or `lost`.
    pub role: &'static str,
    /// The fence it leads with.
    pub fence: Option<u64>,
    /// Since when it leads (Unix ms).
    pub leader_since_ms: Option<u64>,
    /// Why coordination is lost, while it is.
    pub lost: Option<&'static str>,
}

/// The cluster section for `spec` from the core's view of its role.
pub fn cluster(core: &Core, spec: &crate::plan::ClusterSpec) -> ClusterStatus {
    let l = core.leadership();
    let lost = l.and_then(|l| l.lost);
    let fence = l.and_then(|l| l.fence());
    ClusterStatus {
        name: spec.name.clone(),
        replica: spec.replica.clone(),
        role: match (fence, lost) {
            (Some(_), _) => "leader",
            (None, Some(_)) => "lost",
            (None, None) => "follower",
        },
        fence,
        leader_since_ms: l.and_then(|l| l.since).map(|t| t.0),
        lost: lost.map(|f| f.label()),
    }
}

/// The vantage section of the status.
#[derive(Debug, Clone, Serialize)]
pub struct VantageStatus {
    /// The quorum's version the verdicts were built at.
    #[serde(skip)]
    pub version: Option<u64>,
    /// This vantage's name.
    pub name: String,
    /// Its site.
    pub site: Option<String>,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The last sequence number of its observation stream.
    pub seq: u64,
    /// Every vantage (with peers).
    pub vantages: Vec<crate::core::VantageView>,
    /// Every voted target (with peers).
    pub verdicts: Vec<VerdictView>,
}

/// One target's verdict and the votes behind it.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictView {
    /// `service/target`.
    pub target: String,
    /// up, down, unknown or insufficient.
    pub verdict: &'static str,
    /// Since when (Unix ms).
    pub since_ms: u64,
    /// Each vantage's vote: its name, its ballot and since when.
    pub votes: Vec<VoteView>,
}

/// One vote.
#[derive(Debug, Clone, Serialize)]
pub struct VoteView {
    /// The vantage.
    pub vantage: String,
    /// up, down, unknown, stale, isolated or skewed.
    pub vote: &'static str,
    /// Since when (Unix ms).
    pub since_ms: u64,
}

/// The vantage section from the plan's vantage and the core's quorum;
/// the verdicts are rebuilt only when `old` holds none or they moved
/// since (a thousand targets' votes are not rebuilt every second for nothing).
pub fn vantage(
    core: &Core,
    spec: &crate::plan::VantageSpec,
    old: Option<VantageStatus>,
) -> VantageStatus {
    let version = core.quorum().map(|q| q.version());
    let kept = old.filter(|o| o.version == version && o.name == spec.name.as_str());
    let (vantages, verdicts) = core.quorum().map_or_else(Default::default, |q| {
        if let Some(old) = kept {
            return (q.vantages(core.now()), old.verdicts);
        }
        let verdicts = q
            .verdicts()
            .map(|(k, v, since, votes)| VerdictView {
                target: k.to_string(),
                verdict: v.as_str(),
                since_ms: since.0,
                votes: votes
                    .into_iter()
                    .map(|v| VoteView {
                        vantage: v.vantage.to_string(),
                        vote: v.ballot.as_str(),
                        since_ms: v.since.0,
                    })
                    .collect(),
            })
            .collect();
        (q.vantages(core.now()), verdicts)
    });
    VantageStatus {
        version,
        name: spec.name.to_string(),
        site: spec.site.clone(),
        labels: spec.labels.clone(),
        seq: core.observed(),
        vantages,
        verdicts,
    }
}

/// Builds the snapshot from the core.
pub fn snapshot(core: &Core, actions: &dyn Fn(&str) -> &'static str, jobs: usize) -> Status {
    let path_view = |name: &crate::core::PathName| {
        let s = core.paths().get(name);
        PathView {
            name: name.to_string(),
            state: s.map_or(PathState::Unknown, |s| s.state).as_str(),
            reason: s.map_or_else(|| "not planned".into(), |s| s.reason.to_string()),
            since_ms: s.map_or(0, |s| s.since.0),
            diagnosis: s.and_then(|s| s.diagnosis.as_ref()).map(|d| DiagnosisView {
                kind: d.kind,
                summary: crate::core::render::diagnosis(name, d),
                evidence: d.evidence.clone(),
            }),
        }
    };
    let groups = core
        .groups()
        .values()
        .map(|g| GroupView {
            name: g.cfg.name.to_string(),
            active_path: g.active.as_ref().map(ToString::to_string),
            paths: g.cfg.paths.iter().map(path_view).collect(),
            pending_change: g
                .pending
                .as_ref()
                .map(|p| format!("{} ({})", p.to, p.reason)),
            pinned: g
                .pin
                .as_ref()
                .map(|p| format!("{} until {} by {}", p.path, p.until.0, p.by)),
            frozen_until_ms: g.frozen_until.map(|t| t.0),
            services_down: g.service_down.iter().map(ToString::to_string).collect(),
            services_degraded: g
                .service_degraded
                .iter()
                .map(|(c, losses)| DegradedView {
                    check: c.to_string(),
                    loss_permille: losses.iter().map(|(p, l)| (p.to_string(), *l)).collect(),
                })
                .collect(),
            dampening: g
                .cfg
                .paths
                .iter()
                .map(|p| {
                    let penalty = g
                        .penalties
                        .get(p)
                        .map_or(0, |pen| pen.value(core.now(), &g.cfg.dampening));
                    DampeningView {
                        path: p.to_string(),
                        penalty,
                        reuse: g.cfg.dampening.reuse,
                        failback_not_before_ms: g
                            .earliest_failback(p, core.paths())
                            .map(|t| t.0.max(core.now().0)),
                    }
                })
                .collect(),
            failover_impossible: g.impossible,
            monitor_isolated: g.isolated,
            action: actions(g.cfg.name.as_str()),
        })
        .collect();
    Status {
        alerts: Vec::new(),
        groups,
        jobs,
        vantage: None,
        cluster: None,
    }
}

/// What an operator asks of a group through the admin API.
#[derive(Debug)]
pub enum CommandKind {
    /// Pin the group to a path for a while.
    Pin {
        /// The path.
        path: String,
        /// For how long.
        ttl: std::time::Duration,
    },
    /// Remove a pin.
    Unpin,
    /// Lift a flap-guard freeze.
    Unfreeze,
    /// Acknowledge an alert (the `group` field is unused).
    Ack {
        /// The alert id.
        id: String,
    },
    /// A configuration reload was rejected (from the reloader; `group` unused).
    ReloadRejected {
        /// How many errors the configuration had.
        errors: u32,
    },
}

/// Why a command was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No group has that name.
    #[error("no failover group named {name:?}; valid: {valid}")]
    NoGroup {
        /// The name asked for.
        name: String,
        /// The groups there are.
        valid: String,
    },
    /// The group has no such path.
    #[error("group {group} has no path {path:?}; valid: {valid}")]
    NoPath {
        /// The group.
        group: String,
        /// The path asked for.
        path: String,
        /// Its paths.
        valid: String,
    },
    /// In a cluster: the command could not be written for every replica.
    #[error("the command was not applied: the coordination store did not take it ({0})")]
    Coordination(String),
    /// The alert cannot be acknowledged.
    #[error("alert {id:?}: {why}")]
    Alert {
        /// The id asked for.
        id: String,
        /// Why not.
        why: crate::core::AckError,
    },
}

/// An operator command with its reply channel.
#[derive(Debug)]
pub struct Command {
    /// The group.
    pub group: String,
    /// Who asked (recorded with the decision).
    pub by: String,
    /// What.
    pub kind: CommandKind,
    /// Why it cannot be done, when it cannot.
    pub reply: oneshot::Sender<Result<(), CommandError>>,
}
