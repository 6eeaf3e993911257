//! The engine: one task that owns the core (through the [`Driver`]). It
//! stamps what happens (probe results, route reads, actuation results,
//! operator commands, plans) with the clock and feeds it in, runs the core's
//! timers, and carries out its effects. It decides nothing itself.

mod fault;
mod report;
mod scheduler;
pub mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use crate::clock;
pub use crate::journal::Driver;
pub use report::log_line;
pub use scheduler::{Completed, Scheduler, phase_offset};
pub use status::{Command, CommandError, CommandKind, Status};

use crate::actuate::{Actuator, RouteTable, WATCH_DEBOUNCE};
use crate::alert::{AlertSink, Sinks, to_alertmanager};
use crate::clock::Clock;
use crate::core::{
    Core, Effect, GroupName, Input, Observation, Order, PathName, Severity, Timestamp,
};
use crate::metrics::Metrics;
use crate::plan::{Action, Plan};
use crate::probe::{NetExecutor, ProbeContext};

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
    /// This instance's results, for the peers that follow it.
    pub observations: Arc<crate::vantage::Hub>,
}

/// What the engine talks to: probes, routes, alert receivers and the
/// clock. Production uses the real ones ([`Adapters::live`]); paused-time
/// tests put in-memory fakes here.
pub struct Adapters {
    /// Runs probes.
    pub executor: Arc<dyn crate::probe::Executor>,
    /// Moves and reads routes.
    pub routes: Arc<dyn RouteTable>,
    /// Delivers alerts.
    pub alerts: Box<dyn AlertSink>,
    /// Reads time.
    pub clock: Arc<dyn Clock>,
    /// Examines down paths.
    pub examiner: Arc<dyn crate::examine::Examiner>,
    /// The API's bound address, for alert links.
    pub listen: Option<std::net::SocketAddr>,
    /// A replica's ties to its cluster, when it is one.
    pub cluster: Option<ClusterLink>,
}

/// A replica's ties to its cluster: the session's news, the gate that
/// says whether it may order, and its actuator's reports.
pub struct ClusterLink {
    /// The `cluster` section.
    pub spec: crate::plan::ClusterSpec,
    /// Whether this replica may order now.
    pub gate: crate::cluster::Gate,
    /// The election session's changes of role.
    pub coordination: mpsc::Receiver<crate::core::Coordination>,
    /// What the co-located actuator did.
    pub reports: mpsc::Receiver<crate::cluster::Report>,
    /// Operator commands made through any replica.
    pub operator: mpsc::Receiver<crate::cluster::operator::OperatorCommand>,
}

impl Adapters {
    /// The real network, kernel, receivers of `plan` and system clock.
    pub fn live(
        ctx: Arc<ProbeContext>,
        actuator: Actuator,
        plan: &Plan,
        metrics: Arc<Metrics>,
    ) -> Self {
        Adapters {
            listen: ctx.own_listener(),
            executor: Arc::new(NetExecutor(ctx)),
            routes: Arc::new(actuator),
            alerts: Box::new(Sinks::start(
                &plan.settings.alerting.receivers,
                crate::alert::http_client(),
                metrics,
            )),
            clock: Arc::new(crate::clock::SystemClock),
            examiner: Arc::new(crate::examine::NetExaminer),
            cluster: None,
        }
    }
}

/// Messages from helper tasks back to the engine.
enum Event {
    Actuated {
        group: GroupName,
        to: PathName,
        error: Option<String>,
    },
    Observed {
        group: GroupName,
        path: Option<PathName>,
        read_at: Timestamp,
    },
    Examined {
        path: PathName,
        examination: crate::core::Examination,
    },
    /// A leader's order `id` was not reported applied in time.
    Unapplied {
        group: GroupName,
        to: PathName,
        id: u64,
    },
}

struct Engine {
    driver: Driver,
    plan: Arc<Plan>,
    plans: watch::Receiver<Arc<Plan>>,
    scheduler: Scheduler,
    shared: Shared,
    routes: Arc<dyn RouteTable>,
    events: mpsc::Sender<Event>,
    sinks: Box<dyn AlertSink>,
    clock: Arc<dyn Clock>,
    examiner: Arc<dyn crate::examine::Examiner>,
    /// The API's bound address: alert links point there unless configured.
    listen: Option<std::net::SocketAddr>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// Journal records dropped as of the last heartbeat.
    journal_dropped: u64,
    /// When the journal last dropped records.
    journal_dropped_at: Option<Timestamp>,
    /// Where followers hand peers' results, a chunk at a time.
    remote: mpsc::Sender<Vec<crate::vantage::FromPeer>>,
    /// One follower per peer of the plan in force.
    followers: std::collections::BTreeMap<
        crate::core::VantageName,
        (crate::plan::PeerSpec, tokio::task::JoinHandle<()>),
    >,
    /// In a cluster: where orders go, and who may give them.
    cluster: Option<(crate::plan::ClusterSpec, crate::cluster::Gate)>,
    /// Orders written and not yet reported applied, by group: the id of
    /// the latest.
    awaiting: std::collections::BTreeMap<GroupName, u64>,
    /// Orders written so far (their ids).
    ordered: u64,
}

/// How long a leader waits for its co-located actuator to apply an order
/// before the core counts the change as failed (and retries).
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Capacity of the peers' results channel, in chunks; followers wait when
/// the engine is behind.
const REMOTE_CAPACITY: usize = 256;

/// The journal counts as failing until it has dropped nothing for this long.
const JOURNAL_QUIET_MS: u64 = 10_000;

/// Runs until `plans` closes, with the real adapters and a fresh core.
pub async fn run(
    plans: watch::Receiver<Arc<Plan>>,
    ctx: Arc<ProbeContext>,
    shared: Shared,
    actuator: Actuator,
    commands: mpsc::Receiver<Command>,
) {
    let adapters = Adapters::live(ctx, actuator, &plans.borrow(), shared.metrics.clone());
    run_with(
        plans,
        adapters,
        shared,
        commands,
        Driver::new(Core::new(), None),
    )
    .await
}

/// Runs until `plans` closes, talking to `adapters`, starting from the
/// driver's core (fresh, or restored from the journal).
pub async fn run_with(
    mut plans: watch::Receiver<Arc<Plan>>,
    adapters: Adapters,
    shared: Shared,
    mut commands: mpsc::Receiver<Command>,
    driver: Driver,
) {
    let (tx, mut results) = mpsc::channel(RESULTS_CAPACITY);
    let (events_tx, mut events) = mpsc::channel(256);
    let (remote_tx, mut remote) = mpsc::channel(REMOTE_CAPACITY);
    let (cluster, mut coordination, mut reports, mut operator) = match adapters.cluster {
        Some(l) => (
            Some((l.spec, l.gate)),
            Some(l.coordination),
            Some(l.reports),
            Some(l.operator),
        ),
        None => (None, None, None, None),
    };
    let first = plans.borrow_and_update().clone();
    let mut e = Engine {
        sinks: adapters.alerts,
        listen: adapters.listen,
        driver,
        scheduler: Scheduler::new(
            adapters.executor,
            adapters.clock.clone(),
            first.settings.max_concurrency,
            tx,
            shared.metrics.clone(),
        ),
        clock: adapters.clock,
        examiner: adapters.examiner,
        plan: first.clone(),
        plans: plans.clone(),
        shared,
        routes: adapters.routes,
        events: events_tx,
        watcher: None,
        journal_dropped: 0,
        journal_dropped_at: None,
        remote: remote_tx,
        followers: Default::default(),
        cluster,
        awaiting: Default::default(),
        ordered: 0,
    };
    e.apply(first);
    e.shared.ready.store(true, Ordering::SeqCst);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let timer = e
            .driver
            .core()
            .poll_timeout()
            .map(|at| deadline_instant(at, e.clock.now()));
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
            Some(chunk) = remote.recv() => e.peer_results(chunk),
            Some(cmd) = commands.recv() => e.command(cmd),
            Some(c) = recv_opt(&mut coordination) => e.coordination(c),
            Some(r) = recv_opt(&mut reports) => e.applied(r),
            Some(c) = recv_opt(&mut operator) => e.operator(c),
            _ = heartbeat.tick() => e.heartbeat(),
            _ = sleep_until_opt(timer) => {
                e.driver.tick(e.clock.now());
                e.drain(None);
            }
        }
    }
}

fn deadline_instant(at: Timestamp, now: Timestamp) -> tokio::time::Instant {
    let wait = at.since(now);
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
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
        if alerting.receivers != self.plan.settings.alerting.receivers {
            self.sinks.reconfigure(&alerting.receivers);
        }
        // The core learns the subjects before their first results can arrive.
        self.driver
            .feed(self.clock.now(), Input::PlanApplied(plan.core_config()));
        let m = &self.shared.metrics;
        m.targets.sync(&plan);
        m.targets_planned.reset();
        for t in &plan.targets {
            m.targets_planned
                .with_label_values(&[&*t.service, t.probe.kind()])
                .inc();
            if matches!(t.probe, crate::plan::ProbeSpec::Identity(_)) {
                m.init_identity(t);
            }
        }
        for g in &plan.groups {
            // Series exist from the start, so dashboards and rules see zeros.
            let name = g.name().as_str();
            let frozen = self
                .driver
                .core()
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
        self.follow_peers();
        let v = &self.shared.metrics.vantages;
        v.forget();
        v.show(self.driver.core().quorum(), self.clock.now());
        // Groups not adopted yet (new ones) need the kernel's route read
        // (a replica without its own actuator learns it from the cluster).
        for g in self
            .plan
            .groups
            .clone()
            .into_iter()
            .filter(|_| self.routes_here())
        {
            let adopted = self
                .driver
                .core()
                .groups()
                .get(g.name())
                .is_some_and(|s| s.adopted);
            if !adopted {
                self.observe(g.name().clone());
            }
        }
        // The watcher starts with the first plan that has a route group.
        if self.watcher.is_none()
            && self.routes_here()
            && self.plan.groups.iter().any(|g| g.action == Action::Route)
        {
            self.watcher = self.watch_routes();
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
        let packets = match &done.result.details {
            crate::probe::Details::Icmp(i) if i.sent > 0 => {
                Some((i.sent, i.sent.saturating_sub(i.received)))
            }
            _ => None,
        };
        let cert_not_after = done.result.details.tls().and_then(|t| t.earliest_expiry);
        let identity = match &done.result.details {
            crate::probe::Details::Identity(i) => {
                self.shared.metrics.count_identity(&job.target, i);
                Some(i.findings.clone())
            }
            _ => None,
        };
        let observation = Observation {
            subject: job.subject.clone(),
            at: done.at,
            failure,
            cert_not_after,
            packets,
            duration_us: Some(u32::try_from(done.result.duration.as_micros()).unwrap_or(u32::MAX)),
            rtt_us: match &done.result.details {
                crate::probe::Details::Icmp(i) => i.rtt_seconds.map(|s| (s * 1e6) as u32),
                _ => None,
            },
            identity,
        };
        // Numbered as the core will count it, for the peers that follow.
        let v = &self.plan.settings.vantage;
        let seq = self.driver.core().observed() + 1;
        let line = crate::vantage::Line::of(
            v.name.as_str(),
            seq,
            v.controls.contains(&observation.subject),
            &observation,
        );
        self.driver
            .feed(done.at, Input::ProbeCompleted(observation));
        self.shared.observations.push(seq, &line);
        let detail = done.result.failure.as_ref().map(|f| f.detail.clone());
        self.shared
            .metrics
            .targets
            .record(&job.subject, done.result);
        self.drain(detail.as_deref());
    }

    /// Feeds a chunk of peers' results (or a restart), stamped on arrival.
    fn peer_results(&mut self, chunk: Vec<crate::vantage::FromPeer>) {
        use crate::vantage::FromPeer;
        let now = self.clock.now();
        for r in chunk {
            let input = match r {
                FromPeer::Result {
                    vantage,
                    seq,
                    control,
                    observation,
                } => Input::VantageObserved {
                    vantage,
                    seq,
                    control,
                    observation,
                },
                FromPeer::Restarted { vantage } => Input::VantageRestarted { vantage },
            };
            self.driver.feed(now, input);
        }
        self.drain(None);
    }

    /// Starts a follower for each new or changed peer of the plan, and
    /// stops those of peers it no longer lists.
    fn follow_peers(&mut self) {
        let peers = self.plan.settings.vantage.peers.clone();
        self.followers.retain(|name, (spec, task)| {
            let keep = peers.iter().any(|p| p == spec) && !task.is_finished();
            if !keep {
                tracing::info!(peer = ?name.as_str(), "no longer following this peer");
                task.abort();
            }
            keep
        });
        for p in peers {
            if self.followers.contains_key(&p.name) {
                continue;
            }
            let seq = self
                .driver
                .core()
                .quorum()
                .and_then(|q| q.seq(&p.name))
                .unwrap_or(0);
            tracing::info!(peer = ?p.name.as_str(), url = %p.url, after = seq, "following peer");
            let task = tokio::spawn(crate::vantage::follow(
                p.clone(),
                seq,
                self.remote.clone(),
                self.shared.metrics.clone(),
            ));
            self.followers.insert(p.name.clone(), (p, task));
        }
    }

    fn event(&mut self, event: Event) {
        let input = match event {
            Event::Actuated { group, to, error } => {
                Input::RouteChangeCompleted { group, to, error }
            }
            Event::Observed {
                group,
                path,
                read_at,
            } => Input::RoutesObserved {
                group,
                path,
                read_at,
            },
            Event::Unapplied { group, to, id } => {
                if self.awaiting.get(&group) != Some(&id) {
                    return;
                }
                self.awaiting.remove(&group);
                Input::RouteChangeCompleted {
                    group,
                    to,
                    error: Some(format!(
                        "no actuator applied the order within {} s",
                        APPLY_TIMEOUT.as_secs()
                    )),
                }
            }
            Event::Examined { path, examination } => {
                self.shared
                    .metrics
                    .path_examination_packets_total
                    .with_label_values(&[path.as_str()])
                    .inc_by(u64::from(examination.packets));
                Input::PathExamined { path, examination }
            }
        };
        self.driver.feed(self.clock.now(), input);
        self.drain(None);
    }

    fn command(&mut self, cmd: Command) {
        let input = self.input_for(&cmd);
        // In a cluster, what operators do goes through etcd: every replica
        // (this one too) applies it when its watch delivers it.
        if let (Some((spec, _)), Ok(input)) = (&self.cluster, &input)
            && let Some(shared) = crate::cluster::operator::shared(input, self.clock.now())
        {
            let spec = spec.clone();
            tokio::spawn(async move {
                let written = crate::cluster::operator::write(&spec, &shared).await;
                let _ = cmd
                    .reply
                    .send(written.map_err(|e| CommandError::Coordination(e.to_string())));
            });
            return;
        }
        let result = input.map(|input| self.driver.feed(self.clock.now(), input));
        let _ = cmd.reply.send(result);
        self.drain(None);
    }

    /// An operator command from the cluster, checked against this
    /// replica's plan and core before it is fed (and journaled).
    fn operator(&mut self, c: crate::cluster::operator::OperatorCommand) {
        use crate::cluster::operator::OperatorCommand as C;
        let core = self.driver.core();
        let spec = |g: &str| self.plan.groups.iter().find(|s| s.name().as_str() == g);
        let state = |g: &str| core.groups().get(&GroupName::new(g));
        let input = match c {
            C::Pin {
                group,
                path,
                until,
                by,
            } => {
                let path = PathName::new(&path);
                // An expired pin read back at a start is history; the pin
                // in force read back again is no news.
                let valid = spec(&group).is_some_and(|s| s.core.paths.contains(&path));
                let held = state(&group)
                    .and_then(|g| g.pin.as_ref())
                    .is_some_and(|p| p.path == path && p.until.0 == until);
                if !valid || held || until <= self.clock.now().0 {
                    return;
                }
                Input::Pin {
                    group: GroupName::new(&group),
                    path,
                    until: Timestamp(until),
                    by,
                }
            }
            C::Unpin { group, by } if state(&group).is_some_and(|g| g.pin.is_some()) => {
                Input::Unpin {
                    group: GroupName::new(&group),
                    by,
                }
            }
            C::Unfreeze { group, by } if spec(&group).is_some() => Input::Unfreeze {
                group: GroupName::new(&group),
                by,
            },
            // Only the incident that had started when it was acknowledged.
            C::Ack { id, by, at }
                if core.alert(&id).is_some_and(|a| {
                    a.firing() && a.acknowledged.is_none() && a.starts_at.0 <= at
                }) =>
            {
                Input::AlertAcknowledged { id, by }
            }
            _ => return,
        };
        self.driver.feed(self.clock.now(), input);
        self.drain(None);
    }

    /// The core input for an operator command, checked against what the
    /// core knows so only valid commands are fed (and journaled).
    fn input_for(&self, cmd: &Command) -> Result<Input, CommandError> {
        let by = cmd.by.clone();
        match &cmd.kind {
            CommandKind::Ack { id } => {
                let why = match self.driver.core().alert(id) {
                    Some(a) if a.firing() => None,
                    Some(_) => Some(crate::core::AckError::Resolved),
                    None => Some(crate::core::AckError::Unknown),
                };
                match why {
                    None => Ok(Input::AlertAcknowledged { id: id.clone(), by }),
                    Some(why) => Err(CommandError::Alert {
                        id: id.clone(),
                        why,
                    }),
                }
            }
            CommandKind::ReloadRejected { errors } => Ok(Input::ReloadRejected { errors: *errors }),
            kind => {
                let group = GroupName::new(&cmd.group);
                let Some(spec) = self.plan.groups.iter().find(|g| *g.name() == group) else {
                    let names: Vec<&str> =
                        self.plan.groups.iter().map(|g| g.name().as_str()).collect();
                    return Err(CommandError::NoGroup {
                        name: cmd.group.clone(),
                        valid: names.join(", "),
                    });
                };
                Ok(match kind {
                    CommandKind::Pin { path, ttl } => {
                        let path = PathName::new(path);
                        if !spec.core.paths.contains(&path) {
                            let names: Vec<&str> =
                                spec.core.paths.iter().map(|p| p.as_str()).collect();
                            return Err(CommandError::NoPath {
                                group: group.to_string(),
                                path: path.to_string(),
                                valid: names.join(", "),
                            });
                        }
                        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                        Input::Pin {
                            group,
                            path,
                            until: Timestamp(self.clock.now().0.saturating_add(ttl_ms)),
                            by,
                        }
                    }
                    CommandKind::Unpin => Input::Unpin { group, by },
                    _ => Input::Unfreeze { group, by },
                })
            }
        }
    }

    /// Carries out every order and reports every event the core handed
    /// out, then refreshes the status.
    fn drain(&mut self, detail: Option<&str>) {
        let mut any = false;
        while let Some(effect) = self.driver.poll_effect() {
            any = true;
            match effect {
                Effect::Event(event) => {
                    report::report(&event, detail, &self.shared.metrics, &self.plan)
                }
                Effect::Order(order) => self.carry_out(order),
            }
        }
        if any {
            self.alert_metrics();
            self.refresh_status(false);
        }
    }

    /// Carries out one order. The match is exhaustive on purpose: an order
    /// added to the core does not compile until it is carried out here.
    fn carry_out(&mut self, order: Order) {
        report::ordered(&order, &self.shared.metrics);
        match order {
            Order::ChangeRoute {
                group,
                from,
                to,
                reason,
                fence,
                ..
            } => match self.cluster.clone() {
                Some((spec, gate)) => self.order(spec, gate, group, from, to, reason, fence),
                None => self.actuate(group, from, to, reason),
            },
            Order::ExaminePath { path, trace } => self.examine(path, trace),
            Order::DeliverAlerts {
                alerts,
                lease_until,
            } => self.send_alerts(&alerts, lease_until),
        }
    }

    fn send_alerts(&self, alerts: &[crate::core::Alert], lease_until: Timestamp) {
        let alerting = &self.plan.settings.alerting;
        let external_url = alerting.external_url.clone().unwrap_or_else(|| {
            self.listen
                .map_or_else(|| "http://127.0.0.1:9469".into(), |a| format!("http://{a}"))
        });
        self.sinks.send(
            alerts
                .iter()
                .map(|a| {
                    let mut a =
                        to_alertmanager(a, lease_until, &external_url, &alerting.runbook_url);
                    // Replicas send the same alerts: Alertmanager merges them by labels.
                    if let Some(c) = &self.plan.settings.cluster {
                        a.labels.insert("cluster".into(), c.name.clone());
                    }
                    a
                })
                .collect(),
        );
    }

    /// Rebuilds the status from the core; the vantages' section (a
    /// thousand targets' votes) only when `votes`, else it is carried over
    /// (the heartbeat refreshes it once a second).
    fn refresh_status(&self, votes: bool) {
        let plan = &self.plan;
        let action = |g: &str| {
            plan.groups
                .iter()
                .find(|s| s.name().as_str() == g)
                .map_or("observe", |s| s.action.label())
        };
        let core = self.driver.core();
        let mut snapshot = status::snapshot(core, &action, plan.jobs.len());
        for g in &snapshot.groups {
            for d in &g.dampening {
                self.shared
                    .metrics
                    .path_penalty
                    .with_label_values(&[g.name.as_str(), d.path.as_str()])
                    .set(i64::from(d.penalty));
            }
        }
        snapshot.cluster = plan
            .settings
            .cluster
            .as_ref()
            .map(|c| status::cluster(core, c));
        snapshot.alerts = core
            .alerts()
            .filter(|a| a.firing())
            .map(status::AlertView::from)
            .collect();
        let mut status = self.shared.status.write().expect("status lock");
        snapshot.vantage = match status.vantage.take() {
            Some(old) if !votes => Some(old),
            old => Some(status::vantage(core, &plan.settings.vantage, old)),
        };
        *status = snapshot;
    }

    fn alert_metrics(&self) {
        let m = &self.shared.metrics;
        m.alerts_firing.reset();
        let mut unacked = 0;
        for a in self.driver.core().alerts().filter(|a| a.firing()) {
            let acked = if a.acknowledged.is_some() {
                "true"
            } else {
                "false"
            };
            m.alerts_firing
                .with_label_values(&[a.name().as_str(), a.severity().as_str(), acked])
                .inc();
            if a.severity() == Severity::Critical && a.acknowledged.is_none() {
                unacked += 1;
            }
        }
        m.alerts_unacknowledged_critical.set(unacked);
    }

    /// Once a second: the engine's sign of life for `/-/healthy`, and the
    /// journal's upkeep (segments to start, trouble to report).
    fn heartbeat(&mut self) {
        let m = self.shared.metrics.clone();
        m.engine_heartbeat.set(self.clock.now().0 as f64 / 1000.0);
        fault::engine_tick();
        self.driver.snapshot_if_wanted();
        // A follower only ends with the engine; one that ended while the
        // engine runs (a panic) must not leave a vantage silently unfollowed.
        if let Some((name, _)) = self.followers.iter().find(|(_, (_, t))| t.is_finished()) {
            panic!(
                "the follower of peer {:?} stopped unexpectedly",
                name.as_str()
            );
        }
        // Votes expire with time, not only with results.
        m.vantages
            .show(self.driver.core().quorum(), self.clock.now());
        self.refresh_status(true);
        let Some(h) = self.driver.journal_health() else {
            return;
        };
        m.journal_dropped
            .inc_by(h.dropped.saturating_sub(m.journal_dropped.get()));
        m.journal_written
            .inc_by(h.written.saturating_sub(m.journal_written.get()));
        // Drops in the last 10 s count as failing, so a burst pages once.
        let now = self.clock.now();
        if h.dropped > self.journal_dropped {
            self.journal_dropped_at = Some(now);
        }
        let recent = self
            .journal_dropped_at
            .is_some_and(|t| now.since(t) < JOURNAL_QUIET_MS);
        let restored_alert = self
            .driver
            .core()
            .alerts()
            .any(|a| a.name() == crate::core::AlertName::JournalWriteFailing && a.firing());
        let failing = h.failing || recent;
        if !failing && restored_alert && m.journal_failing.get() == 0 {
            // The alert came back with the journal after a restart; it writes now.
            self.driver.feed(now, Input::JournalRecovered);
            self.drain(None);
        }
        if failing != (m.journal_failing.get() == 1) {
            m.journal_failing.set(i64::from(failing));
            let input = if failing {
                Input::JournalFailing { dropped: h.dropped }
            } else {
                Input::JournalRecovered
            };
            self.driver.feed(self.clock.now(), input);
            self.drain(None);
        }
        self.journal_dropped = h.dropped;
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
        let routes = self.routes.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            // A panicking actuator still answers, so the core retries instead
            // of waiting for a result that never comes.
            let change = tokio::spawn(async move {
                routes
                    .change(&spec, from_path.as_ref(), &to_path, &reason, None)
                    .await
            });
            let error = match change.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("the route change task failed: {e}")),
            };
            let _ = events.send(Event::Actuated { group, to, error }).await;
        });
    }

    /// Whether this host's kernel carries the routes the core steers: not
    /// on a replica that leaves them to router hosts (`actuate: false`).
    fn routes_here(&self) -> bool {
        self.cluster.as_ref().is_none_or(|(spec, _)| spec.actuate)
    }

    /// The session's news: fed to the core; a new leader reads every
    /// group's route afresh before it may order.
    fn coordination(&mut self, c: crate::core::Coordination) {
        use crate::core::Coordination;
        let m = &self.shared.metrics.cluster;
        let (role, fence) = match &c {
            Coordination::Leading { fence } => ("leader", *fence),
            Coordination::Following => ("follower", 0),
            Coordination::Lost { .. } => ("lost", 0),
        };
        if role == "leader" && m.fence.get() != i64::try_from(fence).unwrap_or(i64::MAX) {
            m.leader_changes.inc();
        }
        m.set_role(role);
        m.fence.set(i64::try_from(fence).unwrap_or(i64::MAX));
        self.driver.feed(self.clock.now(), Input::Coordination(c));
        if role == "leader" && self.routes_here() {
            for g in self.plan.groups.clone() {
                self.observe(g.name().clone());
            }
        }
        self.drain(None);
    }

    /// The co-located actuator's report: completes this leader's change,
    /// shows a follower the leader's route, or raises a refusal.
    fn applied(&mut self, r: crate::cluster::Report) {
        use crate::cluster::Report;
        let input = match r {
            Report::Applied {
                group, to, error, ..
            } => {
                self.awaiting.remove(&group);
                let ours = self
                    .driver
                    .core()
                    .groups()
                    .get(&group)
                    .and_then(|g| g.pending.as_ref())
                    .is_some_and(|p| p.to == to && p.retry_at.is_none());
                match (ours, error) {
                    (true, error) => Input::RouteChangeCompleted { group, to, error },
                    (false, None) => Input::RoutesObserved {
                        group,
                        path: Some(to),
                        read_at: self.clock.now(),
                    },
                    (false, Some(_)) => return,
                }
            }
            Report::Unrouted { group } => Input::RoutesObserved {
                group,
                path: None,
                read_at: self.clock.now(),
            },
            Report::Refused {
                group,
                fence,
                highest,
            } => Input::OrderRefused {
                group,
                fence,
                highest,
            },
        };
        self.driver.feed(self.clock.now(), input);
        self.drain(None);
    }

    /// A leader's order: the desired route written to etcd, guarded by
    /// its election key; the actuators apply it.
    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        spec: crate::plan::ClusterSpec,
        gate: crate::cluster::Gate,
        group: GroupName,
        from: Option<PathName>,
        to: PathName,
        reason: crate::core::SwitchReason,
        fence: Option<u64>,
    ) {
        let events = self.events.clone();
        let metrics = self.shared.metrics.clone();
        self.ordered += 1;
        let id = self.ordered;
        if spec.actuate {
            self.awaiting.insert(group.clone(), id);
        }
        tokio::spawn(async move {
            let desired = crate::cluster::Desired {
                path: to.to_string(),
                from: from.map(|p| p.to_string()),
                fence: fence.unwrap_or(0),
                reason: reason.label().to_string(),
                by: spec.replica.clone(),
            };
            let written = match fence {
                Some(_) => crate::cluster::order(&spec, &gate, group.as_str(), &desired).await,
                None => Err(crate::cluster::CoordError::NotLeader),
            };
            let result = match &written {
                Ok(()) => "ok",
                Err(crate::cluster::CoordError::Superseded) => "superseded",
                Err(_) => "error",
            };
            metrics.cluster.orders.with_label_values(&[result]).inc();
            let error = match written {
                // The co-located actuator's report completes it; silence
                // past the timeout is a failure (unless the report came).
                Ok(()) if spec.actuate => {
                    tokio::time::sleep(APPLY_TIMEOUT).await;
                    let _ = events.send(Event::Unapplied { group, to, id }).await;
                    return;
                }
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(group = %group, fence, "the order was not written: {}", e.chain());
                    Some(e.to_string())
                }
            };
            let _ = events.send(Event::Actuated { group, to, error }).await;
        });
    }

    fn examine(&self, path: PathName, trace: bool) {
        let plan = self.plan.clone();
        let examiner = self.examiner.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let examined = tokio::time::timeout(crate::examine::EXAMINE_TIMEOUT, async {
                match crate::examine::target_of(&plan, path.as_str()).await {
                    Ok((destination, gateway, source)) => {
                        Ok(examiner.examine(destination, gateway, source, trace).await)
                    }
                    Err(why) => Err(why.to_string()),
                }
            })
            .await
            .unwrap_or_else(|_| Err("the examination took too long".into()));
            let examination = examined.unwrap_or_else(|why| crate::core::Examination {
                error: Some(why),
                ..Default::default()
            });
            let _ = events.send(Event::Examined { path, examination }).await;
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
        let routes = self.routes.clone();
        let clock = self.clock.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let read_at = clock.now();
            match routes.observe(&spec, &paths).await {
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

    /// Re-reads route groups whenever the kernel reports a route change,
    /// with the plan in force at that moment (it follows reloads).
    fn watch_routes(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut changes = self.routes.watch()?;
        let plans = self.plans.clone();
        let routes = self.routes.clone();
        let clock = self.clock.clone();
        let events = self.events.clone();
        Some(tokio::spawn(async move {
            while changes.recv().await.is_some() {
                tokio::time::sleep(WATCH_DEBOUNCE).await;
                while changes.try_recv().is_ok() {}
                let plan = plans.borrow().clone();
                for g in plan.groups.iter().filter(|g| g.action == Action::Route) {
                    let read_at = clock.now();
                    if let Ok(path) = routes.observe(g, &plan.paths).await {
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
