//! A long record made fast: a fleet's day written through the real journal
//! writer and the real core on virtual time, with no probing. The world is
//! a 1,000-target fleet behind two paths with a handful of injected
//! incidents at fixed shares of the span, so the same arguments write the
//! same record. Used by the postmortem benchmark (`benches/record.rs`) and
//! the tests of long reports.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};

use gwanje::core::{
    Effect, FailureKind, GroupName, IdentityFindings, Input, Mismatch, Observation, Order,
    PathName, Subject, Timestamp,
};
use gwanje::journal::{Driver, Journal};

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Targets in all (a twentieth of them, at least one, are mobile-ID
    /// endpoints probed every second; the rest at `interval_ms`).
    pub targets: usize,
    /// How long the record is, ms.
    pub span_ms: u64,
    /// The fleet's probe interval, ms.
    pub interval_ms: u64,
}

impl Shape {
    /// 24 hours of 1,000 targets every 10 s: the benchmark's default.
    pub const DAY: Shape = Shape {
        targets: 1_000,
        span_ms: 86_400_000,
        interval_ms: 10_000,
    };
}

/// The first record's time: 2025-11-24T16:00:00Z, a fixed date so two
/// writes of one shape are the same record.
pub const START: u64 = 1_764_000_000_000;

/// One injected incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// What it is, in a few words.
    pub what: &'static str,
    /// The service whose probes it fails (`None`: a path's router).
    pub service: Option<&'static str>,
    /// From, Unix ms (inclusive).
    pub from: u64,
    /// To, Unix ms (exclusive).
    pub to: u64,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    /// The journal folder.
    pub journal: PathBuf,
    /// Probe results recorded.
    pub probes: u64,
    /// Records of every kind.
    pub records: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// The incidents, in time order.
    pub incidents: Vec<Injected>,
}

/// The incidents of a record of `span_ms` from `START`, at fixed shares of
/// the span: a dead router, a lossy standby, a service outage, a 2-second
/// outage of one mobile-ID endpoint, and a portal handing out another
/// citizen's document.
pub fn incidents(span_ms: u64) -> Vec<Injected> {
    let at = |share: f64| START + (span_ms as f64 * share) as u64;
    let long = |ms: u64| ms.min(span_ms / 50).max(2_000);
    let make = |what, service, from: u64, ms: u64| Injected {
        what,
        service,
        from,
        to: from + ms,
    };
    vec![
        make("router a dead", None, at(2.0 / 24.0), long(300_000)),
        make(
            "router b loses 2 echoes in 5",
            None,
            at(6.5 / 24.0),
            long(600_000),
        ),
        make(
            "admin refuses on 40 targets",
            Some("admin"),
            at(9.25 / 24.0),
            long(180_000),
        ),
        make(
            "mobile-id/m3 down for 2 s",
            Some("mobile-id"),
            at(0.5) + 500,
            2_000,
        ),
        make(
            "portal/p7 hands out another canary's document",
            Some("portal"),
            at(15.0 / 24.0),
            long(60_000),
        ),
    ]
}

/// Something probed, and how often.
struct Probed {
    subject: Subject,
    every: u64,
}

/// Writes the configuration of `shape`'s fleet into `dir` (its targets
/// decided down after `fall` failures) and returns the path of its
/// `gwanje.yaml`.
pub fn config(dir: &Path, shape: Shape, fall: u8) -> PathBuf {
    let mobile = (shape.targets / 20).max(1);
    let rest = shape.targets - mobile;
    let (portal, admin) = (rest.div_ceil(2), rest / 2);
    let catalog = |service: &str, prefix: &str, n: usize, every: u64, tcp: bool| {
        let mut s = format!(
            "service: {service}\ninterval: {every}ms\ntimeout: 500ms\nhealth: {{fall: {fall}, rise: 1}}\ntargets:\n"
        );
        for i in 0..n {
            if tcp {
                s += &format!("  - {{name: {prefix}{i}, tcp: {{address: '127.0.0.1:9'}}}}\n");
            } else {
                s += &format!(
                    "  - {{name: {prefix}{i}, http: {{url: 'http://127.0.0.1:9/{i}'}}}}\n"
                );
            }
        }
        s
    };
    let router =
        "router_check: {interval: 1s, timeout: 500ms, packets: 5, health: {fall: 3, rise: 3}}";
    let probes = dir.join("probes");
    std::fs::create_dir_all(&probes).expect("the config folder");
    let file = dir.join("gwanje.yaml");
    std::fs::write(
        &file,
        format!(
            "probe_files: [\"probes/*.yaml\"]\n\
             journal: {{dir: journal, fsync: never}}\n\
             paths:\n  - {{name: a, gateway: 198.18.0.1, interface: lo, {router}}}\n  - {{name: b, gateway: 198.18.0.2, interface: lo, {router}}}\n\
             failover_groups:\n  - {{name: dc, routes: [198.18.100.0/24], paths: [a, b], checks: [portal/p0, portal/p1], action: route, hold_down: 2s, min_dwell: 2s, failback: {{mode: auto, after: 30s}}}}\n"
        ),
    )
    .expect("gwanje.yaml");
    for (name, text) in [
        (
            "portal",
            catalog("portal", "p", portal, shape.interval_ms, false),
        ),
        (
            "admin",
            catalog("admin", "d", admin, shape.interval_ms, true),
        ),
        ("mobile-id", catalog("mobile-id", "m", mobile, 1_000, false)),
    ] {
        std::fs::write(probes.join(format!("{name}.yaml")), text).expect("a catalog");
    }
    file
}

/// Writes `shape`'s record into `dir/journal` (its configuration into
/// `dir/config`) and returns what it wrote.
pub fn write(dir: &Path, shape: Shape) -> Written {
    let file = config(&dir.join("config"), shape, 2);
    let plan =
        gwanje::config::load(&file).unwrap_or_else(|e| panic!("the generated config loads:\n{e}"));
    let mut spec = plan.settings.journal.clone().expect("a journal");
    spec.dir = dir.join("journal");
    let core_config = plan.core_config();

    let mut probed: Vec<Probed> = core_config
        .subjects
        .iter()
        .map(|s| Probed {
            subject: s.subject.clone(),
            every: match &s.subject {
                Subject::Router(_) => 1_000,
                Subject::Target(k) | Subject::Check(k, _) if k.parts().0 == "mobile-id" => 1_000,
                _ => shape.interval_ms,
            },
        })
        .collect();
    probed.sort_by_key(|p| p.subject.to_string());
    // Each subject's first probe is spread over its interval, as the
    // scheduler spreads them.
    let mut due: BinaryHeap<Reverse<(u64, usize)>> = probed
        .iter()
        .enumerate()
        .map(|(i, p)| Reverse((START + 1 + (i as u64 * 7_919) % p.every, i)))
        .collect();

    let journal = Journal::open(&spec, &gwanje::core::Core::new())
        .expect("open the journal")
        .waiting();
    let mut d = Driver::new(gwanje::core::Core::new(), Some(journal));
    let group = GroupName::new("dc");
    let mut route = Some(PathName::new("a"));
    d.feed(Timestamp(START), Input::PlanApplied(core_config));
    d.feed(
        Timestamp(START),
        Input::RoutesObserved {
            group: group.clone(),
            path: route.clone(),
            read_at: Timestamp(START),
        },
    );
    let injected = incidents(shape.span_ms);
    let end = START + shape.span_ms;
    // Route changes confirm 50 ms after they are ordered.
    let mut answers: BTreeMap<u64, Vec<Input>> = BTreeMap::new();
    let mut next_read = START + 10_000;
    let (mut probes, mut records) = (0u64, 2u64);
    while let Some(Reverse((at, i))) = due.pop() {
        if at >= end {
            break;
        }
        due.push(Reverse((at + probed[i].every, i)));
        // What falls due before this probe happens first: timers, route
        // confirmations, the periodic route read.
        loop {
            let timer = d.core().poll_timeout().filter(|t| t.0 < at);
            let answer = answers.keys().next().copied().filter(|a| *a < at);
            let read = Some(next_read).filter(|r| *r < at);
            let first = [timer.map(|t| t.0), answer, read]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = first else { break };
            if timer.is_some_and(|x| x.0 == t) {
                d.tick(Timestamp(t));
            } else if answer == Some(t) {
                for input in answers.remove(&t).unwrap_or_default() {
                    if let Input::RouteChangeCompleted { to, .. } = &input {
                        route = Some(to.clone());
                    }
                    d.feed(Timestamp(t), input);
                    records += 1;
                }
            } else {
                next_read += 10_000;
                d.feed(
                    Timestamp(t),
                    Input::RoutesObserved {
                        group: group.clone(),
                        path: route.clone(),
                        read_at: Timestamp(t),
                    },
                );
            }
            records += 1;
            records += drain(&mut d, t, &mut answers);
        }
        let obs = observe(&probed[i].subject, at, &injected);
        d.feed(Timestamp(at), Input::ProbeCompleted(obs));
        probes += 1;
        records += 1 + drain(&mut d, at, &mut answers);
        d.snapshot_if_wanted();
    }
    let health = d.journal_health().expect("a journal");
    assert_eq!(health.dropped, 0, "a waiting journal drops nothing");
    drop(d);
    let bytes = size(&spec.dir);
    Written {
        journal: spec.dir,
        probes,
        records,
        bytes,
        incidents: injected,
    }
}

/// Takes the core's effects, answering route changes; returns how many.
fn drain(d: &mut Driver, at: u64, answers: &mut BTreeMap<u64, Vec<Input>>) -> u64 {
    let mut n = 0;
    while let Some(e) = d.poll_effect() {
        n += 1;
        if let Effect::Order(Order::ChangeRoute { group, to, .. }) = e {
            answers
                .entry(at + 50)
                .or_default()
                .push(Input::RouteChangeCompleted {
                    group,
                    to,
                    error: None,
                });
        }
    }
    n
}

/// What a probe of `subject` at `at` sees in the injected world.
fn observe(subject: &Subject, at: u64, injected: &[Injected]) -> Observation {
    let during = |k: usize| (injected[k].from..injected[k].to).contains(&at);
    let mut o = Observation {
        subject: subject.clone(),
        at: Timestamp(at),
        failure: None,
        cert_not_after: None,
        packets: None,
        duration_us: Some(1_000 + (at % 997) as u32),
        rtt_us: None,
        identity: None,
    };
    match subject {
        Subject::Router(p) => {
            let lost = match p.as_str() {
                "a" if during(0) => 5,
                "b" if during(1) => 2,
                _ => 0,
            };
            o.packets = Some((5, lost));
            o.rtt_us = Some(300);
            o.failure = (lost == 5).then_some(FailureKind::Loss);
        }
        Subject::Check(_, p) => {
            if p.as_str() == "a" && during(0) {
                o.failure = Some(FailureKind::Timeout);
            }
        }
        Subject::Target(k) => {
            let (service, name) = k.parts();
            let number = |prefix: &str| {
                name.strip_prefix(prefix)
                    .and_then(|n| n.parse::<usize>().ok())
            };
            let refused = (service == "admin" && during(2) && number("d").is_some_and(|n| n < 40))
                || (service == "mobile-id" && during(3) && name == "m3");
            if refused {
                o.failure = Some(FailureKind::Refused);
            } else if service == "portal" && during(4) && name == "p7" {
                o.failure = Some(FailureKind::IdentityMismatch);
                o.identity = Some(IdentityFindings {
                    requests: 20,
                    mismatches: 2,
                    unknown_owner: 0,
                    personal_data: 0,
                    first: vec![Mismatch {
                        step: "certificate".into(),
                        canary: "canary-1".into(),
                        owner: "canary-2".into(),
                    }],
                });
            }
        }
    }
    o
}

/// The journal's size on disk, bytes.
pub fn size(journal: &Path) -> u64 {
    std::fs::read_dir(journal)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
