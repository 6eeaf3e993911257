//! The one place that reads the clock: timestamps given to the core, and
//! the times adapters measure with (the journal's fsync and segment age).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::core::Timestamp;

/// Now, as milliseconds since the Unix epoch. Anchored once to the wall clock
/// and advanced by the monotonic clock, so it never jumps backwards when the
/// system time is stepped.
#[allow(
    clippy::disallowed_methods,
    reason = "the clock adapter is where time is read"
)]
pub fn now() -> Timestamp {
    static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();
    let (wall, mono) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (wall, Instant::now())
    });
    let elapsed = u64::try_from(mono.elapsed().as_millis()).unwrap_or(u64::MAX);
    Timestamp(
        wall.saturating_add(elapsed)
            .saturating_add(SHIFT.load(Ordering::Relaxed)),
    )
}

/// Added to every reading, so time never runs behind what the journal saw.
static SHIFT: AtomicU64 = AtomicU64::new(0);

/// Moves the clock forward to at least `at`: a core restored from the
/// journal has seen times up to `at`, and if the wall clock was stepped back
/// across the restart, the core would otherwise wait out the difference
/// before deciding anything.
pub fn not_before(at: Timestamp) {
    let behind = at.0.saturating_sub(now().0);
    if behind > 0 {
        SHIFT.fetch_add(behind, Ordering::Relaxed);
    }
}

/// The last instant RFC 3339 can write: 9999-12-31T23:59:59.999Z.
pub const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// How far a journal restored at start may lead the system clock: more is
/// a forged or corrupt record (or a clock far off), and is not trusted.
pub const MAX_RESTORED_LEAD_MS: u64 = 3_600_000;

/// `at` as RFC 3339 (UTC, milliseconds), for alerts and timelines; a time
/// past what RFC 3339 can write is written as that last instant.
pub fn rfc3339(at: Timestamp) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_millis(at.0.min(MAX_RFC3339_MS));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Now, as fractional Unix seconds (for metrics).
pub fn unix_seconds() -> f64 {
    now().0 as f64 / 1000.0
}

/// Where the engine reads time: the system clock in production, a virtual
/// one in paused-time tests.
pub trait Clock: Send + Sync {
    /// Now, as Unix milliseconds.
    fn now(&self) -> Timestamp;
}

/// The system clock ([`now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        now()
    }
}
