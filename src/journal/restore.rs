//! Restoring the core after a restart: the newest segment that starts with
//! a snapshot, and every input recorded after it, fed through the core.

use std::path::Path;

use super::reader::{self, JournalError};
use super::record::Record;
use crate::core::{Core, TimerSource, VirtualTime};

/// The core as the journal in `dir` left it, [restarted](Core::restarted),
/// with the warnings met on the way; `None` when `dir` holds no journal yet.
pub fn restore(dir: &Path) -> Result<(Option<Core>, Vec<String>), JournalError> {
    let segs = match reader::segments(dir) {
        Ok(s) => s,
        Err(JournalError::Folder { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok((None, Vec::new()));
        }
        Err(e) => return Err(e),
    };
    let mut warnings = Vec::new();
    // Newest first: the first segment whose snapshot can be read is the
    // base. Records are read one at a time: memory stays bounded by a block.
    let mut base = None;
    for (i, s) in segs.iter().enumerate().rev() {
        match reader::records(&s.path) {
            Ok(mut records) => match records.next() {
                Some(snapshot @ Record::Snapshot { .. }) => {
                    base = Some((i, snapshot, records));
                    break;
                }
                _ => {
                    warnings.extend(records.warning());
                    warnings.push(format!(
                        "{}: no snapshot at its start; skipped",
                        s.path.display()
                    ));
                }
            },
            Err(e) => warnings.push(format!("{e}; skipped")),
        }
    }
    let Some((first, snapshot, rest)) = base else {
        return Ok((None, warnings));
    };
    // On recorded time, as replay does: the recorded timeouts and answers.
    let recorded = |core| VirtualTime::new(core, TimerSource::Recorded, None);
    let mut driver = recorded(Core::new());
    let mut feed = |records: &mut dyn Iterator<Item = Record>| {
        for r in records {
            match r {
                Record::Snapshot { core: c, .. } => driver = recorded(*c),
                Record::Input { at, input } => driver.feed(at, input),
                Record::Timeout { at } => driver.tick(at),
                Record::Effect { .. } | Record::EffectV1 { .. } => {}
            }
            driver.take_effects();
        }
    };
    feed(&mut std::iter::once(snapshot));
    let mut rest = rest;
    feed(&mut rest);
    warnings.extend(rest.warning());
    for s in &segs[first + 1..] {
        match reader::records(&s.path) {
            Ok(mut records) => {
                feed(&mut records);
                warnings.extend(records.warning());
            }
            Err(e) => warnings.push(format!("{e}; skipped")),
        }
    }
    Ok((Some(driver.into_core().restarted()), warnings))
}
