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
    let mut offset = format::HEADER_LEN;
    loop {
        match format::decode(&mut r, found).map_err(io)? {
            Frame::Record(rec, len) => {
                // A time past what RFC 3339 can write is forged or corrupt:
                // nothing after it in the segment is trusted either.
                if rec.at().is_some_and(|t| t.0 > crate::clock::MAX_RFC3339_MS) {
                    let warning = format!(
                        "{} at offset {offset}: a record dated past the year 9999; the rest of this segment is skipped",
                        file.display()
                    );
                    return Ok((found, records, Some(warning)));
                }
                offset += len;
                records.push(*rec);
            }
            Frame::End => return Ok((found, records, None)),
            Frame::Bad(what) => {
                let warning = format!(
                    "{} at offset {offset}: {what}; the rest of this segment is skipped",
                    file.display()
                );
                return Ok((found, records, Some(warning)));
            }
        }
    }
}
