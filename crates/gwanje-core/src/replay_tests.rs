//! Replay is exact: the inputs a run recorded, fed to a fresh core (after a
//! round trip through the journal's encoding), give the same effects; and a
//! core restored from a snapshot carries on as if it had never stopped.

use super::sim::{Sim, group_config};
use super::*;

/// Feeds `log` to `core` and returns every effect, in order.
fn replay(core: &mut Core, log: &[(Timestamp, Option<Input>)]) -> Vec<Effect> {
    let mut out = Vec::new();
    for (at, input) in log {
        match input {
            Some(i) => {
                // What the journal stores is JSON: replay what it reads back.
                let text = serde_json::to_string(i).expect("encode");
                core.handle_input(*at, serde_json::from_str(&text).expect("decode"));
            }
            None => core.handle_timeout(*at),
        }
        out.extend(std::iter::from_fn(|| core.poll_effect()));
    }
    out
}

/// A world driven by `events`: (what breaks or mends, up or down,
/// whether the actuator works, whether someone acknowledges).
fn world(events: &[(usize, bool, bool, bool)]) -> Sim {
    let mut g = group_config(&["a", "b", "c"], &["web"]);
    g.flap_guard = FlapGuard {
        max_switches: 2,
        window_ms: 5_000,
    };
    let mut sim = Sim::new(g).started_on("a");
    let names = ["a", "b", "c"];
    for &(which, ok, actuator, ack) in events {
        if which < 3 {
            sim.router_ok.insert(names[which], ok);
        } else {
            sim.check_ok.insert(("web", names[which - 3]), ok);
        }
        sim.set_actuator(actuator);
        let firing = sim
            .core()
            .alerts()
            .find(|a| a.firing())
            .map(|a| a.id.clone());
        if ack && let Some(id) = firing {
            let at = Timestamp(sim.now);
            sim.feed(
                at,
                Input::AlertAcknowledged {
                    id,
                    by: "ops".into(),
                },
            );
            sim.drain();
        }
        sim.run(4);
    }
    sim.run(30);
    sim
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    #[test]
    fn recorded_inputs_replay_to_the_same_effects(
        events in proptest::collection::vec((0usize..6, proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY), 1..25)
    ) {
        let sim = world(&events);
        let again = replay(&mut Core::new(), &sim.log);
        proptest::prop_assert_eq!(&again, &sim.effects);
    }

    #[test]
    fn a_restored_snapshot_carries_on_exactly(
        events in proptest::collection::vec((0usize..6, proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY), 2..25),
        cut in 0usize..1000,
    ) {
        let sim = world(&events);
        let cut = cut % sim.log.len();
        let mut live = Core::new();
        replay(&mut live, &sim.log[..cut]);
        let snapshot = serde_json::to_string(&live).expect("snapshot");
        let mut restored: Core = serde_json::from_str(&snapshot).expect("restore");
        let a = replay(&mut live, &sim.log[cut..]);
        let b = replay(&mut restored, &sim.log[cut..]);
        proptest::prop_assert_eq!(a, b);
    }
}

#[test]
fn a_restart_keeps_what_operators_did_and_forgets_what_must_be_measured() {
    let mut g = group_config(&["a", "b"], &["web"]);
    g.flap_guard = FlapGuard {
        max_switches: 2,
        window_ms: 600_000,
    };
    let mut sim = Sim::new(g).started_on("a");
    for _ in 0..3 {
        sim.router_ok.insert("a", false);
        sim.run(15);
        sim.router_ok.insert("a", true);
        sim.run(30);
    }
    let name = GroupName::new("svc");
    let before = sim.core().groups()[&name].clone();
    assert!(
        before.frozen_until.is_some(),
        "the flap guard froze the group"
    );
    let at = Timestamp(sim.now);
    sim.feed(
        at,
        Input::Pin {
            group: name.clone(),
            path: PathName::new("b"),
            until: Timestamp(sim.now + 3_600_000),
            by: "lee".into(),
        },
    );
    sim.drain();
    let text = serde_json::to_string(&sim.core()).unwrap();
    let restored: Core = serde_json::from_str::<Core>(&text).unwrap().restarted();
    let g = &restored.groups()[&name];
    assert_eq!(g.frozen_until, before.frozen_until);
    assert_eq!(g.switches, before.switches, "flap history kept");
    assert_eq!(g.pin.as_ref().map(|p| p.by.as_str()), Some("lee"));
    assert!(!g.adopted && g.active.is_none(), "the kernel is read again");
    assert_eq!(
        restored.paths()[&PathName::new("a")].last_down,
        sim.core().paths()[&PathName::new("a")].last_down,
        "hold-down history kept"
    );
    assert!(
        restored
            .paths()
            .values()
            .all(|p| p.state == PathState::Unknown)
    );
    let alerts: Vec<_> = sim.core().alerts().map(|a| (&a.id, a.starts_at)).collect();
    let kept: Vec<_> = restored.alerts().map(|a| (&a.id, a.starts_at)).collect();
    assert_eq!(alerts, kept, "alerts keep their start times");
}
