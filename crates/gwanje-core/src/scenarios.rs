//! Whole scenarios on a virtual clock: a world of routers and checks that are
//! up or down, probed every 100 ms, with an actuator that confirms changes.

use super::sim::{STEP, Sim, group_config};
use super::*;

fn sw(to: &str, reason: &str) -> (String, String) {
    (to.to_string(), reason.to_string())
}

#[test]
fn adopts_the_kernel_route_at_start_and_never_flips_it_blindly() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"]));
    // Before the kernel is read nothing moves, however healthy the paths look.
    sim.run(10);
    assert_eq!(sim.active(), None);
    assert!(sim.switches().is_empty());
    // The kernel routes via the standby: adopted as is, then failback moves it.
    sim.set_kernel(Some("b"));
    sim.observe_kernel();
    assert_eq!(sim.active(), Some("b"));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::RouteAdopted { .. }))),
        1
    );
    sim.run(20);
    assert_eq!(sim.switches(), vec![sw("a", "failback")]);
}

#[test]
fn installs_the_best_path_when_no_route_exists() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"]));
    sim.observe_kernel();
    sim.run(3);
    assert_eq!(sim.switches(), vec![sw("a", "initial")]);
    assert_eq!(sim.kernel(), Some("a"));
}

#[test]
fn fails_over_when_the_router_dies() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.router_ok.insert("a", false);
    sim.run(3);
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")]);
    assert!(sim.effects.iter().any(|e| matches!(
        e,
        Effect::Event(Event::PathChanged {
            to: PathState::Down,
            reason: PathReason::RouterDown,
            ..
        })
    )));
}

#[test]
fn fails_over_when_the_router_answers_but_does_not_forward() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.check_ok.insert(("web", "a"), false);
    sim.run(3);
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")]);
    let reason = sim.effects.iter().find_map(|e| match e {
        Effect::Event(Event::RouteChanged {
            reason: SwitchReason::PathFailed { why },
            ..
        }) => Some(why.clone()),
        _ => None,
    });
    assert_eq!(
        reason,
        Some(PathReason::ChecksFailing(vec![TargetKey::new(
            "app", "web"
        )]))
    );
}

#[test]
fn does_not_switch_when_the_service_itself_is_down() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.check_ok.insert(("web", "a"), false);
    sim.check_ok.insert(("web", "b"), false);
    sim.run(10);
    assert!(sim.switches().is_empty(), "{:?}", sim.switches());
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceDown { .. }))),
        1
    );
    sim.check_ok.insert(("web", "a"), true);
    sim.check_ok.insert(("web", "b"), true);
    sim.run(5);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceRecovered { .. }))),
        1
    );
    assert!(sim.switches().is_empty());
}

#[test]
fn never_switches_to_a_dead_standby() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.router_ok.insert("b", false);
    sim.run(10);
    sim.router_ok.insert("a", false);
    sim.run(10);
    assert!(sim.switches().is_empty(), "{:?}", sim.switches());
    assert_eq!(sim.active(), Some("a"));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::FailoverImpossible { .. }))),
        1
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::MonitorIsolated { .. }))),
        0,
        "paths died apart: not isolation"
    );
    // The standby comes back: now the move happens.
    sim.router_ok.insert("b", true);
    sim.run(5);
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")]);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::FailoverPossibleAgain { .. }))),
        1
    );
}

#[test]
fn everything_failing_at_once_is_monitor_isolation_without_churn() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.router_ok.insert("a", false);
    sim.router_ok.insert("b", false);
    sim.run(10);
    assert!(sim.switches().is_empty());
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::MonitorIsolated { .. }))),
        1
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::FailoverImpossible { .. }))),
        0
    );
    sim.router_ok.insert("a", true);
    sim.router_ok.insert("b", true);
    sim.run(5);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::MonitorReconnected { .. }))),
        1
    );
    assert!(sim.switches().is_empty());
}

#[test]
fn fails_back_automatically_after_the_stable_period() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.router_ok.insert("a", false);
    sim.run(3);
    sim.router_ok.insert("a", true);
    // Up after 2 probes (rise 2), then stable for 1 s before failback.
    sim.run(8);
    assert_eq!(
        sim.switches(),
        vec![sw("b", "path_failed")],
        "not before the stable period"
    );
    sim.run(6);
    assert_eq!(
        sim.switches(),
        vec![sw("b", "path_failed"), sw("a", "failback")]
    );
}

#[test]
fn manual_failback_waits_for_an_operator_pin() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Manual;
    let mut sim = Sim::new(g).started_on("a");
    sim.router_ok.insert("a", false);
    sim.run(3);
    sim.router_ok.insert("a", true);
    sim.run(50);
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")]);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::FailbackAvailable { .. }))),
        1,
        "offered once"
    );
    // The operator pins the primary for 2 s; after the pin, manual failback stays put.
    let until = Timestamp(sim.now + 2_000);
    sim.feed(
        Timestamp(sim.now),
        Input::Pin {
            group: GroupName::new("svc"),
            path: PathName::new("a"),
            until,
            by: "oncall".into(),
        },
    );
    sim.drain();
    assert_eq!(sim.active(), Some("a"));
    sim.run(30);
    assert_eq!(sim.active(), Some("a"));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::PinCleared { by, .. }) if by == "expired")),
        1
    );
    assert_eq!(
        sim.switches(),
        vec![sw("b", "path_failed"), sw("a", "pinned")]
    );
}

#[test]
fn a_pin_holds_until_its_ttl_then_automatic_rules_resume() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    let until = Timestamp(sim.now + 1_000);
    sim.feed(
        Timestamp(sim.now),
        Input::Pin {
            group: GroupName::new("svc"),
            path: PathName::new("b"),
            until,
            by: "oncall".into(),
        },
    );
    sim.drain();
    assert_eq!(sim.active(), Some("b"));
    sim.run(5);
    assert_eq!(sim.active(), Some("b"), "pinned");
    sim.run(20);
    // Pin expired; auto failback brings it back to the preferred path.
    assert_eq!(sim.active(), Some("a"));
    assert_eq!(sim.switches(), vec![sw("b", "pinned"), sw("a", "failback")]);
}

#[test]
fn hold_down_keeps_a_recovered_path_out_for_a_while() {
    let mut g = group_config(&["a", "b", "c"], &["web"]);
    g.hold_down_ms = 2_000;
    let mut sim = Sim::new(g).started_on("a");
    sim.router_ok.insert("b", false);
    sim.run(3);
    sim.router_ok.insert("b", true);
    sim.run(3);
    // b is up again but inside its hold-down: a failure of a goes to c.
    sim.router_ok.insert("a", false);
    sim.run(3);
    assert_eq!(sim.switches(), vec![sw("c", "path_failed")]);
}

#[test]
fn min_dwell_delays_failback() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.min_dwell_ms = 5_000;
    let mut sim = Sim::new(g).started_on("a");
    sim.router_ok.insert("a", false);
    sim.run(3);
    sim.router_ok.insert("a", true);
    sim.run(30);
    assert_eq!(sim.switches().len(), 1, "still dwelling on b after 3 s");
    sim.run(25);
    assert_eq!(
        sim.switches(),
        vec![sw("b", "path_failed"), sw("a", "failback")]
    );
}

#[test]
fn flap_guard_freezes_after_too_many_switches() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Auto { after_ms: 0 };
    g.flap_guard = FlapGuard {
        max_switches: 2,
        window_ms: 30_000,
    };
    // The flap guard alone: dampening would hold the failback after unfreeze.
    g.dampening.penalty = 0;
    let mut sim = Sim::new(g).started_on("a");
    sim.router_ok.insert("a", false);
    sim.run(4);
    sim.router_ok.insert("a", true);
    sim.run(4);
    assert_eq!(
        sim.switches(),
        vec![sw("b", "path_failed"), sw("a", "failback")]
    );
    // A third switch within the window freezes the group, reported once; a
    // freeze stops oscillation but never holds traffic on a dead path, so
    // traffic leaves the dead active path anyway.
    sim.router_ok.insert("a", false);
    sim.run(10);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::GroupFrozen { switches: 2, .. }))),
        1
    );
    assert_eq!(sim.active(), Some("b"));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::MovedDespiteFreeze { .. }))),
        1
    );
    // While frozen, the recovered preferred path is not failed back to.
    sim.router_ok.insert("a", true);
    sim.run(20);
    assert_eq!(sim.active(), Some("b"));
    // An operator lifts the freeze: failback happens.
    sim.feed(
        Timestamp(sim.now),
        Input::Unfreeze {
            group: GroupName::new("svc"),
            by: "oncall".into(),
        },
    );
    sim.drain();
    sim.run(2);
    assert_eq!(sim.active(), Some("a"));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::GroupUnfrozen { .. }))),
        1
    );
}

#[test]
fn failed_route_changes_are_retried_with_backoff_and_reported() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.set_actuator(false);
    sim.router_ok.insert("a", false);
    sim.run(10);
    let retry_times: Vec<u64> = sim
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::RouteChangeFailed { retry_at, .. }) => Some(retry_at.0),
            _ => None,
        })
        .collect();
    assert!(
        retry_times.len() >= 3,
        "several failed tries reported: {retry_times:?}"
    );
    // Each retry fails at once, so the gaps are the backoff: 400, 800, then the 1 s cap.
    let gaps: Vec<u64> = retry_times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(&gaps[..2], &[400, 800], "{retry_times:?}");
    let attempts: Vec<u32> = sim
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Order(Order::ChangeRoute { attempt, .. }) => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(&attempts[..3], &[1, 2, 3]);
    sim.set_actuator(true);
    sim.run(15);
    assert_eq!(sim.active(), Some("b"));
    assert_eq!(sim.kernel(), Some("b"));
}

#[test]
fn external_route_changes_are_reported_and_undone() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.set_kernel(Some("b"));
    sim.observe_kernel();
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::RouteDrifted { .. }))),
        1
    );
    assert_eq!(sim.kernel(), Some("a"), "restored");
    assert_eq!(sim.switches(), vec![sw("a", "drift_corrected")]);
}

#[test]
fn checks_behind_a_down_path_are_marked_as_consequences() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web", "api"])).started_on("a");
    sim.router_ok.insert("a", false);
    sim.run(3);
    let behind: Vec<Option<PathName>> = sim
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::HealthChanged {
                subject: Subject::Check(..),
                to: TargetState::Down,
                behind,
                ..
            }) => Some(behind.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(behind.len(), 2);
    assert!(
        behind
            .iter()
            .all(|b| b.as_ref().map(PathName::as_str) == Some("a")),
        "{behind:?}"
    );
}

#[test]
fn replaying_the_same_inputs_gives_the_same_effects() {
    let run = || {
        let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
        sim.router_ok.insert("a", false);
        sim.run(5);
        sim.check_ok.insert(("web", "b"), false);
        sim.run(5);
        sim.router_ok.insert("a", true);
        sim.check_ok.insert(("web", "b"), true);
        sim.run(20);
        sim.effects
    };
    let first = run();
    assert!(first.len() > 5);
    assert_eq!(first, run());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Random loss that never reaches `fall` failures in the window never switches.
    #[test]
    fn loss_below_the_threshold_never_switches(seed in 0u64..u64::MAX) {
        let g = group_config(&["a", "b"], &["web"]);
        let mut sim = Sim::with_policy(g, HealthPolicy { fall: 3, window: 3, rise: 2 }).started_on("a");
        let mut x = seed | 1;
        for _ in 0..300 {
            // Fail at most one probe in three consecutive rounds per subject.
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let fail_round = x % 3 == 0;
            sim.router_ok.insert("a", !fail_round || x % 2 == 0);
            sim.check_ok.insert(("web", "a"), !fail_round || x % 2 == 1);
            sim.run(1);
            sim.router_ok.insert("a", true);
            sim.check_ok.insert(("web", "a"), true);
            sim.run(2);
        }
        proptest::prop_assert!(sim.switches().is_empty(), "{:?}", sim.switches());
    }

    /// Whatever happens, once things settle the active path is healthy
    /// whenever some path is healthy (flap guard aside).
    #[test]
    fn settles_on_a_healthy_path_when_one_exists(events in proptest::collection::vec((0usize..6, proptest::bool::ANY), 1..30)) {
        let mut g = group_config(&["a", "b", "c"], &["web"]);
        g.flap_guard = FlapGuard { max_switches: 1000, window_ms: 1 };
        let mut sim = Sim::new(g).started_on("a");
        let names = ["a", "b", "c"];
        for (which, ok) in events {
            if which < 3 {
                sim.router_ok.insert(names[which], ok);
            } else {
                sim.check_ok.insert(("web", names[which - 3]), ok);
            }
            sim.run(3);
        }
        sim.run(40);
        let healthy: Vec<&str> = names.iter().copied().filter(|p| sim.router_ok[p] && sim.check_ok[&("web", *p)]).collect();
        let any_check_up = !healthy.is_empty();
        if any_check_up {
            let active = sim.active().expect("a route is set");
            proptest::prop_assert!(healthy.contains(&active), "active {active} while {healthy:?} are healthy");
        }
    }
}

#[test]
fn start_up_waits_for_the_preferred_path_and_is_not_a_failover() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.initial_wait_ms = 5_000;
    let mut sim = Sim::new(g);
    // No route in the kernel; only the standby's probes have reported yet.
    sim.observe_kernel();
    for _ in 0..3 {
        sim.now += STEP;
        sim.probe(Subject::Router(PathName::new("b")), true);
        sim.probe(
            Subject::Check(TargetKey::new("app", "web"), PathName::new("b")),
            true,
        );
    }
    assert!(sim.switches().is_empty(), "waits for the preferred path");
    sim.run(3);
    assert_eq!(sim.switches(), vec![sw("a", "initial")]);
    sim.run(50);
    assert_eq!(sim.switches().len(), 1, "no failback, no second move");
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Order(Order::DeliverAlerts { alerts, .. }) if alerts.iter().any(|a| a.name() == AlertName::FailoverExecuted))),
        0,
        "installing the first route is not an alert"
    );
    assert!(
        sim.core().groups()[&GroupName::new("svc")]
            .switches
            .is_empty(),
        "nor a flap-guard slot"
    );
}

#[test]
fn start_up_installs_the_standby_when_the_preferred_path_never_reports() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.initial_wait_ms = 1_000;
    let mut sim = Sim::new(g);
    sim.observe_kernel();
    for _ in 0..30 {
        sim.now += STEP;
        sim.probe(Subject::Router(PathName::new("b")), true);
        sim.probe(
            Subject::Check(TargetKey::new("app", "web"), PathName::new("b")),
            true,
        );
        if sim.core().poll_timeout().is_some_and(|t| t.0 <= sim.now) {
            let at = Timestamp(sim.now);
            sim.tick(at);
            sim.drain();
        }
    }
    assert_eq!(
        sim.switches(),
        vec![sw("b", "initial")],
        "bounded by initial_wait_ms"
    );
}

/// A round of 5-echo ICMP probes through every path, losing `loss_a` of
/// every 10 echoes through "a"; a probe fails at 4 or more lost.
fn lossy_round(sim: &mut Sim, round: u64, loss_a: u64) {
    sim.now += STEP;
    for p in ["a", "b"] {
        for s in [
            Subject::Router(PathName::new(p)),
            Subject::Check(TargetKey::new("app", "web"), PathName::new(p)),
        ] {
            // Spread the losses evenly: echo i of round r is lost when
            // (r * 5 + i) % 10 < loss.
            let lost = if p == "a" {
                (0..5).filter(|i| (round * 5 + i) % 10 < loss_a).count() as u16
            } else {
                0
            };
            sim.probe_packets(s, 5, lost, 3);
        }
    }
    let at = Timestamp(sim.now);
    if sim.core().poll_timeout().is_some_and(|t| t <= at) {
        sim.tick(at);
        sim.drain();
    }
}

#[test]
fn a_degraded_path_is_left_and_not_returned_to_until_clean_for_the_stable_period() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Auto { after_ms: 5_000 };
    let mut sim = Sim::new(g).started_on("a");
    let mut round = 0;
    // 60% of echoes lost through "a" (about 37% each way), spread so that
    // every single probe still passes (3 of 5 lost, a probe fails at 4).
    for _ in 0..300 {
        round += 1;
        lossy_round(&mut sim, round, 6);
    }
    assert_eq!(
        sim.switches(),
        vec![sw("b", "path_failed")],
        "left once, stays"
    );
    assert!(sim.effects.iter().any(|e| matches!(
        e,
        Effect::Event(Event::PathChanged {
            reason: PathReason::Degraded { .. },
            ..
        })
    )));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::GroupFrozen { .. }))),
        0
    );
    // Clean again: failback only after the window has emptied of loss and
    // the stable period has passed.
    let clean_from = sim.now;
    for _ in 0..300 {
        round += 1;
        lossy_round(&mut sim, round, 0);
    }
    let back = sim
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Event(Event::RouteChanged {
                to,
                at,
                reason: SwitchReason::Failback,
                ..
            }) if to.as_str() == "a" => Some(*at),
            _ => None,
        })
        .expect("fails back once clean");
    assert!(
        back.0 - clean_from >= 5_000,
        "not on a lucky streak: {} ms",
        back.0 - clean_from
    );
}

#[test]
fn tolerated_loss_never_switches() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    for round in 0..3000 {
        lossy_round(&mut sim, round, 1);
    }
    assert!(sim.switches().is_empty(), "{:?}", sim.switches());
}

#[test]
fn a_recovery_reaching_the_paths_a_moment_apart_is_not_a_path_failure() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    let web = |p: &str| Subject::Check(TargetKey::new("app", "web"), PathName::new(p));
    let round = |sim: &mut Sim, a_ok: bool, b_ok: bool| {
        sim.now += STEP;
        sim.probe(Subject::Router(PathName::new("a")), true);
        sim.probe(Subject::Router(PathName::new("b")), true);
        // b's probe lands a few ms before a's.
        sim.probe(web("b"), b_ok);
        sim.now += 3;
        sim.probe(web("a"), a_ok);
    };
    for _ in 0..5 {
        round(&mut sim, false, false);
    }
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceDown { .. }))),
        1
    );
    // The service comes back between b's probe and a's: for one round a
    // still fails while b succeeds.
    round(&mut sim, false, true);
    round(&mut sim, false, true);
    for _ in 0..10 {
        round(&mut sim, true, true);
    }
    assert!(sim.switches().is_empty(), "{:?}", sim.switches());
    assert_eq!(
        sim.count(|e| matches!(
            e,
            Effect::Event(Event::PathChanged {
                to: PathState::Down,
                ..
            })
        )),
        0,
        "a is not blamed for a recovery in flight"
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceRecovered { .. }))),
        1
    );
}

#[test]
fn blame_sticks_and_alerts_tell_the_truth_when_every_path_fails() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    // The standby breaks first: blamed, since the check passes through a.
    sim.check_ok.insert(("web", "b"), false);
    sim.run(10);
    let b_down = |sim: &Sim| sim.core().paths()[&PathName::new("b")].state == PathState::Down;
    assert!(b_down(&sim));
    // Then the check fails through the primary too.
    sim.check_ok.insert(("web", "a"), false);
    sim.run(10);
    assert!(
        b_down(&sim),
        "the standby stays blamed: nothing through it succeeded"
    );
    assert!(sim.switches().is_empty());
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceDown { .. }))),
        0,
        "the evidence does not point at the service"
    );
    let unsure = sim.effects.iter().find_map(|e| match e {
        Effect::Event(Event::FailoverImpossible { unsure, .. }) => Some(unsure.clone()),
        _ => None,
    });
    assert_eq!(unsure, Some(vec![TargetKey::new("app", "web")]));
    let alert = sim
        .core()
        .alerts()
        .find(|a| a.name().as_str() == "FailoverImpossible" && a.firing())
        .expect("FailoverImpossible fires");
    assert!(
        crate::render::description(&alert.kind).contains("cannot tell"),
        "{}",
        crate::render::description(&alert.kind)
    );
    assert!(
        sim.core()
            .alerts()
            .any(|a| a.name().as_str() == "PathDown" && a.firing() && a.labels()["path"] == "b"),
        "PathDown for b is kept"
    );
    // The primary's check passes again: the doubt clears; b stays blamed.
    sim.check_ok.insert(("web", "a"), true);
    sim.run(10);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::FailoverPossibleAgain { .. }))),
        1
    );
    assert!(b_down(&sim));
    // Only a success through b clears its blame.
    sim.check_ok.insert(("web", "b"), true);
    sim.run(10);
    assert!(!b_down(&sim));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Random echo loss below the tolerated band (up to 15% of echoes, about
    /// 8% each way) on either path never moves traffic.
    #[test]
    fn random_loss_below_the_tolerated_band_never_switches(seed in 1u64..u64::MAX, rate in 0u64..150) {
        let g = group_config(&["a", "b"], &["web"]);
        let mut sim = Sim::with_policy(g, HealthPolicy { fall: 3, window: 3, rise: 2 }).started_on("a");
        let mut x = seed;
        for _ in 0..600 {
            sim.random_round(&[("a", rate, rate), ("b", rate, rate)], &mut x);
        }
        proptest::prop_assert!(sim.switches().is_empty(), "{:?}", sim.switches());
    }
}

#[test]
fn failback_waits_for_clean_quality_even_on_a_path_never_degraded() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Auto { after_ms: 2_000 };
    let mut sim = Sim::new(g).started_on("a");
    // A burst of probe failures moves traffic before the loss window can judge.
    let mut round = 0;
    for _ in 0..4 {
        round += 1;
        lossy_round(&mut sim, round, 10);
    }
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")]);
    // Then 30% of echoes lost (about 16% each way): probes pass, the path is
    // not degraded, but its quality is not clean: no failback.
    for _ in 0..100 {
        round += 1;
        lossy_round(&mut sim, round, 3);
    }
    assert_eq!(sim.switches().len(), 1, "{:?}", sim.switches());
    // Clean: failback after the window empties and the stable period passes.
    for _ in 0..200 {
        round += 1;
        lossy_round(&mut sim, round, 0);
    }
    assert_eq!(sim.switches().last(), Some(&sw("a", "failback")));
}

#[test]
fn a_path_whose_checks_fail_only_through_it_says_so_even_when_its_loss_is_high() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    // The far side is cut: the router answers, the check through "a" loses
    // every echo, which also makes the path's loss high.
    for _ in 0..200 {
        sim.now += STEP;
        for p in ["a", "b"] {
            sim.probe_packets(Subject::Router(PathName::new(p)), 5, 0, 3);
            let lost = if p == "a" { 5 } else { 0 };
            sim.probe_packets(
                Subject::Check(TargetKey::new("app", "web"), PathName::new(p)),
                5,
                lost,
                3,
            );
        }
        let at = Timestamp(sim.now);
        if sim.core().poll_timeout().is_some_and(|t| t <= at) {
            sim.tick(at);
            sim.drain();
        }
    }
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")]);
    let a = &sim.core().paths()[&PathName::new("a")];
    assert_eq!(a.state, PathState::Down);
    assert!(
        matches!(a.reason, PathReason::ChecksFailing(_)),
        "the specific cause, not the loss it causes: {}",
        a.reason
    );
}

#[test]
fn a_service_failing_on_every_path_is_the_service_even_while_a_path_is_down_for_another_check() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["large", "web"])).started_on("a");
    // The primary drops large packets: blamed for "large" only, traffic moves.
    sim.check_ok.insert(("large", "a"), false);
    sim.run(10);
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")]);
    // Then the web service fails through both paths, while "large" still
    // passes through the standby: the service, not the standby.
    sim.check_ok.insert(("web", "a"), false);
    sim.check_ok.insert(("web", "b"), false);
    sim.run(10);
    assert_eq!(sim.switches(), vec![sw("b", "path_failed")], "no switch");
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceDown { .. }))),
        1
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::FailoverImpossible { .. }))),
        0,
        "moving would not help, and gwanje knows why"
    );
    assert_eq!(
        sim.core().paths()[&PathName::new("b")].state,
        PathState::Up,
        "the standby is not blamed for the service"
    );
    // The service recovers: recovered, and nothing else moves.
    sim.check_ok.insert(("web", "a"), true);
    sim.check_ok.insert(("web", "b"), true);
    sim.run(10);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceRecovered { .. }))),
        1
    );
}

#[test]
fn a_service_failure_holds_while_a_down_path_changes_its_reason() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["large", "web"])).started_on("a");
    sim.check_ok.insert(("large", "a"), false);
    sim.run(10);
    sim.check_ok.insert(("web", "a"), false);
    sim.check_ok.insert(("web", "b"), false);
    sim.run(10);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceDown { .. }))),
        1
    );
    // Router a stops answering: its reason becomes "router down", which
    // would explain every check, but the service is still what fails.
    sim.router_ok.insert("a", false);
    sim.run(10);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceRecovered { .. }))),
        0,
        "no flicker"
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::FailoverImpossible { .. }))),
        0
    );
    // Router b dies too: no path is up, and the service has still not
    // passed anywhere, so it is not "recovered".
    sim.router_ok.insert("b", false);
    sim.run(10);
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceRecovered { .. }))),
        0,
        "recovered only when the check passes"
    );
}

#[test]
fn a_slow_check_still_failing_through_a_dead_standby_is_not_called_the_service() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["fast", "slow"])).started_on("a");
    let check = |c: &str, p: &str| Subject::Check(TargetKey::new("app", c), PathName::new(p));
    // b's far side is cut at round 1; a's at round 4. The slow check is
    // probed every 5 rounds, so it reaches "down" on both paths at once.
    for round in 0..30u64 {
        sim.now += STEP;
        for p in ["a", "b"] {
            sim.probe(Subject::Router(PathName::new(p)), true);
            let cut = if p == "b" { round >= 1 } else { round >= 4 };
            sim.probe(check("fast", p), !cut);
            if round % 5 == 0 {
                sim.probe(check("slow", p), !cut);
            }
        }
        let at = Timestamp(sim.now);
        if sim.core().poll_timeout().is_some_and(|t| t <= at) {
            sim.tick(at);
            sim.drain();
        }
    }
    assert!(sim.switches().is_empty(), "{:?}", sim.switches());
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceDown { .. }))),
        0,
        "the slow check never passed through b after b went down"
    );
    assert!(sim.count(|e| matches!(e, Effect::Event(Event::FailoverImpossible { .. }))) >= 1);
}

#[test]
fn a_down_path_is_traced_once_a_minute_and_its_alert_carries_the_diagnosis() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    let examined = |sim: &Sim| {
        sim.count(
            |e| matches!(e, Effect::Order(Order::ExaminePath { path, trace: true }) if path.as_str() == "a"),
        )
    };
    let laddered = |sim: &Sim| {
        sim.count(
            |e| matches!(e, Effect::Order(Order::ExaminePath { path, .. }) if path.as_str() == "a"),
        )
    };
    sim.check_ok.insert(("web", "a"), false);
    sim.run(5);
    assert_eq!(examined(&sim), 1, "asked once when the path went down");
    let diagnosis = |sim: &Sim| sim.core().paths()[&PathName::new("a")].diagnosis.clone();
    assert_eq!(diagnosis(&sim).unwrap().kind, DiagnosisKind::Unknown);
    let rung = |payload, received| Rung {
        payload,
        sent: 2,
        received,
        frag_needed: None,
        refused_by: None,
    };
    let hop = |ttl, small: Option<&str>, large: Option<&str>| Hop {
        ttl,
        small: small.map(Into::into),
        large: large.map(Into::into),
    };
    sim.feed(
        Timestamp(sim.now),
        Input::PathExamined {
            path: PathName::new("a"),
            examination: Examination {
                destination: "198.18.100.1".into(),
                ladder: vec![rung(64, 2), rung(1300, 2), rung(1400, 0)],
                hops: vec![
                    hop(1, Some("198.18.1.1"), Some("198.18.1.1")),
                    hop(2, Some("198.18.100.1"), None),
                ],
                packets: 10,
                error: None,
            },
        },
    );
    sim.drain();
    let d = diagnosis(&sim).unwrap();
    assert_eq!(
        (d.kind, d.evidence.max_passing_payload),
        (DiagnosisKind::LargePacketLoss, Some(1300))
    );
    let alert = sim
        .core()
        .alerts()
        .find(|a| a.name().as_str() == "PathDown" && a.firing())
        .unwrap();
    assert!(
        crate::render::description(&alert.kind).contains("Diagnosis (large_packet_loss)"),
        "{}",
        crate::render::description(&alert.kind)
    );
    assert!(
        crate::render::description(&alert.kind).contains("large packets die after 198.18.1.1"),
        "{}",
        crate::render::description(&alert.kind)
    );
    // Bounded: the ladder every 10 s, the trace once a minute.
    sim.run(590);
    assert_eq!(examined(&sim), 1);
    assert_eq!(laddered(&sim), 6, "at 0, 10, 20, 30, 40 and 50 s");
    sim.run(20);
    assert_eq!(examined(&sim), 2);
    // A ladder alone keeps the last trace's hops.
    let ladder_only = Examination {
        destination: "198.18.100.1".into(),
        ladder: vec![rung(64, 2), rung(1300, 2), rung(1400, 0)],
        hops: vec![],
        packets: 6,
        error: None,
    };
    sim.feed(
        Timestamp(sim.now),
        Input::PathExamined {
            path: PathName::new("a"),
            examination: ladder_only,
        },
    );
    sim.drain();
    assert_eq!(
        diagnosis(&sim).unwrap().evidence.last_hop,
        Some((1, "198.18.1.1".to_string()))
    );
    // Back up: no diagnosis.
    sim.check_ok.insert(("web", "a"), true);
    sim.run(50);
    assert_eq!(diagnosis(&sim), None);
}
