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

use std::collections::{BTreeMap, VecDeque};

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

/// What hindsight says of a history whatever a run decided: the paths'
/// incidents, and whether a path was broken at each moment some run
/// switched. One pass over the record serves every run compared.
#[derive(Debug, Clone, Default)]
pub struct Hindsight {
    incidents: Vec<Incident>,
    broken: std::collections::BTreeSet<(String, u64)>,
}

/// Half the judging window at most, ms: a path probed a few times a day
/// would otherwise make the window, and the probes held for it, a day.
const AROUND_MAX_MS: u64 = 600_000;

/// Half the judging window of a path whose probes come `cadence` ms apart.
fn around(cadence: u64) -> u64 {
    AROUND_MS.max(cadence * 3 / 2).min(AROUND_MAX_MS)
}

/// The probes through each path near the moments being judged: a few
/// seconds' worth, however long the record.
#[derive(Default)]
struct Window {
    routers: BTreeMap<String, VecDeque<Probe>>,
    checks: BTreeMap<String, VecDeque<Probe>>,
}

type Counts = (usize, usize, u32, u32);

impl Window {
    fn near(m: &BTreeMap<String, VecDeque<Probe>>, path: &str, at: u64, around: u64) -> Counts {
        let Some(r) = m.get(path) else {
            return (0, 0, 0, 0);
        };
        let lo = r.partition_point(|x| x.0 < at.saturating_sub(around));
        let hi = r.partition_point(|x| x.0 <= at + around);
        r.range(lo..hi).fold((0, 0, 0, 0), |(n, f, s, l), x| {
            (n + 1, f + usize::from(x.1), s + x.2, l + x.3)
        })
    }

    fn broken(&self, path: &str, at: u64, around: u64) -> bool {
        // One lost probe is not a broken path: at least two failures.
        let half = |(n, f, ..): Counts| f >= 2 && f * 2 >= n;
        let router = Self::near(&self.routers, path, at, around);
        let checks = Self::near(&self.checks, path, at, around);
        let (sent, lost) = (router.2 + checks.2, router.3 + checks.3);
        if half(router) || (sent >= 20 && lost * 4 >= sent) {
            return true;
        }
        half(checks)
            && self.checks.keys().any(|q| {
                q != path && {
                    let c = Self::near(&self.checks, q, at, around);
                    c.0 > 0 && !half(c)
                }
            })
    }

    /// The first failing probe through `path` from `from` on.
    fn first_failing(&self, path: &str, from: u64) -> Option<u64> {
        [&self.routers, &self.checks]
            .into_iter()
            .filter_map(|m| m.get(path))
            .flatten()
            .filter(|x| x.0 >= from && (x.1 || (x.2 > 0 && x.3 * 4 >= x.2)))
            .map(|x| x.0)
            .min()
    }

    fn forget_before(&mut self, t: u64) {
        for q in self.routers.values_mut().chain(self.checks.values_mut()) {
            while q.front().is_some_and(|x| x.0 < t) {
                q.pop_front();
            }
        }
    }
}

/// Judges `history` once: its incidents, and each path a run in `runs`
/// switched from or to, at that moment.
pub fn hindsight(history: &History, runs: &[&Run]) -> Hindsight {
    let around_of = |p: &str| around(history.cadence.get(p).copied().unwrap_or(0));
    let horizon = history
        .cadence
        .values()
        .map(|c| around(*c))
        .max()
        .unwrap_or(AROUND_MS);
    let mut switched: Vec<(u64, String)> = runs
        .iter()
        .flat_map(|r| &r.effects)
        .filter_map(|(at, e)| match e {
            Effect::Event(Event::RouteChanged {
                from: Some(from),
                to,
                ..
            }) => Some([(at.0, from.to_string()), (at.0, to.to_string())]),
            _ => None,
        })
        .flatten()
        .collect();
    switched.sort();
    switched.dedup();
    let mut switched = switched.into_iter().peekable();
    let mut h = Hindsight::default();
    let mut window = Window::default();
    let mut open: BTreeMap<String, Incident> = BTreeMap::new();
    // Moments to judge once every probe within their window has been seen:
    // (time, path, whether it is a probe's own moment).
    let mut pending: VecDeque<(u64, String, bool)> = VecDeque::new();
    let mut judge = |(t, path, probe): (u64, String, bool), window: &Window, h: &mut Hindsight| {
        let broken = window.broken(&path, t, around_of(&path));
        if !probe {
            if broken {
                h.broken.insert((path, t));
            }
            return;
        }
        match (open.get_mut(&path), broken) {
            (None, true) => {
                // The incident starts at the first failing probe near here.
                let start = window
                    .first_failing(&path, t.saturating_sub(AROUND_MS))
                    .unwrap_or(t);
                open.insert(
                    path.clone(),
                    Incident {
                        path,
                        start,
                        end: t,
                        detected: None,
                        switched: None,
                    },
                );
            }
            (Some(i), true) => i.end = t,
            (Some(_), false) => h.incidents.extend(open.remove(&path)),
            (None, false) => {}
        }
    };
    for (at, input) in history.world() {
        let Input::ProbeCompleted(obs) = input else {
            continue;
        };
        let (map, path) = match &obs.subject {
            Subject::Check(_, p) => (&mut window.checks, p),
            Subject::Router(p) => (&mut window.routers, p),
            Subject::Target(_) => continue,
        };
        let (sent, lost) = obs
            .packets
            .map_or((0, 0), |(s, l)| (u32::from(s), u32::from(l)));
        map.entry(path.to_string()).or_default().push_back((
            at.0,
            obs.failure.is_some(),
            sent,
            lost,
        ));
        let path = path.to_string();
        while pending.front().is_some_and(|p| p.0 + horizon < at.0) {
            let p = pending.pop_front().expect("not empty");
            judge(p, &window, &mut h);
        }
        while let Some((t, p)) = switched.next_if(|(t, _)| *t <= at.0) {
            pending.push_back((t, p, false));
        }
        pending.push_back((at.0, path, true));
        let oldest = pending.front().map_or(at.0, |p| p.0);
        window.forget_before(oldest.saturating_sub(horizon + AROUND_MS));
    }
    pending.extend(switched.map(|(t, p)| (t, p, false)));
    for p in pending {
        judge(p, &window, &mut h);
    }
    h.incidents.extend(open.into_values());
    h.incidents
        .sort_by(|a, b| (a.start, &a.path).cmp(&(b.start, &b.path)));
    h
}

/// Summarises `run` with what hindsight says of its history.
pub fn summarise(hindsight: &Hindsight, run: &Run) -> Summary {
    let broken = |path: &str, at: u64| hindsight.broken.contains(&(path.to_string(), at));
    let mut s = Summary {
        incidents: hindsight.incidents.clone(),
        ..Summary::default()
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{FailureKind, GroupName, Observation, PathName, PathReason, SwitchReason};

    /// An hour of both routers probed every second; router a loses every
    /// echo of its probes at seconds 1,000 to 1,009.
    fn hour() -> History {
        let mut world = Vec::new();
        for s in 0..3_600u64 {
            for p in ["a", "b"] {
                let dead = p == "a" && (1_000..1_010).contains(&s);
                let at = Timestamp(s * 1_000);
                world.push((
                    at,
                    Input::ProbeCompleted(Observation {
                        subject: Subject::Router(PathName::new(p)),
                        at,
                        failure: dead.then_some(FailureKind::Loss),
                        cert_not_after: None,
                        packets: Some((5, if dead { 5 } else { 0 })),
                        duration_us: None,
                        rtt_us: None,
                        identity: None,
                    }),
                ));
            }
        }
        History::default().holding(world)
    }

    fn switch(at_s: u64, from: &str, to: &str, reason: SwitchReason) -> (Timestamp, Effect) {
        let at = Timestamp(at_s * 1_000);
        (
            at,
            Effect::Event(Event::RouteChanged {
                group: GroupName::new("g"),
                from: Some(PathName::new(from)),
                to: PathName::new(to),
                reason,
                at,
            }),
        )
    }

    #[test]
    fn hindsight_judges_each_moment_by_the_seconds_around_it_in_one_pass() {
        let h = hour();
        assert_eq!(h.cadence.get("a"), Some(&1_000));
        let failed = || SwitchReason::PathFailed {
            why: PathReason::RouterDown,
        };
        let run = Run {
            effects: vec![
                // Away from the dead router: right.
                switch(1_003, "a", "b", failed()),
                switch(3_000, "b", "a", SwitchReason::Failback),
                // Away from a healthy router, and after the last probe: false.
                switch(2_000, "a", "b", failed()),
                switch(3_700, "a", "b", failed()),
            ],
        };
        let hindsight = hindsight(&h, &[&run]);
        let s = summarise(&hindsight, &run);
        // Broken from the first moment with two failures in its window
        // (1,000 s) to the last (1,009 s); the incident starts at the first
        // failing probe.
        assert_eq!(
            s.incidents,
            vec![Incident {
                path: "a".into(),
                start: 1_000_000,
                end: 1_009_000,
                detected: None,
                switched: Some(1_003_000),
            }]
        );
        let verdicts: Vec<(u64, bool)> = s
            .switches
            .iter()
            .map(|w| (w.at / 1_000, w.false_switch))
            .collect();
        assert_eq!(
            verdicts,
            vec![(1_003, false), (3_000, false), (2_000, true), (3_700, true)]
        );
        assert_eq!(s.false_switches(), 2);
    }
}
