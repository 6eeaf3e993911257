//! Restoring the core after a restart: the newest segment that starts with
//! a snapshot, and every input recorded after it, fed through the core.

use std::path::Path;

use super::Driver;
use super::format::Record;
use super::reader::{self, JournalError};
use crate::core::Core;

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
    // Newest first: the first segment whose snapshot can be read is the base.
    let mut base = None;
    for (i, s) in segs.iter().enumerate().rev() {
        match reader::read_segment(&s.path) {
            Ok((records, warning)) => {
                if matches!(records.first(), Some(Record::Snapshot { .. })) {
                    warnings.extend(warning);
                    base = Some((i, records));
                    break;
                }
                warnings.push(format!(
                    "{}: no snapshot at its start; skipped",
                    s.path.display()
                ));
            }
            Err(e) => warnings.push(format!("{e}; skipped")),
        }
    }
    let Some((first, records)) = base else {
        return Ok((None, warnings));
    };
    // Through the same seam as live operation and replay, without a journal.
    let mut driver = Driver::new(Core::new(), None);
    let mut feed = |records: Vec<Record>| {
        for r in records {
            match r {
                Record::Snapshot { core: c, .. } => driver = Driver::new(*c, None),
                Record::Input { at, input } => driver.feed(at, input),
                Record::Timeout { at } => driver.tick(at),
                Record::Effect { .. } => {}
            }
            while driver.poll_effect().is_some() {}
        }
    };
    feed(records);
    for s in &segs[first + 1..] {
        match reader::read_segment(&s.path) {
            Ok((records, warning)) => {
                warnings.extend(warning);
                feed(records);
            }
            Err(e) => warnings.push(format!("{e}; skipped")),
        }
    }
    Ok((Some(driver.into_core().restarted()), warnings))
}
