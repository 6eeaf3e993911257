//! Route-flap dampening for failback (the idea of RFC 2439): each failure of
//! a path adds a penalty that halves every `half_life_ms`; while the
//! penalty is above `reuse` the path is no failback target. One outage
//! (one `penalty`, below `reuse` by default) never delays failback; a path
//! that fails again and again waits longer, by itself, and at most
//! `half_life · log2(max_penalty / reuse)` after its last failure.
//!
//! Integer arithmetic only, so a replay on any machine decides the same.

use super::types::Timestamp;

/// The dampening parameters of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DampeningPolicy {
    /// Added at each failure of a path (0 turns dampening off).
    pub penalty: u32,
    /// The penalty halves this often, ms.
    pub half_life_ms: u64,
    /// Above this the path is not a failback target.
    pub reuse: u32,
    /// The penalty never exceeds this (bounds the longest wait).
    pub max_penalty: u32,
}

impl Default for DampeningPolicy {
    fn default() -> Self {
        DampeningPolicy {
            penalty: 1000,
            half_life_ms: 60_000,
            reuse: 1500,
            max_penalty: 6000,
        }
    }
}

/// 2^(-i/16) in 1/65536ths, for i in 0..=16.
const FRACTION: [u64; 17] = [
    65536, 62757, 60097, 57549, 55109, 52773, 50535, 48393, 46341, 44376, 42495, 40693, 38968,
    37316, 35734, 34219, 32768,
];

/// `value · 2^(-elapsed/half_life)`, rounded down.
fn decay(value: u32, elapsed_ms: u64, half_life_ms: u64) -> u32 {
    let h = half_life_ms.max(1);
    let halvings = elapsed_ms / h;
    if halvings >= 32 {
        return 0;
    }
    // The rest of a half-life, in 1/1024ths, interpolated between sixteenths.
    let rest = (elapsed_ms % h) * 1024 / h;
    let (i, within) = ((rest / 64) as usize, rest % 64);
    let factor = FRACTION[i] - (FRACTION[i] - FRACTION[i + 1]) * within / 64;
    let v = (u64::from(value) >> halvings) * factor / 65536;
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// One path's accumulated penalty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Penalty {
    /// The penalty as it was at `at`.
    value: u32,
    /// When it was last changed.
    at: Timestamp,
}

impl Penalty {
    /// The decayed penalty at `now`.
    pub fn value(&self, now: Timestamp, p: &DampeningPolicy) -> u32 {
        decay(self.value, now.since(self.at), p.half_life_ms)
    }

    /// A failure at `at` adds one penalty.
    pub fn add(&mut self, at: Timestamp, p: &DampeningPolicy) {
        let at = at.max(self.at);
        let v = self.value(at, p).saturating_add(p.penalty);
        self.value = v.min(p.max_penalty.max(p.penalty));
        self.at = at;
    }

    /// Whether it keeps the path from being a failback target at `now`.
    pub fn suppressed(&self, now: Timestamp, p: &DampeningPolicy) -> bool {
        self.value(now, p) > p.reuse
    }

    /// The first time the penalty is at or below `reuse`.
    pub fn reusable_at(&self, p: &DampeningPolicy) -> Timestamp {
        if self.value <= p.reuse {
            return self.at;
        }
        // The decay is monotonic: search for the first millisecond.
        let (mut lo, mut hi) = (0u64, p.half_life_ms.max(1).saturating_mul(32));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if decay(self.value, mid, p.half_life_ms) <= p.reuse {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Timestamp(self.at.0.saturating_add(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_every_half_life_and_interpolates_between() {
        assert_eq!(decay(1000, 0, 60_000), 1000);
        assert_eq!(decay(1000, 60_000, 60_000), 500);
        assert_eq!(decay(1000, 120_000, 60_000), 250);
        // 2^-0.5 = 0.7071
        assert_eq!(decay(1000, 30_000, 60_000), 707);
        let mut last = 1000;
        for t in (0..200_000).step_by(997) {
            let v = decay(1000, t, 60_000);
            assert!(v <= last, "monotonic at {t}");
            last = v;
        }
        assert_eq!(decay(u32::MAX, 60_000 * 40, 60_000), 0);
    }

    #[test]
    fn one_failure_never_suppresses_repeated_ones_do() {
        let p = DampeningPolicy::default();
        let mut pen = Penalty::default();
        pen.add(Timestamp(10_000), &p);
        assert!(!pen.suppressed(Timestamp(10_000), &p), "one outage");
        // A second failure 10 s later: 1000·2^(-1/6) + 1000 = 1891.
        pen.add(Timestamp(20_000), &p);
        assert_eq!(pen.value(Timestamp(20_000), &p), 1891);
        assert!(pen.suppressed(Timestamp(20_000), &p));
        // Reusable when 1890·2^(-t/60 s) <= 1500: t = 60·log2(1.26) = 20 s.
        let at = pen.reusable_at(&p);
        assert!((39_900..=40_100).contains(&at.0), "{at:?}");
        assert!(!pen.suppressed(at, &p));
        assert!(pen.suppressed(Timestamp(at.0 - 100), &p));
        // Capped: the longest wait is 60·log2(6000/1500) = 120 s.
        for i in 0..20 {
            pen.add(Timestamp(30_000 + i * 1000), &p);
        }
        assert_eq!(pen.value(Timestamp(49_000), &p), 6000);
        let wait = pen.reusable_at(&p).0 - 49_000;
        assert!((119_000..=121_000).contains(&wait), "{wait}");
    }

    #[test]
    fn zero_penalty_turns_it_off() {
        let p = DampeningPolicy {
            penalty: 0,
            ..DampeningPolicy::default()
        };
        let mut pen = Penalty::default();
        for i in 0..100 {
            pen.add(Timestamp(i * 100), &p);
        }
        assert!(!pen.suppressed(Timestamp(10_000), &p));
    }
}
