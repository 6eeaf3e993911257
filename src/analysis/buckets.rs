//! Many samples over a long range folded into a fixed number of time
//! buckets that keep the extremes, so a plot of 48 hours stays small and a
//! 2-second outage in it stays visible: a bucket with one failure is a red
//! band, however many successes surround it.

use super::summary::clock;
use super::svg::Band;

/// Buckets across a plot: finer than the eye can tell apart at its width.
pub const BUCKETS: u64 = 720;

/// One bucket's samples.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    samples: u32,
    failed: u32,
    min: f64,
    max: f64,
}

/// Samples from `from` to `to` (Unix ms) in [`BUCKETS`] buckets.
#[derive(Debug, Clone)]
pub struct Buckets {
    from: u64,
    width: u64,
    cells: Vec<Cell>,
}

impl Buckets {
    /// Empty buckets over `from..=to`.
    pub fn new(from: u64, to: u64) -> Self {
        let width = (to.saturating_sub(from) / BUCKETS).max(1);
        Buckets {
            from,
            width,
            cells: vec![Cell::default(); BUCKETS as usize + 1],
        }
    }

    /// Adds a sample `value` at `at`, `failed` when it was a failure.
    pub fn add(&mut self, at: u64, value: f64, failed: bool) {
        let i = (at.saturating_sub(self.from) / self.width) as usize;
        let Some(c) = self.cells.get_mut(i) else {
            return;
        };
        if c.samples == 0 {
            (c.min, c.max) = (value, value);
        }
        c.samples += 1;
        c.failed += u32::from(failed);
        c.min = c.min.min(value);
        c.max = c.max.max(value);
    }

    fn span(&self, i: usize) -> (u64, u64) {
        let start = self.from + i as u64 * self.width;
        (start, start + self.width)
    }

    /// Green where every sample passed, red where any failed (with how many
    /// and when), nothing where there were none; neighbours alike merged.
    pub fn bands(&self) -> Vec<Band> {
        let mut out: Vec<Band> = Vec::new();
        let mut last: Option<(bool, usize)> = None;
        for (i, c) in self.cells.iter().enumerate() {
            if c.samples == 0 {
                last = None;
                continue;
            }
            let bad = c.failed > 0;
            let (start, end) = self.span(i);
            match (last, out.last_mut()) {
                (Some((was_bad, _)), Some(b)) if was_bad == bad && !bad => b.to = end,
                _ => out.push(Band {
                    from: start,
                    to: end,
                    colour: if bad { "#d33" } else { "#3a3" },
                    title: if bad {
                        format!(
                            "{} of {} failed between {} and {}",
                            c.failed,
                            c.samples,
                            clock(start),
                            clock(end)
                        )
                    } else {
                        "every probe passed".into()
                    },
                }),
            }
            last = Some((bad, i));
        }
        out
    }

    /// One point per bucket at its highest value, the lowest in its tip.
    pub fn extremes(&self, what: &str) -> Vec<(u64, f64, String)> {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.samples > 0)
            .map(|(i, c)| {
                let (start, end) = self.span(i);
                (
                    start + self.width / 2,
                    c.max,
                    format!(
                        "{}–{}: {what} {:.0}% at most, {:.0}% at least ({} probes)",
                        clock(start),
                        clock(end),
                        c.max * 100.0,
                        c.min * 100.0,
                        c.samples
                    ),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_second_outage_in_a_day_is_one_red_band_among_green() {
        let day = 86_400_000;
        let mut b = Buckets::new(0, day);
        for s in 0..86_400u64 {
            let at = s * 1000;
            let down = (50_000..50_002).contains(&s);
            b.add(at, if down { 0.0 } else { 1.0 }, down);
        }
        let bands = b.bands();
        let red: Vec<&Band> = bands.iter().filter(|b| b.colour == "#d33").collect();
        assert_eq!(red.len(), 1, "one red band");
        assert!(red[0].from <= 50_000_000 && red[0].to > 50_001_000);
        assert!(red[0].title.starts_with("2 of "), "{}", red[0].title);
        assert_eq!(bands.len(), 3, "green, red, green");
        assert!(b.extremes("loss").len() <= BUCKETS as usize + 1);
    }
}
