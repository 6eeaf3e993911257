//! Results older than the hub holds, read back from this instance's
//! journal: a follower that was away longer than the hub's memory (or
//! asks after a restart) resumes where it stopped. The journal numbers
//! nothing itself: a segment's snapshot carries the core's count of
//! results so far, and each recorded probe result counts one more, exactly
//! as the live stream numbered them.

use std::path::Path;

use super::wire::Line;
use crate::core::{Input, Subject};
use crate::journal::{self, Record};

/// The most results one request reads back; the follower asks again for more.
pub const MAX_BACKLOG: usize = 100_000;

/// Lines read back from a journal, and whether results before `until`
/// remain (the read stopped at [`MAX_BACKLOG`]).
pub struct Backlog {
    /// The lines, oldest first, newline-terminated.
    pub bytes: Vec<u8>,
    /// The last sequence number read (or `after` when none was).
    pub last: u64,
    /// More lines before `until` remain.
    pub truncated: bool,
    /// What was asked for ends before this number (the hub holds it on).
    pub until: u64,
}

/// The results numbered after `after` and before `until` in the journal at
/// `dir`, as `vantage`'s stream lines (a subject in `controls` marked).
pub fn read(
    dir: &Path,
    after: u64,
    until: u64,
    vantage: &str,
    controls: &[Subject],
) -> Result<Backlog, journal::JournalError> {
    let mut out = Backlog {
        bytes: Vec::new(),
        last: after,
        truncated: false,
        until,
    };
    let segments = journal::segments(dir)?;
    // Each segment opens with a snapshot: start from the last one whose
    // count is at or before `after`.
    let mut start = 0;
    for (i, seg) in segments.iter().enumerate() {
        let first = journal::records(&seg.path)?.next();
        match first {
            Some(Record::Snapshot { core, .. }) if core.observed() <= after => start = i,
            Some(Record::Snapshot { .. }) => break,
            _ => {}
        }
    }
    let mut count: Option<u64> = None;
    let mut lines = 0;
    for seg in &segments[start..] {
        for record in journal::records(&seg.path)? {
            match record {
                Record::Snapshot { core, .. } => count = Some(core.observed()),
                Record::Input {
                    input: Input::ProbeCompleted(obs),
                    ..
                } => {
                    let Some(n) = count.as_mut() else { continue };
                    *n += 1;
                    if *n <= after {
                        continue;
                    }
                    if *n >= until {
                        return Ok(out);
                    }
                    if lines == MAX_BACKLOG {
                        out.truncated = true;
                        return Ok(out);
                    }
                    let control = controls.contains(&obs.subject);
                    out.bytes
                        .extend_from_slice(&Line::of(vantage, *n, control, &obs).to_bytes());
                    out.last = *n;
                    lines += 1;
                }
                _ => {}
            }
        }
    }
    Ok(out)
}
