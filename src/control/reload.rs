//! Reloading: build a new plan, swap it in only when valid.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot, watch};

use super::AdminToken;
use crate::clock;
use crate::config::{self, ConfigErrors};
use crate::engine::{Command, CommandKind};
use crate::metrics::Metrics;
use crate::plan::Plan;

/// Reloads the configuration file into the running daemon.
pub struct Reloader {
    path: PathBuf,
    plans: watch::Sender<Arc<Plan>>,
    metrics: Arc<Metrics>,
    token: std::sync::RwLock<AdminToken>,
    /// Where a rejected reload is reported: the core decides the alert.
    engine: mpsc::Sender<Command>,
    // One reload at a time, so two concurrent reloads cannot interleave.
    busy: Mutex<()>,
}

impl Reloader {
    /// A reloader for the config at `path`, publishing plans on `plans`.
    pub fn new(
        path: PathBuf,
        plans: watch::Sender<Arc<Plan>>,
        metrics: Arc<Metrics>,
        token: AdminToken,
        engine: mpsc::Sender<Command>,
    ) -> Self {
        Reloader {
            path,
            plans,
            metrics,
            engine,
            token: std::sync::RwLock::new(token),
            busy: Mutex::new(()),
        }
    }

    /// The plan in force.
    pub fn plan(&self) -> Arc<Plan> {
        self.plans.borrow().clone()
    }

    /// The admin token in force.
    pub fn token(&self) -> AdminToken {
        self.token.read().expect("token lock").clone()
    }

    /// Loads the config again; a valid one replaces the running plan, an
    /// invalid one is logged and counted and changes nothing. Returns the
    /// settings that changed but take effect only at the next restart.
    pub async fn reload(&self) -> Result<Vec<&'static str>, ConfigErrors> {
        let _one = self.busy.lock().await;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigErrors(vec![config::ConfigError {
                    file: self.path.clone(),
                    line: None,
                    column: None,
                    key: String::new(),
                    message: format!("loading the configuration failed: {e}"),
                }]))
            });
        // The cluster section is read at start only; an actuator host
        // stays one; what the cluster steers must stay what the other
        // replicas steer.
        let loaded = loaded.and_then(|mut plan| {
            let running = self.plans.borrow().settings.cluster.clone();
            let changed = plan.settings.cluster.as_ref().map(|c| (&c.name, &c.endpoints, c.lease_ttl))
                != running.as_ref().map(|c| (&c.name, &c.endpoints, c.lease_ttl));
            if changed {
                tracing::warn!("the cluster section changed; it takes effect at the next restart");
            }
            if let Some(c) = &running
                && crate::plan::fingerprint(&plan.paths, &plan.groups) != c.fingerprint
            {
                return Err(ConfigErrors(vec![config::ConfigError {
                    file: self.path.clone(),
                    line: None,
                    column: None,
                    key: "failover_groups".into(),
                    message: "the groups or paths changed in a replica of a cluster: every replica must steer the same; restart each replica with the new configuration, then delete /gwanje/<cluster>/fingerprint".into(),
                }]));
            }
            let actuator = running.as_ref().is_some_and(|c| !c.campaign);
            plan.settings.cluster = running;
            Ok(if actuator {
                plan.actuator_only().expect("checked: a cluster section")
            } else {
                plan
            })
        });
        let plan = loaded.and_then(|plan| {
            let token =
                AdminToken::load(plan.settings.admin_token_file.as_deref()).map_err(|e| {
                    ConfigErrors(vec![config::ConfigError {
                        file: self.path.clone(),
                        line: None,
                        column: None,
                        key: "admin.token_file".into(),
                        message: format!("cannot read the token: {e}"),
                    }])
                })?;
            let current = self.plans.borrow().clone();
            needs_restart(&current, &plan).map_err(|why| {
                let key = match why {
                    NeedsRestart::PolicyRouting => "paths",
                    NeedsRestart::Netlink => "failover_groups",
                };
                ConfigErrors(vec![config::ConfigError {
                    file: self.path.clone(),
                    line: None,
                    column: None,
                    key: key.into(),
                    message: why.to_string(),
                }])
            })?;
            Ok((plan, token))
        });
        match plan {
            Ok((plan, token)) => {
                let current = self.plans.borrow().clone();
                let (now, new) = (&current.settings, &plan.settings);
                let later: Vec<&'static str> = [
                    ("listen", now.listen != new.listen),
                    (
                        "logging",
                        now.log_format != new.log_format || now.log_level != new.log_level,
                    ),
                    (
                        "scheduler.max_concurrency",
                        now.max_concurrency != new.max_concurrency,
                    ),
                    (
                        "admin.max_connections",
                        now.max_connections != new.max_connections,
                    ),
                    ("journal", now.journal != new.journal),
                ]
                .into_iter()
                .filter_map(|(key, changed)| changed.then_some(key))
                .collect();
                if !later.is_empty() {
                    tracing::warn!(
                        settings = %later.join(", "),
                        "these changes take effect at the next restart"
                    );
                }
                *self.token.write().expect("token lock") = token;
                self.metrics.reload_successful.set(1);
                self.metrics
                    .reload_success_timestamp
                    .set(clock::unix_seconds());
                self.metrics
                    .reloads_total
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(targets = plan.targets.len(), "configuration reloaded");
                self.plans.send_replace(Arc::new(plan));
                Ok(later)
            }
            Err(errors) => {
                self.metrics.reload_successful.set(0);
                self.metrics
                    .reloads_total
                    .with_label_values(&["failure"])
                    .inc();
                tracing::error!(
                    errors = errors.0.len(),
                    "configuration reload failed; keeping the running configuration:\n{errors}"
                );
                let (reply, _) = oneshot::channel();
                let _ = self
                    .engine
                    .send(Command {
                        group: String::new(),
                        by: "reload".into(),
                        kind: CommandKind::ReloadRejected {
                            errors: u32::try_from(errors.0.len()).unwrap_or(u32::MAX),
                        },
                        reply,
                    })
                    .await;
                Err(errors)
            }
        }
    }
}

/// What a reload may not change while gwanje runs (it is installed at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NeedsRestart {
    /// A check through a new mark with no rule would fail, and look like a
    /// path failure.
    #[error(
        "the paths whose policy routing gwanje manages (manage_policy_routing, fwmark, table, gateway, interface) changed: that needs a restart; the running configuration stays"
    )]
    PolicyRouting,
    /// Netlink is connected at start only.
    #[error(
        "the first group with `action: route` needs a restart (netlink is connected at start); the running configuration stays"
    )]
    Netlink,
}

/// Refuses a plan whose routing set-up differs from the running one's in
/// what is installed only at start.
fn needs_restart(current: &Plan, new: &Plan) -> Result<(), NeedsRestart> {
    let managed = |plan: &Plan| {
        let mut v: Vec<_> = plan
            .paths
            .iter()
            .filter(|p| p.manage_policy_routing)
            .map(|p| {
                (
                    p.name.clone(),
                    p.gateway,
                    p.interface.clone(),
                    p.fwmark,
                    p.table,
                )
            })
            .collect();
        v.sort();
        v
    };
    if managed(current) != managed(new) {
        return Err(NeedsRestart::PolicyRouting);
    }
    let routes = |plan: &Plan| {
        plan.groups
            .iter()
            .any(|g| g.action == crate::plan::Action::Route)
            || plan.paths.iter().any(|p| p.manage_policy_routing)
    };
    if routes(new) && !routes(current) {
        return Err(NeedsRestart::Netlink);
    }
    Ok(())
}
