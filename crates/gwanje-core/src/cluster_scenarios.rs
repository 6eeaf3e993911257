//! A replica of a cluster on a virtual clock: it orders only while it
//! leads, with its fence, and only after probing every path itself; it
//! follows the leader's route otherwise; it fails static when coordination
//! is lost.

use super::sim::{Sim, group_config};
use super::*;

fn firing(sim: &Sim, name: AlertName) -> bool {
    sim.core().alerts().any(|a| a.name() == name && a.firing())
}

fn now(sim: &Sim) -> Timestamp {
    Timestamp(sim.now)
}

#[test]
fn a_follower_orders_nothing_and_takes_the_leaders_route() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"]))
        .started_on("a")
        .in_cluster();
    sim.router_ok.insert("a", false);
    sim.run(10);
    assert!(sim.orders().is_empty(), "a follower never orders");
    assert_eq!(sim.active(), Some("a"));
    // The leader's actuator moved the route here.
    sim.set_kernel(Some("b"));
    sim.observe_kernel();
    assert_eq!(sim.active(), Some("b"));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::RouteFollowed { .. }))),
        1
    );
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::RouteDrifted { .. }))),
        0,
        "the leader's move is not drift"
    );
    assert!(!firing(&sim, AlertName::RouteDrift));
}

#[test]
fn a_new_leader_orders_with_its_fence_only_after_its_own_probes() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"]))
        .started_on("a")
        .in_cluster();
    sim.router_ok.insert("a", false);
    sim.run(5);
    let at = now(&sim);
    sim.feed(at, Input::Coordination(Coordination::Leading { fence: 42 }));
    sim.drain();
    // What it saw as a follower is not evidence of its own.
    assert!(sim.orders().is_empty());
    sim.run(1);
    assert_eq!(sim.orders(), vec![("b".to_string(), Some(42))]);
    assert_eq!(sim.kernel(), Some("b"));
}

#[test]
fn losing_coordination_pages_once_and_moves_nothing_until_it_is_back() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"]))
        .started_on("a")
        .in_cluster();
    let at = now(&sim);
    sim.feed(at, Input::Coordination(Coordination::Leading { fence: 3 }));
    sim.run(2);
    let lost = Input::Coordination(Coordination::Lost {
        fault: CoordinationFault::DeadlinePassed,
    });
    sim.feed(now(&sim), lost.clone());
    sim.feed(now(&sim), lost);
    sim.drain();
    assert!(firing(&sim, AlertName::CoordinationLost));
    assert_eq!(
        sim.count(|e| matches!(e, Effect::Event(Event::CoordinationLost { .. }))),
        1
    );
    sim.router_ok.insert("a", false);
    sim.run(10);
    assert!(sim.orders().is_empty(), "fail-static: routes stay");
    assert_eq!(sim.kernel(), Some("a"));
    // Back as a follower: the page resolves, still no order.
    sim.feed(now(&sim), Input::Coordination(Coordination::Following));
    sim.run(2);
    assert!(!firing(&sim, AlertName::CoordinationLost));
    assert!(sim.orders().is_empty());
    // Elected again: it moves, under the new fence.
    sim.feed(
        now(&sim),
        Input::Coordination(Coordination::Leading { fence: 8 }),
    );
    sim.run(2);
    assert_eq!(sim.orders(), vec![("b".to_string(), Some(8))]);
}

#[test]
fn a_refused_order_raises_an_alert_for_its_group() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"]))
        .started_on("a")
        .in_cluster();
    sim.feed(
        now(&sim),
        Input::OrderRefused {
            group: GroupName::new("svc"),
            fence: Some(3),
            highest: 9,
        },
    );
    sim.drain();
    let a = sim
        .core()
        .alerts()
        .find(|a| a.name() == AlertName::OrderRefused)
        .expect("alerted");
    assert_eq!(a.labels().get("group").map(String::as_str), Some("svc"));
}

#[test]
fn a_standalone_core_is_unchanged_by_coordination_news() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"])).started_on("a");
    sim.feed(
        now(&sim),
        Input::Coordination(Coordination::Lost {
            fault: CoordinationFault::Unreachable,
        }),
    );
    sim.router_ok.insert("a", false);
    sim.run(3);
    assert_eq!(sim.orders(), vec![("b".to_string(), None)]);
    assert!(!firing(&sim, AlertName::CoordinationLost));
}

#[test]
fn a_leader_whose_order_failed_follows_once_it_steps_down() {
    let mut sim = Sim::new(group_config(&["a", "b"], &["web"]))
        .started_on("a")
        .in_cluster();
    sim.feed(
        now(&sim),
        Input::Coordination(Coordination::Leading { fence: 4 }),
    );
    sim.set_actuator(false);
    sim.router_ok.insert("a", false);
    sim.run(5);
    assert!(!sim.orders().is_empty(), "it ordered");
    assert!(
        sim.core().groups()[&GroupName::new("svc")]
            .pending
            .is_some()
    );
    sim.feed(
        now(&sim),
        Input::Coordination(Coordination::Lost {
            fault: CoordinationFault::DeadlinePassed,
        }),
    );
    sim.run(1);
    assert!(
        sim.core().groups()[&GroupName::new("svc")]
            .pending
            .is_none(),
        "a follower keeps no retry"
    );
    // The next leader moved the route: this replica follows it.
    sim.set_kernel(Some("b"));
    sim.observe_kernel();
    assert_eq!(sim.active(), Some("b"));
}
