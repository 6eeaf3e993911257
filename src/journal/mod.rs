//! The flight recorder: every input the core was fed and every effect it
//! produced, appended to checksummed segments on disk (format in
//! `docs/journal.md`), so a restart restores what operators did and a
//! replay reproduces what gwanje decided.

mod driver;
mod format;
mod reader;
mod restore;
mod writer;

pub use driver::Driver;
pub use format::{HEADER_LEN, MAGIC, Record, SnapshotReason, VERSION, encode, header};
pub use reader::{JournalError, Segment, read_segment, segments};
pub use restore::restore;
pub use writer::{Health, Journal, segment_path};
