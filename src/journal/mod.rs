//! The flight recorder: every input the core was fed and every effect it
//! produced, appended to checksummed segments on disk (format in
//! `docs/journal.md`), so a restart restores what operators did and a
//! replay reproduces what gwanje decided.

mod block;
mod driver;
mod format;
mod reader;
mod record;
mod restore;
mod v1;
mod writer;

pub use block::encode_segment;
pub use driver::Driver;
pub use format::{HEADER_LEN, MAGIC, READS, VERSION, encode, header};
pub use reader::{
    JournalError, Records, Segment, ahead_all, read_segment, read_since, records, segments,
};
pub use record::{Record, RecordedV1, SnapshotReason};
pub use restore::restore;
pub use writer::{Health, Journal, segment_path};
