//! The validated, immutable plan that everything runs from.
//!
//! A [`Plan`] is only ever built by [`crate::config::load`], so every name is
//! resolved, every regex compiled and every limit checked before anything runs.

mod cluster;
mod failover;
pub mod identity;
mod parts;
mod receiver;
mod spec;
mod vantage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use cluster::{
    ClusterSpec, DEFAULT_LEASE_TTL, LEASE_TTL, MAX_ENDPOINTS, SAFETY_MARGIN, fingerprint,
};
pub use failover::{Action, GroupSpec, Job, PathSpec};
pub use parts::{Pattern, Source, TlsSpec};
pub use receiver::Receiver;
pub use spec::{
    DnsProtocol, DnsSpec, ExchangeStep, HttpSpec, HttpVersion, IcmpSpec, JsonAssertion,
    JsonExpectation, MAX_REDIRECTS, ProbeSpec, RequestHeader, TcpSpec,
};
pub use vantage::{
    DEFAULT_MAX_SKEW, DEFAULT_MIN_VANTAGES, MAX_PEERS, MAX_SKEW, MIN_VANTAGES, PeerSpec,
    VantageSpec,
};

use crate::core::{CoreConfig, HealthPolicy, Subject, SubjectConfig, TargetKey};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Daemon-wide settings from `config/gwanje.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where the metrics and admin API listen.
    pub listen: SocketAddr,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter directive (e.g. `info`, `gwanje=debug`).
    pub log_level: String,
    /// At most this many probes run at once.
    pub max_concurrency: usize,
    /// Most open connections to the admin/metrics listener at once.
    pub max_connections: usize,
    /// File holding the bearer token for admin calls, if any.
    pub admin_token_file: Option<PathBuf>,
    /// Where and how alerts are sent.
    pub alerting: Alerting,
    /// The flight recorder, when on.
    pub journal: Option<JournalSpec>,
    /// When a path's packet loss degrades it.
    pub path_quality: crate::core::QualityPolicy,
    /// File holding the read-only observer token, if any.
    pub observer_token_file: Option<PathBuf>,
    /// This instance as a vantage, and the peers it follows.
    pub vantage: VantageSpec,
    /// A replica of a cluster of controllers, when set.
    pub cluster: Option<ClusterSpec>,
}

/// When the journal forces its writes to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every batch.
    Always,
    /// At most this long after a write.
    Every(Duration),
    /// Never: the kernel writes back on its own. A crash of gwanje loses only
    /// what was still queued; a crash of the machine, what the kernel held.
    Never,
}

/// The journal's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSpec {
    /// Its folder.
    pub dir: PathBuf,
    /// A segment is rotated past this many bytes.
    pub segment_bytes: u64,
    /// A segment is rotated past this age.
    pub segment_age: Duration,
    /// Oldest segments are deleted while the journal is larger than this.
    pub retain_bytes: u64,
    /// Segments older than this are deleted.
    pub retain_age: Duration,
    /// The fsync policy.
    pub fsync: Fsync,
    /// Records queued for the writer at most; more are dropped and counted.
    pub queue: usize,
}

/// The `alerting` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerting {
    /// Alertmanager replicas and webhooks.
    pub receivers: Vec<Receiver>,
    /// Resend, resolution, escalation and event timers.
    pub policy: crate::core::AlertPolicy,
    /// gwanje's own URL, for `generatorURL`; unset, the address the API bound.
    pub external_url: Option<String>,
    /// Base URL of the runbooks (`<base><AlertName>.md`).
    pub runbook_url: String,
}

/// One target: what to probe, how often, and how to judge it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Identity (`service/name`).
    pub key: TargetKey,
    /// The service (catalog) it belongs to.
    pub service: Arc<str>,
    /// Its name within the service.
    pub name: Arc<str>,
    /// Time between probe starts.
    pub interval: Duration,
    /// Time a probe may take; always below `interval`.
    pub timeout: Duration,
    /// Health thresholds.
    pub health: HealthPolicy,
    /// The probe itself.
    pub probe: ProbeSpec,
}

/// A service: one probe catalog file.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Its name, used as the `service` label.
    pub name: Arc<str>,
    /// The catalog file it came from.
    pub file: PathBuf,
    /// Number of targets.
    pub targets: usize,
    /// Down votes its targets need (`quorum`); `None`: a majority.
    pub quorum: Option<u32>,
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The daemon config file this plan was loaded from.
    pub source: PathBuf,
    /// Daemon-wide settings.
    pub settings: Settings,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Targets in file order.
    pub targets: Vec<Arc<Target>>,
    /// Paths.
    pub paths: Vec<PathSpec>,
    /// Failover groups.
    pub groups: Vec<GroupSpec>,
    /// Every probe to run: plain targets, each check through each path of
    /// its group, and each path's router.
    pub jobs: Vec<Arc<Job>>,
}

impl Plan {
    /// The plan of an actuator host (`gwanje actuate`): the same groups and
    /// paths, nothing probed, no peers, no policy routing (nothing here
    /// probes through it), the cluster's orders applied without
    /// campaigning. `None` without a cluster section.
    pub fn actuator_only(mut self) -> Option<Plan> {
        let cluster = self.settings.cluster.as_mut()?;
        cluster.campaign = false;
        cluster.actuate = true;
        self.targets.clear();
        self.jobs.clear();
        self.settings.vantage.peers.clear();
        self.settings.vantage.controls.clear();
        for p in &mut self.paths {
            p.manage_policy_routing = false;
        }
        Some(self)
    }

    /// The core's view of the plan.
    pub fn core_config(&self) -> CoreConfig {
        CoreConfig {
            subjects: self
                .jobs
                .iter()
                .map(|j| SubjectConfig {
                    subject: j.subject.clone(),
                    policy: j.health,
                })
                .collect(),
            paths: self.paths.iter().map(|p| p.name.clone()).collect(),
            groups: self.groups.iter().map(|g| g.core.clone()).collect(),
            alerting: self.settings.alerting.policy,
            quality: self.settings.path_quality,
            quorum: self.quorum_config(),
            cluster: self.settings.cluster.is_some(),
        }
    }

    /// With peers, how the vantages decide together: every target is voted
    /// on, with its own interval and thresholds.
    fn quorum_config(&self) -> Option<crate::core::QuorumConfig> {
        let v = &self.settings.vantage;
        if v.peers.is_empty() {
            return None;
        }
        let targets = self
            .targets
            .iter()
            .map(|t| crate::core::QuorumTarget {
                target: t.key.clone(),
                interval_ms: u64::try_from(t.interval.as_millis()).unwrap_or(u64::MAX),
                k: self
                    .services
                    .iter()
                    .find(|s| s.name == t.service)
                    .and_then(|s| s.quorum),
                policy: t.health,
                groups: self
                    .groups
                    .iter()
                    .filter(|g| g.core.checks.contains(&t.key))
                    .map(|g| g.name().clone())
                    .collect(),
            })
            .collect();
        Some(crate::core::QuorumConfig {
            local: v.name.clone(),
            peers: v.peers.iter().map(|p| p.name.clone()).collect(),
            min_vantages: v.min_vantages,
            max_skew_ms: u64::try_from(v.max_skew.as_millis()).unwrap_or(u64::MAX),
            isolation_share_permille: v.isolation_share_permille,
            controls: v.controls.clone(),
            targets,
        })
    }

    /// Builds the job list from targets, paths and groups: a check target
    /// is probed through every path of its group (and not directly).
    pub fn build_jobs(
        targets: &[Arc<Target>],
        paths: &[PathSpec],
        groups: &[GroupSpec],
    ) -> Vec<Arc<Job>> {
        let mut jobs = Vec::new();
        for t in targets {
            let group = groups.iter().find(|g| g.core.checks.contains(&t.key));
            let Some(group) = group else {
                jobs.push(Arc::new(Job {
                    subject: Subject::Target(t.key.clone()),
                    target: t.clone(),
                    health: t.health,
                }));
                continue;
            };
            for p in group
                .core
                .paths
                .iter()
                .filter_map(|n| paths.iter().find(|p| p.name == *n))
            {
                let mut bound = (**t).clone();
                bound.probe.bind_to(p);
                jobs.push(Arc::new(Job {
                    subject: Subject::Check(t.key.clone(), p.name.clone()),
                    target: Arc::new(bound),
                    health: t.health,
                }));
            }
        }
        for p in paths {
            jobs.push(Arc::new(Job {
                subject: Subject::Router(p.name.clone()),
                target: p.router.clone(),
                health: p.router_health,
            }));
        }
        jobs
    }

    /// A short human summary: services, targets per kind.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} services, {} targets, {} paths, {} failover groups ({} probe jobs); listen {}",
            self.source.display(),
            self.services.len(),
            self.targets.len(),
            self.paths.len(),
            self.groups.len(),
            self.jobs.len(),
            self.settings.listen
        );
        for s in &self.services {
            let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
            for t in self.targets.iter().filter(|t| t.service == s.name) {
                *kinds.entry(t.probe.kind()).or_default() += 1;
            }
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let _ = writeln!(
                out,
                "  {:<20} {:>4} targets ({})  {}",
                s.name,
                s.targets,
                kinds.join(", "),
                s.file.display()
            );
        }
        for g in &self.groups {
            let paths: Vec<&str> = g.core.paths.iter().map(|p| p.as_str()).collect();
            let routes: Vec<String> = g.routes.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "  group {:<14} {} over {} ({} checks, action {})",
                g.name(),
                routes.join(", "),
                paths.join(" > "),
                g.core.checks.len(),
                g.action.label()
            );
        }
        out
    }
}
