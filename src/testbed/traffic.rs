//! The service as a user sees it: a UDP request every 10 ms from the
//! client to the portal's echo, and the longest time without a reply.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::TestbedError;
use super::netns::{Netns, NsThread};
use super::topology::SERVICE;

/// Time between requests.
pub const SPACING: Duration = Duration::from_millis(10);

/// A running traffic meter (stops by itself after its limit).
pub struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<NsThread<Vec<Instant>>>,
}

impl Traffic {
    /// Starts sending `payload`-byte datagrams from `client` for at most `limit`.
    pub fn start(client: &Netns, limit: Duration, payload: usize) -> Result<Self, TestbedError> {
        let sock = client
            .run(|| UdpSocket::bind("0.0.0.0:0"))?
            .and_then(|s| {
                s.set_read_timeout(Some(Duration::from_millis(2)))
                    .map(|()| s)
            })
            .map_err(|e| TestbedError::io("traffic socket", client.0.clone(), e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = client.spawn(move || {
            let start = Instant::now();
            let mut replies = Vec::new();
            let mut next_send = start;
            let mut buf = [0u8; 2048];
            let data = vec![0x47u8; payload.clamp(1, 1472)];
            while !s.load(Ordering::Relaxed) && start.elapsed() < limit {
                if Instant::now() >= next_send {
                    let _ = sock.send_to(&data, (SERVICE, 7));
                    next_send += SPACING;
                }
                if sock.recv_from(&mut buf).is_ok() {
                    replies.push(Instant::now());
                }
            }
            replies
        })?;
        Ok(Traffic {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops and returns the reply times.
    pub fn finish(mut self) -> Result<Vec<Instant>, TestbedError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join(),
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The longest time without a reply between `from` and `until`.
pub fn longest_gap(replies: &[Instant], from: Instant, until: Instant) -> Duration {
    let mut last = from;
    let mut gap = Duration::ZERO;
    for t in replies.iter().filter(|t| **t >= from && **t <= until) {
        gap = gap.max(t.duration_since(last));
        last = *t;
    }
    gap.max(until.saturating_duration_since(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_counts_silence_at_both_ends() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let replies = [at(10), at(20), at(320), at(330)];
        assert_eq!(
            longest_gap(&replies, t0, at(340)),
            Duration::from_millis(300)
        );
        assert_eq!(
            longest_gap(&replies, t0, at(900)),
            Duration::from_millis(570)
        );
        assert_eq!(longest_gap(&[], t0, at(50)), Duration::from_millis(50));
    }
}
