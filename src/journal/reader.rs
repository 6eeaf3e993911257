//! Reading a journal back: its segments in order, each record checked; a
//! torn or damaged tail is reported and skipped, never fatal.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::format::{self, Frame};
use super::record::Record;

/// Why a journal could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The folder is missing or unreadable.
    #[error("journal folder {}: {source}", dir.display())]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The folder holds no segment.
    #[error("journal folder {} holds no segment (*.gwj)", dir.display())]
    Empty {
        /// The folder.
        dir: PathBuf,
    },
    /// A segment could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The segment.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A segment does not start with the journal's magic.
    #[error("{} at offset 0: not a gwanje journal segment", file.display())]
    NotAJournal {
        /// The segment.
        file: PathBuf,
    },
    /// A segment of another format version.
    #[error("{} at offset 4: journal format version {found}; this gwanje reads versions 1 and 2", file.display())]
    Version {
        /// The segment.
        file: PathBuf,
        /// Its version.
        found: u32,
    },
}

/// One segment file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    /// Its sequence number.
    pub seq: u64,
    /// Its path.
    pub path: PathBuf,
}

/// The segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<Segment>, JournalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| JournalError::Folder {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<Segment> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let seq = path
                .file_name()?
                .to_str()?
                .strip_suffix(".gwj")?
                .parse()
                .ok()?;
            Some(Segment { seq, path })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A segment's valid records, and a warning naming the file and offset when
/// its tail was torn or damaged (everything after that point is skipped).
pub fn read_segment(file: &Path) -> Result<(Vec<Record>, Option<String>), JournalError> {
    let mut it = records(file)?;
    let records: Vec<Record> = it.by_ref().collect();
    Ok((records, it.warning()))
}

/// A segment read record by record: a reader holds one compressed block's
/// records at a time (one record of an older version), whatever the
/// segment's length. After the last record, [`Records::warning`] says what
/// ended it early, if anything did.
pub struct Records {
    file: PathBuf,
    /// The segment's format version.
    pub version: u32,
    source: Source,
    pending: std::collections::VecDeque<Record>,
    warning: Option<String>,
    done: bool,
}

enum Source {
    /// Versions 1 and 2: framed records one after another.
    Framed(BufReader<std::fs::File>, u64),
    /// Version 3: the compressed body, and where the next block starts.
    Blocks(Vec<u8>, usize),
}

impl Records {
    /// What ended the segment early (a torn or damaged tail), naming the
    /// file and offset; `None` while records remain or when it ended cleanly.
    pub fn warning(&mut self) -> Option<String> {
        self.warning.take()
    }

    fn stop(&mut self, warning: String) {
        self.warning = Some(warning);
        self.done = true;
    }

    /// Decodes the next record (older versions) or block (version 3).
    fn fill(&mut self) {
        match &mut self.source {
            Source::Framed(r, offset) => {
                let at = *offset;
                let mut one = Vec::with_capacity(1);
                match take_one(r, self.version, at, &self.file, &mut one) {
                    Ok(Step::Record(len)) => {
                        *offset += len;
                        self.pending.extend(one);
                    }
                    Ok(Step::End) => self.done = true,
                    Ok(Step::Damaged(w)) => self.stop(w),
                    Err(e) => self.stop(format!("{} at offset {at}: {e}", self.file.display())),
                }
            }
            Source::Blocks(body, pos) => {
                if *pos >= body.len() {
                    self.done = true;
                    return;
                }
                let offset = format::HEADER_LEN + *pos as u64;
                let block = super::block::decode(&body[*pos..]);
                *pos += block.len.max(1);
                let mut got = Vec::new();
                // A torn block still gives the records flushed before the tear.
                let inner = slice_records(&block.raw, offset, &self.file, &mut got);
                self.pending.extend(got);
                match (block.damage, inner) {
                    (Some(what), _) => self.stop(format!(
                        "{} at offset {offset}: {what}; the rest of this segment is skipped",
                        self.file.display()
                    )),
                    (None, Some(w)) => self.stop(w),
                    (None, None) => {}
                }
            }
        }
    }
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(r);
            }
            if self.done {
                return None;
            }
            self.fill();
        }
    }
}

impl Records {
    /// The same records decoded on a thread of their own, a few blocks
    /// ahead: decoding costs about as much as the core's replay of what it
    /// decodes, so on two cores the two overlap. Memory stays a few batches.
    pub fn ahead(self) -> Result<Ahead, JournalError> {
        let (version, file) = (self.version, self.file.clone());
        ahead_of(version, file, Box::new(std::iter::once(self)))
    }

    /// Moves the decoded records to `tx` a block at a time (of older
    /// versions, a thousand or so); `false` when the consumer stopped.
    fn send(&mut self, tx: &std::sync::mpsc::SyncSender<Batch>) -> bool {
        while !self.done || !self.pending.is_empty() {
            while !self.done && self.pending.len() < 1024 {
                self.fill();
            }
            let batch = Vec::from(std::mem::take(&mut self.pending));
            // A consumer that stopped early has dropped the receiver.
            if !batch.is_empty() && tx.send(Batch::Records(batch)).is_err() {
                return false;
            }
        }
        true
    }
}

/// Every record of the segments `files`, one after another, read ahead on
/// one thread (not one per segment: a thread's allocations stay in an
/// arena of its own, and a thread per segment made a long record's readers
/// keep more). A segment that can no longer be opened (pruned since) is
/// passed over, and a damaged one's tail ends that segment: the caller has
/// named both when it first read them.
pub fn ahead_all(files: Vec<PathBuf>) -> Result<Ahead, JournalError> {
    let file = files.first().cloned().unwrap_or_default();
    let sources = files.into_iter().filter_map(|f| records(&f).ok());
    ahead_of(format::VERSION, file, Box::new(sources))
}

fn ahead_of(
    version: u32,
    file: PathBuf,
    sources: Box<dyn Iterator<Item = Records> + Send>,
) -> Result<Ahead, JournalError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    let thread = std::thread::Builder::new()
        .name("gwanje-read".into())
        .spawn(move || {
            let mut warning = None;
            for mut r in sources {
                if !r.send(&tx) {
                    return;
                }
                warning = r.warning();
            }
            let _ = tx.send(Batch::End(warning));
        })
        .map_err(|source| JournalError::Io { file, source })?;
    Ok(Ahead {
        version,
        rx: Some(rx),
        thread: Some(thread),
        pending: Vec::new().into_iter(),
        warning: None,
    })
}

enum Batch {
    Records(Vec<Record>),
    End(Option<String>),
}

/// A segment's records read ahead on a thread ([`Records::ahead`]).
pub struct Ahead {
    /// The segment's format version.
    pub version: u32,
    rx: Option<std::sync::mpsc::Receiver<Batch>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pending: std::vec::IntoIter<Record>,
    warning: Option<String>,
}

impl Ahead {
    /// What ended the segment early, as [`Records::warning`].
    pub fn warning(&mut self) -> Option<String> {
        self.warning.take()
    }
}

impl Iterator for Ahead {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.pending.next() {
                return Some(r);
            }
            match self.rx.as_ref()?.recv() {
                Ok(Batch::Records(b)) => self.pending = b.into_iter(),
                Ok(Batch::End(w)) => {
                    self.warning = w;
                    self.rx = None;
                }
                Err(_) => {
                    // The reader ended without its last word: it panicked,
                    // and so does its consumer (nothing is silently cut).
                    self.rx = None;
                    if let Some(Err(panic)) = self.thread.take().map(|t| t.join()) {
                        std::panic::resume_unwind(panic);
                    }
                }
            }
        }
    }
}

/// Opens a segment to read it record by record; a segment that is not a
/// journal's, or of a version this build does not read, is an error.
pub fn records(file: &Path) -> Result<Records, JournalError> {
    let io = |source| JournalError::Io {
        file: file.to_path_buf(),
        source,
    };
    let mut r = BufReader::new(std::fs::File::open(file).map_err(io)?);
    let mut head = [0u8; 8];
    let got = format::read_full(&mut r, &mut head).map_err(io)?;
    let empty = |version| Records {
        file: file.to_path_buf(),
        version,
        source: Source::Blocks(Vec::new(), 0),
        pending: Default::default(),
        warning: None,
        done: true,
    };
    if got < head.len() && head[..got.min(4)] == format::MAGIC[..got.min(4)] {
        // Created, and the machine stopped before its header was written.
        let mut it = empty(format::VERSION);
        it.warning = Some(format!(
            "{} at offset 0: an empty or cut-short segment; skipped",
            file.display()
        ));
        return Ok(it);
    }
    if head[..4] != format::MAGIC {
        return Err(JournalError::NotAJournal {
            file: file.to_path_buf(),
        });
    }
    let found = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if !format::READS.contains(&found) {
        return Err(JournalError::Version {
            file: file.to_path_buf(),
            found,
        });
    }
    let source = if found < 3 {
        Source::Framed(r, format::HEADER_LEN)
    } else {
        // Compressed, a segment is a tenth of what it decodes to.
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut body).map_err(io)?;
        Source::Blocks(body, 0)
    };
    Ok(Records {
        done: false,
        source,
        ..empty(found)
    })
}

/// The records of a segment from the first block that reaches `from`
/// (Unix ms) on. In a compressed segment whose blocks' trailers are whole,
/// the blocks before are never decoded (their trailers index them by
/// time); an older or damaged segment is read whole.
pub fn read_since(file: &Path, from: u64) -> Result<(Vec<Record>, Option<String>), JournalError> {
    let mut it = records(file)?;
    if let Source::Blocks(body, pos) = &mut it.source
        && let Some(blocks) = super::block::index(body)
    {
        *pos = blocks
            .iter()
            .find(|(_, t)| t.last_at == 0 || t.last_at >= from)
            .map_or(body.len(), |(at, _)| *at);
    }
    let records: Vec<Record> = it.by_ref().collect();
    Ok((records, it.warning()))
}

/// What reading one framed record found.
enum Step {
    /// A record, and the bytes it took.
    Record(u64),
    /// The end.
    End,
    /// Damage, in words naming the file and offset.
    Damaged(String),
}

/// Reads one framed record of `version` at `offset` from `r` into `out`.
fn take_one(
    r: &mut impl std::io::Read,
    version: u32,
    offset: u64,
    file: &Path,
    out: &mut Vec<Record>,
) -> std::io::Result<Step> {
    Ok(step(format::decode(r, version)?, offset, file, out))
}

/// What one decoded frame at `offset` of `file` means for the reading.
fn step(frame: Frame, offset: u64, file: &Path, out: &mut Vec<Record>) -> Step {
    match frame {
        // A time past what RFC 3339 can write is forged or corrupt:
        // nothing after it in the segment is trusted either.
        Frame::Record(rec, _) if rec.at().is_some_and(|t| t.0 > crate::clock::MAX_RFC3339_MS) => {
            Step::Damaged(format!(
                "{} at offset {offset}: a record dated past the year 9999; the rest of this segment is skipped",
                file.display()
            ))
        }
        Frame::Record(rec, len) => {
            out.push(*rec);
            Step::Record(len)
        }
        Frame::End => Step::End,
        Frame::Bad(what) => Step::Damaged(format!(
            "{} at offset {offset}: {what}; the rest of this segment is skipped",
            file.display()
        )),
    }
}

/// Reads the framed records of a decompressed block into `out`, in place;
/// returns the warning that ended it early, naming the file and offset.
fn slice_records(raw: &[u8], offset: u64, file: &Path, out: &mut Vec<Record>) -> Option<String> {
    let mut pos = 0;
    loop {
        let (frame, len) = format::decode_slice(&raw[pos..], 2);
        match step(frame, offset + pos as u64, file, out) {
            Step::Record(_) => pos += len,
            Step::End => return None,
            Step::Damaged(w) => return Some(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Timestamp;

    /// A version-3 segment of one block per time in `times`, a timeout each.
    fn segment(times: &[u64]) -> Vec<u8> {
        let mut out = format::header().to_vec();
        for t in times {
            let mut raw = Vec::new();
            format::encode(&Record::Timeout { at: Timestamp(*t) }, &mut raw);
            let mut b = crate::journal::block::OpenBlock::new(0).unwrap();
            out.extend(b.push(&raw, 1, *t, *t).unwrap());
            out.extend(b.finish().unwrap());
        }
        out
    }

    fn times(records: &[Record]) -> Vec<u64> {
        records.iter().filter_map(|r| r.at().map(|t| t.0)).collect()
    }

    #[test]
    fn a_compressed_segment_is_read_from_a_time_on_by_its_block_index() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("00000000000000000001.gwj");
        std::fs::write(&file, segment(&[100, 200, 300])).unwrap();
        let (all, warning) = read_segment(&file).unwrap();
        assert_eq!((times(&all), warning), (vec![100, 200, 300], None));
        let (later, _) = read_since(&file, 250).unwrap();
        assert_eq!(times(&later), [300], "the blocks before 250 are skipped");
        let (none, _) = read_since(&file, 400).unwrap();
        assert!(none.is_empty());
        // A torn last block has no trailer to index by: read whole, and
        // what it flushed before the tear is kept.
        let mut torn = segment(&[100, 200]);
        let mut raw = Vec::new();
        format::encode(&Record::Timeout { at: Timestamp(300) }, &mut raw);
        let mut open = crate::journal::block::OpenBlock::new(0).unwrap();
        torn.extend(open.push(&raw, 1, 300, 300).unwrap());
        std::fs::write(&file, &torn).unwrap();
        let (got, warning) = read_since(&file, 250).unwrap();
        assert_eq!(times(&got), [100, 200, 300]);
        assert!(warning.unwrap().contains("cut short"));
    }
}
