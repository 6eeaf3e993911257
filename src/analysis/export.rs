//! The journal as OpenMetrics text for `promtool tsdb create-blocks-from
//! openmetrics`: the recorded probe results and durations, and the decided
//! target, path and group states, under the names gwanje exports live, so
//! the shipped dashboards show a past incident once it is backfilled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::core::{Effect, Event, Input, PathState, Subject, TargetState};
use crate::journal::{self, JournalError, Record};

/// How often a state that did not change is sampled again, ms: well inside
/// Prometheus's five-minute staleness, so a backfilled state never fades.
const RESAMPLE_MS: u64 = 15_000;

/// Samples sorted in memory at most, before they are spilled to a run on
/// disk: about 30 MB, whatever the record's length.
const RUN_SAMPLES: usize = 200_000;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The output or a spill file could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Samples in OpenMetrics order (family, series, time; of two at one
/// millisecond the later recorded wins), sorted in runs of bounded size
/// spilled to files in `spill` and merged at the end.
struct Sorter {
    spill: tempfile::TempDir,
    buf: Vec<String>,
    /// Samples per run ([`RUN_SAMPLES`]; fewer in tests).
    run_samples: usize,
    runs: Vec<std::path::PathBuf>,
    seq: u64,
}

impl Sorter {
    fn new() -> Result<Self, ExportError> {
        let spill = tempfile::Builder::new()
            .prefix("gwanje-export")
            .tempdir()
            .map_err(|source| ExportError::Io {
                what: "a folder for the export's sorted runs".into(),
                source,
            })?;
        Ok(Sorter {
            spill,
            buf: Vec::new(),
            run_samples: RUN_SAMPLES,
            runs: Vec::new(),
            seq: 0,
        })
    }

    /// One sample: a line whose order as text is the output's order.
    fn push(&mut self, name: &str, labels: &str, at: u64, v: f64) -> Result<(), ExportError> {
        self.seq += 1;
        self.buf
            .push(format!("{name}\t{labels}\t{at:020}\t{:020}\t{v}", self.seq));
        if self.buf.len() >= self.run_samples {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), ExportError> {
        use std::io::Write as _;
        self.buf.sort_unstable();
        let path = self.spill.path().join(format!("{}.run", self.runs.len()));
        let io = |source| ExportError::Io {
            what: format!("{}", path.display()),
            source,
        };
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
        for line in self.buf.drain(..) {
            writeln!(w, "{line}").map_err(io)?;
        }
        w.flush().map_err(io)?;
        self.runs.push(path);
        Ok(())
    }

    /// Merges the runs into `out` as OpenMetrics text, first into fewer
    /// runs when there are more than a merge may hold open.
    fn finish(mut self, out: &mut dyn std::io::Write) -> Result<(), ExportError> {
        use std::io::Write as _;
        self.spill()?;
        while self.runs.len() > FAN_IN {
            let merged: Vec<std::path::PathBuf> = self.runs.drain(..FAN_IN).collect();
            let path = self.spill.path().join(format!("m{}.run", self.seq));
            self.seq += 1;
            let io = |source| ExportError::Io {
                what: format!("{}", path.display()),
                source,
            };
            let mut w = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
            merge(&merged, &mut |line| writeln!(w, "{line}").map_err(io))?;
            w.flush().map_err(io)?;
            for m in merged {
                let _ = std::fs::remove_file(m);
            }
            self.runs.push(path);
        }
        let io = |source| ExportError::Io {
            what: "the export".into(),
            source,
        };
        let mut family = String::new();
        // The sample waiting to be written: a later one at the same
        // millisecond of the same series replaces it.
        let mut held: Option<(String, String, u64, String)> = None;
        let mut write = |(name, labels, at, v): (String, String, u64, String)| {
            if family != name {
                writeln!(out, "# TYPE {name} gauge").map_err(io)?;
                family = name.clone();
            }
            writeln!(out, "{name}{{{labels}}} {v} {}.{:03}", at / 1000, at % 1000).map_err(io)
        };
        merge(&self.runs, &mut |line| {
            let sample = parse(&line);
            match held.take() {
                Some(h) if h.0 == sample.0 && h.1 == sample.1 && h.2 == sample.2 => {}
                Some(h) => write(h)?,
                None => {}
            }
            held = Some(sample);
            Ok(())
        })?;
        if let Some(h) = held {
            write(h)?;
        }
        out.write_all(b"# EOF\n").map_err(io)
    }
}

/// Runs merged at once at most (each holds a file open).
const FAN_IN: usize = 64;

/// Calls `each` with every line of the sorted `runs`, in order.
fn merge(
    runs: &[std::path::PathBuf],
    each: &mut dyn FnMut(String) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    use std::io::BufRead as _;
    let mut readers = Vec::new();
    for path in runs {
        let f = std::fs::File::open(path).map_err(|source| ExportError::Io {
            what: format!("{}", path.display()),
            source,
        })?;
        readers.push(std::io::BufReader::new(f).lines());
    }
    let next = |r: &mut std::io::Lines<std::io::BufReader<std::fs::File>>| {
        r.next().transpose().map_err(|source| ExportError::Io {
            what: "a sorted run of the export".into(),
            source,
        })
    };
    let mut heap = std::collections::BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some(line) = next(r)? {
            heap.push(std::cmp::Reverse((line, i)));
        }
    }
    while let Some(std::cmp::Reverse((line, i))) = heap.pop() {
        each(line)?;
        if let Some(line) = next(&mut readers[i])? {
            heap.push(std::cmp::Reverse((line, i)));
        }
    }
    Ok(())
}

/// A spilled line back as (family, labels, time, value). The family is one
/// of ours and the last three fields are numbers, so a tab inside a label
/// value (a name read from a crafted journal) stays inside the labels.
fn parse(line: &str) -> (String, String, u64, String) {
    let mut tail = line.rsplitn(4, '\t');
    let v = tail.next().unwrap_or_default();
    let _seq = tail.next();
    let at = tail.next().and_then(|a| a.parse().ok()).unwrap_or_default();
    let (name, labels) = tail
        .next()
        .unwrap_or_default()
        .split_once('\t')
        .unwrap_or_default();
    (name.to_string(), labels.to_string(), at, v.to_string())
}

/// Writes the journal in `dir` between `from` and `to` (Unix ms) to `out`
/// as OpenMetrics text. Memory stays bounded: samples are sorted into the
/// order OpenMetrics wants in runs spilled to a temporary folder.
pub fn openmetrics(
    dir: &Path,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut dyn std::io::Write,
) -> Result<(), ExportError> {
    let segs = journal::segments(dir)?;
    if segs.is_empty() {
        return Err(JournalError::Empty {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let inside = |at: u64| from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t);
    let mut sorter = Sorter::new()?;
    // Decided states: the last change of each series, resampled every
    // RESAMPLE_MS until the next change (or the end).
    let mut states: BTreeMap<(&'static str, String), (u64, f64)> = BTreeMap::new();
    let mut last_at = 0;
    let resample =
        |sorter: &mut Sorter, name: &str, labels: &str, (since, v): (u64, f64), until: u64| {
            let mut t = since + RESAMPLE_MS;
            while t < until {
                if inside(t) {
                    sorter.push(name, labels, t, v)?;
                }
                t += RESAMPLE_MS;
            }
            Ok::<(), ExportError>(())
        };
    for seg in segs {
        for r in journal::records(&seg.path)?.ahead()? {
            match r {
                Record::Input {
                    at,
                    input: Input::ProbeCompleted(obs),
                } => {
                    last_at = last_at.max(at.0);
                    if !inside(at.0) {
                        continue;
                    }
                    let labels = match &obs.subject {
                        Subject::Router(p) => {
                            if let Some(rtt) = obs.rtt_us {
                                let labels = format!("path=\"{}\"", esc(p.as_str()));
                                sorter.push(
                                    "gwanje_router_rtt_seconds",
                                    &labels,
                                    at.0,
                                    f64::from(rtt) / 1e6,
                                )?;
                            }
                            continue;
                        }
                        s => target_labels(s),
                    };
                    let ok = if obs.failure.is_none() { 1.0 } else { 0.0 };
                    sorter.push("probe_success", &labels, at.0, ok)?;
                    if let Some(d) = obs.duration_us {
                        sorter.push("probe_duration_seconds", &labels, at.0, f64::from(d) / 1e6)?;
                    }
                }
                Record::Input { at, .. } | Record::Timeout { at } | Record::Snapshot { at, .. } => {
                    last_at = last_at.max(at.0);
                }
                Record::Effect { .. } | Record::EffectV1 { .. } => {
                    let Some(effect) = r.effect() else { continue };
                    // Each change is a sample of its own, and resampled until the next.
                    for (name, labels, at, v) in state_changes(effect, last_at) {
                        if let Some(before) = states.insert((name, labels.clone()), (at, v)) {
                            resample(&mut sorter, name, &labels, before, at)?;
                        }
                        if inside(at) {
                            sorter.push(name, &labels, at, v)?;
                        }
                    }
                }
            }
        }
    }
    for ((name, labels), last) in &states {
        resample(&mut sorter, name, labels, *last, last_at)?;
    }
    sorter.finish(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_runs_merge_in_passes_into_one_order_with_the_later_sample_winning() {
        let mut sorter = Sorter::new().unwrap();
        sorter.run_samples = 2;
        // 150 runs: more than one merge may hold open.
        for i in (0..300u64).rev() {
            let labels = format!("target=\"t{}\"", i % 3);
            sorter
                .push("probe_success", &labels, 1_000 * (i / 3), 1.0)
                .unwrap();
        }
        // A name read from a crafted journal, with a tab in it.
        sorter
            .push("probe_success", "target=\"a\tb\"", 5, 0.0)
            .unwrap();
        // Two samples at one millisecond: the later one recorded wins.
        sorter.push("gwanje_path_up", "path=\"a\"", 7, 0.0).unwrap();
        sorter.push("gwanje_path_up", "path=\"a\"", 7, 1.0).unwrap();
        assert!(sorter.runs.len() > FAN_IN);
        let mut out = Vec::new();
        sorter.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# TYPE gwanje_path_up gauge");
        assert_eq!(lines[1], "gwanje_path_up{path=\"a\"} 1 0.007");
        assert_eq!(lines[2], "# TYPE probe_success gauge");
        assert_eq!(lines[3], "probe_success{target=\"a\tb\"} 0 0.005");
        // Each series in time order, whole.
        let t0: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.contains("\"t0\""))
            .collect();
        assert_eq!(t0.len(), 100);
        assert!(t0.windows(2).all(|w| {
            let at = |l: &str| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
            at(w[0]) < at(w[1])
        }));
        let first_t1 = lines.iter().position(|l| l.contains("\"t1\"")).unwrap();
        let last_t0 = lines.iter().rposition(|l| l.contains("\"t0\"")).unwrap();
        assert!(last_t0 < first_t1, "series are not interleaved");
        assert_eq!(lines.last(), Some(&"# EOF"));
        assert_eq!(lines.len(), 2 + 2 + 300 + 1);
    }
}
