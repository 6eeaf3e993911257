//! Scenarios for failback timing, dampening of flapping paths, and random
//! loss shared by every path (issue 24's rules), on the virtual clock.

use super::sim::{STEP, Sim, group_config};
use super::*;

/// The time of the first route change to `to` for `reason`.
fn changed_at(sim: &Sim, to: &str, reason: &str) -> Option<u64> {
    sim.effects.iter().find_map(|e| match e {
        Effect::Event(Event::RouteChanged {
            to: t,
            reason: r,
            at,
            ..
        }) if t.as_str() == to && r.label() == reason => Some(at.0),
        _ => None,
    })
}

fn lossless(a: u64, b: u64) -> [(&'static str, u64, u64); 2] {
    [("a", a, a), ("b", b, b)]
}

#[test]
fn one_outage_fails_back_after_the_configured_period_from_recovery() {
    for outage_rounds in [20u64, 30, 60] {
        let mut g = group_config(&["a", "b"], &["web"]);
        g.failback = Failback::Auto { after_ms: 5_000 };
        let mut sim = Sim::new(g).started_on("a");
        let mut x = 7;
        // Every echo through "a" lost for 2–6 s: down, and its loss window
        // (10 s) full of the outage.
        for _ in 0..outage_rounds {
            sim.random_round(&lossless(1000, 0), &mut x);
        }
        assert!(changed_at(&sim, "b", "path_failed").is_some());
        let repaired = sim.now;
        for _ in 0..150 {
            sim.random_round(&lossless(0, 0), &mut x);
        }
        let back = changed_at(&sim, "a", "failback").expect("fails back");
        // Up since its rise (2 probes after the repair), confirmed by the
        // next 10 echoes; failback `after` from then, within one interval.
        let since = sim.core().paths()[&PathName::new("a")].since.0;
        assert!(
            since - repaired <= 2 * STEP,
            "up {} ms after repair",
            since - repaired
        );
        assert!(
            (5_000..=5_000 + STEP).contains(&(back - since)),
            "outage of {outage_rounds} rounds: failback {} ms after recovery",
            back - since
        );
        assert_eq!(sim.switches().len(), 2);
    }
}

#[test]
fn a_path_still_losing_packets_after_it_comes_back_is_not_failed_back_to() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Auto { after_ms: 5_000 };
    let mut sim = Sim::new(g).started_on("a");
    let mut x = 11;
    for _ in 0..30 {
        sim.random_round(&lossless(1000, 0), &mut x);
    }
    // Back, but losing 30% of echoes (16% each way): probes pass, the
    // quality since recovery is not clean.
    for _ in 0..300 {
        sim.random_round(&lossless(300, 0), &mut x);
    }
    assert_eq!(sim.switches().len(), 1, "{:?}", sim.switches());
}

/// `a` fails for `down` rounds every `period` rounds, `cycles` times, then
/// stays clean for `tail` rounds.
fn flap(sim: &mut Sim, down: u64, period: u64, cycles: u64, tail: u64) -> Vec<u64> {
    let mut x = 3;
    let mut ends = Vec::new();
    for _ in 0..cycles {
        for r in 0..period {
            let loss = if r < down { 1000 } else { 0 };
            sim.random_round(&lossless(loss, 0), &mut x);
        }
        ends.push(sim.now);
    }
    for _ in 0..tail {
        sim.random_round(&lossless(0, 0), &mut x);
    }
    ends
}

#[test]
fn a_path_failing_again_and_again_waits_longer_each_time() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Auto { after_ms: 5_000 };
    g.flap_guard.max_switches = 100;
    let mut sim = Sim::new(g).started_on("a");
    // Down 1 s, then clean 7 s (longer than `after`), for a minute: the
    // first recovery looks like any single outage and is failed back to;
    // from the second failure on, the penalty holds it.
    let _ = flap(&mut sim, 10, 80, 8, 0);
    let sw = sim.switches();
    let failbacks = sw.iter().filter(|(_, r)| r == "failback").count();
    assert_eq!(failbacks, 1, "{sw:?}");
    assert_eq!(sim.active(), Some("b"));
    let g = &sim.core().groups()[&GroupName::new("svc")];
    let a = PathName::new("a");
    assert!(g.suppressed(Timestamp(sim.now), &a));
    let penalty = g.penalties[&a].value(Timestamp(sim.now), &g.cfg.dampening);
    assert!(penalty > g.cfg.dampening.reuse, "{penalty}");
    // Once it stays clean, failback comes when the penalty has decayed, and
    // the status's earliest failback says when.
    let earliest = g
        .earliest_failback(&a, sim.core().paths())
        .expect("a is up");
    assert!(earliest.0 > sim.now + 5_000, "later than `after` alone");
    let clean_from = sim.now;
    while sim.now < earliest.0 + 1_000 {
        let mut x = 5;
        sim.random_round(&lossless(0, 0), &mut x);
    }
    let back = sim
        .effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Event(Event::RouteChanged {
                reason: SwitchReason::Failback,
                at,
                ..
            }) => Some(at.0),
            _ => None,
        })
        .expect("failed back once the penalty decayed");
    assert!(back > clean_from, "{back} {clean_from}");
    assert!(
        back.abs_diff(earliest.0) <= STEP,
        "{back} vs {}",
        earliest.0
    );
}

#[test]
fn an_intermittent_path_with_short_clean_spells_never_gets_traffic_back() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Auto { after_ms: 5_000 };
    let mut sim = Sim::new(g).started_on("a");
    // Down 0.5 s every 4 s for a minute.
    let _ = flap(&mut sim, 5, 40, 15, 0);
    assert_eq!(
        sim.switches(),
        vec![("b".to_string(), "path_failed".to_string())]
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::GroupFrozen { .. }))),
        0
    );
}

#[test]
fn equal_heavy_random_loss_moves_nothing_and_says_the_service_is_degraded() {
    let mut sim = Sim::with_policy(
        group_config(&["a", "b"], &["web"]),
        HealthPolicy::consecutive(2, 2),
    )
    .started_on("a");
    let mut x = 0x9e37_79b9_7f4a_7c15;
    // Half the check's echoes lost through every path (29% each way), the
    // routers clean: single probes fail at random through each path.
    for _ in 0..1200 {
        sim.random_round(&[("a", 0, 500), ("b", 0, 500)], &mut x);
    }
    let changes: Vec<_> = sim
        .effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Event(Event::PathChanged { .. })
                    | Effect::Event(Event::RouteChanged { .. })
            )
        })
        .collect();
    assert!(sim.switches().is_empty(), "{changes:?}");
    let raised: Vec<_> = sim
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event(Event::ServiceDegraded { check, losses, .. }) => {
                Some((check.clone(), losses.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(raised.len(), 1, "raised once, held: {raised:?}");
    let (check, losses) = &raised[0];
    assert_eq!(check.as_str(), "app/web");
    assert_eq!(losses.len(), 2, "names each path's loss");
    assert!(losses.iter().all(|(_, l)| *l > 100), "{losses:?}");
    let alert = sim
        .core()
        .alerts()
        .find(|a| a.name().as_str() == "ServiceDegraded" && a.firing())
        .expect("ServiceDegraded fires");
    assert_eq!(alert.severity(), Severity::Warning);
    assert!(
        !sim.core()
            .alerts()
            .any(|a| a.firing()
                && matches!(a.name(), AlertName::PathDown | AlertName::FailoverExecuted)),
        "no path is blamed"
    );
    // Resolved with hysteresis: clean through one path.
    for _ in 0..150 {
        sim.random_round(&[("a", 0, 0), ("b", 0, 500)], &mut x);
    }
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::ServiceDegradationCleared { .. }))),
        1
    );
    assert!(
        !sim.core()
            .alerts()
            .any(|a| a.name().as_str() == "ServiceDegraded" && a.firing())
    );
}

#[test]
fn unequal_loss_still_moves_to_the_better_path() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    let mut x = 42;
    // The check loses 90% of echoes through "a", 30% through "b".
    for _ in 0..200 {
        sim.random_round(&[("a", 0, 900), ("b", 0, 300)], &mut x);
    }
    assert_eq!(
        sim.switches(),
        vec![("b".to_string(), "path_failed".to_string())]
    );
}

#[test]
fn a_degraded_path_is_not_left_for_one_barely_better() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.failback = Failback::Manual;
    let mut sim = Sim::new(g).started_on("a");
    let mut x = 99;
    // Routers losing 60% and 50% of echoes (37% and 29% each way): both
    // degraded, neither clearly better: nothing moves.
    for _ in 0..300 {
        sim.random_round(&[("a", 600, 0), ("b", 500, 0)], &mut x);
    }
    assert!(sim.switches().is_empty(), "{:?}", sim.switches());
    // b clean: clearly better, traffic moves.
    for _ in 0..300 {
        sim.random_round(&[("a", 600, 0), ("b", 0, 0)], &mut x);
    }
    assert_eq!(
        sim.switches(),
        vec![("b".to_string(), "path_failed".to_string())]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// The same random loss on every path, at any level, never moves
    /// traffic more than once.
    #[test]
    fn equal_random_loss_at_any_level_switches_at_most_once(seed in 1u64..u64::MAX, rate in 0u64..=1000) {
        let g = group_config(&["a", "b"], &["web"]);
        let mut sim = Sim::with_policy(g, HealthPolicy { fall: 3, window: 3, rise: 2 }).started_on("a");
        let mut x = seed;
        for _ in 0..600 {
            sim.random_round(&lossless(rate, rate), &mut x);
        }
        proptest::prop_assert!(sim.switches().len() <= 1, "{:?}", sim.switches());
    }
}
