//! The journal as OpenMetrics text for `promtool tsdb create-blocks-from
//! openmetrics`: the recorded probe results and durations, and the decided
//! target, path and group states, under the names gwanje exports live, so
//! the shipped dashboards show a past incident once it is backfilled.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use crate::core::{Effect, Event, Input, PathState, Subject, TargetState};
use crate::journal::{self, JournalError, Record};

/// How often a state that did not change is sampled again, ms: well inside
/// Prometheus's five-minute staleness, so a backfilled state never fades.
const RESAMPLE_MS: u64 = 15_000;

/// One series: its labels and its samples (Unix ms, value), in time order.
type Series = BTreeMap<String, Vec<(u64, f64)>>;

/// Writes the journal in `dir` between `from` and `to` (Unix ms) as
/// OpenMetrics text.
pub fn openmetrics(dir: &Path, from: Option<u64>, to: Option<u64>) -> Result<String, JournalError> {
    let segs = journal::segments(dir)?;
    if segs.is_empty() {
        return Err(JournalError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    let inside = |at: u64| from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t);
    let mut families: BTreeMap<&'static str, Series> = BTreeMap::new();
    // Decided states, sampled at each change and every RESAMPLE_MS.
    let mut states: BTreeMap<(&'static str, String), Vec<(u64, f64)>> = BTreeMap::new();
    let mut last_at = 0;
    let push =
        |families: &mut BTreeMap<&'static str, Series>, name, labels: String, at: u64, v: f64| {
            if inside(at) {
                families
                    .entry(name)
                    .or_default()
                    .entry(labels)
                    .or_default()
                    .push((at, v));
            }
        };
    for seg in segs {
        for r in journal::records(&seg.path)? {
            match r {
                Record::Input {
                    at,
                    input: Input::ProbeCompleted(obs),
                } => {
                    last_at = last_at.max(at.0);
                    let labels = match &obs.subject {
                        Subject::Router(p) => {
                            if let Some(rtt) = obs.rtt_us {
                                push(
                                    &mut families,
                                    "gwanje_router_rtt_seconds",
                                    format!("path=\"{}\"", esc(p.as_str())),
                                    at.0,
                                    f64::from(rtt) / 1e6,
                                );
                            }
                            continue;
                        }
                        s => target_labels(s),
                    };
                    let ok = if obs.failure.is_none() { 1.0 } else { 0.0 };
                    push(&mut families, "probe_success", labels.clone(), at.0, ok);
                    if let Some(d) = obs.duration_us {
                        push(
                            &mut families,
                            "probe_duration_seconds",
                            labels,
                            at.0,
                            f64::from(d) / 1e6,
                        );
                    }
                }
                Record::Input { at, .. } | Record::Timeout { at } | Record::Snapshot { at, .. } => {
                    last_at = last_at.max(at.0);
                }
                Record::Effect { .. } | Record::EffectV1 { .. } => {
                    let Some(effect) = r.effect() else { continue };
                    // Each change is a sample of its own, and resampled below.
                    for (name, labels, at, v) in state_changes(effect, last_at) {
                        states
                            .entry((name, labels.clone()))
                            .or_default()
                            .push((at, v));
                        push(&mut families, name, labels, at, v);
                    }
                }
            }
        }
    }
    // Resample every state from each change to the next (or the end).
    for ((name, labels), changes) in &states {
        let series = families
            .entry(name)
            .or_default()
            .entry(labels.clone())
            .or_default();
        for (i, (since, v)) in changes.iter().enumerate() {
            let until = changes.get(i + 1).map_or(last_at, |(next, _)| *next);
            let mut t = since + RESAMPLE_MS;
            while t < until {
                if inside(t) {
                    series.push((t, *v));
                }
                t += RESAMPLE_MS;
            }
        }
    }
    let mut out = String::new();
    for (name, series) in &families {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, samples) in series {
            let mut samples = samples.clone();
            // Stable: of two samples at one millisecond the later one wins.
            samples.sort_by_key(|(at, _)| *at);
            samples.reverse();
            samples.dedup_by_key(|(at, _)| *at);
            samples.reverse();
            for (at, v) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {v} {}.{:03}", at / 1000, at % 1000);
            }
        }
    }
    out.push_str("# EOF\n");
    Ok(out)
}

fn target_labels(s: &Subject) -> String {
    let (key, path) = match s {
        Subject::Target(k) => (k, None),
        Subject::Check(k, p) => (k, Some(p.as_str())),
        Subject::Router(_) => unreachable!("routers have their own series"),
    };
    let (service, target) = key.as_str().split_once('/').unwrap_or((key.as_str(), ""));
    let mut l = format!("service=\"{}\",target=\"{}\"", esc(service), esc(target));
    // An empty label is no label: the live exposition's path="" reads back the same.
    if let Some(p) = path {
        let _ = write!(l, ",path=\"{}\"", esc(p));
    }
    l
}

/// The decided states an effect sets: (family, labels, at, value); `now`
/// stands in for effects that carry no time of their own.
fn state_changes(effect: &Effect, now: u64) -> Vec<(&'static str, String, u64, f64)> {
    let active = |group: &str, path: &str, at: u64, v: f64| {
        (
            "gwanje_group_active_path",
            format!("group=\"{}\",path=\"{}\"", esc(group), esc(path)),
            at,
            v,
        )
    };
    match effect {
        Effect::Event(Event::RouteAdopted {
            group,
            path: Some(p),
        }) => vec![active(group.as_str(), p.as_str(), now, 1.0)],
        Effect::Event(Event::HealthChanged {
            subject, to, at, ..
        }) if !matches!(subject, Subject::Router(_)) => match to {
            TargetState::Unknown => vec![],
            s => vec![(
                "gwanje_target_up",
                target_labels(subject),
                at.0,
                f64::from(u8::from(*s == TargetState::Up)),
            )],
        },
        Effect::Event(Event::HealthChanged {
            subject: Subject::Router(p),
            to,
            at,
            ..
        }) if *to != TargetState::Unknown => vec![(
            "gwanje_router_up",
            format!("path=\"{}\"", esc(p.as_str())),
            at.0,
            f64::from(u8::from(*to == TargetState::Up)),
        )],
        Effect::Event(Event::PathChanged { path, to, at, .. }) if *to != PathState::Unknown => {
            vec![(
                "gwanje_path_up",
                format!("path=\"{}\"", esc(path.as_str())),
                at.0,
                f64::from(u8::from(*to == PathState::Up)),
            )]
        }
        Effect::Event(Event::RouteChanged {
            group,
            from,
            to,
            at,
            ..
        }) => {
            let mut v = vec![active(group.as_str(), to.as_str(), at.0, 1.0)];
            if let Some(f) = from {
                v.push(active(group.as_str(), f.as_str(), at.0, 0.0));
            }
            v
        }
        _ => vec![],
    }
}

/// Escapes a label value for the exposition format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
