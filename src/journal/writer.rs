//! Writing the journal: the engine hands records to a bounded queue and
//! never waits; a writer thread batches them into the current segment,
//! applies the fsync policy, rotates segments by size or age and prunes old
//! ones by total size or age. A full queue or a failing disk drops records
//! and counts them; writing resumes with a `resync` snapshot.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use super::block::OpenBlock;
use super::format;
use super::reader;
use super::record::{Record, SnapshotReason};
use crate::clock;
use crate::core::{Core, Effect, Input, Timestamp};
use crate::plan::{Fsync, JournalSpec};

/// Most records written in one batch.
const BATCH: usize = 4096;
/// How long the writer gathers records into one write after the first
/// arrives: one system call for many records. A `kill -9` loses what was
/// still queued, normally the last few milliseconds of records.
const GATHER: Duration = Duration::from_millis(5);

/// What the writer thread and the engine side share.
#[derive(Default)]
struct State {
    dropped: AtomicU64,
    failing: AtomicBool,
    /// 0: none; 1: rotate; 2: resync.
    wants_snapshot: AtomicU8,
    /// Bytes written to the journal so far.
    written: AtomicU64,
}

impl State {
    fn want(&self, reason: SnapshotReason) {
        let v = match reason {
            SnapshotReason::Resync => 2,
            _ => 1,
        };
        self.wants_snapshot.fetch_max(v, Ordering::SeqCst);
    }
}

/// The journal as the engine sees it: a [`Recorder`] that never blocks.
pub struct Journal {
    tx: SyncSender<Record>,
    state: Arc<State>,
    /// Records were dropped: everything but a snapshot is dropped too until
    /// the resync snapshot is queued, so the record has one clean gap.
    gap: bool,
    /// An offline writer (a generated record) waits for the writer instead.
    waits: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How the journal is doing, for metrics and the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Records dropped since start.
    pub dropped: u64,
    /// Whether writes fail now.
    pub failing: bool,
    /// Bytes written since start.
    pub written: u64,
}

impl Journal {
    /// Opens the journal in `spec.dir` (created if missing) in a new
    /// segment that starts with a snapshot of `core`. A folder that cannot
    /// be written (a full disk, a file in its place) does not stop
    /// monitoring: the journal starts failing, as it would at run time
    /// (`JournalWriteFailing`), and the next snapshot retries.
    pub fn open(spec: &JournalSpec, core: &Core) -> std::io::Result<Journal> {
        let listed = std::fs::create_dir_all(&spec.dir)
            .and_then(|()| reader::segments(&spec.dir).map_err(std::io::Error::other));
        let next = listed
            .as_ref()
            .ok()
            .and_then(|s| s.last())
            .map_or(1, |s| s.seq + 1);
        let (tx, rx) = sync_channel(spec.queue);
        let state = Arc::new(State::default());
        let mut w = Writer {
            spec: spec.clone(),
            seq: next,
            file: None,
            bytes: 0,
            opened_at: clock::now(),
            synced_at: clock::now(),
            rotate: false,
            state: state.clone(),
            buf: Vec::new(),
            batch: (0, 0, 0),
            block: None,
        };
        let first = listed.and_then(|_| {
            w.start_segment(&Record::Snapshot {
                at: core.now(),
                reason: SnapshotReason::Start,
                core: Box::new(core.clone()),
            })
        });
        if let Err(e) = first {
            w.fail(1, &e);
        }
        let thread = std::thread::Builder::new()
            .name("gwanje-journal".into())
            .spawn(move || w.run(rx))?;
        Ok(Journal {
            tx,
            state,
            gap: false,
            waits: false,
            thread: Some(thread),
        })
    }

    /// This journal waits for its writer when the queue is full instead of
    /// dropping: for a record written offline (the benchmark's generated
    /// day), where nothing live is held up by waiting.
    pub fn waiting(mut self) -> Self {
        self.waits = true;
        self
    }

    fn push(&mut self, record: Record) {
        let snapshot = matches!(record, Record::Snapshot { .. });
        if self.gap && !snapshot {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.waits {
            self.tx.send(record).expect("the journal writer stopped");
            return;
        }
        match self.tx.try_send(record) {
            Ok(()) => {
                if snapshot {
                    self.gap = false;
                }
            }
            Err(TrySendError::Full(_)) => {
                self.state.dropped.fetch_add(1, Ordering::Relaxed);
                self.state.want(SnapshotReason::Resync);
                self.gap = true;
            }
            // The writer thread is gone: recording is over, and gwanje must
            // not run on unrecorded.
            Err(TrySendError::Disconnected(_)) => panic!("the journal writer stopped"),
        }
    }

    /// Dropped and failing, as the writer sees it.
    pub fn health(&self) -> Health {
        Health {
            dropped: self.state.dropped.load(Ordering::Relaxed),
            failing: self.state.failing.load(Ordering::Relaxed),
            written: self.state.written.load(Ordering::Relaxed),
        }
    }

    /// Takes the writer's request for a snapshot (a segment to start), if any.
    pub fn take_snapshot_request(&self) -> Option<SnapshotReason> {
        match self.state.wants_snapshot.swap(0, Ordering::SeqCst) {
            0 => None,
            1 => Some(SnapshotReason::Rotate),
            _ => Some(SnapshotReason::Resync),
        }
    }

    /// Hands the writer a snapshot of `core` to start the next segment with.
    pub fn snapshot(&mut self, core: &Core, reason: SnapshotReason) {
        self.push(Record::Snapshot {
            at: core.now(),
            reason,
            core: Box::new(core.clone()),
        });
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Closing the queue lets the writer flush, sync and stop.
        let (tx, _) = sync_channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Journal {
    /// Records that `input` is fed at `now`.
    pub fn input(&mut self, now: Timestamp, input: &Input) {
        self.push(Record::Input {
            at: now,
            input: input.clone(),
        });
    }

    /// Records that the core's timers run at `now`.
    pub fn timeout(&mut self, now: Timestamp) {
        self.push(Record::Timeout { at: now });
    }

    /// Records an effect the core produced.
    pub fn effect(&mut self, effect: &Effect) {
        self.push(Record::Effect {
            effect: effect.clone(),
        });
    }
}

struct Writer {
    spec: JournalSpec,
    seq: u64,
    file: Option<File>,
    /// Bytes of records in the segment before compression: segments are
    /// rotated by it, so a reader decoding one holds what it always did.
    bytes: u64,
    opened_at: Timestamp,
    synced_at: Timestamp,
    rotate: bool,
    state: Arc<State>,
    /// The batch's framed records, before compression.
    buf: Vec<u8>,
    /// The batch's record count and times (0: none yet).
    batch: (u32, u64, u64),
    /// The compressed block being written.
    block: Option<OpenBlock>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Record>) {
        let wait = match self.spec.fsync {
            Fsync::Every(d) => d.min(Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        };
        loop {
            let first = match rx.recv_timeout(wait) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    // A clean stop leaves every block whole.
                    self.flush();
                    self.end_block();
                    self.sync();
                    return;
                }
            };
            let mut batch: Vec<Record> = first.into_iter().collect();
            if !batch.is_empty() {
                // Sleeping instead of waiting on the queue lets the engine
                // queue without waking this thread for every record.
                std::thread::sleep(GATHER);
                batch.extend(std::iter::from_fn(|| rx.try_recv().ok()).take(BATCH));
            }
            for record in batch {
                self.write(record);
            }
            self.flush();
            let now = clock::now();
            let sync_due = match self.spec.fsync {
                Fsync::Always => true,
                Fsync::Every(d) => now.since(self.synced_at) >= d.as_millis() as u64,
                Fsync::Never => false,
            };
            if sync_due {
                self.sync();
            }
            let age = Duration::from_millis(now.since(self.opened_at));
            if self.file.is_some()
                && !self.rotate
                && (self.bytes >= self.spec.segment_bytes || age >= self.spec.segment_age)
            {
                self.rotate = true;
                self.state.want(SnapshotReason::Rotate);
            }
        }
    }

    fn write(&mut self, record: Record) {
        // Every snapshot starts a segment: a segment always opens with the
        // state it continues from.
        if let Record::Snapshot { .. } = &record {
            self.flush();
            self.end_block();
            self.sync();
            if let Err(e) = self.start_segment(&record) {
                self.fail(1, &e);
            }
            return;
        }
        if self.file.is_none() {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let at = record.at().map_or(0, |t| t.0);
        if !format::encode(&record, &mut self.buf) {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (n, first, _) = self.batch;
        self.batch = (
            n + 1,
            if first == 0 { at } else { first },
            at.max(self.batch.2),
        );
    }

    /// Opens segment `seq`, writes its header and `snapshot`, syncs, prunes.
    fn start_segment(&mut self, snapshot: &Record) -> std::io::Result<()> {
        if self.state.failing.load(Ordering::SeqCst) {
            // The folder may have been removed, replaced or filled by others
            // meanwhile: make it again and number after what is there.
            std::fs::create_dir_all(&self.spec.dir)?;
            let last = reader::segments(&self.spec.dir)
                .map_err(std::io::Error::other)?
                .last()
                .map_or(0, |s| s.seq);
            self.seq = self.seq.max(last + 1);
        }
        let path = segment_path(&self.spec.dir, self.seq);
        // The number is used up whatever happens, so a retry never meets
        // its own half-written file.
        self.seq += 1;
        let mut raw = Vec::new();
        if !format::encode(snapshot, &mut raw) {
            return Err(std::io::Error::other(
                "the core snapshot is larger than a record may be",
            ));
        }
        // The snapshot is a block of its own: the segment's start decodes
        // whatever happens after it.
        let at = snapshot.at().map_or(0, |t| t.0);
        let mut block = OpenBlock::new(clock::now().0)?;
        let mut buf = format::header().to_vec();
        buf.extend(block.push(&raw, 1, at, at)?);
        buf.extend(block.finish()?);
        let written = File::options()
            .create_new(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(&buf)?;
                file.sync_data()?;
                Ok(file)
            });
        let file = match written {
            Ok(f) => f,
            Err(e) => {
                // A partial segment would only take space a retry needs.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        self.bytes = raw.len() as u64;
        self.state
            .written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.file = Some(file);
        self.opened_at = clock::now();
        self.synced_at = self.opened_at;
        self.rotate = false;
        if self.state.failing.swap(false, Ordering::SeqCst) {
            tracing::info!(file = %path.display(), "the journal writes again");
        }
        self.prune(&path);
        Ok(())
    }

    /// Compresses the batch into the open block and hands it to the
    /// kernel: after this a crash of gwanje loses nothing of it.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let (records, first, last) = std::mem::take(&mut self.batch);
        if self.file.is_none() {
            let lost = count_records(&self.buf);
            self.state.dropped.fetch_add(lost, Ordering::Relaxed);
            self.buf.clear();
            return;
        }
        let now = clock::now().0;
        let lost = count_records(&self.buf);
        if self.block.is_none() {
            match OpenBlock::new(now) {
                Ok(b) => self.block = Some(b),
                Err(e) => {
                    self.buf.clear();
                    return self.fail(lost, &e);
                }
            }
        }
        let block = self.block.as_mut().expect("opened above");
        let compressed = block.push(&self.buf, records, first, last);
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        match compressed {
            Ok(bytes) => self.append(&bytes, lost),
            Err(e) => self.fail(lost, &e),
        }
        if self.block.as_ref().is_some_and(|b| b.full(now)) {
            self.end_block();
        }
    }

    /// Ends the open block with its trailer.
    fn end_block(&mut self) {
        let Some(block) = self.block.take() else {
            return;
        };
        match block.finish() {
            Ok(bytes) => self.append(&bytes, 0),
            Err(e) => self.fail(0, &e),
        }
    }

    /// Appends `bytes` (holding `records` records) to the segment.
    fn append(&mut self, bytes: &[u8], records: u64) {
        let Some(file) = &mut self.file else {
            self.state.dropped.fetch_add(records, Ordering::Relaxed);
            return;
        };
        match file.write_all(bytes) {
            Ok(()) => {
                self.state
                    .written
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(e) => self.fail(records, &e),
        }
    }

    fn sync(&mut self) {
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_data() {
                self.fail(0, &e);
                return;
            }
            self.synced_at = clock::now();
        }
    }

    /// Stops writing to the current segment; the next snapshot retries.
    fn fail(&mut self, lost: u64, e: &std::io::Error) {
        self.state.dropped.fetch_add(lost, Ordering::Relaxed);
        self.file = None;
        // The next segment starts a block of its own.
        self.block = None;
        self.state.want(SnapshotReason::Resync);
        if !self.state.failing.swap(true, Ordering::SeqCst) {
            tracing::error!(dir = %self.spec.dir.display(), "writing the journal: {e}; dropping records until it works again");
        }
    }

    /// Deletes the oldest segments beyond the retention limits, never `current`.
    fn prune(&self, current: &Path) {
        let Ok(mut segs) = reader::segments(&self.spec.dir) else {
            return;
        };
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut total: u64 = segs.iter().map(|s| size(&s.path)).sum();
        segs.retain(|s| s.path != current);
        for s in segs {
            let old = std::fs::metadata(&s.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > self.spec.retain_age);
            if total <= self.spec.retain_bytes && !old {
                break;
            }
            total = total.saturating_sub(size(&s.path));
            if let Err(e) = std::fs::remove_file(&s.path) {
                tracing::warn!(file = %s.path.display(), "pruning the journal: {e}");
            }
        }
    }
}

fn count_records(mut buf: &[u8]) -> u64 {
    let mut n = 0;
    while buf.len() >= 8 {
        let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
        buf = buf.get(8 + len..).unwrap_or_default();
        n += 1;
    }
    n
}

/// The file of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.gwj"))
}
