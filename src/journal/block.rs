//! Format version 3's compressed blocks. A block is one zstd frame holding
//! framed records (the version-2 framing: length, CRC-32, JSON), followed
//! by a trailer:
//!
//! ```text
//! "GWT\0"   magic, 4 bytes
//! comp_len  u32 LE   bytes of the zstd frame before the trailer
//! raw_len   u32 LE   bytes the frame decodes to
//! records   u32 LE   records in it
//! first_at  u64 LE   the time of its first timed record (0: none)
//! last_at   u64 LE   the time of its last timed record (0: none)
//! crc32     u32 LE   CRC-32 (IEEE) of the frame and the trailer before it
//! ```
//!
//! The writer flushes the frame after every batch, so what it wrote is on
//! disk (a crash of gwanje loses nothing) and decodes without the rest of
//! the frame; it ends a block at [`BLOCK_RAW_BYTES`] or [`BLOCK_AGE_MS`].
//! Each block decodes on its own, and the trailers, read from the end of a
//! segment backwards, index the blocks by time without decoding any.

use std::io::Write;

/// The trailer's magic.
pub const TRAILER_MAGIC: [u8; 4] = *b"GWT\0";
/// The trailer's length.
pub const TRAILER_LEN: usize = 36;
/// A block ends once it holds this much uncompressed.
pub const BLOCK_RAW_BYTES: usize = 1 << 20;
/// A block ends once it is this old.
pub const BLOCK_AGE_MS: u64 = 10_000;
/// The zstd level: on the fleet benchmark (10,000 targets every 10 s)
/// level 3 wrote 27 B a probe, level 7 23 B, at the same CPU per probe
/// within the benchmark's noise (0.143 and 0.151 ms).
const LEVEL: i32 = 7;
/// A zstd frame's magic, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// One block's trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Bytes of the frame.
    pub comp_len: u32,
    /// Bytes it decodes to.
    pub raw_len: u32,
    /// Records in it.
    pub records: u32,
    /// Its first timed record's time (0: none).
    pub first_at: u64,
    /// Its last timed record's time (0: none).
    pub last_at: u64,
    /// CRC-32 of the frame and of the trailer's fields before it.
    pub crc: u32,
}

impl Trailer {
    /// The trailer as written.
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[..4].copy_from_slice(&TRAILER_MAGIC);
        b[4..8].copy_from_slice(&self.comp_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.raw_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.records.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_at.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_at.to_le_bytes());
        b[32..36].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Reads a trailer, if `b` starts with one.
    pub fn decode(b: &[u8]) -> Option<Trailer> {
        if b.len() < TRAILER_LEN || b[..4] != TRAILER_MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Some(Trailer {
            comp_len: u32_at(4),
            raw_len: u32_at(8),
            records: u32_at(12),
            first_at: u64_at(16),
            last_at: u64_at(24),
            crc: u32_at(32),
        })
    }
}

/// The block being written: a zstd frame, flushed batch by batch.
pub struct OpenBlock {
    enc: zstd::stream::write::Encoder<'static, Vec<u8>>,
    crc: crc32fast::Hasher,
    comp_len: u32,
    raw_len: u32,
    records: u32,
    first_at: u64,
    last_at: u64,
    /// When it was opened, ms (the writer's clock).
    opened_at: u64,
}

impl OpenBlock {
    /// A new block, opened at `now` (ms).
    pub fn new(now: u64) -> std::io::Result<OpenBlock> {
        Ok(OpenBlock {
            enc: zstd::stream::write::Encoder::new(Vec::new(), LEVEL)?,
            crc: crc32fast::Hasher::new(),
            comp_len: 0,
            raw_len: 0,
            records: 0,
            first_at: 0,
            last_at: 0,
            opened_at: now,
        })
    }

    /// Compresses `raw` (framed records, `records` of them, their times
    /// from `first_at` to `last_at`, 0 for none) and returns the bytes to
    /// append to the segment: everything up to here decodes from them.
    pub fn push(
        &mut self,
        raw: &[u8],
        records: u32,
        first_at: u64,
        last_at: u64,
    ) -> std::io::Result<Vec<u8>> {
        self.enc.write_all(raw)?;
        self.enc.flush()?;
        self.raw_len = self.raw_len.saturating_add(raw.len() as u32);
        self.records = self.records.saturating_add(records);
        if self.first_at == 0 {
            self.first_at = first_at;
        }
        if last_at != 0 {
            self.last_at = last_at;
        }
        Ok(self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        let out = std::mem::take(self.enc.get_mut());
        self.crc.update(&out);
        self.comp_len = self.comp_len.saturating_add(out.len() as u32);
        out
    }

    /// Whether it should end before the next batch.
    pub fn full(&self, now: u64) -> bool {
        self.raw_len as usize >= BLOCK_RAW_BYTES
            || now.saturating_sub(self.opened_at) >= BLOCK_AGE_MS
    }

    /// Ends the frame: the bytes still to append, trailer included.
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        let tail = self.enc.finish()?;
        self.crc.update(&tail);
        self.comp_len = self.comp_len.saturating_add(tail.len() as u32);
        let mut trailer = Trailer {
            comp_len: self.comp_len,
            raw_len: self.raw_len,
            records: self.records,
            first_at: self.first_at,
            last_at: self.last_at,
            crc: 0,
        };
        // The trailer's own fields are covered too: a seek by its times
        // must not trust a damaged one.
        self.crc.update(&trailer.encode()[..TRAILER_LEN - 4]);
        trailer.crc = self.crc.finalize();
        let mut out = tail;
        out.extend_from_slice(&trailer.encode());
        Ok(out)
    }
}

/// What decoding the block at one offset found.
#[derive(Debug)]
pub struct Decoded {
    /// The framed records it holds (a torn block: those before the tear).
    pub raw: Vec<u8>,
    /// Bytes it took in the segment, trailer included.
    pub len: usize,
    /// What was wrong, when something was: torn, corrupt.
    pub damage: Option<String>,
}

/// Decodes the block starting at `bytes[0]`.
pub fn decode(bytes: &[u8]) -> Decoded {
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    let bad = |raw, len, what: &str| Decoded {
        raw,
        len,
        damage: Some(what.to_string()),
    };
    if bytes.len() < 4 || bytes[..4] != ZSTD_MAGIC {
        return bad(Vec::new(), 0, "not the start of a compressed block");
    }
    let mut dec = match Decoder::new() {
        Ok(d) => d,
        Err(e) => return bad(Vec::new(), 0, &format!("a decoder could not start ({e})")),
    };
    let mut raw = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut input = InBuffer::around(bytes);
    let mut ended = false;
    loop {
        let mut out = OutBuffer::around(&mut chunk[..]);
        let hint = match dec.run(&mut input, &mut out) {
            Ok(h) => h,
            Err(e) => {
                let n = out.pos();
                raw.extend_from_slice(&chunk[..n]);
                return bad(
                    raw,
                    input.pos(),
                    &format!("a corrupt compressed block ({e})"),
                );
            }
        };
        let n = out.pos();
        raw.extend_from_slice(&chunk[..n]);
        if hint == 0 {
            ended = true;
            break;
        }
        if input.pos() == bytes.len() && n == 0 {
            break;
        }
        if raw.len() > 2 * BLOCK_RAW_BYTES + (64 << 20) {
            return bad(
                raw,
                input.pos(),
                "a compressed block that decodes too large",
            );
        }
    }
    let frame_len = input.pos();
    if !ended {
        return bad(raw, frame_len, "a compressed block cut short");
    }
    let Some(trailer) = Trailer::decode(&bytes[frame_len..]) else {
        return bad(raw, frame_len, "a block without its trailer (cut short)");
    };
    let len = frame_len + TRAILER_LEN;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..len - 4]);
    if trailer.comp_len as usize != frame_len
        || trailer.raw_len as usize != raw.len()
        || crc.finalize() != trailer.crc
    {
        return bad(raw, len, "a block whose trailer does not match it");
    }
    Decoded {
        raw,
        len,
        damage: None,
    }
}

/// The blocks of a segment body (`bytes` after the header), each with its
/// offset in `bytes` and trailer, found from the end backwards without
/// decoding; `None` when the chain does not reach the start (a torn or
/// damaged segment: read it forwards).
pub fn index(bytes: &[u8]) -> Option<Vec<(usize, Trailer)>> {
    let mut out = Vec::new();
    let mut end = bytes.len();
    while end > 0 {
        let at = end.checked_sub(TRAILER_LEN)?;
        let t = Trailer::decode(&bytes[at..end])?;
        let start = at.checked_sub(t.comp_len as usize)?;
        out.push((start, t));
        end = start;
    }
    out.reverse();
    Some(out)
}

/// A whole segment holding `records` in one block, as the writer would
/// write them (tools and tests that edit a journal write it back so).
pub fn encode_segment(records: &[super::Record]) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let (mut first, mut last) = (0, 0);
    for r in records {
        if !super::format::encode(r, &mut raw) {
            return Err(std::io::Error::other(
                "a record larger than a reader accepts",
            ));
        }
        if let Some(t) = r.at() {
            first = if first == 0 { t.0 } else { first };
            last = t.0;
        }
    }
    let mut out = super::format::header().to_vec();
    let mut block = OpenBlock::new(0)?;
    out.extend(block.push(&raw, records.len() as u32, first, last)?);
    out.extend(block.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(batches: &[&[u8]]) -> Vec<u8> {
        let mut b = OpenBlock::new(0).unwrap();
        let mut out = Vec::new();
        for (i, raw) in batches.iter().enumerate() {
            out.extend(b.push(raw, 1, 100 + i as u64, 100 + i as u64).unwrap());
        }
        out.extend(b.finish().unwrap());
        out
    }

    #[test]
    fn blocks_decode_index_and_report_tears_and_corruption() {
        let a = block(&[b"first batch ", b"second batch"]);
        let b = block(&[b"third"]);
        let mut seg = a.clone();
        seg.extend(&b);
        let d = decode(&seg);
        assert_eq!(d.raw, b"first batch second batch");
        assert_eq!(d.len, a.len());
        assert!(d.damage.is_none());
        assert_eq!(decode(&seg[d.len..]).raw, b"third");
        let idx = index(&seg).unwrap();
        assert_eq!(idx.len(), 2);
        assert_eq!((idx[1].0, idx[1].1.first_at), (a.len(), 100));
        // A flushed but unfinished block still yields what was flushed.
        let mut open = OpenBlock::new(0).unwrap();
        let mut torn = open.push(b"durable", 1, 1, 1).unwrap();
        torn.extend(open.push(b" too", 1, 2, 2).unwrap());
        let d = decode(&torn);
        assert_eq!(d.raw, b"durable too");
        assert!(d.damage.unwrap().contains("cut short"));
        assert!(index(&torn).is_none());
        // A flipped byte anywhere in a block, its trailer's times included:
        // damage, never silently wrong.
        for i in 0..a.len() {
            let mut bad = a.clone();
            bad[i] ^= 0x55;
            assert!(decode(&bad).damage.is_some(), "byte {i} of {}", a.len());
        }
    }
}
