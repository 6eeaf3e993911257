//! Path classification: is a path up, down, or not known yet — and why.
//!
//! A path is down when its router is down, or when a check fails through it
//! while the same check passes through another path of the group (so the
//! service is fine and the path is not). A check failing through every path
//! is a service failure and says nothing about the paths.

use super::config::GroupConfig;
use super::shared::{PathReason, PathState};
use super::types::{PathName, Subject, TargetKey, TargetState, Timestamp};

/// What path decisions need to know about one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubjectView {
    /// Decided health.
    pub state: TargetState,
    /// Last successful probe.
    pub last_ok: Option<Timestamp>,
    /// Start of the current run of failures.
    pub failing_since: Option<Timestamp>,
    /// Start of the current run of successes.
    #[serde(default)]
    pub ok_since: Option<Timestamp>,
    /// Last failed probe.
    #[serde(default)]
    pub last_fail: Option<Timestamp>,
}

impl SubjectView {
    /// A subject never probed.
    pub const UNKNOWN: SubjectView = SubjectView {
        state: TargetState::Unknown,
        last_ok: None,
        failing_since: None,
        ok_since: None,
        last_fail: None,
    };
}

/// Whether `witness` is evidence against the path where `failing` fails:
/// it succeeded after `failing` began to fail (so a failure that reaches
/// two paths a few milliseconds apart is never mistaken for a path
/// failure), and `failing` still failed more than `margin_ms` after the
/// witness's successes began (so a recovery that reaches the paths a few
/// milliseconds apart is not either: the failing path must have had its
/// chance to see the recovery).
pub fn witnessed(witness: &SubjectView, failing: &SubjectView, margin_ms: u64) -> bool {
    let onset = match (witness.last_ok, failing.failing_since) {
        (Some(ok), Some(since)) => ok >= since,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let after_recovery = match (failing.last_fail, witness.ok_since) {
        (Some(fail), Some(ok_since)) => fail.since(ok_since) > margin_ms,
        _ => true,
    };
    witness.state == TargetState::Up && onset && after_recovery
}

/// A path's state with the times the controller needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathStatus {
    /// Current state.
    pub state: PathState,
    /// Why.
    pub reason: PathReason,
    /// When the state last changed.
    pub since: Timestamp,
    /// When it last went down, if ever.
    pub last_down: Option<Timestamp>,
    /// Packet loss through it over the quality window.
    #[serde(default)]
    pub quality: super::quality::Quality,
    /// What is broken, while it is down.
    #[serde(default)]
    pub diagnosis: Option<super::diagnosis::Diagnosis>,
    /// The latest examination of it.
    #[serde(default)]
    pub examination: Option<super::diagnosis::Examination>,
    /// When the core last asked for a trace.
    #[serde(default)]
    pub examined_at: Option<Timestamp>,
    /// When the core last asked for a ladder.
    #[serde(default)]
    pub laddered_at: Option<Timestamp>,
}

impl PathStatus {
    /// A path with no results yet.
    pub fn new(now: Timestamp) -> Self {
        PathStatus {
            state: PathState::Unknown,
            reason: PathReason::Pending,
            since: now,
            last_down: None,
            quality: Default::default(),
            diagnosis: None,
            examination: None,
            examined_at: None,
            laddered_at: None,
        }
    }

    /// When the path has been continuously up since, if it is up.
    pub fn up_since(&self) -> Option<Timestamp> {
        (self.state == PathState::Up).then_some(self.since)
    }
}

/// Whether `check` fails through every path of `group`.
pub fn service_down(
    group: &GroupConfig,
    check: &TargetKey,
    health: &impl Fn(&Subject) -> SubjectView,
) -> bool {
    group
        .paths
        .iter()
        .all(|q| health(&Subject::Check(check.clone(), q.clone())).state == TargetState::Down)
}

/// Classifies `path` from its router and the checks of every group using it.
/// `blame` says whether a subject failing through `path` fails there
/// clearly worse than through the other paths (random loss that every
/// path shares is no path's failure).
pub fn classify<'a>(
    path: &PathName,
    groups: impl Iterator<Item = &'a GroupConfig> + Clone,
    health: &impl Fn(&Subject) -> SubjectView,
    blame: &impl Fn(&Subject) -> bool,
) -> (PathState, PathReason) {
    let router_subject = Subject::Router(path.clone());
    let router = health(&router_subject).state;
    if router == TargetState::Down && blame(&router_subject) {
        return (PathState::Down, PathReason::RouterDown);
    }
    let mut failing = Vec::new();
    let mut pending = router == TargetState::Unknown;
    for g in groups.filter(|g| g.paths.contains(path)) {
        for c in &g.checks {
            let here = health(&Subject::Check(c.clone(), path.clone()));
            match here.state {
                TargetState::Up => {}
                TargetState::Down => {
                    let up_elsewhere = g.paths.iter().any(|q| {
                        q != path
                            && witnessed(
                                &health(&Subject::Check(c.clone(), q.clone())),
                                &here,
                                g.isolation_window_ms,
                            )
                    });
                    if up_elsewhere {
                        if blame(&Subject::Check(c.clone(), path.clone())) {
                            failing.push(c.clone());
                        }
                    } else if !service_down(g, c, health) {
                        // Failing here, unknown elsewhere: not enough to blame the path.
                        pending = true;
                    }
                }
                TargetState::Unknown => pending = true,
            }
        }
    }
    if !failing.is_empty() {
        failing.sort();
        failing.dedup();
        return (PathState::Down, PathReason::ChecksFailing(failing));
    }
    if pending {
        return (PathState::Unknown, PathReason::Pending);
    }
    (PathState::Up, PathReason::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Failback, FlapGuard};
    use TargetState::{Down as D, Unknown as U, Up};
    use std::collections::BTreeMap;

    fn group(paths: &[&str], checks: &[&str]) -> GroupConfig {
        GroupConfig {
            name: crate::GroupName::new("g"),
            paths: paths.iter().map(|p| PathName::new(p)).collect(),
            checks: checks.iter().map(|c| TargetKey::new("svc", c)).collect(),
            min_dwell_ms: 0,
            hold_down_ms: 0,
            failback: Failback::Manual,
            flap_guard: FlapGuard {
                max_switches: 3,
                window_ms: 60_000,
            },
            isolation_window_ms: 0,
            retry_initial_ms: 100,
            retry_max_ms: 1000,
            initial_wait_ms: 0,
            dampening: Default::default(),
        }
    }

    /// `routers` and `checks` are given per path, in the group's path order.
    fn run(
        routers: &[TargetState],
        checks: &[&[TargetState]],
        path: usize,
    ) -> (PathState, PathReason) {
        let names = ["a", "b", "c"];
        let check_names = ["c0", "c1"];
        let g = group(&names[..routers.len()], &check_names[..checks[0].len()]);
        let mut h: BTreeMap<Subject, TargetState> = BTreeMap::new();
        for (i, r) in routers.iter().enumerate() {
            h.insert(Subject::Router(PathName::new(names[i])), *r);
            for (j, c) in checks[i].iter().enumerate() {
                h.insert(
                    Subject::Check(
                        TargetKey::new("svc", check_names[j]),
                        PathName::new(names[i]),
                    ),
                    *c,
                );
            }
        }
        let health = |s: &Subject| {
            let state = h.get(s).copied().unwrap_or(U);
            SubjectView {
                state,
                last_ok: (state == Up).then_some(Timestamp(10)),
                failing_since: (state == D).then_some(Timestamp(5)),
                ok_since: (state == Up).then_some(Timestamp(0)),
                last_fail: (state == D).then_some(Timestamp(10)),
            }
        };
        classify(
            &PathName::new(names[path]),
            std::iter::once(&g),
            &health,
            &|_| true,
        )
    }

    #[test]
    fn classification_table() {
        let failing = |c: &str| PathReason::ChecksFailing(vec![TargetKey::new("svc", c)]);
        /// Routers per path, checks per path, the path asked about, the answer.
        type Case<'a> = (
            &'a [TargetState],
            &'a [&'a [TargetState]],
            usize,
            PathState,
            PathReason,
        );
        let cases: &[Case<'_>] = &[
            // All healthy.
            (
                &[Up, Up],
                &[&[Up], &[Up]],
                0,
                PathState::Up,
                PathReason::None,
            ),
            // Router down wins.
            (
                &[D, Up],
                &[&[Up], &[Up]],
                0,
                PathState::Down,
                PathReason::RouterDown,
            ),
            // Router answers but the check fails only through this path: far-side failure.
            (&[Up, Up], &[&[D], &[Up]], 0, PathState::Down, failing("c0")),
            // The standby is fine while the primary fails.
            (
                &[Up, Up],
                &[&[D], &[Up]],
                1,
                PathState::Up,
                PathReason::None,
            ),
            // Failing through every path: the service is down, the paths are not.
            (&[Up, Up], &[&[D], &[D]], 0, PathState::Up, PathReason::None),
            // Failing here, unknown elsewhere: not enough evidence.
            (
                &[Up, Up],
                &[&[D], &[U]],
                0,
                PathState::Unknown,
                PathReason::Pending,
            ),
            // No router verdict yet.
            (
                &[U, Up],
                &[&[Up], &[Up]],
                0,
                PathState::Unknown,
                PathReason::Pending,
            ),
            // Two checks, one failing only here.
            (
                &[Up, Up],
                &[&[Up, D], &[Up, Up]],
                0,
                PathState::Down,
                failing("c1"),
            ),
        ];
        // The other path's success predates the failure: not a witness.
        let stale = SubjectView {
            state: Up,
            last_ok: Some(Timestamp(4)),
            failing_since: None,
            ok_since: None,
            last_fail: None,
        };
        let failing_view = SubjectView {
            state: D,
            last_ok: Some(Timestamp(3)),
            failing_since: Some(Timestamp(5)),
            ok_since: None,
            last_fail: None,
        };
        assert!(!witnessed(&stale, &failing_view, 0));
        assert!(witnessed(
            &SubjectView {
                last_ok: Some(Timestamp(5)),
                ..stale
            },
            &failing_view,
            0
        ));
        // A recovery reaching the paths a moment apart: the witness's
        // successes began just before the failing path's last failure.
        let recovered = SubjectView {
            state: Up,
            last_ok: Some(Timestamp(1_002)),
            ok_since: Some(Timestamp(1_000)),
            failing_since: None,
            last_fail: Some(Timestamp(900)),
        };
        let not_yet = SubjectView {
            last_fail: Some(Timestamp(1_001)),
            ..failing_view
        };
        assert!(
            !witnessed(&recovered, &not_yet, 250),
            "not blamed for a recovery in flight"
        );
        let still = SubjectView {
            last_fail: Some(Timestamp(1_400)),
            ..failing_view
        };
        assert!(
            witnessed(&recovered, &still, 250),
            "blamed once it kept failing"
        );
        for (i, (routers, checks, path, state, reason)) in cases.iter().enumerate() {
            assert_eq!(
                run(routers, checks, *path),
                (*state, reason.clone()),
                "case {i}"
            );
        }
    }
}
