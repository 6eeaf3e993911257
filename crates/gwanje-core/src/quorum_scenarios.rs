//! Scenarios of the vantage quorum: three vantages (this one, `a`, and
//! peers `b` and `c`) probing one directly probed target every second,
//! each with two controls. Every scenario runs the whole core.

use super::*;

const INTERVAL: u64 = 1_000;

fn web() -> TargetKey {
    TargetKey::new("portal", "web")
}

fn control(i: u8) -> TargetKey {
    TargetKey::new("infra", if i == 1 { "gw1" } else { "gw2" })
}

fn v(name: &str) -> VantageName {
    VantageName::new(name)
}

/// A core for vantage `a` with peers `b` and `c`.
fn core(min_vantages: u32, share: Option<u16>) -> Core {
    let policy = HealthPolicy::consecutive(3, 2);
    let subjects = [web(), control(1), control(2)]
        .into_iter()
        .map(|k| SubjectConfig {
            subject: Subject::Target(k),
            policy,
        })
        .collect();
    let target = |k: TargetKey| QuorumTarget {
        target: k,
        interval_ms: INTERVAL,
        k: None,
        policy,
        groups: Vec::new(),
    };
    let cfg = CoreConfig {
        subjects,
        quorum: Some(QuorumConfig {
            local: v("a"),
            peers: vec![v("b"), v("c")],
            min_vantages,
            max_skew_ms: 5_000,
            isolation_share_permille: share,
            controls: vec![Subject::Target(control(1)), Subject::Target(control(2))],
            targets: vec![target(web()), target(control(1)), target(control(2))],
        }),
        ..Default::default()
    };
    let mut c = Core::new();
    c.handle_input(Timestamp(0), Input::PlanApplied(cfg));
    c
}

fn obs(key: TargetKey, at: u64, ok: bool) -> Observation {
    Observation {
        subject: Subject::Target(key),
        at: Timestamp(at),
        failure: (!ok).then_some(FailureKind::Timeout),
        cert_not_after: None,
        packets: None,
        duration_us: None,
        rtt_us: None,
        identity: None,
    }
}

/// What each vantage sees in a round: the target, and its controls.
#[derive(Clone, Copy)]
struct Sees {
    web: bool,
    controls: bool,
    /// Its clock's offset from this one, ms.
    skew: i64,
    /// Whether it reports at all.
    alive: bool,
}

const FINE: Sees = Sees {
    web: true,
    controls: true,
    skew: 0,
    alive: true,
};

/// A vantage cut off: neither its target nor its controls answer.
const CUT: Sees = Sees {
    web: false,
    controls: false,
    ..FINE
};

/// Runs rounds from `from` (s) to `to` (s); returns every effect.
fn rounds(
    c: &mut Core,
    seqs: &mut [u64; 3],
    from: u64,
    to: u64,
    mut sees: impl FnMut(u64, usize) -> Sees,
) -> Vec<Effect> {
    let mut out = Vec::new();
    for s in from..to {
        let now = s * INTERVAL;
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let w = sees(s, i);
            if !w.alive {
                continue;
            }
            let at = (now as i64 + w.skew).max(0) as u64;
            let results = [
                (web(), w.web, false),
                (control(1), w.controls, true),
                (control(2), w.controls, true),
            ];
            for (k, ok, is_control) in results {
                let t = Timestamp(now + i as u64);
                if i == 0 {
                    c.handle_input(t, Input::ProbeCompleted(obs(k, at, ok)));
                } else {
                    seqs[i] += 1;
                    c.handle_input(
                        t,
                        Input::VantageObserved {
                            vantage: v(name),
                            seq: seqs[i],
                            control: is_control,
                            observation: obs(k, at, ok),
                        },
                    );
                }
            }
        }
        // Timers between rounds, as the engine runs them.
        while let Some(t) = c.poll_timeout().filter(|t| t.0 < now + INTERVAL) {
            c.handle_timeout(t);
        }
        while let Some(e) = c.poll_effect() {
            out.push(e);
        }
    }
    out
}

fn fired(effects: &[Effect], name: AlertName) -> Vec<Alert> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Order(Order::DeliverAlerts { alerts, .. }) => Some(alerts.clone()),
            _ => None,
        })
        .flatten()
        .filter(|a| a.name() == name && a.firing())
        .collect()
}

fn verdicts(effects: &[Effect]) -> Vec<Verdict> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::VerdictChanged { to, .. }) => Some(*to),
            _ => None,
        })
        .collect()
}

#[test]
fn a_target_down_from_every_vantage_is_down_and_names_them_all() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    let calm = rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    assert_eq!(verdicts(&calm).last(), Some(&Verdict::Up));
    let down = rounds(&mut c, &mut seqs, 10, 20, |_, _| Sees {
        web: false,
        ..FINE
    });
    assert_eq!(verdicts(&down), vec![Verdict::Down]);
    let alerts = fired(&down, AlertName::TargetDown);
    assert!(!alerts.is_empty());
    let last = alerts.last().expect("alert");
    let AlertKind::TargetDown { votes, .. } = &last.kind else {
        panic!("{last:?}")
    };
    assert_eq!(
        votes.iter().filter(|v| v.ballot == Ballot::Down).count(),
        3,
        "the alert is re-sent naming all three: {votes:?}"
    );
    assert!(render::summary(&last.kind).contains("3 of 3"));
    let back = rounds(&mut c, &mut seqs, 20, 30, |_, _| FINE);
    assert_eq!(verdicts(&back), vec![Verdict::Up]);
}

#[test]
fn a_target_down_from_one_vantage_only_is_not_down() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    let effects = rounds(&mut c, &mut seqs, 0, 60, |s, i| Sees {
        web: !(s >= 10 && i == 1),
        ..FINE
    });
    assert!(!verdicts(&effects).contains(&Verdict::Down));
    assert!(fired(&effects, AlertName::TargetDown).is_empty());
    // Nor when it is this instance that sees it down.
    let mut c = core(2, None);
    let effects = rounds(&mut c, &mut [0; 3], 0, 60, |s, i| Sees {
        web: !(s >= 10 && i == 0),
        ..FINE
    });
    assert!(!verdicts(&effects).contains(&Verdict::Down));
    assert!(fired(&effects, AlertName::TargetDown).is_empty());
}

#[test]
fn a_cut_vantage_is_isolated_within_two_intervals_and_abstains() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    // Vantage c loses everything: its target and its controls.
    let effects = rounds(
        &mut c,
        &mut seqs,
        10,
        40,
        |_, i| if i == 2 { CUT } else { FINE },
    );
    let isolated: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::VantageIsolated { vantage, local }) => Some((vantage, *local)),
            _ => None,
        })
        .collect();
    assert_eq!(isolated, vec![(&v("c"), false)]);
    let at = effects.iter().find_map(|e| match e {
        Effect::Order(Order::DeliverAlerts { alerts, .. }) => alerts
            .iter()
            .find(|a| a.name() == AlertName::VantageIsolated)
            .map(|a| a.starts_at),
        _ => None,
    });
    assert!(
        at.is_some_and(|t| t.0 <= 11 * INTERVAL + 2),
        "within two intervals of the cut at 10 s: {at:?}"
    );
    assert!(fired(&effects, AlertName::TargetDown).is_empty());
    assert!(!verdicts(&effects).contains(&Verdict::Down));
    let q = c.quorum().expect("quorum");
    let (_, verdict, _, votes) = q.verdicts().find(|(k, ..)| **k == web()).expect("web");
    assert_eq!(verdict, Verdict::Up);
    assert!(votes.iter().any(|v| v.vantage.as_str() == "c"
        && v.ballot == Ballot::Abstain(Abstention::Isolated)));
    // One control passes: it votes again.
    let back = rounds(&mut c, &mut seqs, 40, 45, |_, _| FINE);
    assert!(
        back.iter()
            .any(|e| matches!(e, Effect::Event(Event::VantageReconnected { .. })))
    );
}

#[test]
fn this_vantage_cut_off_reports_only_its_isolation() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    // This instance is cut off: its own results fail, and its peers'
    // streams stop reaching it.
    let effects = rounds(&mut c, &mut seqs, 10, 60, |_, i| {
        if i == 0 {
            CUT
        } else {
            Sees {
                alive: false,
                ..FINE
            }
        }
    });
    let names: std::collections::BTreeSet<AlertName> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Order(Order::DeliverAlerts { alerts, .. }) => Some(alerts.clone()),
            _ => None,
        })
        .flatten()
        .filter(|a| a.firing())
        .map(|a| a.name())
        .collect();
    assert!(names.contains(&AlertName::VantageIsolated), "{names:?}");
    assert!(!names.contains(&AlertName::TargetDown), "{names:?}");
    assert!(!verdicts(&effects).contains(&Verdict::Down));
}

#[test]
fn a_dead_vantage_s_votes_expire_and_too_few_make_the_verdict_insufficient() {
    // Three needed: losing one makes every verdict insufficient.
    let mut c = core(3, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    let dead = Sees {
        alive: false,
        ..FINE
    };
    // c dies; the target then fails from a and b: still never down.
    let effects = rounds(&mut c, &mut seqs, 10, 30, |s, i| match i {
        2 => dead,
        _ if s >= 15 => Sees { web: false, ..FINE },
        _ => FINE,
    });
    let changed: Vec<(Timestamp, Verdict)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::VerdictChanged { target, to, at, .. }) if *target == web() => {
                Some((*at, *to))
            }
            _ => None,
        })
        .collect();
    // c's last result arrived at 9 s + 2 ms: it expires two intervals later.
    assert_eq!(
        changed,
        vec![(Timestamp(11 * INTERVAL + 2), Verdict::Insufficient)]
    );
    let degraded = fired(&effects, AlertName::MonitoringDegraded);
    assert!(!degraded.is_empty());
    assert!(fired(&effects, AlertName::TargetDown).is_empty());
    // c comes back: the down verdict stands on three vantages again.
    let effects = rounds(&mut c, &mut seqs, 30, 40, |_, _| Sees {
        web: false,
        ..FINE
    });
    assert!(verdicts(&effects).contains(&Verdict::Down));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Event(Event::MonitoringRestored)))
    );
}

#[test]
fn results_from_a_clock_an_hour_off_never_vote() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    // b's clock jumps an hour ahead and it reports the target down; c is
    // down too: with b refused, one down vote is not enough.
    let effects = rounds(&mut c, &mut seqs, 10, 40, |_, i| match i {
        1 => Sees {
            web: false,
            skew: 3_600_000,
            ..FINE
        },
        2 => Sees { web: false, ..FINE },
        _ => FINE,
    });
    assert!(!verdicts(&effects).contains(&Verdict::Down));
    let q = c.quorum().expect("quorum");
    let b = q
        .vantages(Timestamp(40 * INTERVAL))
        .into_iter()
        .find(|x| x.name.as_str() == "b")
        .expect("b");
    assert!(b.skewed > 0 && !b.up && b.lag_ms < -3_000_000, "{b:?}");
}

#[test]
fn a_restarted_stream_forgets_what_the_vantage_said() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, i| Sees {
        web: i == 0,
        ..FINE
    });
    assert_eq!(
        c.quorum().and_then(|q| q.verdict(&web())),
        Some(Verdict::Down)
    );
    c.handle_input(
        Timestamp(10 * INTERVAL),
        Input::VantageRestarted { vantage: v("b") },
    );
    assert_ne!(
        c.quorum().and_then(|q| q.verdict(&web())),
        Some(Verdict::Down)
    );
    assert_eq!(c.quorum().and_then(|q| q.seq(&v("b"))), Some(0));
}

#[test]
fn nobody_speaks_for_this_vantage() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 5, |_, _| FINE);
    for s in 5..15 {
        c.handle_input(
            Timestamp(s * INTERVAL + 500),
            Input::VantageObserved {
                vantage: v("a"),
                seq: 1_000 + s,
                control: false,
                observation: obs(web(), s * INTERVAL + 500, false),
            },
        );
    }
    let q = c.quorum().expect("quorum");
    let a = q
        .vantages(c.now())
        .into_iter()
        .find(|x| x.local)
        .expect("a");
    assert!(
        a.seq < 1_000,
        "a peer's claim to be this vantage is ignored: {a:?}"
    );
}

/// A deterministic stream of coin flips (xorshift), so a failure replays.
struct Coins(u64);

impl Coins {
    fn lose(&mut self, per_mille: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 1000 < per_mille
    }
}

#[test]
fn one_vantage_at_thirty_percent_loss_for_ten_minutes_never_makes_a_false_down() {
    for (seed, lossy) in [(1u64, 0usize), (7, 1), (42, 2), (1234, 1), (99, 0)] {
        let mut c = core(2, None);
        let mut seqs = [0; 3];
        let mut coins = Coins(seed);
        // Every probe of the lossy vantage (its target and its controls)
        // fails 30% of the time, independently.
        let mut effects = Vec::new();
        for s in 0..600 {
            let w = !coins.lose(300);
            let c1 = !coins.lose(300);
            effects.extend(rounds(&mut c, &mut seqs, s, s + 1, |_, i| {
                if i == lossy {
                    Sees {
                        web: w,
                        controls: c1,
                        ..FINE
                    }
                } else {
                    FINE
                }
            }));
        }
        assert!(
            !verdicts(&effects).contains(&Verdict::Down),
            "seed {seed}, lossy {lossy}"
        );
        for name in [AlertName::TargetDown, AlertName::ServiceDown] {
            assert!(fired(&effects, name).is_empty(), "seed {seed}: {name}");
        }
    }
}

#[test]
fn a_replay_from_a_mid_run_snapshot_decides_the_same() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    let snapshot = serde_json::to_string(&c).expect("serialize");
    let mut again: Core = serde_json::from_str(&snapshot).expect("deserialize");
    let mut seqs2 = seqs;
    let world = |s: u64, i: usize| match i {
        2 if s >= 15 => CUT,
        _ if s >= 20 => Sees { web: false, ..FINE },
        _ => FINE,
    };
    let first = rounds(&mut c, &mut seqs, 10, 40, world);
    let second = rounds(&mut again, &mut seqs2, 10, 40, world);
    assert_eq!(first, second);
    assert!(verdicts(&first).contains(&Verdict::Down));
}

#[test]
fn vantages_back_from_a_shared_cut_do_not_vote_down_on_what_they_saw_cut_off() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    // b and c share an upstream that fails: everything fails there.
    let effects = rounds(
        &mut c,
        &mut seqs,
        10,
        30,
        |_, i| if i == 0 { FINE } else { CUT },
    );
    assert!(!verdicts(&effects).contains(&Verdict::Down));
    // Both come back at once: their windows of the cut are forgotten.
    let effects = rounds(&mut c, &mut seqs, 30, 40, |_, _| FINE);
    assert!(
        !verdicts(&effects).contains(&Verdict::Down),
        "{:?}",
        verdicts(&effects)
    );
    assert!(fired(&effects, AlertName::TargetDown).is_empty());
    assert_eq!(
        c.quorum().and_then(|q| q.verdict(&web())),
        Some(Verdict::Up)
    );
}

#[test]
fn a_path_no_longer_probed_stops_holding_a_vote_up() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 5, |_, _| FINE);
    let through = |s: u64, path: &str, ok: bool, seq: u64| Input::VantageObserved {
        vantage: v("b"),
        seq,
        control: false,
        observation: Observation {
            subject: Subject::Check(web(), PathName::new(path)),
            ..obs(web(), s * INTERVAL, ok)
        },
    };
    let mut seq = 1_000;
    // b probes web through two paths, both up; then only through p1, which fails.
    for s in 5..8 {
        for p in ["p1", "p2"] {
            seq += 1;
            c.handle_input(Timestamp(s * INTERVAL + 1), through(s, p, true, seq));
        }
    }
    for s in 8..20 {
        seq += 1;
        c.handle_input(Timestamp(s * INTERVAL + 1), through(s, "p1", false, seq));
        while let Some(t) = c.poll_timeout().filter(|t| t.0 <= s * INTERVAL + 1) {
            c.handle_timeout(t);
        }
    }
    let q = c.quorum().expect("quorum");
    let (_, _, _, votes) = q.verdicts().find(|(k, ..)| **k == web()).expect("web");
    assert!(
        votes
            .iter()
            .any(|x| x.vantage.as_str() == "b" && x.ballot == Ballot::Down),
        "p2's old window no longer counts: {votes:?}"
    );
}

#[test]
fn a_vantage_removed_while_isolated_resolves_its_alert() {
    let mut c = core(2, None);
    let mut seqs = [0; 3];
    rounds(&mut c, &mut seqs, 0, 10, |_, _| FINE);
    let effects = rounds(
        &mut c,
        &mut seqs,
        10,
        15,
        |_, i| if i == 2 { CUT } else { FINE },
    );
    assert!(!fired(&effects, AlertName::VantageIsolated).is_empty());
    // A reload without c.
    let mut cfg = match core(2, None).quorum() {
        Some(q) => q.config().clone(),
        None => unreachable!(),
    };
    cfg.peers.retain(|p| p.as_str() != "c");
    let policy = HealthPolicy::consecutive(3, 2);
    let plan = CoreConfig {
        subjects: [web(), control(1), control(2)]
            .into_iter()
            .map(|k| SubjectConfig {
                subject: Subject::Target(k),
                policy,
            })
            .collect(),
        quorum: Some(cfg),
        ..Default::default()
    };
    c.handle_input(Timestamp(15 * INTERVAL), Input::PlanApplied(plan));
    let mut after = Vec::new();
    while let Some(e) = c.poll_effect() {
        after.push(e);
    }
    assert!(
        after
            .iter()
            .any(|e| matches!(e, Effect::Event(Event::VantageReconnected { vantage, .. }) if vantage.as_str() == "c")),
        "{after:?}"
    );
    assert!(
        c.alerts()
            .all(|a| a.name() != AlertName::VantageIsolated || !a.firing())
    );
}
