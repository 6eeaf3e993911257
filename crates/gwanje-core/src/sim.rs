//! The scenario simulator: a virtual world around one core (routers and
//! checks that are up or down), probed every [`STEP`] ms on virtual time
//! through the one virtual-time driver and its simulated actuator. The
//! core's scenario tests drive it.

use std::collections::BTreeMap;

use super::virtual_time::{Actuator, Kernel, TimerSource, VirtualTime};
use super::*;

/// Milliseconds between probe rounds.
pub const STEP: u64 = 100;

/// A simulated world around one core: routers and checks per path that
/// are up or down, probed every [`STEP`] ms, and the simulated actuator
/// (answering at once). Every input fed is kept in `log`.
pub struct Sim {
    pub vt: VirtualTime,
    pub now: u64,
    pub paths: Vec<&'static str>,
    pub checks: Vec<&'static str>,
    pub router_ok: BTreeMap<&'static str, bool>,
    pub check_ok: BTreeMap<(&'static str, &'static str), bool>,
    pub effects: Vec<Effect>,
    /// Every input fed, in order; `None` is a timeout.
    pub log: Vec<(Timestamp, Option<Input>)>,
    /// The plan applied at the start.
    pub cfg: CoreConfig,
}

/// A group `svc` over `paths` with `checks` of service `app`, fast timers.
pub fn group_config(paths: &[&'static str], checks: &[&'static str]) -> GroupConfig {
    GroupConfig {
        name: GroupName::new("svc"),
        paths: paths.iter().map(|p| PathName::new(p)).collect(),
        checks: checks.iter().map(|c| TargetKey::new("app", c)).collect(),
        min_dwell_ms: 0,
        hold_down_ms: 0,
        failback: Failback::Auto { after_ms: 1_000 },
        flap_guard: FlapGuard {
            max_switches: 3,
            window_ms: 60_000,
        },
        isolation_window_ms: 250,
        retry_initial_ms: 200,
        retry_max_ms: 1_000,
        initial_wait_ms: 0,
        dampening: Default::default(),
    }
}

impl Sim {
    /// A world where every path and check is up, with `g` applied.
    pub fn new(g: GroupConfig) -> Self {
        Self::with_policy(g, HealthPolicy::consecutive(2, 2))
    }

    /// Like [`Sim::new`] with health thresholds `policy` for every subject.
    pub fn with_policy(g: GroupConfig, policy: HealthPolicy) -> Self {
        let paths: Vec<&'static str> = g
            .paths
            .iter()
            .map(|p| &*Box::leak(p.as_str().to_string().into_boxed_str()))
            .collect();
        let checks: Vec<&'static str> = g
            .checks
            .iter()
            .map(|c| {
                &*Box::leak(
                    c.as_str()
                        .trim_start_matches("app/")
                        .to_string()
                        .into_boxed_str(),
                )
            })
            .collect();
        let mut subjects = Vec::new();
        for p in &paths {
            subjects.push(SubjectConfig {
                subject: Subject::Router(PathName::new(p)),
                policy,
            });
            for c in &checks {
                subjects.push(SubjectConfig {
                    subject: Subject::Check(TargetKey::new("app", c), PathName::new(p)),
                    policy,
                });
            }
        }
        let cfg = CoreConfig {
            subjects,
            paths: g.paths.clone(),
            groups: vec![g],
            alerting: AlertPolicy::default(),
            quality: QualityPolicy::default(),
            quorum: None,
            cluster: false,
        };
        let mut vt = VirtualTime::new(
            Core::new(),
            TimerSource::Recorded,
            Some(Actuator::default()),
        );
        vt.log = Some(Vec::new());
        let mut sim = Sim {
            cfg: cfg.clone(),
            vt,
            log: Vec::new(),
            now: 0,
            router_ok: paths.iter().map(|p| (*p, true)).collect(),
            check_ok: paths
                .iter()
                .flat_map(|p| checks.iter().map(move |c| ((*c, *p), true)))
                .collect(),
            paths,
            checks,
            effects: Vec::new(),
        };
        sim.feed(Timestamp(0), Input::PlanApplied(cfg));
        sim.drain();
        sim
    }

    /// The core.
    pub fn core(&self) -> &Core {
        self.vt.core()
    }

    /// Feeds `input` to the core.
    pub fn feed(&mut self, at: Timestamp, input: Input) {
        self.vt.feed(at, input);
    }

    /// Lets the core's timers fire at `at`.
    pub fn tick(&mut self, at: Timestamp) {
        self.vt.tick(at);
    }

    fn kernel_mut(&mut self) -> &mut Kernel {
        &mut self
            .vt
            .actuator
            .as_mut()
            .expect("the sim has an actuator")
            .kernel
    }

    /// What the "kernel" routes the group through.
    pub fn kernel(&self) -> Option<&str> {
        let act = self.vt.actuator.as_ref().expect("the sim has an actuator");
        act.kernel
            .route(&GroupName::new("svc"))
            .map(PathName::as_str)
    }

    /// Changes the kernel's route behind gwanje's back.
    pub fn set_kernel(&mut self, path: Option<&str>) {
        self.kernel_mut()
            .set(&GroupName::new("svc"), path.map(PathName::new));
    }

    /// Breaks (false) or mends the actuator.
    pub fn set_actuator(&mut self, ok: bool) {
        self.kernel_mut().refusing = !ok;
    }

    /// The kernel's route is read (at start, or by the watcher).
    pub fn observe_kernel(&mut self) {
        let path = self.kernel().map(PathName::new);
        self.feed(
            Timestamp(self.now),
            Input::RoutesObserved {
                group: GroupName::new("svc"),
                path,
                read_at: Timestamp(self.now),
            },
        );
        self.drain();
    }

    /// Collects what the core handed out (the actuator has answered).
    pub fn drain(&mut self) {
        while let Some((_, e)) = self.vt.poll_effect() {
            self.effects.push(e);
        }
        if let Some(log) = &mut self.vt.log {
            self.log.append(log);
        }
    }

    /// Runs `steps` probe rounds of 100 ms against the current world.
    pub fn run(&mut self, steps: u64) {
        for _ in 0..steps {
            self.now += STEP;
            let at = Timestamp(self.now);
            for p in self.paths.clone() {
                let router = self.router_ok[p];
                self.probe(Subject::Router(PathName::new(p)), router);
                for c in self.checks.clone() {
                    // A dead router takes the checks through it down too.
                    let ok = router && self.check_ok[&(c, p)];
                    self.probe(
                        Subject::Check(TargetKey::new("app", c), PathName::new(p)),
                        ok,
                    );
                }
            }
            if self.core().poll_timeout().is_some_and(|t| t <= at) {
                self.tick(at);
            }
            self.drain();
        }
    }

    /// One ICMP probe result for `subject` that sent `sent` echoes and lost
    /// `lost`; it passes when at most `max_lost` were lost.
    pub fn probe_packets(&mut self, subject: Subject, sent: u16, lost: u16, max_lost: u16) {
        let at = Timestamp(self.now);
        let failure = (lost > max_lost).then_some(FailureKind::Loss);
        self.feed(
            at,
            Input::ProbeCompleted(Observation {
                subject,
                at,
                failure,
                cert_not_after: None,
                packets: Some((sent, lost)),
                duration_us: None,
                rtt_us: None,
                identity: None,
            }),
        );
        self.drain();
    }

    /// One round of 5-echo ICMP probes of each path's router and checks,
    /// each echo lost with the per-mille chance given for (router, checks)
    /// of each path (a xorshift on `x`, so a seed replays); a probe fails at
    /// 4 or more lost. Timers due by then run.
    pub fn random_round(&mut self, loss: &[(&'static str, u64, u64)], x: &mut u64) {
        self.now += STEP;
        let checks = self.checks.clone();
        for (p, router, check) in loss {
            let subjects = std::iter::once((Subject::Router(PathName::new(p)), *router)).chain(
                checks.iter().map(|c| {
                    (
                        Subject::Check(TargetKey::new("app", c), PathName::new(p)),
                        *check,
                    )
                }),
            );
            for (s, rate) in subjects.collect::<Vec<_>>() {
                let lost = (0..5)
                    .filter(|_| {
                        *x ^= *x << 13;
                        *x ^= *x >> 7;
                        *x ^= *x << 17;
                        *x % 1000 < rate
                    })
                    .count() as u16;
                self.probe_packets(s, 5, lost, 3);
            }
        }
        let at = Timestamp(self.now);
        if self.core().poll_timeout().is_some_and(|t| t <= at) {
            self.tick(at);
            self.drain();
        }
    }

    /// One probe result for `subject`.
    pub fn probe(&mut self, subject: Subject, ok: bool) {
        let at = Timestamp(self.now);
        let failure = (!ok).then_some(FailureKind::Timeout);
        self.feed(
            at,
            Input::ProbeCompleted(Observation {
                subject,
                at,
                failure,
                cert_not_after: None,
                packets: None,
                duration_us: None,
                rtt_us: None,
                identity: None,
            }),
        );
        self.drain();
    }

    /// The group's active path.
    pub fn active(&self) -> Option<&str> {
        self.core().groups()[&GroupName::new("svc")]
            .active
            .as_ref()
            .map(PathName::as_str)
    }

    /// Every route change so far: (to, reason).
    pub fn switches(&self) -> Vec<(String, String)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Event(Event::RouteChanged { to, reason, .. }) => {
                    Some((to.to_string(), reason.label().to_string()))
                }
                _ => None,
            })
            .collect()
    }

    /// How many effects match `pred`.
    pub fn count(&self, pred: impl Fn(&Effect) -> bool) -> usize {
        self.effects.iter().filter(|e| pred(e)).count()
    }

    /// The same plan, now as a replica of a cluster that follows.
    pub fn in_cluster(mut self) -> Self {
        let mut cfg = self.cfg.clone();
        cfg.cluster = true;
        let at = Timestamp(self.now);
        self.feed(at, Input::PlanApplied(cfg));
        self.feed(at, Input::Coordination(Coordination::Following));
        self.drain();
        self
    }

    /// Route orders handed out so far, with their fences.
    pub fn orders(&self) -> Vec<(String, Option<u64>)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Order(Order::ChangeRoute { to, fence, .. }) => {
                    Some((to.to_string(), *fence))
                }
                _ => None,
            })
            .collect()
    }

    /// Starts with the kernel routing via `path` and every path healthy.
    pub fn started_on(mut self, path: &'static str) -> Self {
        self.set_kernel(Some(path));
        self.observe_kernel();
        self.run(5);
        assert_eq!(self.active(), Some(path));
        self
    }
}
