//! What the world did, taken out of a journal: the probe outcomes and the
//! operators' commands, without what depended on gwanje's own actions
//! (route reads after its first, actuator results), which a what-if must
//! derive again from its own decisions. A journal's world is read again
//! from disk each time it is wanted, record by record, so memory does not
//! grow with the record's length.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::core::{CoreConfig, GroupName, Input, Order, PathName, Subject, Timestamp};
use crate::journal::{self, JournalError, Record, SnapshotReason};

/// A stretch of time without a record of what gwanje saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    /// The last record before it, Unix ms.
    pub from: u64,
    /// The first record after it, Unix ms.
    pub to: u64,
    /// Why: gwanje was not running, or the journal dropped records.
    pub why: &'static str,
}

/// Where the world's inputs come from.
#[derive(Debug, Clone)]
enum Source {
    /// Read again from these segments each time, up to `end` (Unix ms):
    /// the journal as it was when the history was read, though the daemon
    /// goes on writing and pruning it.
    Journal {
        /// The segments, oldest first.
        files: Vec<PathBuf>,
        /// The last record's time then.
        end: u64,
    },
    /// Held here, in time order (rebuilt from Prometheus, which a range
    /// query bounds).
    Held(Vec<(Timestamp, Input)>),
}

impl Default for Source {
    fn default() -> Self {
        Source::Held(Vec::new())
    }
}

/// The recorded world, ready to be replayed through any configuration.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The configuration gwanje ran with (its first plan).
    pub config: Option<CoreConfig>,
    /// The kernel's route per group when gwanje first read it, and when.
    pub kernel: BTreeMap<GroupName, (Timestamp, Option<PathName>)>,
    /// The world's inputs ([`History::world`]).
    source: Source,
    /// Only inputs in this range count (Unix ms, inclusive).
    range: (Option<u64>, Option<u64>),
    /// How long route changes took, median of the recorded ones, ms.
    pub actuator_ms: u64,
    /// First and last record, Unix ms.
    pub span: (u64, u64),
    /// Where the record has holes.
    pub gaps: Vec<Gap>,
    /// The median time between two probes through each path, ms (how
    /// wide a window hindsight judges a moment of it by).
    pub cadence: BTreeMap<String, u64>,
    /// The journal's complaints (damaged tails), each naming its file.
    pub warnings: Vec<String>,
}

/// A restart leaves at least this long without records before it counts as
/// a gap (probes report every few seconds at most).
const GAP_MS: u64 = 30_000;

impl History {
    /// The same history with its world held in memory, `world` in time order.
    pub fn holding(mut self, world: Vec<(Timestamp, Input)>) -> Self {
        let mut cadence = Cadence::default();
        for (at, input) in &world {
            cadence.see(*at, input);
        }
        self.cadence = cadence.medians();
        self.source = Source::Held(world);
        self
    }

    /// Keeps only what happened between `from` and `to` (Unix ms).
    pub fn between(mut self, from: Option<u64>, to: Option<u64>) -> Self {
        self.range = (from, to);
        self.span = (
            from.map_or(self.span.0, |f| f.max(self.span.0)),
            to.map_or(self.span.1, |t| t.min(self.span.1)),
        );
        self
    }
}

impl History {
    /// The world's inputs in the range, in time order: probe results,
    /// operator commands, journal troubles. A journal is read again, record
    /// by record; a segment that can no longer be read (pruned since) is
    /// passed over (reading the history named every damaged one).
    pub fn world(&self) -> Box<dyn Iterator<Item = (Timestamp, Input)> + Send + '_> {
        let (from, to) = self.range;
        let inside =
            move |at: &Timestamp| from.is_none_or(|f| at.0 >= f) && to.is_none_or(|t| at.0 <= t);
        match &self.source {
            Source::Held(world) => {
                Box::new(world.iter().filter(move |(at, _)| inside(at)).cloned())
            }
            Source::Journal { files, end } => {
                let end = *end;
                let records = journal::ahead_all(files.clone()).into_iter().flatten();
                Box::new(InTimeOrder::new(records.filter_map(move |r| match r {
                    Record::Input { at, input }
                        if inside(&at) && at.0 <= end && of_the_world(&input) =>
                    {
                        Some((at, input))
                    }
                    _ => None,
                })))
            }
        }
    }
}

/// How far out of time order the journal's inputs may be: a probe result
/// carries the time it finished, and may wait in the engine's queue behind
/// inputs fed after that.
const REORDER_MS: u64 = 10_000;

/// Inputs put back in time order (of one time, in recorded order) over a
/// window of [`REORDER_MS`], as the whole world once was sorted.
struct InTimeOrder<I> {
    inner: I,
    queued: std::collections::BinaryHeap<std::cmp::Reverse<Queued>>,
    newest: u64,
    seq: u64,
}

struct Queued(Timestamp, u64, Input);

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

impl<I> InTimeOrder<I> {
    fn new(inner: I) -> Self {
        InTimeOrder {
            inner,
            queued: Default::default(),
            newest: 0,
            seq: 0,
        }
    }
}

impl<I: Iterator<Item = (Timestamp, Input)>> Iterator for InTimeOrder<I> {
    type Item = (Timestamp, Input);

    fn next(&mut self) -> Option<(Timestamp, Input)> {
        loop {
            let ripe = self
                .queued
                .peek()
                .is_some_and(|q| q.0.0.0 + REORDER_MS < self.newest);
            if ripe {
                return self.queued.pop().map(|q| (q.0.0, q.0.2));
            }
            match self.inner.next() {
                Some((at, input)) => {
                    self.newest = self.newest.max(at.0);
                    self.seq += 1;
                    self.queued
                        .push(std::cmp::Reverse(Queued(at, self.seq, input)));
                }
                None => return self.queued.pop().map(|q| (q.0.0, q.0.2)),
            }
        }
    }
}

/// The times between probes through each path, counted by length: a
/// handful of distinct lengths, however long the record.
#[derive(Default)]
struct Cadence {
    last: BTreeMap<String, u64>,
    gaps: BTreeMap<String, BTreeMap<u64, u64>>,
}

impl Cadence {
    fn see(&mut self, at: Timestamp, input: &Input) {
        let Input::ProbeCompleted(obs) = input else {
            return;
        };
        let (Subject::Check(_, path) | Subject::Router(path)) = &obs.subject else {
            return;
        };
        if let Some(prev) = self.last.insert(path.to_string(), at.0) {
            *self
                .gaps
                .entry(path.to_string())
                .or_default()
                .entry(at.0.saturating_sub(prev))
                .or_default() += 1;
        }
    }

    fn medians(self) -> BTreeMap<String, u64> {
        self.gaps
            .into_iter()
            .map(|(path, gaps)| {
                let half = gaps.values().sum::<u64>() / 2;
                let mut seen = 0;
                let median = gaps
                    .iter()
                    .find(|(_, n)| {
                        seen += **n;
                        seen > half
                    })
                    .map_or(0, |(g, _)| *g);
                (path, median)
            })
            .collect()
    }
}

/// Whether an input came from the world rather than from gwanje's own
/// configuration and actions (which a replay derives again).
fn of_the_world(input: &Input) -> bool {
    !matches!(
        input,
        Input::PlanApplied(_) | Input::RoutesObserved { .. } | Input::RouteChangeCompleted { .. }
    )
}

/// Reads the world out of the journal in `dir`.
pub fn from_journal(dir: &Path) -> Result<History, JournalError> {
    let segs = journal::segments(dir)?;
    if segs.is_empty() {
        return Err(JournalError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    let mut h = History::default();
    let mut requested: BTreeMap<GroupName, Timestamp> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut last: Option<u64> = None;
    let mut dropping: Option<u64> = None;
    let mut cadence = Cadence::default();
    for seg in &segs {
        let mut records = journal::records(&seg.path)?.ahead()?;
        for r in records.by_ref() {
            let at = match &r {
                Record::Snapshot { at, .. } | Record::Input { at, .. } | Record::Timeout { at } => {
                    Some(at.0)
                }
                Record::Effect { .. } | Record::EffectV1 { .. } => None,
            };
            if let Some(at) = at {
                if let (Some(prev), Record::Snapshot { reason, .. }) = (last, &r)
                    && *reason == SnapshotReason::Start
                    && at.saturating_sub(prev) >= GAP_MS
                {
                    h.gaps.push(Gap {
                        from: prev,
                        to: at,
                        why: "gwanje was not running",
                    });
                }
                if h.span.0 == 0 {
                    h.span.0 = at;
                }
                h.span.1 = h.span.1.max(at);
                last = Some(at);
            }
            match r {
                Record::Input { at, input } => match input {
                    Input::ProbeCompleted(_) => cadence.see(at, &input),
                    Input::PlanApplied(cfg) => {
                        h.config.get_or_insert(cfg);
                    }
                    Input::RoutesObserved { group, path, .. } => {
                        h.kernel.entry(group).or_insert((at, path));
                    }
                    Input::RouteChangeCompleted { group, .. } => {
                        if let Some(t) = requested.remove(&group) {
                            latencies.push(at.since(t));
                        }
                    }
                    Input::JournalFailing { .. } => {
                        dropping.get_or_insert(at.0);
                    }
                    Input::JournalRecovered => {
                        if let Some(from) = dropping.take() {
                            h.gaps.push(Gap {
                                from,
                                to: at.0,
                                why: "the journal dropped records",
                            });
                        }
                    }
                    _ => {}
                },
                r => {
                    if let Some(crate::core::Effect::Order(Order::ChangeRoute { group, .. })) =
                        r.effect()
                        && let Some(at) = last
                    {
                        requested.insert(group.clone(), Timestamp(at));
                    }
                }
            }
        }
        h.warnings.extend(records.warning());
    }
    if h.config.is_none() {
        h.warnings.push("the journal holds no plan (its first segments were pruned?): give --config for the baseline".into());
    }
    if h.kernel.is_empty() {
        h.warnings.push("the journal holds no route read: the replayed groups start without a route and switch nothing until they install one".into());
    }
    latencies.sort_unstable();
    h.actuator_ms = latencies.get(latencies.len() / 2).copied().unwrap_or(50);
    h.cadence = cadence.medians();
    h.source = Source::Journal {
        files: segs.iter().map(|s| s.path.clone()).collect(),
        end: h.span.1,
    };
    Ok(h)
}
