//! The journal's on-disk format, version 3 (specified in `docs/journal.md`):
//! version 2's records, compressed in blocks (`block`); version 1 and 2
//! segments are read too (`v1`).
//!
//! A journal is a folder of segment files `<seq>.gwj`, `seq` a zero-padded
//! decimal that only grows. A segment starts with an 8-byte header, the magic
//! `GWJ\0` and the format version as a little-endian u32, followed by
//! records. A record is a little-endian u32 length, a little-endian u32
//! CRC-32 (IEEE) of the payload, and the payload: one [`Record`] as JSON.
//! Every segment's first record is a snapshot of the core.

use std::io::{self, Read};

use super::record::Record;

/// The magic at the start of every segment.
pub const MAGIC: [u8; 4] = *b"GWJ\0";
/// The format version this build writes.
pub const VERSION: u32 = 3;
/// Every version this build reads.
pub const READS: [u32; 3] = [1, 2, 3];
/// The header's length.
pub const HEADER_LEN: u64 = 8;
/// The largest record a reader accepts; a longer length is corruption.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

/// The segment header.
pub fn header() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&MAGIC);
    h[4..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Appends `record`, framed, to `out`; `false` (and nothing appended) when
/// it is larger than a reader accepts.
pub fn encode(record: &Record, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    serde_json::to_writer(&mut *out, record).expect("records always encode");
    let payload = &out[start + 8..];
    let Some(len) = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD_BYTES)
    else {
        out.truncate(start);
        return false;
    };
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    true
}

/// What reading one record found.
#[derive(Debug)]
pub enum Frame {
    /// A whole, valid record, and the bytes its frame took.
    Record(Box<Record>, u64),
    /// The end of the segment, cleanly.
    End,
    /// A record cut short (a crash mid-write) or damaged, at this offset.
    Bad(String),
}

/// Reads one framed record of format `version` from `r`.
pub fn decode(r: &mut impl Read, version: u32) -> io::Result<Frame> {
    let mut head = [0u8; 8];
    let got = read_full(r, &mut head)?;
    if got == 0 {
        return Ok(Frame::End);
    }
    if got < head.len() {
        return Ok(Frame::Bad("a record header cut short".into()));
    }
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD_BYTES {
        return Ok(Frame::Bad(format!("a record length of {len} bytes")));
    }
    let mut payload = vec![0u8; len as usize];
    if read_full(r, &mut payload)? < payload.len() {
        return Ok(Frame::Bad("a record cut short".into()));
    }
    Ok(parse(&payload, crc, version))
}

/// Reads one framed record of format `version` at the start of `bytes`
/// (a decompressed block), without copying it; returns it and the bytes
/// its frame took.
pub fn decode_slice(bytes: &[u8], version: u32) -> (Frame, usize) {
    if bytes.is_empty() {
        return (Frame::End, 0);
    }
    let Some((head, rest)) = bytes.split_first_chunk::<8>() else {
        return (Frame::Bad("a record header cut short".into()), 0);
    };
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD_BYTES {
        return (Frame::Bad(format!("a record length of {len} bytes")), 0);
    }
    let Some(payload) = rest.get(..len as usize) else {
        return (Frame::Bad("a record cut short".into()), 0);
    };
    (parse(payload, crc, version), 8 + len as usize)
}

/// A record's payload, checked against its CRC and decoded.
fn parse(payload: &[u8], crc: u32, version: u32) -> Frame {
    if crc32fast::hash(payload) != crc {
        return Frame::Bad("a checksum mismatch".into());
    }
    let record = if version == 1 {
        super::v1::decode(payload).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    };
    match record {
        Ok(record) => Frame::Record(Box::new(record), 8 + payload.len() as u64),
        Err(e) => Frame::Bad(format!("a record that does not decode ({e})")),
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let mut buf = Vec::new();
        let r = Record::Timeout {
            at: crate::core::Timestamp(42),
        };
        encode(&r, &mut buf);
        encode(&r, &mut buf);
        let mut cur = std::io::Cursor::new(buf.clone());
        assert!(matches!(decode(&mut cur, VERSION).unwrap(), Frame::Record(x, _) if *x == r));
        assert!(matches!(
            decode(&mut cur, VERSION).unwrap(),
            Frame::Record(..)
        ));
        assert!(matches!(decode(&mut cur, VERSION).unwrap(), Frame::End));
        // A torn tail.
        let mut cur = std::io::Cursor::new(buf[..buf.len() - 3].to_vec());
        decode(&mut cur, VERSION).unwrap();
        assert!(matches!(decode(&mut cur, VERSION).unwrap(), Frame::Bad(_)));
        // A flipped byte.
        let mut bad = buf.clone();
        bad[12] ^= 0x20;
        assert!(matches!(
            decode(&mut std::io::Cursor::new(bad), VERSION).unwrap(),
            Frame::Bad(_)
        ));
    }
}
