//! `gwanje replay`: the journal's recorded inputs fed through the core with
//! their recorded times (on the core's virtual-time driver), as a timeline
//! in the renderer's words, and (`--verify`) every effect compared with the
//! one gwanje recorded live.

use std::collections::VecDeque;
use std::path::Path;

use crate::core::{Core, Effect, TimerSource, Timestamp, VirtualTime, render};
use crate::journal::{self, JournalError, Record, SnapshotReason};

/// One timeline entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// When, Unix ms.
    pub at: u64,
    /// The same as RFC 3339 (UTC, milliseconds).
    pub time: String,
    /// What happened, in words.
    pub text: String,
    /// The effect itself, when it was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<Effect>,
}

/// Where the replayed effects first differ from the recorded ones.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// When (the time of the input that produced it).
    pub at: Timestamp,
    /// What gwanje recorded.
    pub expected: String,
    /// What the replay produced.
    pub got: String,
}

/// What a replay found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The timeline.
    pub entries: Vec<Entry>,
    /// Effects that matched the recorded ones.
    pub identical: usize,
    /// The first mismatch.
    pub divergence: Option<Divergence>,
    /// Effects produced at the very end that were never recorded (the
    /// journal ends inside a step: gwanje stopped there).
    pub truncated: usize,
    /// Records lost before a `resync` snapshot, where verifying restarts.
    pub gaps: usize,
    /// Damaged tails and other problems met, each naming its file and offset.
    pub warnings: Vec<String>,
}

pub use crate::clock::rfc3339;

/// An effect as the journal recorded it.
enum Recorded {
    /// By this format version: compared byte for byte (as data).
    Now(Effect),
    /// By format version 1: compared by what it decided, not its words.
    V1(Box<journal::RecordedV1>),
}

impl Recorded {
    fn matches(&self, got: &Effect) -> bool {
        match self {
            Recorded::Now(e) => e == got,
            Recorded::V1(r) => r.decided(got),
        }
    }

    fn shown(&self) -> String {
        match self {
            Recorded::Now(e) => format!("{e:?}"),
            Recorded::V1(r) => r.shown(),
        }
    }
}

/// Replays the journal in `dir`; entries outside `from..=to` (Unix ms) are
/// left out of the timeline, but every record is replayed.
pub fn replay(dir: &Path, from: Option<u64>, to: Option<u64>) -> Result<Outcome, JournalError> {
    replay_with(dir, from, to, &mut |_, _| {})
}

/// [`replay`], handing `read` every recorded input on the way, so a
/// report reads the record once.
pub fn replay_with(
    dir: &Path,
    from: Option<u64>,
    to: Option<u64>,
    read: &mut dyn FnMut(Timestamp, &crate::core::Input),
) -> Result<Outcome, JournalError> {
    let segs = journal::segments(dir)?;
    if segs.is_empty() {
        return Err(JournalError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    let mut out = Outcome::default();
    // The core's one virtual-time driver, on the recorded times and answers.
    let recorded_time = |core| VirtualTime::new(core, TimerSource::Recorded, None);
    let mut core: Option<VirtualTime> = None;
    let mut produced: VecDeque<(Timestamp, Effect)> = VecDeque::new();
    let mut recorded: VecDeque<Recorded> = VecDeque::new();
    let shown = move |at: Timestamp| from.is_none_or(|f| at.0 >= f) && to.is_none_or(|t| at.0 <= t);
    // Every effect the replay produces goes into the timeline, matched or not.
    let note = |out: &mut Outcome, at: Timestamp, e: &Effect| {
        if shown(at)
            && let Some(text) = render::effect(e)
        {
            out.entries.push(entry(at, text, Some(e.clone())));
        }
    };
    // After a damaged tail the next snapshot is the truth, as after a resync.
    let mut damaged = false;
    for seg in segs {
        // Record by record: memory stays bounded by one block, whatever
        // the segment's length.
        let mut records = journal::records(&seg.path)?.ahead()?;
        let version = records.version;
        for record in records.by_ref() {
            match record {
                Record::Snapshot {
                    at,
                    reason,
                    core: c,
                } => {
                    let verify_state =
                        reason == SnapshotReason::Rotate && core.is_some() && !damaged;
                    // A version-1 state held the words of its time, which
                    // no later release reproduces: its effects are compared.
                    if verify_state
                        && version != 1
                        && out.divergence.is_none()
                        && produced.is_empty()
                        && core.as_ref().map(VirtualTime::core) != Some(&*c)
                    {
                        out.divergence = Some(Divergence {
                            at,
                            expected: "the core state recorded at segment rotation".into(),
                            got: "a different replayed state".into(),
                        });
                    }
                    if !verify_state {
                        // A start (restart) or a resync: the recorded state is the truth from here.
                        if reason == SnapshotReason::Resync || damaged {
                            out.gaps += 1;
                        }
                        damaged = false;
                        produced.clear();
                        recorded.clear();
                        core = Some(recorded_time(*c));
                    }
                }
                Record::Input { at, input } => {
                    read(at, &input);
                    if shown(at)
                        && let Some(text) = render::input(&input)
                    {
                        out.entries.push(entry(at, text, None));
                    }
                    let c = core.get_or_insert_with(|| recorded_time(Core::new()));
                    c.feed(at, input);
                    while let Some((at, e)) = c.poll_effect() {
                        note(&mut out, at, &e);
                        produced.push_back((at, e));
                    }
                }
                Record::Timeout { at } => {
                    let c = core.get_or_insert_with(|| recorded_time(Core::new()));
                    c.tick(at);
                    while let Some((at, e)) = c.poll_effect() {
                        note(&mut out, at, &e);
                        produced.push_back((at, e));
                    }
                }
                Record::Effect { effect } => recorded.push_back(Recorded::Now(effect)),
                Record::EffectV1 { effect } => recorded.push_back(Recorded::V1(effect)),
            }
            if damaged {
                // Records are missing: nothing is compared until the next snapshot.
                produced.clear();
                recorded.clear();
            }
            while !produced.is_empty() && !recorded.is_empty() {
                let (at, got) = produced.pop_front().expect("not empty");
                let expected = recorded.pop_front().expect("not empty");
                if expected.matches(&got) {
                    out.identical += 1;
                } else if out.divergence.is_none() {
                    out.divergence = Some(Divergence {
                        at,
                        expected: expected.shown(),
                        got: format!("{got:?}"),
                    });
                }
            }
        }
        let warning = records.warning();
        damaged |= warning.is_some();
        out.warnings.extend(warning);
    }
    if !recorded.is_empty() && out.divergence.is_none() {
        out.divergence = Some(Divergence {
            at: core.as_ref().map_or(Timestamp(0), |d| d.core().now()),
            expected: recorded[0].shown(),
            got: "nothing: the replay produced fewer effects".into(),
        });
    }
    out.truncated = produced.len();
    Ok(out)
}

fn entry(at: Timestamp, text: String, effect: Option<Effect>) -> Entry {
    Entry {
        at: at.0,
        time: rfc3339(at),
        text,
        effect,
    }
}
