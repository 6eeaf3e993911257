//! What a run decided, in the terms an analyst compares: incidents and how
//! fast each was detected and switched, switches (and which of them
//! hindsight calls false), and alerts.
//!
//! Hindsight: a path is *broken* at a moment when, over the records around
//! it (a second either side, or one and a half probe intervals when its
//! probes are sparser), at least half of its router's checks failed, or
//! at least a quarter of its probe packets were lost, or at least half of
//! the checks through it failed while through another path fewer than half
//! did (failing everywhere is the service, not the path). An incident is a
//! run of broken moments of one path. A switch is *false* when the path it
//! left was not broken then, or the path it chose was.

use std::collections::BTreeMap;

use super::history::History;
use super::simulate::Run;
use crate::core::{Effect, Event, Input, Order, PathState, Subject, Timestamp};

/// Half the window hindsight judges a moment by, at least, ms.
const AROUND_MS: u64 = 1_000;

/// One route change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Switch {
    /// When it was confirmed, Unix ms.
    pub at: u64,
    /// The group.
    pub group: String,
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// Why (`path_failed`, `failback`, …).
    pub reason: &'static str,
    /// Whether hindsight says it should not have happened.
    pub false_switch: bool,
}

/// One path's broken stretch and what the run did about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Incident {
    /// The path.
    pub path: String,
    /// The first failing probe through it, Unix ms.
    pub start: u64,
    /// The last broken moment, Unix ms.
    pub end: u64,
    /// When the run marked the path down, if it did.
    pub detected: Option<u64>,
    /// When the run moved traffic off it, if it did.
    pub switched: Option<u64>,
}

/// A run, summarised.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Incidents, in time order.
    pub incidents: Vec<Incident>,
    /// Automatic and operator route changes (not the first installation).
    pub switches: Vec<Switch>,
    /// Each alert's first firing, by name, Unix ms.
    pub alerts: BTreeMap<String, u64>,
}

impl Summary {
    /// Switches hindsight calls false.
    pub fn false_switches(&self) -> usize {
        self.switches.iter().filter(|s| s.false_switch).count()
    }
}

/// One recorded probe through a path: (time, failed, packets sent, lost).
type Probe = (u64, bool, u32, u32);

/// Per path, its router's probes and the checks' probes through it.
#[derive(Default)]
struct Through {
    routers: BTreeMap<String, Vec<Probe>>,
    checks: BTreeMap<String, Vec<Probe>>,
    /// Half the judging window per path, ms.
    around: BTreeMap<String, u64>,
}

impl Through {
    fn of(history: &History) -> Self {
        let mut t = Through::default();
        for (at, input) in &history.world {
            let Input::ProbeCompleted(obs) = input else {
                continue;
            };
            let (map, path) = match &obs.subject {
                Subject::Check(_, p) => (&mut t.checks, p),
                Subject::Router(p) => (&mut t.routers, p),
                Subject::Target(_) => continue,
            };
            let (sent, lost) = obs
                .packets
                .map_or((0, 0), |(s, l)| (u32::from(s), u32::from(l)));
            map.entry(path.to_string()).or_default().push((
                at.0,
                obs.failure.is_some(),
                sent,
                lost,
            ));
        }
        let paths: Vec<String> = t.paths().into_iter().cloned().collect();
        for p in paths {
            let all = t.all(&p);
            let mut gaps: Vec<u64> = all.windows(2).map(|w| w[1].0 - w[0].0).collect();
            gaps.sort_unstable();
            let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
            t.around.insert(p, AROUND_MS.max(median * 3 / 2));
        }
        t
    }

    fn paths(&self) -> std::collections::BTreeSet<&String> {
        self.routers.keys().chain(self.checks.keys()).collect()
    }

    /// Every probe through `path`, in time order.
    fn all(&self, path: &str) -> Vec<Probe> {
        let mut v: Vec<Probe> = self
            .routers
            .get(path)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        v.extend(self.checks.get(path).into_iter().flatten().copied());
        v.sort_unstable();
        v
    }

    fn broken(&self, path: &str, at: u64) -> bool {
        let around = self.around.get(path).copied().unwrap_or(AROUND_MS);
        let near = |m: &BTreeMap<String, Vec<Probe>>, p: &str| -> (usize, usize, u32, u32) {
            let Some(r) = m.get(p) else {
                return (0, 0, 0, 0);
            };
            let lo = r.partition_point(|x| x.0 < at.saturating_sub(around));
            let hi = r.partition_point(|x| x.0 <= at + around);
            r[lo..hi].iter().fold((0, 0, 0, 0), |(n, f, s, l), x| {
                (n + 1, f + usize::from(x.1), s + x.2, l + x.3)
            })
        };
        // One lost probe is not a broken path: at least two failures.
        let half = |(n, f, ..): (usize, usize, u32, u32)| f >= 2 && f * 2 >= n;
        let router = near(&self.routers, path);
        let checks = near(&self.checks, path);
        let (sent, lost) = (router.2 + checks.2, router.3 + checks.3);
        if half(router) || (sent >= 20 && lost * 4 >= sent) {
            return true;
        }
        half(checks)
            && self.checks.keys().any(|q| {
                q != path && {
                    let c = near(&self.checks, q);
                    c.0 > 0 && !half(c)
                }
            })
    }
}

/// Summarises `run` over `history`.
pub fn summarise(history: &History, run: &Run) -> Summary {
    let through = Through::of(history);
    let broken = |path: &str, at: u64| through.broken(path, at);
    let mut s = Summary::default();
    for path in through.paths() {
        let records = through.all(path);
        let mut open: Option<Incident> = None;
        for r in &records {
            let b = through.broken(path, r.0);
            match (&mut open, b) {
                (None, true) => {
                    // The incident starts at the first failing probe near here.
                    let lo = records.partition_point(|x| x.0 < r.0.saturating_sub(AROUND_MS));
                    let start = records[lo..]
                        .iter()
                        .find(|x| x.1 || (x.2 > 0 && x.3 * 4 >= x.2))
                        .map_or(r.0, |x| x.0);
                    open = Some(Incident {
                        path: path.clone(),
                        start,
                        end: r.0,
                        detected: None,
                        switched: None,
                    });
                }
                (Some(i), true) => i.end = r.0,
                (Some(_), false) => s.incidents.extend(open.take()),
                (None, false) => {}
            }
        }
        s.incidents.extend(open);
    }
    s.incidents.sort_by_key(|i| i.start);
    for (at, e) in &run.effects {
        match e {
            Effect::Event(Event::PathChanged {
                path,
                to: PathState::Down,
                ..
            }) => {
                if let Some(i) = s.incidents.iter_mut().find(|i| {
                    i.path == path.as_str()
                        && i.detected.is_none()
                        && at.0 + AROUND_MS >= i.start
                        && at.0 <= i.end + AROUND_MS
                }) {
                    i.detected = Some(at.0);
                }
            }
            Effect::Event(Event::RouteChanged {
                group,
                from: Some(from),
                to,
                reason,
                ..
            }) => {
                if let Some(i) = s.incidents.iter_mut().find(|i| {
                    i.path == from.as_str()
                        && i.switched.is_none()
                        && at.0 + AROUND_MS >= i.start
                        && at.0 <= i.end + AROUND_MS
                }) {
                    i.switched = Some(at.0);
                }
                let left_healthy = reason.is_automatic()
                    && matches!(reason, crate::core::SwitchReason::PathFailed { .. })
                    && !broken(from.as_str(), at.0);
                s.switches.push(Switch {
                    at: at.0,
                    group: group.to_string(),
                    from: from.to_string(),
                    to: to.to_string(),
                    reason: reason.label(),
                    false_switch: left_healthy || broken(to.as_str(), at.0),
                });
            }
            Effect::Order(Order::DeliverAlerts { alerts, .. }) => {
                for a in alerts.iter().filter(|a| a.firing()) {
                    s.alerts
                        .entry(a.name().to_string())
                        .or_insert(a.starts_at.0);
                }
            }
            _ => {}
        }
    }
    s
}

/// Milliseconds as "4.6 s".
pub fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// A Unix-ms time as the time of day, UTC, to a tenth of a second.
pub fn clock(ms: u64) -> String {
    let t = crate::clock::rfc3339(Timestamp(ms));
    // 2026-12-04T14:02:31.234Z → 14:02:31.2
    t.get(11..21).unwrap_or(&t).to_string()
}
