//! The one place that reads the wall clock, for timestamps given to the core.

use std::sync::OnceLock;
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
    Timestamp(wall + mono.elapsed().as_millis() as u64)
}

/// Now, as fractional Unix seconds (for metrics).
pub fn unix_seconds() -> f64 {
    now().0 as f64 / 1000.0
}
