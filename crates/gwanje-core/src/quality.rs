//! Path quality over a window: the share of probe packets (router checks
//! and ICMP checks, echo by echo) lost through a path in the last
//! `window_ms`. Per-probe verdicts hide a badly degraded path: at 30% packet
//! loss a 5-echo probe still passes 97% of the time, so the path would flap
//! between down and up. A loss share at or above `degraded` marks the path
//! down; it counts as clean again only at or below `tolerated`, and a path
//! that was degraded is not chosen again until it has been clean for the
//! whole stable period.
//!
//! An echo is lost when either the request or the reply is, so a link that
//! drops 10% of packets each way loses 19% of echoes. The thresholds are
//! about the link, so the window's echo loss `r` is judged as the one-way
//! loss it implies: `1 - sqrt(1 - r)`.
//!
//! When a path comes back from a specific failure (its router answers
//! again, its checks pass again), the outage's lost packets are forgotten:
//! they say nothing about the path as it is now, and keeping them would hold
//! its failback until the window drained. What it loses after that is
//! judged afresh.
//!
//! Random loss that every path shares is not a path failure: a subject
//! failing through one path counts against it only when its failures there
//! are clearly worse than through the best other path ([`clearly_worse`]).

use std::collections::{BTreeMap, VecDeque};

use super::types::Timestamp;

/// When a path's packet loss makes it degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QualityPolicy {
    /// The window loss is measured over, ms.
    pub window_ms: u64,
    /// Loss at or below this, per mille, is tolerated (and counts as clean).
    pub tolerated_permille: u16,
    /// Loss at or above this, per mille, degrades the path.
    pub degraded_permille: u16,
    /// Fewer packets than this in the window decide nothing.
    pub min_packets: u32,
    /// How much worse, per mille of failed probes (or lost echoes), a
    /// subject must fail through one path than through another for the
    /// difference to count against the path.
    #[serde(default = "default_margin")]
    pub margin_permille: u16,
}

fn default_margin() -> u16 {
    QualityPolicy::default().margin_permille
}

/// Fewer probes than this through either path compare nothing.
pub const MIN_EVIDENCE: u32 = 5;

impl Default for QualityPolicy {
    fn default() -> Self {
        QualityPolicy {
            window_ms: 10_000,
            tolerated_permille: 100,
            degraded_permille: 250,
            min_packets: 20,
            margin_permille: 250,
        }
    }
}

/// The echoes one subject sent and lost over the window.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LossWindow {
    samples: VecDeque<(Timestamp, u16, u16)>,
    sent: u32,
    lost: u32,
}

impl LossWindow {
    /// Records a probe at `at` that sent `sent` packets and lost `lost`.
    pub fn record(&mut self, at: Timestamp, sent: u16, lost: u16) {
        self.samples.push_back((at, sent, lost.min(sent)));
        self.sent += u32::from(sent);
        self.lost += u32::from(lost.min(sent));
    }

    /// Drops what left the window ending at `now`; returns (lost, sent).
    pub fn counts(&mut self, now: Timestamp, p: &QualityPolicy) -> (u32, u32) {
        while let Some(&(at, sent, lost)) = self.samples.front() {
            if now.since(at) < p.window_ms {
                break;
            }
            self.samples.pop_front();
            self.sent -= u32::from(sent);
            self.lost -= u32::from(lost);
        }
        (self.lost, self.sent)
    }

    /// How many samples at the end of the window lost everything they sent
    /// (for probe results: the current run of failed probes).
    pub fn trailing_run(&self) -> u32 {
        let run = self
            .samples
            .iter()
            .rev()
            .take_while(|(_, sent, lost)| *sent > 0 && lost == sent)
            .count();
        u32::try_from(run).unwrap_or(u32::MAX)
    }

    /// One-way loss implied by the window ending at `now`, per mille, when
    /// enough packets were sent to judge.
    pub fn loss_permille(&mut self, now: Timestamp, p: &QualityPolicy) -> Option<u16> {
        self.counts(now, p);
        (self.sent >= p.min_packets.max(1)).then(|| oneway_permille(self.lost, self.sent))
    }
}

/// The one-way loss, per mille, that `lost` of `sent` echoes imply.
fn oneway_permille(lost: u32, sent: u32) -> u16 {
    // In millionths, so the square root keeps three digits.
    let delivered = u64::from(sent.saturating_sub(lost)) * 1_000_000 / u64::from(sent.max(1));
    let oneway = 1000 - delivered.isqrt().min(1000);
    u16::try_from(oneway).unwrap_or(1000)
}

/// Echoes a path must carry after a recovery before it can be failed back
/// to: a path losing the degraded share (25% each way, 44% of echoes)
/// passes 10 in a row less than 0.3% of the time.
pub const RECOVERY_PACKETS: u32 = 10;

/// Whether `sent` echoes since a recovery tell enough: fewer, even all
/// answered, could be a lucky streak of a lossy path (5 in a row pass at
/// the degraded share 5% of the time).
fn enough(_lost: u32, sent: u32) -> bool {
    sent >= RECOVERY_PACKETS
}

/// One path's loss windows (its router's and each check's, judged apart so
/// a clean first hop cannot dilute a lossy far side) and what they concluded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    router: LossWindow,
    checks: std::collections::BTreeMap<String, LossWindow>,
    /// Whether the path is degraded now.
    pub degraded: bool,
    /// When it last was degraded.
    pub last_degraded: Option<Timestamp>,
    /// Since when its loss has stayed within the tolerated band.
    pub clean_since: Option<Timestamp>,
    /// Each subject's echoes and probe results, all of them and those
    /// taken while it was up.
    #[serde(default, with = "super::pairs")]
    seen: BTreeMap<Option<String>, Tally>,
    /// Its own loss as last judged, per mille.
    #[serde(default)]
    pub loss: Option<u16>,
    /// Echoes lost and sent through it over the window, every subject's.
    #[serde(default)]
    pub echoes: (u32, u32),
    /// Echoes (lost, sent) since its clean period began.
    #[serde(default)]
    clean_echoes: (u32, u32),
    /// When what made it down passed again, until enough echoes since then
    /// tell whether the outage is over or the path still loses packets.
    #[serde(default)]
    pub recovering: Option<Timestamp>,
    /// Echoes (lost, sent) since then.
    #[serde(default)]
    recovery_echoes: (u32, u32),
    /// Set when a recovery is confirmed and the outage's losses forgotten:
    /// the moment the path came back.
    #[serde(default)]
    pub recovered_at: Option<Timestamp>,
    /// Whether any subject through it ever reported packets.
    #[serde(default)]
    pub sampled: bool,
}

impl Quality {
    /// Records a probe of the path's router (`check` `None`) or of a check.
    pub fn record(&mut self, check: Option<&str>, at: Timestamp, sent: u16, lost: u16) {
        self.sampled = true;
        let add = |t: &mut (u32, u32)| {
            t.0 = t.0.saturating_add(u32::from(lost.min(sent)));
            t.1 = t.1.saturating_add(u32::from(sent));
        };
        add(&mut self.clean_echoes);
        if self.recovering.is_some() {
            add(&mut self.recovery_echoes);
        }
        match check {
            None => self.router.record(at, sent, lost),
            Some(c) => self
                .checks
                .entry(c.to_string())
                .or_default()
                .record(at, sent, lost),
        }
    }

    /// Records one probe result of the path's router (`check` `None`) or of
    /// a check, with its echoes when it counts them, as evidence for
    /// [`clearly_worse`]; `up` when the subject was up before it (failures
    /// while it is down are an outage, not random loss).
    pub fn record_probe(
        &mut self,
        check: Option<&str>,
        at: Timestamp,
        failed: bool,
        echoes: Option<(u16, u16)>,
        up: bool,
    ) {
        let t = self.seen.entry(check.map(str::to_string)).or_default();
        let (sent, lost) = echoes.unwrap_or((1, u16::from(failed)));
        t.all.record(at, sent, lost);
        t.probes.record(at, 1, u16::from(failed));
        if up {
            t.up.record(at, sent, lost);
            t.up_probes.record(at, 1, u16::from(failed));
        }
    }

    /// What made the path down (its router, or the checks it was blamed
    /// for) passes again at `now`: the next [`RECOVERY_PACKETS`] echoes
    /// tell whether the outage is over (its losses are then forgotten) or
    /// the path still loses packets.
    pub fn cause_cleared(&mut self, now: Timestamp) {
        self.recovering = Some(now);
        self.recovery_echoes = (0, 0);
    }

    /// Whether the path's loss since it came back is known (always, when
    /// nothing through it counts packets): a path just back is no failover
    /// target before that.
    pub fn known_since_recovery(&self) -> bool {
        !self.sampled || self.recovering.is_none()
    }

    /// Whether it carried enough echoes in its clean period, within the
    /// tolerated loss, not to be a lucky streak (always, when nothing
    /// through it counts packets).
    pub fn judged_since_recovery(&self, p: &QualityPolicy) -> bool {
        let (lost, sent) = self.clean_echoes;
        !self.sampled || (enough(lost, sent) && oneway_permille(lost, sent) <= p.tolerated_permille)
    }

    /// Each subject's failures through the path over the window ending at
    /// `now`: as a failing path's (everything, with its current run of
    /// failed probes) and as a witness's (only while it was up).
    pub fn evidence(&mut self, now: Timestamp, p: &QualityPolicy) -> Evidence {
        let mut out = Evidence::default();
        for (k, t) in &mut self.seen {
            let failing = Seen {
                echoes: t.all.counts(now, p),
                probes: t.probes.counts(now, p),
                run: t.probes.trailing_run(),
            };
            let witness = Seen {
                echoes: t.up.counts(now, p),
                probes: t.up_probes.counts(now, p),
                run: 0,
            };
            match k {
                None => out.router = Some((failing, witness)),
                Some(c) => {
                    out.checks.insert(c.clone(), (failing, witness));
                }
            }
        }
        out
    }

    /// Each window's one-way loss at `now`, dropping what left the window.
    pub fn losses(&mut self, now: Timestamp, p: &QualityPolicy) -> Losses {
        let (mut lost, mut sent) = self.router.counts(now, p);
        for w in self.checks.values_mut() {
            let (l, s) = w.counts(now, p);
            lost += l;
            sent += s;
        }
        self.echoes = (lost, sent);
        Losses {
            router: self.router.loss_permille(now, p),
            checks: self
                .checks
                .iter_mut()
                .map(|(c, w)| (c.clone(), w.loss_permille(now, p)))
                .collect(),
        }
    }

    /// Re-judges the path at `now` from `loss`, its own (see [`own_loss`]);
    /// returns the loss when it is degraded.
    pub fn update(&mut self, now: Timestamp, p: &QualityPolicy, loss: Option<u16>) -> Option<u16> {
        if let Some(back) = self.recovering {
            let (lost, sent) = self.recovery_echoes;
            let told = enough(lost, sent);
            if self.sampled && !told && now.since(back) < p.window_ms {
                // Too few echoes since it came back to tell: as it was.
                return self
                    .degraded
                    .then(|| self.loss.unwrap_or(p.degraded_permille));
            }
            // Past a window with too few echoes, it is judged as usual.
            self.recovering = None;
            if !self.sampled || (told && oneway_permille(lost, sent) <= p.tolerated_permille) {
                // The outage is over: its lost packets were the outage's.
                self.router = LossWindow::default();
                self.checks.clear();
                self.degraded = false;
                self.clean_since = Some(back);
                self.clean_echoes = self.recovery_echoes;
                self.recovered_at = Some(back);
                self.loss = None;
                return None;
            }
            // Still losing packets since it came back: judged as usual.
        }
        match loss {
            Some(l) if l >= p.degraded_permille => {
                self.degraded = true;
                self.last_degraded = Some(now);
            }
            Some(l) if l <= p.tolerated_permille => self.degraded = false,
            _ => {}
        }
        if loss.is_none_or(|l| l <= p.tolerated_permille) {
            self.clean_since.get_or_insert(now);
        } else {
            // The tally restarts with the clean period.
            self.clean_since = None;
            self.clean_echoes = (0, 0);
        }
        self.loss = loss;
        if self.degraded {
            Some(loss.unwrap_or(p.degraded_permille))
        } else {
            None
        }
    }

    /// Whether its loss has stayed within the tolerated band for `ms`.
    pub fn clean_for(&self, now: Timestamp, ms: u64) -> bool {
        self.clean_since.is_some_and(|t| now.since(t) >= ms)
    }

    /// Whether the path may be chosen after `stable_ms`: never degraded, or
    /// clean for that long since.
    pub fn settled(&self, now: Timestamp, stable_ms: u64) -> bool {
        !self.degraded
            && (self.last_degraded.is_none()
                || self.clean_since.is_some_and(|t| now.since(t) >= stable_ms))
    }
}

/// One subject's evidence through a path: echoes (or probes, where it
/// counts no echoes) and probes, all and only while it was up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Tally {
    all: LossWindow,
    probes: LossWindow,
    up: LossWindow,
    up_probes: LossWindow,
}

/// What one subject showed through one path over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// Echoes (lost, sent), or probes where it reports no echoes.
    pub echoes: (u32, u32),
    /// Probes (failed, sent).
    pub probes: (u32, u32),
    /// Its current run of failed probes.
    pub run: u32,
}

/// One path's evidence per subject, its router's and each check's: as a failing
/// path's and as a witness's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The router's.
    pub router: Option<(Seen, Seen)>,
    /// Each check's, by check.
    pub checks: BTreeMap<String, (Seen, Seen)>,
}

impl Evidence {
    /// The router's (`None`) or a check's evidence.
    pub fn get(&self, check: Option<&str>) -> Option<(Seen, Seen)> {
        match check {
            None => self.router,
            Some(c) => self.checks.get(c).copied(),
        }
    }
}

/// A run of failures less likely than this by chance, at the witness's own
/// failure rate, is no chance.
const CHANCE: f64 = 1e-4;

/// Whether failures of `mine` are clearly worse than those of the best of
/// `others` (the other paths where the same subject works). Only a lossy
/// witness is doubted: when the best other path failed less than twice or
/// within the tolerated share, the failure counts as before. Otherwise it
/// counts when `mine`'s share of lost echoes is higher by the margin and by
/// three standard errors, or when its current run of failed probes is
/// implausible at the witness's probe failure rate (below 10⁻⁴: a router
/// that died while the other path is lossy). With too little evidence to
/// compare, the failure counts.
pub fn clearly_worse(
    mine: Option<Seen>,
    others: impl Iterator<Item = Seen>,
    p: &QualityPolicy,
) -> bool {
    let share = |s: &Seen| s.echoes;
    let best = others
        .filter(|s| s.echoes.1 > 0)
        // Lowest share first: l1/n1 < l2/n2.
        .min_by(|a, b| {
            let ((l1, n1), (l2, n2)) = (share(a), share(b));
            (u64::from(l1) * u64::from(n2)).cmp(&(u64::from(l2) * u64::from(n1)))
        });
    let (Some(mine), Some(best)) = (mine, best) else {
        return true;
    };
    let ((_, nm), (lb, nb)) = (mine.echoes, best.echoes);
    let lossy = lb >= 2 && u64::from(lb) * 1000 > u64::from(p.tolerated_permille) * u64::from(nb);
    if !lossy || nm < MIN_EVIDENCE || nb < MIN_EVIDENCE {
        return true;
    }
    // The witness's probe failure rate, smoothed (one failure and one
    // success added) so a few probes that all passed do not make any run
    // look impossible.
    let (fp, np) = best.probes;
    let rate = f64::from(fp + 1) / f64::from(np + 2);
    let mut chance = 1.0f64;
    for _ in 0..mine.run.min(64) {
        chance *= rate;
    }
    chance < CHANCE || significantly_worse(mine.echoes, best.echoes, p)
}

/// Whether a share of `mine` (lost, sent) is higher than `other`'s by the
/// margin and by three standard errors of the difference; with fewer than
/// [`MIN_EVIDENCE`] on either side, nothing can be told (true).
pub fn significantly_worse(mine: (u32, u32), other: (u32, u32), p: &QualityPolicy) -> bool {
    let ((lm, nm), (lb, nb)) = (mine, other);
    if nm < MIN_EVIDENCE || nb < MIN_EVIDENCE {
        return true;
    }
    let (lm, nm, lb, nb) = (
        u128::from(lm),
        u128::from(nm),
        u128::from(lb),
        u128::from(nb),
    );
    let Some(diff) = (lm * nb).checked_sub(lb * nm).filter(|d| *d > 0) else {
        return false;
    };
    // diff / (nm·nb) is the difference of the shares; the pooled standard
    // error squared is L(N-L)/N² · N/(nm·nb).
    let (n, l) = (nm + nb, lm + lb);
    let margin = diff * 1000 >= u128::from(p.margin_permille) * nm * nb;
    let significant = diff * diff * n >= 9 * l * (n - l) * nm * nb;
    margin && significant
}

/// One path's window losses at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Losses {
    /// Its router's.
    pub router: Option<u16>,
    /// Each check's, by check.
    pub checks: BTreeMap<String, Option<u16>>,
}

/// The loss that is `path`'s own: its router's, and each check's when that
/// check is clean through another path that carries it, or no other path
/// does. A check lossy through every path loses its packets at the far end,
/// which says nothing about the paths (the rule for failing checks, applied
/// to loss).
pub fn own_loss<K: Ord>(path: &K, all: &BTreeMap<K, Losses>, p: &QualityPolicy) -> Option<u16> {
    let mine = all.get(path)?;
    let checks = mine.checks.iter().filter_map(|(c, loss)| {
        let mut others = all
            .iter()
            .filter(|(q, _)| *q != path)
            .filter_map(|(_, o)| o.checks.get(c))
            .peekable();
        let alone = others.peek().is_none();
        let witnessed = alone || others.any(|o| o.is_some_and(|o| o <= p.tolerated_permille));
        witnessed.then_some(*loss).flatten()
    });
    checks.chain(mine.router).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path's own loss when it is the only path.
    fn alone(q: &mut Quality, now: u64, p: &QualityPolicy) -> Option<u16> {
        let all = BTreeMap::from([("a", q.losses(Timestamp(now), p))]);
        own_loss(&"a", &all, p)
    }

    fn judge(q: &mut Quality, now: u64, p: &QualityPolicy) -> Option<u16> {
        let loss = alone(q, now, p);
        q.update(Timestamp(now), p, loss)
    }

    #[test]
    fn degrades_at_the_threshold_and_clears_only_when_clean() {
        let p = QualityPolicy::default();
        let mut q = Quality::default();
        let mut t = 0;
        // 60% of echoes lost: about 37% each way, degraded.
        for i in 0..50 {
            t += 100;
            q.record(None, Timestamp(t), 5, if i % 10 < 6 { 5 } else { 0 });
        }
        assert_eq!(alone(&mut q, t, &p), Some(368));
        assert!(judge(&mut q, t, &p).is_some());
        // 30% of echoes: about 16% each way, between the bands: still degraded.
        for i in 0..100 {
            t += 100;
            q.record(None, Timestamp(t), 20, if i % 20 < 6 { 20 } else { 0 });
            judge(&mut q, t, &p);
        }
        assert!(q.degraded, "16% is not clean");
        // 19% of echoes is what 10% random loss each way looks like: tolerated.
        let mut r = Quality::default();
        for i in 0..100 {
            r.record(Some("svc/x"), Timestamp(i * 100), 100, 19);
        }
        assert_eq!(alone(&mut r, 9_900, &p), Some(100));
        // A clean router cannot dilute a lossy check through the same path.
        r.record(None, Timestamp(9_900), 10_000, 0);
        assert_eq!(alone(&mut r, 9_900, &p), Some(100));
        assert!(q.clean_since.is_none());
        // Clean: no longer degraded, but settled only after the stable period.
        for _ in 0..150 {
            t += 100;
            q.record(None, Timestamp(t), 5, 0);
            judge(&mut q, t, &p);
        }
        assert!(!q.degraded);
        let since = q.clean_since.unwrap();
        assert!(!q.settled(Timestamp(since.0 + 500), 1_000));
        assert!(q.settled(Timestamp(since.0 + 1_000), 1_000));
    }

    #[test]
    fn a_check_lossy_through_every_path_blames_none() {
        let p = QualityPolicy::default();
        let (mut a, mut b) = (Quality::default(), Quality::default());
        for i in 0..100 {
            a.record(Some("svc/x"), Timestamp(i * 100), 5, 5);
            b.record(
                Some("svc/x"),
                Timestamp(i * 100),
                5,
                if i % 2 == 0 { 5 } else { 0 },
            );
        }
        // The far end loses everywhere: not a path's fault.
        let all = BTreeMap::from([
            ("a", a.losses(Timestamp(9_900), &p)),
            ("b", b.losses(Timestamp(9_900), &p)),
        ]);
        assert_eq!(own_loss(&"a", &all, &p), None);
        assert_eq!(own_loss(&"b", &all, &p), None);
        // Clean through b: a's loss is a's own; a lossy router always is.
        for i in 100..200 {
            b.record(Some("svc/x"), Timestamp(i * 100), 5, 0);
            a.record(Some("svc/x"), Timestamp(i * 100), 5, 5);
        }
        b.record(None, Timestamp(19_900), 30, 30);
        let all = BTreeMap::from([
            ("a", a.losses(Timestamp(19_900), &p)),
            ("b", b.losses(Timestamp(19_900), &p)),
        ]);
        assert_eq!(own_loss(&"a", &all, &p), Some(1000));
        assert_eq!(own_loss(&"b", &all, &p), Some(1000), "b's router");
    }
}
