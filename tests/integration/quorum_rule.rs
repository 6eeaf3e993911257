//! The shipped PromQL quorum rule (deploy/prometheus/rules/quorum.yml)
//! agrees with gwanje's core on the same series: generated results of three
//! vantages (failures of single vantages, of the service for everyone, and
//! vantages going silent) are fed to the core in process and written as
//! promtool input series; every minute where no vantage's two-sample window
//! straddles a silence, the rule's verdict must be the core's. promtool
//! (Debian package prometheus) runs the comparison.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::common;
use gwanje::core::{
    Core, CoreConfig, FailureKind, HealthPolicy, Input, Observation, QuorumConfig, QuorumTarget,
    Subject, SubjectConfig, TargetKey, Timestamp, VantageName, Verdict,
};

const MINUTE: u64 = 60_000;
const MINUTES: usize = 90;
const TARGETS: usize = 4;
const VANTAGES: [&str; 3] = ["a", "b", "c"];

/// A deterministic stream of coin flips (xorshift).
struct Coins(u64);

impl Coins {
    fn flip(&mut self, per_mille: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 1000 < per_mille
    }
}

/// What each vantage saw each minute: `None` when it was silent.
type World = Vec<[[Option<bool>; TARGETS]; 3]>;

fn world(seed: u64) -> World {
    let mut coins = Coins(seed);
    let mut service_down = [false; TARGETS];
    let mut own_down = [[false; TARGETS]; 3];
    let mut silent = [false; 3];
    (0..MINUTES)
        .map(|m| {
            if m >= 3 {
                // Failures start now and then and end sooner.
                let mut toggle = |state: &mut bool, on: u64, off: u64| {
                    if coins.flip(if *state { off } else { on }) {
                        *state = !*state;
                    }
                };
                for t in 0..TARGETS {
                    toggle(&mut service_down[t], 40, 200);
                    for own in own_down.iter_mut() {
                        toggle(&mut own[t], 50, 250);
                    }
                }
                // Peers go silent now and then; this instance never does.
                for s in silent.iter_mut().skip(1) {
                    toggle(s, 40, 200);
                }
            }
            let mut row = [[None; TARGETS]; 3];
            for v in 0..3 {
                if silent[v] {
                    continue;
                }
                for t in 0..TARGETS {
                    row[v][t] = Some(!(service_down[t] || own_down[v][t]));
                }
            }
            row
        })
        .collect()
}

fn key(t: usize) -> TargetKey {
    TargetKey::new("svc", &format!("t{t}"))
}

/// The core's verdict on each target after each minute's results.
fn core_verdicts(world: &World) -> Vec<[Verdict; TARGETS]> {
    let policy = HealthPolicy {
        fall: 2,
        window: 2,
        rise: 1,
    };
    let cfg = CoreConfig {
        subjects: (0..TARGETS)
            .map(|t| SubjectConfig {
                subject: Subject::Target(key(t)),
                policy,
            })
            .collect(),
        quorum: Some(QuorumConfig {
            local: VantageName::new("a"),
            peers: vec![VantageName::new("b"), VantageName::new("c")],
            min_vantages: 2,
            max_skew_ms: 5_000,
            isolation_share_permille: None,
            controls: Vec::new(),
            targets: (0..TARGETS)
                .map(|t| QuorumTarget {
                    target: key(t),
                    interval_ms: MINUTE,
                    k: None,
                    policy,
                    groups: Vec::new(),
                })
                .collect(),
        }),
        ..Default::default()
    };
    let mut core = Core::new();
    core.handle_input(Timestamp(0), Input::PlanApplied(cfg));
    let mut seq = 0;
    world
        .iter()
        .enumerate()
        .map(|(m, row)| {
            let at = Timestamp(m as u64 * MINUTE);
            for (v, name) in VANTAGES.iter().enumerate() {
                for (t, seen) in row[v].iter().enumerate() {
                    let Some(ok) = *seen else { continue };
                    let obs = Observation {
                        subject: Subject::Target(key(t)),
                        at,
                        failure: (!ok).then_some(FailureKind::Status),
                        cert_not_after: None,
                        packets: None,
                        duration_us: None,
                        rtt_us: None,
                        identity: None,
                    };
                    let input = if v == 0 {
                        Input::ProbeCompleted(obs)
                    } else {
                        seq += 1;
                        Input::VantageObserved {
                            vantage: VantageName::new(name),
                            seq,
                            control: false,
                            observation: obs,
                        }
                    };
                    core.handle_input(at, input);
                }
            }
            while let Some(t) = core.poll_timeout().filter(|t| *t <= at) {
                core.handle_timeout(t);
            }
            while core.poll_effect().is_some() {}
            let q = core.quorum().expect("quorum");
            std::array::from_fn(|t| q.verdict(&key(t)).expect("voted"))
        })
        .collect()
}

/// A promtool test of the shipped rules on `world`, expecting the core's
/// verdicts; returns it and how many (minute, target) it checks, and how
/// many of those are down.
fn promtool_test(
    rules: &Path,
    world: &World,
    verdicts: &[[Verdict; TARGETS]],
) -> (String, usize, usize) {
    let mut out = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
        rules.display()
    );
    for (v, name) in VANTAGES.iter().enumerate() {
        for t in 0..TARGETS {
            let values: Vec<&str> = world
                .iter()
                .map(|row| match row[v][t] {
                    Some(true) => "1",
                    Some(false) => "0",
                    None => "_",
                })
                .collect();
            let _ = writeln!(
                out,
                "      - series: 'probe_success{{job=\"gwanje\", vantage=\"{name}\", service=\"svc\", target=\"t{t}\", path=\"\"}}'\n        values: '{}'",
                values.join(" ")
            );
        }
    }
    out.push_str("    promql_expr_test:\n");
    let (mut checked, mut down) = (0, 0);
    for m in 4..MINUTES {
        // A vantage whose window straddles a silence is judged differently
        // by design (the core keeps its window across the gap); skip those.
        let straddles = (0..3).any(|v| world[m][v][0].is_some() != world[m - 1][v][0].is_some());
        if straddles {
            continue;
        }
        let _ = writeln!(
            out,
            "      - expr: target:probe_quorum:down\n        eval_time: {m}m\n        exp_samples:"
        );
        for (t, v) in verdicts[m].iter().enumerate() {
            let is_down = *v == Verdict::Down;
            let _ = writeln!(
                out,
                "          - labels: 'target:probe_quorum:down{{service=\"svc\", target=\"t{t}\"}}'\n            value: {}",
                u8::from(is_down)
            );
            checked += 1;
            down += usize::from(is_down);
        }
    }
    (out, checked, down)
}

#[test]
fn the_promql_quorum_rule_agrees_with_the_core_on_the_same_series() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules/quorum.yml");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut total = (0, 0);
    for seed in [3u64, 17, 2024] {
        let w = world(seed);
        let verdicts = core_verdicts(&w);
        let (test, checked, down) = promtool_test(&rules, &w, &verdicts);
        total = (total.0 + checked, total.1 + down);
        let file = dir.path().join(format!("quorum_{seed}_test.yml"));
        std::fs::write(&file, &test).expect("write test");
        let run = Command::new("promtool")
            .args(["test", "rules"])
            .arg(&file)
            .output();
        let Ok(out) = run else {
            assert!(!common::required("promtool (Debian package prometheus)"));
            return;
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "seed {seed}: the rule and the core disagree:\n{text}"
        );
    }
    // Not vacuous: many windows, with down verdicts among them and silences around.
    assert!(total.0 >= 600, "{total:?}");
    assert!(total.1 >= 30 && total.1 < total.0 / 2, "{total:?}");
}
