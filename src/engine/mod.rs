//! The engine: one task that owns the core. It applies plans, turns probe
//! results, route observations, actuation results and operator commands into
//! core inputs, runs the core's timers, and carries out its effects.

pub mod clock;
mod fault;
mod report;
mod scheduler;
pub mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use scheduler::{Completed, Scheduler, phase_offset};
pub use status::{Command, CommandKind, Status};

use crate::actuate::{Actuator, Netlink, WATCH_DEBOUNCE};
use crate::alert::{Sinks, to_alertmanager};
use crate::core::{
    AlertBook, Core, Effect, FailureKind, GroupName, Input, Observation, PathName, Severity,
    Subject, Timestamp,
};
use crate::metrics::Metrics;
use crate::plan::{Action, Plan};
use crate::probe::ProbeContext;

/// Capacity of the results channel; probes wait when the engine is behind.
const RESULTS_CAPACITY: usize = 4096;

/// What the engine shares with the API.
#[derive(Clone)]
pub struct Shared {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// True once the first plan is being probed.
    pub ready: Arc<AtomicBool>,
    /// The latest status snapshot.
    pub status: Arc<RwLock<Status>>,
}

/// Messages from helper tasks back to the engine.
enum Event {
    Actuated {
        group: GroupName,
        to: PathName,
        result: Result<(), String>,
    },
    Observed {
        group: GroupName,
        path: Option<PathName>,
        read_at: tokio::time::Instant,
    },
}

struct Engine {
    core: Core,
    plan: Arc<Plan>,
    scheduler: Scheduler,
    shared: Shared,
    actuator: Actuator,
    events: mpsc::Sender<Event>,
    /// When each group's last route change finished: observations read
    /// before it are stale and must not count as drift.
    changed_at: HashMap<GroupName, tokio::time::Instant>,
    alerts: AlertBook,
    sinks: Sinks,
    http: reqwest::Client,
    /// The API's bound address: alert links point there unless configured.
    listen: Option<std::net::SocketAddr>,
}

/// Runs until `plans` closes.
pub async fn run(
    mut plans: watch::Receiver<Arc<Plan>>,
    ctx: Arc<ProbeContext>,
    shared: Shared,
    actuator: Actuator,
    mut commands: mpsc::Receiver<Command>,
) {
    let (tx, mut results) = mpsc::channel(RESULTS_CAPACITY);
    let (events_tx, mut events) = mpsc::channel(256);
    let first = plans.borrow_and_update().clone();
    let http = crate::alert::http_client();
    let mut e = Engine {
        alerts: AlertBook::new(first.settings.alerting.policy),
        sinks: Sinks::start(
            &first.settings.alerting.receivers,
            http.clone(),
            shared.metrics.clone(),
        ),
        http,
        listen: ctx.own_listener(),
        core: Core::new(),
        scheduler: Scheduler::new(
            ctx,
            first.settings.max_concurrency,
            tx,
            shared.metrics.clone(),
        ),
        plan: first.clone(),
        shared,
        actuator,
        events: events_tx,
        changed_at: HashMap::new(),
    };
    e.apply(first);
    let _watcher = e.watch_routes();
    e.shared.ready.store(true, Ordering::SeqCst);
    let mut alert_tick = tokio::time::interval(Duration::from_secs(1));
    alert_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let timer = e.core.poll_timeout().map(deadline_instant);
        tokio::select! {
            changed = plans.changed() => {
                if changed.is_err() {
                    return;
                }
                let plan = plans.borrow_and_update().clone();
                e.apply(plan);
            }
            Some(done) = results.recv() => e.completed(done),
            Some(event) = events.recv() => e.event(event),
            Some(cmd) = commands.recv() => e.command(cmd),
            _ = alert_tick.tick() => e.alert_tick(),
            _ = sleep_until_opt(timer) => {
                e.core.handle_timeout(clock::now());
                e.drain(None);
            }
        }
    }
}

fn deadline_instant(at: Timestamp) -> tokio::time::Instant {
    let wait = at.since(clock::now());
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Engine {
    fn apply(&mut self, plan: Arc<Plan>) {
        let alerting = &plan.settings.alerting;
        self.alerts.set_policy(alerting.policy);
        if alerting.receivers != self.plan.settings.alerting.receivers {
            self.sinks = Sinks::start(
                &alerting.receivers,
                self.http.clone(),
                self.shared.metrics.clone(),
            );
        }
        // The core learns the subjects before their first results can arrive.
        self.core
            .handle_input(clock::now(), Input::PlanApplied(plan.core_config()));
        let m = &self.shared.metrics;
        m.targets.sync(&plan);
        m.targets_planned.reset();
        for t in &plan.targets {
            m.targets_planned
                .with_label_values(&[&*t.service, t.probe.kind()])
                .inc();
        }
        for g in &plan.groups {
            // Series exist from the start, so dashboards and rules see zeros.
            let name = g.name().as_str();
            let frozen = self
                .core
                .groups()
                .get(g.name())
                .is_some_and(|s| s.frozen_until.is_some());
            m.group_frozen
                .with_label_values(&[name])
                .set(i64::from(frozen));
            m.route_drift_total.with_label_values(&[name]);
            m.route_change_failures_total.with_label_values(&[name]);
        }
        self.scheduler.apply(&plan);
        self.plan = plan;
        // Groups not adopted yet (new ones) need the kernel's route read.
        for g in self.plan.groups.clone() {
            if self.core.groups().get(g.name()).is_some_and(|s| !s.adopted) {
                self.observe(g.name().clone());
            }
        }
        tracing::info!(
            jobs = self.scheduler.len(),
            services = self.plan.services.len(),
            groups = self.plan.groups.len(),
            "plan applied"
        );
        self.drain(None);
    }

    fn completed(&mut self, done: Completed) {
        let job = &done.job;
        let failure = done.result.failure.as_ref().map(|f| f.kind);
        if !matches!(job.subject, crate::core::Subject::Router(_)) {
            self.shared
                .metrics
                .probes_total
                .with_label_values(&[
                    &*job.target.service,
                    job.target.probe.kind(),
                    failure.map_or("success", |k| k.as_str()),
                ])
                .inc();
        }
        if let Some(f) = &done.result.failure {
            tracing::debug!(subject = %job.subject, kind = %f.kind, detail = %f.detail, "probe failed");
        }
        self.core.handle_input(
            done.at,
            Input::ProbeCompleted(Observation {
                subject: job.subject.clone(),
                at: done.at,
                failure,
            }),
        );
        self.probe_alerts(job, &done.result, done.at);
        let detail = done.result.failure.as_ref().map(|f| f.detail.clone());
        self.shared
            .metrics
            .targets
            .record(&job.subject, done.result);
        self.drain(detail.as_deref());
    }

    fn event(&mut self, event: Event) {
        let input = match event {
            Event::Actuated { group, to, result } => {
                self.changed_at
                    .insert(group.clone(), tokio::time::Instant::now());
                Input::RouteChangeCompleted { group, to, result }
            }
            Event::Observed {
                group,
                path,
                read_at,
            } => {
                if self.changed_at.get(&group).is_some_and(|t| read_at < *t) {
                    return;
                }
                Input::RoutesObserved { group, path }
            }
        };
        self.core.handle_input(clock::now(), input);
        self.drain(None);
    }

    fn command(&mut self, cmd: Command) {
        if let status::CommandKind::Ack { id } = &cmd.kind {
            let result = self.alerts.acknowledge(clock::now(), id, &cmd.by);
            if result.is_ok() {
                tracing::info!(
                    alert = %crate::logging::escape(id),
                    by = %crate::logging::escape(&cmd.by),
                    "alert acknowledged"
                );
            }
            let _ = cmd.reply.send(result);
            self.alert_tick();
            return;
        }
        let group = GroupName::new(&cmd.group);
        let Some(spec) = self.plan.groups.iter().find(|g| *g.name() == group) else {
            let _ = cmd
                .reply
                .send(Err(format!("no failover group named {:?}", cmd.group)));
            return;
        };
        let now = clock::now();
        let input = match cmd.kind {
            status::CommandKind::Pin { path, ttl } => {
                let path = PathName::new(&path);
                if !spec.core.paths.contains(&path) {
                    let names: Vec<&str> = spec.core.paths.iter().map(|p| p.as_str()).collect();
                    let _ = cmd.reply.send(Err(format!(
                        "group {group} has no path {path}; valid: {}",
                        names.join(", ")
                    )));
                    return;
                }
                Input::Pin {
                    group,
                    path,
                    until: Timestamp(now.0 + ttl.as_millis() as u64),
                    by: cmd.by,
                }
            }
            status::CommandKind::Unpin => Input::Unpin { group, by: cmd.by },
            status::CommandKind::Unfreeze => Input::Unfreeze { group, by: cmd.by },
            status::CommandKind::Ack { .. } => unreachable!("handled before the group lookup"),
        };
        self.core.handle_input(now, input);
        let _ = cmd.reply.send(Ok(()));
        self.drain(None);
    }

    /// Carries out and reports every pending effect, then refreshes the status.
    fn drain(&mut self, detail: Option<&str>) {
        let mut any = false;
        while let Some(effect) = self.core.poll_effect() {
            any = true;
            report::report(&effect, detail, &self.shared.metrics, &self.plan);
            self.alerts.apply(clock::now(), &effect);
            if let Effect::RouteChangeRequested {
                group,
                from,
                to,
                reason,
                ..
            } = effect
            {
                self.actuate(group, from, to, reason);
            }
        }
        // The alert tick refreshes the snapshot every second anyway; effects
        // (route moves, path changes) show at once.
        if any {
            self.refresh_status();
        }
    }

    fn refresh_status(&self) {
        let plan = &self.plan;
        let action = |g: &str| {
            plan.groups
                .iter()
                .find(|s| s.name().as_str() == g)
                .map_or("observe", |s| s.action.label())
        };
        let mut snapshot = status::snapshot(&self.core, &action, plan.jobs.len());
        snapshot.alerts = self
            .alerts
            .alerts()
            .filter(|a| a.firing())
            .map(status::AlertView::from)
            .collect();
        *self.shared.status.write().expect("status lock") = snapshot;
    }

    /// Alerts a probe result raises or clears on its own: personal data in
    /// a response, and certificates close to expiry.
    fn probe_alerts(
        &mut self,
        job: &crate::plan::Job,
        result: &crate::probe::ProbeResult,
        at: Timestamp,
    ) {
        if matches!(job.subject, Subject::Router(_)) {
            return;
        }
        let t = &job.target;
        let labels = [
            ("service", &*t.service),
            ("target", &*t.name),
            ("path", job.path_label()),
        ];
        match result.failure.as_ref().map(|f| f.kind) {
            Some(FailureKind::PersonalData) => {
                self.alerts.fire(
                    at,
                    "PersonalDataExposed",
                    Severity::Critical,
                    &labels,
                    format!("{}: a response carried a resident registration number", t.key),
                    format!(
                        "The probe of {} received a response with a valid resident registration number (not logged). Treat it as a personal-data incident; the law asks for a report within 72 hours.",
                        t.key
                    ),
                );
            }
            None => self.alerts.resolve(at, "PersonalDataExposed", &labels),
            Some(_) => {}
        }
        let expiry = match &result.details {
            crate::probe::Details::Http(h) => h.cert_expiry,
            crate::probe::Details::Tcp { cert_expiry } => *cert_expiry,
            _ => None,
        };
        if let Some(not_after) = expiry {
            let left_ms = (not_after * 1000).saturating_sub(at.0 as i64);
            let warn_ms = self.plan.settings.alerting.certificate_warning.as_millis() as i64;
            if left_ms < warn_ms {
                let days = left_ms as f64 / 86_400_000.0;
                self.alerts.fire(
                    at,
                    "CertificateExpiringSoon",
                    Severity::Warning,
                    &labels,
                    format!("{}: TLS certificate expires in {days:.1} days", t.key),
                    format!(
                        "The earliest certificate presented by {} expires in {days:.1} days. Renew it before probes (and citizens) start failing.",
                        t.key
                    ),
                );
            } else {
                self.alerts.resolve(at, "CertificateExpiringSoon", &labels);
            }
        }
    }

    /// Once a second: reload failures, alert metrics, and the alerts due.
    fn alert_tick(&mut self) {
        let now = clock::now();
        let m = &self.shared.metrics;
        m.engine_heartbeat.set(clock::unix_seconds());
        fault::engine_tick();
        if m.reload_successful.get() == 0 {
            self.alerts.fire(
                now,
                "ConfigReloadFailed",
                Severity::Warning,
                &[],
                "gwanje rejected a configuration reload; the previous configuration keeps running"
                    .into(),
                "Run gwanje check-config on the file to see every error with its line and column."
                    .into(),
            );
        } else {
            self.alerts.resolve(now, "ConfigReloadFailed", &[]);
        }
        let due = self.alerts.due(now);
        let lease = self.alerts.lease_end(now);
        let alerting = &self.plan.settings.alerting;
        let external_url = alerting.external_url.clone().unwrap_or_else(|| {
            self.listen
                .map_or_else(|| "http://127.0.0.1:9469".into(), |a| format!("http://{a}"))
        });
        self.sinks.send(
            due.iter()
                .map(|a| to_alertmanager(a, lease, &external_url, &alerting.runbook_url))
                .collect(),
        );
        m.alerts_firing.reset();
        let mut unacked = 0;
        for a in self.alerts.alerts().filter(|a| a.firing()) {
            let acked = if a.acknowledged.is_some() {
                "true"
            } else {
                "false"
            };
            m.alerts_firing
                .with_label_values(&[a.name, a.severity.as_str(), acked])
                .inc();
            if a.severity == Severity::Critical && a.acknowledged.is_none() {
                unacked += 1;
            }
        }
        m.alerts_unacknowledged_critical.set(unacked);
        self.refresh_status();
    }

    fn actuate(
        &self,
        group: GroupName,
        from: Option<PathName>,
        to: PathName,
        reason: crate::core::SwitchReason,
    ) {
        let (Some(spec), Some(to_path)) = (
            self.plan
                .groups
                .iter()
                .find(|g| *g.name() == group)
                .cloned(),
            self.plan.paths.iter().find(|p| p.name == to).cloned(),
        ) else {
            return;
        };
        let from_path = from.and_then(|f| self.plan.paths.iter().find(|p| p.name == f).cloned());
        let actuator = self.actuator.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            // A panicking actuator still answers, so the core retries instead
            // of waiting for a result that never comes.
            let change = tokio::spawn(async move {
                actuator
                    .change(&spec, from_path.as_ref(), &to_path, &reason)
                    .await
            });
            let result = change
                .await
                .unwrap_or_else(|e| Err(format!("the route change task failed: {e}")));
            let _ = events.send(Event::Actuated { group, to, result }).await;
        });
    }

    fn observe(&self, group: GroupName) {
        let Some(spec) = self
            .plan
            .groups
            .iter()
            .find(|g| *g.name() == group)
            .cloned()
        else {
            return;
        };
        let paths = self.plan.paths.clone();
        let actuator = self.actuator.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let read_at = tokio::time::Instant::now();
            match actuator.observe(&spec, &paths).await {
                Ok(path) => {
                    let _ = events
                        .send(Event::Observed {
                            group,
                            path,
                            read_at,
                        })
                        .await;
                }
                // Without the kernel's answer the group is not adopted, so it never moves blindly.
                Err(e) => {
                    tracing::error!(%group, "reading the kernel's route: {e}; not adopting until it can be read")
                }
            }
        });
    }

    /// Re-reads route groups whenever the kernel reports a route change.
    fn watch_routes(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.plan.groups.iter().any(|g| g.action == Action::Route) {
            return None;
        }
        let mut changes = match Netlink::watch_routes() {
            Ok(rx) => rx,
            Err(e) => {
                tracing::error!(
                    "watching kernel routes: {e}; external route changes will not be seen"
                );
                return None;
            }
        };
        let plan = self.plan.clone();
        let actuator = self.actuator.clone();
        let events = self.events.clone();
        Some(tokio::spawn(async move {
            while changes.recv().await.is_some() {
                tokio::time::sleep(WATCH_DEBOUNCE).await;
                while changes.try_recv().is_ok() {}
                for g in plan.groups.iter().filter(|g| g.action == Action::Route) {
                    let read_at = tokio::time::Instant::now();
                    if let Ok(path) = actuator.observe(g, &plan.paths).await {
                        let _ = events
                            .send(Event::Observed {
                                group: g.name().clone(),
                                path,
                                read_at,
                            })
                            .await;
                    }
                }
            }
        }))
    }
}
