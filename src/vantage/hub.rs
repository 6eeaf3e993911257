//! The observation hub: this instance's latest results as stream lines,
//! numbered, held in a ring for followers to resume from, and served as a
//! newline-delimited JSON stream (zstd-compressed when the follower asks).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::wire::Line;
use crate::core::Timestamp;

/// Results held for followers to resume from (about five minutes of a
/// 1,000-target fleet probed every second... or far more of a slower one).
pub const HELD: usize = 1 << 18;
/// A stream ends after this long; the follower resumes on a new one (and
/// re-authenticates), so no connection lives for ever.
pub const SESSION: Duration = Duration::from_secs(60);
/// A stream with nothing new sends a heartbeat this often.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// The most lines sent in one chunk.
const BATCH: usize = 1024;
/// Once a result is there, the stream waits this long for more and sends
/// them together: a follower wakes per chunk, not per result (a vote
/// arrives at most this much later).
pub const COALESCE: Duration = Duration::from_millis(100);

/// This instance's recent results, shared by the engine (writer) and the
/// API's streams (readers).
pub struct Hub {
    ring: Mutex<VecDeque<(u64, Bytes)>>,
    added: Notify,
}

/// Why a stream cannot start where the follower asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("results after {after} are no longer held; the oldest held is {oldest}")]
pub struct Gone {
    /// What was asked.
    pub after: u64,
    /// The oldest held.
    pub oldest: u64,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            ring: Mutex::new(VecDeque::new()),
            added: Notify::new(),
        }
    }
}

impl Hub {
    /// Adds result `seq` (numbers only grow) and wakes the streams.
    pub fn push(&self, seq: u64, line: &Line) {
        let bytes = Bytes::from(line.to_bytes());
        {
            let mut ring = self.ring.lock().expect("hub lock");
            if ring.back().is_some_and(|(last, _)| *last >= seq) {
                // A restored core numbering from an older snapshot: start over.
                ring.clear();
            }
            if ring.len() == HELD {
                ring.pop_front();
            }
            ring.push_back((seq, bytes));
        }
        self.added.notify_waiters();
    }

    /// The last result's number (0: none yet).
    pub fn last(&self) -> u64 {
        self.ring
            .lock()
            .expect("hub lock")
            .back()
            .map_or(0, |(s, _)| *s)
    }

    /// The oldest result held, if any.
    pub fn oldest(&self) -> Option<u64> {
        self.ring.lock().expect("hub lock").front().map(|(s, _)| *s)
    }

    /// Up to `max` lines after `after`; `Gone` when some were dropped.
    fn after(&self, after: u64, max: usize) -> Result<Vec<(u64, Bytes)>, Gone> {
        let ring = self.ring.lock().expect("hub lock");
        let Some((oldest, _)) = ring.front() else {
            return Ok(Vec::new());
        };
        // Numbers in the ring are consecutive unless the journal lost some,
        // so search rather than index.
        if after.saturating_add(1) < *oldest {
            return Err(Gone {
                after,
                oldest: *oldest,
            });
        }
        let start = ring.partition_point(|(s, _)| *s <= after);
        Ok(ring.range(start..).take(max).cloned().collect())
    }

    /// The stream of lines after `after` (first `backlog`'s, read from the
    /// journal, when given), heartbeats while idle, for one session;
    /// compressed with zstd when `zstd`. Ends early when the reader falls so
    /// far behind that lines were dropped, or after a backlog that stopped
    /// short (the follower resumes from its last line).
    pub fn stream(
        self: std::sync::Arc<Self>,
        vantage: String,
        after: u64,
        backlog: Option<super::backlog::Backlog>,
        zstd: bool,
        now: impl Fn() -> Timestamp + Send + 'static,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        let end = tokio::time::Instant::now() + SESSION;
        let encoder = zstd.then(|| {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd level 3");
            // A small window bounds the follower's memory.
            let _ = e.set_parameter(zstd::stream::raw::CParameter::WindowLog(20));
            e
        });
        // A backlog that ended before what the hub holds (the journal has
        // a gap there) continues with the hub, past the gap; one that
        // stopped at its size ends the session, and the follower asks on.
        let (after, first, short) = match backlog {
            Some(b) if b.truncated => (b.last, Some(b.bytes), true),
            Some(b) => (b.last.max(b.until.saturating_sub(1)), Some(b.bytes), false),
            None => (after, None, false),
        };
        futures_util::stream::unfold(
            (after, encoder, false, first),
            move |(mut cursor, mut encoder, done, first)| {
                let hub = self.clone();
                let vantage = vantage.clone();
                let now = now();
                async move {
                    if done {
                        return None;
                    }
                    if let Some(mut bytes) = first {
                        // A thousand lines a chunk, as live ones come.
                        let cut = bytes
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| **b == b'\n')
                            .nth(BATCH - 1)
                            .map_or(bytes.len(), |(i, _)| i + 1);
                        let rest = bytes.split_off(cut);
                        let chunk = encode(&mut encoder, bytes)?;
                        let (left, over) = if rest.is_empty() {
                            (None, short)
                        } else {
                            (Some(rest), false)
                        };
                        return Some((Ok(chunk), (cursor, encoder, over, left)));
                    }
                    let mut out = Vec::new();
                    let mut gathered = false;
                    loop {
                        let woken = hub.added.notified();
                        match hub.after(cursor, BATCH) {
                            Err(_) => break,
                            Ok(lines) if !lines.is_empty() => {
                                if !gathered {
                                    gathered = true;
                                    tokio::time::sleep(COALESCE).await;
                                    continue;
                                }
                                for (seq, bytes) in lines {
                                    cursor = seq;
                                    out.extend_from_slice(&bytes);
                                }
                                break;
                            }
                            Ok(_) => {}
                        }
                        let wait = HEARTBEAT
                            .min(end.saturating_duration_since(tokio::time::Instant::now()));
                        if tokio::time::timeout(wait, woken).await.is_err() {
                            out = Line::heartbeat(&vantage, cursor, now).to_bytes();
                            break;
                        }
                    }
                    let over = tokio::time::Instant::now() >= end || out.is_empty();
                    let chunk = encode(&mut encoder, out)?;
                    Some((Ok(chunk), (cursor, encoder, over, None)))
                }
            },
        )
    }
}

/// `bytes` as the next chunk: compressed and flushed when `encoder` is
/// set; `None` when compression fails (the stream ends).
fn encode(
    encoder: &mut Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    bytes: Vec<u8>,
) -> Option<Bytes> {
    match encoder {
        Some(e) => {
            use std::io::Write;
            e.write_all(&bytes).and_then(|()| e.flush()).ok()?;
            Some(Bytes::from(std::mem::take(e.get_mut())))
        }
        None => Some(Bytes::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Observation, Subject, TargetKey};

    fn line(seq: u64) -> Line {
        let obs = Observation {
            subject: Subject::Target(TargetKey::new("s", "t")),
            at: Timestamp(seq),
            failure: None,
            cert_not_after: None,
            packets: None,
            duration_us: None,
            rtt_us: None,
            identity: None,
        };
        Line::of("a", seq, false, &obs)
    }

    #[test]
    fn a_follower_resumes_after_what_it_had_and_learns_when_it_is_too_late() {
        let hub = Hub::default();
        for s in 1..=HELD as u64 + 10 {
            hub.push(s, &line(s));
        }
        assert_eq!(hub.last(), HELD as u64 + 10);
        let got = hub.after(HELD as u64, 100).expect("held");
        assert_eq!(got.first().map(|(s, _)| *s), Some(HELD as u64 + 1));
        assert_eq!(got.len(), 10);
        assert_eq!(
            hub.after(3, 1),
            Err(Gone {
                after: 3,
                oldest: 11
            })
        );
        assert!(
            hub.after(10, 1).is_ok(),
            "just before the oldest still resumes"
        );
        // A number that goes back (a restarted numbering) starts over.
        hub.push(5, &line(5));
        assert_eq!(hub.last(), 5);
    }
}
