//! Words are never recorded: the same run recorded with the renderer's
//! words changed (the test-only `reword_for_tests` hook) writes the same
//! records, byte for byte, and that journal replays identically while its
//! timeline reads in the new words. And one event reads the same wherever
//! it is shown: the log line, the timeline, the incident report and the
//! alert it raises all take their sentence from one function.
//!
//! Its own test binary: the hook is process-wide, and no other test may
//! see its words.

use std::path::{Path, PathBuf};

use gwanje::core::{
    AlertName, Core, Effect, Event, FailureKind, GroupName, Input, Observation, Order, PathName,
    Subject, Timestamp, render,
};
use gwanje::journal::{Driver, Journal};

const T0: u64 = 1_764_000_000_000;

/// Held by each test: the rewording hook is process-wide.
static WORDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A config with two loopback paths steering one group, a check through
/// them and a directly probed target, journaling into `journal/`.
fn config(dir: &Path) -> gwanje::plan::Plan {
    std::fs::create_dir(dir.join("probes")).unwrap();
    std::fs::write(
        dir.join("gwanje.yaml"),
        "probe_files: [\"probes/*.yaml\"]\njournal: {dir: journal, fsync: always}\n\
         paths:\n  - {name: a, gateway: 127.0.0.1, interface: lo}\n  - {name: b, gateway: 127.0.0.2, interface: lo}\n\
         failover_groups:\n  - {name: local, routes: [198.18.200.0/24], paths: [a, b], checks: [portal/home], action: route, hold_down: 1ms, min_dwell: 1ms}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("probes/portal.yaml"),
        "service: portal\ninterval: 100ms\ntimeout: 50ms\nhealth: {fall: 2, rise: 2}\ntargets:\n  - {name: home, http: {url: 'http://127.0.0.1:9/'}}\n  - {name: api, http: {url: 'http://127.0.0.1:9/api'}}\n",
    )
    .unwrap();
    gwanje::config::load(&dir.join("gwanje.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Plays one incident through the journal's seam: path `a` dies (router
/// and check), traffic moves to `b`, the directly probed target fails, an
/// operator acknowledges, everything recovers. Returns the journal folder
/// and the effects with their times.
fn record(dir: &Path) -> (PathBuf, Vec<(Timestamp, Effect)>) {
    let plan = config(dir);
    let spec = plan.settings.journal.clone().expect("journal configured");
    let journal = Journal::open(&spec, &Core::new()).unwrap();
    let mut d = Driver::new(Core::new(), Some(journal));
    let mut seen = Vec::new();
    fn drain(d: &mut Driver, at: Timestamp, seen: &mut Vec<(Timestamp, Effect)>) {
        while let Some(e) = d.poll_effect() {
            if let Effect::Order(Order::ChangeRoute { group, to, .. }) = &e {
                // The actuator, answering at once.
                let done = Input::RouteChangeCompleted {
                    group: group.clone(),
                    to: to.clone(),
                    error: None,
                };
                seen.push((at, e));
                d.feed(at, done);
                continue;
            }
            seen.push((at, e));
        }
    }
    let t = |ms: u64| Timestamp(T0 + ms);
    d.feed(t(0), Input::PlanApplied(plan.core_config()));
    d.feed(
        t(1),
        Input::RoutesObserved {
            group: GroupName::new("local"),
            path: Some(PathName::new("a")),
            read_at: t(1),
        },
    );
    drain(&mut d, t(1), &mut seen);
    let subjects: Vec<Subject> = plan
        .core_config()
        .subjects
        .into_iter()
        .map(|s| s.subject)
        .collect();
    for round in 1..=60u64 {
        let at = t(round * 100);
        let a_dead = (10..30).contains(&round);
        let api_dead = (15..40).contains(&round);
        for s in &subjects {
            let failing = match s {
                Subject::Router(p) | Subject::Check(_, p) => a_dead && p.as_str() == "a",
                Subject::Target(k) => api_dead && k.as_str() == "portal/api",
            };
            d.feed(
                at,
                Input::ProbeCompleted(Observation {
                    subject: s.clone(),
                    at,
                    failure: failing.then_some(FailureKind::Timeout),
                    cert_not_after: None,
                    packets: None,
                    duration_us: None,
                    rtt_us: None,
                    identity: None,
                }),
            );
            drain(&mut d, at, &mut seen);
        }
        if d.core().poll_timeout().is_some_and(|due| due <= at) {
            d.tick(at);
            drain(&mut d, at, &mut seen);
        }
        if round == 20 {
            let id = d
                .core()
                .alerts()
                .find(|a| a.name() == AlertName::TargetDown)
                .map(|a| a.id.clone())
                .expect("the target's alert fired");
            d.feed(
                at,
                Input::AlertAcknowledged {
                    id,
                    by: "kim".into(),
                },
            );
            drain(&mut d, at, &mut seen);
        }
    }
    drop(d);
    (dir.join("journal"), seen)
}

/// The bytes of every record the journal holds, as recorded (each record's
/// framing and JSON; the compression around them depends on how the writer
/// happened to batch, so it is not compared).
fn bytes(journal: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for s in gwanje::journal::segments(journal).unwrap() {
        let (records, warning) = gwanje::journal::read_segment(&s.path).unwrap();
        assert_eq!(warning, None);
        for r in &records {
            assert!(gwanje::journal::encode(r, &mut out));
        }
    }
    out
}

#[test]
fn changing_the_words_changes_no_recorded_byte_and_replays_identically() {
    let _words = WORDS.lock().unwrap_or_else(|e| e.into_inner());
    let plain = tempfile::tempdir().unwrap();
    let (plain_journal, effects) = record(plain.path());
    let lines: Vec<String> = effects
        .iter()
        .filter_map(|(_, e)| render::effect(e))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("traffic now flows via b")),
        "the incident happened: {lines:#?}"
    );
    render::reword_for_tests(true);
    let reworded = tempfile::tempdir().unwrap();
    let (reworded_journal, _) = record(reworded.path());
    let outcome = gwanje::replay::replay(&reworded_journal, None, None).unwrap();
    render::reword_for_tests(false);
    let (a, b) = (bytes(&plain_journal), bytes(&reworded_journal));
    assert!(a.len() > 1000, "a journal was written");
    assert!(a == b, "the journals differ: words were recorded");
    assert!(
        !String::from_utf8_lossy(&a).contains("[reworded]"),
        "no rendered text in the journal"
    );
    assert!(outcome.divergence.is_none(), "{:?}", outcome.divergence);
    assert!(outcome.identical > 10, "{} effects", outcome.identical);
    assert!(
        outcome
            .entries
            .iter()
            .filter(|e| e.effect.is_some())
            .all(|e| e.text.starts_with("[reworded] ")),
        "the timeline reads in the new words"
    );
}

#[test]
fn one_event_reads_the_same_in_the_log_the_timeline_the_report_and_its_alert() {
    let _words = WORDS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (journal, effects) = record(dir.path());
    let events: Vec<&Event> = effects
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::Event(e) => Some(e),
            Effect::Order(_) => None,
        })
        .collect();
    let moved = events
        .iter()
        .find(|e| matches!(e, Event::RouteChanged { .. }))
        .expect("a failover");
    let line = render::event(moved);
    // The log line: the engine logs the renderer's line for each event.
    let log = gwanje::engine::log_line(moved);
    assert_eq!(log, line);
    // The timeline and the report.
    let outcome = gwanje::replay::replay(&journal, None, None).unwrap();
    assert!(
        outcome.entries.iter().any(|e| e.text == line),
        "the timeline shows {line:?}"
    );
    let report = gwanje::analysis::report::build(&journal, &Default::default()).unwrap();
    let md = report.markdown();
    assert!(md.contains(&line), "the report shows {line:?}:\n{md}");
    // The alert it raised opens its description with the same sentence.
    let alert = effects
        .iter()
        .find_map(|(_, e)| match e {
            Effect::Order(Order::DeliverAlerts { alerts, .. }) => alerts
                .iter()
                .find(|a| a.name() == AlertName::FailoverExecuted)
                .cloned(),
            _ => None,
        })
        .expect("the failover alert was sent");
    let description = render::description(&alert.kind);
    assert!(
        description.starts_with(&line),
        "{description:?} opens with {line:?}"
    );
    let payload = gwanje::alert::to_alertmanager(&alert, Timestamp(T0), "http://127.0.0.1", "");
    assert_eq!(payload.annotations["description"], description);
}
