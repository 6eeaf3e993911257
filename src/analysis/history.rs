//! What the world did, taken out of a journal: the probe outcomes and the
//! operators' commands, without what depended on gwanje's own actions
//! (route reads after its first, actuator results), which a what-if must
//! derive again from its own decisions.

use std::collections::BTreeMap;
use std::path::Path;

use crate::core::{CoreConfig, GroupName, Input, Order, PathName, Timestamp};
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

/// The recorded world, ready to be replayed through any configuration.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The configuration gwanje ran with (its first plan).
    pub config: Option<CoreConfig>,
    /// The kernel's route per group when gwanje first read it, and when.
    pub kernel: BTreeMap<GroupName, (Timestamp, Option<PathName>)>,
    /// Inputs from the world, in time order.
    pub world: Vec<(Timestamp, Input)>,
    /// How long route changes took, median of the recorded ones, ms.
    pub actuator_ms: u64,
    /// First and last record, Unix ms.
    pub span: (u64, u64),
    /// Where the record has holes.
    pub gaps: Vec<Gap>,
    /// The journal's complaints (damaged tails), each naming its file.
    pub warnings: Vec<String>,
}

/// A restart leaves at least this long without records before it counts as
/// a gap (probes report every few seconds at most).
const GAP_MS: u64 = 30_000;

impl History {
    /// Keeps only what happened between `from` and `to` (Unix ms).
    pub fn between(mut self, from: Option<u64>, to: Option<u64>) -> Self {
        let inside = |at: u64| from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t);
        self.world.retain(|(at, _)| inside(at.0));
        self.span = (
            from.map_or(self.span.0, |f| f.max(self.span.0)),
            to.map_or(self.span.1, |t| t.min(self.span.1)),
        );
        self
    }
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
    for seg in segs {
        let mut records = journal::records(&seg.path)?;
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
                        h.world.push((at, input));
                    }
                    Input::JournalRecovered => {
                        if let Some(from) = dropping.take() {
                            h.gaps.push(Gap {
                                from,
                                to: at.0,
                                why: "the journal dropped records",
                            });
                        }
                        h.world.push((at, input));
                    }
                    other => h.world.push((at, other)),
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
    h.world.sort_by_key(|(at, _)| *at);
    Ok(h)
}
