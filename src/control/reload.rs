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
    /// invalid one is logged and counted and changes nothing.
    pub async fn reload(&self) -> Result<(), ConfigErrors> {
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
            Ok((plan, token))
        });
        match plan {
            Ok((plan, token)) => {
                let current = self.plans.borrow().clone();
                if plan.settings.listen != current.settings.listen
                    || plan.settings.log_format != current.settings.log_format
                    || plan.settings.log_level != current.settings.log_level
                    || plan.settings.max_concurrency != current.settings.max_concurrency
                {
                    tracing::warn!(
                        "listen, logging and scheduler.max_concurrency changes take effect at the next restart"
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
                Ok(())
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
