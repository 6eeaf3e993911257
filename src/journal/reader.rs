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
    read_versioned(file).map(|(_, records, warning)| (records, warning))
}

/// A segment's format version, valid records and tail warning.
pub fn read_versioned(file: &Path) -> Result<(u32, Vec<Record>, Option<String>), JournalError> {
    let io = |source| JournalError::Io {
        file: file.to_path_buf(),
        source,
    };
    let mut r = BufReader::new(std::fs::File::open(file).map_err(io)?);
    let mut head = [0u8; 8];
    let got = format::read_full(&mut r, &mut head).map_err(io)?;
    if got < head.len() && head[..got.min(4)] == format::MAGIC[..got.min(4)] {
        // Created, and the machine stopped before its header was written.
        let warning = format!(
            "{} at offset 0: an empty or cut-short segment; skipped",
            file.display()
        );
        return Ok((format::VERSION, Vec::new(), Some(warning)));
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
    let mut records = Vec::new();
    if found < 3 {
        let warning =
            take_records(&mut r, found, format::HEADER_LEN, file, &mut records).map_err(io)?;
        return Ok((found, records, warning));
    }
    // Version 3: compressed blocks, each decoded on its own.
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut body).map_err(io)?;
    let (records, warning) = read_blocks(&body, 0, file).map_err(io)?;
    Ok((found, records, warning))
}

/// The records of a segment from the first block that reaches `from`
/// (Unix ms) on. In a compressed segment whose blocks' trailers are whole,
/// the blocks before are never decoded (their trailers index them by
/// time); an older or damaged segment is read whole.
pub fn read_since(file: &Path, from: u64) -> Result<(Vec<Record>, Option<String>), JournalError> {
    let io = |source| JournalError::Io {
        file: file.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(file).map_err(io)?;
    let header_len = format::HEADER_LEN as usize;
    let version = bytes
        .get(4..8)
        .map(|v| u32::from_le_bytes(v.try_into().expect("4 bytes")));
    let body = bytes.get(header_len..).unwrap_or_default();
    let start = match (version, super::block::index(body)) {
        (Some(3), Some(blocks)) if bytes[..4] == format::MAGIC => blocks
            .iter()
            .find(|(_, t)| t.last_at == 0 || t.last_at >= from)
            .map_or(body.len(), |(at, _)| *at),
        _ => return read_segment(file),
    };
    read_blocks(body, start, file).map_err(io)
}

/// Decodes the blocks of a version-3 segment `body` from `pos` on.
fn read_blocks(
    body: &[u8],
    mut pos: usize,
    file: &Path,
) -> std::io::Result<(Vec<Record>, Option<String>)> {
    let mut records = Vec::new();
    while pos < body.len() {
        let offset = format::HEADER_LEN + pos as u64;
        let block = super::block::decode(&body[pos..]);
        let mut raw = std::io::Cursor::new(&block.raw);
        // A torn block still gives the records flushed before the tear.
        let inner = take_records(&mut raw, 2, offset, file, &mut records)?;
        if let Some(what) = &block.damage {
            let warning = format!(
                "{} at offset {offset}: {what}; the rest of this segment is skipped",
                file.display()
            );
            return Ok((records, Some(warning)));
        }
        if inner.is_some() {
            return Ok((records, inner));
        }
        pos += block.len;
    }
    Ok((records, None))
}

/// Reads framed records of `version` from `r` into `out`; returns the
/// warning that ended it early, naming the file and offset, if one did.
fn take_records(
    r: &mut impl std::io::Read,
    version: u32,
    mut offset: u64,
    file: &Path,
    out: &mut Vec<Record>,
) -> std::io::Result<Option<String>> {
    loop {
        match format::decode(r, version)? {
            Frame::Record(rec, len) => {
                // A time past what RFC 3339 can write is forged or corrupt:
                // nothing after it in the segment is trusted either.
                if rec.at().is_some_and(|t| t.0 > crate::clock::MAX_RFC3339_MS) {
                    return Ok(Some(format!(
                        "{} at offset {offset}: a record dated past the year 9999; the rest of this segment is skipped",
                        file.display()
                    )));
                }
                offset += len;
                out.push(*rec);
            }
            Frame::End => return Ok(None),
            Frame::Bad(what) => {
                return Ok(Some(format!(
                    "{} at offset {offset}: {what}; the rest of this segment is skipped",
                    file.display()
                )));
            }
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
